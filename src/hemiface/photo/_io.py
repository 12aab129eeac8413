"""Reading photographs: JPEG, PNG, TIFF (and anything else Pillow reads), EXIF orientation applied."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import logger
from .._errors import InputFileError


@dataclass(frozen=True, eq=False)
class Photo:
    """A photograph as displayed: ``rgb`` is (height, width, 3) uint8 with EXIF orientation applied.

    Pixel coordinates used throughout :mod:`hemiface.photo` are continuous: x to
    the right, y down, origin at the top-left corner of the top-left pixel, so
    pixel (column i, row j) covers [i, i+1] x [j, j+1] and its centre is (i+0.5, j+0.5).
    """

    rgb: np.ndarray = field(repr=False)
    name: str
    sha256: str | None
    exif_transposed: bool = False

    @property
    def width_px(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.rgb.shape[0])


def _to_rgb8(image) -> np.ndarray:
    """Any Pillow image -> uint8 RGB array (16-bit and float images scaled to their range)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


#: Photos with more pixels than this are refused before they are decoded (a 50 MP image takes about 1 GB to
#: analyse; a few kilobytes of PNG can claim billions of pixels).
MAX_PHOTO_PIXELS = 50_000_000


def check_pixels(size: tuple[int, int], name: str) -> None:
    """Refuse an image of more than :data:`MAX_PHOTO_PIXELS` pixels (from its header, before decoding)."""
    width, height = size
    if width * height > MAX_PHOTO_PIXELS:
        raise InputFileError(f"{name}: {width} x {height} pixels ({width * height / 1e6:.0f} megapixels) is more than "
                             f"the {MAX_PHOTO_PIXELS / 1e6:.0f} megapixel limit; export a smaller image")


def read_photo(path: str | os.PathLike) -> Photo:
    """Read a photograph and apply its EXIF orientation (phone photos are often stored sideways).

    Raises
    ------
    InputFileError
        The file is missing, is not an image Pillow can decode, or is truncated.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    if path.suffix.lower() in (".heic", ".heif"):
        raise InputFileError(f"{path.name}: HEIC is not supported; export the photo as JPEG or PNG")
    try:
        data = path.read_bytes()  # decoded and hashed from the same bytes: the SHA-256 is of what was analysed
    except OSError as exc:
        raise InputFileError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():  # Pillow's own warning: check_pixels refuses with one line instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            check_pixels(image.size, path.name)
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb8(upright)
    except InputFileError:
        raise
    except UnidentifiedImageError:
        raise InputFileError(f"{path.name}: not an image file hemiface can read (JPEG, PNG, TIFF)") from None
    except Image.DecompressionBombError:
        raise InputFileError(f"{path.name}: the image is larger than the {MAX_PHOTO_PIXELS / 1e6:.0f} megapixel limit") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFileError(f"{path.name}: unreadable or truncated image ({exc})") from None
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 32:
        raise InputFileError(f"{path.name}: image is too small ({rgb.shape[1]}x{rgb.shape[0]} px)")
    if orientation not in (None, 1):
        logger.info("%s: applied EXIF orientation %s", path.name, orientation)
    return Photo(np.ascontiguousarray(rgb), path.name, hashlib.sha256(data).hexdigest(), exif_transposed=orientation not in (None, 1))


def photo_from_array(rgb, *, name: str = "array") -> Photo:
    """Wrap an in-memory image ((h, w, 3) or (h, w) uint8) as a :class:`Photo` (no file, no hash)."""
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise InputFileError(f"{name}: expected an (h, w, 3) uint8 image; got shape {arr.shape} {arr.dtype}")
    return Photo(np.ascontiguousarray(arr[:, :, :3]), name, None)
