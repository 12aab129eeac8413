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

Integrity: a job hashes its input files again as it runs and refuses (records
nothing) when the bytes are not those imported; the SHA-256 the analysis itself
computed must agree too, so a result is never stored under another file's hash.
Environmental failures (no space left, a read-only folder, out of memory) are
not analysis results: they are not recorded, the run stops, and the summary
lists them with every failure still standing. Workers end with the parent
(``PR_SET_PDEATHSIG`` and a watch on the parent's pid), even when it is killed.
Failure messages never contain file names or folders (they often carry patient
names): a file is called by its role ("the photo file").

``scheduler=`` sends the same jobs to a Dask distributed cluster instead of the local
pool (:mod:`hemiface.study._dask`: what the workers need, and what a lost worker does);
the workers stage and rename the files as here, and only this process writes to the
database. Every analysis runs its BLAS on one thread, so a result is the same bits in
this process, a local worker or a Dask worker, on any number of cores.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import __version__, logger
from .._errors import HemifaceError
from .._progress import progress
from .._provenance import sha256_file
from ._analyses import analysis_function, call_arguments
from ._database import hold_run_lock
from ._eligibility import eligibility
from ._files import media_type_problem, path_problem
from ._errors import StudyError
from ._models import AnalysisResult, LandmarkCorrection, Media, Patient, ScanSetting, Visit
from ._settings import RunSettings
from ._staging import make_staging, remove_abandoned

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
    """What a run did: jobs found, skipped (already done), run, succeeded, failed; failures with messages.

    ``failures`` are this run's (including files missing or changed); ``standing`` the
    analyses that failed in an earlier run and were not retried; ``environment`` the
    jobs stopped by the machine (no space, read-only, out of memory), which are not
    recorded and run again next time. :attr:`all_done` is False while any remain.
    """

    jobs: int = 0
    skipped: int = 0
    duplicates: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)
    standing: list = field(default_factory=list)
    environment: list = field(default_factory=list)

    @property
    def ran(self) -> int:
        return self.succeeded + self.failed

    @property
    def all_done(self) -> bool:
        return not (self.failures or self.standing or self.environment)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        dup = f", {self.duplicates} duplicate files analysed once" if self.duplicates else ""
        text = (f"{self.jobs} analyses: {self.skipped} already done, {self.succeeded} done now, "
                f"{self.failed} failed{dup}")
        if self.standing:
            text += f"; {len(self.standing)} failed earlier and still stand (retry with --retry-failed)"
        if self.environment:
            text += f"; {len(self.environment)} not done because of the machine (run again when it is fixed)"
        return text


