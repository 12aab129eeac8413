"""3D surface scans: loading, symmetry plane, depth maps and defect volumetry.

Public entry points: :func:`analyze_scan` (returns a frozen :class:`ScanAnalysis`),
:func:`compare_scans` (a frozen :class:`ScanComparison`),
:func:`load_scan`, :func:`read_landmarks`, :class:`FaceRegion`,
:func:`detect_landmarks` and :func:`canonical_frame` (automatic landmarks and frame),
:func:`read_analysis` (an analysis folder read back, for planning: :class:`SavedAnalysis`, its
:class:`Patch` of depth and :func:`defect_solid`),
:data:`ZONE_NAMES` (the aesthetic zones the defect is split into, see :mod:`._zones`),
:func:`map_view` (a depth or gain map with its outline, for a 3D viewer) and :func:`display_mesh`.
"""

from ._analyze import ScanAnalysis, analyze_scan
from ._compare import ScanComparison, compare_scans
from ._defect import DefectMeasure, Patch
from ._frame import LANDMARK_NAMES, FaceFrame, read_landmarks
from ._io import MM_PER_UNIT, SurfaceScan, load_scan, scan_from_arrays
from ._landmarks3d import DetectedLandmarks, FaceNotFoundError, canonical_frame, detect_landmarks
from ._landmarks3d_outputs import LANDMARK_OUTPUT_NAMES, write_landmarks
from ._outputs import COMPARE_OUTPUT_NAMES, OUTPUT_NAMES, write_comparison, write_outputs
from ._region import FaceRegion
from ._saved import SavedAnalysis, read_analysis, read_measurements
from ._solid import defect_solid
from ._view import DISPLAY_MAX_VERTICES, DisplayMesh, MapView, display_mesh, map_view
from ._zones import ZONE_NAMES, ZoneLayout, ZoneMeasure

__all__ = [
    "COMPARE_OUTPUT_NAMES", "DefectMeasure", "DetectedLandmarks", "FaceNotFoundError", "LANDMARK_OUTPUT_NAMES", "FaceFrame", "FaceRegion", "LANDMARK_NAMES", "OUTPUT_NAMES",
    "ScanAnalysis", "ScanComparison", "SurfaceScan", "analyze_scan", "canonical_frame", "compare_scans", "detect_landmarks", "load_scan",
    "read_landmarks", "scan_from_arrays", "write_comparison", "write_landmarks", "write_outputs",
    "Patch", "SavedAnalysis", "defect_solid", "read_analysis", "read_measurements",
    "ZONE_NAMES", "ZoneLayout", "ZoneMeasure",
    "DISPLAY_MAX_VERTICES", "DisplayMesh", "MM_PER_UNIT", "MapView", "display_mesh", "map_view",
]
