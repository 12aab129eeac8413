"""`hemiface study scan-settings`: a scan's symmetry plane and painted stable area, set by a technician.

Where the automatic mirror plane is wrong (broad atrophy pulls it; see the README's
"symmetry plane" section), a person sets, per scan, either

* the plane method: ``"mirror"`` (automatic), ``"landmarks"`` (through nasion, subnasale
  and pogonion, detected or given), or a plane set by hand ``{"normal": [...], "point": [...]}``
  in the scan's own frame and units; or
* a **stable area** for the mirror plane: the scan's vertices known to be unaffected,
  painted on both sides well clear of the atrophy (``stable=`` of
  :func:`hemiface.scan.analyze_scan`).

The setting is stored like a landmark correction: the painted area as a content-named
``.npy`` of vertex indices in the study's ``corrections/`` folder, a row in
``scan_settings`` (the latest one per scan is used) and an audit entry; the scan is
never modified. ``study run`` then recomputes exactly what the setting changes: that
scan's ``scan_analyze`` and, when it is a comparison's baseline (PRE) scan, that
``scan_compare`` (which measures both visits in PRE's plane; a follow-up scan's setting
changes only its own analysis). The plane and the stable area's file and SHA-256 enter
each result's identity and provenance.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
from sqlalchemy import func, select

from .. import logger
from .._errors import HemifaceError
from ._correct import CORRECTIONS_DIR, visit_media
from ._errors import StaleEditError, StudyError
from ._models import AuditEntry, Media, ScanSetting
from ._run import media_file, plan_jobs

#: Plane methods a person can choose by name (a plane set by hand is a mapping).
PLANE_METHODS = ("mirror", "landmarks")


def normalize_plane(plane) -> str | dict:
    """``"mirror"``, ``"landmarks"``, or ``{"normal": unit [x, y, z], "point": [x, y, z]}`` from a name, mapping or JSON file."""
    if isinstance(plane, str) and plane in PLANE_METHODS:
        return plane
    name = "plane"
    if isinstance(plane, (str, os.PathLike)):
        path = Path(plane)
        name = path.name
        try:
            plane = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudyError(f"{name}: not a readable JSON plane ({exc.__class__.__name__}); give \"mirror\", "
                             "\"landmarks\" or a JSON file {\"normal\": [x, y, z], \"point\": [x, y, z]}") from None
    if not isinstance(plane, Mapping) or set(plane) != {"normal", "point"}:
        raise StudyError(f"{name}: give \"mirror\", \"landmarks\" or exactly {{\"normal\": [x, y, z], \"point\": [x, y, z]}} "
                         "(the scan's own frame and units)")
    out = {}
    for key in ("normal", "point"):
        value = plane[key]
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in value)):
            raise StudyError(f"{name}: {key} must be three finite numbers; got {value!r:.80}")
        out[key] = [float(c) for c in value]
    norm = math.sqrt(sum(c * c for c in out["normal"]))
    if norm < 1e-9:
        raise StudyError(f"{name}: the normal must not be zero")
    out["normal"] = [c / norm for c in out["normal"]]
    return out


def _read_stable_file(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        text = path.read_text(encoding="utf-8").replace(",", " ")
        return np.array([int(t) for t in text.split()], dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise StudyError(f"{path.name}: not a list of vertex indices (.npy, or whole numbers in a text file): "
                         f"{exc.__class__.__name__}") from None


def normalize_stable(stable, n_vertices: int) -> np.ndarray:
    """Sorted unique vertex indices (int64) from a boolean mask, indices, or a ``.npy`` / text file of either."""
    where = "stable"
    if isinstance(stable, (str, os.PathLike)):
        where = Path(stable).name
        stable = _read_stable_file(Path(stable))
    mask = np.asarray(stable)
    if mask.dtype == bool:
        if mask.shape != (n_vertices,):
            raise StudyError(f"{where}: a boolean mask needs one value per scan vertex ({n_vertices}); got shape {mask.shape}")
        indices = np.flatnonzero(mask)
    elif mask.ndim == 1 and (mask.size == 0 or np.issubdtype(mask.dtype, np.integer)):
        indices = np.unique(mask.astype(np.int64))
    else:
        raise StudyError(f"{where}: give a boolean mask over the scan's vertices or their indices (whole numbers)")
    if indices.size == 0:
        raise StudyError(f"{where}: no vertex is painted; paint the unaffected areas of both sides, "
                         "or give no stable area to use the automatic plane")
    if indices[0] < 0 or indices[-1] >= n_vertices:
        raise StudyError(f"{where}: vertex indices must lie in 0..{n_vertices - 1} (the scan has {n_vertices} vertices); "
                         f"got {int(indices[0])}..{int(indices[-1])}")
    return indices.astype(np.int64)


def scan_vertex_count(study, media: Media) -> int:
    """Vertices of the scan as :func:`hemiface.scan.load_scan` reads it (the numbering a painted area uses)."""
    from ..scan import load_scan

    units = study.settings.analysis_parameters()["scan_analyze"]["units"]
    return len(load_scan(media_file(study, media), units=units).vertices_mm)


def scan_settings_version(session, media_id: int) -> int:
    """How many settings the scan has had: the version an edit starts from (never decreases)."""
    return int(session.scalar(select(func.count(ScanSetting.id)).where(ScanSetting.media_id == media_id)))


def current_scan_settings(study, media_id: int) -> dict:
    """The scan's latest setting: ``version``, ``plane``, ``stable`` (indices or None), who, when, why.

    Without any setting: version 0, plane None (the study's own setting applies), no stable area.
    """
    with study.session() as session:
        version = scan_settings_version(session, media_id)
        row = session.scalars(select(ScanSetting).where(ScanSetting.media_id == media_id)
                              .order_by(ScanSetting.at_utc.desc(), ScanSetting.id.desc())).first()
    if row is None:
        return dict(version=version, plane=None, stable=None, stable_sha256=None, user=None, reason=None, at_utc=None)
    stable = None
    if row.stable_path:
        stable = np.load(study.path / row.stable_path, allow_pickle=False)
    return dict(version=version, plane=json.loads(row.plane), stable=stable, stable_sha256=row.stable_sha256,
                user=row.user, reason=row.reason, at_utc=row.at_utc.isoformat(timespec="seconds"))


def _store_stable(study, patient_id: str, visit_date: _dt.date, indices: np.ndarray) -> tuple[str, str]:
    """Write the indices as a content-named ``.npy`` in ``corrections/`` (atomically; kept if it exists)."""
    buf = io.BytesIO()
    np.save(buf, indices.astype("<i8"), allow_pickle=False)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    folder = study.path / CORRECTIONS_DIR
    folder.mkdir(exist_ok=True)
    stored = folder / f"{patient_id}_{visit_date.isoformat()}_stable_{sha[:12]}.npy"
    if not stored.exists():
        fd, tmp = tempfile.mkstemp(prefix=".stable-", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, stored)
    return stored.relative_to(study.path).as_posix(), sha


def set_scan_settings(study, patient_id: str, visit_date: _dt.date, *, reason: str, plane="mirror", stable=None,
                      scan: str | None = None, user: str | None = None, base_version: int | None = None) -> dict:
    """Set a scan's symmetry-plane method and/or painted stable area; ``study run`` then uses it.

    Parameters
    ----------
    study : Study
    patient_id : str
        Pseudonymous id.
    visit_date : datetime.date
        The visit the scan belongs to.
    reason : str
        Why (kept in the audit table).
    plane : str, mapping or path
        ``"mirror"`` (automatic, or fitted on ``stable``), ``"landmarks"``, or a plane set by hand:
        ``{"normal": [x, y, z], "point": [x, y, z]}`` (or a JSON file of it) in the scan's own frame
        and units.
    stable : array or path, optional
        The areas known to be unaffected, for the ``"mirror"`` plane: a boolean mask over the scan's
        vertices, their indices, or a ``.npy`` / text file of either. Paint both sides.
    scan : str, optional
        The scan's file name, when the visit has several.
    user : str, optional
        Who sets it [default: the login name].
    base_version : int, optional
        The version (:func:`current_scan_settings`) the edit started from; when another setting was
        saved since, :class:`StaleEditError` and nothing is written.

    Returns
    -------
    dict
        ``version`` (after the save), ``plane``, ``stable_vertices`` and ``redo``: the analyses
        (``scan_analyze``, ``scan_compare``) that the next ``study run`` recomputes for it.
    """
    from ._import import _login

    if not isinstance(reason, str) or not reason.strip():
        raise StudyError("give the reason for the setting (it is kept in the audit table)")
    plane = normalize_plane(plane)
    with study.session() as session:
        media = visit_media(session, patient_id, visit_date, "scan", scan)
        media_id = media.id
    indices = None
    if stable is not None:
        if plane != "mirror":
            raise StudyError("a painted stable area is used by the \"mirror\" plane only; choose plane \"mirror\" "
                             "or leave the stable area out")
        try:
            n_vertices = scan_vertex_count(study, media)
        except HemifaceError as exc:
            raise StudyError(f"patient {patient_id}'s scan on {visit_date.isoformat()} cannot be read: "
                             f"{str(exc).splitlines()[0]}") from None
        indices = normalize_stable(stable, n_vertices)
    stored = _store_stable(study, patient_id, visit_date, indices) if indices is not None else (None, None)
    user = user or _login()
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    with study.writing() as session:  # the version check and the write in one locked transaction
        version = scan_settings_version(session, media_id)
        if base_version is not None and base_version != version:
            raise StaleEditError(
                f"this scan's settings were changed since you opened them (version {base_version}, now {version}); "
                "reload to see the newer setting, then edit again")
        session.add(ScanSetting(media_id=media_id, plane=json.dumps(plane), stable_path=stored[0],
                                stable_sha256=stored[1], stable_vertices=None if indices is None else int(indices.size),
                                user=user, reason=reason.strip(), at_utc=now))
        session.add(AuditEntry(at_utc=now, user=user, action="scan_settings", details_json=json.dumps({
            "patient_id": patient_id, "visit_date": visit_date.isoformat(), "media_id": media_id, "plane": plane,
            "stable_vertices": None if indices is None else int(indices.size), "stable_sha256": stored[1],
            "reason": reason.strip(), "version": version + 1,
        }, sort_keys=True)))
    redo = redo_for_scan(study, media_id)
    logger.info("scan settings recorded (version %d); %d analyses to recompute", version + 1, len(redo))
    return {"version": version + 1, "plane": plane, "stable_vertices": None if indices is None else int(indices.size),
            "redo": redo}


def redo_for_scan(study, media_id: int) -> list[str]:
    """The analyses of this scan (its own, and a comparison whose baseline it is) that have no result yet."""
    from ._models import AnalysisResult

    jobs = [j for j in plan_jobs(study)[0] if j.media_id == media_id and j.analysis in ("scan_analyze", "scan_compare")]
    with study.session() as session:
        done = {(r.analysis, r.inputs_sha256, r.parameters_sha256) for r in session.scalars(
            select(AnalysisResult).where(AnalysisResult.status == "ok"))}
    return sorted({j.analysis for j in jobs if j.key not in done})
