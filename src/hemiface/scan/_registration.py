"""Robust rigid registration of surface points onto a surface (point-to-plane ICP).

Each step solves the linearised point-to-plane problem with Tukey biweights
(iteratively reweighted least squares): pairs farther apart than the robust
scale have no influence at all, so changed areas (a defect, a graft, swelling,
an expression) drop out. The scale is annealed from wide to tight, so a rough
start still converges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .. import logger
from .._errors import RegistrationError
from ._distance import SurfaceQuery

#: Steps below these are at the noise floor of closest points switching triangles.
ANGLE_TOL_RAD = 2e-5
OFFSET_TOL_MM = 2e-4


def tukey_weights(residual: np.ndarray, scale_mm: float) -> np.ndarray:
    u = residual / scale_mm
    return np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)


def annealing_scales(start_mm: float, final_mm: float, steps: int = 8) -> list[float]:
    """Robust scales from wide (captures a rough start) to tight."""
    return list(np.geomspace(start_mm, final_mm, steps)) if start_mm > final_mm else [final_mm]


def rotation_from_vector(omega: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation by |omega| radians about omega."""
    theta = float(np.linalg.norm(omega))
    if theta < 1e-15:
        return np.eye(3)
    k = omega / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def rotation_angle(rotation: np.ndarray) -> float:
    """The angle (radians) of a rotation matrix: arccos((trace - 1) / 2)."""
    return float(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)))


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """The rotation vector (axis times angle, radians) of a rotation matrix: the inverse of Rodrigues."""
    return Rotation.from_matrix(rotation).as_rotvec()


def robust_rigid_step(query: SurfaceQuery, points: np.ndarray, normals: np.ndarray, scale_mm: float):
    """One reweighted point-to-plane step moving ``points`` toward the surface.

    Returns (rotation, translation) of the small correction ``p -> R p + t`` and
    the closest-point distances before it. Pairs whose normals disagree by more
    than 60 degrees are ignored.
    """
    cp = query.closest(points)
    m = query.face_normals[cp.face_ids]
    residual = np.einsum("ij,ij->i", points - cp.points, m)
    w = tukey_weights(cp.signed_distance_mm, scale_mm) * (np.einsum("ij,ij->i", normals, m) > 0.5)
    if np.count_nonzero(w) < 50:
        raise RegistrationError("too few matching points between the two surfaces")
    jac = np.hstack([np.cross(points, m), m])
    lhs = (jac * w[:, None]).T @ jac + 1e-9 * np.eye(6)
    x = np.linalg.solve(lhs, -(jac * w[:, None]).T @ residual)
    return rotation_from_vector(x[:3]), x[3:], cp.signed_distance_mm


@dataclass(frozen=True)
class RigidFit:
    """``p -> rotation @ p + translation`` and how well it fits (mm)."""

    rotation: np.ndarray
    translation: np.ndarray
    rms_mm: float
    inlier_fraction: float
    iterations: int
    converged: bool

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) @ self.rotation.T + self.translation


def register_rigid(
    query: SurfaceQuery,
    points: np.ndarray,
    normals: np.ndarray,
    *,
    robust_scale_mm: float = 1.0,
    initial_scale_mm: float = 10.0,
    max_iterations: int = 200,
    initial: "RigidFit | None" = None,
) -> RigidFit:
    """Rigidly register surface points (with unit normals) onto the queried surface.

    ``rms_mm`` is the RMS distance over the pairs within ``robust_scale_mm``
    after the fit; ``inlier_fraction`` is their share. ``initial``: start from this
    fit (with ``initial_scale_mm`` as the first robust scale) instead of the identity.
    """
    points, normals = np.asarray(points, float), np.asarray(normals, float)
    if len(points) < 100:
        raise RegistrationError(f"only {len(points)} points to register; the stable region is too small")
    rot, trans = (np.eye(3), np.zeros(3)) if initial is None else (initial.rotation.copy(), initial.translation.copy())
    schedule = annealing_scales(initial_scale_mm, robust_scale_mm)
    scale = schedule.pop(0)
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        d_rot, d_trans, _ = robust_rigid_step(query, points @ rot.T + trans, normals @ rot.T, scale)
        rot, trans = d_rot @ rot, d_rot @ trans + d_trans
        angle = rotation_angle(d_rot)
        small = angle < ANGLE_TOL_RAD and np.linalg.norm(d_trans) < OFFSET_TOL_MM
        if small and not schedule:
            converged = True
            break
        if schedule and angle < 1e-4 and np.linalg.norm(d_trans) < 1e-3:
            scale = schedule.pop(0)
    dist = np.abs(query.closest(points @ rot.T + trans).signed_distance_mm)
    inlier = dist < robust_scale_mm
    rms = float(np.sqrt(np.mean(dist[inlier] ** 2))) if inlier.any() else float("inf")
    if not converged:
        logger.warning("rigid registration did not converge in %d iterations", iterations)
    return RigidFit(rot, trans, rms, float(inlier.mean()), iterations, converged)
