"""Reading a ``scan analyze`` output folder back: the depth map, the defect and the face frame.

What later steps (surgical planning, :mod:`hemiface.plan`) start from, so that they follow whatever
the analysis measured: the same depth map, the same symmetry plane, the same defect rule
(:func:`hemiface.scan._defect.find_defects` with the analysis' ``floor_mm``) and the same defect
solid's top (each vertex's closest point on the mirrored unaffected surface, stored in
``depth_map.ply`` as ``mirror_dx_mm`` .. ``mirror_dz_mm``). An in-memory :class:`ScanAnalysis`
gives the same object without the files.

Sign convention (as in the analysis): depth > 0 means the affected surface lies below the mirrored
unaffected surface. Coordinates are the scan's own frame, mm.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import logger
from .._errors import InputFileError
from .._provenance import sha256_file
from ._defect import Patch, find_defects, merge_patches
from ._outputs import MIRROR_OFFSET_NAMES

#: The files of an analysis folder that a reader needs.
REQUIRED_FILES = ("measurements.json", "depth_map.ply")
_KEYS = ("affected_side", "floor_mm", "threshold_mm", "symmetry_plane", "defect_volume_mm3")


@dataclass(frozen=True, eq=False)
class SavedAnalysis:
    """A `scan analyze` result as read back (scan frame, mm).

    ``depth`` is the whole depth map (both sides) with each vertex's mirrored-surface point as ``top``;
    ``superior_direction`` the face frame's +y in scan coordinates (None for an analysis written
    before the frame was recorded); ``inputs`` the provenance of what was read.
    """

    source: str
    measurements: dict = field(repr=False)
    depth: Patch = field(repr=False)
    affected_side: str
    floor_mm: float
    plane_normal: np.ndarray
    plane_point_mm: np.ndarray
    superior_direction: np.ndarray | None
    landmarks_mm: dict = field(repr=False)
    inputs: dict = field(repr=False)

    @property
    def defect_volume_mm3(self) -> float:
        return float(self.measurements["defect_volume_mm3"])

    @property
    def medial_direction(self) -> np.ndarray:
        """Unit vector across the symmetry plane toward the midline, from the affected side."""
        return -self.plane_normal if self.affected_side == "left" else self.plane_normal.copy()

    def defect(self) -> Patch:
        """The affected side's defect: the analysis' rule (depth > 1 micrometre, deeper than ``floor_mm`` somewhere)."""
        side = (self.depth.vertices - self.plane_point_mm) @ self.plane_normal
        half = self.depth.clip(side if self.affected_side == "left" else -side)
        return merge_patches([p for p, _ in find_defects(half, floor_mm=self.floor_mm, threshold_mm=np.inf)])


def _fail(path: Path, problem: str) -> InputFileError:
    return InputFileError(f"{path}: {problem}")


def _read_depth_map(path: Path) -> Patch:
    import trimesh

    try:
        mesh = trimesh.load(path, process=False, force="mesh")
        data = mesh.metadata["_ply_raw"]["vertex"]["data"]
    except Exception as exc:  # trimesh raises many kinds on a corrupt file
        raise _fail(path, f"cannot be read as the PLY depth map that `scan analyze` writes ({exc})") from None
    names = data.dtype.names or ()
    if "depth_mm" not in names:
        raise _fail(path, "has no per-vertex depth_mm: not a depth map written by `scan analyze`")
    if not all(n in names for n in MIRROR_OFFSET_NAMES):
        raise _fail(path, "has no mirrored-surface offsets (mirror_dx_mm, ...): it was written by an older hemiface; "
                          "run `hemiface scan analyze` again")
    v = np.asarray(mesh.vertices, dtype=float)
    offsets = np.column_stack([np.asarray(data[n], dtype=float) for n in MIRROR_OFFSET_NAMES])
    return Patch(v, np.asarray(mesh.faces, dtype=np.int64), np.asarray(data["depth_mm"], dtype=float), v + offsets)


def _direction(frame: dict | None, name: str) -> np.ndarray | None:
    if not frame or name not in frame.get("axes", {}):
        return None
    d = np.asarray(frame["axes"][name], dtype=float)
    return d / np.linalg.norm(d)


def _from_measurements(source: str, measurements: dict, depth: Patch, inputs: dict) -> SavedAnalysis:
    frame = measurements.get("face_frame")
    plane = measurements["symmetry_plane"]
    normal = np.asarray(plane["normal"], dtype=float)
    return SavedAnalysis(
        source=source, measurements=measurements, depth=depth, affected_side=measurements["affected_side"],
        floor_mm=float(measurements["floor_mm"]), plane_normal=normal / np.linalg.norm(normal),
        plane_point_mm=np.asarray(plane["point"], dtype=float), superior_direction=_direction(frame, "superior"),
        landmarks_mm={k: np.asarray(p, dtype=float) for k, p in ((frame or {}).get("landmarks_mm") or {}).items()},
        inputs=inputs,
    )


def _folder(analysis, needed: tuple[str, ...]) -> Path:
    folder = Path(os.fspath(analysis))
    if not folder.exists():
        raise _fail(folder, "no such folder")
    if not folder.is_dir():
        raise _fail(folder, "is not a folder; give the output folder of `hemiface scan analyze`")
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise _fail(folder, f"not a `scan analyze` output folder (no {' or '.join(missing)})")
    return folder


def _load_measurements(folder: Path) -> dict:
    mpath = folder / "measurements.json"
    try:
        measurements = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(mpath, f"cannot be read as JSON ({exc})") from None
    lacking = [k for k in _KEYS if not isinstance(measurements, dict) or k not in measurements]
    if lacking:
        raise _fail(mpath, f"lacks {', '.join(lacking)}: not the measurements of `scan analyze`")
    if measurements["affected_side"] not in ("left", "right"):
        raise _fail(mpath, f"affected_side must be left or right; got {measurements['affected_side']!r}")
    return measurements


def _in_memory_inputs(analysis) -> dict:
    return {"analysis": {"file": "in-memory ScanAnalysis", "sha256": None, "from": analysis.provenance.get("inputs", {})}}


def read_measurements(analysis) -> tuple[dict, dict, str]:
    """An analysis folder's measurements.json (or a :class:`ScanAnalysis`'s): (measurements, provenance inputs, name)."""
    from ._analyze import ScanAnalysis

    if isinstance(analysis, ScanAnalysis):
        return analysis.to_dict(), _in_memory_inputs(analysis), "in-memory analysis"
    folder = _folder(analysis, ("measurements.json",))
    measurements = _load_measurements(folder)
    inputs = {"measurements": {"file": "measurements.json", "sha256": sha256_file(folder / "measurements.json")}}
    return measurements, inputs, folder.name


def read_analysis(analysis) -> SavedAnalysis:
    """Read a ``scan analyze`` output folder (or take a :class:`ScanAnalysis`) for later steps.

    Raises :class:`InputFileError` naming the folder or file when it is missing, is not an analysis
    folder, or was written without what is needed (the mirrored-surface offsets of ``depth_map.ply``).
    """
    from ._analyze import ScanAnalysis

    if isinstance(analysis, ScanAnalysis):
        if analysis.depth_top_mm is None:
            raise InputFileError("this ScanAnalysis carries no mirrored-surface points (depth_top_mm)")
        depth = Patch(analysis.depth_vertices_mm, analysis.depth_faces, analysis.depth_values_mm, analysis.depth_top_mm)
        return _from_measurements("in-memory analysis", analysis.to_dict(), depth, _in_memory_inputs(analysis))
    folder = _folder(analysis, REQUIRED_FILES)
    measurements = _load_measurements(folder)
    depth = _read_depth_map(folder / "depth_map.ply")
    if measurements.get("face_frame") is None:
        logger.warning("%s: records no face frame (older hemiface); superior is taken as the scan's +y", folder.name)
    inputs = {role: {"file": name, "sha256": sha256_file(folder / name)}
              for role, name in (("measurements", "measurements.json"), ("depth_map", "depth_map.ply"))}
    return _from_measurements(folder.name, measurements, depth, inputs)
