"""3D surface scans: loading, symmetry plane, depth maps and defect volumetry.

Public entry points: :func:`analyze_scan` (returns a frozen :class:`ScanAnalysis`),
:func:`load_scan`, :func:`read_landmarks`, :class:`FaceRegion`.
"""

from ._analyze import ScanAnalysis, analyze_scan
from ._defect import DefectMeasure
from ._frame import LANDMARK_NAMES, FaceFrame, read_landmarks
from ._io import SurfaceScan, load_scan, scan_from_arrays
from ._outputs import OUTPUT_NAMES, write_outputs
from ._region import FaceRegion

__all__ = [
    "DefectMeasure", "FaceFrame", "FaceRegion", "LANDMARK_NAMES", "OUTPUT_NAMES", "ScanAnalysis",
    "SurfaceScan", "analyze_scan", "load_scan", "read_landmarks", "scan_from_arrays", "write_outputs",
]
