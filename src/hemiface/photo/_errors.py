"""Errors specific to photographs."""

from .._errors import HemifaceError


class PhotoError(HemifaceError, ValueError):
    """A photograph cannot be measured: no face, several faces, a profile view, a face too small."""
