"""De-identified copies of media for `hemiface study import --deidentify`.

Photos are decoded, turned upright by their EXIF orientation and written again
with no metadata at all (no EXIF, GPS, XMP, ICC profile, comments): JPEG stays
JPEG (quality 95, 4:4:4), anything else becomes PNG (lossless). Scans are read
and written again as binary PLY with only vertices, faces and vertex colours
(a texture image is baked into vertex colours), which drops file headers,
comments, material and texture file names. The copies are named
``<pseudonym>_<visit date>_<kind>_<content hash>.<ext>``, so nothing of the
original file name survives, and the same original always gives the same copy.
The originals are never modified.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from .._errors import InputFileError

MEDIA_DIR = "media"


def deidentified_bytes(path: Path, kind: str) -> tuple[bytes, str]:
    """The de-identified content of a photo or scan, and its file extension."""
    if kind == "photo":
        return _photo(path)
    return _scan(path)


def _photo(path: Path) -> tuple[bytes, str]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ..photo._io import check_pixels

    try:
        with warnings.catch_warnings():  # Pillow's own warning: check_pixels refuses with one line instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            check_pixels(image.size, path.name)
            is_jpeg = image.format == "JPEG"
            upright = ImageOps.exif_transpose(image)
            upright.load()
    except Image.DecompressionBombError:
        from ..photo._io import MAX_PHOTO_PIXELS

        raise InputFileError(f"{path.name}: the image is larger than the {MAX_PHOTO_PIXELS / 1e6:.0f} megapixel "
                             "limit") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise InputFileError(f"{path.name}: cannot read the photo: {exc}") from None
    mode = "RGB" if upright.mode not in ("RGB", "L", "RGBA", "I;16") else upright.mode
    clean = Image.new(mode, upright.size)
    clean.paste(upright.convert(mode) if upright.mode != mode else upright)  # pixels only: no info dict
    buf = io.BytesIO()
    if is_jpeg and mode in ("RGB", "L"):
        clean.save(buf, format="JPEG", quality=95, subsampling=0, optimize=False)
        return buf.getvalue(), ".jpg"
    clean.save(buf, format="PNG", optimize=False)
    return buf.getvalue(), ".png"


def _scan(path: Path) -> tuple[bytes, str]:
    import trimesh

    from ..scan._io import load_scan

    load_scan(path, face_sized=False)  # the limits and checks of `study run` (size, vertices, degenerate faces)
    try:
        loaded = trimesh.load(path, process=False, force="mesh")
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types for unreadable files
        raise InputFileError(f"{path.name}: cannot read the scan: {exc}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputFileError(f"{path.name}: no triangle mesh in the file")
    colours = None
    visual = loaded.visual
    try:
        if visual.kind == "texture":
            colours = visual.to_color().vertex_colors
        elif visual.kind in ("vertex", "face"):
            colours = visual.vertex_colors
    except Exception:  # noqa: BLE001 - a texture that cannot be baked leaves the geometry only
        colours = None
    mesh = trimesh.Trimesh(np.asarray(loaded.vertices), np.asarray(loaded.faces), process=False)
    if colours is not None and len(colours) == len(mesh.vertices):
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.asarray(colours))
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=False, include_attributes=False)
    return _strip_ply_comments(data), ".ply"


def _strip_ply_comments(data: bytes) -> bytes:
    """Remove ``comment`` lines (trimesh writes its URL; nothing else should be there) from a PLY header."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = b"".join(line + b"\n" for line in data[:end].split(b"\n")[:-1] if not line.startswith(b"comment"))
    return header + data[end:]


def copy_name(pseudonym: str, visit_date: str, kind: str, sha256: str, ext: str) -> str:
    """The copy's file name: pseudonym, visit date, kind and the start of the copy's own SHA-256."""
    return f"{pseudonym}_{visit_date}_{kind}_{sha256[:12]}{ext}"
