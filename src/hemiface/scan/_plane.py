"""The symmetry plane of one visit: one swappable piece used alike by ``analyze_scan`` and ``compare_scans``.

Methods (``plane=``):

``"mirror"`` (default)
    Mirror-and-register (:mod:`._symmetry`: robust Tukey ICP, then a refit without
    the pairs more than 2 mm asymmetric), then a *consensus* refit: the plane is
    refitted on the mirror pairs that agree with it to within ``t`` and nothing
    else, every pair within :data:`EXCLUSION_DILATION_MM` of a disagreeing pair
    (or of its mirror image) left out, until the set of pairs stops changing.
    ``t`` is :data:`EXCLUSION_NOISE_FACTOR` times the robust spread of the first
    fit's inlier residuals, at least :data:`EXCLUSION_MIN_MM`: a shallow, broad
    deficit inside the Tukey band (which cannot tell it from a turned plane) is
    excluded at any depth above the face's own noise, not only beyond 2 mm.
    With ``stable`` (points of areas known to be unaffected) only the mirror
    pairs whose two ends both lie within :data:`STABLE_REACH_MM` of them
    register (iterated with the plane), with the robust loss and no exclusion.
``"landmarks"``
    The plane through nasion, subnasale and pogonion (or menton), as clinicians
    draw it: the landmarks given, else those :func:`hemiface.scan.detect_landmarks`
    found for the face frame (``orient="auto"``).
a JSON file or mapping
    ``{"normal": [x, y, z], "point": [x, y, z]}`` in the scan's own frame and
    units: a plane a technician has set.

Uncertainty: for ``"mirror"`` a delete-a-group spatial block jackknife of the
fit (:data:`JACKKNIFE_GROUPS` groups of :data:`JACKKNIFE_BLOCK_MM` blocks of the
registered samples; each group left out and the plane refitted), which gives
the covariance of the plane's two tilts and offset; ``uncertainty_deg`` is the
RMS of the tilt. For ``"landmarks"`` the same covariance from
:data:`LANDMARK_SD_MM` of placement error per landmark (Monte Carlo, fixed seed);
for a given plane 0 (taken as exact).

Sign convention: the plane's normal points toward the patient's left, so
``signed_distance_mm`` > 0 on the left hemiface.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.spatial import cKDTree

from .. import logger
from .._errors import HemifaceError, LandmarkError, RegistrationError
from ._distance import SurfaceQuery
from ._io import SurfaceScan, load_scan
from ._mesh import face_areas_mm2, vertex_areas_mm2, vertex_normals
from ._region import FaceRegion
from ._surface import PreparedSurface
from ._symmetry import (
    SymmetryPlane, fit_symmetry_plane, fit_symmetry_plane_masked, mirror_distance_mm, near_asymmetry, sample_surface,
)

#: Spacing of the surface points registered to find the symmetry plane.
SAMPLE_CELL_MM = 2.0
#: Consensus refit: pairs farther apart than max(EXCLUSION_MIN_MM, EXCLUSION_NOISE_FACTOR x noise) disagree.
EXCLUSION_MIN_MM = 0.25
EXCLUSION_NOISE_FACTOR = 3.0
#: ... and every pair this close to a disagreeing one (or to its mirror image) is left out too.
EXCLUSION_DILATION_MM = 5.0
#: The consensus refit keeps at least this share of the samples (else the masked fit stands).
MIN_CONSENSUS_SHARE = 0.25
CONSENSUS_PASSES = 4
#: Above this many vertices the plane is fitted on a copy clustered to PLANE_CLUSTER_MM (the fit samples one
#: point per 2 mm voxel anyway; a 1 mm surface moves closest points by about 0.01 mm on facial curvature).
PLANE_MAX_VERTICES = 150_000
PLANE_CLUSTER_MM = 1.0
#: Samples this close to a ``stable`` point register.
STABLE_REACH_MM = 3.0
#: Jackknife blocks on the scale of the aesthetic zones (a malar or buccal area), so that leaving a block out
#: leaves out what a zone of atrophy would; 20 mm blocks under-covered the real faces (see the README).
JACKKNIFE_BLOCK_MM = 40.0
JACKKNIFE_GROUPS = 12
#: Placement error assumed per midline landmark for the ``"landmarks"`` plane's uncertainty (mm, per axis).
LANDMARK_SD_MM = 1.0
LOWER_MIDLINE = ("pogonion", "menton")


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


@dataclass(frozen=True, eq=False)
class PlaneFit:
    """A visit's symmetry plane, how it was found and how well it is known.

    ``covariance`` is over (tilt toward +y, tilt toward +z, offset mm) of the normal
    in the symmetry frame (radians, radians, mm); ``uncertainty_deg`` the RMS tilt.
    """

    plane: SymmetryPlane
    frame: SymmetryFrame
    method: str
    used_fraction: float
    exclusion_mm: float
    covariance: np.ndarray
    uncertainty_deg: float
    offset_uncertainty_mm: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "used_fraction": self.used_fraction, "exclusion_mm": self.exclusion_mm,
                "uncertainty_deg": self.uncertainty_deg, "offset_uncertainty_mm": self.offset_uncertainty_mm,
                **self.details}


def _tilts(normal: np.ndarray, offset: float, frame: SymmetryFrame) -> np.ndarray:
    """(tilt toward y, tilt toward z, offset mm) of a plane seen in ``frame`` (whose own plane is (0, 0, 0))."""
    normal = np.asarray(normal, float)
    if normal @ frame.rotation[0] < 0:
        normal, offset = -normal, -offset
    n = frame.rotation @ normal
    o = offset - normal @ frame.origin
    return np.array([n[1] / n[0], n[2] / n[0], o / n[0]])


def registration_samples(prepared: PreparedSurface, region: FaceRegion, query: SurfaceQuery | None = None,
                         about: "SymmetryFrame | None" = None):
    """Evenly spread surface points (with normals) over the enlarged face region, away from borders.

    The region is placed in the canonical frame, or about the plane of ``about`` when given.
    """
    v, faces = prepared.vertices, prepared.faces
    w = v if about is None else about.forward(v)
    inside = (region.ellipse_margin(w, scale=region.registration_scale) > 0) & (region.depth_margin(w) > 0)
    inside &= prepared.away_from_border
    return sample_surface(v, faces, inside[faces].all(axis=1), cell_mm=SAMPLE_CELL_MM, query=query)


def _refit(query, points, normals, plane, robust_scale_mm, max_iterations=200):
    return fit_symmetry_plane(
        query, points, normals, initial_normal=plane.normal, initial_offset_mm=plane.offset_mm,
        robust_scale_mm=robust_scale_mm, initial_scale_mm=robust_scale_mm, max_iterations=max_iterations,
    )


def _consensus(query, points, normals, plane, used, robust_scale_mm, *, disagrees=None, max_passes=CONSENSUS_PASSES):
    """Refit on the pairs that agree with the plane (module docstring). Returns (plane, used, t, passes).

    ``disagrees(plane, t, noise, used)``, when given, replaces the rule "the mirror image lies farther than t"
    (the benchmark's candidates in ``benchmarks/study_default_plane.py``).
    """
    d0 = mirror_distance_mm(query, points[used], plane)
    noise = 1.4826 * float(np.median(d0[d0 < robust_scale_mm])) if np.any(d0 < robust_scale_mm) else robust_scale_mm
    t = max(EXCLUSION_MIN_MM, EXCLUSION_NOISE_FACTOR * noise)
    passes = 0
    for passes in range(1, max_passes + 1):
        asym = mirror_distance_mm(query, points, plane) > t if disagrees is None else disagrees(plane, t, noise, used)
        new_used = ~near_asymmetry(points, asym, plane, EXCLUSION_DILATION_MM)
        if new_used.sum() < MIN_CONSENSUS_SHARE * len(points):
            logger.info("symmetry plane: only %.0f%% of the face agrees within %.2f mm; keeping the masked fit",
                        100 * new_used.mean(), t)
            break
        if np.array_equal(new_used, used):
            break
        used = new_used
        plane = _refit(query, points[used], normals[used], plane, robust_scale_mm)
    return plane, used, t, passes


def _stable_fit(query, points, normals, near, stable_tree, robust_scale_mm):
    """Fit on the mirror pairs whose two ends both lie in the stable area. Returns (plane, used, passes).

    A sample on the painted unaffected side whose mirror image lands in the
    atrophy would pull the plane as much as an unpainted one: the first fit uses
    the samples near a stable point, each later one only those whose mirror image
    (under the last plane) is near a stable point too, until the set stops changing.
    """
    used = near
    plane = fit_symmetry_plane(query, points[used], normals[used], robust_scale_mm=robust_scale_mm)
    passes = 0
    for passes in range(1, CONSENSUS_PASSES + 1):
        mirrored = stable_tree.query(plane.reflect(points), distance_upper_bound=STABLE_REACH_MM)[0] <= STABLE_REACH_MM
        new_used = near & mirrored
        if new_used.sum() < 100:
            raise RegistrationError(f"--stable: only {int(new_used.sum())} registration points are stable together with "
                                    "their mirror image (need 100); paint both sides' unaffected areas")
        if np.array_equal(new_used, used):
            break
        used = new_used
        plane = _refit(query, points[used], normals[used], plane, robust_scale_mm)
    return plane, used, passes


def block_groups(xy: np.ndarray, block_mm: float, n_groups: int) -> np.ndarray:
    """Jackknife group (0 .. n_groups - 1) of each point: square blocks of ``block_mm`` over (x, y), dealt to
    the groups in a fixed random order (seed 0), so each group is a few blocks spread over the face."""
    cells = np.floor(np.asarray(xy, float)[:, :2] / block_mm).astype(np.int64)
    _, block = np.unique(cells, axis=0, return_inverse=True)
    block = block.reshape(-1)
    group_of_block = np.random.default_rng(0).permutation(int(block.max()) + 1) % n_groups
    return group_of_block[block]


def jackknife_covariance(estimates) -> np.ndarray:
    """(k - 1) / k times the scatter of k delete-a-group estimates (rows) about their mean."""
    e = np.asarray(estimates, float)
    k = len(e)
    d = e - e.mean(axis=0)
    return (k - 1) / k * d.T @ d


def _jackknife(query, points, normals, used, plane, frame, robust_scale_mm) -> np.ndarray:
    """Covariance of (tilt y, tilt z, offset) from a delete-a-group jackknife over spatial blocks."""
    group = block_groups(frame.forward(points), JACKKNIFE_BLOCK_MM, JACKKNIFE_GROUPS)
    estimates = []
    for g in range(JACKKNIFE_GROUPS):
        keep = used & (group != g)
        if keep.sum() < 100 or keep.sum() == used.sum():
            continue
        try:
            pl = _refit(query, points[keep], normals[keep], plane, robust_scale_mm, max_iterations=30)
        except RegistrationError:
            continue
        estimates.append(_tilts(pl.normal, pl.offset_mm, frame))
    if len(estimates) < 3:
        return np.full((3, 3), np.nan)
    return jackknife_covariance(estimates)


def _midline_points(landmarks, frame) -> np.ndarray:
    if not landmarks:
        raise LandmarkError("--plane landmarks needs landmarks (nasion, subnasale and pogonion or menton); give --landmarks")
    lower = next((n for n in LOWER_MIDLINE if n in landmarks), None)
    missing = [n for n in ("nasion", "subnasale") if n not in landmarks] + ([] if lower else ["pogonion or menton"])
    if missing:
        raise LandmarkError(f"--plane landmarks needs {', '.join(missing)} among the landmarks")
    return frame.to_canonical(np.array([landmarks["nasion"], landmarks["subnasale"], landmarks[lower]], float))


def _plane_through(points: np.ndarray) -> tuple[np.ndarray, float]:
    n = np.cross(points[1] - points[0], points[2] - points[0])
    norm = np.linalg.norm(n)
    if norm < 1e-6 * np.linalg.norm(points[2] - points[0]) ** 2:
        raise LandmarkError("the midline landmarks lie on one line; they do not fix a plane")
    n /= norm
    if n[0] < 0:
        n = -n
    return n, float(n @ points.mean(axis=0))


def read_plane_file(plane: str | os.PathLike | Mapping, units_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray, str]:
    """(normal, point in mm, name) of a plane set by hand: JSON ``{"normal": [...], "point": [...]}`` in the scan's frame."""
    name = "given"
    if not isinstance(plane, Mapping):
        path = Path(plane)
        name = path.name
        try:
            plane = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HemifaceError(f"--plane {path.name}: not a readable JSON plane ({exc})") from None
    try:
        normal = np.asarray(plane["normal"], float).reshape(3)
        point = np.asarray(plane["point"], float).reshape(3) * units_mm
    except (KeyError, TypeError, ValueError):
        raise HemifaceError(f"--plane {name}: needs \"normal\": [x, y, z] and \"point\": [x, y, z]") from None
    if not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 1e-9 or not np.all(np.isfinite(point)):
        raise HemifaceError(f"--plane {name}: the normal must be a finite non-zero vector and the point finite")
    return normal / np.linalg.norm(normal), point, name


def stable_points_mm(stable, scan: SurfaceScan, units: str):
    """Points (scan frame, mm) of the ``stable`` areas and a name for provenance, or (None, None)."""
    if stable is None:
        return None, None
    if isinstance(stable, (str, os.PathLike)):
        mask_scan = load_scan(stable, units=units, face_sized=False)
        return mask_scan.vertices_mm, os.path.basename(stable)
    mask = np.asarray(stable)
    if mask.dtype == bool:
        if mask.shape != (len(scan.vertices_mm),):
            raise HemifaceError(f"stable: a boolean mask needs one value per scan vertex ({len(scan.vertices_mm)}); "
                                f"got shape {mask.shape}")
        return scan.vertices_mm[mask], f"vertex mask ({int(mask.sum())} vertices)"
    if mask.ndim != 1 or not np.issubdtype(mask.dtype, np.integer) or mask.size == 0 \
            or mask.min() < 0 or mask.max() >= len(scan.vertices_mm):
        raise HemifaceError("stable: give a mesh file, a boolean mask over the scan's vertices or their indices")
    return scan.vertices_mm[mask], f"vertex indices ({mask.size} vertices)"


def _covariance_summary(cov):
    if not np.all(np.isfinite(cov)):
        return float("nan"), float("nan")
    return float(np.degrees(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0)))), float(np.sqrt(max(cov[2, 2], 0.0)))


