"""Defect volumetry on a depth-annotated hemiface.

Sign convention: depth > 0 means the affected surface lies below (inside) the
mirrored unaffected surface. Each vertex carries ``top``: its closest point on
the mirrored surface, so the defect is the solid swept from the affected skin
(bottom) to the mirrored skin (top).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from .. import logger

from ._mesh import (
    boundary_points, clip_by_scalar, face_areas_mm2, swept_volumes_mm3, vertex_areas_mm2, vertex_components,
)
from ._peak import Peaks, RawDepth

#: "depth > 0", numerically: the defect's rim is the 1-micrometre level set. This keeps
#: the microscopic tail of smoothed depth (and float round-off on symmetric skin) out
#: of the defect, and keeps the printable solid's top and bottom apart off the rim.
DEPTH_EPS_MM = 1e-3
#: A defect's area is where it is deeper than this (mm), on the restored surface: a smooth defect's rim runs
#: into the scanner's noise, so the area above the rim has no stable value (0.1 mm of noise added 25% to 300%).
AREA_LEVEL_MM = 0.5


@dataclass(frozen=True)
class Patch:
    """A surface patch with per-vertex depth (mm) and mirrored-surface point ``top``.

    ``peaks``: a defect's peaks measured on the unsmoothed depth (:mod:`._peak`), and
    ``raw_depth_mm`` / ``raw_top`` the unsmoothed depth at its vertices and their unsmoothed
    closest points on the mirrored skin, when :func:`find_defects` was given them; kept by
    :func:`merge_patches`, dropped by ``clip``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    depth_mm: np.ndarray
    top: np.ndarray
    peaks: Peaks | None = None
    raw_depth_mm: np.ndarray | None = None
    raw_top: np.ndarray | None = None

    def max_depth_mm(self) -> float:
        """The deepest point: the larger of the depth map's maximum and the refined peaks (0 when empty)."""
        deepest = float(self.depth_mm.max()) if len(self.depth_mm) else 0.0
        if self.peaks is not None and len(self.peaks.depth_mm):
            deepest = max(deepest, float(self.peaks.depth_mm.max()))
        return deepest

    def sample(self, points: np.ndarray, query=None) -> np.ndarray:
        """Depth at arbitrary points: linear on the closest triangle (0 where the patch is empty)."""
        if not len(self.faces):
            return np.zeros(len(points))
        return self.interpolate(points, self.depth_mm, query)

    def interpolate(self, points: np.ndarray, values: np.ndarray, query=None) -> np.ndarray:
        """Per-vertex ``values`` ((n,) or (n, k)) at arbitrary points: linear on the closest triangle.
        ``query``: a :class:`SurfaceQuery` of this patch, when one is kept."""
        from ._distance import SurfaceQuery

        cp = (query or SurfaceQuery(self.vertices, self.faces)).closest(points)
        tri = self.faces[cp.face_ids]
        a, b, c = (self.vertices[tri[:, k]] for k in range(3))
        return np.einsum("ij,ij...->i...", barycentric(cp.points, a, b, c), np.asarray(values)[tri])

    def clip(self, scalar: np.ndarray, level: float = 0.0, *, pin_top: bool = False) -> "Patch":
        v, f, attrs, on_cut = clip_by_scalar(
            self.vertices, self.faces, scalar, {"depth_mm": self.depth_mm, "top": self.top}, level=level
        )
        depth, top = attrs["depth_mm"], attrs["top"]
        if pin_top:  # cut along depth == 0: the two surfaces meet there
            top = top.copy()
            top[on_cut] = v[on_cut]
            depth = depth.copy()
            depth[on_cut] = 0.0
        return Patch(v, f, depth, top)

    def deeper_than(self, threshold_mm: float) -> "Patch":
        """The part deeper than ``threshold_mm``: on the unsmoothed depth when known, as the maximum is.

        The smoothing that keeps noise out of the volumes lowers every peak, so its map's
        level line at 4 mm encloses too little (-20% on the 10 mm wide groove); on the
        unsmoothed depth zero-mean noise only blurs the line, to either side.
        """
        return self.clip(self.depth_mm if self.raw_depth_mm is None else self.raw_depth_mm, threshold_mm)

    def area_mm2(self) -> float:
        return float(face_areas_mm2(self.vertices, self.faces).sum()) if len(self.faces) else 0.0

    def restored_area_mm2(self, level_mm: float = AREA_LEVEL_MM) -> float:
        """The area of the restored surface (the mirrored skin) over the part deeper than ``level_mm``.

        On the restored surface, not the affected skin: that is the skin to rebuild and what a graft or
        flap must cover, and the walls of a deep groove make the affected skin's own area far larger
        (the 6.9 mm deep groove of the ``midline`` phantom: 736 mm2 of affected skin deeper than 0.5 mm over
        565 mm2 of restored surface).

        With the unsmoothed depth known (:func:`find_defects` given ``raw``), the part is where both the
        smoothed and the unsmoothed depth pass the level, and the area is that of the unsmoothed closest
        points. The smoothing spreads a narrow profile outward (the groove's level line +42% on the
        smoothed map) and stretches the smoothed mirrored points over its flanks (+7.5% on the
        ``midline`` pattern); the unsmoothed depth alone lets scanner noise cross the level all over the
        shallow margin (+20% at 0.2 mm of noise), which the smoothed map keeps out.
        """
        if self.raw_depth_mm is None or self.raw_top is None:
            part = self.clip(self.depth_mm, level_mm)
            return float(face_areas_mm2(part.top, part.faces).sum()) if len(part.faces) else 0.0
        _, faces, attrs, _ = clip_by_scalar(self.vertices, self.faces, np.minimum(self.depth_mm, self.raw_depth_mm),
                                            {"raw_top": self.raw_top}, level=level_mm)
        return float(face_areas_mm2(attrs["raw_top"], faces).sum()) if len(faces) else 0.0

    def volume_mm3(self) -> float:
        """Signed volume between the patch and its mirrored counterpart (> 0 for a deficit)."""
        return float(swept_volumes_mm3(self.vertices, self.top, self.faces).sum()) if len(self.faces) else 0.0

    def components(self) -> list["Patch"]:
        if len(self.faces) == 0:
            return []
        n, labels = vertex_components(len(self.vertices), self.faces)
        face_label = labels[self.faces[:, 0]]
        out = []
        for k in range(n):
            mask = face_label == k
            if not mask.any():
                continue
            used = np.unique(self.faces[mask])
            remap = np.full(len(self.vertices), -1)
            remap[used] = np.arange(len(used))
            out.append(Patch(self.vertices[used], remap[self.faces[mask]], self.depth_mm[used], self.top[used]))
        return out


def barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(k, 3) barycentric coordinates of points p in triangles (a, b, c)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (np.einsum("ij,ij->i", x, y) for x, y in ((v0, v0), (v0, v1), (v1, v1)))
    d20, d21 = np.einsum("ij,ij->i", v2, v0), np.einsum("ij,ij->i", v2, v1)
    det = d00 * d11 - d01 * d01
    det = np.where(np.abs(det) > 1e-18, det, 1.0)
    w1 = (d11 * d20 - d01 * d21) / det
    w2 = (d00 * d21 - d01 * d20) / det
    return np.column_stack([1 - w1 - w2, w1, w2])


@dataclass(frozen=True)
class DefectMeasure:
    """One connected defect (mm, mm2, mm3). ``area_mm2``: :meth:`Patch.restored_area_mm2` (deeper than
    :data:`AREA_LEVEL_MM`)."""

    volume_mm3: float
    max_depth_mm: float
    area_mm2: float
    area_deeper_than_threshold_mm2: float
    centroid_mm: tuple[float, float, float]  # scan frame, filled in by the caller

    def to_dict(self) -> dict:
        return asdict(self)


def find_defects(
    hemiface: Patch, *, floor_mm: float, threshold_mm: float, rim_mm: float = DEPTH_EPS_MM,
    raw: RawDepth | None = None, support: np.ndarray | None = None,
) -> list[tuple[Patch, DefectMeasure]]:
    """Connected areas with depth > ``rim_mm`` (numerically 0) that hold a point deeper than ``floor_mm``.

    Largest volume first. Centroids are left in the patch's frame; the caller
    maps them to the scan frame. With ``raw`` (the unsmoothed depth of the same
    patch), each defect's peaks are measured on it (:mod:`._peak`) and its maximum
    depth is :meth:`Patch.max_depth_mm`; without, the smoothed map's maximum.

    With ``support`` (a per-vertex field, such as a smoother copy of the depth grown by
    a margin), the areas are where ``support`` exceeds ``rim_mm`` and their volume is the
    signed integral of the depth over them: zero-mean noise inside adds nothing, where
    integrating only the positive part of a noisy field adds its positive half.
    """
    if support is not None:
        positive = hemiface.clip(np.asarray(support) - rim_mm)
    else:
        positive = hemiface.clip(hemiface.depth_mm, rim_mm, pin_top=True)
    defects = []
    for comp in positive.components():
        if comp.depth_mm.max() <= floor_mm:
            continue
        if raw is not None:
            raw_depth, raw_top = raw.at(comp.vertices)
            comp = replace(comp, peaks=raw.peaks(comp, hemiface), raw_depth_mm=raw_depth, raw_top=raw_top)
        deep = comp.deeper_than(threshold_mm)
        weights = face_areas_mm2(comp.vertices, comp.faces)
        centroid = (comp.vertices[comp.faces].mean(axis=1) * weights[:, None]).sum(axis=0) / weights.sum()
        defects.append(
            (
                comp,
                DefectMeasure(
                    volume_mm3=comp.volume_mm3(),
                    max_depth_mm=comp.max_depth_mm(),
                    area_mm2=comp.restored_area_mm2(),
                    area_deeper_than_threshold_mm2=deep.area_mm2(),
                    centroid_mm=tuple(float(c) for c in centroid),
                ),
            )
        )
    defects.sort(key=lambda d: -d[1].volume_mm3)
    return defects


