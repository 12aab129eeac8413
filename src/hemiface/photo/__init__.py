"""2D photogrammetric facial symmetry from frontal photographs.

Public entry points: :func:`analyze_photo` (returns a frozen :class:`PhotoAnalysis`),
:func:`compare_photos` (two visits, returns a :class:`PhotoComparison`),
:func:`read_photo`, :func:`read_landmarks`. Sides are the patient's: in a frontal
photograph the patient's left is on the image's right.
"""

from ._analyze import OUTPUT_NAMES, PhotoAnalysis, analyze_photo
from ._compare import COMPARE_OUTPUT_NAMES, MAX_POSE_DIFFERENCE_DEG, PhotoComparison, compare_photos, pose_agreement
from ._errors import PhotoError
from ._io import Photo, photo_from_array, read_photo
from ._landmarks import FaceLandmarks, read_landmarks

__all__ = [
    "COMPARE_OUTPUT_NAMES", "FaceLandmarks", "MAX_POSE_DIFFERENCE_DEG", "OUTPUT_NAMES", "Photo", "PhotoAnalysis", "PhotoComparison",
    "PhotoError", "analyze_photo", "compare_photos", "photo_from_array", "pose_agreement", "read_landmarks",
    "read_photo",
]
