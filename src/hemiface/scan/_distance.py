"""Fast point-to-surface queries (open3d RaycastingScene, C++ BVH).

Signs come from the closest triangle's outward normal, never from ray parity:
parity assumes a closed mesh and flips signs on open face scans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._open3d import open3d
from ._mesh import face_normals


@dataclass(frozen=True, eq=False)
class ClosestPoints:
    points: np.ndarray  # (k, 3) closest points on the surface
    face_ids: np.ndarray  # (k,) closest triangle
    signed_distance_mm: np.ndarray  # (k,) > 0 when the query lies on the outer side


class SurfaceQuery:
    """Closest-point queries against one triangle mesh (built once, queried many times)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        o3d = open3d()
        # Coordinates are centred before the float32 conversion to keep precision.
        self._centre = vertices.mean(axis=0)
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(vertices - self._centre, dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
        )
        self.face_normals = face_normals(vertices, faces)

    def closest(self, points: np.ndarray) -> ClosestPoints:
        o3d = open3d()
        q = np.ascontiguousarray(np.asarray(points) - self._centre, dtype=np.float32)
        result = self._scene.compute_closest_points(o3d.core.Tensor(q))
        closest = result["points"].numpy().astype(np.float64) + self._centre
        ids = result["primitive_ids"].numpy().astype(np.int64)
        diff = np.asarray(points) - closest
        dist = np.linalg.norm(diff, axis=1)
        sign = np.where(np.einsum("ij,ij->i", diff, self.face_normals[ids]) >= 0, 1.0, -1.0)
        return ClosestPoints(closest, ids, sign * dist)

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> dict[str, np.ndarray]:
        """First hits of rays: ``t_hit`` (inf on a miss), ``face_ids``, barycentric ``uv``."""
        o3d = open3d()
        rays = np.concatenate([np.asarray(origins) - self._centre, directions], axis=-1).astype(np.float32)
        out = self._scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays)))
        return {
            "t_hit": out["t_hit"].numpy(),
            "face_ids": out["primitive_ids"].numpy().astype(np.int64),
            "uv": out["primitive_uvs"].numpy(),
        }
