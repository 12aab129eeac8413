"""`hemiface study run`: analyse every photo and scan of the eligible visits.

For each eligible patient (see :func:`hemiface.study.eligibility`):

* ``photo_analyze`` on every photo of the baseline and the follow-up visit
  (with the latest corrected landmark file, when a person attached one);
* ``scan_analyze`` on every scan of those two visits;
* ``scan_compare`` of the baseline scan against the follow-up scan (the first of
  each visit, by file name), when both visits have one.

Work is identified by its inputs' SHA-256 and its parameters' SHA-256. A job
whose result is already in the database is skipped, so a re-run after a change
redoes only what changed and a re-run without change does nothing. Each job
writes its output files into a staging folder that is renamed into
``results/`` only when complete, and its database row is committed right
after: killing a run loses at most the jobs in flight, and the next run redoes
exactly those. A job that fails is recorded with its message (and not retried
unless asked) while the others carry on.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import __version__, logger
from .._errors import HemifaceError
from .._progress import progress
from .._provenance import sha256_file
from ._analyses import analysis_function, call_arguments
from ._eligibility import eligibility
from ._errors import StudyError
from ._models import AnalysisResult, LandmarkCorrection, Media, Patient, Visit

RESULTS_DIR = "results"

_HASH_CACHE = ".sha256-cache.json"
_LOCK = ".run.lock"
_STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class Job:
    """One analysis to run. ``inputs`` maps a role (photo, landmarks, scan, pre, post) to (path, SHA-256)."""

    analysis: str
    patient_id: str
    visit_id: int | None
    media_id: int | None
    visit_date: str
    affected: str
    inputs: dict
    parameters: dict

    @property
    def inputs_sha256(self) -> str:
        text = json.dumps({role: sha for role, (_path, sha) in self.inputs.items()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def parameters_sha256(self) -> str:
        text = json.dumps({"affected": self.affected, **self.parameters}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def key(self) -> tuple[str, str, str]:
        return self.analysis, self.inputs_sha256, self.parameters_sha256

    @property
    def output_dir(self) -> str:
        """Where the job's files go, relative to the study folder: named by content, never by patient or file name."""
        return f"{RESULTS_DIR}/{self.analysis}/{self.inputs_sha256[:16]}_{self.parameters_sha256[:8]}"


@dataclass
class RunSummary:
    """What a run did: jobs found, skipped (already done), run, succeeded, failed; failures with messages."""

    jobs: int = 0
    skipped: int = 0
    duplicates: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)

    @property
    def ran(self) -> int:
        return self.succeeded + self.failed

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        dup = f", {self.duplicates} duplicate files analysed once" if self.duplicates else ""
        return (f"{self.jobs} analyses: {self.skipped} already done, {self.succeeded} done now, "
                f"{self.failed} failed{dup}")


