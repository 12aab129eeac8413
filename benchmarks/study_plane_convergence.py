"""How near the symmetry plane's fixed point the fit stops, plain and Anderson-accelerated.

`scan analyze` (no uncertainty) of the 500,000-vertex benchmark face (demoface with the multi-zone atrophy,
`bench_scan_analyze.py`'s mesh) four times: the plane's iteration plain or accelerated, with the default
stopping tolerance and with it 100x tighter (the fixed point itself, to 0.01 mm3). Each run is a fresh
subprocess. Run with `python benchmarks/study_plane_convergence.py` (about 1 minute on 2 cores). Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

from bench_scan_analyze import MAKE_MESH, TARGET_VERTICES, run

ANALYZE = textwrap.dedent(
    """
    import json, sys, time
    from hemiface.scan import _plane, _symmetry, analyze_scan

    mesh, accelerate, tighter = sys.argv[1], sys.argv[2] == "accelerated", float(sys.argv[3])
    fit = _symmetry.fit_symmetry_plane

    def patched(*args, **kwargs):
        kwargs["accelerate"] = accelerate
        kwargs["max_iterations"] = int(200 * max(1.0, tighter ** 0.5))
        return fit(*args, **kwargs)

    _symmetry.fit_symmetry_plane = _plane.fit_symmetry_plane = patched
    _symmetry.ANGLE_TOL_RAD /= tighter
    _symmetry.OFFSET_TOL_MM /= tighter
    t0 = time.perf_counter()
    r = analyze_scan(mesh, affected="auto", uncertainty=False)
    print(json.dumps({"s": time.perf_counter() - t0, "defect": r.defect_volume_mm3,
                      "discrepancy": r.volumetric_discrepancy_mm3}))
    """
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = str(Path(tmp) / "dense_face.ply")
        run(MAKE_MESH.format(target=TARGET_VERTICES, bench_dir=str(Path(__file__).resolve().parent)), mesh)
        print("symmetry plane: where the fit stops (500,000-vertex face, multi-zone atrophy, no uncertainty)")
        for mode in ("accelerated", "plain"):
            rows = {}
            for tighter in (1.0, 100.0):
                rows[tighter] = json.loads(run(ANALYZE, mesh, mode, str(tighter)))
            d, ref = rows[1.0]["defect"], rows[100.0]["defect"]
            print(f"  {mode:>11}: defect {d:,.1f} mm3 in {rows[1.0]['s']:.1f} s; tolerance 100x tighter "
                  f"{ref:,.1f} mm3 in {rows[100.0]['s']:.1f} s; default stops {d - ref:+.1f} mm3 "
                  f"({100 * (d - ref) / ref:+.2f}%) from it")


if __name__ == "__main__":
    main()
