"""What the pages show, read from the study through :mod:`hemiface.study`'s public functions.

Plain dicts and lists, ready for a template or for JSON. Nothing here writes,
except :func:`save_correction`, which hands the edited landmarks to
:func:`hemiface.study.correct_landmarks` (the same file, the same audit entry
as ``hemiface study correct``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import getpass
import json
import math
import re
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..study import (ANALYSES, CORRECTIONS_DIR, RESULTS_DIR, StaleEditError, correct_landmarks, eligibility, endpoint_table,
                     landmarks_version, plan_jobs, study_flow)
from ..study.models import TABLES, AnalysisResult, AuditEntry, Media, Patient, ScanSetting, Visit
from ._errors import AppValidationError, ConflictError, NotFoundError

LandmarkCorrection = TABLES["landmark_corrections"]  # not (yet) exported by hemiface.study.models

#: Result images a page may show, by analysis (the only file names ``/results/`` serves).
RESULT_IMAGES = {
    "photo_analyze": ("overlay.png",),
    "scan_analyze": ("depth_map.png",),
    "scan_compare": ("gain_map.png", "before_after.png"),
}
#: A result folder's name, as :class:`hemiface.study.Job` makes it (content hashes, never a patient's name).
RESULT_FOLDER_RE = re.compile(r"^[0-9a-f]{16}_[0-9a-f]{8}$")

#: Headline numbers of each analysis shown in the tables (key in the result, label).
HEADLINES = {
    "photo_analyze": (("symmetry_ratio_percent", "symmetry ratio (%)"),
                      ("contour_ratio_percent_mean", "contour ratio, mean (%)"),
                      ("landmark_ratio_percent", "landmark ratio (%)")),
    "scan_analyze": (("defect_volume_mm3", "defect volume (mm³)"),
                     ("defect_volume_uncertainty_mm3", "defect volume, SD (mm³)"),
                     ("volumetric_discrepancy_mm3", "volumetric discrepancy (mm³)"),
                     ("volumetric_discrepancy_uncertainty_mm3", "volumetric discrepancy, SD (mm³)")),
    "scan_compare": (("volume_gain_mm3", "volume gain (mm³)"),
                     ("volume_gain_uncertainty_mm3", "volume gain, SD (mm³)"),
                     ("volume_gain_registration_sd_mm3", "volume gain, registration SD (mm³)"),
                     ("discrepancy_pre_mm3", "discrepancy before (mm³)"),
                     ("discrepancy_post_mm3", "discrepancy after (mm³)"),
                     ("discrepancy_change_uncertainty_mm3", "discrepancy change, SD (mm³)"),
                     ("defect_corrected_percent", "defect corrected (%)")),
}

#: Longest reason and user name accepted from a page (the audit table keeps them whole).
MAX_REASON = 2000
MAX_USER = 128


def login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def file_names(study) -> list[str]:
    """The media files' own names (they may carry a name or a hospital number): pages never show them."""
    with study.session() as session:
        names = {Path(path).name for path in session.scalars(select(Media.path))}
    return sorted(names, key=len, reverse=True)


def mask(text, names) -> str | None:
    """``text`` with every media file name replaced by ``[file]`` (patient id, visit and analysis say which)."""
    if not text:
        return text
    for name in names:
        if name and name in text:
            text = text.replace(name, "[file]")
    return text


def scrub(value, names):
    """``value`` (nested dicts, lists, strings) with :func:`mask` applied to every string."""
    if isinstance(value, str):
        return mask(value, names)
    if isinstance(value, dict):
        return {k: scrub(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, names) for v in value]
    return value


def _results(study) -> dict:
    """(analysis, inputs sha, parameters sha) -> the stored result as a dict."""
    with study.session() as session:
        return {(r.analysis, r.inputs_sha256, r.parameters_sha256): dict(
            status=r.status, message=r.message, created_utc=r.created_utc,
            result=json.loads(r.result_json) if r.result_json else None,
            provenance=json.loads(r.provenance_json) if r.provenance_json else {},
        ) for r in session.scalars(select(AnalysisResult))}


