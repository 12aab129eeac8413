"""Errors of the web workspace; each maps to one HTTP status."""

from __future__ import annotations

from .._errors import HemifaceError


class AppError(HemifaceError, RuntimeError):
    """The web workspace cannot start or serve (for example a public address without an access token)."""


class AppValidationError(HemifaceError, ValueError):
    """A request's data is malformed or out of range (HTTP 400); the message says which field and why."""


class NotFoundError(HemifaceError, LookupError):
    """No such patient, photo or result file in this study (HTTP 404)."""


class ConflictError(HemifaceError, RuntimeError):
    """The write would undo a newer change, or another write is in progress (HTTP 409)."""
