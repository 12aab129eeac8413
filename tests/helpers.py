"""Test helpers: known transforms of a mesh (motion, mirror, re-meshing, noise)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def random_rigid(seed: int):
    """A random rotation (any angle) and a translation of up to 500 mm."""
    rng = np.random.default_rng(seed)
    rot = Rotation.random(random_state=seed).as_matrix()
    return rot, rng.uniform(-500, 500, 3)


def move(points, rot, trans):
    return np.asarray(points) @ rot.T + trans


def mirror_x(vertices, faces):
    """Mirror across x = 0 (patient's left becomes right); winding reversed to keep normals outward."""
    return np.asarray(vertices) * np.array([-1.0, 1.0, 1.0]), np.asarray(faces)[:, ::-1].copy()


def subdivide(vertices, faces):
    import trimesh

    return trimesh.remesh.subdivide(vertices, faces)


def decimate(vertices, faces, fraction: float):
    from hemiface._open3d import open3d

    o3d = open3d()
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.array(vertices, dtype=float)), o3d.utility.Vector3iVector(np.array(faces, dtype=np.int32))
    )
    out = mesh.simplify_quadric_decimation(int(len(faces) * fraction))
    return np.asarray(out.vertices), np.asarray(out.triangles)


def add_noise(vertices, sigma_mm: float, seed: int = 0):
    return np.asarray(vertices) + np.random.default_rng(seed).normal(0.0, sigma_mm, np.shape(vertices))