class _HashCache:
    """SHA-256 of files, re-hashed when size, modification time, change time, inode or device changed.

    It only saves re-reading unchanged files when planning; it never decides what
    a result was computed from: each job hashes its inputs again as it runs. The
    change time cannot be set back by a user (``touch -d`` restores the modification
    time only). Entries are keyed by a hash of the path, so no file or folder name
    is written into the study. Saving is best effort: a read-only study is used as it is.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries = json.loads(path.read_text())
            if not isinstance(self.entries, dict):
                self.entries = {}
            # entries keyed by a path (older hemiface) would keep folder names in the study: dropped
            self.entries = {k: v for k, v in self.entries.items() if re.fullmatch(r"[0-9a-f]{64}", k)}
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def sha256(self, file: Path) -> str:
        st = file.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        key = hashlib.sha256(str(file).encode("utf-8", "surrogateescape")).hexdigest()
        entry = self.entries.get(key)
        if isinstance(entry, list) and entry[:5] == stamp and len(entry) == 6:
            return entry[5]
        sha = sha256_file(file)
        self.entries[key] = [*stamp, sha]
        self.dirty = True
        return sha

    def save(self) -> None:
        if not self.dirty or not self.path.parent.is_dir():
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".cache-", dir=self.path.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.entries, fh)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:  # read-only study, full disk: the cache only saves time
            logger.debug("hash cache not saved: %s", exc.strerror or exc)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


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
    cache = _HashCache(study.path / RESULTS_DIR / _HASH_CACHE)
    jobs: list[Job] = []
    problems: list[dict] = []
    with study.session() as session:
        patients = {p.pseudonym: p for p in session.scalars(
            select(Patient).options(selectinload(Patient.visits).selectinload(Visit.media)))}
        corrections: dict[int, LandmarkCorrection] = {}
        for c in session.scalars(select(LandmarkCorrection).order_by(LandmarkCorrection.at_utc, LandmarkCorrection.id)):
            corrections[c.media_id] = c  # the latest wins
        scan_settings: dict[int, ScanSetting] = {}
        for s in session.scalars(select(ScanSetting).order_by(ScanSetting.at_utc, ScanSetting.id)):
            scan_settings[s.media_id] = s  # the latest wins

        def scan_setting(media_id: int, role: str, parameters: dict) -> tuple[dict, dict]:
            """(parameters, extra inputs) of a scan's analysis with its person-set plane and stable area."""
            s = scan_settings.get(media_id)
            if s is None:
                return parameters, {}
            extra = {role: (str(study.path / s.stable_path), s.stable_sha256)} if s.stable_path else {}
            return {**parameters, "plane": json.loads(s.plane)}, extra
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
                    what = path_problem(file) or media_type_problem(file, media.kind)
                    if what is not None:
                        problems.append(dict(where, message=f"the {media.kind} file {what}"))
                        continue
                    try:
                        sha = cache.sha256(file)
                    except OSError as exc:
                        problems.append(dict(where, message=f"the {media.kind} file cannot be read "
                                             f"({exc.strerror or exc.__class__.__name__})"))
                        continue
                    if sha != media.sha256:
                        problems.append(dict(where, message=changed_message(media.kind)))
                        continue
                    inputs = {media.kind: (str(file), sha)}
                    parameters = params[analysis]
                    if media.kind == "photo" and media.id in corrections:
                        c = corrections[media.id]
                        inputs["landmarks"] = (str(study.path / c.path), c.sha256)
                    if media.kind == "scan":
                        first_scan.setdefault(when, (media, file, sha))
                        parameters, extra = scan_setting(media.id, "stable", parameters)
                        inputs.update(extra)
                    jobs.append(Job(analysis, patient.pseudonym, visit.id, media.id, when.isoformat(),
                                    patient.affected_side, inputs, parameters))
            if row.baseline_date in first_scan and row.followup_date in first_scan:
                pre, post = first_scan[row.baseline_date], first_scan[row.followup_date]
                # both visits are measured in PRE's plane: PRE's setting is the comparison's
                parameters, extra = scan_setting(pre[0].id, "plane_stable", params["scan_compare"])
                jobs.append(Job("scan_compare", patient.pseudonym, visits[row.followup_date].id, pre[0].id,
                                row.followup_date.isoformat(), patient.affected_side,
                                {"pre": (str(pre[1]), pre[2]), "post": (str(post[1]), post[2]), **extra},
                                parameters))
    cache.save()
    return jobs, problems


_ROLE_NAMES = {"photo": "photo", "landmarks": "landmark", "scan": "scan", "pre": "baseline scan",
               "post": "follow-up scan", "stable": "stable-area", "plane_stable": "baseline stable-area"}
#: Operating-system errors that say something about the machine, not about the analysis.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
                                errno.ENOMEM, errno.EMFILE, errno.ENFILE})


def changed_message(kind: str) -> str:
    return (f"the {kind} file changed since it was imported (its SHA-256 differs); nothing was analysed: "
            "restore the original, or import the new file under a new name")


def _environmental(exc: BaseException) -> str | None:
    """A short reason when ``exc`` (or what caused it) is the machine's fault (no space, read-only, memory)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return "out of memory"
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return os.strerror(exc.errno)
        exc = exc.__cause__ or exc.__context__
    return None


def scrub(message: str, job: Job) -> str:
    """``message`` without the job's file names and folders: each becomes its role ("the photo file")."""
    for role, (path, _sha) in job.inputs.items():
        p = Path(path)
        label = f"the {_ROLE_NAMES.get(role, role)} file"
        for text, shortest in ((str(p), 2), (str(p.parent), 2), (p.name, 3), (p.stem, 6)):
            if len(text) >= shortest:
                message = message.replace(text, label)
    # any other absolute path (a folder of the study, a temporary file)
    return re.sub(r"(?<![\w.])/(?:[^\s/'\",:;()]+/)*[^\s/'\",:;()]+", "<path>", message)


def _verify_inputs(job: Job) -> str | None:
    """Hash each input file now; a message when one is not the file imported."""
    for role, (path, sha) in job.inputs.items():
        what = path_problem(path)
        if what is not None:
            return f"the {_ROLE_NAMES.get(role, role)} file {what}"
        if sha256_file(path) != sha:
            return changed_message(_ROLE_NAMES.get(role, role))
    return None


def _analysed_other_bytes(job: Job, provenance: dict) -> str | None:
    """A message when the analysis itself hashed an input to another SHA-256 than the job's."""
    for role, entry in (provenance.get("inputs") or {}).items():
        if role in job.inputs and isinstance(entry, dict) and entry.get("sha256") not in (None, job.inputs[role][1]):
            return changed_message(_ROLE_NAMES.get(role, role))
    return None


