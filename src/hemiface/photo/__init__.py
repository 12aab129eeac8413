"""2D photogrammetric facial symmetry from frontal photographs.

Public entry points: :func:`analyze_photo` (returns a frozen :class:`PhotoAnalysis`),
:func:`read_photo`, :func:`read_landmarks`. Sides are the patient's: in a frontal
photograph the patient's left is on the image's right.
"""

from ._analyze import OUTPUT_NAMES, PhotoAnalysis, analyze_photo
from ._errors import PhotoError
from ._io import Photo, photo_from_array, read_photo
from ._landmarks import FaceLandmarks, read_landmarks

__all__ = [
    "FaceLandmarks", "OUTPUT_NAMES", "Photo", "PhotoAnalysis", "PhotoError", "analyze_photo",
    "photo_from_array", "read_landmarks", "read_photo",
]
