"""The per-visit working surface that ``analyze_scan`` and ``compare_scans`` share.

A scan in its canonical face frame (x toward the patient's left, y up, z anterior,
origin at pronasale; mm) is cropped generously around the face, reduced to the
piece that holds pronasale and refined so that no mean edge exceeds
:data:`MAX_EDGE_MM`. The depth map (:func:`depth_patch`) compares it with its own
mirror image in a symmetry frame (:class:`hemiface.scan._plane.SymmetryFrame`).

Sign convention: depth > 0 where the surface lies below (inside) its mirror image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
from scipy.spatial import cKDTree

from .. import logger
from .._errors import RegionError
from ._defect import Patch, find_defects
from ._peak import RawDepth
from ._distance import SurfaceQuery
from ._frame import FaceFrame, read_landmarks
from ._holes import close_small_holes
from ._io import SurfaceScan, load_scan
from ._mesh import (
    boundary_edges, boundary_points, hole_edges, refine_to_edge_length, smooth_vertex_field, submesh,
    vertex_components, vertex_normals,
)
from ._region import FaceRegion

Side = Literal["left", "right"]
#: Mirror pairs farther apart than this are not the same skin (hair, gross scan error).
MAX_PAIR_DEPTH_MM = 30.0
#: Coarser scans are subdivided (linearly: the surface is unchanged) until no mean edge
#: exceeds this, so that depth is sampled finely enough to integrate.
MAX_EDGE_MM = 1.5


def _largest_component_faces(n_vertices, faces, seed_vertex=None) -> np.ndarray:
    n, labels = vertex_components(n_vertices, faces)
    face_label = labels[faces[:, 0]]
    if seed_vertex is not None:
        keep = labels[seed_vertex]
    else:
        keep = np.bincount(face_label, minlength=n).argmax()
    return face_label == keep


def _orient_outward(vertices, faces):
    """Flip the winding when normals point into the head (anterior must be +z near pronasale)."""
    near = np.linalg.norm(vertices, axis=1) < 60.0
    if near.any() and vertex_normals(vertices, faces)[near, 2].sum() < 0:
        logger.info("scan normals point inward; flipped the triangle winding")
        return faces[:, ::-1].copy()
    return faces


def away_from_border(border_tree, points: np.ndarray, margin_mm: float) -> np.ndarray:
    """True for points at least ``margin_mm`` from the border points in ``border_tree`` (all, without a border)."""
    if border_tree is None or margin_mm <= 0:
        return np.ones(len(points), bool)
    return border_tree.query(points, distance_upper_bound=margin_mm)[0] > margin_mm


def border_tree_of(vertices: np.ndarray, faces: np.ndarray, edges=None):
    """KD-tree of points along a surface's open borders and holes, or None for a closed surface
    (``edges``: the surface's :func:`boundary_edges`, when already found)."""
    border = boundary_points(vertices, faces, edges=edges)
    return cKDTree(border) if len(border) else None


def measure_sides(patch: Patch, *, floor_mm: float, threshold_mm: float, raw: Patch | None = None):
    """Both hemifaces of a depth patch (symmetry frame), their defects and defect volumes.

    ``raw``: the same patch with the unsmoothed depth, on which each defect's peak depth is measured.
    """
    halves = {"left": patch.clip(patch.vertices[:, 0]), "right": patch.clip(-patch.vertices[:, 0])}
    samples = RawDepth(raw) if raw is not None else None
    defects = {s: find_defects(h, floor_mm=floor_mm, threshold_mm=threshold_mm, raw=samples) for s, h in halves.items()}
    volume = {s: float(sum(m.volume_mm3 for _, m in d)) for s, d in defects.items()}
    return halves, defects, volume


def choose_side(affected: str, defect_volume: Mapping[str, float]) -> Side:
    """The given side, or for "auto" the side with the larger defect volume."""
    if affected != "auto":
        return affected
    return "left" if defect_volume["left"] >= defect_volume["right"] else "right"


def _working_surface(v, faces, region: FaceRegion, source_name: str):
    """Crop generously around the face (canonical frame), keep the piece holding pronasale, refine.

    Returns the surface, a KD-tree of its open borders (or None), the mask
    of vertices at least ``region.border_margin_mm`` from them, the small holes
    closed (count, area in mm2; see :class:`FaceRegion`) and the border edges of
    the holes left open.
    """
    crop = (region.ellipse_margin(v, scale=region.registration_scale) > 0) & (region.depth_margin(v, extra_mm=25.0) > 0)
    face_in_crop = crop[faces].all(axis=1)
    if not face_in_crop.any():
        raise RegionError(f"{source_name}: no surface near the face region; check orientation or --landmarks")
    v, faces, _, _ = submesh(v, faces, face_in_crop)
    tip = int(np.argmin(np.linalg.norm(v, axis=1)))
    v, faces, _, _ = submesh(v, faces, _largest_component_faces(len(v), faces, seed_vertex=tip))
    v, faces, n_holes, hole_area = close_small_holes(v, faces, region.hole_fill_radius_mm)
    if n_holes:
        logger.info("closed %d small holes of the scan (%.0f mm2 in all; radius limit %g mm)", n_holes, hole_area,
                    region.hole_fill_radius_mm)
    v, faces = refine_to_edge_length(v, faces, MAX_EDGE_MM)
    edges = boundary_edges(faces)
    tree = border_tree_of(v, faces, edges)
    return v, faces, tree, away_from_border(tree, v, region.border_margin_mm), (n_holes, hole_area), hole_edges(v, edges)


def depth_patch(p, faces, sym, border_tree, away, region: FaceRegion, smoothing_mm, source_name, *, with_raw=False):
    """The face region (symmetry frame) with each point's depth below the mirrored surface.

    depth > 0 when the point lies inside (below) the mirror image of the face.
    A point counts only when it and its mirror partner lie on measured skin,
    away from the scan's borders. With ``with_raw``, also the same patch with the
    unsmoothed depth (for the peak depths and the smoothing's share of the uncertainty): (patch, raw).
    """
    mirror = np.array([-1.0, 1.0, 1.0])
    cp = SurfaceQuery(p * mirror, faces[:, ::-1]).closest(p)
    depth = -cp.signed_distance_mm
    # The mirrored surface's border is the reflection of the original's (the tree is in the canonical frame).
    partner = sym.inverse(cp.points * mirror)
    valid = away & (np.abs(depth) < MAX_PAIR_DEPTH_MM) & away_from_border(border_tree, partner, region.border_margin_mm)
    pv, pf, attrs, _ = submesh(p, faces, valid[faces].all(axis=1), {"depth": depth, "top": cp.points})
    if len(pf) == 0:
        raise RegionError(f"{source_name}: no part of the face has a measurable mirror partner; check orientation or --landmarks")
    # Scanner noise: smooth depth and the offset to the mirrored surface together.
    field = smooth_vertex_field(pv, pf, np.column_stack([attrs["depth"], attrs["top"] - pv]), smoothing_mm)
    patch = _clip_to_region(Patch(pv, pf, field[:, 0], pv + field[:, 1:]), region)
    if with_raw:
        return patch, _clip_to_region(Patch(pv, pf, attrs["depth"], attrs["top"]), region)
    return patch


def _clip_to_region(patch: Patch, region: FaceRegion) -> Patch:
    patch = patch.clip(region.ellipse_margin(patch.vertices))
    patch = patch.clip(region.depth_margin(patch.vertices))
    if len(patch.faces):
        tip = int(np.argmin(np.linalg.norm(patch.vertices[:, 1:], axis=1) + np.abs(patch.vertices[:, 0])))
        keep = _largest_component_faces(len(patch.vertices), patch.faces, seed_vertex=tip)
        v2, f2, a2, _ = submesh(patch.vertices, patch.faces, keep, {"d": patch.depth_mm, "t": patch.top})
        patch = Patch(v2, f2, a2["d"], a2["t"])
    return patch


@dataclass(frozen=True, eq=False)
class PreparedSurface:
    """A scan's working surface in its canonical face frame (mm), with its borders."""

    scan: SurfaceScan
    frame: FaceFrame
    vertices: np.ndarray
    faces: np.ndarray
    border_tree: object  # cKDTree of border points, or None
    away_from_border: np.ndarray
    #: The landmarks the frame came from (given or detected; scan frame, mm), or None.
    landmarks_mm: Mapping[str, np.ndarray] | None = None
    #: The scan's small holes closed in the working surface: their number and area (mm2).
    holes_closed: tuple[int, float] = (0, 0.0)
    #: (k, 2) border edges of the holes left open (not the scan's own open border), into ``vertices``.
    open_hole_edges: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64), repr=False)

    def holes_dict(self) -> dict:
        """The closed holes as recorded in a result's parameters."""
        return {"count": int(self.holes_closed[0]), "area_mm2": round(float(self.holes_closed[1]), 1)}


def load_inputs(scan, units, landmarks):
    """Load the scan (unless given) and the landmarks (mm). Returns (scan, landmarks, landmark file)."""
    if not isinstance(scan, SurfaceScan):
        scan = load_scan(scan, units=units)
    landmark_file = None
    if landmarks is not None and not isinstance(landmarks, Mapping):
        landmark_file = Path(landmarks)
        landmarks = read_landmarks(landmark_file, units=scan.units)
    return scan, landmarks, landmark_file


def surface_in_frame(scan: SurfaceScan, frame: FaceFrame, region: FaceRegion, landmarks=None) -> PreparedSurface:
    """The scan in ``frame``'s canonical coordinates, wound outward, cropped and refined.

    ``landmarks`` (scan frame, mm): those the frame came from, kept for what is placed from them.
    """
    v = frame.to_canonical(scan.vertices_mm)
    faces = _orient_outward(v, scan.faces)
    v, faces, border_tree, away, closed, open_holes = _working_surface(v, faces, region, scan.source_name)
    return PreparedSurface(scan, frame, v, faces, border_tree, away, landmarks or None, closed, open_holes)