def _execute(job: Job, study_path: str) -> dict:
    """Run one job in a staging folder and move its files into place; never raises.

    ``status`` is ``ok``, ``failed`` (recorded), ``refused`` (an input is not the
    file imported; not recorded) or ``environment`` (the machine failed; not recorded).
    """
    study_path = Path(study_path)
    final = study_path / job.output_dir
    staging = None
    try:
        refused = _verify_inputs(job)
        if refused is not None:
            return dict(status="refused", message=refused, result=None, provenance={})
        staging = make_staging(study_path / RESULTS_DIR, _STAGING_PREFIX)  # ours until released (_staging)
        stage = staging.path
        result = _analyse(job)
        values = result.to_dict()
        prov = values.pop("provenance", {})
        refused = _analysed_other_bytes(job, prov) or _verify_inputs(job)
        if refused is not None:
            return dict(status="refused", message=refused, result=None, provenance={})
        result.save(stage, overwrite=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        _move_into_place(stage, final)
        return dict(status="ok", message=None, result=values, provenance=prov)
    except BaseException as exc:  # noqa: BLE001 - one failure must not stop the cohort; recorded with its type
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        why = _environmental(exc)
        if why is not None:
            return dict(status="environment", message=f"{why} ({exc.__class__.__name__})", result=None, provenance={})
        if isinstance(exc, HemifaceError):
            message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        else:
            logger.debug("%s", traceback.format_exc())
            message = f"internal error: {exc.__class__.__name__}: {exc}".splitlines()[0]
        return dict(status="failed", message=scrub(message, job), result=None, provenance={})
    finally:
        if staging is not None:
            staging.release()  # the folder itself, unless it was moved into place


def _move_into_place(stage: Path, final: Path) -> None:
    """Rename ``stage`` to ``final``, replacing a folder left there without a database row.

    Such a folder comes from a run killed between the rename and its commit, or (on a
    cluster) from a job of a killed coordinator that a worker finished later; that job
    may be putting its folder in place at this very moment, so a second try follows.
    """
    for attempt in (1, 2):
        if final.exists():
            shutil.rmtree(final, ignore_errors=attempt == 1)
        try:
            os.replace(stage, final)
            return
        except OSError as exc:
            if attempt == 2 or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise


def _analyse(job: Job):
    """Call the analysis function with the job's inputs and its complete settings, passed through whole.

    BLAS runs on one thread (:func:`_one_blas_thread`), so that the stored numbers do not depend on where
    the job ran.
    """
    import numpy as np

    func = analysis_function(job.analysis)
    kwargs = call_arguments(job.analysis, job.parameters)
    # a painted stable area: the indices of the scan's vertices (a .npy that study scan-settings wrote)
    painted = {key: np.load(job.inputs[role][0], allow_pickle=False)
               for role, key in (("stable", "stable"), ("plane_stable", "plane_stable")) if role in job.inputs}
    with _one_blas_thread():
        if job.analysis == "photo_analyze":
            return func(job.inputs["photo"][0], affected=job.affected,
                        landmarks=job.inputs.get("landmarks", (None,))[0], **kwargs)
        if job.analysis == "scan_analyze":
            return func(job.inputs["scan"][0], affected=job.affected, **painted, **kwargs)
        if job.analysis == "scan_compare":
            return func(job.inputs["pre"][0], job.inputs["post"][0], affected=job.affected, **painted, **kwargs)
    raise StudyError(f"unknown analysis {job.analysis!r}")


def _one_blas_thread():
    """A context in which every loaded BLAS (numpy's, scipy's, OpenCV's OpenBLAS) uses one thread.

    A matrix product sums in an order that depends on the BLAS thread count, so the same
    job gave other last bits on a 2-thread BLAS (this process, a local worker) than on a
    Dask worker (which sets ``OPENBLAS_NUM_THREADS=1``): the scan comparison's
    ``discrepancy_pre_uncertainty_mm3`` was 0.010058479980406135 against ...087. On one
    thread a result is the same bits wherever it is computed, on any number of cores.
    The analyses' BLAS work is small (matrix-vector products, 3x3 fits); their heavy
    parts (open3d's queries) keep their threads.
    """
    import cv2  # noqa: F401 - loads OpenCV's own OpenBLAS now, so that the limit reaches it too
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _record(study, job: Job, outcome: dict, run: RunSettings = RunSettings()) -> None:
    """Store one job's outcome (replacing an earlier failure of the same job) and commit.

    ``run`` is recorded in its provenance: the ``jobs`` and ``scheduler`` that computed it.
    """
    with study.writing() as session:
        old = session.scalars(select(AnalysisResult).filter_by(
            analysis=job.analysis, inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256)).first()
        if old is not None:
            session.delete(old)
            session.flush()
        prov = dict(outcome["provenance"]) or {"hemiface_version": __version__}
        prov["study_run"] = {"parameters": {"affected": job.affected, **job.parameters},
                             "inputs": {role: {"file": Path(path).name, "sha256": sha}
                                        for role, (path, sha) in job.inputs.items()},
                             "output_dir": job.output_dir if outcome["status"] == "ok" else None,
                             "run": run.to_dict()}
        session.add(AnalysisResult(
            analysis=job.analysis, visit_id=job.visit_id, media_id=job.media_id,
            inputs_sha256=job.inputs_sha256, parameters_sha256=job.parameters_sha256,
            status=outcome["status"], message=outcome["message"],
            result_json=None if outcome["result"] is None else json.dumps(outcome["result"], default=_json_default),
            provenance_json=json.dumps(prov, default=_json_default, sort_keys=True),
            created_utc=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None),
        ))


