"""Staging folders in a folder that several processes write: each is its maker's until it is gone.

A `study run` (and its Dask workers), a landmark correction (from the command line or the
browser workspace) and an import put their files together in a staging folder, renamed into
place when complete. A process killed mid-way leaves its staging folder behind, for a later
process to remove: but only one that is abandoned. Each staging folder has a lock file beside
it, ``<folder>.lock``, which its maker holds (``flock``) from before the folder exists until
after it is gone (renamed or removed), so nobody removes another process's live work. (Before,
a `study run` starting or ending while a correction analysed its photo removed the correction's
folder, and the correction was recorded as failed.) The lock is released when its process
ends, however it ends; on NFS, Linux maps ``flock`` to the server's byte-range locks, so it
also holds between the machines of a Dask cluster.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from .. import logger

LOCK_SUFFIX = ".lock"


class Staging:
    """A live staging folder (:attr:`path`); :meth:`release` it once its files are in place (or abandoned)."""

    def __init__(self, path: Path, lock_file):
        self.path = path
        self._lock_file = lock_file

    def release(self) -> None:
        """Remove the folder if it is still there, then its lock file, and let go of the lock."""
        if self._lock_file is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            os.unlink(str(self.path) + LOCK_SUFFIX)
        except OSError:
            pass
        self._lock_file.close()
        self._lock_file = None

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _still_named(lock_file, path: str) -> bool:
    """Whether ``path`` is still the file ``lock_file`` has open (a cleaner may have removed it meanwhile)."""
    try:
        here, there = os.fstat(lock_file.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def make_staging(parent: Path, prefix: str) -> Staging:
    """A new, empty staging folder ``<parent>/<prefix>XXXXXXXX`` that this process holds until :meth:`Staging.release`.

    Raises OSError when ``parent`` cannot be written (full, read-only).
    """
    while True:
        fd, lock = tempfile.mkstemp(prefix=prefix, suffix=LOCK_SUFFIX, dir=parent)
        lock_file = os.fdopen(fd, "w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            # between mkstemp and flock a cleaner may have taken the lock, found it free and removed the
            # file: then this lock is on nothing, and another name is drawn
            if _still_named(lock_file, lock):
                folder = Path(lock[: -len(LOCK_SUFFIX)])
                try:
                    folder.mkdir()
                except FileExistsError:  # an abandoned folder of that name (an older hemiface's): another name
                    os.unlink(lock)
                else:
                    return Staging(folder, lock_file)
        except BaseException:
            lock_file.close()
            raise
        lock_file.close()


def remove_abandoned(parent: Path, prefix: str) -> int:
    """Remove the staging folders ``<parent>/<prefix>*`` whose maker is gone (nobody holds their lock); how many.

    A live one (its lock held) is left alone, and so is anything that cannot be removed.
    """
    try:
        entries = list(parent.glob(prefix + "*"))
    except OSError:
        return 0
    folders = {Path(str(e)[: -len(LOCK_SUFFIX)]) if e.name.endswith(LOCK_SUFFIX) else e for e in entries}
    removed = 0
    for folder in sorted(folders):
        lock = str(folder) + LOCK_SUFFIX
        try:
            fd = os.open(lock, os.O_RDWR)  # never created here: a folder without its lock file has no maker
        except FileNotFoundError:
            fd = None
        except OSError as exc:
            logger.debug("staging folder left: %s", exc.strerror or exc)
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its maker is at work
            if folder.is_dir():
                shutil.rmtree(folder)
                removed += 1
            if fd is not None:
                os.unlink(lock)
        except BlockingIOError:
            continue
        except OSError as exc:
            logger.debug("staging folder left: %s", exc.strerror or exc)
        finally:
            if fd is not None:
                os.close(fd)
    return removed
