"""Cutting a defect into stacked sheet layers of one thickness, and how far the stack can miss its volume.

The defect is the analysis' own solid (:func:`hemiface.scan.read_analysis`): each point ``x`` of the
affected skin over the defect has a column to its closest point ``top(x)`` on the mirrored unaffected
surface (the surface to restore), of height ``h(x) = |top(x) - x|`` (the analysis' depth to within its
smoothing, 0.02 mm) along the unit direction ``u(x)``. A closest point's column is that surface's
normal there, so the defect solid is the restored surface's inward normal offsets, and its slice at
depth ``s`` (the points ``top - s u`` where ``h > s``) is parallel to the restored surface. Sheets of
thickness ``T`` are stacked under the restored surface along these columns: layer ``k`` (k = 1 .. K)
lies between depths ``(k - 1) T`` and ``k T`` below it -- the broadest layer just under the skin, the
smallest deepest, as a surgeon stacks them -- over the columns where

* ``rounding="half"`` (default): ``h > (k - 1/2) T`` -- each column gets ``round(h / T)`` sheets, the
  nearest stack height to the defect's;
* ``rounding="ceil"``: ``h > (k - 1) T`` -- ``ceil(h / T)`` sheets, never short of the defect (over-fills);
* ``rounding="floor"``: ``h > k T`` -- ``floor(h / T)`` sheets, never above the defect (under-fills).

A layer's area ``A_k`` is measured on its mid-surface (depth ``(k - 1/2) T``: the neutral surface of a
bent sheet, which keeps its length), and the composite's volume is ``sum_k A_k T``.

The volume bound. Let ``a(s)`` be the area of the defect's slice at depth ``s``; the defect volume is ``V = integral a(s) ds``. With "half", ``A_k`` *is*
``a((k - 1/2) T)``, so ``V_c = T sum_k a((k - 1/2) T)`` is the composite midpoint rule for ``V`` and

* (first order, rigorous) on each panel ``|T a(mid) - integral a| <= (T/2) TV_panel(a)``, so
  ``|V_c - V| <= (T/2) TV(a)``, which is ``(T/2) A`` (A the defect's area) when the slices shrink
  with height; "ceil" and "floor" miss by at most ``T TV(a)``, with a known sign;
* (second order, "half") with ``mu(s) = -a'(s)``, the level-set density (by the coarea formula the
  length of the contour ``h = s`` divided by the depth gradient ``|grad h|``), integrating the sawtooth
  ``round(s/T) T - s`` by parts gives ``V_c - V = -T^2 integral S(s/T) dmu(s)`` with
  ``S(w) = integral_0^w (round(t) - t) dt`` in ``[-1/8, 0]``: ``|V_c - V| <= T^2 integral |S(s/T)| |dmu|
  <= (T^2/8) TV(mu)``. It is small where contours are evenly spaced (a steady slope) and large
  where the slope changes fast; it is evaluated from the measured slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import logger
from .._validate import check_option
from ..scan import Patch

#: Layer rules: the height above which layer k covers, as a function of k and T.
ROUNDING = {
    "half": lambda k, t: (k - 0.5) * t,
    "ceil": lambda k, t: (k - 1.0) * t,
    "floor": lambda k, t: k * t,
}
#: Slices sampled per sheet thickness for the volume bound.
SLICES_PER_LAYER = 8
#: A column shorter than this (mm) has no direction of its own (the defect's rim): it takes the surface normal.
_RIM_MM = 1e-6


def column_directions(patch: Patch) -> tuple[np.ndarray, np.ndarray]:
    """Heights ``|top - x|`` (mm) and unit directions of the defect's columns (the normal where height is ~0)."""
    import igl

    offset = patch.top - patch.vertices
    height = np.linalg.norm(offset, axis=1)
    u = offset / np.where(height > _RIM_MM, height, 1.0)[:, None]
    rim = height <= _RIM_MM
    if rim.any():
        normals = igl.per_vertex_normals(np.ascontiguousarray(patch.vertices), np.ascontiguousarray(patch.faces))
        u[rim] = normals[rim]
    return height, u


