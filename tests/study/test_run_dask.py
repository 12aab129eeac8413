"""`study run --scheduler`: the same jobs on a Dask cluster give the local run's results.

A photo-only study (four photos, one without a face) is run once locally (in this
process) and once on a LocalCluster of two worker processes; every stored number,
message, provenance parameter and result file must be the same. Then the cluster's
failure modes: a worker killed while it works, a coordinator killed mid-run, a worker
with another hemiface, addresses that are not a scheduler.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import distributed
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

import hemiface.study._run as run_module
from hemiface import datasets
from hemiface.cli import app
from hemiface.study import StudyError, endpoint_table, init_study, open_study, run_study
from hemiface.study._dask import DaskPool, WorkerMismatchError, _Checked, code_fingerprint
from test_integrity import one_line_error
from test_run import _ok_rows, kill_after_first_result

runner = CliRunner()
EXAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "examples" / "study_minimal" / "media"
SRC = Path(run_module.__file__).resolve().parents[2]  # the hemiface under test, for other processes

SHEETS = {
    "patients.csv": "patient_id,sex,birth_year,affected_side\nP01,female,1990,left\nP02,male,1985,right\n",
    "surgeries.csv": "patient_id,surgery_date,technique,is_initial\n"
                     "P01,2021-03-01,free_flap,yes\nP02,2021-04-01,fat_grafting,yes\n",
    "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n"
                  "P02,2021-03-20,preoperative\nP02,2021-10-20,follow-up\n",
    "media.csv": "patient_id,visit_date,media_kind,file\n"
                 "P01,2021-02-15,photo,media/p01_pre.png\nP01,2021-09-15,photo,media/p01_post.png\n"
                 "P02,2021-03-20,photo,media/p02_pre.png\nP02,2021-10-20,photo,media/p02_post.png\n",
}
N_JOBS, N_OK = 4, 3


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sheets")
    (folder / "media").mkdir()
    rgb = np.asarray(Image.open(datasets.sample_photo_path("astronaut")).convert("RGB"))
    Image.fromarray(rgb).resize((384, 384)).save(folder / "media" / "p01_pre.png")
    Image.fromarray(rgb).save(folder / "media" / "p01_post.png")
    shutil.copy(EXAMPLE_MEDIA / "P001_2021-01-10_front.png", folder / "media" / "p02_pre.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / "media" / "p02_post.png")  # no face
    for name, body in SHEETS.items():
        (folder / name).write_text(body)
    return folder


def make_study(root: Path, sheets: Path):
    study = init_study(root / "study", inclusion_from=None, inclusion_to=None)
    study.import_files(sorted(sheets.glob("*.csv")), user="tester")
    return study


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``local:2`` (two single-threaded worker processes on 127.0.0.1): its address and client.

    Its worker processes must be gone once it is closed.
    """
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its connection log is not the tests'
    pool = DaskPool("local:2", tmp_path_factory.mktemp("results"))
    assert pool.address.startswith("tcp://127.0.0.1:")
    pids = set(pool.client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    yield pool.address, pool.client
    pids |= set(pool.client.run(os.getpid).values())  # with the one restarted after a kill
    pool.close()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stored(study) -> dict:
    """Every result row by job key: status, message, stored numbers, provenance without its timestamp.

    Nor where it was computed (``study_run.run``, see :func:`ran_on`), which differs between a local and a cluster run.
    """
    with study.engine.connect() as conn:
        rows = conn.execute(text("SELECT analysis, inputs_sha256, parameters_sha256, status, message, result_json, "
                                 "provenance_json FROM analysis_results")).all()
    out = {}
    for analysis, inputs, params, status, message, result, prov in rows:
        prov = json.loads(prov)
        prov.pop("timestamp_utc", None)
        prov["study_run"].pop("run")
        out[(analysis, inputs, params)] = (status, message, result, prov)
    return out


def ran_on(study) -> list:
    """Where each stored result was computed (``study_run.run`` of its provenance), without repeats."""
    with study.engine.connect() as conn:
        provs = conn.execute(text("SELECT provenance_json FROM analysis_results")).scalars()
        return sorted({json.dumps(json.loads(p)["study_run"]["run"], sort_keys=True) for p in provs})


def result_files(study) -> dict:
    """The bytes of every result file but measurements.json (which holds the analysis' timestamp)."""
    results = study.path / "results"
    return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.glob("*/*/*"))
            if p.name != "measurements.json"}