def fit_plane(
    prepared: PreparedSurface,
    region: FaceRegion,
    robust_scale_mm: float,
    *,
    method: str | os.PathLike | Mapping = "mirror",
    stable_points_mm: np.ndarray | None = None,
    landmarks: Mapping | None = None,
    units_mm: float = 1.0,
    uncertainty: bool = True,
) -> PlaneFit:
    """The symmetry plane of a prepared surface (module docstring). Plane and frame in its canonical frame.

    ``stable_points_mm``: points (scan frame, mm) of areas known to be unaffected;
    ``landmarks`` (scan frame, mm) for ``method="landmarks"`` (default: the landmarks
    that fixed the surface's frame, given or detected); ``units_mm``: mm per
    unit of the scan, for a plane file.
    """
    details: dict = {}
    if len(prepared.vertices) > PLANE_MAX_VERTICES:
        prepared = _clustered(prepared, region)
        details["fitted_on_vertices"] = len(prepared.vertices)
    v, faces = prepared.vertices, prepared.faces
    query = SurfaceQuery(v, faces)
    if isinstance(method, str) and method == "landmarks":
        pts = _midline_points(landmarks or prepared.landmarks_mm, prepared.frame)
        normal, offset = _plane_through(pts)
        plane = SymmetryPlane(normal, offset, float("nan"), float("nan"), 0, True)
        sym = SymmetryFrame.from_plane(plane)
        rng = np.random.default_rng(0)
        draws = [_tilts(*_plane_through(pts + rng.normal(0, LANDMARK_SD_MM, pts.shape)), sym) for _ in range(200)]
        cov = np.cov(np.array(draws).T)
        plane = _quality(query, prepared, region, plane)
        deg, off = _covariance_summary(cov)
        return PlaneFit(plane, sym, "landmarks", float("nan"), float("nan"), cov, deg, off,
                        {"landmark_sd_mm": LANDMARK_SD_MM})
    if not (isinstance(method, str) and method == "mirror"):
        normal_scan, point_scan, name = read_plane_file(method, units_mm)
        normal = prepared.frame.rotation @ normal_scan
        point = prepared.frame.to_canonical(point_scan[None, :])[0]
        if normal[0] < 0:
            normal = -normal
        plane = _quality(query, prepared, region, SymmetryPlane(normal, float(normal @ point), float("nan"),
                                                                 float("nan"), 0, True))
        return PlaneFit(plane, SymmetryFrame.from_plane(plane), f"file:{name}", float("nan"), float("nan"),
                        np.zeros((3, 3)), 0.0, 0.0)

    points, normals = registration_samples(prepared, region, query)
    if stable_points_mm is not None:
        stable_tree = cKDTree(prepared.frame.to_canonical(np.asarray(stable_points_mm, float)))
        near = stable_tree.query(points, distance_upper_bound=STABLE_REACH_MM)[0] <= STABLE_REACH_MM
        if near.sum() < 100:
            raise RegistrationError(f"--stable covers only {int(near.sum())} of the face's registration points (need 100)")
        plane, used, passes = _stable_fit(query, points, normals, near, stable_tree, robust_scale_mm)
        plane_method, t = "mirror (stable mask)", float("nan")
    else:
        plane, used = fit_symmetry_plane_masked(query, points, normals, robust_scale_mm=robust_scale_mm)
        plane, used, t, passes = _consensus(query, points, normals, plane, used, robust_scale_mm)
        plane_method = "mirror"
    sym = SymmetryFrame.from_plane(plane)
    cov = _jackknife(query, points, normals, used, plane, sym, robust_scale_mm) if uncertainty else np.full((3, 3), np.nan)
    deg, off = _covariance_summary(cov)
    logger.info("symmetry plane (%s): %.0f%% of the samples agree within %.2f mm after %d consensus passes; "
                "uncertainty %.3f deg, %.3f mm", plane_method, 100 * used.mean(), t, passes, deg, off)
    details.update({"consensus_passes": passes, "jackknife_groups": JACKKNIFE_GROUPS,
                    "jackknife_block_mm": JACKKNIFE_BLOCK_MM})
    return PlaneFit(plane, sym, plane_method, float(used.mean()), t, cov, deg, off, details)


