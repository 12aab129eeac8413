"""Choosing a scan's face frame (landmarks, detected landmarks, or as given) and its working surface."""

from __future__ import annotations

from .. import logger
from ._frame import FaceFrame, default_frame, frame_from_landmarks
from ._io import SurfaceScan
from ._landmarks3d import detect_landmarks
from ._mesh import vertex_normals
from ._region import FaceRegion
from ._surface import PreparedSurface, surface_in_frame


def choose_frame(scan: SurfaceScan, landmarks, orient: str = "canonical") -> tuple[FaceFrame, dict | None]:
    """Frame from the landmarks, from detected landmarks when ``orient == "auto"``, or the scan as given.

    Returns the frame and the landmarks it came from (scan frame, mm; None for the scan as given).
    """
    v_scan, faces = scan.vertices_mm, scan.faces
    if landmarks:
        return frame_from_landmarks(landmarks, v_scan, vertex_normals(v_scan, faces)), dict(landmarks)
    if orient == "auto":
        found = detect_landmarks(scan)
        if found.low_confidence:  # geometric fallback: pronasale and the mirror plane only
            logger.warning("%s: no face found in the renders; the frame comes from the geometric fallback "
                           "(nose-like protrusion and mirror plane, low confidence): check the result or give "
                           "--landmarks", scan.source_name)
            return FaceFrame(found.frame.rotation, found.frame.origin_mm,
                             "detected (geometric fallback, low confidence)"), None
        frame = frame_from_landmarks(found.points_mm, v_scan, vertex_normals(v_scan, faces))
        return FaceFrame(frame.rotation, frame.origin_mm, "detected", frame.landmarks_mm), dict(found.points_mm)
    return default_frame(v_scan, faces), None


def prepare_surface(scan: SurfaceScan, landmarks, region: FaceRegion, orient: str = "canonical") -> PreparedSurface:
    """Frame (see :func:`choose_frame`), outward winding, and the cropped, refined working surface."""
    frame, used = choose_frame(scan, landmarks, orient)
    return surface_in_frame(scan, frame, region, used)
