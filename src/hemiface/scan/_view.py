"""What a 3D viewer shows of a scan result: the map's mesh (small enough to display), its values, the outline.

:func:`map_view` reads a ``scan analyze`` output folder (``depth_map.ply``, ``measurements.json``)
or a ``scan compare`` folder (``gain_map.ply``, ``comparison.json``). The outline is the
analysis' own rule, not a redrawing: for a depth map the border of the affected side's defect
(:meth:`SavedAnalysis.defect`: depth > 0, deeper than ``floor_mm`` somewhere) and of its part
deeper than ``threshold_mm``; for a gain map the border of the areas that gained (gain > 0) and
rose above the comparison's noise floor (``gain_floor_mm``) somewhere.

:func:`display_mesh` clusters a large mesh for display (measurements always use the full
mesh): vertices are grouped in cubic cells chosen so that at most ``max_vertices`` cells
are occupied; each cell becomes one vertex at its members' mean, carrying their mean
value; triangles whose corners fall into fewer than three cells are dropped. Hand-written
(a few array operations) because the viewer must know which display vertex each original
vertex went to (to map a painted area back to the scan's vertices), which Open3D's
clustering does not return.

Sign conventions are the analyses': depth > 0 means the affected surface lies below the
mirrored unaffected surface; gain > 0 means the follow-up surface lies outside the baseline.
Coordinates are the scan's own frame (the baseline scan's for a gain map), mm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import InputFileError
from ._defect import DEPTH_EPS_MM, Patch
from ._mesh import boundary_edges
from ._render import symmetric_limit

#: Largest mesh sent to a viewer as it is; larger ones are clustered to about this many vertices.
DISPLAY_MAX_VERTICES = 150_000


@dataclass(frozen=True, eq=False)
class DisplayMesh:
    """A mesh for display: ``vertices`` (m, 3), ``faces`` (k, 3) and ``labels`` (n,): each original vertex's display vertex."""

    vertices: np.ndarray = field(repr=False)
    faces: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    n_original: int

    @property
    def clustered(self) -> bool:
        return len(self.vertices) < self.n_original

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Per display vertex, the mean of its original vertices' ``values``."""
        counts = np.bincount(self.labels, minlength=len(self.vertices))
        return np.bincount(self.labels, weights=np.asarray(values, float), minlength=len(self.vertices)) / counts

    def expand(self, display_indices) -> np.ndarray:
        """The original vertices (sorted) of the given display vertices."""
        chosen = np.zeros(len(self.vertices), bool)
        chosen[np.asarray(display_indices, dtype=np.int64)] = True
        return np.flatnonzero(chosen[self.labels])

    def reduce(self, original_indices) -> np.ndarray:
        """The display vertices (sorted) holding any of the given original vertices."""
        return np.unique(self.labels[np.asarray(original_indices, dtype=np.int64)])


def _mean_edge_mm(vertices: np.ndarray, faces: np.ndarray) -> float:
    if not len(faces):
        return 1.0
    e = vertices[faces[:, [1, 2, 0]]] - vertices[faces]
    return float(np.linalg.norm(e, axis=2).mean()) or 1.0


def display_mesh(vertices, faces, *, max_vertices: int = DISPLAY_MAX_VERTICES) -> DisplayMesh:
    """The mesh as it is when small enough, else clustered to at most ``max_vertices`` (module docstring)."""
    v = np.asarray(vertices, dtype=float)
    f = np.asarray(faces, dtype=np.int64)
    n = len(v)
    if n <= max_vertices:
        return DisplayMesh(v, f, np.arange(n), n)
    lo = v.min(axis=0)
    cell = _mean_edge_mm(v, f) * np.sqrt(n / max_vertices)  # a surface: vertex count goes with 1 / cell^2
    while True:
        cells = np.floor((v - lo) / cell).astype(np.int64)
        dims = cells.max(axis=0) + 1
        _, labels = np.unique((cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2], return_inverse=True)
        labels = labels.reshape(-1)
        m = int(labels.max()) + 1
        if m <= max_vertices:
            break
        cell *= 1.05 * np.sqrt(m / max_vertices)
    counts = np.bincount(labels, minlength=m)[:, None]
    centres = np.stack([np.bincount(labels, weights=v[:, k], minlength=m) for k in range(3)], axis=1) / counts
    g = labels[f]
    g = g[(g[:, 0] != g[:, 1]) & (g[:, 1] != g[:, 2]) & (g[:, 0] != g[:, 2])]
    k = np.sort(g, axis=1)
    _, first = np.unique((k[:, 0] * m + k[:, 1]) * m + k[:, 2], return_index=True)  # each triangle once, as oriented
    return DisplayMesh(centres, g[np.sort(first)], labels, n)


