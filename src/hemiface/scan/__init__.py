"""3D surface scans: loading, symmetry plane, depth maps and defect volumetry.

Public entry points: :func:`analyze_scan` (returns a frozen :class:`ScanAnalysis`),
:func:`compare_scans` (a frozen :class:`ScanComparison`),
:func:`load_scan`, :func:`read_landmarks`, :class:`FaceRegion`.
"""

from ._analyze import ScanAnalysis, analyze_scan
from ._compare import ScanComparison, compare_scans
from ._defect import DefectMeasure
from ._frame import LANDMARK_NAMES, FaceFrame, read_landmarks
from ._io import SurfaceScan, load_scan, scan_from_arrays
from ._outputs import COMPARE_OUTPUT_NAMES, OUTPUT_NAMES, write_comparison, write_outputs
from ._region import FaceRegion

__all__ = [
    "COMPARE_OUTPUT_NAMES", "DefectMeasure", "FaceFrame", "FaceRegion", "LANDMARK_NAMES", "OUTPUT_NAMES",
    "ScanAnalysis", "ScanComparison", "SurfaceScan", "analyze_scan", "compare_scans", "load_scan",
    "read_landmarks", "scan_from_arrays", "write_comparison", "write_outputs",
]
