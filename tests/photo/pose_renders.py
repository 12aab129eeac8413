"""Validation renders of textured head scans at known yaw and pitch (ray cast, no OpenGL).

The head is turned about a vertical (yaw) and a left-right (pitch) axis through
the middle of the head's bounding box and rendered orthographically along -z
(the scans look toward +z with the head up along +y), textured, Lambert-shaded
under a key light above and to the camera's left plus a weaker fill light and an
ambient term, on a plain grey background. Conventions follow ``fit_pose``: yaw > 0
turns the face toward the patient's LEFT (nose toward the image's right), pitch > 0
tips the chin down.

``warp`` optionally moves the vertices (in the frontal head frame, before the
turn): simulated atrophy.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

SCANS = Path(__file__).parents[1] / "data" / "scans"
#: name -> (file, units of the file, mm per file unit)
SCAN_FILES = {
    "james": (Path(__file__).parents[2] / "src" / "hemiface" / "_sample_data" / "james.obj", 1.0),
    # Lee Perry-Smith's head is in arbitrary units (about 8.6 x 8.0 x 5.2): 24 mm per unit makes the
    # outer eye corners about 95 mm apart, an adult's.
    "lee_perry_smith": (SCANS / "lee_perry_smith" / "LeePerrySmith.obj", 24.0),
}
#: name -> where the image is centred (head-frame y, mm) and its pixel size (mm): the face fills the image's middle.
VIEWS = {"james": {"centre_y_mm": 0.0, "pixel_mm": 0.3}, "lee_perry_smith": {"centre_y_mm": 50.0, "pixel_mm": 0.22}}
BACKGROUND_RGB = (200, 200, 196)
KEY_LIGHT = np.array([-0.35, 0.45, 1.0])  # toward the light: camera-left, above, in front
FILL_LIGHT = np.array([0.5, 0.1, 1.0])
AMBIENT = 0.35


@functools.lru_cache(maxsize=None)
def load(name: str):
    """(vertices_mm, faces, texture) of a validation scan, the head centred at the origin."""
    import trimesh

    from hemiface.scan._io import SurfaceTexture

    path, mm_per_unit = SCAN_FILES[name]
    mesh = trimesh.load(path, process=False, force="mesh")
    v = np.asarray(mesh.vertices, float) * mm_per_unit
    f = np.asarray(mesh.faces, np.int64)
    uv = np.asarray(mesh.visual.uv, float)
    image = np.asarray(mesh.visual.material.image.convert("RGB"))
    tex = SurfaceTexture(image=image, corner_uv=uv[f])
    v = v - 0.5 * (v.min(0) + v.max(0))
    v.setflags(write=False)
    return v, f, tex


def _pixel_rays(name: str, xy_px: np.ndarray, size_px=(720, 900)):
    w, h = size_px
    cy, pixel_mm = VIEWS[name]["centre_y_mm"], VIEWS[name]["pixel_mm"]
    x = (xy_px[:, 0] - w / 2) * pixel_mm
    y = cy - (xy_px[:, 1] - h / 2) * pixel_mm
    return x, y


def frontal_pixels(name: str, points_mm: np.ndarray, size_px=(720, 900)) -> np.ndarray:
    """The pixels (n, 2) of a frontal render at which points (n, 3) in the render's frame are seen: the inverse
    of :func:`_pixel_rays`."""
    w, h = size_px
    cy, pixel_mm = VIEWS[name]["centre_y_mm"], VIEWS[name]["pixel_mm"]
    return np.column_stack([points_mm[:, 0] / pixel_mm + w / 2, (cy - points_mm[:, 1]) / pixel_mm + h / 2])


def surface_points(name: str, v: np.ndarray, f: np.ndarray, xy_px: np.ndarray) -> np.ndarray:
    """The points of the surface (vertices ``v`` in the render's frame, faces ``f``) under pixels ``xy_px`` of a
    frontal render (rays along -z): (n, 3), NaN where a ray misses."""
    from hemiface.scan._distance import SurfaceQuery

    x, y = _pixel_rays(name, xy_px)
    origins = np.column_stack([x, y, np.full_like(x, v[:, 2].max() + 50.0)])
    t = SurfaceQuery(v, f).cast(origins, np.broadcast_to([0.0, 0.0, -1.0], origins.shape))["t_hit"]
    return origins + t[:, None] * np.array([0.0, 0.0, -1.0])


@functools.lru_cache(maxsize=None)
def frontal_rotation(name: str) -> np.ndarray:
    """Rotation that turns the scan to face the camera: its eye corners level and at one depth, its mouth
    corners likewise, and the line from the eye corners' midpoint to the mouth corners' midpoint in the image
    plane. The points are the face mesh's, cast back onto the scan's surface (their depth is the scan's, not
    the model's), in two rounds (render, place, turn, render again)."""
    from hemiface.photo._locate import locate

    v0, f, _ = load(name)
    R = np.eye(3)
    for _ in range(2):
        img = render(name, 0.0, 0.0, _frontal=R)
        mesh = locate(img).mesh
        idx = [33, 263, 61, 291]  # exocanthion right, left; cheilion right, left
        p = surface_points(name, v0 @ R.T, f, mesh[idx, :2])  # in the turned scan's frame
        ex = (p[1] - p[0]) + (p[3] - p[2])
        ex /= np.linalg.norm(ex)
        down = 0.5 * (p[2] + p[3]) - 0.5 * (p[0] + p[1])  # y up: this points down
        ey = -(down - (down @ ex) * ex)
        ey /= np.linalg.norm(ey)
        ez = np.cross(ex, ey)
        R = np.vstack([ex, ey, ez]) @ R  # rows: the face's axes -> world axes
    return R


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Head rotation: pitch about x (chin down for > 0), then yaw about y (nose to +x for > 0)."""
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return ry @ rx


def render(name: str, yaw_deg: float = 0.0, pitch_deg: float = 0.0, *, size_px: tuple[int, int] = (720, 900),
           warp=None, _frontal: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 3) uint8 RGB render of the scan turned by yaw and pitch."""
    from hemiface.scan._distance import SurfaceQuery
    from hemiface.scan._mesh import face_normals

    v, f, tex = load(name)
    frontal = frontal_rotation(name) if _frontal is None else _frontal
    v = v @ frontal.T  # the face toward the camera (x to the patient's left, y up)
    if warp is not None:
        v = warp(v)
    v = v @ rotation(yaw_deg, pitch_deg).T
    w, h = size_px
    cy, pixel_mm = VIEWS[name]["centre_y_mm"], VIEWS[name]["pixel_mm"]
    xs = (np.arange(w) + 0.5 - w / 2) * pixel_mm
    ys = cy - (np.arange(h) + 0.5 - h / 2) * pixel_mm
    gx, gy = np.meshgrid(xs, ys)
    origins = np.stack([gx, gy, np.full_like(gx, v[:, 2].max() + 50.0)], -1).reshape(-1, 3)
    dirs = np.broadcast_to(np.array([0.0, 0.0, -1.0]), origins.shape)
    hits = SurfaceQuery(v, f).cast(origins, dirs)
    hit = np.isfinite(hits["t_hit"])
    ids = hits["face_ids"][hit]
    n = face_normals(v, f)[ids]
    n = n * np.sign(n[:, 2:3] + 1e-12)  # facing the camera
    colour = tex.colour_at(f, ids, hits["uv"][hit])
    shade = AMBIENT
    for light, weight in ((KEY_LIGHT, 0.55), (FILL_LIGHT, 0.2)):
        shade = shade + weight * np.clip(n @ (light / np.linalg.norm(light)), 0, 1)
    rgb = np.tile(np.array(BACKGROUND_RGB, float), (h * w, 1))
    rgb[hit] = 255 * np.clip(colour * shade[:, None] * 1.1, 0, 1)
    return rgb.reshape(h, w, 3).round().clip(0, 255).astype(np.uint8)


def left_compression(factor: float, *, soft_mm: float = 15.0):
    """A smooth one-sided warp: the patient's left (x > 0 in the frontal head frame) pulled toward the
    midline, ``x -> x - factor * x * (1 - exp(-(x / soft_mm)^2))`` (identity for x <= 0, smooth at 0).

    It acts on x alone, so the frontal silhouette of the warped head is the warp of the unwarped head's
    frontal silhouette: the known ratio is computed from the unwarped frontal render's outline.
    """
    def g(x):
        x = np.asarray(x, float)
        return np.where(x > 0, x - factor * x * (1 - np.exp(-(x / soft_mm) ** 2)), x)

    def warp(v):
        out = np.array(v, float)
        out[:, 0] = g(out[:, 0])
        return out

    warp.x = g
    return warp


@functools.lru_cache(maxsize=None)
def pupil_height_mm(name: str) -> float:
    """Frontal head-frame y (mm) of the pupils as the face mesh places them on the frontal render."""
    from hemiface.photo._locate import locate

    mesh = locate(render(name, 0.0, 0.0)).mesh
    return float(np.mean(_pixel_rays(name, mesh[[468, 473], :2])[1]))


def cheek_compression(name: str, factor: float, *, soft_mm: float = 15.0, top_mm: float = 8.0, ramp_mm: float = 20.0):
    """:func:`left_compression` confined to the cheek and jaw: full from ``top_mm + ramp_mm`` below the
    pupils down, fading (smoothstep) to none ``top_mm`` below them, so the eyes, brows and forehead stay
    where they are, as in soft-tissue atrophy and its treatment (the eye does not move sideways)."""
    y_top = pupil_height_mm(name) - top_mm

    def warp(v):
        out = np.array(v, float)
        x, y = out[:, 0], out[:, 1]
        s = np.clip((y_top - y) / ramp_mm, 0.0, 1.0)
        s = s * s * (3 - 2 * s)
        out[:, 0] = np.where(x > 0, x - factor * x * (1 - np.exp(-(x / soft_mm) ** 2)) * s, x)
        return out

    return warp


def image_x_warp(name: str, warp, x_px, size_px=(720, 900)):
    """The warp's x map in the pixels of a frontal (yaw 0, pitch 0) render."""
    w = size_px[0]
    pixel_mm = VIEWS[name]["pixel_mm"]
    return w / 2 + warp.x((np.asarray(x_px, float) - w / 2) * pixel_mm) / pixel_mm
