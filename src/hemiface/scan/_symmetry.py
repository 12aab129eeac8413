"""Midsagittal (symmetry) plane by mirror-and-register.

The face is reflected across a trial plane and the mirror image is rigidly
registered to the original with a robust (Tukey-weighted) point-to-surface
ICP. The robust weights let the asymmetric (diseased) area and its mirror
image drop out, so a large defect does not tilt the plane. The composed
transform (rigid correction after reflection) is improper; the plane is read
from it: the normal is the eigenvector of its symmetric part with eigenvalue
-1 and the offset is half the translation along that normal. The reflection is
then replaced by the one across the new plane and registered again, until the
plane stops moving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import logger
from .._errors import RegistrationError
from ._distance import SurfaceQuery
from ._registration import ANGLE_TOL_RAD, OFFSET_TOL_MM, annealing_scales, robust_rigid_step
from ._mesh import face_area_vectors


@dataclass(frozen=True)
class SymmetryPlane:
    """The plane ``normal . p = offset_mm`` (canonical frame, mm).

    ``normal`` points toward the patient's left, so :meth:`signed_distance_mm`
    is > 0 on the left hemiface.
    """

    normal: np.ndarray
    offset_mm: float
    rms_mm: float
    inlier_fraction: float
    iterations: int
    converged: bool

    def signed_distance_mm(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) @ self.normal - self.offset_mm

    def reflect(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points)
        return p - 2.0 * self.signed_distance_mm(p)[:, None] * self.normal[None, :]


def reflection(normal: np.ndarray, offset_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and translation of the reflection across ``normal . p = offset``."""
    h = np.eye(3) - 2.0 * np.outer(normal, normal)
    return h, 2.0 * offset_mm * normal


def plane_from_improper(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Nearest reflection plane of the improper rigid map ``p -> a p + b``."""
    sym = 0.5 * (a + a.T)
    w, v = np.linalg.eigh(sym)
    normal = v[:, 0]
    if normal[0] < 0:  # point toward the canonical +x (patient's left)
        normal = -normal
    return normal, float(normal @ b) / 2.0


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, face_mask: np.ndarray, *, cell_mm: float = 2.0, per_cell: float = 16.0,
    seed: int = 0, query: SurfaceQuery | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One point per ``cell_mm`` voxel of the masked surface, with its unit normal.

    Each voxel's point is the centroid of many area-uniform random points in it
    (``per_cell`` per voxel area on average, fixed seed), projected back onto
    the surface, and its normal their mean normal. The sample thus depends on
    the surface, hardly on how it is triangulated or on the random draw.
    """
    f = faces[face_mask]
    if len(f) == 0:
        raise RegistrationError("symmetry plane: the face region is empty")
    a = face_area_vectors(vertices, f)
    areas = np.linalg.norm(a, axis=1)
    n_points = int(np.ceil(per_cell * areas.sum() / cell_mm**2))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(f), size=n_points, p=areas / areas.sum())
    r1, r2 = rng.random(n_points), rng.random(n_points)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    v0, v1, v2 = (vertices[f[pick, k]] for k in range(3))
    points = v0 + r1[:, None] * (v1 - v0) + r2[:, None] * (v2 - v0)
    normals = a[pick] / areas[pick, None]
    cells = np.floor((points - vertices.min(axis=0)) / cell_mm).astype(np.int64)
    _, cell_of, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    cell_of = cell_of.reshape(-1)
    keep = counts >= max(2, per_cell / 4)  # voxels the surface only grazes give unstable centroids
    sums_p = np.zeros((len(counts), 3))
    sums_n = np.zeros((len(counts), 3))
    np.add.at(sums_p, cell_of, points)
    np.add.at(sums_n, cell_of, normals)
    centroids = sums_p[keep] / counts[keep, None]
    mean_n = sums_n[keep]
    mean_n /= np.maximum(np.linalg.norm(mean_n, axis=1, keepdims=True), 1e-12)
    on_surface = (query or SurfaceQuery(vertices, faces)).closest(centroids).points
    return on_surface, mean_n


