"""Test helpers: known transforms of a mesh (motion, mirror, re-meshing, noise); where artefacts are kept."""

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


def surface_point(vertices, faces, x_mm, y_mm):
    """The surface point seen from the front at (x, y) (face looking toward +z)."""
    from hemiface.scan._distance import SurfaceQuery

    top = np.asarray(vertices)[:, 2].max() + 50
    hit = SurfaceQuery(np.asarray(vertices), np.asarray(faces)).cast(np.array([[x_mm, y_mm, top]]), np.array([[0, 0, -1.0]]))
    return np.array([x_mm, y_mm, top - hit["t_hit"][0]])


def pseudo_landmarks(vertices, faces):
    """Points a user could click (eye corners, nose tip, mouth corners) on a face looking toward +z."""
    from hemiface.scan._frame import find_pronasale

    tip = find_pronasale(np.asarray(vertices), np.asarray(faces))
    at = lambda dx, dy: surface_point(vertices, faces, tip[0] + dx, tip[1] + dy)  # noqa: E731
    return {
        "pronasale": tip, "endocanthion_left": at(16, 32), "endocanthion_right": at(-16, 32),
        "cheilion_left": at(24, -32), "cheilion_right": at(-24, -32),
    }


def expression_change(vertices, faces, plane_point, plane_normal, amplitude_mm: float = 3.0):
    """A smile-like change around the mouth, mirror-symmetric about the face's symmetry plane.

    Lips and mouth corners move forward and upward with a smooth falloff over
    about 40 x 25 mm, centred 35 mm below pronasale (``plane_point``: the
    plane's point at pronasale, as ``scan analyze`` reports it). The
    displacement field is itself mirror-symmetric (it lies in the plane's
    directions), so it is an expression, not a one-sided change.
    """
    v = np.asarray(vertices, float)
    n = np.asarray(plane_normal, float) / np.linalg.norm(plane_normal)
    centre = np.asarray(plane_point, float) + np.array([0.0, -35.0, -15.0])
    d = v - centre
    lateral = d @ n
    rest = d - lateral[:, None] * n
    r = np.sqrt((0.6 * lateral) ** 2 + np.sum(rest**2, axis=1))
    weight = np.where(r < 25.0, 0.5 * (1 + np.cos(np.pi * r / 25.0)), 0.0)
    up = np.array([0.0, 1.0, 0.0]) - n[1] * n
    up /= np.linalg.norm(up)
    forward = np.cross(n, up)
    return v + amplitude_mm * weight[:, None] * (forward + 0.5 * up)[None, :]


def artifact_folder(name: str):
    """Where tests keep what a reader should look at (screenshots, rendered pages): $HEMIFACE_TEST_ARTIFACTS/name,
    else test-artifacts/name in the repository; kept after the run (unlike tmp_path), for whoever ran the tests or CI."""
    import os
    from pathlib import Path

    root = os.environ.get("HEMIFACE_TEST_ARTIFACTS")
    folder = (Path(root) if root else Path(__file__).resolve().parents[1] / "test-artifacts") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def punch_holes(vertices, faces, centres, radii):
    """The faces left after removing every face whose centroid lies within ``radii`` of ``centres`` (mm)."""
    f = np.asarray(faces)
    c = np.asarray(vertices)[f].mean(axis=1)
    keep = np.ones(len(f), bool)
    for p, r in zip(centres, radii):
        keep &= np.linalg.norm(c - p, axis=1) > r
    return f[keep]


#: Holes a structured-light or photogrammetry scan of a face leaves (x, y from pronasale, radius; mm): the
#: nostrils, the lash lines of both eyes, under both brows (dark, specular or steep skin).
CLINIC_HOLES = ((-9, -8, 3), (9, -8, 3), (-33, 30, 7), (33, 30, 7), (-20, 45, 4), (24, 46, 4))


def scanner_holes(vertices, faces, seed: int, *, dropouts: int = 12):
    """``faces`` with :data:`CLINIC_HOLES` and ``dropouts`` random specular dropouts (radius 2-5 mm, anywhere
    within 60 mm of pronasale across and up or down) punched out, on a face looking toward +z."""
    from hemiface.scan._frame import find_pronasale

    tip = find_pronasale(np.asarray(vertices), np.asarray(faces))
    rng = np.random.default_rng(seed)
    spots = list(CLINIC_HOLES) + [(rng.uniform(-60, 60), rng.uniform(-60, 60), rng.uniform(2, 5)) for _ in range(dropouts)]
    centres = [surface_point(vertices, faces, tip[0] + dx, tip[1] + dy) for dx, dy, _ in spots]
    return punch_holes(vertices, faces, centres, [r for *_, r in spots])


def add_hair(vertices, faces, seed: int):
    """Scalp and sideburn hair as a scanner sees it: above the hairline (62 mm over pronasale) and beside the
    temples (more than 58 mm out, above pronasale), the surface lifted 1 mm plus |N(0, 1.5 mm)| along the
    normals, independently per vertex and per side (a face looking toward +z)."""
    from hemiface.scan._frame import find_pronasale
    from hemiface.scan._mesh import vertex_normals

    v = np.asarray(vertices, float)
    tip = find_pronasale(v, np.asarray(faces))
    x, y = v[:, 0] - tip[0], v[:, 1] - tip[1]
    zone = (y > 62) | ((np.abs(x) > 58) & (y > 15))
    lift = np.where(zone, 1.0 + np.abs(np.random.default_rng(seed).normal(0, 1.5, len(v))), 0.0)
    return v + lift[:, None] * vertex_normals(v, faces)