def _clustered(prepared: PreparedSurface, region: FaceRegion) -> PreparedSurface:
    """The working surface simplified by vertex clustering (PLANE_CLUSTER_MM cubes), for the plane fit only."""
    from ._mesh import cluster_vertices
    from ._surface import away_from_border

    v, f = cluster_vertices(prepared.vertices, prepared.faces, PLANE_CLUSTER_MM)
    logger.info("symmetry plane fitted on a copy clustered to %g mm (%d of %d vertices)", PLANE_CLUSTER_MM, len(v),
                len(prepared.vertices))
    away = away_from_border(prepared.border_tree, v, region.border_margin_mm)
    return PreparedSurface(prepared.scan, prepared.frame, v, f, prepared.border_tree, away)


def _quality(query, prepared, region, plane: SymmetryPlane) -> SymmetryPlane:
    """RMS and inlier share of a plane set without a fit (over the registration samples, within 1.5 mm)."""
    points, _ = registration_samples(prepared, region, query)
    d = mirror_distance_mm(query, points, plane)
    inlier = d < 1.5
    rms = float(np.sqrt(np.mean(d[inlier] ** 2))) if inlier.any() else float("nan")
    return SymmetryPlane(plane.normal, plane.offset_mm, rms, float(inlier.mean()), 0, True)