def fit_symmetry_plane(
    query: SurfaceQuery,
    points: np.ndarray,
    point_normals: np.ndarray,
    *,
    initial_normal=(1.0, 0.0, 0.0),
    initial_offset_mm: float = 0.0,
    robust_scale_mm: float = 1.5,
    initial_scale_mm: float = 10.0,
    max_iterations: int = 200,
    accelerate: bool = True,
) -> SymmetryPlane:
    """Fit the midsagittal plane of a face (canonical frame, mm).

    Minimises sum(rho(d_i)) over the plane, where ``d_i`` is the distance from
    the mirror image of point i to the surface and ``rho`` is Tukey's biweight
    with scale ``robust_scale_mm``: mirror pairs farther apart than the scale
    (a defect and its mirror image) have no influence at all. The scale is
    annealed from ``initial_scale_mm`` so that a rough initial plane still
    converges. Each step registers the mirror image rigidly (point-to-plane,
    iteratively reweighted); the plane is read from the composed improper map.
    At each scale the steps are Anderson-accelerated (``accelerate``, see
    :func:`_accelerated`): the same fixed point in about half the steps.

    Parameters
    ----------
    query : closest-point queries on the face surface.
    points, point_normals : (k, 3) surface points (and unit normals) to mirror.
    accelerate : False for the plain fixed-point iteration (for comparison).
    """
    src, src_n = np.asarray(points), np.asarray(point_normals)
    if len(src) < 100:
        raise RegistrationError(f"symmetry plane: only {len(src)} surface points to register; the face region is too small")
    normal = np.asarray(initial_normal, float) / np.linalg.norm(initial_normal)
    offset = float(initial_offset_mm)
    iterations = 0
    converged = False
    schedule = annealing_scales(initial_scale_mm, robust_scale_mm)
    scale = schedule.pop(0)
    history: list[tuple[np.ndarray, np.ndarray]] = []  # (x, g(x) - x) at this scale, for the acceleration
    while iterations < max_iterations:
        iterations += 1
        h, hb = reflection(normal, offset)
        try:
            d_rot, d_trans, _ = robust_rigid_step(query, src @ h.T + hb, src_n @ h.T, scale)
        except RegistrationError:
            raise RegistrationError("symmetry plane: too few matching points between the face and its mirror image") from None
        new_normal, new_offset = plane_from_improper(d_rot @ h, d_rot @ hb + d_trans)
        angle_change = float(np.arccos(np.clip(new_normal @ normal, -1, 1)))
        offset_change = abs(new_offset - offset)
        settled = angle_change < ANGLE_TOL_RAD and offset_change < OFFSET_TOL_MM
        if not schedule and settled:
            normal, offset = new_normal, new_offset
            converged = True
            break
        if schedule and (settled or (angle_change < 1e-4 and offset_change < 1e-3)):
            normal, offset = new_normal, new_offset
            scale = schedule.pop(0)
            history.clear()
            continue
        if accelerate:
            normal, offset = _accelerated(history, normal, offset, new_normal, new_offset)
        else:
            normal, offset = new_normal, new_offset
    # Quality of the final reflection.
    h, hb = reflection(normal, offset)
    dist = np.abs(query.closest(src @ h.T + hb).signed_distance_mm)
    inlier = dist < robust_scale_mm
    rms = float(np.sqrt(np.mean(dist[inlier] ** 2))) if inlier.any() else float("nan")
    if not converged:
        logger.warning("symmetry plane: ICP did not converge in %d iterations", iterations)
    logger.info(
        "symmetry plane: normal %s, offset %.3f mm, fit RMS %.3f mm over %.0f%% of the face, %d iterations",
        np.round(normal, 5), offset, rms, 100 * inlier.mean(), iterations,
    )
    return SymmetryPlane(normal, offset, rms, float(inlier.mean()), iterations, converged)


#: Anderson acceleration of the plane iteration (at each robust scale): how many past steps it mixes.
ACCELERATION_MEMORY = 3
#: ... with the normal weighted by a face's size (mm), so that a tilt and an offset count by how far they move the face.
ACCELERATION_LENGTH_MM = 100.0