def _shown(value):
    """A headline value as a page shows it: None (a dash) for a number not computed (NaN, such as an SD with
    the uncertainty switched off)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _job_view(study, job, stored, names) -> dict:
    """One planned analysis with its stored outcome (``waiting`` when it has none yet)."""
    status = stored["status"] if stored else "waiting"
    result = (stored or {}).get("result") or {}
    folder = study.path / job.output_dir
    images = []
    if status == "ok":
        images = [name for name in RESULT_IMAGES[job.analysis] if (folder / name).is_file()]
    return dict(
        analysis=job.analysis, visit_date=job.visit_date, media_id=job.media_id, status=status,
        message=mask((stored or {}).get("message"), names),
        headline=[(label, _shown(result[key])) for key, label in HEADLINES[job.analysis] if key in result],
        flags=list(result.get("flags") or []),
        result=scrub(result, names), provenance=scrub((stored or {}).get("provenance") or {}, names),
        inputs={role: sha for role, (_path, sha) in job.inputs.items()},
        inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256, parameters=job.parameters,
        result_dir=job.output_dir if status == "ok" else None, images=images,
        created_utc=(stored or {}).get("created_utc"),
    )


def _counts():
    return {a: {"ok": 0, "failed": 0, "waiting": 0, "messages": []} for a in ANALYSES}


def overview(study) -> dict:
    """The study flow and one row per patient (eligible or not) with what is analysed, failed or waiting."""
    table = eligibility(study)
    endpoints = endpoint_table(study)
    flow = study_flow(table, endpoints)
    jobs, problems = plan_jobs(study)
    results = _results(study)
    names = file_names(study)
    per_patient: dict = {}
    for job in jobs:
        stored = results.get(job.key)
        c = per_patient.setdefault(job.patient_id, _counts())[job.analysis]
        status = stored["status"] if stored else "waiting"
        c["ok" if status == "ok" else "failed" if status == "failed" else "waiting"] += 1
        if status == "failed":
            c["messages"].append(f"{job.visit_date}: {mask(stored['message'], names)}")
        if stored and stored.get("result"):
            for flag in stored["result"].get("flags") or []:
                per_patient[job.patient_id].setdefault("_flags", set()).add(str(flag))
    for p in problems:
        c = per_patient.setdefault(p["patient_id"], _counts())[p["analysis"]]
        c["failed"] += 1
        c["messages"].append(f"{p['visit_date']}: {mask(p['message'], names)}")
    with study.session() as session:
        patients = {p.pseudonym: p for p in session.scalars(select(Patient).options(selectinload(Patient.visits)))}
        n_visits = {pid: len(p.visits) for pid, p in patients.items()}
        sides = {pid: p.affected_side for pid, p in patients.items()}
        corrected = dict(session.execute(
            select(Patient.pseudonym, func.count(LandmarkCorrection.id))
            .join(Visit, Visit.patient_id == Patient.id).join(Media, Media.visit_id == Visit.id)
            .join(LandmarkCorrection, LandmarkCorrection.media_id == Media.id).group_by(Patient.pseudonym)).all())
    rows = []
    for e in table.itertuples():
        counts = per_patient.get(e.patient_id, _counts())
        flags = sorted(counts.pop("_flags", set()))
        failed = sum(counts[a]["failed"] for a in ANALYSES)
        waiting = sum(counts[a]["waiting"] for a in ANALYSES)
        if not e.eligible:
            state = "excluded"
        elif failed:
            state = "failed"
        elif waiting:
            state = "waiting"
        else:
            state = "done"
        rows.append(dict(
            patient_id=e.patient_id, technique=e.technique, affected_side=sides.get(e.patient_id),
            visits=n_visits.get(e.patient_id, 0), eligible=bool(e.eligible), exclusion_reason=e.exclusion_reason,
            baseline_date=_date(e.baseline_date), followup_date=_date(e.followup_date),
            analyses=counts, flags=flags, state=state, corrections=int(corrected.get(e.patient_id, 0)),
        ))
    return dict(name=study.settings.name, flow=flow, patients=rows,
                totals={s: sum(r["state"] == s for r in rows) for s in ("done", "failed", "waiting", "excluded")})


def _date(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return value.isoformat()
    except AttributeError:
        return None if str(value) in ("NaT", "nan", "None") else str(value)


def patient_detail(study, patient_id: str) -> dict:
    """Everything the patient page shows; :class:`NotFoundError` for an unknown id."""
    with study.session() as session:
        patient = session.scalars(select(Patient).where(Patient.pseudonym == patient_id).options(
            selectinload(Patient.surgeries),
            selectinload(Patient.visits).selectinload(Visit.media),
            selectinload(Patient.visits).selectinload(Visit.complications),
            selectinload(Patient.visits).selectinload(Visit.faceq_scores))).first()
        if patient is None:
            raise NotFoundError(f"no patient {patient_id!r} in this study")
        info = dict(patient_id=patient.pseudonym, sex=patient.sex, affected_side=patient.affected_side,
                    birth_year=patient.birth_year, age_at_surgery_years=patient.age_at_surgery_years,
                    guerrerosantos_stage=patient.guerrerosantos_stage, age_at_onset_years=patient.age_at_onset_years)
        surgeries = [dict(date=s.date.isoformat(), technique=s.technique, is_initial=s.is_initial, notes=s.notes)
                     for s in sorted(patient.surgeries, key=lambda s: s.date)]
        visits = [dict(date=v.date.isoformat(), kind=v.kind,
                       photos=sum(m.kind == "photo" for m in v.media), scans=sum(m.kind == "scan" for m in v.media),
                       complications=[dict(type=c.type, severity=c.severity) for c in v.complications],
                       faceq=[dict(scale=q.scale, score=q.score) for q in v.faceq_scores])
                  for v in sorted(patient.visits, key=lambda v: v.date)]
        media_ids = [m.id for v in patient.visits for m in v.media]
        n_corr = dict(session.execute(select(LandmarkCorrection.media_id, func.count(LandmarkCorrection.id))
                                      .where(LandmarkCorrection.media_id.in_(media_ids))
                                      .group_by(LandmarkCorrection.media_id)).all()) if media_ids else {}
        n_settings = dict(session.execute(select(ScanSetting.media_id, func.count(ScanSetting.id))
                                          .where(ScanSetting.media_id.in_(media_ids))
                                          .group_by(ScanSetting.media_id)).all()) if media_ids else {}
        audit, scan_audit = [], []
        for a in session.scalars(select(AuditEntry).where(AuditEntry.action.in_(("correct_landmarks", "scan_settings")))
                                 .order_by(AuditEntry.at_utc, AuditEntry.id)):
            details = json.loads(a.details_json)
            if details.get("patient_id") == patient_id:
                entry = dict(details, at_utc=a.at_utc.isoformat(timespec="seconds"), user=a.user)
                (audit if a.action == "correct_landmarks" else scan_audit).append(entry)
    table = eligibility(study)
    row = table[table["patient_id"] == patient_id].iloc[0]
    elig = dict(eligible=bool(row["eligible"]), exclusion_reason=row["exclusion_reason"],
                technique=row["technique"], baseline_date=_date(row["baseline_date"]),
                followup_date=_date(row["followup_date"]))
    jobs, problems = plan_jobs(study)
    results = _results(study)
    names = file_names(study)
    for entry in audit:
        entry["message"] = mask(entry.get("message"), names)
    analyses = [_job_view(study, j, results.get(j.key), names) for j in jobs if j.patient_id == patient_id]
    for a in analyses:
        a["corrections"] = n_corr.get(a["media_id"], 0) if a["analysis"] == "photo_analyze" else 0
        a["scan_settings"] = n_settings.get(a["media_id"], 0) if a["analysis"] == "scan_analyze" else 0
    problems = [dict(p, message=mask(p["message"], names)) for p in problems if p["patient_id"] == patient_id]
    return dict(patient=info, eligibility=elig, surgeries=surgeries, visits=visits, analyses=analyses,
                problems=problems, audit=audit, scan_audit=scan_audit)


# --------------------------------------------------------------------------- photos and corrections

def media_job(study, media_id: int, kind: str):
    """The ``<kind>_analyze`` job ("photo" or "scan") of a medium in this study's plan; :class:`NotFoundError` when none."""
    for job in plan_jobs(study)[0]:
        if job.media_id == media_id and job.analysis == f"{kind}_analyze":
            return job
    raise NotFoundError(f"{kind} {media_id} is not analysed in this study (no such {kind}, or its patient "
                        "or visit is not eligible, or the file is missing or changed)")


