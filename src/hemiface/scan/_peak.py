"""The deepest point of a defect, read from the unsmoothed depth.

The depth map is smoothed over the surface (a 1.5 mm Gaussian by default) against
scanner noise. Smoothing keeps volumes but flattens a narrow peak: the 10 mm wide
en-coup-de-sabre groove of the ``midline`` phantom (6.88 mm deep) reads 5.59 mm on
the smoothed map. Here each candidate peak (a local maximum of the smoothed depth)
is measured again on the **unsmoothed** depth, by a least-squares polynomial over
the points within a radius of it, evaluated at the candidate:

- the polynomial is quadratic in the tangent plane, with cubic and quartic terms
  along the direction of strongest curvature (across a groove), so a raised-cosine
  profile is fitted without the bias of a quadratic over its rounded bottom;
- the radius follows the peak's width: ``PEAK_FIT_WIDTH_SHARE`` of the width
  ``pi * sqrt(d / (2 k))`` of a raised cosine of the candidate's depth ``d`` and
  curvature ``k`` (from a quadratic over the smoothed depth within
  ``CURVATURE_RADIUS_MM``), clipped to ``PEAK_FIT_RADIUS_MM``: narrow for a groove,
  wide (so averaging more noise) for a broad plateau;
- it is bounded by the deepest unsmoothed point within the radius, and by 0.

A defect's maximum depth is the larger of the smoothed map's maximum and its
refined peaks, so the map never shows a point deeper than the reported maximum.
Measured on the template phantoms against the carved truth (``python
benchmarks/study_peak_depth.py``; the README quotes the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

if TYPE_CHECKING:  # pragma: no cover
    from ._defect import Patch

#: Local maxima of the smoothed depth refined per defect: at most this many, the deepest first,
#: each at least PEAK_SEPARATION_MM from a deeper one and at least half the defect's smoothed maximum.
PEAK_CANDIDATES = 8
PEAK_SEPARATION_MM = 4.0
#: The fit's radius (mm): this share of the peak's raised-cosine width, within these limits.
PEAK_FIT_WIDTH_SHARE = 0.4
PEAK_FIT_RADIUS_MM = (2.0, 6.0)
#: Radius (mm) of the quadratic over the smoothed depth that gives a candidate's curvature.
CURVATURE_RADIUS_MM = 4.0
#: A fit needs at least this many unsmoothed points (two per coefficient); the radius grows to
#: reach them, up to MAX_FIT_RADIUS_MM, else the candidate keeps its smoothed depth.
MIN_FIT_POINTS = 16
MAX_FIT_RADIUS_MM = 12.0


@dataclass(frozen=True)
class Peaks:
    """Refined peaks of one defect: depth (mm) and each peak's point on the mirrored skin (``top``)."""

    depth_mm: np.ndarray
    top: np.ndarray

    @staticmethod
    def merge(peaks: list["Peaks"]) -> "Peaks":
        peaks = [p for p in peaks if p is not None]
        if not peaks:
            return Peaks(np.empty(0), np.empty((0, 3)))
        return Peaks(np.concatenate([p.depth_mm for p in peaks]), np.concatenate([p.top for p in peaks]))


