"""Writing outputs so that nothing is ever half-written, and nothing but a regular file is ever replaced.

Outputs are produced in a staging folder beside the destination and moved into
place with :func:`os.replace` only when every file is complete. ``--overwrite``
replaces regular files only: never a device, FIFO, socket or folder, nor a
symbolic link that leads out of the output folder; and outputs are never
written under ``/proc``, ``/sys`` or ``/dev``. Any operating-system error
(no space, read-only, name too long) becomes one :class:`OutputError` line, and
a folder made for the outputs is removed again when they could not be written.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ._errors import OutputError, OutputExistsError
from . import logger

#: Folders that hold the system's devices and kernel interfaces, never outputs.
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a regular file", "a FIFO (named pipe)", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    for test, what in _KINDS:
        if test(mode):
            return what
    return "not a regular file"


def _os_error(where, exc: OSError) -> OutputError:
    return OutputError(f"{where}: cannot write the outputs: {exc.strerror or exc}", exc.errno)


def _check_place(out_dir: Path) -> None:
    try:
        real = os.path.realpath(out_dir)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{out_dir}: not a usable output folder ({exc})") from None
    if real == "/dev/shm" or real.startswith("/dev/shm/"):  # a memory-backed folder for files, not a device
        return
    for system in SYSTEM_FOLDERS:
        if real == system or real.startswith(system + "/"):
            raise OutputError(f"{out_dir}: is under {system}, which holds the system's devices and kernel "
                              "interfaces; write the outputs into a folder of your own")


def _check_replaceable(out_dir: Path, name: str) -> bool:
    """Whether ``out_dir / name`` exists; refuses (OutputError) anything --overwrite must never replace."""
    target = out_dir / name
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise OutputError(f"{out_dir}: exists and is not a folder") from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"{target}: cannot be checked ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISLNK(st.st_mode):
        real = Path(os.path.realpath(target))
        inside = real.parent == Path(os.path.realpath(out_dir))
        if not inside or not real.is_file():
            raise OutputError(f"{target}: is a symbolic link to {'a file outside the output folder' if not inside else 'something that is not a regular file'}; "
                              "hemiface replaces regular files only: remove the link or choose another output")
        return True
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{target}: is {file_kind(st.st_mode)}; hemiface replaces regular files only: "
                          "choose another output")
    return True


def check_writable(out_dir: Path, names: Sequence[str], *, overwrite: bool) -> None:
    """Refuse early (before any work) when outputs exist and overwrite is off, or must never be replaced."""
    out_dir = Path(out_dir)
    _check_place(out_dir)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputExistsError(f"{out_dir}: exists and is not a folder")
    except (OSError, ValueError) as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputError(f"{out_dir}: not a usable output folder ({getattr(exc, 'strerror', None) or exc})") from None
    existing = [n for n in names if _check_replaceable(out_dir, n)]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out_dir}: already holds {', '.join(existing)}; pass --overwrite to replace them"
        )


def _make_folder(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and its missing parents; return those created (deepest last)."""
    created = []
    missing = []
    p = out_dir
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        folder.mkdir()
        created.append(folder)
    return created


@contextmanager
def staged_outputs(out_dir: Path, names: Sequence[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a staging folder; on success move ``names`` from it into ``out_dir``.

    On any exception the staging folder is removed and ``out_dir`` is untouched
    (a folder made for the outputs is removed again). The last name in ``names``
    is moved last, so its presence marks a complete set. Operating-system errors
    become :class:`OutputError` (with the ``errno``).
    """
    out_dir = Path(out_dir)
    check_writable(out_dir, names, overwrite=overwrite)
    created: list[Path] = []
    stage = None
    try:
        created = _make_folder(out_dir)
        stage = Path(tempfile.mkdtemp(prefix=".hemiface-staging-", dir=out_dir))
        yield stage
        missing = [n for n in names if not (stage / n).is_file()]
        if missing:
            raise RuntimeError(f"internal error: outputs not produced: {missing}")
        check_writable(out_dir, names, overwrite=overwrite)
        for name in names:
            os.replace(stage / name, out_dir / name)
            logger.info("wrote %s", out_dir / name)
        created = []
    except OutputError:
        raise
    except OSError as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise _os_error(out_dir, exc) from None
    except ValueError as exc:
        if "embedded null" in str(exc):
            raise OutputError(f"{out_dir!r}: a path cannot contain a NUL byte") from None
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
