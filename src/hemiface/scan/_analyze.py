"""``analyze_scan``: soft-tissue defect and hemiface discrepancy from one 3D surface scan."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
from scipy.spatial import cKDTree

from .. import logger
from .._errors import RegionError
from .._provenance import provenance
from .._validate import check_option, check_positive
from ._defect import DefectMeasure, Patch, find_defects, merge_patches
from ._distance import SurfaceQuery
from ._frame import FaceFrame, default_frame, frame_from_landmarks, read_landmarks
from ._io import SurfaceScan, load_scan
from ._mesh import (
    boundary_points, column_volume_mm3, refine_to_edge_length, smooth_vertex_field, submesh, vertex_components,
    vertex_normals,
)
from ._region import FaceRegion
from ._solid import defect_solid
from ._symmetry import SymmetryPlane, fit_symmetry_plane_masked, sample_surface

Side = Literal["left", "right"]
#: Mirror pairs farther apart than this are not the same skin (hair, gross scan error).
MAX_PAIR_DEPTH_MM = 30.0
#: Spacing of the surface points registered to find the symmetry plane.
SAMPLE_CELL_MM = 2.0
#: Coarser scans are subdivided (linearly: the surface is unchanged) until no mean edge
#: exceeds this, so that depth is sampled finely enough to integrate.
MAX_EDGE_MM = 1.5


@dataclass(frozen=True, eq=False)
class ScanAnalysis:
    """Result of :func:`analyze_scan`. Lengths mm, areas mm2, volumes mm3; sides are the patient's.

    ``depth_mm`` > 0 means the affected surface lies below the mirrored
    unaffected surface. ``volumetric_discrepancy_mm3`` > 0 means the affected
    hemiface has less volume than the unaffected one.
    """

    affected_side: Side
    affected_side_chosen_by: Literal["user", "auto"]
    defect_volume_mm3: float
    max_depth_mm: float
    defect_area_mm2: float
    area_deeper_than_threshold_mm2: float
    threshold_mm: float
    floor_mm: float
    defects: tuple[DefectMeasure, ...]
    defect_volume_by_side_mm3: Mapping[str, float]
    volumetric_discrepancy_mm3: float
    volumetric_discrepancy_percent: float
    affected_hemiface_volume_mm3: float
    unaffected_hemiface_volume_mm3: float
    region_area_mm2: float
    symmetry_plane_normal: tuple[float, float, float]
    symmetry_plane_point_mm: tuple[float, float, float]
    plane_fit_rms_mm: float
    plane_fit_inlier_fraction: float
    plane_fit_converged: bool
    frame_source: str
    provenance: dict
    # Geometry for the outputs (scan frame, mm) and the render (symmetry frame).
    depth_vertices_mm: np.ndarray = field(repr=False)
    depth_faces: np.ndarray = field(repr=False)
    depth_values_mm: np.ndarray = field(repr=False)
    defect_solid_vertices_mm: np.ndarray = field(repr=False)
    defect_solid_faces: np.ndarray = field(repr=False)
    render_vertices: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """Flat, JSON-ready measurements with provenance (what ``measurements.json`` holds)."""
        return {
            "affected_side": self.affected_side,
            "affected_side_chosen_by": self.affected_side_chosen_by,
            "defect_volume_mm3": self.defect_volume_mm3,
            "max_depth_mm": self.max_depth_mm,
            "defect_area_mm2": self.defect_area_mm2,
            "area_deeper_than_threshold_mm2": self.area_deeper_than_threshold_mm2,
            "threshold_mm": self.threshold_mm,
            "floor_mm": self.floor_mm,
            "defect_count": len(self.defects),
            "defects": [d.to_dict() for d in self.defects],
            "defect_volume_left_mm3": self.defect_volume_by_side_mm3["left"],
            "defect_volume_right_mm3": self.defect_volume_by_side_mm3["right"],
            "volumetric_discrepancy_mm3": self.volumetric_discrepancy_mm3,
            "volumetric_discrepancy_percent": self.volumetric_discrepancy_percent,
            "affected_hemiface_volume_mm3": self.affected_hemiface_volume_mm3,
            "unaffected_hemiface_volume_mm3": self.unaffected_hemiface_volume_mm3,
            "region_area_mm2": self.region_area_mm2,
            "symmetry_plane": {"normal": list(self.symmetry_plane_normal), "point": list(self.symmetry_plane_point_mm)},
            "plane_fit_rms_mm": self.plane_fit_rms_mm,
            "plane_fit_inlier_fraction": self.plane_fit_inlier_fraction,
            "plane_fit_converged": self.plane_fit_converged,
            "frame_source": self.frame_source,
            "coordinates": "scan's own frame, millimetres",
            "provenance": self.provenance,
        }

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write measurements.json, depth_map.ply, depth_map.png and defect.stl (see :func:`write_outputs`)."""
        from ._outputs import write_outputs

        return write_outputs(self, out_dir, overwrite=overwrite)