class RawDepth:
    """The unsmoothed depth of a depth patch's vertices, searchable by position."""

    def __init__(self, patch: "Patch"):
        self._patch = patch
        self._query = None
        self.points = patch.vertices
        self.depth_mm = patch.depth_mm
        self.tree = cKDTree(patch.vertices) if len(patch.vertices) else None
        self._smoothed = (None, None)  # (the last smoothed patch, its KD-tree): a hemiface holds several defects

    def at(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unsmoothed depth at ``points`` and their unsmoothed closest points on the mirrored skin: a patch
        vertex's own where a point is one (a defect of the smoothed map shares the patch's vertices), else
        linear on the closest triangle (the vertices its rim put on edges)."""
        if self.tree is None:
            return np.zeros(len(points)), np.asarray(points, dtype=float).copy()
        dist, idx = self.tree.query(points)
        depth, top = self.depth_mm[idx], self._patch.top[idx]
        off = dist > 1e-9
        if off.any():
            if self._query is None:  # built once: a hemiface holds several defects
                from ._distance import SurfaceQuery

                self._query = SurfaceQuery(self._patch.vertices, self._patch.faces)
            both = self._patch.interpolate(points[off], np.column_stack([self.depth_mm, self._patch.top]), self._query)
            depth[off], top[off] = both[:, 0], both[:, 1:]
        return depth, top

    def peaks(self, defect: "Patch", smoothed: "Patch") -> Peaks:
        """The refined peaks of ``defect`` (a connected piece of the smoothed map ``smoothed``)."""
        if self.tree is None or not len(defect.faces):
            return Peaks(np.empty(0), np.empty((0, 3)))
        candidates = _candidates(defect)
        if self._smoothed[0] is not smoothed:
            self._smoothed = (smoothed, cKDTree(smoothed.vertices))
        smooth_tree = self._smoothed[1]
        depth = np.array([self._refine(defect.vertices[i], float(defect.depth_mm[i]), smoothed, smooth_tree)
                          for i in candidates])
        return Peaks(depth, defect.top[candidates])

    def _refine(self, centre: np.ndarray, smoothed_depth: float, smoothed: "Patch", smooth_tree) -> float:
        near = smooth_tree.query_ball_point(centre, CURVATURE_RADIUS_MM)
        coef, _ = _quadratic(smoothed.vertices[near] - centre, smoothed.depth_mm[near])
        curvature = np.inf if coef is None else max(-float(np.linalg.eigvalsh(_hessian(coef)).min()), 1e-9)
        width = np.pi * np.sqrt(max(smoothed_depth, 0.0) / (2.0 * curvature))
        radius = float(np.clip(PEAK_FIT_WIDTH_SHARE * width, *PEAK_FIT_RADIUS_MM))
        idx = self.tree.query_ball_point(centre, radius)
        while len(idx) < MIN_FIT_POINTS and radius < MAX_FIT_RADIUS_MM:
            radius = min(1.25 * radius, MAX_FIT_RADIUS_MM)
            idx = self.tree.query_ball_point(centre, radius)
        if len(idx) < MIN_FIT_POINTS:
            return smoothed_depth
        value = _peak_fit(self.points[idx] - centre, self.depth_mm[idx])
        if value is None:
            return smoothed_depth
        return float(np.clip(value, 0.0, self.depth_mm[idx].max()))


def _candidates(defect: "Patch") -> np.ndarray:
    """Vertex indices of the defect's deepest local maxima (see PEAK_CANDIDATES)."""
    depth = defect.depth_mm
    tree = cKDTree(defect.vertices)
    chosen: list[int] = []
    order = np.argsort(-depth, kind="stable")
    for i in order[_ring_maxima(defect)[order]]:
        if depth[i] < 0.5 * depth.max() or len(chosen) >= PEAK_CANDIDATES:
            break
        p = defect.vertices[i]
        if chosen and np.min(np.linalg.norm(defect.vertices[chosen] - p, axis=1)) <= PEAK_SEPARATION_MM:
            continue
        if depth[i] >= depth[tree.query_ball_point(p, PEAK_SEPARATION_MM)].max():
            chosen.append(int(i))
    return np.array(chosen, dtype=np.int64)


def _ring_maxima(defect: "Patch") -> np.ndarray:
    """Vertices at least as deep as each mesh neighbour within PEAK_SEPARATION_MM: a quick, exact
    pre-filter for the ball test in :func:`_candidates` (a vertex with a deeper neighbour inside the ball
    is no local maximum), so only these few are queried."""
    depth, v = defect.depth_mm, defect.vertices
    edges = np.concatenate([defect.faces[:, [0, 1]], defect.faces[:, [1, 2]], defect.faces[:, [2, 0]]])
    edges = edges[np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1) <= PEAK_SEPARATION_MM]
    deepest = np.full(len(depth), -np.inf)
    np.maximum.at(deepest, edges[:, 0], depth[edges[:, 1]])
    np.maximum.at(deepest, edges[:, 1], depth[edges[:, 0]])
    return depth >= deepest


def _tangent_coordinates(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of points (offsets from the centre) in their best-fitting plane."""
    _, _, vt = np.linalg.svd(offsets - offsets.mean(axis=0), full_matrices=False)
    return offsets @ vt[0], offsets @ vt[1]


def _quadratic(offsets: np.ndarray, values: np.ndarray):
    """Least-squares quadratic over the tangent plane: (coefficients 1, a, b, a2, ab, b2; (a, b)), or (None, None)."""
    if len(offsets) < 6:
        return None, None
    a, b = _tangent_coordinates(offsets)
    design = np.column_stack([np.ones_like(a), a, b, a * a, a * b, b * b])
    coef, _, rank, _ = np.linalg.lstsq(design, values, rcond=None)
    return (coef, (a, b)) if rank == design.shape[1] else (None, None)


def _hessian(coef: np.ndarray) -> np.ndarray:
    return np.array([[2.0 * coef[3], coef[4]], [coef[4], 2.0 * coef[5]]])


def _peak_fit(offsets: np.ndarray, values: np.ndarray) -> float | None:
    """The polynomial's value at the centre: quadratic, plus cubic and quartic along the strongest curvature."""
    coef, ab = _quadratic(offsets, values)
    if coef is None:
        return None
    w, e = np.linalg.eigh(_hessian(coef))
    axis = e[:, int(np.argmax(np.abs(w)))]
    a, b = ab
    s, t = axis[0] * a + axis[1] * b, -axis[1] * a + axis[0] * b
    design = np.column_stack([np.ones_like(s), s, t, s * s, s * t, t * t, s**3, s**4])
    coef, _, rank, _ = np.linalg.lstsq(design, values, rcond=None)
    return float(coef[0]) if rank == design.shape[1] else None
