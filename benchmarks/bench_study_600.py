"""A study at registry scale: the 600-patient synthetic cohort (10x the demo), step by step, locally and on Dask.

Times each step of a study as the library runs it: import, planning (cold and warm
hash cache), `study run` with a local pool of 2 processes and on a LocalCluster of 2
workers (the cluster started beforehand, as a real one would be; its start is timed
apart), the no-change re-run (target < 2 s), the endpoint table, the statistics
(`study analyze`) and the report; and the peak memory (resident set) of this process
and of its largest child process (a worker, when there are any) during each step.
For the cluster run it also gives the scheduling overhead against the bare analyses:
its wall time over the time the workers spent inside the analyses (Dask's task
stream) divided by the workers (target <= 5%). The cluster's stored results are
compared with the local run's.

Photos for every patient, scans for a subset. ``--full`` (what ``make bench`` runs)
is the 600-patient cohort with 30 scan pairs: 1,170 analyses, 39 min on 2 cores
(load 1.5-3.8). The default (60 patients, 3 with scans) took 8.4 min on a loaded
2-core machine (load 8). Asserts nothing.

    python benchmarks/bench_study_600.py [--patients N] [--scans N] [--full]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

T_START = time.perf_counter()


class PeakMemory:
    """Samples the resident set of this process and of each of its descendants (the workers) every 0.1 s."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self._sample, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.own = self.me.memory_info().rss
            self.worker = 0

    def _sample(self) -> None:
        while True:
            own = self.me.memory_info().rss
            workers = 0
            for child in self.me.children(recursive=True):
                try:
                    workers = max(workers, child.memory_info().rss)
                except Exception:  # noqa: BLE001 - the child just ended
                    pass
            with self.lock:
                self.own, self.worker = max(self.own, own), max(self.worker, workers)
            time.sleep(0.1)

    def peaks_mb(self) -> tuple[float, float]:
        with self.lock:
            return self.own / 2**20, self.worker / 2**20


def stored_numbers(study) -> dict:
    """Status, message and stored numbers (result JSON) of every result, by job key."""
    from sqlalchemy import text

    with study.engine.connect() as conn:
        return {tuple(row[:3]): tuple(row[3:]) for row in conn.execute(text(
            "SELECT analysis, inputs_sha256, parameters_sha256, status, message, result_json FROM analysis_results"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--scans", type=int, default=3, help="patients with a baseline and a follow-up scan")
    parser.add_argument("--full", action="store_true", help="the 600-patient cohort with 30 scan pairs")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.full:
        args.patients, args.scans = 600, 30
    os.environ.setdefault("HEMIFACE_PROGRESS", "0")

    t0 = time.perf_counter()
    import hemiface.study as hs
    from hemiface.datasets import synthetic_study
    from hemiface.stats import analyze_endpoints, write_csv, write_workbook
    from hemiface.study._run import plan_jobs

    t_import = time.perf_counter() - t0
    logging.getLogger("hemiface").setLevel(logging.ERROR)  # the synthetic photos' pose notes
    logging.getLogger("distributed").setLevel(logging.ERROR)
    memory = PeakMemory()
    rows = []

    def step(name, func, items=None, unit=""):
        memory.reset()
        t = time.perf_counter()
        value = func()
        seconds = time.perf_counter() - t
        own, worker = memory.peaks_mb()
        rate = f"{items / seconds:8.2f} {unit}/s" if items else ""
        rows.append((name, seconds, rate, own, worker))
        print(f"  ... {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        return value

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = step("generate the synthetic cohort", lambda: synthetic_study(
            tmp / "sheets", n_patients=args.patients, n_with_scans=args.scans, seed=0))

        def make(name):
            study = hs.init_study(tmp / name, name=f"bench {name}", **synth.study_settings())
            study.import_files(synth.spreadsheets, user="bench")
            return study

        local = step("study import", lambda: make("local"))
        dask_study = make("dask")
        jobs, _ = step("plan the jobs (cold hash cache)", lambda: plan_jobs(local))
        step("plan the jobs (warm hash cache)", lambda: plan_jobs(local))
        n = len(jobs)
        kinds = {k: sum(j.analysis == k for j in jobs) for k in ("photo_analyze", "scan_analyze", "scan_compare")}
        s_local = step(f"study run, local pool --jobs {args.workers}",
                       lambda: hs.run_study(local, jobs=args.workers), n, "analyses")

        from distributed import Client, LocalCluster, get_task_stream

        cluster = step(f"start a LocalCluster of {args.workers} workers", lambda: LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR))
        client = Client(cluster, set_as_default=False)
        client.run(lambda: logging.getLogger("hemiface").setLevel(logging.ERROR))

        def on_dask():
            with get_task_stream(client) as stream:
                summary = hs.run_study(dask_study, scheduler=cluster.scheduler_address)
            return summary, stream.data

        s_dask, tasks = step(f"study run, Dask --scheduler (LocalCluster, {args.workers} workers)", on_dask,
                             n, "analyses")
        wall_dask = rows[-1][1]
        busy = sum(ss["stop"] - ss["start"] for t in tasks for ss in t["startstops"] if ss["action"] == "compute")
        client.close()
        cluster.close()
        same = stored_numbers(dask_study) == stored_numbers(local)
        step("study run again, no change (target < 2 s)", lambda: hs.run_study(local, jobs=args.workers))
        table = step("endpoint table", lambda: hs.endpoint_table(local))
        hs.write_endpoints(table, local.path / "endpoints.csv")

        def analyze():
            tables = analyze_endpoints(table)
            write_csv(tables, local.path / "analysis")
            write_workbook(tables, local.path / "analysis" / "analysis.xlsx")

        step("study analyze (statistics, CSV, XLSX)", analyze)
        step("study report (HTML, PDF)", lambda: hs.write_study_report(local, local.path / "report"))
        local.close()
        dask_study.close()

    load = os.getloadavg()
    print(f"\nstudy at scale: {args.patients} synthetic patients ({args.scans} with scans), {n} analyses "
          f"({kinds['photo_analyze']} photo, {kinds['scan_analyze']} scan, {kinds['scan_compare']} scan compare); "
          f"os.cpu_count()={os.cpu_count()}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"  {'step':58s} {'seconds':>9s} {'rate':>18s} {'peak MB: this':>14s} {'largest child (worker)':>23s}")
    print(f"  {'import hemiface.study, stats, datasets':58s} {t_import:9.2f}")
    for name, seconds, rate, own, worker in rows:
        print(f"  {name:58s} {seconds:9.2f} {rate:>18s} {own:14.0f} {worker or float('nan'):23.0f}")
    overhead = 100 * (wall_dask / (busy / args.workers) - 1) if busy else float("nan")
    print(f"  Dask: {len(tasks)} tasks, {busy:.1f} s inside the analyses on {args.workers} workers; scheduling "
          f"overhead {overhead:+.1f}% of the bare analyses (wall / (busy / workers) - 1; target <= 5%)")
    print(f"  runs: local {s_local}; Dask {s_dask}")
    print(f"  the Dask run stored exactly the local run's numbers and messages: {'yes' if same else 'NO'}")
    print(f"  total {time.perf_counter() - T_START:.0f} s")


if __name__ == "__main__":
    main()
