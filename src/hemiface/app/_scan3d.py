"""The 3D views: depth and gain maps of results, and a scan's 3D checks (painted stable area, plane).

Meshes go to the browser compact and nameless: little-endian float32 / uint32 arrays in
base64 (``positions``, ``faces``, ``values``), decimated for display above
:data:`hemiface.scan.DISPLAY_MAX_VERTICES` vertices (measurements always use the full mesh).
Maps come only from the study's ``results/`` (by analysis and content-hash folder); a scan
only by its database id, for scans the study analyses. No file name reaches the page.

A painted stable area travels as a bit mask over the *display* vertices (base64, bit ``i``
of byte ``i // 8`` least significant first) together with the display's id (a hash of
which scan vertex went to which display vertex), so that it maps back to exactly the scan's
vertices: every scan vertex of a painted display vertex. Saving goes through
:func:`hemiface.study.set_scan_settings` (the same table, file and audit entry as
``hemiface study scan-settings``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import threading
from pathlib import Path

import numpy as np

from .._errors import HemifaceError, InputFileError
from ..study import StaleEditError, current_scan_settings, set_scan_settings
from ..study.models import Media
from . import _data
from ._errors import AppValidationError, ConflictError, NotFoundError

#: Analyses whose result folder holds a map for the 3D view.
MAP_ANALYSES = ("scan_analyze", "scan_compare")
#: The files of a result folder that a map is read from.
MAP_FILES = ("depth_map.ply", "measurements.json", "gain_map.ply", "comparison.json")
#: A scan vertex takes the depth of the depth map's closest vertex within this distance (mm), for colour.
DEPTH_ON_SCAN_MM = 1.5
#: Meshes kept ready in memory (maps and scans shown last).
CACHE_SIZE = 6

_cache: dict = {}
_cache_lock = threading.Lock()


def _cached(key, make):
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    value = make()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return value


def b64(array, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def pack_mask(indices, n: int) -> str:
    """Base64 bit mask of ``n`` bits with ``indices`` set (little bit order)."""
    bits = np.zeros(n, bool)
    bits[np.asarray(indices, dtype=np.int64)] = True
    return base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode("ascii")


def unpack_mask(text: str, n: int) -> np.ndarray:
    """The set bits of a :func:`pack_mask` string of ``n`` bits; :class:`AppValidationError` when malformed."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise AppValidationError("stable.mask must be base64 text") from None
    if len(raw) != (n + 7) // 8:
        raise AppValidationError(f"stable.mask must hold {n} bits ({(n + 7) // 8} bytes); got {len(raw)} bytes")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
    if bits[n:].any():
        raise AppValidationError("stable.mask has bits set beyond the last vertex")
    return np.flatnonzero(bits[:n])


def finite(value):
    """``value`` (nested dicts and lists) with NaN and infinities as None: strict JSON for the browser."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _segments(seg: np.ndarray) -> str:
    return b64(np.asarray(seg).reshape(-1, 6), "<f4")


def result_mesh(study, analysis: str, folder: str) -> dict:
    """A result's depth map (``scan_analyze``) or gain map (``scan_compare``) for the viewer."""
    from ..scan import map_view

    if analysis not in MAP_ANALYSES:
        raise NotFoundError("this analysis has no 3D map")
    path = _data._result_folder(study, analysis, folder)
    if any((path / n).is_symlink() for n in MAP_FILES):  # nothing from outside results/
        raise NotFoundError("no such result")
    try:
        stamp = max((path / n).stat().st_mtime_ns for n in ("depth_map.ply", "gain_map.ply") if (path / n).exists())
        view = _cached(("map", str(path), stamp), lambda: map_view(path))
    except (ValueError, OSError, InputFileError):  # ValueError: no map file at all
        raise NotFoundError("this result has no readable 3D map (written by an older hemiface? run it again)") from None
    d = view.display
    return finite(dict(
        kind=view.kind, value_name=view.value_name, units="mm", vertex_count=d.n_original,
        display_vertices=len(d.vertices), clustered=d.clustered,
        positions=b64(d.vertices, "<f4"), faces=b64(d.faces, "<u4"), values=b64(view.values_mm, "<f4"),
        value_range_mm=list(view.value_range_mm), colour_limit_mm=view.colour_limit_mm,
        outline=_segments(view.outline_mm), outline_label=view.outline_label,
        deep_outline=_segments(view.deep_outline_mm), deep_outline_label=view.deep_outline_label,
        affected_side=view.affected_side, axes=view.face_axes,
        plane=None if view.plane_normal is None else dict(normal=list(view.plane_normal), point=list(view.plane_point_mm)),
        sign=("depth > 0: the affected surface lies below the mirrored unaffected surface" if view.kind == "depth"
              else "gain > 0: the follow-up surface lies outside the baseline surface"),
    ))