class _HashCache:
    """SHA-256 of files, re-hashed only when size or modification time changed (like git's index)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def sha256(self, file: Path) -> str:
        st = file.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        entry = self.entries.get(str(file))
        if entry and entry[:2] == stamp:
            return entry[2]
        sha = sha256_file(file)
        self.entries[str(file)] = [*stamp, sha]
        self.dirty = True
        return sha

    def save(self) -> None:
        if not self.dirty:
            return
        fd, tmp = tempfile.mkstemp(prefix=".cache-", dir=self.path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.entries, fh)
        os.replace(tmp, self.path)


def media_file(study, media: Media) -> Path:
    path = Path(media.path)
    return path if path.is_absolute() else study.path / path


def plan_jobs(study) -> tuple[list[Job], list[dict]]:
    """The jobs of the eligible visits, and the media that cannot be analysed (missing or changed files).

    Each job carries the complete settings of its analysis (``study.settings.analysis_parameters()``:
    the analysis function's defaults, the study-run defaults and the study's ``[analysis.*]``
    settings), which enter its identity.

    Returns
    -------
    jobs : list of Job
    problems : list of dict
        ``patient_id``, ``visit_date``, ``analysis``, ``message`` for each file that is
        missing or whose content no longer matches the SHA-256 recorded at import.
    """
    params = study.settings.analysis_parameters()
    table = eligibility(study)
    eligible = table[table["eligible"]]
    results = study.path / RESULTS_DIR
    results.mkdir(exist_ok=True)
    cache = _HashCache(results / _HASH_CACHE)
    jobs: list[Job] = []
    problems: list[dict] = []
    with study.session() as session:
        patients = {p.pseudonym: p for p in session.scalars(
            select(Patient).options(selectinload(Patient.visits).selectinload(Visit.media)))}
        corrections: dict[int, LandmarkCorrection] = {}
        for c in session.scalars(select(LandmarkCorrection).order_by(LandmarkCorrection.at_utc, LandmarkCorrection.id)):
            corrections[c.media_id] = c  # the latest wins
        for row in eligible.itertuples():
            patient = patients[row.patient_id]
            visits = {v.date: v for v in patient.visits}
            first_scan = {}
            for when in (row.baseline_date, row.followup_date):
                visit = visits[when]
                for media in sorted(visit.media, key=lambda m: (m.kind, m.path)):
                    file = media_file(study, media)
                    analysis = f"{media.kind}_analyze"
                    where = dict(patient_id=patient.pseudonym, visit_date=when.isoformat(), analysis=analysis)
                    if not file.is_file():
                        problems.append(dict(where, message=f"{media.path}: the file is missing"))
                        continue
                    sha = cache.sha256(file)
                    if sha != media.sha256:
                        problems.append(dict(where, message=f"{media.path}: the file changed since it was imported "
                                             "(SHA-256 differs); import the new file under a new name"))
                        continue
                    inputs = {media.kind: (str(file), sha)}
                    if media.kind == "photo" and media.id in corrections:
                        c = corrections[media.id]
                        inputs["landmarks"] = (str(study.path / c.path), c.sha256)
                    if media.kind == "scan":
                        first_scan.setdefault(when, (media, file, sha))
                    jobs.append(Job(analysis, patient.pseudonym, visit.id, media.id, when.isoformat(),
                                    patient.affected_side, inputs, params[analysis]))
            if row.baseline_date in first_scan and row.followup_date in first_scan:
                pre, post = first_scan[row.baseline_date], first_scan[row.followup_date]
                jobs.append(Job("scan_compare", patient.pseudonym, visits[row.followup_date].id, pre[0].id,
                                row.followup_date.isoformat(), patient.affected_side,
                                {"pre": (str(pre[1]), pre[2]), "post": (str(post[1]), post[2])},
                                params["scan_compare"]))
    cache.save()
    return jobs, problems


def _execute(job: Job, study_path: str) -> dict:
    """Run one job in a staging folder and move its files into place; never raises."""
    study_path = Path(study_path)
    final = study_path / job.output_dir
    stage = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=study_path / RESULTS_DIR))
    try:
        result = _analyse(job)
        result.save(stage, overwrite=True)
        if final.exists():  # left by a run killed between the rename and its database commit
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, final)
        values = result.to_dict()
        prov = values.pop("provenance", {})
        return dict(status="ok", message=None, result=values, provenance=prov)
    except HemifaceError as exc:
        return dict(status="failed", message=str(exc).splitlines()[0], result=None, provenance={})
    except Exception as exc:  # noqa: BLE001 - one failure must not stop the cohort; recorded with its type
        logger.debug("%s", traceback.format_exc())
        return dict(status="failed", message=f"internal error: {exc.__class__.__name__}: {exc}",
                    result=None, provenance={})
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _analyse(job: Job):
    """Call the analysis function with the job's inputs and its complete settings, passed through whole."""
    func = analysis_function(job.analysis)
    kwargs = call_arguments(job.analysis, job.parameters)
    if job.analysis == "photo_analyze":
        return func(job.inputs["photo"][0], affected=job.affected,
                    landmarks=job.inputs.get("landmarks", (None,))[0], **kwargs)
    if job.analysis == "scan_analyze":
        return func(job.inputs["scan"][0], affected=job.affected, **kwargs)
    if job.analysis == "scan_compare":
        return func(job.inputs["pre"][0], job.inputs["post"][0], affected=job.affected, **kwargs)
    raise StudyError(f"unknown analysis {job.analysis!r}")


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _record(study, job: Job, outcome: dict) -> None:
    """Store one job's outcome (replacing an earlier failure of the same job) and commit."""
    with study.session() as session, session.begin():
        old = session.scalars(select(AnalysisResult).filter_by(
            analysis=job.analysis, inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256)).first()
        if old is not None:
            session.delete(old)
            session.flush()
        prov = dict(outcome["provenance"]) or {"hemiface_version": __version__}
        prov["study_run"] = {"parameters": {"affected": job.affected, **job.parameters},
                             "inputs": {role: {"file": Path(path).name, "sha256": sha}
                                        for role, (path, sha) in job.inputs.items()},
                             "output_dir": job.output_dir if outcome["status"] == "ok" else None}
        session.add(AnalysisResult(
            analysis=job.analysis, visit_id=job.visit_id, media_id=job.media_id,
            inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256,
            status=outcome["status"], message=outcome["message"],
            result_json=None if outcome["result"] is None else json.dumps(outcome["result"], default=_json_default),
            provenance_json=json.dumps(prov, default=_json_default, sort_keys=True),
            created_utc=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None),
        ))