def _with_heights(patch: Patch) -> Patch:
    """The patch with ``depth_mm`` replaced by the column heights (so clipping follows the solid)."""
    height, _ = column_directions(patch)
    return Patch(patch.vertices, patch.faces, height, patch.top)


def _faces(patch: Patch, mask: np.ndarray) -> Patch:
    """The masked triangles of a patch and the vertices they use."""
    if mask.all():
        return patch
    used = np.unique(patch.faces[mask])
    remap = np.full(len(patch.vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return Patch(patch.vertices[used], remap[patch.faces[mask]], patch.depth_mm[used], patch.top[used])


def _reaching(patch: Patch, level_mm: float) -> Patch:
    """The triangles with a corner taller than ``level_mm``: all that clipping at that level keeps any of."""
    return _faces(patch, patch.depth_mm[patch.faces].max(axis=1) > level_mm)


def region_above(defect: Patch, level_mm: float) -> Patch:
    """The part of the defect whose column is taller than ``level_mm`` (all of it for a level <= 0).

    Clipping is triangle by triangle, so it is done on the triangles that reach the level only (the
    same cut, less work: the deep layers and slices are small parts of a dense defect)."""
    if level_mm <= 0:
        return defect
    reaching = _reaching(defect, level_mm)
    return reaching.clip(reaching.depth_mm, level_mm)


def offset_surface(region: Patch, depth_mm: float) -> np.ndarray:
    """The region's columns at ``depth_mm`` below the restored (mirrored) surface."""
    _, u = column_directions(region)
    return region.top - depth_mm * u


def area_mm2(vertices: np.ndarray, faces: np.ndarray) -> float:
    if not len(faces):
        return 0.0
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def slice_area_mm2(defect: Patch, depth_mm: float) -> float:
    """``a(s)``: area of the defect's slice at depth ``s`` below the restored surface."""
    region = region_above(defect, depth_mm)
    return area_mm2(offset_surface(region, depth_mm), region.faces) if len(region.faces) else 0.0


def slice_areas_mm2(defect: Patch, depths_mm: np.ndarray) -> np.ndarray:
    """:func:`slice_area_mm2` at each depth, the same cut with less work.

    A triangle whose three columns are taller than ``s`` is whole in the slice, with corners
    ``top_i - s u_i``: its doubled area vector is ``P + s Q + s^2 R`` for fixed ``P, Q, R``, so only
    the triangles the level cuts are clipped.
    """
    height, u = column_directions(defect)
    f, top = defect.faces, defect.top
    lowest, tallest = height[f].min(axis=1), height[f].max(axis=1)
    by_lowest = np.argsort(-lowest)  # the whole triangles at any level come first in this order
    f, lowest, tallest = f[by_lowest], lowest[by_lowest], tallest[by_lowest]
    a, c = top[f[:, 1]] - top[f[:, 0]], top[f[:, 2]] - top[f[:, 0]]
    b, d = u[f[:, 0]] - u[f[:, 1]], u[f[:, 0]] - u[f[:, 2]]
    p, q, r = np.cross(a, c), np.cross(a, d) + np.cross(b, c), np.cross(b, d)
    ordered = Patch(defect.vertices, f, defect.depth_mm, top)
    areas = []
    for s in depths_mm:
        m = int(np.searchsorted(-lowest, -s, side="left"))  # lowest > s for the first m
        area = 0.5 * float(np.linalg.norm(p[:m] + s * q[:m] + (s * s) * r[:m], axis=1).sum())
        cut = np.zeros(len(f), bool)
        cut[m:] = tallest[m:] > s
        areas.append(area + (slice_area_mm2(_faces(ordered, cut), s) if cut.any() else 0.0))
    return np.array(areas)


@dataclass(frozen=True)
class LayerRegion:
    """Layer ``k``: the columns it covers, its mid-surface and the rule's level (mm)."""

    k: int
    level_mm: float
    region: Patch
    mid_vertices: np.ndarray
    area_mm2: float


def layer_regions(defect: Patch, *, thickness_mm: float, rounding: str, max_layers: int | None):
    """Layers 1..K of ``defect`` (a Patch whose depth is the column height) and the number of layers needed."""
    check_option("rounding", rounding, tuple(ROUNDING))
    level = ROUNDING[rounding]
    top = float(defect.depth_mm.max()) if len(defect.depth_mm) else 0.0
    needed = 0
    while level(needed + 1, thickness_mm) < top:
        needed += 1
    count = needed if max_layers is None else min(needed, max_layers)
    layers = []
    for k in range(1, count + 1):
        region = region_above(defect, level(k, thickness_mm))
        if not len(region.faces):
            continue
        mid = offset_surface(region, (k - 0.5) * thickness_mm)
        layers.append(LayerRegion(k, level(k, thickness_mm), region, mid, area_mm2(mid, region.faces)))
    return layers, needed


@dataclass(frozen=True)
class VolumeBound:
    """How far the composite can miss the defect's volume (mm3), from the measured slices ``a(s)``."""

    first_order_mm3: float
    second_order_mm3: float | None
    slices_total_variation_mm2: float
    slices_monotone: bool
    slice_heights_mm: np.ndarray
    slice_areas_mm2: np.ndarray

    @property
    def bound_mm3(self) -> float:
        """The tighter of the two (the first-order bound alone for "ceil" and "floor")."""
        if self.second_order_mm3 is None:
            return self.first_order_mm3
        return min(self.first_order_mm3, self.second_order_mm3)

    def to_dict(self) -> dict:
        return {"bound_mm3": self.bound_mm3, "first_order_mm3": self.first_order_mm3,
                "second_order_mm3": self.second_order_mm3,
                "slice_area_total_variation_mm2": self.slices_total_variation_mm2,
                "slice_areas_shrink_with_height": self.slices_monotone}


def _sawtooth_integral(w: np.ndarray) -> np.ndarray:
    """``S(w) = integral_0^w (round(t) - t) dt``: periodic, 0 at integers, -1/8 at half-integers."""
    f = w - np.floor(w)
    return np.where(f <= 0.5, -0.5 * f**2, -0.125 + (f - 0.5) - 0.5 * (f**2 - 0.25))


def volume_bound(defect: Patch, *, thickness_mm: float, rounding: str) -> VolumeBound:
    """The first- and (for "half") second-order bounds of the module docstring, on slices T/8 apart."""
    top = float(defect.depth_mm.max())
    step = thickness_mm / SLICES_PER_LAYER
    heights = np.arange(0.0, top + step, step)
    areas = slice_areas_mm2(defect, heights)
    areas[heights >= top] = 0.0
    tv = float(np.abs(np.diff(areas)).sum() + areas[-1])
    monotone = bool(np.all(np.diff(areas) <= 1e-6 * max(areas[0], 1.0)))
    first = (0.5 if rounding == "half" else 1.0) * thickness_mm * tv
    second = None
    if rounding == "half":
        density = np.append(-np.diff(areas) / step, 0.0)  # mu on each slice interval, then 0 above the defect
        edges = heights[1:]  # where consecutive intervals meet
        weights = np.abs(_sawtooth_integral(edges / thickness_mm))
        second = float(thickness_mm**2 * np.sum(weights * np.abs(np.diff(density))))
    logger.info("volume bound at T = %g mm (%s): first order %.0f mm3, second order %s mm3 (%d slices)",
                thickness_mm, rounding, first, "n/a" if second is None else f"{second:.0f}", len(heights))
    return VolumeBound(first, second, tv, monotone, heights, areas)
