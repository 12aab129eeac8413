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
from ._defect import (
    AREA_LEVEL_MM, DefectMeasure, edge_volume_mm3, merge_patches, reaches_region_edge, region_edge_tree,
)
from ._frame import FaceFrame
from ._io import MM_PER_UNIT, SurfaceScan
from ._mesh import column_volume_mm3
from ._peak import RawDepth
from ._plane import fit_plane, stable_points_mm, volume_uncertainty_mm3
from ._prepare import prepare_surface
from ._region import FaceRegion
from ._solid import defect_solid
from ._surface import Side, choose_side, depth_patch, load_inputs, measure_sides
from ._zones import ZoneLayout, ZoneMeasure, layout_for_visit, measure_zones, zone_keys


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
    plane_method: str
    plane_uncertainty_deg: float
    plane_offset_uncertainty_mm: float
    defect_volume_uncertainty_mm3: float
    volumetric_discrepancy_uncertainty_mm3: float
    #: Length (mm) of open hole borders next to the defect or its mirror image (see :func:`hole_border_near_defect_mm`);
    #: from :data:`HOLE_BORDER_WARNING_MM` on, a warning says the defect may go on under the hole.
    defect_hole_border_mm: float
    #: What to check, as short names (also warned about when measured): ``defect_reaches_region_edge`` (its
    #: region-edge SD at least EDGE_WARNING_SHARE of it), ``defect_borders_open_hole``.
    flags: tuple[str, ...]
    #: The affected side's measurements per aesthetic zone (:data:`hemiface.scan.ZONE_NAMES` order) and
    #: the zones' boundaries (see :mod:`hemiface.scan._zones`).
    zones: tuple[ZoneMeasure, ...]
    zone_layout: ZoneLayout
    # Geometry for the outputs (scan frame, mm) and the render (symmetry frame).
    depth_vertices_mm: np.ndarray = field(repr=False)
    depth_faces: np.ndarray = field(repr=False)
    depth_values_mm: np.ndarray = field(repr=False)
    defect_solid_vertices_mm: np.ndarray = field(repr=False)
    defect_solid_faces: np.ndarray = field(repr=False)
    render_vertices: np.ndarray = field(repr=False)
    #: Each depth-map vertex's closest point on the mirrored unaffected surface (scan frame, mm): the top of
    #: the defect solid, which planning (``hemiface.plan``) stacks its layers toward.
    depth_top_mm: np.ndarray | None = field(default=None, repr=False)
    #: Each depth-map vertex's unsmoothed depth (mm), which the peaks and the area deeper than the threshold are read on.
    depth_unsmoothed_mm: np.ndarray | None = field(default=None, repr=False)
    face_frame: FaceFrame | None = field(default=None, repr=False)

    def face_frame_dict(self) -> dict | None:
        """The canonical face frame in the scan's frame and the landmarks that fixed it (mm), JSON-ready."""
        if self.face_frame is None:
            return None
        f = self.face_frame
        landmarks = {"pronasale": f.origin_mm, **f.landmarks_mm}
        return {"axes": {name: [float(c) for c in row] for name, row in zip(("left", "superior", "anterior"), f.rotation)},
                "origin_mm": [float(c) for c in f.origin_mm], "source": f.source,
                "landmarks_mm": {k: [float(c) for c in p] for k, p in landmarks.items()}}

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
            "plane_method": self.plane_method,
            "plane_uncertainty_deg": self.plane_uncertainty_deg,
            "plane_offset_uncertainty_mm": self.plane_offset_uncertainty_mm,
            "defect_volume_uncertainty_mm3": self.defect_volume_uncertainty_mm3,
            "volumetric_discrepancy_uncertainty_mm3": self.volumetric_discrepancy_uncertainty_mm3,
            "defect_hole_border_mm": self.defect_hole_border_mm,
            "flags": list(self.flags),
            **zone_keys(self.zones),
            "zones": self.zone_layout.to_dict(),
            "frame_source": self.frame_source,
            "face_frame": self.face_frame_dict(),
            "coordinates": "scan's own frame, millimetres",
            "provenance": self.provenance,
        }

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write measurements.json, depth_map.ply, depth_map.png and defect.stl (see :func:`write_outputs`)."""
        from ._outputs import write_outputs

        return write_outputs(self, out_dir, overwrite=overwrite)


#: A defect that borders on this much of an open hole (mm, its own side or its mirror image's) is reported.
HOLE_BORDER_WARNING_MM = 10.0


def hole_border_near_defect_mm(prepared, sym, defect_patch, margin_mm: float) -> float:
    """Length (mm) of the holes' borders left open in the working surface (not the scan's own open border)
    within ``margin_mm`` + 2 mm of the defect or of its mirror image: skin there, or its mirror partner's,
    is not measured, so the defect may go on under the hole."""
    edges = prepared.open_hole_edges
    if not len(edges) or not len(defect_patch.vertices):
        return 0.0
    mirror = np.array([-1.0, 1.0, 1.0])
    near = np.vstack([sym.inverse(defect_patch.vertices), sym.inverse(defect_patch.vertices * mirror)])
    a, b = prepared.vertices[edges[:, 0]], prepared.vertices[edges[:, 1]]
    close = cKDTree(near).query(0.5 * (a + b), distance_upper_bound=margin_mm + 2.0)[0] <= margin_mm + 2.0
    return float(np.linalg.norm(b - a, axis=1)[close].sum())


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
    plane: str | os.PathLike | Mapping = "mirror",
    stable: str | os.PathLike | np.ndarray | None = None,
    uncertainty: bool = True,
) -> ScanAnalysis:
    """Measure the soft-tissue defect and the hemiface volumetric discrepancy of one face scan.

    Parameters
    ----------
    scan : path to an OBJ/PLY/STL/OFF/GLB file, or a loaded :class:`SurfaceScan`.
    affected : the patient's affected side, or "auto" for the side with the larger defect volume.
    units : units of the file ("mm", "cm", "m"); results are always in mm.
    landmarks : CSV path (``name,x,y,z`` in the scan's units) or a dict of points in mm that
        fixes the face frame and places the aesthetic zones (see :mod:`._zones`; landmarks not
        given come from an average face); without it the scan must look toward +z with the head up +y.
    threshold_mm : depth above which ``area_deeper_than_threshold_mm2`` counts area.
    floor_mm : a connected depressed area is a defect only if somewhere deeper than this.
    region : limits of the face region (see :class:`FaceRegion`).
    robust_scale_mm : mirror pairs farther apart than this have no influence on the symmetry plane.
    smoothing_mm : the depth map is smoothed over the surface with a Gaussian of this size
        (mm) against scanner noise; 0 turns smoothing off.
    orient : without ``landmarks``: "canonical" takes the scan as looking toward +z with the head up
        +y; "auto" finds the face and its frame with :func:`hemiface.scan.detect_landmarks`.
    plane : how the symmetry plane is found (see :mod:`hemiface.scan._plane`): "mirror" (mirror
        registration with a consensus refit), "landmarks" (through nasion, subnasale and pogonion or
        menton among ``landmarks``), or a JSON file / mapping ``{"normal": [...], "point": [...]}``
        in the scan's frame and units.
    stable : areas known to be unaffected, for the "mirror" fit only: a mesh file (scan's frame
        and units), or a boolean mask / index array over the scan's vertices.
    uncertainty : estimate ``plane_uncertainty_deg`` and the volume uncertainties (block jackknife
        of the plane fit); False leaves them NaN and is faster.

    Returns
    -------
    ScanAnalysis
        With the defect and the discrepancy split by aesthetic zone (``zones``, in
        :data:`hemiface.scan.ZONE_NAMES` order; they add up to the totals).
    """
    check_option("affected", affected, ("left", "right", "auto"))
    threshold_mm = check_positive("threshold_mm", threshold_mm)
    floor_mm = check_positive("floor_mm", floor_mm, allow_zero=True)
    robust_scale_mm = check_positive("robust_scale_mm", robust_scale_mm)
    smoothing_mm = check_positive("smoothing_mm", smoothing_mm, allow_zero=True)
    region = region or FaceRegion()
    check_option("orient", orient, ("canonical", "auto"))
    scan, landmarks, landmark_file = load_inputs(scan, units, landmarks)
    stable_points, stable_name = stable_points_mm(stable, scan, units)

    prepared = prepare_surface(scan, landmarks, region, orient)
    frame, v, faces = prepared.frame, prepared.vertices, prepared.faces
    fit = fit_plane(prepared, region, robust_scale_mm, method=plane, stable_points_mm=stable_points,
                    landmarks=landmarks, units_mm=MM_PER_UNIT[scan.units], uncertainty=uncertainty)
    plane_fit, sym = fit.plane, fit.frame
    patch, raw = depth_patch(
        sym.forward(v), faces, sym, prepared.border_tree, prepared.away_from_border, region, smoothing_mm,
        scan.source_name, with_raw=True,
    )
    region_area = patch.area_mm2()
    if region_area < 2000.0:
        raise RegionError(
            f"{scan.source_name}: the face region covers only {region_area:.0f} mm2; "
            "check orientation, units, --landmarks or the --region-* limits"
        )

    halves, defects, side_volume = measure_sides(patch, floor_mm=floor_mm, threshold_mm=threshold_mm, raw=raw)
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
    hole_border = hole_border_near_defect_mm(prepared, sym, defect_patch, region.border_margin_mm)
    flags = []
    if hole_border >= HOLE_BORDER_WARNING_MM:
        flags.append("defect_borders_open_hole")
        logger.warning("the defect borders on %.0f mm of an open hole of the scan (larger than the %g mm radius "
                       "closed before measuring), on its own side or its mirror image's: the skin under the hole is "
                       "not measured, so the defect may be larger than reported; rescan that area",
                       hole_border, region.hole_fill_radius_mm)
    zone_layout = layout_for_visit(prepared.landmarks_mm, frame, sym)
    zones = measure_zones(zone_layout, halves[side], defect_patch, threshold_mm=threshold_mm)
    if len(defect_patch.faces):
        solid_v, solid_f = defect_solid(defect_patch)
        solid_v = to_scan(solid_v)
    else:
        solid_v, solid_f = np.empty((0, 3)), np.empty((0, 3), np.int64)

    plane_point = frame.to_scan(sym.inverse(np.zeros((1, 3))))[0]
    plane_normal = frame.direction_to_scan(plane_fit.normal[None, :])[0]
    defect_sd, discrepancy_sd = float("nan"), float("nan")
    if uncertainty:
        # Three independent parts added in quadrature: the plane (jackknife covariance carried to the volume),
        # the smoothing (smoothed vs unsmoothed volume) and the region's edge (edge_volume_mm3).
        raw_halves, _, raw_volume = measure_sides(raw, floor_mm=floor_mm, threshold_mm=threshold_mm)
        plane_defect = volume_uncertainty_mm3(defect_patch, fit.covariance)
        plane_disc = volume_uncertainty_mm3(halves[side], fit.covariance)
        smooth_defect = abs(side_volume[side] - raw_volume[side])
        smooth_disc = abs(discrepancy - raw_halves[side].volume_mm3())
        edge = region_edge_tree(halves[side])
        edge_defect = edge_volume_mm3(defect_patch, edge)
        edge_disc = edge_volume_mm3(halves[side], edge, signed=True)
        defect_sd = float(np.sqrt(plane_defect**2 + smooth_defect**2 + edge_defect**2))
        discrepancy_sd = float(np.sqrt(plane_disc**2 + smooth_disc**2 + edge_disc**2))
        logger.info("uncertainty (1 SD, mm3): defect %.0f = plane %.0f + smoothing %.0f + edge %.0f; discrepancy %.0f = "
                    "plane %.0f + smoothing %.0f + edge %.0f", defect_sd, plane_defect, smooth_defect, edge_defect,
                    discrepancy_sd, plane_disc, smooth_disc, edge_disc)
        if reaches_region_edge("defect", edge_defect, side_volume[side]):
            flags.append("defect_reaches_region_edge")
    params = {
        "affected": affected, "units": scan.units, "threshold_mm": threshold_mm, "floor_mm": floor_mm,
        "defect_area_level_mm": AREA_LEVEL_MM,
        "region": region.to_dict(), "robust_scale_mm": robust_scale_mm, "smoothing_mm": smoothing_mm,
        "landmarks": landmark_file.name if landmark_file else ("given" if landmarks else None),
        "orient": orient, "plane": fit.method, "plane_fit": fit.to_dict(), "stable": stable_name,
        "uncertainty": uncertainty, "holes_closed": prepared.holes_dict(),
    }
    inputs = {"scan": {"file": scan.source_name, "sha256": scan.sha256}}
    from .._provenance import sha256_file

    if landmark_file is not None:
        inputs["landmarks"] = {"file": landmark_file.name, "sha256": sha256_file(landmark_file)}
    for role, f in (("stable", stable), ("plane", plane)):
        if isinstance(f, (str, os.PathLike)) and not (role == "plane" and f in ("mirror", "landmarks")):
            inputs[role] = {"file": os.path.basename(f), "sha256": sha256_file(f)}

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
        plane_fit_rms_mm=plane_fit.rms_mm,
        plane_fit_inlier_fraction=plane_fit.inlier_fraction,
        plane_fit_converged=plane_fit.converged,
        frame_source=frame.source,
        provenance=provenance(inputs, params),
        plane_method=fit.method,
        plane_uncertainty_deg=fit.uncertainty_deg,
        plane_offset_uncertainty_mm=fit.offset_uncertainty_mm,
        defect_volume_uncertainty_mm3=defect_sd,
        volumetric_discrepancy_uncertainty_mm3=discrepancy_sd,
        defect_hole_border_mm=hole_border,
        flags=tuple(flags),
        zones=zones,
        zone_layout=zone_layout,
        depth_vertices_mm=to_scan(patch.vertices),
        depth_faces=patch.faces,
        depth_values_mm=patch.depth_mm,
        defect_solid_vertices_mm=solid_v,
        defect_solid_faces=solid_f,
        render_vertices=patch.vertices,
        depth_top_mm=to_scan(patch.top),
        # the two patches are cut from one surface by the same region, so they share their vertices
        depth_unsmoothed_mm=raw.depth_mm if np.array_equal(raw.vertices, patch.vertices) else RawDepth(raw).at(patch.vertices)[0],
        face_frame=frame,
    )