def merge_patches(patches: list[Patch]) -> Patch:
    if not patches:
        e = np.empty((0, 3))
        return Patch(e, np.empty((0, 3), np.int64), np.empty(0), e)
    offsets = np.cumsum([0] + [len(p.vertices) for p in patches[:-1]])
    return Patch(
        np.concatenate([p.vertices for p in patches]),
        np.concatenate([p.faces + o for p, o in zip(patches, offsets)]),
        np.concatenate([p.depth_mm for p in patches]),
        np.concatenate([p.top for p in patches]),
        Peaks.merge([p.peaks for p in patches]) if any(p.peaks is not None for p in patches) else None,
        *(np.concatenate([getattr(p, name) for p in patches]) if all(getattr(p, name) is not None for p in patches)
          else None for name in ("raw_depth_mm", "raw_top")),
    )


#: The region's edge may cut a depressed area: as much again as lies within this band inside the edge is
#: taken as the SD of what lies beyond it (mm).
EDGE_BAND_MM = 5.0
#: A volume whose edge SD (:func:`edge_volume_mm3`) reaches this share of it is reported as reaching the
#: region's edge (the multi-zone pattern's temple part: 1.6-3.5% on five faces, -1.1 to -4.9% cut off).
EDGE_WARNING_SHARE = 0.01


def region_edge_tree(half):
    """KD-tree of a hemiface's open border away from the midline (the region's edge), or None."""
    if not len(half.faces):
        return None
    edge = boundary_points(half.vertices, half.faces)
    edge = edge[np.abs(edge[:, 0]) > EDGE_BAND_MM]  # the midline cut is not an edge of the measurement
    return cKDTree(edge) if len(edge) else None


def edge_volume_mm3(patch, edge_tree, *, signed: bool = False) -> float:
    """Half the depth integral of ``patch`` within EDGE_BAND_MM of the region's edge: the uncertainty of
    what the edge cut off. Positive depth only for a defect; ``signed`` (the discrepancy): |signed integral|.
    """
    if edge_tree is None or not len(patch.faces):
        return 0.0
    near = edge_tree.query(patch.vertices, distance_upper_bound=EDGE_BAND_MM)[0] <= EDGE_BAND_MM
    depth = patch.depth_mm if signed else np.maximum(patch.depth_mm, 0.0)
    return 0.5 * abs(float(np.sum(vertex_areas_mm2(patch.vertices, patch.faces)[near] * depth[near])))


def reaches_region_edge(what: str, edge_sd_mm3: float, volume_mm3: float) -> bool:
    """Whether ``what`` (a defect, a gain) of ``volume_mm3`` reaches the region's edge (its edge SD at least
    EDGE_WARNING_SHARE of it); if so, a warning says so and how to widen the region."""
    if not edge_sd_mm3 >= EDGE_WARNING_SHARE * volume_mm3 > 0:
        return False
    logger.warning("the %s reaches the face region's edge: about %.0f mm3 (1 SD) of it may lie beyond; widen the face "
                   "region (--region-width-mm, --region-above-mm, --region-below-mm, --region-depth-mm) to measure it",
                   what, edge_sd_mm3)
    return True