class _RunLock:
    """One `study run` at a time per study (an advisory lock on results/.run.lock)."""

    def __init__(self, folder: Path):
        self.path = folder / _LOCK

    def __enter__(self):
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise StudyError(f"{self.path.parent.parent}: another `hemiface study run` is working on this study") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def run_study(study, *, jobs: int = 1, retry_failed: bool = False) -> RunSummary:
    """Analyse every photo and scan of the eligible visits; see the module docstring.

    Parameters
    ----------
    study : Study
        An open study.
    jobs : int
        Analyses run in parallel (processes). 1 runs them in this process.
    retry_failed : bool
        Also redo analyses that failed before (by default they stay failed until
        their inputs or settings change).

    The analyses run with the study's settings (``[analysis.*]`` in ``study.toml``, see
    :mod:`hemiface.study._analyses`), the same ones that the endpoint table, the report
    and ``study correct`` look results up with.

    Returns
    -------
    RunSummary
        Missing or changed media files count as failures (with their message).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise StudyError(f"jobs must be a whole number >= 1; got {jobs!r}")
    results = study.path / RESULTS_DIR
    results.mkdir(exist_ok=True)
    with _RunLock(results):
        for leftover in results.glob(_STAGING_PREFIX + "*"):  # from a run that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        planned, problems = plan_jobs(study)
        summary = RunSummary(jobs=len(planned) + len(problems), failed=len(problems), failures=list(problems))
        with study.session() as session:
            done = {(r.analysis, r.inputs_sha256, r.parameters_sha256): r.status
                    for r in session.scalars(select(AnalysisResult))}
        todo = []
        for job in planned:
            status = done.get(job.key)
            if status == "ok" and (study.path / job.output_dir).is_dir():
                summary.skipped += 1
            elif status == "failed" and not retry_failed:
                summary.skipped += 1
            else:
                todo.append(job)
        unique = list({job.key: job for job in todo}.values())  # the same file attached twice runs once
        summary.duplicates = len(todo) - len(unique)
        todo = unique
        logger.info("study run: %d analyses to do, %d already done", len(todo), summary.skipped)
        if todo:
            _run_jobs(study, todo, jobs, summary)
    return summary


def _tally(summary: RunSummary, job: Job, outcome: dict) -> None:
    if outcome["status"] == "ok":
        summary.succeeded += 1
    else:
        summary.failed += 1
        summary.failures.append(dict(patient_id=job.patient_id, visit_date=job.visit_date, analysis=job.analysis,
                                     message=outcome["message"]))


def _run_jobs(study, todo: list[Job], n_jobs: int, summary: RunSummary) -> None:
    # the slow analyses first, so that parallel workers finish together
    order = {"scan_compare": 0, "scan_analyze": 1, "photo_analyze": 2}
    todo = sorted(todo, key=lambda j: order[j.analysis])
    with progress(total=len(todo), desc="study run", unit="analysis") as bar:
        if n_jobs == 1:
            for job in todo:
                outcome = _execute(job, str(study.path))
                _record(study, job, outcome)
                _tally(summary, job, outcome)
                bar.update(1)
            return
        import multiprocessing

        # spawn: workers start clean (no inherited database connections or model state)
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = {pool.submit(_execute, job, str(study.path)): job for job in todo}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    outcome = future.result()
                    _record(study, job, outcome)
                    _tally(summary, job, outcome)
                    bar.update(1)
