"""One analysis inside a Dask worker against inside a process-pool worker (the same photo, 16 times each).

The Dask nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off
glibc's adaptive mmap threshold; hemiface's jobs set large thresholds on such a
worker (``hemiface.study._dask._undo_nanny_malloc_trim``). Prints the seconds per
photo analysis in a ``ProcessPoolExecutor`` worker, in a Dask worker as hemiface
runs its jobs, and in a Dask worker without the thresholds. About 1 minute.

    python benchmarks/bench_dask_worker.py
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PHOTO = str(Path(__file__).resolve().parents[1] / "tests" / "data" / "photos" / "frl_london" / "010_03.jpg")
N = 16


def _analysis(_=None) -> float:
    from hemiface.photo import analyze_photo

    t = time.perf_counter()
    analyze_photo(PHOTO, affected="left")
    return time.perf_counter() - t


def _warm(tuned: bool) -> int:
    from hemiface._face_mesh import load_models
    from hemiface.study._dask import _undo_nanny_malloc_trim

    if tuned:
        _undo_nanny_malloc_trim()
    load_models()
    _analysis()
    return os.getpid()


def main() -> None:
    from distributed import Client, LocalCluster

    with ProcessPoolExecutor(1) as pool:
        pool.submit(_warm, False).result()
        pool_s = sum(pool.map(_analysis, range(N))) / N
    rows = [("process-pool worker", pool_s)]
    for tuned, name in ((True, "Dask worker, hemiface's thresholds"), (False, "Dask worker, the nanny's setting")):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            client.submit(_warm, tuned, pure=False).result()
            times = client.gather([client.submit(_analysis, i, pure=False) for i in range(N)])
        rows.append((name, sum(times) / N))
    print(f"one photo analysis ({N} runs, 1 worker, os.cpu_count()={os.cpu_count()}, load {os.getloadavg()[0]:.1f}):")
    for name, seconds in rows:
        print(f"  {name:40s} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
