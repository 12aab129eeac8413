"""What a path named in a spreadsheet is, before anything reads it: regular file, folder, device, FIFO.

A FIFO or a device is never opened (a FIFO blocks, ``/dev/zero`` never ends);
a media file's first bytes must carry the signature of its kind (an image for a
photo, a mesh format for a scan), so that ``/etc/passwd`` or
``/proc/self/environ`` is refused at import, not at ``study run``.
Messages name what the path *is*, never the folder it is in.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .._outputs import file_kind

#: Bytes read from a media file to recognise its format.
_SNIFF_BYTES = 4096
_PHOTO_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_OBJ_KEYWORDS = {b"v", b"vt", b"vn", b"vp", b"f", b"o", b"g", b"s", b"l", b"p", b"mtllib", b"usemtl", b"#"}
SCAN_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb")


def path_problem(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a regular file; else what it is, in words ("is a FIFO (named pipe)", "is missing")."""
    try:
        st = os.stat(path)
    except ValueError:
        return "contains a NUL byte; a file name cannot"
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "has a name too long for the file system"
        if exc.errno == errno.ELOOP:
            return "is a symbolic link that loops"
        if exc.errno == errno.ENOTDIR:
            return "is missing (a part of its path is not a folder)"
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return f"is {file_kind(st.st_mode)}, not a regular file"
    return None


def _head(path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, _SNIFF_BYTES)
    finally:
        os.close(fd)


def media_type_problem(path: str | os.PathLike, kind: str) -> str | None:
    """None when the regular file ``path`` starts like a photo (JPEG, PNG, TIFF, BMP) or a scan (OBJ, PLY, STL, OFF, GLB)."""
    try:
        head = _head(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty"
    if kind == "photo":
        if any(head.startswith(sig) for sig, _name in _PHOTO_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return None
        return "is not an image: its first bytes are not those of a JPEG, PNG or TIFF file"
    suffix = Path(path).suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        return f"is not a scan format hemiface reads ({', '.join(SCAN_SUFFIXES)})"
    what = f"is not a {suffix[1:].upper()} mesh: its first bytes do not fit the format"
    if suffix == ".ply":
        return None if head.startswith(b"ply") else what
    if suffix == ".glb":
        return None if head.startswith(b"glTF") else what
    if suffix == ".off":
        first = head.lstrip().split(b"\n", 1)[0]
        return None if b"OFF" in first[:8] else what
    if suffix == ".stl":
        if head.lstrip().lower().startswith(b"solid"):
            return None
        if len(head) >= 84:
            n = int.from_bytes(head[80:84], "little")
            if os.stat(path).st_size == 84 + 50 * n:
                return None
        return what
    # OBJ: text whose first statement is an OBJ keyword
    head = head.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in head:
        return what
    for line in head.splitlines()[:-1] or head.splitlines():
        word = line.strip().split(b" ", 1)[0].split(b"\t", 1)[0]
        if not word:
            continue
        if word.startswith(b"#"):
            continue
        return None if word in _OBJ_KEYWORDS else what
    return None if head.lstrip().startswith(b"#") else what
