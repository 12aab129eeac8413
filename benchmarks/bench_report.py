"""Memory and time of writing a study report with one page per patient (target: < 2 GB at 600 patients).

A report of PATIENTS pages, each with three photo-sized images (1000 x 750 JPEG, as `study report` adds
the overlays and maps), written once as PDF and once as HTML, each in a fresh subprocess so that the
peak memory (ru_maxrss) belongs to that format alone. Run with `make bench` (or
`python benchmarks/bench_report.py [PATIENTS]`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
from pathlib import Path

from bench_scan_analyze import run

PATIENTS = 600
IMAGES_PER_PATIENT = 3
TARGET_MB = 2048
PHOTO = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos" / "skimage_astronaut_eileen_collins.png"

WRITE = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import numpy as np
    from PIL import Image
    from hemiface.report import Report

    photo, patients, per_patient, fmt, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    base = np.asarray(Image.open(photo).convert("RGB").resize((1200, 900)), np.int16)
    rng = np.random.default_rng(0)
    report = Report("Study report", study_name="benchmark")
    for i in range(patients):
        report.add_section(f"Patient P{i:04d}", new_page=True)
        for k in range(per_patient):  # a little noise: every image is its own (no two alike to share)
            img = np.clip(base + rng.integers(-8, 8, base.shape), 0, 255).astype(np.uint8)
            report.add_image(img, caption=f"image {k + 1}", max_height_mm=95, max_width_px=1000, photo=True)
    built_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    getattr(report, "save_" + fmt)(out, overwrite=True)
    print(json.dumps({"built_mb": built_mb, "write_s": time.perf_counter() - t0, "size_mb": os.path.getsize(out) / 1e6,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def main() -> None:
    patients = int(sys.argv[1]) if len(sys.argv) > 1 else PATIENTS
    print(f"study report of {patients} patient pages, {IMAGES_PER_PATIENT} photo-sized JPEGs each")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("pdf", "html"):
            out = str(Path(tmp) / f"report.{fmt}")
            r = json.loads(run(WRITE, str(PHOTO), str(patients), str(IMAGES_PER_PATIENT), fmt, out))
            print(f"  {fmt}: write {r['write_s']:.1f} s, {r['size_mb']:.0f} MB file; peak memory {r['peak_mb']:.0f} MB "
                  f"({r['built_mb']:.0f} MB with the report built) [target < {TARGET_MB} MB at {PATIENTS} patients]")


if __name__ == "__main__":
    main()
