"""`hemiface study run` on a 60-patient synthetic cohort (2 photos each, scans for 20) on 2 cores.

Prints: generation time, the full run with --jobs 2, and the no-change re-run (target < 2 s),
each timed as a user would see it (the command line, in a fresh process). Asserts nothing.
Set HEMIFACE_BENCH_PATIENTS / HEMIFACE_BENCH_SCANS for a smaller cohort.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def hemiface(*args: str) -> tuple[float, str]:
    cli = [sys.executable, "-m", "hemiface.cli", *args]
    t0 = time.perf_counter()
    done = subprocess.run(cli, capture_output=True, text=True, env=dict(os.environ, HEMIFACE_PROGRESS="0"))
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"hemiface {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout.strip()


def main() -> None:
    from hemiface.datasets import synthetic_study

    n_patients = int(os.environ.get("HEMIFACE_BENCH_PATIENTS", 60))
    n_scans = int(os.environ.get("HEMIFACE_BENCH_SCANS", 20))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        synth = synthetic_study(Path(tmp) / "sheets", n_patients=n_patients, n_with_scans=n_scans, seed=0)
        t_generate = time.perf_counter() - t0
        sheets = [str(p) for p in synth.spreadsheets]
        folder = str(Path(tmp) / "study")
        hemiface("study", "init", folder)
        hemiface("study", "import", folder, *sheets)
        t_run, out_run = hemiface("study", "run", folder, "--jobs", "2")
        t_rerun, out_rerun = hemiface("study", "run", folder, "--jobs", "2")
        t_endpoints, _ = hemiface("study", "endpoints", folder)
    print(f"study run, synthetic cohort of {n_patients} patients ({n_scans} with scans), 2 jobs, os.cpu_count()={os.cpu_count()}")
    print(f"  generate the cohort        {t_generate:7.1f} s")
    print(f"  study run (everything)     {t_run:7.1f} s   {out_run.splitlines()[0]}")
    print(f"  study run (no change)      {t_rerun:7.2f} s   {out_rerun.splitlines()[0]}   (target < 2 s)")
    print(f"  study endpoints            {t_endpoints:7.2f} s")


if __name__ == "__main__":
    main()
