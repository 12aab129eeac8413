"""Errors of :mod:`hemiface.report`."""

from .._errors import HemifaceError


class ReportError(HemifaceError, ValueError):
    """Report content or options are invalid (a table that is not a DataFrame, inconsistent flow counts...)."""


class ForbiddenContentError(ReportError):
    """A report would show a forbidden string (a name, a raw identifier, a source file name)."""