@dataclass(frozen=True)
class SymmetryFrame:
    """Canonical frame -> symmetry frame (x across the plane toward the left, y up, origin on the plane)."""

    rotation: np.ndarray
    origin: np.ndarray

    @classmethod
    def from_plane(cls, plane: SymmetryPlane) -> "SymmetryFrame":
        x = plane.normal
        y = np.array([0.0, 1.0, 0.0]) - x[1] * x
        y /= np.linalg.norm(y)
        return cls(np.stack([x, y, np.cross(x, y)]), plane.offset_mm * x)

    def forward(self, p):
        return (np.asarray(p) - self.origin) @ self.rotation.T

    def inverse(self, p):
        return np.asarray(p) @ self.rotation + self.origin


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


def border_tree_of(vertices: np.ndarray, faces: np.ndarray):
    """KD-tree of points along a surface's open borders and holes, or None for a closed surface."""
    border = boundary_points(vertices, faces)
    return cKDTree(border) if len(border) else None


def measure_sides(patch: Patch, *, floor_mm: float, threshold_mm: float):
    """Both hemifaces of a depth patch (symmetry frame), their defects and defect volumes."""
    halves = {"left": patch.clip(patch.vertices[:, 0]), "right": patch.clip(-patch.vertices[:, 0])}
    defects = {s: find_defects(h, floor_mm=floor_mm, threshold_mm=threshold_mm) for s, h in halves.items()}
    volume = {s: float(sum(m.volume_mm3 for _, m in d)) for s, d in defects.items()}
    return halves, defects, volume


def choose_side(affected: str, defect_volume: Mapping[str, float]) -> Side:
    """The given side, or for "auto" the side with the larger defect volume."""
    if affected != "auto":
        return affected
    return "left" if defect_volume["left"] >= defect_volume["right"] else "right"


def _working_surface(v, faces, region: FaceRegion, source_name: str):
    """Crop generously around the face (canonical frame), keep the piece holding pronasale, refine.

    Returns the surface, a KD-tree of its open borders (or None) and the mask
    of vertices at least ``region.border_margin_mm`` from them.
    """
    crop = (region.ellipse_margin(v, scale=region.registration_scale) > 0) & (region.depth_margin(v, extra_mm=25.0) > 0)
    face_in_crop = crop[faces].all(axis=1)
    if not face_in_crop.any():
        raise RegionError(f"{source_name}: no surface near the face region; check orientation or --landmarks")
    v, faces, _, _ = submesh(v, faces, face_in_crop)
    tip = int(np.argmin(np.linalg.norm(v, axis=1)))
    v, faces, _, _ = submesh(v, faces, _largest_component_faces(len(v), faces, seed_vertex=tip))
    v, faces = refine_to_edge_length(v, faces, MAX_EDGE_MM)
    tree = border_tree_of(v, faces)
    return v, faces, tree, away_from_border(tree, v, region.border_margin_mm)