def leftovers(study) -> list:
    """Staging folders and worker-check files left in results/."""
    results = study.path / "results"
    return [*results.glob(".staging-*"), *results.glob(".worker-check-*")]


def kill_the_first_busy_worker(client, killed: list) -> threading.Thread:
    """A thread that SIGKILLs the first worker seen working on a job (its pid goes into ``killed``)."""
    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sheets, cluster, backend):  # backend: made again on each database
    """The same study run locally and on the cluster, where a worker is killed while it works.

    Returns (local study, its summary, cluster study, its summary, pids killed).
    """
    local = make_study(tmp_path_factory.mktemp("local"), sheets)
    local_summary = run_study(local, jobs=1)
    remote = make_study(tmp_path_factory.mktemp("remote"), sheets)
    killed = []
    watcher = kill_the_first_busy_worker(cluster[1], killed)
    remote_summary = run_study(remote, scheduler=cluster[0])
    watcher.join()
    yield local, local_summary, remote, remote_summary, killed
    local.close()
    remote.close()


def test_a_cluster_run_stores_exactly_the_local_results_even_when_a_worker_dies(runs, cluster):
    local, local_summary, remote, remote_summary, killed = runs
    assert killed, "a worker must be killed while it works"  # its job ran again on a worker (Dask's retry)
    for summary in (local_summary, remote_summary):
        assert (summary.jobs, summary.succeeded, summary.failed) == (N_JOBS, N_OK, 1)
    expected, got = stored(local), stored(remote)
    assert len(expected) == N_JOBS and got == expected  # values bitwise (the same JSON), messages, provenance
    assert all(prov["study_run"]["parameters"] for *_, prov in got.values())
    assert ran_on(local) == ['{"jobs": 1, "scheduler": null}']
    assert ran_on(remote) == [json.dumps({"jobs": 1, "scheduler": cluster[0]})]
    assert result_files(remote) == result_files(local) and len(result_files(local)) >= 2 * N_OK
    pd.testing.assert_frame_equal(endpoint_table(remote), endpoint_table(local))
    assert not leftovers(remote)


def test_a_failing_job_on_a_worker_is_recorded_with_its_message(runs):
    _, local_summary, _, remote_summary, _ = runs
    (failure,) = remote_summary.failures
    assert failure == local_summary.failures[0]
    assert failure["patient_id"] == "P02" and failure["analysis"] == "photo_analyze" and "face" in failure["message"]
    assert "p02" not in failure["message"] and "/" not in failure["message"]


def test_a_rerun_on_the_cluster_redoes_nothing(runs, cluster):
    _, _, remote, _, _ = runs
    before = stored(remote)
    again = run_study(remote, scheduler=cluster[0])
    assert (again.succeeded, again.failed, again.skipped) == (0, 0, N_JOBS) and len(again.standing) == 1
    assert stored(remote) == before


def test_a_killed_coordinator_loses_only_the_jobs_in_flight(tmp_path, sheets, cluster, runs):
    address, client = cluster
    with make_study(tmp_path, sheets) as study:
        path = study.path
    finished, stderr = kill_after_first_result(path, ["--scheduler", address], env={"PYTHONPATH": str(SRC)},
                                               timeout_s=120, poll_s=0.02)
    assert 1 <= len(finished) < N_OK, f"the coordinator must be killed part-way: {stderr[-2000:]!r}"
    with open_study(path) as study:
        summary = run_study(study, scheduler=address)
        # the photo without a face may have been recorded as failed before the kill: it stands
        assert summary.skipped == len(finished) + len(summary.standing) and len(summary.standing) <= 1
        assert summary.succeeded == N_OK - len(finished)
        assert _ok_rows(path)[: len(finished)] == finished  # nothing recorded was redone
        assert stored(study) == stored(runs[0])
        assert not list((path / "results").glob(".staging-*"))


