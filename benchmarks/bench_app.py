"""`hemiface app` page times on a 60-patient synthetic cohort (2 photos each, scans for 20 by default) on 2 cores.

Builds the cohort, imports it, runs every analysis (`study run --jobs 2`; set
HEMIFACE_BENCH_RUN=0 to time the pages of an imported but unanalysed study), then
times each page through the WSGI application as a browser would request it: the
first load (hashes every media file once) and the median of five loads after it
(target < 1 s). Asserts nothing. HEMIFACE_BENCH_PATIENTS / HEMIFACE_BENCH_SCANS
set a smaller cohort.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from hemiface.app import create_app
    from hemiface.datasets import synthetic_study
    from hemiface.study import init_study

    n_patients = int(os.environ.get("HEMIFACE_BENCH_PATIENTS", 60))
    n_scans = int(os.environ.get("HEMIFACE_BENCH_SCANS", 20))
    run = os.environ.get("HEMIFACE_BENCH_RUN", "1") != "0"
    with tempfile.TemporaryDirectory() as tmp:
        synth = synthetic_study(Path(tmp) / "sheets", n_patients=n_patients, n_with_scans=n_scans, seed=0)
        folder = Path(tmp) / "study"
        with init_study(folder, **synth.study_settings()) as study:
            study.import_files(synth.spreadsheets, user="bench")
        if run:
            subprocess.run([sys.executable, "-m", "hemiface.cli", "study", "run", str(folder), "--jobs", "2"],
                           check=True, capture_output=True, env=dict(os.environ, HEMIFACE_PROGRESS="0"))
        app = create_app(folder)
        client = app.test_client()
        detail = client.get("/api/patients/P007").get_json()
        photo = next((a["media_id"] for a in detail["analyses"] if a["analysis"] == "photo_analyze"), None)
        pages = ["/", "/api/overview", "/patients/P007", f"/photos/{photo}/correct", f"/api/photos/{photo}/landmarks",
                 f"/photos/{photo}/image.jpg", "/download/endpoints.csv"]
        print(f"hemiface app, synthetic cohort of {n_patients} patients ({n_scans} with scans), "
              f"{'analysed' if run else 'not analysed'}, os.cpu_count()={os.cpu_count()}")
        for page in pages:
            times = []
            for _ in range(6):
                t0 = time.perf_counter()
                status = client.get(page).status_code
                times.append(time.perf_counter() - t0)
            print(f"  {page:34s} {status}  first {times[0]:6.2f} s   then median {statistics.median(times[1:]):6.3f} s"
                  "   (target < 1 s)")
        app.extensions["hemiface"]["study"].close()


if __name__ == "__main__":
    main()