# --------------------------------------------------------------------------- a scan's 3D checks

def scan_job(study, media_id: int):
    """The ``scan_analyze`` job of a scan in this study's plan (see :func:`hemiface.app._data.media_job`)."""
    return _data.media_job(study, media_id, "scan")


def _scan_display(study, job):
    """(display mesh, its id, mm per unit of the scan) of a job's scan, read once per content."""
    from ..scan import MM_PER_UNIT, display_mesh, load_scan

    path, sha = job.inputs["scan"]
    units = job.parameters["units"]

    def make():
        scan = load_scan(path, units=units)
        display = display_mesh(scan.vertices_mm, scan.faces)
        ident = hashlib.sha256(sha.encode() + np.ascontiguousarray(display.labels, "<i8").tobytes()).hexdigest()[:16]
        return display, ident, MM_PER_UNIT[scan.units]

    try:
        return _cached(("scan", sha, units), make)
    except HemifaceError as exc:
        raise ConflictError(f"the scan cannot be read: {_data.mask(str(exc).splitlines()[0], _data.file_names(study))}") \
            from None


def _depth_on_scan(study, job, display) -> np.ndarray | None:
    """Per display vertex of the scan: the analysis' depth there (NaN off the depth map), or None without a result."""
    from scipy.spatial import cKDTree

    from ..scan import read_analysis

    folder = study.path / job.output_dir
    if not (folder / "depth_map.ply").is_file():
        return None
    try:
        depth = read_analysis(folder).depth
    except InputFileError:
        return None
    dist, idx = cKDTree(depth.vertices).query(display.vertices, distance_upper_bound=DEPTH_ON_SCAN_MM)
    out = np.full(len(display.vertices), np.nan)
    near = np.isfinite(dist)
    out[near] = depth.depth_mm[idx[near]]
    return out


def scan_check(study, media_id: int) -> dict:
    """What the 3D-check page shows: the scan's display mesh, its painted area, plane and current setting."""
    job = scan_job(study, media_id)
    display, ident, mm_per_unit = _scan_display(study, job)
    setting = current_scan_settings(study, media_id)
    stored = _data._results(study).get(job.key)
    result = (stored or {}).get("result") if stored and stored["status"] == "ok" else None
    plane = setting["plane"]
    if isinstance(plane, dict):  # shown in mm like the mesh
        plane = dict(normal=plane["normal"], point=[c * mm_per_unit for c in plane["point"]])
    painted = display.reduce(setting["stable"]) if setting["stable"] is not None else np.empty(0, np.int64)
    depth = _depth_on_scan(study, job, display) if result else None
    frame = (result or {}).get("face_frame") or {}
    return finite(dict(
        media_id=media_id, patient_id=job.patient_id, visit_date=job.visit_date, affected_side=job.affected,
        status=stored["status"] if stored else "waiting", message=_data.mask((stored or {}).get("message"),
                                                                          _data.file_names(study)),
        version=setting["version"], setting=dict(plane=plane, stable_vertices=None if setting["stable"] is None
                                                 else int(len(setting["stable"])), user=setting["user"],
                                                 reason=setting["reason"], at_utc=setting["at_utc"]),
        display_id=ident, vertex_count=display.n_original, display_vertices=len(display.vertices),
        clustered=display.clustered, units="mm",
        positions=b64(display.vertices, "<f4"), faces=b64(display.faces, "<u4"),
        painted=pack_mask(painted, len(display.vertices)), painted_count=int(len(painted)),
        depth=None if depth is None else b64(depth, "<f4"),
        plane=(result or {}).get("symmetry_plane"), plane_method=(result or {}).get("plane_method"),
        axes=frame.get("axes"),
        numbers=None if result is None else {k: result.get(k) for k in (
            "defect_volume_mm3", "volumetric_discrepancy_mm3", "max_depth_mm", "plane_uncertainty_deg")},
    ))