def _other_hemiface(root: Path, version: str) -> Path:
    """A copy of the hemiface under test (its modules linked) whose version is ``version``."""
    package = root / "hemiface"
    package.mkdir(parents=True)
    for entry in (SRC / "hemiface").iterdir():
        if entry.name not in ("__init__.py", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    init = (SRC / "hemiface" / "__init__.py").read_text()
    (package / "__init__.py").write_text(init.replace('__version__ = "', f'__version__ = "{version}+'))
    return root


def worker_with_pid(client, pid: int) -> str | None:
    """The address of the cluster's worker in process ``pid``, or None."""
    return next((w for w, p in client.run(os.getpid).items() if p == pid), None)


@pytest.mark.sqlite_only("the worker's version is refused before the run reaches the database")
def test_a_worker_with_another_hemiface_is_refused(tmp_path, sheets, cluster):
    address, client = cluster
    other = _other_hemiface(tmp_path / "other", "9.9.9")
    env = dict(os.environ, PYTHONPATH=str(other))
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180  # a worker process imports distributed and hemiface: slow on a loaded machine
        while not worker_with_pid(client, worker.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        other_worker = worker_with_pid(client, worker.pid)
        assert other_worker is not None
        with make_study(tmp_path, sheets) as study:
            with pytest.raises(WorkerMismatchError, match=r"runs hemiface 9\.9\.9\+0\.1\.0, this run hemiface 0\.1\.0"):
                run_study(study, scheduler=address)
            with study.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM analysis_results")).scalar() == 0
            assert not leftovers(study)
        client.retire_workers([other_worker], close_workers=True)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still starting up (it ignores SIGTERM until then): do not mask the result
            worker.kill()
            worker.wait(timeout=30)
    deadline = time.monotonic() + 30
    while other_worker in client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other_worker not in client.scheduler_info()["workers"]
    # a worker that joins after the check: each job checks again, and the run stops without recording it
    stale = _Checked(os.getpid, "0.0.1", code_fingerprint())
    with pytest.raises(WorkerMismatchError, match="runs hemiface 0.1.0, this run hemiface 0.0.1") as caught:
        client.submit(stale, pure=False).result()
    assert DaskPool.lost(caught.value)[0] == "environment"
    assert client.submit(_Checked(os.getpid, "0.1.0", code_fingerprint()), pure=False).result() > 0


def test_a_job_that_outlives_its_workers_is_a_failure_and_a_broken_cluster_stops_the_run():
    import concurrent.futures

    from distributed.scheduler import KilledWorker

    status, message = DaskPool.lost(KilledWorker("x", None, 3))
    assert status == "failed" and "died, 4 workers in turn" in message  # recorded: --retry-failed runs it again
    assert DaskPool.lost(concurrent.futures.CancelledError()) == (
        "environment", "the Dask scheduler cancelled it (the scheduler restarted or was lost)")
    assert DaskPool.lost(ModuleNotFoundError("No module named 'hemiface'\nmore")) == (
        "environment", "a Dask worker could not run it (ModuleNotFoundError: No module named 'hemiface')")


def test_bad_scheduler_addresses_are_one_line(tmp_path, sheets, monkeypatch):
    import hemiface.study._dask as dask_module

    with make_study(tmp_path, sheets) as study:
        folder = str(study.path)
    for address, says in (("nonsense", "not a Dask scheduler address"), ("tcp://127.0.0.1", "not a Dask scheduler"),
                          ("local:0", "local:N needs a whole number")):
        line = one_line_error(runner.invoke(app, ["study", "run", folder, "--scheduler", address]))
        assert says in line, line
    # A closed port is refused by the probe at once (Dask's client alone retries for its 30 s connect timeout).
    line = one_line_error(runner.invoke(app, ["study", "run", folder, "--scheduler", "tcp://127.0.0.1:9"]))
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line, line
    monkeypatch.setattr(dask_module, "WORKER_WAIT_S", 0.5)
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as empty:
        line = one_line_error(runner.invoke(app, ["study", "run", folder, "--scheduler", empty.scheduler_address]))
    assert f"the Dask scheduler at {empty.scheduler_address} has no workers" in line, line
    line = one_line_error(runner.invoke(app, ["study", "run", folder, "--scheduler", "local:1", "--jobs", "2"]))
    assert "exclude each other" in line
    with open_study(folder) as study, study.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analysis_results")).scalar() == 0
    with open_study(folder) as study, pytest.raises(StudyError, match="scheduler must be"):
        run_study(study, scheduler="")


def _blas_threads_inside_an_analysis(job) -> list:
    """The thread counts of the loaded BLAS libraries as an analysis run by the study's ``_analyse`` sees them."""
    from threadpoolctl import threadpool_info

    seen = []
    real = run_module.analysis_function
    run_module.analysis_function = lambda name: lambda *args, **kwargs: seen.append(
        sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
    try:
        run_module._analyse(job)
    finally:
        run_module.analysis_function = real
    return seen[0]


def test_analyses_run_on_one_blas_thread_wherever_they_run(cluster):
    """Sums in a matrix product depend on BLAS's threads (the last bits of a scan comparison differed): one thread."""
    from threadpoolctl import threadpool_info, threadpool_limits

    _, client = cluster
    job = run_module.Job("photo_analyze", "P01", 1, 1, "2021-02-15", "left", {"photo": ("x.png", "0" * 64)}, {})
    with threadpool_limits(limits=2, user_api="blas"):  # as on any machine with two cores or more
        assert 2 in {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
        assert _blas_threads_inside_an_analysis(job) == [1]
    assert client.submit(_blas_threads_inside_an_analysis, job, pure=False).result() == [1]


def test_a_postgresql_study_on_the_cluster_stores_the_local_results(tmp_path, sheets, cluster, runs, postgres):
    """`[run] scheduler` in study.toml sends a PostgreSQL study's run to the cluster: the local (SQLite) run's results.

    P01 alone (two photos, one for each worker): the same files and settings as in the local run, so the same jobs.
    """
    address, _ = cluster
    (tmp_path / "sheets").mkdir()
    (tmp_path / "sheets" / "media").symlink_to(sheets / "media", target_is_directory=True)
    for name in SHEETS:
        lines = (sheets / name).read_text().splitlines(keepends=True)
        (tmp_path / "sheets" / name).write_text("".join([lines[0], *(ln for ln in lines[1:] if ln.startswith("P01,"))]))
    name, url = postgres.new_database()
    try:
        with init_study(tmp_path / "study", database_url=url, inclusion_from=None, inclusion_to=None) as study:
            study.import_files(sorted((tmp_path / "sheets").glob("*.csv")), user="tester")
            folder = study.path
        settings = folder / "study.toml"
        settings.write_text(settings.read_text() + f'[run]\nscheduler = "{address}"\n')
        result = runner.invoke(app, ["study", "run", str(folder)], env={"HEMIFACE_PROGRESS": "0"})
        assert result.exit_code == 0, result.output
        assert "study run: 2 analyses: 0 already done, 2 done now, 0 failed" in result.output
        with open_study(folder) as study:
            assert study.engine.dialect.name == "postgresql"
            got, local = stored(study), stored(runs[0])
            assert len(got) == 2 and got == {key: local[key] for key in got}  # bitwise, messages, provenance
            assert ran_on(study) == [json.dumps({"jobs": 1, "scheduler": address})]
            files = result_files(study)
            assert len(files) >= 4 and files == {k: v for k, v in result_files(runs[0]).items() if k in files}
            assert not leftovers(study)
    finally:
        postgres.drop_database(name)


@pytest.mark.sqlite_only("about a worker's malloc settings, not the database")
def test_a_nanny_started_worker_gets_large_malloc_thresholds_once(monkeypatch):
    """The Dask nanny's MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold (a photo analysis
    0.80 s instead of 0.56 s, benchmarks/bench_dask_worker.py); the job sets large thresholds once per
    process, and nothing without the nanny's setting."""
    import ctypes

    import hemiface.study._dask as dask_module

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(dask_module, "_malloc_tuned", False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    dask_module._undo_nanny_malloc_trim()
    assert calls == []
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    dask_module._undo_nanny_malloc_trim()
    dask_module._undo_nanny_malloc_trim()
    assert calls == [(-3, 32 * 2**20), (-1, 64 * 2**20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, once