@contextmanager
def _run_lock(study, folder: Path):
    """One `study run` at a time per study: an advisory lock on results/.run.lock, and on PostgreSQL the
    database's run lock too (:func:`~hemiface.study._database.hold_run_lock`: other folders on that database)."""
    with open(folder / _LOCK, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(f"{folder.parent}: another `hemiface study run` is working on this study") from None
        try:
            with hold_run_lock(study.engine, folder.parent):
                yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_study(study, *, jobs: int | None = None, retry_failed: bool = False,
              scheduler: str | None = None) -> RunSummary:
    """Analyse every photo and scan of the eligible visits; see the module docstring.

    Parameters
    ----------
    study : Study
        An open study.
    jobs : int, optional
        Analyses run in parallel (processes) on this machine; 1 runs them in this process.
        Given alone, it runs here even when ``study.toml`` names a scheduler.
    retry_failed : bool
        Also redo analyses that failed before (by default they stay failed until
        their inputs or settings change).
    scheduler : str, optional
        Run the analyses on a Dask distributed cluster: the address of its scheduler
        (``tcp://HOST:PORT``), or ``local:N`` for a cluster of N worker processes on
        this machine. The workers need the study folder and its media at the same
        path, and the same hemiface (checked, see :mod:`hemiface.study._dask`); the
        cluster is contacted only when there is something to do. Excludes ``jobs``.

    Without ``jobs`` and ``scheduler``, the study's ``[run]`` settings in ``study.toml``
    (:class:`~hemiface.study._settings.RunSettings`) say where to run, and without those, this
    process. Each result records the ``jobs`` and ``scheduler`` it was computed with.

    The analyses run with the study's settings (``[analysis.*]`` in ``study.toml``, see
    :mod:`hemiface.study._analyses`), the same ones that the endpoint table, the report
    and ``study correct`` look results up with.

    Returns
    -------
    RunSummary
        Missing or changed media files count as failures (with their message).
    """
    where = study.settings.run.overridden(jobs=jobs, scheduler=scheduler)
    results = study.path / RESULTS_DIR
    results.mkdir(exist_ok=True)
    with _run_lock(study, results):
        _remove_staging(results)  # from a run that was killed
        planned, problems = plan_jobs(study)
        summary = RunSummary(jobs=len(planned) + len(problems), failed=len(problems), failures=list(problems))
        with study.session() as session:
            done = {(r.analysis, r.inputs_sha256, r.parameters_sha256): (r.status, r.message)
                    for r in session.scalars(select(AnalysisResult))}
        todo = []
        for job in planned:
            status, message = done.get(job.key, (None, None))
            if status == "ok" and (study.path / job.output_dir).is_dir():
                summary.skipped += 1
            elif status == "failed" and not retry_failed:
                summary.skipped += 1
                summary.standing.append(dict(patient_id=job.patient_id, visit_date=job.visit_date,
                                             analysis=job.analysis, message=message))
            else:
                todo.append(job)
        unique = list({job.key: job for job in todo}.values())  # the same file attached twice runs once
        summary.duplicates = len(todo) - len(unique)
        todo = unique
        logger.info("study run: %d analyses to do, %d already done", len(todo), summary.skipped)
        if todo:
            logger.info("study run: on %s", f"the Dask scheduler {where.scheduler}" if where.scheduler else
                        f"this machine ({where.jobs} process{'es' if where.jobs > 1 else ''})")
            _run_jobs(study, todo, summary, where)
            _remove_staging(results)  # from workers that died (a cluster goes on without them)
    return summary


def _remove_staging(results: Path) -> None:
    """Remove the staging folders of killed runs and workers; never one that a live process works in."""
    removed = remove_abandoned(results, _STAGING_PREFIX)
    if removed:
        logger.info("study run: removed %d staging folder(s) of interrupted analyses", removed)


def _tally(study, summary: RunSummary, job: Job, outcome: dict, run: RunSettings) -> bool:
    """Record (ok or failed) and count one outcome; False when the run must stop (the machine failed)."""
    where = dict(patient_id=job.patient_id, visit_date=job.visit_date, analysis=job.analysis,
                 message=outcome["message"])
    if outcome["status"] == "environment":
        summary.environment.append(where)
        logger.warning("study run: stopping: %s", outcome["message"])
        return False
    if outcome["status"] in ("ok", "failed"):
        try:
            _record(study, job, outcome, run)
        except Exception as exc:  # noqa: BLE001 - a database that cannot be written is the machine's failure
            why = (_environmental(exc) or (str(exc) if isinstance(exc, StudyError) else None)  # busy: try again
                   or f"the study database refused the result ({exc.__class__.__name__})")
            summary.environment.append(dict(where, message=why))
            logger.warning("study run: stopping: %s", why)
            return False
    if outcome["status"] == "ok":
        summary.succeeded += 1
    else:  # failed, or refused (an input is not the file imported: not recorded)
        summary.failed += 1
        summary.failures.append(where)
    return True


def _watch_parent(parent: int) -> None:
    """In a worker: end this process as soon as the parent ``study run`` is gone (killed, even with SIGKILL)."""
    try:  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the watch thread below does it
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="hemiface-parent-watch", daemon=True).start()