def _plane_of(value, mm_per_unit: float):
    if isinstance(value, str):
        if value not in ("mirror", "landmarks"):
            raise AppValidationError(f"plane must be \"mirror\", \"landmarks\" or {{normal, point}}; got {value!r:.40}")
        return value
    if not isinstance(value, dict) or set(value) != {"normal", "point"}:
        raise AppValidationError("plane must be \"mirror\", \"landmarks\" or {\"normal\": [x, y, z], \"point\": [x, y, z]} (mm)")
    for key in ("normal", "point"):
        v = value[key]
        if (not isinstance(v, list) or len(v) != 3
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) for c in v)):
            raise AppValidationError(f"plane.{key} must be three finite numbers; got {v!r:.60}")
    return dict(normal=[float(c) for c in value["normal"]], point=[float(c) / mm_per_unit for c in value["point"]])


def save_scan_settings(study, media_id: int, payload, *, user_default: str) -> dict:
    """Check a 3D check from the browser and record it through :func:`hemiface.study.set_scan_settings`.

    ``payload``: ``plane`` ("mirror", "landmarks" or ``{normal, point}`` in the scan's frame, mm),
    ``stable`` (None, or ``{"display_id", "mask"}``: the painted display vertices, see the module
    docstring; only with plane "mirror"), ``reason`` (required), ``user`` (optional) and
    ``base_version`` (the version the edit started from; a stale one is a :class:`ConflictError`).
    """
    base, reason, user = _data.edit_fields(payload, ("plane", "stable"), reason_name="reason",
                                           user_default=user_default)
    job = scan_job(study, media_id)
    display, ident, mm_per_unit = _scan_display(study, job)
    plane = _plane_of(payload.get("plane", "mirror"), mm_per_unit)
    stable = payload.get("stable")
    indices = None
    if stable is not None:
        if not isinstance(stable, dict) or set(stable) != {"display_id", "mask"} or not isinstance(stable["mask"], str):
            raise AppValidationError("stable must be null or {\"display_id\": ..., \"mask\": base64 bits}")
        if stable["display_id"] != ident:
            raise ConflictError("the scan shown is not the scan's current display (it changed since the page was "
                                "opened); reload the page and paint again")
        indices = display.expand(unpack_mask(stable["mask"], len(display.vertices)))
        if not len(indices):
            raise AppValidationError("nothing is painted: paint the unaffected areas of both sides, or save "
                                     "without a stable area")
    with study.session() as session:
        scan_name = Path(session.get(Media, media_id).path).name
    with _data.edit_lock(study):
        try:
            done = set_scan_settings(study, job.patient_id, _dt.date.fromisoformat(job.visit_date), reason=reason,
                                     plane=plane, stable=indices, scan=scan_name, user=user, base_version=base)
        except StaleEditError as exc:
            raise ConflictError(str(exc)) from None
    return dict(done, patient_id=job.patient_id, visit_date=job.visit_date)