def _accelerated(history: list, normal, offset, new_normal, new_offset) -> tuple[np.ndarray, float]:
    """The next plane of the fixed-point iteration ``x -> g(x)``, Anderson-accelerated (type II).

    At a robust scale each reflect-and-register step moves the plane only
    part of the way (the improper map's non-reflection part, discarded each step,
    is correlated with its reflection part): the iteration converges linearly,
    about a third of the remaining distance per step on faces. Mixing the last
    :data:`ACCELERATION_MEMORY` steps reaches the same fixed point (the same
    stopping test on the plain step) in far fewer steps. ``x`` = (normal, offset
    mm); a step whose residual grew restarts the mixing from the plain step.
    """
    x = np.append(ACCELERATION_LENGTH_MM * normal, offset)
    f = np.append(ACCELERATION_LENGTH_MM * new_normal, new_offset) - x
    if history and np.linalg.norm(f) > np.linalg.norm(history[-1][1]):
        history.clear()
    history.append((x, f))
    del history[:-ACCELERATION_MEMORY - 1]
    nxt = x + f
    if len(history) > 1:
        dx = np.array([b[0] - a[0] for a, b in zip(history, history[1:])]).T
        df = np.array([b[1] - a[1] for a, b in zip(history, history[1:])]).T
        gamma = np.linalg.lstsq(df, f, rcond=None)[0]
        nxt = x + f - (dx + df) @ gamma
    n = np.linalg.norm(nxt[:3]) / ACCELERATION_LENGTH_MM
    if not np.isfinite(n) or n < 0.5:
        history.clear()
        return new_normal, new_offset
    return nxt[:3] / (n * ACCELERATION_LENGTH_MM), float(nxt[3] / n)


def mirror_distance_mm(query: SurfaceQuery, points: np.ndarray, plane: SymmetryPlane) -> np.ndarray:
    """Unsigned distance from each point's mirror image to the surface (0 for a symmetric face)."""
    return np.abs(query.closest(plane.reflect(points)).signed_distance_mm)


def near_asymmetry(points: np.ndarray, asym: np.ndarray, plane: SymmetryPlane, dilation_mm: float) -> np.ndarray:
    """Points within ``dilation_mm`` of an asymmetric point (``asym``), themselves or through their mirror image."""
    from scipy.spatial import cKDTree

    if not asym.any():
        return np.zeros(len(points), bool)
    tree = cKDTree(points[asym])
    near = tree.query(points, distance_upper_bound=dilation_mm)[0] <= dilation_mm
    near |= tree.query(plane.reflect(points), distance_upper_bound=dilation_mm)[0] <= dilation_mm
    return near


def fit_symmetry_plane_masked(
    query: SurfaceQuery,
    points: np.ndarray,
    point_normals: np.ndarray,
    *,
    asymmetry_mm: float = 2.0,
    dilation_mm: float = 10.0,
    passes: int = 3,
    robust_scale_mm: float = 1.5,
) -> tuple[SymmetryPlane, np.ndarray]:
    """Fit the plane, then refit without the asymmetric area and its mirror image.

    After each fit, points whose mirror image lies farther than ``asymmetry_mm``
    from the surface, and every point within ``dilation_mm`` of them or of their
    mirror images, are left out of the next fit. This removes a defect's shallow
    rim too, which the robust weights alone keep. Returns the plane and the mask of the
    points the final fit used.
    """
    used = np.ones(len(points), bool)
    plane = fit_symmetry_plane(query, points, point_normals, robust_scale_mm=robust_scale_mm)
    for _ in range(passes - 1):
        asym = mirror_distance_mm(query, points, plane) > asymmetry_mm
        if not asym.any():
            break
        new_used = ~near_asymmetry(points, asym, plane, dilation_mm)
        if new_used.sum() < 0.25 * len(points):
            logger.warning("symmetry plane: the face is asymmetric almost everywhere; keeping the robust fit without a mask")
            break
        if np.array_equal(new_used, used):
            break
        used = new_used
        plane = fit_symmetry_plane(
            query, points[used], point_normals[used], initial_normal=plane.normal,
            initial_offset_mm=plane.offset_mm, robust_scale_mm=robust_scale_mm, initial_scale_mm=robust_scale_mm,
        )
    return plane, used