def outline_segments(patch: Patch) -> np.ndarray:
    """(k, 2, 3) the border edges of a patch's surface (where a defect or gained area ends)."""
    if not len(patch.faces):
        return np.empty((0, 2, 3))
    return patch.vertices[boundary_edges(patch.faces)]


@dataclass(frozen=True, eq=False)
class MapView:
    """A depth or gain map for a viewer (module docstring). Lengths mm; ``display`` holds the mesh shown.

    ``values_mm`` are per display vertex (a cluster's mean when clustered); ``value_range_mm``
    is over the full map. ``outline_mm`` / ``deep_outline_mm`` are (k, 2, 3) segments.
    """

    kind: str
    value_name: str
    display: DisplayMesh = field(repr=False)
    values_mm: np.ndarray = field(repr=False)
    value_range_mm: tuple[float, float]
    colour_limit_mm: float
    outline_mm: np.ndarray = field(repr=False)
    outline_label: str
    deep_outline_mm: np.ndarray = field(repr=False)
    deep_outline_label: str | None
    affected_side: str
    plane_normal: tuple[float, float, float] | None
    plane_point_mm: tuple[float, float, float] | None
    #: The face frame's axes in the map's frame ("left", "superior", "anterior"), when the analysis recorded them.
    face_axes: dict | None = None


def _read_gain_map(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import trimesh

    try:
        mesh = trimesh.load(path, process=False, force="mesh")
        data = mesh.metadata["_ply_raw"]["vertex"]["data"]
    except Exception as exc:  # trimesh raises many kinds on a corrupt file
        raise InputFileError(f"{path}: cannot be read as the PLY gain map that `scan compare` writes ({exc})") from None
    if "gain_mm" not in (data.dtype.names or ()):
        raise InputFileError(f"{path}: has no per-vertex gain_mm: not a gain map written by `scan compare`")
    return (np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64), np.asarray(data["gain_mm"], float))


def _view(kind, name, vertices, faces, values, at_least, outline, outline_label, deep, deep_label, side, plane,
          max_vertices, face_axes=None) -> MapView:
    display = display_mesh(vertices, faces, max_vertices=max_vertices)
    finite = values[np.isfinite(values)]
    value_range = (float(finite.min()), float(finite.max())) if len(finite) else (float("nan"), float("nan"))
    normal, point = plane if plane is not None else (None, None)
    return MapView(kind, name, display, display.mean(values), value_range, symmetric_limit(values, at_least),
                   outline, outline_label, deep, deep_label, side,
                   None if normal is None else tuple(float(c) for c in normal),
                   None if point is None else tuple(float(c) for c in point), face_axes)


def map_view(folder, *, max_vertices: int = DISPLAY_MAX_VERTICES) -> MapView:
    """The depth map of a ``scan analyze`` folder, or the gain map of a ``scan compare`` folder, for a viewer."""
    from ._saved import read_analysis

    folder = Path(folder)
    if (folder / "comparison.json").is_file():
        try:
            comparison = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
            floor = float(comparison["provenance"]["parameters"]["gain_floor_mm"])
            side = comparison["affected_side"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"{folder / 'comparison.json'}: not the comparison `scan compare` writes "
                                 f"({exc.__class__.__name__})") from None
        v, f, gain = _read_gain_map(folder / "gain_map.ply")
        patch = Patch(v, f, gain, v)
        gained = [c for c in patch.clip(gain, DEPTH_EPS_MM, pin_top=True).components() if c.depth_mm.max() > floor]
        outline = np.concatenate([outline_segments(c) for c in gained]) if gained else np.empty((0, 2, 3))
        return _view("gain", "gain_mm", v, f, gain, 1.0, outline,
                     f"areas that gained (gain > 0 mm, above the {floor:.2f} mm noise floor somewhere)",
                     np.empty((0, 2, 3)), None, side, None, max_vertices)
    saved = read_analysis(folder)
    depth = saved.depth
    defect = saved.defect()
    threshold = float(saved.measurements["threshold_mm"])
    deep = defect.clip(defect.depth_mm, threshold) if len(defect.faces) else defect
    return _view("depth", "depth_mm", depth.vertices, depth.faces, depth.depth_mm, threshold + 1.0,
                 outline_segments(defect), f"defect (depth > 0 mm, deeper than {saved.floor_mm:g} mm somewhere)",
                 outline_segments(deep), f"deeper than {threshold:g} mm", saved.affected_side,
                 (saved.plane_normal, saved.plane_point_mm), max_vertices,
                 (saved.measurements.get("face_frame") or {}).get("axes"))