def worker_pool(n_jobs: int) -> ProcessPoolExecutor:
    """A pool of ``n_jobs`` spawned workers that end when this process ends."""
    import multiprocessing

    # spawn: workers start clean (no inherited database connections or model state)
    return ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(),))


class _ProcessPool:
    """Local worker processes behind the interface of :class:`._dask.DaskPool` (submit, lost, stop, close)."""

    def __init__(self, n_jobs: int):
        self.pool = worker_pool(n_jobs)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    @staticmethod
    def lost(exc: BaseException) -> tuple[str, str]:
        """``(status, message)`` for a job whose future raised: a worker process died (the machine's failure)."""
        return "environment", f"a worker process died (out of memory, or killed) ({exc.__class__.__name__})"

    def stop(self) -> None:
        """Cancel what has not started and end the workers now (an interrupted or stopped run)."""
        processes = list((getattr(self.pool, "_processes", None) or {}).values())  # shutdown forgets them
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            try:
                process.terminate()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class _TermAsInterrupt:
    """In the main thread: SIGTERM (``kill``, ``timeout``) interrupts the run like Ctrl-C, so that it cleans up."""

    def __enter__(self):
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            def handler(signum, frame):
                raise KeyboardInterrupt(f"signal {signum}")

            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)


def _run_jobs(study, todo: list[Job], summary: RunSummary, where: RunSettings) -> None:
    # the slow analyses first, so that parallel workers finish together
    order = {"scan_compare": 0, "scan_analyze": 1, "photo_analyze": 2}
    todo = sorted(todo, key=lambda j: order[j.analysis])
    with _TermAsInterrupt():
        if where.scheduler is None and where.jobs == 1:
            with progress(total=len(todo), desc="study run", unit="analysis") as bar:
                for job in todo:
                    outcome = _execute(job, str(study.path))
                    bar.update(1)
                    if not _tally(study, summary, job, outcome, where):
                        return
            return
        if where.scheduler is not None:
            from ._dask import DaskPool

            pool = DaskPool(where.scheduler, study.path / RESULTS_DIR)  # refuses workers that cannot do the jobs
        else:
            pool = _ProcessPool(where.jobs)
        try:
            with progress(total=len(todo), desc="study run", unit="analysis") as bar:
                pending = {pool.submit(_execute, job, str(study.path)): job for job in todo}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = pending.pop(future)
                        outcome = _outcome(pool, future, job)
                        bar.update(1)
                        if not _tally(study, summary, job, outcome, where):
                            pool.stop()
                            return
        except BaseException:
            pool.stop()
            raise
        pool.close()


def _outcome(pool, future, job: Job) -> dict:
    """A finished future's outcome; a future that raised (its worker was lost) as the pool classifies it."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - _execute never raises: the worker or the cluster failed
        status, message = pool.lost(exc)
        logger.debug("study run: %s job lost: %r", job.analysis, exc)
        return dict(status=status, message=scrub(message, job), result=None, provenance={})
