"""Exception hierarchy: every error hemiface raises on purpose is a HemifaceError.

Each also subclasses the builtin that fits, so callers may catch either.
Messages are one line, name the file or parameter at fault and, where one
exists, the fix.
"""


class HemifaceError(Exception):
    """Base class of all errors hemiface raises deliberately."""


class InputFileError(HemifaceError, ValueError):
    """An input file is missing, unreadable, corrupt or of the wrong kind."""


class UnitsError(HemifaceError, ValueError):
    """A mesh's size is implausible for a face in the stated units."""


class LandmarkError(HemifaceError, ValueError):
    """Landmarks are missing, malformed or geometrically inconsistent."""


class RegistrationError(HemifaceError, RuntimeError):
    """A registration (ICP, symmetry plane) did not converge to a usable fit."""


class RegionError(HemifaceError, ValueError):
    """The face region is empty or too small to measure."""


class OutputExistsError(HemifaceError, FileExistsError):
    """An output would replace an existing file and overwrite was not requested."""


class OutputError(HemifaceError, OSError):
    """Outputs cannot be written there (no space, read-only, not a regular file, a system folder).

    ``errno`` is the operating system's error number when there is one, so that callers
    can tell an environmental failure (ENOSPC, EROFS) from a bad result.
    """

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message