def photo_job(study, media_id: int):
    """The ``photo_analyze`` job of a photo in this study's plan (see :func:`media_job`)."""
    return media_job(study, media_id, "photo")


def correction_version(study, media_id: int) -> int:
    """How many corrections the photo has had: the version an edit starts from (never decreases)."""
    with study.session() as session:
        return landmarks_version(session, media_id)


def photo_landmarks(study, media_id: int) -> dict:
    """The landmarks the photo's current analysis used (automatic or the latest correction), with its version."""
    job = photo_job(study, media_id)
    stored = _results(study).get(job.key)
    version = correction_version(study, media_id)
    out = dict(media_id=media_id, patient_id=job.patient_id, visit_date=job.visit_date, version=version,
               status=stored["status"] if stored else "waiting",
               message=mask((stored or {}).get("message"), file_names(study)),
               symmetry_ratio_percent=((stored or {}).get("result") or {}).get("symmetry_ratio_percent"),
               landmarks=None, result_dir=None)
    if stored and stored["status"] == "ok":
        file = study.path / job.output_dir / "landmarks.json"
        if file.is_file():
            out["landmarks"] = json.loads(file.read_text(encoding="utf-8"))
            out["result_dir"] = job.output_dir
    return out


def _xy(value, where: str, width: float, height: float) -> list[float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)):
        raise AppValidationError(f"{where} must be two finite numbers [x, y]; got {value!r:.60}")
    x, y = float(value[0]), float(value[1])
    # a point may sit a little outside the photo (a cheek cut by the frame), never far away
    if not (-0.25 * width <= x <= 1.25 * width and -0.25 * height <= y <= 1.25 * height):
        raise AppValidationError(f"{where} = [{x:.1f}, {y:.1f}] px lies outside the photo ({width:g} x {height:g} px)")
    return [x, y]