def _depth_patch(p, faces, sym: SymmetryFrame, border_tree, away, region: FaceRegion, smoothing_mm, source_name):
    """The face region (symmetry frame) with each point's depth below the mirrored surface.

    depth > 0 when the point lies inside (below) the mirror image of the face.
    A point counts only when it and its mirror partner lie on measured skin,
    away from the scan's borders.
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
    patch = Patch(pv, pf, field[:, 0], pv + field[:, 1:])
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


def load_inputs(scan, units, landmarks):
    """Load the scan (unless given) and the landmarks (mm). Returns (scan, landmarks, landmark file)."""
    if not isinstance(scan, SurfaceScan):
        scan = load_scan(scan, units=units)
    landmark_file = None
    if landmarks is not None and not isinstance(landmarks, Mapping):
        landmark_file = Path(landmarks)
        landmarks = read_landmarks(landmark_file, units=scan.units)
    return scan, landmarks, landmark_file


def prepare_surface(scan: SurfaceScan, landmarks, region: FaceRegion, orient: str = "canonical") -> PreparedSurface:
    """Frame (landmarks, detected landmarks when ``orient == "auto"``, or default), outward winding,
    and the cropped, refined working surface."""
    v_scan, faces = scan.vertices_mm, scan.faces
    if landmarks:
        frame: FaceFrame = frame_from_landmarks(landmarks, v_scan, vertex_normals(v_scan, faces))
    elif orient == "auto":
        from ._landmarks3d import detect_landmarks

        found = detect_landmarks(scan)
        if found.low_confidence:  # geometric fallback: pronasale and the mirror plane only
            logger.warning("%s: no face found in the renders; the frame comes from the geometric fallback "
                           "(nose-like protrusion and mirror plane, low confidence): check the result or give "
                           "--landmarks", scan.source_name)
            frame = FaceFrame(found.frame.rotation, found.frame.origin_mm, "detected (geometric fallback, low confidence)")
        else:
            frame = frame_from_landmarks(found.points_mm, v_scan, vertex_normals(v_scan, faces))
            frame = FaceFrame(frame.rotation, frame.origin_mm, "detected")
    else:
        frame = default_frame(v_scan, faces)
    v = frame.to_canonical(v_scan)
    faces = _orient_outward(v, faces)
    v, faces, border_tree, away = _working_surface(v, faces, region, scan.source_name)
    return PreparedSurface(scan, frame, v, faces, border_tree, away)


def fit_plane(prepared: PreparedSurface, region: FaceRegion, robust_scale_mm: float):
    """Symmetry plane of a prepared surface, registering the enlarged region. Returns (plane, frame)."""
    v, faces = prepared.vertices, prepared.faces
    inside = (region.ellipse_margin(v, scale=region.registration_scale) > 0) & (region.depth_margin(v) > 0)
    inside &= prepared.away_from_border
    query = SurfaceQuery(v, faces)
    points, point_normals = sample_surface(v, faces, inside[faces].all(axis=1), cell_mm=SAMPLE_CELL_MM, query=query)
    plane, _ = fit_symmetry_plane_masked(query, points, point_normals, robust_scale_mm=robust_scale_mm)
    return plane, SymmetryFrame.from_plane(plane)


def analyze_scan(
    scan: str | os.PathLike | SurfaceScan,
    *,
    affected: Literal["left", "right", "auto"] = "auto",
    units: str = "mm",
    landmarks: str | os.PathLike | Mapping[str, np.ndarray] | None = None,
    threshold_mm: float = 4.0,
    floor_mm: float = 1.0,
    region: FaceRegion | None = None,
    robust_scale_mm: float = 1.5,
    smoothing_mm: float = 1.5,
    orient: Literal["canonical", "auto"] = "canonical",
) -> ScanAnalysis:
    """Measure the soft-tissue defect and the hemiface volumetric discrepancy of one face scan.

    Parameters
    ----------
    scan : path to an OBJ/PLY/STL/OFF/GLB file, or a loaded :class:`SurfaceScan`.
    affected : the patient's affected side, or "auto" for the side with the larger defect volume.
    units : units of the file ("mm", "cm", "m"); results are always in mm.
    landmarks : CSV path (``name,x,y,z`` in the scan's units) or a dict of points in mm that
        fixes the face frame; without it the scan must look toward +z with the head up +y.
    threshold_mm : depth above which ``area_deeper_than_threshold_mm2`` counts area.
    floor_mm : a connected depressed area is a defect only if somewhere deeper than this.
    region : limits of the face region (see :class:`FaceRegion`).
    robust_scale_mm : mirror pairs farther apart than this have no influence on the symmetry plane.
    smoothing_mm : the depth map is smoothed over the surface with a Gaussian of this size
        (mm) against scanner noise; 0 turns smoothing off.
    orient : without ``landmarks``: "canonical" takes the scan as looking toward +z with the head up
        +y; "auto" finds the face and its frame with :func:`hemiface.scan.detect_landmarks`.

    Returns
    -------
    ScanAnalysis
    """
    check_option("affected", affected, ("left", "right", "auto"))
    threshold_mm = check_positive("threshold_mm", threshold_mm)
    floor_mm = check_positive("floor_mm", floor_mm, allow_zero=True)
    robust_scale_mm = check_positive("robust_scale_mm", robust_scale_mm)
    smoothing_mm = check_positive("smoothing_mm", smoothing_mm, allow_zero=True)
    region = region or FaceRegion()
    check_option("orient", orient, ("canonical", "auto"))
    scan, landmarks, landmark_file = load_inputs(scan, units, landmarks)

    prepared = prepare_surface(scan, landmarks, region, orient)
    frame, v, faces = prepared.frame, prepared.vertices, prepared.faces
    plane, sym = fit_plane(prepared, region, robust_scale_mm)
    patch = _depth_patch(
        sym.forward(v), faces, sym, prepared.border_tree, prepared.away_from_border, region, smoothing_mm,
        scan.source_name,
    )
    region_area = patch.area_mm2()
    if region_area < 2000.0:
        raise RegionError(
            f"{scan.source_name}: the face region covers only {region_area:.0f} mm2; "
            "check orientation, units, --landmarks or the --region-* limits"
        )

    halves, defects, side_volume = measure_sides(patch, floor_mm=floor_mm, threshold_mm=threshold_mm)
    side = choose_side(affected, side_volume)
    if affected == "auto":
        logger.info(
            "affected side chosen automatically: %s (defect volume left %.0f mm3, right %.0f mm3)",
            side, side_volume["left"], side_volume["right"],
        )
    other: Side = "right" if side == "left" else "left"
    if side_volume[other] > max(2.0 * side_volume[side], 1000.0):
        logger.warning(
            "the %s side (given as affected) shows %.0f mm3 of defect, the %s side %.0f mm3: check the side",
            side, side_volume[side], other, side_volume[other],
        )
    chosen = defects[side]

    base_z = float(patch.vertices[:, 2].min())
    hemi_volume = {s: column_volume_mm3(h.vertices, h.faces, base=base_z) for s, h in halves.items()}
    discrepancy = halves[side].volume_mm3()

    def to_scan(points):
        return frame.to_scan(sym.inverse(points))

    measures = tuple(
        DefectMeasure(m.volume_mm3, m.max_depth_mm, m.area_mm2, m.area_deeper_than_threshold_mm2,
                      tuple(float(c) for c in to_scan(np.array([m.centroid_mm]))[0]))
        for _, m in chosen
    )
    defect_patch = merge_patches([d for d, _ in chosen])
    if len(defect_patch.faces):
        solid_v, solid_f = defect_solid(defect_patch)
        solid_v = to_scan(solid_v)
    else:
        solid_v, solid_f = np.empty((0, 3)), np.empty((0, 3), np.int64)

    plane_point = frame.to_scan(sym.inverse(np.zeros((1, 3))))[0]
    plane_normal = frame.direction_to_scan(plane.normal[None, :])[0]
    params = {
        "affected": affected, "units": scan.units, "threshold_mm": threshold_mm, "floor_mm": floor_mm,
        "region": region.to_dict(), "robust_scale_mm": robust_scale_mm, "smoothing_mm": smoothing_mm,
        "landmarks": landmark_file.name if landmark_file else ("given" if landmarks else None),
        "orient": orient,
    }
    inputs = {"scan": {"file": scan.source_name, "sha256": scan.sha256}}
    if landmark_file is not None:
        from .._provenance import sha256_file

        inputs["landmarks"] = {"file": landmark_file.name, "sha256": sha256_file(landmark_file)}

    return ScanAnalysis(
        affected_side=side,
        affected_side_chosen_by="auto" if affected == "auto" else "user",
        defect_volume_mm3=side_volume[side],
        max_depth_mm=max((m.max_depth_mm for m in measures), default=0.0),
        defect_area_mm2=float(sum(m.area_mm2 for m in measures)),
        area_deeper_than_threshold_mm2=float(sum(m.area_deeper_than_threshold_mm2 for m in measures)),
        threshold_mm=threshold_mm,
        floor_mm=floor_mm,
        defects=measures,
        defect_volume_by_side_mm3=side_volume,
        volumetric_discrepancy_mm3=discrepancy,
        volumetric_discrepancy_percent=100.0 * discrepancy / hemi_volume[other],
        affected_hemiface_volume_mm3=hemi_volume[side],
        unaffected_hemiface_volume_mm3=hemi_volume[other],
        region_area_mm2=region_area,
        symmetry_plane_normal=tuple(float(c) for c in plane_normal),
        symmetry_plane_point_mm=tuple(float(c) for c in plane_point),
        plane_fit_rms_mm=plane.rms_mm,
        plane_fit_inlier_fraction=plane.inlier_fraction,
        plane_fit_converged=plane.converged,
        frame_source=frame.source,
        provenance=provenance(inputs, params),
        depth_vertices_mm=to_scan(patch.vertices),
        depth_faces=patch.faces,
        depth_values_mm=patch.depth_mm,
        defect_solid_vertices_mm=solid_v,
        defect_solid_faces=solid_f,
        render_vertices=patch.vertices,
    )
