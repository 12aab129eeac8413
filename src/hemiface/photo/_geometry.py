"""Photo geometry: face frame, midlines, hemiface areas, contour and landmark ratios, head pose.

All functions take named landmarks in photo px (:class:`FaceLandmarks`) and
return plain numbers. The face frame has its origin midway between the pupils,
``u`` along the interpupillary line toward the patient's LEFT pupil (image
right) and ``v`` perpendicular, toward the chin: roll is corrected by
construction. A midline is the line ``u = a + b v``; the pupils midline is
``a = b = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import LandmarkError
from ._landmarks import HEIGHT_PAIRS, MIDLINE_NAMES, RATIO_PAIRS, FaceLandmarks

#: Contour levels, each a ``v`` in the face frame (see :func:`contour_levels`).
CONTOUR_LEVELS = ("eyes", "cheekbones", "mouth", "jaw")

#: Mean frontal face for the pose fit (units of the interpupillary distance; x to the patient's
#: left, y down, z away from the camera; the plane of eye corners and mouth corners faces the camera).
#: Built from the mirror-symmetrized MediaPipe meshes of six frontal photos in shared data.
POSE_TEMPLATE = {
    "exocanthion_right": (-0.6975, -0.4619, 0.2049), "endocanthion_right": (-0.279, -0.4342, 0.129),
    "endocanthion_left": (0.279, -0.4342, 0.129), "exocanthion_left": (0.6975, -0.4619, 0.2049),
    "brow_peak_right": (-0.6376, -0.7787, -0.03), "brow_peak_left": (0.6376, -0.7787, -0.03),
    "alar_base_right": (-0.3505, 0.1799, -0.1517), "alar_base_left": (0.3505, 0.1799, -0.1517),
    "cheilion_right": (-0.5186, 0.5474, 0.2049), "cheilion_left": (0.5186, 0.5474, 0.2049),
    "nasion": (0.0, -0.49, -0.146), "pronasale": (0.0, 0.1136, -0.4892),
    "subnasale": (0.0, 0.2941, -0.2024), "stomion": (0.0, 0.5589, -0.0817), "menton": (0.0, 1.4184, 0.205),
}


@dataclass(frozen=True)
class Frame:
    """Roll-corrected face frame: origin (px), unit axes ``eu`` (to patient's left) and ``ev`` (down)."""

    origin: np.ndarray
    eu: np.ndarray
    ev: np.ndarray

    @classmethod
    def from_pupils(cls, right, left) -> "Frame":
        right, left = np.asarray(right, float), np.asarray(left, float)
        d = left - right
        if np.hypot(*d) < 1e-6:
            raise LandmarkError("the two pupils coincide; check the landmarks")
        eu = d / np.hypot(*d)
        return cls(0.5 * (right + left), eu, np.array([-eu[1], eu[0]]))

    def uv(self, p) -> np.ndarray:
        q = np.asarray(p, float) - self.origin
        return np.stack([q @ self.eu, q @ self.ev], axis=-1)

    def px(self, uv) -> np.ndarray:
        uv = np.asarray(uv, float)
        return self.origin + uv[..., :1] * self.eu + uv[..., 1:2] * self.ev

    @property
    def roll_deg(self) -> float:
        """Clockwise tilt of the interpupillary line in the image (degrees; y is down)."""
        return float(np.degrees(np.arctan2(self.eu[1], self.eu[0])))


@dataclass(frozen=True)
class Midline:
    """The line ``u = a + b v`` in the face frame; ``method`` is "pupils" or "fitted"."""

    a: float
    b: float
    method: str
    rms_px: float = 0.0

    def u_at(self, v):
        return self.a + self.b * np.asarray(v, float)

    def signed_distance(self, uv) -> np.ndarray:
        """Perpendicular distance; > 0 on the patient's LEFT of the midline (image right)."""
        uv = np.asarray(uv, float)
        return (uv[..., 0] - self.a - self.b * uv[..., 1]) / np.hypot(1.0, self.b)

    def angle_deg(self) -> float:
        """Tilt from the perpendicular of the interpupillary line (> 0: the chin end toward the patient's left)."""
        return float(np.degrees(np.arctan(self.b)))


def pupils_midline() -> Midline:
    return Midline(0.0, 0.0, "pupils")


def fitted_midline(lm: FaceLandmarks, frame: Frame) -> Midline:
    """Least-squares line ``u = a + b v`` through the midline points present (at least 3)."""
    names = [n for n in MIDLINE_NAMES if lm.has(n)]
    if len(names) < 3:
        raise LandmarkError(f"the fitted midline needs at least 3 of {', '.join(MIDLINE_NAMES)}; got {names}")
    uv = frame.uv(np.array([lm[n] for n in names]))
    design = np.column_stack([np.ones(len(uv)), uv[:, 1]])
    (a, b), *_ = np.linalg.lstsq(design, uv[:, 0], rcond=None)
    resid = uv[:, 0] - design @ np.array([a, b])
    return Midline(float(a), float(b), "fitted", float(np.sqrt(np.mean(resid ** 2))))


def polygon_area(poly: np.ndarray) -> float:
    """Unsigned shoelace area of a closed polygon (n, 2)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def clip_half_plane(poly: np.ndarray, sign_fn) -> np.ndarray:
    """Sutherland-Hodgman: the part of a closed polygon where ``sign_fn(points) >= 0``.

    Clipping by one half-plane is exact for any simple polygon (the area is right
    even where the result touches the line in degenerate edges).
    """
    s = sign_fn(poly)
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        sp, sq = s[i], s[(i + 1) % n]
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append(p + t * (q - p))
    return np.array(out) if out else np.zeros((0, 2))


def hemiface_polygons(outline_uv: np.ndarray, midline: Midline) -> dict[str, np.ndarray]:
    """The outline split by the midline: {"left": ..., "right": ...} (patient's sides, frame uv)."""
    left = clip_half_plane(outline_uv, midline.signed_distance)
    right = clip_half_plane(outline_uv, lambda p: -midline.signed_distance(p))
    return {"left": left, "right": right}


def contour_levels(lm: FaceLandmarks, frame: Frame) -> dict[str, float]:
    """``v`` of each contour level: eyes (pupils), cheekbones (midway pupils-subnasale),
    mouth (mean of the mouth corners), jaw (midway mouth-menton)."""
    need = ("subnasale", "cheilion_right", "cheilion_left", "menton")
    missing = [n for n in need if not lm.has(n)]
    if missing:
        raise LandmarkError(f"the contour levels need the landmarks {', '.join(missing)}")
    v = {n: float(frame.uv(lm[n])[1]) for n in need}
    mouth = 0.5 * (v["cheilion_right"] + v["cheilion_left"])
    return {"eyes": 0.0, "cheekbones": 0.5 * v["subnasale"], "mouth": mouth, "jaw": 0.5 * (mouth + v["menton"])}


def contour_widths(outline_uv: np.ndarray, midline: Midline, v: float) -> dict[str, float]:
    """Horizontal (along ``u``) distance from the midline to the outermost outline crossing at level ``v``."""
    p, q = outline_uv, np.roll(outline_uv, -1, axis=0)
    dv = q[:, 1] - p[:, 1]
    crosses = ((p[:, 1] - v) * (q[:, 1] - v) <= 0) & (np.abs(dv) > 1e-12)
    t = (v - p[crosses, 1]) / dv[crosses]
    u = p[crosses, 0] + t * (q[crosses, 0] - p[crosses, 0])
    um = float(midline.u_at(v))
    left, right = u[u > um], u[u < um]
    if len(left) == 0 or len(right) == 0:
        raise LandmarkError(f"the face outline does not reach both sides of the midline at v = {v:.1f} px")
    return {"left": float(left.max() - um), "right": float(um - right.min())}


def fit_pose(lm: FaceLandmarks) -> dict:
    """Head pose from a scaled-orthographic fit of :data:`POSE_TEMPLATE` to the 2D landmarks.

    Returns degrees: ``roll_deg`` (in-plane tilt, > 0 clockwise in the image),
    ``yaw_deg`` (> 0: the face turned toward the patient's LEFT, nose toward image right),
    ``pitch_deg`` (> 0: chin down / nose down), and ``fit_rms_ipd`` (residual in units of the
    interpupillary distance; large values mean the landmarks do not look like a face).
    """
    names = [n for n in POSE_TEMPLATE if lm.has(n)]
    if len(names) < 6:
        raise LandmarkError(f"the pose fit needs at least 6 of {', '.join(POSE_TEMPLATE)}; got {len(names)}")
    X = np.array([POSE_TEMPLATE[n] for n in names])
    q = np.array([lm[n] for n in names])
    Xc, qc = X - X.mean(0), q - q.mean(0)
    M, *_ = np.linalg.lstsq(Xc, qc, rcond=None)  # (3, 2): q = X @ M
    U, S, Vt = np.linalg.svd(M.T, full_matrices=False)  # rows of M.T: image x, y axes in template coords
    R2 = U @ Vt
    scale = float(S.mean())
    r3 = np.cross(R2[0], R2[1])
    R = np.vstack([R2, r3])  # template -> camera (x right, y down, z away)
    resid = qc - scale * Xc @ R2.T
    ipd = float(np.hypot(*(lm["pupil_left"] - lm["pupil_right"])))
    # R = Rz(roll) @ Ry(yaw) @ Rx(pitch): extract in that order.
    yaw = np.degrees(np.arcsin(np.clip(-R[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(R[2, 1], R[2, 2]))
    roll = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    return {
        "roll_deg": float(roll),
        "yaw_deg": float(-yaw),
        "pitch_deg": float(-pitch),
        "fit_rms_ipd": float(np.sqrt((resid ** 2).sum(1).mean()) / ipd),
    }


def pair_ratios(lm: FaceLandmarks, frame: Frame, midline: Midline, affected: str) -> dict[str, float]:
    """For each bilateral pair present: 100 x affected / unaffected distance to the midline."""
    other = "left" if affected == "right" else "right"
    out = {}
    for pair in RATIO_PAIRS:
        if lm.has(f"{pair}_{affected}", f"{pair}_{other}"):
            da = abs(float(midline.signed_distance(frame.uv(lm[f"{pair}_{affected}"]))))
            du = abs(float(midline.signed_distance(frame.uv(lm[f"{pair}_{other}"]))))
            if du > 0:
                out[pair] = 100.0 * da / du
    return out


def height_differences_px(lm: FaceLandmarks, frame: Frame, affected: str) -> dict[str, float]:
    """For each pair present: how much HIGHER (toward the forehead) the affected point lies, px."""
    other = "left" if affected == "right" else "right"
    out = {}
    for pair in HEIGHT_PAIRS:
        if lm.has(f"{pair}_{affected}", f"{pair}_{other}"):
            out[pair] = float(frame.uv(lm[f"{pair}_{other}"])[1] - frame.uv(lm[f"{pair}_{affected}"])[1])
    return out


def iris_diameter_px(lm: FaceLandmarks) -> float | None:
    """Mean horizontal iris diameter of both eyes (px), or None without iris points."""
    d = []
    for side in ("right", "left"):
        if lm.has(f"iris_{side}_nasal", f"iris_{side}_temporal"):
            d.append(float(np.hypot(*(lm[f"iris_{side}_nasal"] - lm[f"iris_{side}_temporal"]))))
    return float(np.mean(d)) if d else None