def depth_sensitivity(patch_vertices: np.ndarray, patch_faces: np.ndarray, top: np.ndarray) -> np.ndarray:
    """d depth / d (tilt y, tilt z, offset) at each patch vertex (symmetry frame), to first order.

    The mirrored surface at ``top`` is the reflection of q = top mirrored; a plane
    tilted by (a, b) with offset o moves it by -2 (q_y a + q_z b - o) e_x
    - 2 q_x (a e_y + b e_z); depth changes by that motion along the surface's
    outward normal (taken at the vertex).
    """
    m = vertex_normals(patch_vertices, patch_faces)
    q = top * np.array([-1.0, 1.0, 1.0])
    da = -2.0 * (q[:, 1] * m[:, 0] + q[:, 0] * m[:, 1])
    db = -2.0 * (q[:, 2] * m[:, 0] + q[:, 0] * m[:, 2])
    do = 2.0 * m[:, 0]
    return np.column_stack([da, db, do])


def volume_uncertainty_mm3(patch, covariance: np.ndarray) -> float:
    """SD of the depth integral over a patch from the plane's covariance (first order; see depth_sensitivity)."""
    if not len(patch.faces):
        return 0.0
    if not np.all(np.isfinite(covariance)):
        return float("nan")
    g = vertex_areas_mm2(patch.vertices, patch.faces) @ depth_sensitivity(patch.vertices, patch.faces, patch.top)
    return float(np.sqrt(max(g @ covariance @ g, 0.0)))
