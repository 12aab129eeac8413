"""A hole at a defect's deepest point, closed and left open, on the template phantoms (issue 12).

``scan analyze`` closes holes whose border fits in a sphere of
``FaceRegion.hole_fill_radius_mm`` (12.5 mm) on the skin around them
(``hemiface/scan/_holes.py``: triangulated on the border, refined and faired to the
biharmonic surface; until 2026-12-03 a flat patch, which lifted a defect's floor).
This prints, for the round 5,000 mm3 dent and the multi-zone pattern, a hole of 3, 5,
8 and 12 mm radius punched at the deepest carved point: the defect volume against the
carved truth (%) and the maximum depth (mm), with the hole closed and left open
(``hole_fill_radius_mm=0``). About 1 minute on 2 cores. Asserts nothing; the README
quotes the table (``tests/scan/test_holes.py`` holds the targets).

    python benchmarks/study_holes.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import punch_holes  # noqa: E402

from hemiface import datasets  # noqa: E402
from hemiface.scan import FaceRegion, analyze_scan, scan_from_arrays  # noqa: E402


def main() -> None:
    logging.getLogger("hemiface").setLevel(logging.ERROR)
    template = datasets.load_sample("template")
    print("pattern    hole   closed: volume, max depth (truth)   left open: volume, max depth   holes closed")
    for pattern in ("round", "multizone"):
        ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern=pattern, side="left")
        deepest = ph.vertices_mm[np.argmax(ph.true_depth_mm)]
        for radius in (3.0, 5.0, 8.0, 12.0):
            scan = scan_from_arrays(ph.vertices_mm, punch_holes(ph.vertices_mm, ph.faces, [deepest], [radius]))
            closed = analyze_scan(scan, affected="left", uncertainty=False)
            left_open = analyze_scan(scan, affected="left", uncertainty=False, region=FaceRegion(hole_fill_radius_mm=0.0))
            err = lambda r: 100 * (r.defect_volume_mm3 / ph.true_volume_mm3 - 1)  # noqa: E731
            print(f"{pattern:10s} {radius:4.0f} mm   {err(closed):+6.1f} %, {closed.max_depth_mm:.2f} mm "
                  f"({ph.true_max_depth_mm:.2f})        {err(left_open):+6.1f} %, {left_open.max_depth_mm:.2f} mm"
                  f"            {closed.provenance['parameters']['holes_closed']['count']}", flush=True)


if __name__ == "__main__":
    main()
