"""``compare_scans``: tissue gained or lost between two visits, and the change in symmetry.

POST is registered onto PRE rigidly over stable regions only (forehead, nasal
dorsum, the unaffected side; never the mouth, whose expression changes), with
the robust ICP of :mod:`._registration`; after each registration what moved
between the visits (farther than max(MOVED_MIN_MM, 3 x the registration
spread), dilated by MOVED_DILATION_MM) is left out and POST registered again.
Both visits are then measured in PRE's symmetry frame (one shared plane, from
:mod:`._plane` as in ``analyze_scan``), so the plane's own uncertainty cancels
from the change.

Gain is measured net of the other side: the gain at each point less the gain
at its mirror image, so changes that reach both sides alike (an expression,
swelling, weight) cancel. A gained area counts when it rises above
max(GAIN_FLOOR_MIN_MM, GAIN_FLOOR_NOISE_FACTOR x the change map's noise, read on
the unaffected side's stable area: :func:`change_noise_mm`) and is integrated
with the sign over an area reaching GAIN_SUPPORT_DILATION_MM beyond where the
smoothed change stands clear of that noise (:func:`_change_support`), so thin,
broad gains are not cut off and noise inside adds nothing. The discrepancy after surgery
is the discrepancy before less the net gain integrated over the affected
hemiface (to first order POST's own mirror comparison in the shared plane).

Uncertainty of the change: the registration's, from a delete-a-group block
jackknife of POST's registration onto PRE (:func:`registration_covariance`),
carried to first order into each integral of the net change
(:func:`gain_sensitivity`), the ``*_registration_sd_*`` keys; and what the face
region's edge may cut off (half the change within 5 mm inside the edge, as
``analyze_scan`` takes it), the ``*_edge_sd_*`` keys; in quadrature the
``*_uncertainty_mm3`` keys. Neither is the method's own error (the gain map's
resolution, a thin gain's edge below the noise, a smile's one-sided volume),
which the truth tables in the README give.

Sign conventions: ``gain_mm`` > 0 where POST lies outside PRE (tissue gained).
``discrepancy_change_mm3`` = POST - PRE: negative when the affected side
became fuller. ``defect_corrected_percent`` = the net gain integrated over the
preoperative defect's footprint, as a share of the preoperative defect volume
(above 100 when the defect was overfilled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np
from scipy.spatial import cKDTree

import trimesh

from .. import logger
from .._errors import RegistrationError
from .._provenance import provenance, sha256_file
from .._validate import check_option, check_positive
from ._plane import (
    SymmetryFrame, block_groups, fit_plane, jackknife_covariance, registration_samples, stable_points_mm,
    volume_uncertainty_mm3,
)
from ._prepare import prepare_surface
from ._surface import (
    MAX_PAIR_DEPTH_MM, PreparedSurface, away_from_border, border_tree_of, choose_side, depth_patch, load_inputs,
    measure_sides,
)
from ._defect import (
    DEPTH_EPS_MM, Patch, edge_volume_mm3, find_defects, merge_patches, reaches_region_edge, region_edge_tree,
)
from ._distance import SurfaceQuery
from ._io import MM_PER_UNIT, SurfaceScan, load_scan
from ._mesh import (
    cluster_vertices, face_areas_mm2, face_normals, smooth_vertex_field, submesh, vertex_areas_mm2, vertex_normals,
)
from ._region import FaceRegion
from ._registration import RigidFit, register_rigid, rotation_vector
from ._zones import ZoneLayout, layout_for_visit, zone_volumes_mm3

#: Registration worse than this on the stable region is refused (mm).
MAX_REGISTRATION_RMS_MM = 1.0
#: Pairs farther apart than this are holes or gross change, not registration error (mm).
RMS_CAP_MM = 5.0
#: Registration passes: each leaves out the samples that moved after the previous one.
REGISTRATION_PASSES = 4
#: A sample moved between the visits when farther than max(this, 3 x the registration spread) (mm) ...
MOVED_MIN_MM = 0.3
#: ... and every sample this close to one that moved is left out too (mm).
MOVED_DILATION_MM = 5.0
#: A gained (or lost) area counts when it rises above max(GAIN_FLOOR_MIN_MM, factor x change-map noise).
GAIN_FLOOR_MIN_MM = 0.2
GAIN_FLOOR_NOISE_FACTOR = 4.0
#: The gain is measured along PRE's surface normals smoothed over this size (mm; see :func:`_signed_gain`),
#: on a copy of PRE clustered to GAIN_DIRECTION_CLUSTER_MM.
GAIN_NORMAL_SMOOTHING_MM = 10.0
GAIN_DIRECTION_CLUSTER_MM = 2.0
#: A gained (lost) area reaches GAIN_SUPPORT_DILATION_MM beyond where the net gain (loss), smoothed over
#: GAIN_SUPPORT_SMOOTHING_MM, is positive; its volume is the signed integral over it (see :func:`_change_support`).
GAIN_SUPPORT_SMOOTHING_MM = 3.0
GAIN_SUPPORT_DILATION_MM = 5.0
#: ... and starts where that smoothed change is above this many robust spreads of its own noise (see
#: :func:`change_noise_mm`). Above 0 alone, half of a noisy map's area is inside, so the support grown by
#: its margin percolated over the whole hemiface and the signed integral took in whatever the registration
#: left there (0.1 mm of noise on the follow-up: the template's 739 mm3 midline gain spread from 2,548 to
#: 6,214 mm2 and read +5.4% for +2.0%).
GAIN_SUPPORT_NOISE_FACTOR = 3.0
#: The registration's uncertainty: a delete-a-group jackknife over spatial blocks of the stable samples, as
#: for the plane (:func:`._plane.block_groups`); each group left out and POST registered again from the fit.
REGISTRATION_JACKKNIFE_BLOCK_MM = 40.0
REGISTRATION_JACKKNIFE_GROUPS = 12


@dataclass(frozen=True)
class ChangeMeasure:
    volume_mm3: float
    max_mm: float
    mean_mm: float
    area_mm2: float


@dataclass(frozen=True, eq=False)
class ScanComparison:
    """Result of :func:`compare_scans` (mm, mm2, mm3; patient's sides)."""

    affected_side: str
    gain: ChangeMeasure
    loss: ChangeMeasure
    discrepancy_pre_mm3: float
    discrepancy_post_mm3: float
    defect_volume_pre_mm3: float
    defect_volume_post_mm3: float
    defect_corrected_percent: float
    registration: RigidFit
    registration_rms_mm: float
    stable_area_points: int
    plan: Mapping[str, float] | None
    provenance: dict
    plane_method: str
    plane_uncertainty_deg: float
    discrepancy_pre_uncertainty_mm3: float
    #: SDs of the change from the registration of POST onto PRE (see :func:`registration_covariance`).
    volume_gain_registration_sd_mm3: float
    discrepancy_change_registration_sd_mm3: float
    defect_corrected_registration_sd_percent: float
    registration_sd_mm: float
    #: SDs of what the face region's edge may cut off the change (half the change within EDGE_BAND_MM inside
    #: the edge, as for ``analyze_scan``'s volumes), and the SDs of the change: registration and edge in
    #: quadrature.
    volume_gain_edge_sd_mm3: float
    discrepancy_change_edge_sd_mm3: float
    volume_gain_uncertainty_mm3: float
    discrepancy_change_uncertainty_mm3: float
    #: What to check, as short names (also warned about): ``gain_reaches_region_edge`` (its region-edge SD at
    #: least EDGE_WARNING_SHARE of the gain).
    flags: tuple[str, ...]
    #: Net volume gained in each aesthetic zone of the affected side (PRE's zones; the gain split by zone,
    #: adds up to ``gain.volume_mm3``), and those zones.
    zone_gain_mm3: Mapping[str, float]
    zone_layout: ZoneLayout
    gain_vertices_mm: np.ndarray = field(repr=False)
    gain_faces: np.ndarray = field(repr=False)
    gain_values_mm: np.ndarray = field(repr=False)
    render_vertices: np.ndarray = field(repr=False)
    pre_depth: tuple = field(repr=False)
    post_depth: tuple = field(repr=False)

    @property
    def discrepancy_change_mm3(self) -> float:
        return self.discrepancy_post_mm3 - self.discrepancy_pre_mm3

    @property
    def discrepancy_change_percent(self) -> float:
        return 100.0 * self.discrepancy_change_mm3 / self.discrepancy_pre_mm3 if self.discrepancy_pre_mm3 else float("nan")

    def to_dict(self) -> dict:
        d = {
            "affected_side": self.affected_side,
            "volume_gain_mm3": self.gain.volume_mm3, "max_gain_mm": self.gain.max_mm,
            "mean_gain_mm": self.gain.mean_mm, "gain_area_mm2": self.gain.area_mm2,
            "volume_loss_mm3": self.loss.volume_mm3, "max_loss_mm": self.loss.max_mm,
            "mean_loss_mm": self.loss.mean_mm, "loss_area_mm2": self.loss.area_mm2,
            "discrepancy_pre_mm3": self.discrepancy_pre_mm3, "discrepancy_post_mm3": self.discrepancy_post_mm3,
            "discrepancy_change_mm3": self.discrepancy_change_mm3,
            "discrepancy_change_percent": self.discrepancy_change_percent,
            "defect_volume_pre_mm3": self.defect_volume_pre_mm3, "defect_volume_post_mm3": self.defect_volume_post_mm3,
            "defect_corrected_percent": self.defect_corrected_percent,
            "plane_method": self.plane_method,
            "plane_uncertainty_deg": self.plane_uncertainty_deg,
            "discrepancy_pre_uncertainty_mm3": self.discrepancy_pre_uncertainty_mm3,
            "volume_gain_registration_sd_mm3": self.volume_gain_registration_sd_mm3,
            "discrepancy_change_registration_sd_mm3": self.discrepancy_change_registration_sd_mm3,
            "defect_corrected_registration_sd_percent": self.defect_corrected_registration_sd_percent,
            "registration_sd_mm": self.registration_sd_mm,
            "volume_gain_edge_sd_mm3": self.volume_gain_edge_sd_mm3,
            "discrepancy_change_edge_sd_mm3": self.discrepancy_change_edge_sd_mm3,
            "volume_gain_uncertainty_mm3": self.volume_gain_uncertainty_mm3,
            "discrepancy_change_uncertainty_mm3": self.discrepancy_change_uncertainty_mm3,
            "flags": list(self.flags),
            "registration_rms_mm": self.registration_rms_mm,
            "registration_inlier_fraction": self.registration.inlier_fraction,
            "registration_converged": self.registration.converged,
            "registration_rotation": self.registration.rotation.tolist(),
            "registration_translation_mm": self.registration.translation.tolist(),
            **{f"zone_{name}_volume_gained_mm3": v for name, v in self.zone_gain_mm3.items()},
            "zones": self.zone_layout.to_dict(),
            "coordinates": "PRE scan's own frame, millimetres",
            "provenance": self.provenance,
        }
        if self.plan is not None:
            d.update(self.plan)
        return d

    def save(self, out_dir, *, overwrite: bool = False):
        from ._outputs import write_comparison

        return write_comparison(self, out_dir, overwrite=overwrite)


def stable_mask(points_sym: np.ndarray, affected_side: str) -> np.ndarray:
    """Stable areas in PRE's symmetry frame: forehead, nasal dorsum and the unaffected side, not the mouth.

    x across the plane (toward the patient's left), y up, z anterior; origin
    on the plane at pronasale's height.
    """
    x, y = points_sym[:, 0], points_sym[:, 1]
    unaffected = (x < -8.0) if affected_side == "left" else (x > 8.0)
    forehead = y > 35.0
    dorsum = (np.abs(x) < 10.0) & (y > 5.0) & (y < 45.0)
    mouth = ((x / 45.0) ** 2 + ((y + 35.0) / 30.0) ** 2) < 1.0
    return (unaffected | forehead | dorsum) & ~mouth


def _change_support(half: Patch, smooth_change_mm: np.ndarray, level_mm: float = DEPTH_EPS_MM) -> np.ndarray:
    """Where a change is integrated: > 0 within GAIN_SUPPORT_DILATION_MM of where the change, smoothed over
    GAIN_SUPPORT_SMOOTHING_MM (``smooth_change_mm``), is above ``level_mm`` (a field for :func:`find_defects`'
    ``support``)."""
    inside = smooth_change_mm > max(level_mm, DEPTH_EPS_MM)
    if not inside.any():
        return np.full(len(half.vertices), -1.0)
    distance = cKDTree(half.vertices[inside]).query(half.vertices, distance_upper_bound=2 * GAIN_SUPPORT_DILATION_MM)[0]
    return GAIN_SUPPORT_DILATION_MM + DEPTH_EPS_MM - np.minimum(distance, 2 * GAIN_SUPPORT_DILATION_MM)


def change_noise_mm(gain_patch: Patch, side: str) -> tuple[float, float]:
    """The net change map's noise where nothing changed: as smoothed for the volumes, and smoothed over
    GAIN_SUPPORT_SMOOTHING_MM (for the support's level, :func:`_change_support`).

    Read on the gain map (not net of the other side) over the unaffected side's
    stable area, as the robust spread about its median, times sqrt(2): the net
    change is the difference of two such points. The net map's own stable areas
    hold the change: the forehead's (a filled groove or temple) and, on the
    unaffected side, the mirror image of every gain with its sign turned
    (the template's multi-zone pattern, 30% restored with 0.1 mm of noise, read
    0.22 mm there for a noise of 0.05).
    """
    still = stable_mask(gain_patch.vertices, side) & ((gain_patch.vertices[:, 0] < 0) == (side == "left"))
    if not still.any() or not len(gain_patch.faces):
        return 0.0, 0.0
    coarse = smooth_vertex_field(gain_patch.vertices, gain_patch.faces, gain_patch.depth_mm, GAIN_SUPPORT_SMOOTHING_MM)

    def spread(x):
        x = x[still]
        return float(np.sqrt(2.0) * 1.4826 * np.median(np.abs(x - np.median(x))))

    return spread(gain_patch.depth_mm), spread(coarse)


def _change_measure(patch_parts: list) -> ChangeMeasure:
    merged = merge_patches([p for p, _ in patch_parts])
    if not len(merged.faces):
        return ChangeMeasure(0.0, 0.0, 0.0, 0.0)
    # The area changed: where the change is > 0 inside the (wider) areas it was integrated over.
    area = merged.clip(merged.depth_mm, DEPTH_EPS_MM).area_mm2()
    volume = float(sum(m.volume_mm3 for _, m in patch_parts))
    mean = volume / area if area > 0 else 0.0
    return ChangeMeasure(volume, float(max(m.max_depth_mm for _, m in patch_parts)), mean, area)


def with_thickness(patch: Patch, thickness_mm: np.ndarray) -> Patch:
    """The patch with a new thickness field; the offset keeps each vertex's direction (normal where none)."""
    v = patch.vertices
    offset = patch.top - v
    length = np.linalg.norm(offset, axis=1)
    direction = vertex_normals(v, patch.faces) if len(patch.faces) else np.zeros_like(v)
    has = length > 1e-9
    direction[has] = offset[has] / length[has, None] * np.sign(patch.depth_mm[has])[:, None]
    return Patch(v, patch.faces, thickness_mm, v + direction * thickness_mm[:, None])


def net_of_control_side(gain_patch: Patch) -> Patch:
    """Gain less the gain at each point's mirror image across the plane x = 0 (the other side as control).

    Changes that reach both sides alike (an expression, swelling, weight change)
    cancel; a graft on one side stays.
    """
    control = gain_patch.sample(gain_patch.vertices * np.array([-1.0, 1.0, 1.0]))
    return with_thickness(gain_patch, gain_patch.depth_mm - control)


def gain_directions(patch: Patch) -> np.ndarray:
    """The directions the gain is measured along: PRE's outward normals smoothed over GAIN_NORMAL_SMOOTHING_MM.

    Smoothed on a copy clustered to GAIN_DIRECTION_CLUSTER_MM (the field varies over
    centimetres) and interpolated linearly back to the patch's vertices, so the field
    is continuous. Smoothing over a defect's width makes them the normals of the skin
    before the atrophy rather than of the hollow's walls.
    """
    cv, cf = cluster_vertices(patch.vertices, patch.faces, GAIN_DIRECTION_CLUSTER_MM)
    coarse = smooth_vertex_field(cv, cf, vertex_normals(cv, cf), GAIN_NORMAL_SMOOTHING_MM)
    n = Patch(cv, cf, np.zeros(len(cv)), cv).interpolate(patch.vertices, coarse)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _signed_gain(points: np.ndarray, directions: np.ndarray, post_query: SurfaceQuery):
    """Gain at points of PRE along ``directions`` (outward unit vectors): > 0 where POST lies outside.

    The nearer of POST's hits along the line through each point, in either
    direction; where the line misses POST (a hole), the closest point. Returns
    (gain, the POST points). Along a smooth direction field the columns from PRE to
    POST tile the solid between them, so their swept volume is the volume gained; a
    closest-point map does not where POST bulges over a narrow PRE hollow (an
    overcorrected groove): it gathers the hollow's walls onto the bulge's crest and
    misses the volume under its flanks (the midline pattern's 120% fill read 106%).
    """
    out = post_query.cast(points, directions)["t_hit"]
    back = post_query.cast(points, -directions)["t_hit"]
    t = np.where(back < out, -back, out)
    hit = np.isfinite(t) & (np.abs(t) < MAX_PAIR_DEPTH_MM)
    gain = np.where(hit, t, 0.0)
    top = points + gain[:, None] * directions
    if not hit.all():
        cp = post_query.closest(points[~hit])
        gain[~hit], top[~hit] = -cp.signed_distance_mm, cp.points
    return gain, top


def registration_covariance(pre_query: SurfaceQuery, points: np.ndarray, normals: np.ndarray, fit: RigidFit,
                            sym: SymmetryFrame, robust_scale_mm: float) -> np.ndarray:
    """Covariance (6 x 6) of the registration's small motion (rotation vector in radians, translation in mm)
    in PRE's symmetry frame, from a delete-a-group jackknife over spatial blocks of the stable samples.

    ``points``, ``normals``: the stable POST samples ``fit`` registered. Each of
    REGISTRATION_JACKKNIFE_GROUPS groups of REGISTRATION_JACKKNIFE_BLOCK_MM blocks (placed in the symmetry
    frame) is left out and POST registered again from ``fit``; each refit's motion relative to ``fit``
    is one estimate. NaN when fewer than 3 refits succeed.
    """
    group = block_groups(sym.forward(fit.apply(points)), REGISTRATION_JACKKNIFE_BLOCK_MM,
                         REGISTRATION_JACKKNIFE_GROUPS)
    estimates = []
    for g in range(REGISTRATION_JACKKNIFE_GROUPS):
        keep = group != g
        if keep.all() or keep.sum() < 200:
            continue
        try:
            refit = register_rigid(pre_query, points[keep], normals[keep], robust_scale_mm=robust_scale_mm,
                                   initial=fit, initial_scale_mm=robust_scale_mm, max_iterations=30)
        except RegistrationError:
            continue
        estimates.append(_relative_motion(fit, refit, sym))
    if len(estimates) < 3:
        return np.full((6, 6), np.nan)
    return jackknife_covariance(estimates)


def _relative_motion(fit: RigidFit, other: RigidFit, sym: SymmetryFrame) -> np.ndarray:
    """(rotation vector, translation) of ``other`` after undoing ``fit``, as a motion of the symmetry frame."""

    def motion(q):  # a point of POST as ``fit`` placed it (symmetry frame) -> as ``other`` places it
        return sym.forward(other.apply((sym.inverse(q) - fit.translation) @ fit.rotation))

    t = motion(np.zeros((1, 3)))[0]
    rotation = (motion(np.eye(3)) - t).T
    return np.concatenate([rotation_vector(rotation), t])


def gain_sensitivity(top: np.ndarray, post_normals: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """d gain / d (rotation vector, translation) of POST at each point (n x 6; symmetry frame, first order).

    A small motion moves POST's skin at its point ``top`` by ``w x top + t``; along POST's normal
    ``m`` that is ``w . (top x m) + t . m``, and the gain, measured along ``directions``, changes by
    that over ``m . direction`` (held at 0.3 or more: a grazing line's hit is not a registration error).
    """
    cos = np.einsum("ij,ij->i", post_normals, directions)
    cos = np.where(cos < 0, -1.0, 1.0) * np.maximum(np.abs(cos), 0.3)
    return np.column_stack([np.cross(top, post_normals), post_normals]) / cos[:, None]


def motion_sd_mm_at(points: np.ndarray, covariance: np.ndarray) -> float:
    """RMS over ``points`` of the SD (mm, all three axes) of where a small motion with this covariance
    (rotation vector, translation) places each point: w x p + t = [-[p]x | I] (w, t)."""
    p = np.asarray(points, float)
    if not len(p) or not np.all(np.isfinite(covariance)):
        return float("nan")
    jac = np.zeros((len(p), 3, 6))
    jac[:, 0, 1], jac[:, 0, 2] = p[:, 2], -p[:, 1]
    jac[:, 1, 0], jac[:, 1, 2] = -p[:, 2], p[:, 0]
    jac[:, 2, 0], jac[:, 2, 1] = p[:, 1], -p[:, 0]
    jac[:, :, 3:] = np.eye(3)
    variance = np.einsum("nij,jk,nik->n", jac, covariance, jac)
    return float(np.sqrt(max(variance.mean(), 0.0)))


def _integral_sd_mm3(patch: Patch, values_at, covariance: np.ndarray) -> float:
    """SD of the integral over ``patch`` of a field linear in the registration's motion (``values_at(points)``:
    its n x 6 sensitivity there), from the motion's covariance."""
    if not len(patch.faces):
        return 0.0
    g = vertex_areas_mm2(patch.vertices, patch.faces) @ values_at(patch.vertices)
    return float(np.sqrt(max(g @ covariance @ g, 0.0)))


def compare_scans(
    pre: str | os.PathLike | SurfaceScan,
    post: str | os.PathLike | SurfaceScan,
    *,
    affected: Literal["left", "right", "auto"] = "auto",
    units: str = "mm",
    landmarks_pre=None,
    landmarks_post=None,
    plan: str | os.PathLike | None = None,
    stable: str | os.PathLike | None = None,
    floor_mm: float = 1.0,
    threshold_mm: float = 4.0,
    region: FaceRegion | None = None,
    robust_scale_mm: float = 1.5,
    smoothing_mm: float = 1.5,
    max_registration_rms_mm: float = MAX_REGISTRATION_RMS_MM,
    orient: Literal["canonical", "auto"] = "canonical",
    plane: str | os.PathLike | Mapping = "mirror",
    plane_stable: str | os.PathLike | np.ndarray | None = None,
    uncertainty: bool = True,
) -> ScanComparison:
    """Compare a follow-up scan (POST) with the preoperative one (PRE).

    Parameters
    ----------
    pre, post : scan paths or loaded scans.
    affected : the patient's affected side, or "auto" (PRE's side with the larger defect).
    landmarks_pre, landmarks_post : optional landmark CSVs (or dicts in mm) fixing each scan's frame.
    plan : the ``defect.stl`` that ``scan analyze`` wrote for PRE (PRE's frame, mm).
    stable : a mesh (PRE's frame and units) covering the areas to register on, instead of the
        automatic forehead + nasal dorsum + unaffected side.
    max_registration_rms_mm : refuse to report change when registration is worse than this.
    orient : for a scan without landmarks: "canonical" (as given: face toward +z, head up +y) or
        "auto" (frame found by :func:`hemiface.scan.detect_landmarks`).
    plane : PRE's symmetry plane, shared by both visits: "mirror", "landmarks" (from
        ``landmarks_pre``) or a JSON plane file in PRE's frame and units (see :func:`analyze_scan`).
    plane_stable : PRE's areas known to be unaffected, for its "mirror" plane: what ``stable`` is to
        :func:`analyze_scan` (a mesh file in PRE's frame and units, or a boolean mask / index array over
        PRE's vertices), so that both measure in the same plane. (``stable`` here is where POST registers.)
    uncertainty : PRE's plane uncertainty (block jackknife) and what it means for PRE's discrepancy
        (the change is measured in that one plane, so the plane's error largely cancels from it), and
        the registration's (a block jackknife of POST's registration, :func:`registration_covariance`)
        and what it means for the volume gained, the discrepancy change and the share corrected.
        These SDs hold the registration's error only, not the method's own (see the README).
    """
    check_option("affected", affected, ("left", "right", "auto"))
    check_option("orient", orient, ("canonical", "auto"))
    floor_mm = check_positive("floor_mm", floor_mm, allow_zero=True)
    threshold_mm = check_positive("threshold_mm", threshold_mm)
    region = region or FaceRegion()
    pre_scan, lm_pre, lm_pre_file = load_inputs(pre, units, landmarks_pre)
    post_scan, lm_post, lm_post_file = load_inputs(post, units, landmarks_post)

    plane_stable_points, plane_stable_name = stable_points_mm(plane_stable, pre_scan, units)

    pre_s = prepare_surface(pre_scan, lm_pre, region, orient)
    plane_fit = fit_plane(pre_s, region, robust_scale_mm, method=plane, landmarks=lm_pre,
                          stable_points_mm=plane_stable_points,
                          units_mm=MM_PER_UNIT[pre_scan.units], uncertainty=uncertainty)
    sym = plane_fit.frame
    pre_patch = depth_patch(sym.forward(pre_s.vertices), pre_s.faces, sym, pre_s.border_tree,
                             pre_s.away_from_border, region, smoothing_mm, pre_scan.source_name)
    pre_halves, pre_defects, pre_volume = measure_sides(pre_patch, floor_mm=floor_mm, threshold_mm=threshold_mm)
    side = choose_side(affected, pre_volume)

    # Register POST onto PRE (both in PRE's canonical frame after the fit).
    post_s = prepare_surface(post_scan, lm_post, region, orient)
    pre_query = SurfaceQuery(pre_s.vertices, pre_s.faces)
    n_stable = 0
    candidates, candidate_normals = registration_samples(post_s, region)
    fit, keep, moved_share = None, None, 0.0
    user_stable = None if stable is None else _stable_selection_user(stable, pre_s, units)
    for _pass in range(REGISTRATION_PASSES):
        # Stable areas where POST lands in PRE's frame, less what moved after the last registration.
        placed = candidates if fit is None else fit.apply(candidates)
        if user_stable is not None:
            new_keep = user_stable(placed)
        else:
            new_keep = stable_mask(sym.forward(placed), side)
            if fit is not None:
                moved = _moved(pre_query, placed, keep)
                new_keep &= ~moved
                moved_share = float(moved.mean())
        if keep is not None and np.array_equal(new_keep, keep):
            break
        keep = new_keep
        stable_points, stable_normals = candidates[keep], candidate_normals[keep]
        n_stable = len(stable_points)
        if n_stable < 200:
            raise RegistrationError(f"{post_scan.source_name}: only {n_stable} points in the stable regions to register")
        # Later passes start from the last fit: only the stable set changed.
        fit = register_rigid(pre_query, stable_points, stable_normals, robust_scale_mm=robust_scale_mm,
                             initial=fit, initial_scale_mm=10.0 if fit is None else 2.0 * robust_scale_mm)
    if user_stable is None:
        logger.info("registration: %.0f%% of the samples moved between the visits and were left out", 100 * moved_share)
    post_v = fit.apply(post_s.vertices)  # PRE canonical
    rms = _stable_rms(pre_query, fit.apply(stable_points), pre_s.border_tree, region.border_margin_mm)
    logger.info("registration of POST onto PRE: RMS %.3f mm over %d stable points", rms, n_stable)
    if rms > max_registration_rms_mm:
        raise RegistrationError(
            f"{post_scan.source_name}: registration onto {pre_scan.source_name} has an RMS of {rms:.2f} mm on the "
            f"stable regions (limit {max_registration_rms_mm:g} mm); refusing to report change"
        )

    # Gain map over PRE's face region.
    post_sym = sym.forward(post_v)
    post_query = SurfaceQuery(post_sym, post_s.faces)
    post_tree = border_tree_of(post_v, post_s.faces)
    pre_directions = gain_directions(pre_patch)
    gain, top = _signed_gain(pre_patch.vertices, pre_directions, post_query)
    valid = (np.abs(gain) < MAX_PAIR_DEPTH_MM) & away_from_border(post_tree, sym.inverse(top), region.border_margin_mm)
    gv, gf, ga, _ = submesh(pre_patch.vertices, pre_patch.faces, valid[pre_patch.faces].all(axis=1),
                            {"g": gain, "t": top, "d": pre_directions})
    field_ = smooth_vertex_field(gv, gf, np.column_stack([ga["g"], ga["t"] - gv]), smoothing_mm)
    gain_patch = Patch(gv, gf, field_[:, 0], gv + field_[:, 1:])
    net_patch = net_of_control_side(gain_patch)
    # Noise level of the change map where nothing changed: a gained area must rise above it somewhere,
    # and is integrated from where its smoothed change stands clear of it, grown by a margin.
    noise_mm, coarse_noise_mm = change_noise_mm(gain_patch, side)
    gain_floor_mm = max(GAIN_FLOOR_MIN_MM, GAIN_FLOOR_NOISE_FACTOR * noise_mm)
    affected_half = net_patch.clip(net_patch.vertices[:, 0] if side == "left" else -net_patch.vertices[:, 0])
    support_level = GAIN_SUPPORT_NOISE_FACTOR * coarse_noise_mm
    # One smoothing serves the gain and (its sign turned, exactly) the loss.
    smooth_change = smooth_vertex_field(affected_half.vertices, affected_half.faces, affected_half.depth_mm,
                                        GAIN_SUPPORT_SMOOTHING_MM)
    gained = find_defects(affected_half, floor_mm=gain_floor_mm, threshold_mm=threshold_mm,
                          support=_change_support(affected_half, smooth_change, support_level))
    lost_half = Patch(affected_half.top, affected_half.faces, -affected_half.depth_mm, affected_half.vertices)
    lost = find_defects(lost_half, floor_mm=gain_floor_mm, threshold_mm=threshold_mm,
                        support=_change_support(affected_half, -smooth_change, support_level))

    # Symmetry of POST in PRE's frame (the shared plane).
    post_away = away_from_border(post_tree, post_v, region.border_margin_mm)
    post_patch = depth_patch(post_sym, post_s.faces, sym, post_tree, post_away, region, smoothing_mm,
                              post_scan.source_name)
    post_half = post_patch.clip(post_patch.vertices[:, 0] if side == "left" else -post_patch.vertices[:, 0])
    post_defects = find_defects(post_half, floor_mm=floor_mm, threshold_mm=threshold_mm)

    # Restored share: gain integrated over PRE's defect footprint.
    footprint = merge_patches([p for p, _ in pre_defects[side]])
    if len(footprint.faces) and pre_volume[side] > 0:
        raw, top_there = _signed_gain(footprint.vertices, pre_patch.interpolate(footprint.vertices, pre_directions),
                                      post_query)
        restored = with_thickness(Patch(footprint.vertices, footprint.faces, raw, top_there),
                                  net_patch.sample(footprint.vertices)).volume_mm3()
        corrected = 100.0 * restored / pre_volume[side]
    else:
        corrected = float("nan")
    discrepancy_pre = pre_halves[side].volume_mm3()
    # After = before less the net gain over the affected hemiface (signed, unclipped): to first order
    # POST's own mirror comparison in the shared plane, without compounding two noisy surfaces.
    discrepancy_post = discrepancy_pre - affected_half.volume_mm3()

    gain_measure = _change_measure(gained)
    gained_patch = merge_patches([p for p, _ in gained])
    flags = []
    if uncertainty:
        # The registration's error, carried to first order into each integral of the net change.
        motion_cov = registration_covariance(pre_query, stable_points, stable_normals, fit, sym, robust_scale_mm)
        sensitivity = gain_sensitivity(ga["t"], post_query.face_normals[post_query.closest(ga["t"]).face_ids], ga["d"])
        on_gain_map = Patch(gv, gf, np.zeros(len(gv)), gv)
        net_sensitivity = sensitivity - on_gain_map.interpolate(gv * np.array([-1.0, 1.0, 1.0]), sensitivity)

        def net_sensitivity_at(points):
            return on_gain_map.interpolate(points, net_sensitivity)

        gain_sd = _integral_sd_mm3(gained_patch, net_sensitivity_at, motion_cov)
        change_sd = _integral_sd_mm3(affected_half, net_sensitivity_at, motion_cov)
        corrected_sd = 100.0 * _integral_sd_mm3(footprint, net_sensitivity_at, motion_cov) / pre_volume[side] \
            if np.isfinite(corrected) else float("nan")
        motion_sd_mm = motion_sd_mm_at(gv, motion_cov)
        # What the face region's edge may cut off the change, as analyze_scan takes it for a defect.
        edge = region_edge_tree(affected_half)
        gain_edge_sd = edge_volume_mm3(gained_patch, edge)
        change_edge_sd = edge_volume_mm3(affected_half, edge, signed=True)
        if reaches_region_edge("gain", gain_edge_sd, gain_measure.volume_mm3):
            flags.append("gain_reaches_region_edge")
    else:
        gain_sd = change_sd = corrected_sd = motion_sd_mm = gain_edge_sd = change_edge_sd = float("nan")
    zone_layout = layout_for_visit(pre_s.landmarks_mm, pre_s.frame, sym)
    zone_gain = zone_volumes_mm3(zone_layout, gained_patch, reference=pre_patch)
    plan_result = None if plan is None else _plan_vs_result(
        plan, pre_s, sym, affected_half, pre_patch.interpolate(affected_half.vertices, pre_directions),
        gain_measure.volume_mm3)

    params = {
        "affected": affected, "units": units, "floor_mm": floor_mm, "threshold_mm": threshold_mm,
        "region": region.to_dict(), "robust_scale_mm": robust_scale_mm, "smoothing_mm": smoothing_mm,
        "max_registration_rms_mm": max_registration_rms_mm, "stable": "auto" if stable is None else os.path.basename(stable),
        "orient": orient, "uncertainty": uncertainty, "plane": plane_fit.method, "plane_fit": plane_fit.to_dict(),
        "plane_stable": plane_stable_name, "registration_passes": REGISTRATION_PASSES, "moved_min_mm": MOVED_MIN_MM,
        "moved_dilation_mm": MOVED_DILATION_MM, "moved_share": moved_share,
        "gain_floor_mm": gain_floor_mm, "change_noise_mm": noise_mm,
        "gain_support_level_mm": support_level,
        "registration_jackknife_groups": REGISTRATION_JACKKNIFE_GROUPS,
        "registration_jackknife_block_mm": REGISTRATION_JACKKNIFE_BLOCK_MM,
        "holes_closed": {"pre": pre_s.holes_dict(), "post": post_s.holes_dict()},
    }
    inputs = {"pre": {"file": pre_scan.source_name, "sha256": pre_scan.sha256},
              "post": {"file": post_scan.source_name, "sha256": post_scan.sha256}}
    plane_file = plane if isinstance(plane, (str, os.PathLike)) and plane not in ("mirror", "landmarks") else None
    plane_stable_file = plane_stable if isinstance(plane_stable, (str, os.PathLike)) else None
    for role, f in (("plan", plan), ("stable", stable), ("landmarks_pre", lm_pre_file), ("landmarks_post", lm_post_file),
                    ("plane", plane_file), ("plane_stable", plane_stable_file)):
        if f is not None:
            inputs[role] = {"file": os.path.basename(f), "sha256": sha256_file(f)}

    def to_pre_scan(points):
        return pre_s.frame.to_scan(sym.inverse(points))

    return ScanComparison(
        affected_side=side,
        gain=gain_measure,
        loss=_change_measure(lost),
        discrepancy_pre_mm3=discrepancy_pre,
        discrepancy_post_mm3=discrepancy_post,
        defect_volume_pre_mm3=pre_volume[side],
        defect_volume_post_mm3=float(sum(m.volume_mm3 for _, m in post_defects)),
        defect_corrected_percent=corrected,
        registration=fit,
        registration_rms_mm=rms,
        stable_area_points=n_stable,
        plan=plan_result,
        provenance=provenance(inputs, params),
        plane_method=plane_fit.method,
        plane_uncertainty_deg=plane_fit.uncertainty_deg,
        discrepancy_pre_uncertainty_mm3=volume_uncertainty_mm3(pre_halves[side], plane_fit.covariance)
        if uncertainty else float("nan"),
        volume_gain_registration_sd_mm3=gain_sd,
        discrepancy_change_registration_sd_mm3=change_sd,
        defect_corrected_registration_sd_percent=corrected_sd,
        registration_sd_mm=motion_sd_mm,
        volume_gain_edge_sd_mm3=gain_edge_sd,
        discrepancy_change_edge_sd_mm3=change_edge_sd,
        volume_gain_uncertainty_mm3=float(np.hypot(gain_sd, gain_edge_sd)),
        discrepancy_change_uncertainty_mm3=float(np.hypot(change_sd, change_edge_sd)),
        flags=tuple(flags),
        zone_gain_mm3=zone_gain,
        zone_layout=zone_layout,
        gain_vertices_mm=to_pre_scan(gain_patch.vertices),
        gain_faces=gain_patch.faces,
        gain_values_mm=gain_patch.depth_mm,
        render_vertices=gain_patch.vertices,
        pre_depth=(pre_patch.vertices, pre_patch.faces, pre_patch.depth_mm),
        post_depth=(post_patch.vertices, post_patch.faces, post_patch.depth_mm),
    )


def _stable_selection_user(stable, pre_s: PreparedSurface, units):
    """Which points (placed in PRE's canonical frame) lie within 5 mm of the user's stable mesh."""
    mask_scan = load_scan(stable, units=units, face_sized=False)
    tree = cKDTree(pre_s.frame.to_canonical(mask_scan.vertices_mm))
    return lambda points: tree.query(points, distance_upper_bound=5.0)[0] <= 5.0


def _moved(pre_query: SurfaceQuery, placed: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Samples (registered into PRE's frame) that moved between the visits, and all within MOVED_DILATION_MM.

    Moved: farther from PRE than max(MOVED_MIN_MM, 3 x the robust spread of the registered stable samples).
    """
    d = np.abs(pre_query.closest(placed).signed_distance_mm)
    spread = 1.4826 * float(np.median(d[used])) if used.any() else 0.0
    t = max(MOVED_MIN_MM, 3.0 * spread)
    far = d > t
    if not far.any():
        return far
    return cKDTree(placed[far]).query(placed, distance_upper_bound=MOVED_DILATION_MM)[0] <= MOVED_DILATION_MM


def _stable_rms(pre_query: SurfaceQuery, registered_points: np.ndarray, pre_border_tree, margin_mm: float) -> float:
    """RMS distance (mm) from registered stable POST points to PRE.

    Pairs that land on PRE's border (skin PRE does not cover) or lie farther
    apart than RMS_CAP_MM (holes) are not registration error and are left out.
    """
    cp = pre_query.closest(registered_points)
    d = np.abs(cp.signed_distance_mm)
    d = d[(d < RMS_CAP_MM) & away_from_border(pre_border_tree, cp.points, margin_mm)]
    return float(np.sqrt(np.mean(d**2))) if len(d) else float("inf")


def _plan_vs_result(plan, pre_s: PreparedSurface, sym: SymmetryFrame, affected_half: Patch, directions: np.ndarray,
                    achieved_volume_mm3):
    """Planned (the defect.stl of PRE) vs achieved thickness over PRE's affected side.

    Both thicknesses are distances from the PRE skin along the gain's directions
    (``directions``, see :func:`gain_directions`): to the plan solid's outer
    (mirrored-skin) surface where the PRE point lies under the plan (the closest
    point where that line misses it), and to POST's skin (the gain). Areas are
    where each exceeds PLAN_THICKNESS_MM; Dice compares them, area-weighted.
    """
    plan_scan = load_scan(plan, units="mm", face_sized=False)  # defect.stl is written in mm
    plan_sym = sym.forward(pre_s.frame.to_canonical(plan_scan.vertices_mm))
    solid = trimesh.Trimesh(plan_sym, plan_scan.faces, process=False)
    planned_volume = float(abs(solid.volume)) if solid.is_watertight else float("nan")
    p, f = affected_half.vertices, affected_half.faces
    n = vertex_normals(p, f)
    hits = SurfaceQuery(plan_sym, plan_scan.faces).cast(p + 0.01 * n, n)
    hit = np.isfinite(hits["t_hit"])
    leaving = np.einsum("ij,ij->i", face_normals(plan_sym, plan_scan.faces)[np.where(hit, hits["face_ids"], 0)], n) > 0
    under_plan = hit & leaving  # a ray leaving the solid started inside it
    # The solid's outer surface: its faces off the PRE skin (the bottom faces lie on it).
    centroids = plan_sym[plan_scan.faces].mean(axis=1)
    on_skin = np.abs(SurfaceQuery(p, f).closest(centroids).signed_distance_mm) < 0.05
    outer = plan_scan.faces[~on_skin]
    planned = np.zeros(len(p))
    if len(outer) and under_plan.any():
        outer_query = SurfaceQuery(plan_sym, outer)
        along = outer_query.cast(p[under_plan], directions[under_plan])["t_hit"].astype(float)
        missed = ~(np.isfinite(along) & (along < MAX_PAIR_DEPTH_MM))
        if missed.any():
            along[missed] = np.abs(outer_query.closest(p[under_plan][missed]).signed_distance_mm)
        planned[under_plan] = along
    achieved = affected_half.depth_mm
    area = np.zeros(len(p))
    for k in range(3):
        np.add.at(area, f[:, k], face_areas_mm2(p, f) / 3)
    in_plan, in_result = planned > PLAN_THICKNESS_MM, achieved > PLAN_THICKNESS_MM
    dice = 2 * area[in_plan & in_result].sum() / max(area[in_plan].sum() + area[in_result].sum(), 1e-12)
    diff, w = np.abs(achieved - planned)[in_plan], area[in_plan]
    has_plan = w.sum() > 0
    return {
        "planned_volume_mm3": planned_volume,
        "achieved_volume_mm3": achieved_volume_mm3,
        "plan_thickness_difference_mean_mm": float(np.sum(diff * w) / w.sum()) if has_plan else float("nan"),
        "plan_thickness_difference_p95_mm": float(_weighted_quantile(diff, w, 0.95)) if has_plan else float("nan"),
        "plan_dice": float(dice),
        "plan_thickness_threshold_mm": PLAN_THICKNESS_MM,
    }


#: Planned and achieved areas are where the thickness exceeds this (mm).
PLAN_THICKNESS_MM = 0.5


def _weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return values[order][np.searchsorted(cum, q * cum[-1])]
