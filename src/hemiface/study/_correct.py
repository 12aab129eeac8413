"""`hemiface study correct`: attach a person's corrected landmark file to a photo and recompute.

The corrected file is checked (it must be a landmark file hemiface reads), copied
into the study's ``corrections/`` folder under a content-derived name, recorded
in ``landmark_corrections``, and the photo is analysed again from it at once.
The audit table records who, when, why, and the symmetry ratio before and after.
The photo itself is never modified; the earlier result stays in the database.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from .. import logger
from .._errors import HemifaceError
from .._provenance import sha256_file
from ._errors import StaleEditError, StudyError
from ._models import AnalysisResult, AuditEntry, LandmarkCorrection, Media, Patient, Visit
from ._run import _execute, _record, plan_jobs

CORRECTIONS_DIR = "corrections"


def visit_media(session, patient_id: str, visit_date: _dt.date, kind: str, name: str | None) -> Media:
    """The one ``kind`` ("photo" or "scan") medium of a patient's visit, or the one named ``name`` (a file name)."""
    visit = session.scalars(select(Visit).join(Patient).where(
        Patient.pseudonym == patient_id, Visit.date == visit_date)).first()
    if visit is None:
        raise StudyError(f"patient {patient_id} has no visit on {visit_date.isoformat()}")
    found = [m for m in visit.media if m.kind == kind]
    if name is not None:
        found = [m for m in found if Path(m.path).name == name]
    if not found:
        which = f" named {name!r}" if name else ""
        raise StudyError(f"patient {patient_id} has no {kind}{which} at the visit on {visit_date.isoformat()}")
    if len(found) > 1:
        names = ", ".join(sorted(Path(m.path).name for m in found))
        raise StudyError(f"patient {patient_id} has several {kind}s on {visit_date.isoformat()} ({names}); "
                         f"name one with --{kind}")
    return found[0]


def landmarks_version(session, media_id: int) -> int:
    """How many corrections the photo has had: the version an edit starts from (never decreases)."""
    return int(session.scalar(select(func.count(LandmarkCorrection.id)).where(LandmarkCorrection.media_id == media_id)))


def _ratio_of(session, job) -> float | None:
    row = session.scalars(select(AnalysisResult).filter_by(
        analysis=job.analysis, inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256)).first()
    if row is None or row.status != "ok":
        return None
    return json.loads(row.result_json)["symmetry_ratio_percent"]


def correct_landmarks(study, patient_id: str, visit_date: _dt.date, landmarks, *, reason: str,
                      photo: str | None = None, user: str | None = None, base_version: int | None = None) -> dict:
    """Attach a corrected landmark file to a visit's photo, recompute its analysis, and audit the change.

    Parameters
    ----------
    study : Study
    patient_id : str
        Pseudonymous id.
    visit_date : datetime.date
        The visit the photo belongs to.
    landmarks : path
        A hemiface ``landmarks.json`` (for example the one ``study run`` wrote, edited)
        or an iBUG 68-point ``.pts``.
    reason : str
        Why the landmarks were corrected (kept in the audit table).
    photo : str, optional
        The photo's file name, when the visit has several.
    user : str, optional
        Who corrects [default: the login name].
    base_version : int, optional
        The :func:`landmarks_version` the correction was made from (the browser workspace's
        editor sends it). Checked in the transaction that records the correction: when another
        correction was recorded since, :class:`StaleEditError` and nothing is recorded (saving
        would silently supersede it).

    Returns
    -------
    dict
        ``symmetry_ratio_before_percent`` (None if the photo had no result),
        ``symmetry_ratio_after_percent``, ``status`` and ``message`` of the new analysis.
    """
    from ..photo import read_landmarks
    from ._import import _login

    if not isinstance(reason, str) or not reason.strip():
        raise StudyError("give the reason for the correction (it is kept in the audit table)")
    landmarks = Path(landmarks)
    try:
        read_landmarks(landmarks)  # refuse a file the analysis could not use, before anything is written
    except HemifaceError as exc:
        raise StudyError(f"{landmarks.name}: not a usable landmark file: {exc}") from None
    sha = sha256_file(landmarks)
    user = user or _login()
    with study.session() as session:
        media = visit_media(session, patient_id, visit_date, "photo", photo)
        media_id = media.id
    before_jobs = [j for j in plan_jobs(study)[0] if j.media_id == media_id and j.analysis == "photo_analyze"]
    if not before_jobs:
        raise StudyError(f"patient {patient_id}'s photo on {visit_date.isoformat()} is not analysed in this study "
                         "(the patient or visit is not eligible, or the file is missing)")
    folder = study.path / CORRECTIONS_DIR
    suffix = landmarks.suffix.lower() if landmarks.suffix.lower() in (".json", ".pts") else ".json"
    stored = folder / f"{patient_id}_{visit_date.isoformat()}_{sha[:12]}{suffix}"
    now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
    with study.writing() as session:  # the version check and the write in one locked transaction
        version = landmarks_version(session, media_id)
        if base_version is not None and base_version != version:
            raise StaleEditError(
                f"this photo's landmarks were corrected since you opened them (version {base_version}, now "
                f"{version}); reload the page to see the newer correction, then edit again")
        if not stored.exists():
            folder.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".correction-", dir=folder)
            os.close(fd)
            shutil.copyfile(landmarks, tmp)
            os.replace(tmp, stored)
        before = _ratio_of(session, before_jobs[0])
        session.add(LandmarkCorrection(media_id=media_id, path=stored.relative_to(study.path).as_posix(), sha256=sha,
                                       user=user, reason=reason.strip(), at_utc=now))
    job = next(j for j in plan_jobs(study)[0] if j.media_id == media_id and j.analysis == "photo_analyze")
    (study.path / "results").mkdir(exist_ok=True)
    outcome = _execute(job, str(study.path))
    if outcome["status"] in ("ok", "failed"):  # a changed photo or a full disk is not an analysis result
        _record(study, job, outcome)
    after = outcome["result"]["symmetry_ratio_percent"] if outcome["status"] == "ok" else None
    with study.writing() as session:
        session.add(AuditEntry(at_utc=now, user=user, action="correct_landmarks", details_json=json.dumps({
            "patient_id": patient_id, "visit_date": visit_date.isoformat(), "media_id": media_id,
            "landmarks_sha256": sha, "reason": reason.strip(),
            "symmetry_ratio_before_percent": before, "symmetry_ratio_after_percent": after,
            "status": outcome["status"], "message": outcome["message"],
        }, sort_keys=True)))
    logger.info("landmark correction recorded; photo analysed again (%s)", outcome["status"])
    return {"symmetry_ratio_before_percent": before, "symmetry_ratio_after_percent": after,
            "status": outcome["status"], "message": outcome["message"]}