def edit_fields(payload, fields: tuple[str, ...], *, reason_name: str, user_default: str) -> tuple[int, str, str]:
    """(base_version, reason, user) of an edit sent from a page, whose other fields may only be ``fields``.

    Every edit (a landmark correction, a 3D check) carries a required reason, an optional user name
    (``user_default`` when none) and the version it started from, against lost updates.
    """
    allowed = (*fields, "reason", "user", "base_version")
    if not isinstance(payload, dict):
        raise AppValidationError(f"send a JSON object with {', '.join(fields)}, reason and base_version")
    unknown = set(payload) - set(allowed)
    if unknown:
        raise AppValidationError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                                 f"allowed: {', '.join(allowed)}")
    base = payload.get("base_version")
    if isinstance(base, bool) or not isinstance(base, int) or base < 0:
        raise AppValidationError(f"base_version must be a whole number >= 0 (the version the edit started from); "
                                 f"got {base!r:.40}")
    reason = _text(payload.get("reason"), reason_name, MAX_REASON, required=True)
    user = _text(payload.get("user"), "user name", MAX_USER, required=False) or user_default
    return base, reason, user


def _text(value, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise AppValidationError(f"give the {name}")
        return None
    if not isinstance(value, str):
        raise AppValidationError(f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise AppValidationError(f"{name} is {len(value)} characters long; at most {limit}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise AppValidationError(f"{name} holds control characters")
    return value


#: Seconds a save waits for another save of the same study (in any process) before it is refused.
EDIT_LOCK_TIMEOUT_S = 30.0
_EDIT_LOCK = ".app-edit.lock"


@contextlib.contextmanager
def edit_lock(study, *, timeout: float | None = None):
    """One correction at a time per study, across processes (an advisory lock in ``corrections/``).

    Makes the version check and the write one step, so that two app servers on the same
    study cannot both save over the same version. :class:`ConflictError` after ``timeout``.
    """
    folder = study.path / CORRECTIONS_DIR
    folder.mkdir(exist_ok=True)
    timeout = EDIT_LOCK_TIMEOUT_S if timeout is None else timeout
    with open(folder / _EDIT_LOCK, "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError("another correction of this study is being saved; save again in a moment") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_correction(study, media_id: int, payload) -> dict:
    """Check an edit from the browser and record it through :func:`hemiface.study.correct_landmarks`.

    ``payload``: ``points`` (every named point of the current landmarks, [x, y] px),
    ``outline`` (as many [x, y] points as the current outline), ``reason`` (required),
    ``user`` (optional; the login name by default) and ``base_version`` (the
    :func:`correction_version` the edit started from). A stale ``base_version`` is a
    :class:`ConflictError`: someone saved a newer correction since, and saving would
    silently undo it. It is checked in the transaction that records the correction, so a
    `hemiface study correct` between the page's check and the save is caught too; saves of one
    study, from any number of app servers, hold :func:`edit_lock` and happen one at a time.

    Returns the outcome of :func:`correct_landmarks` with the new ``version``.
    """
    base, reason, user = edit_fields(payload, ("points", "outline"), reason_name="reason for the correction",
                                     user_default=login_name())
    with edit_lock(study):
        return _save(study, media_id, points=payload.get("points"), outline=payload.get("outline"), reason=reason,
                     user=user, base=base)


def _save(study, media_id, *, points, outline, reason, user, base) -> dict:
    current = photo_landmarks(study, media_id)  # a stale ``base`` is refused where the correction is written
    lm = current["landmarks"]
    if lm is None:
        raise ConflictError("this photo has no landmarks to correct (its analysis failed or has not run yet); "
                            "correct it with `hemiface study correct` and a landmark file")
    image = lm.get("image") or {}
    width, height = float(image.get("width_px") or 1e9), float(image.get("height_px") or 1e9)
    if not isinstance(points, dict) or set(points) != set(lm["points"]):
        raise AppValidationError("points must hold exactly the photo's named landmarks "
                                 f"({len(lm['points'])}: {', '.join(sorted(lm['points']))})")
    if not isinstance(outline, list) or len(outline) != len(lm["outline"]):
        raise AppValidationError(f"outline must be a list of {len(lm['outline'])} points [x, y]")
    new = dict(lm)
    new["points"] = {name: _xy(points[name], f"point {name}", width, height) for name in lm["points"]}
    new["outline"] = [_xy(p, f"outline point {i}", width, height) for i, p in enumerate(outline)]
    new["source"] = "corrected in hemiface app"
    new["note"] = f"Corrected by {user} in hemiface app: {reason}"
    visit_date = _dt.date.fromisoformat(current["visit_date"])
    with study.session() as session:
        photo_name = Path(session.get(Media, media_id).path).name
    with tempfile.TemporaryDirectory(prefix="hemiface-app-") as tmp:
        file = Path(tmp) / "landmarks.json"
        file.write_text(json.dumps(new, indent=1) + "\n", encoding="utf-8")
        try:  # the version is checked again where the correction is written (a `study correct` may come between)
            done = correct_landmarks(study, current["patient_id"], visit_date, file, reason=reason,
                                     photo=photo_name, user=user, base_version=base)
        except StaleEditError as exc:
            raise ConflictError(str(exc)) from None
    done = dict(done, message=mask(done.get("message"), file_names(study)))
    return dict(done, version=correction_version(study, media_id), patient_id=current["patient_id"],
                visit_date=current["visit_date"])


def _result_folder(study, analysis: str, folder: str) -> Path:
    """A result folder inside the study's ``results/``, or :class:`NotFoundError` (no traversal)."""
    if analysis not in RESULT_IMAGES or not RESULT_FOLDER_RE.match(folder):
        raise NotFoundError("no such result")
    root = (study.path / RESULTS_DIR).resolve()
    path = (root / analysis / folder).resolve()
    if root not in path.parents or not path.is_dir():
        raise NotFoundError("no such result")
    return path


def result_file(study, analysis: str, folder: str, name: str) -> Path:
    """A result image inside the study's ``results/``, or :class:`NotFoundError` (no traversal, no other file)."""
    if name not in RESULT_IMAGES.get(analysis, ()):
        raise NotFoundError("no such result file")
    path = (_result_folder(study, analysis, folder) / name).resolve()  # a symlink out of results/ is refused
    if (study.path / RESULTS_DIR).resolve() not in path.parents or not path.is_file():
        raise NotFoundError("no such result file")
    return path
