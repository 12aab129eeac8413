"""Speed of `plan adm` and `plan fat` on the analysis of a dense face (target: `plan adm` < 10 s on 2 cores).

Run with `make bench`. The analysis (a 500,000-vertex template with a 5,000 mm3 round dent, analysed
without the uncertainty) is made first; each plan then runs in a fresh subprocess. Prints figures
(wall time, and the process's CPU time, which a loaded shared machine changes much less, with the
load average); asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TARGET_VERTICES = 500_000

ANALYSE = textwrap.dedent(
    """
    import sys, trimesh
    from hemiface import datasets
    from hemiface.scan import analyze_scan, read_landmarks, scan_from_arrays
    ph = datasets.make_phantom("template", side="left", volume_mm3=5000.0)
    v, f = ph.vertices_mm, ph.faces
    while len(v) < {target} * 0.8:
        v, f = trimesh.remesh.subdivide(v, f)
    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    r = analyze_scan(scan_from_arrays(v, f), affected="left", landmarks=lm, uncertainty=False)
    r.save(sys.argv[1])
    print(len(v), len(r.depth_vertices_mm))
    """
)

PLAN = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.perf_counter()
    from hemiface.plan import adm_plan, fat_plan
    t1, c1 = time.perf_counter(), time.process_time()
    plan = adm_plan(sys.argv[1], sheet_thickness_mm=float(sys.argv[3]))
    t2 = time.perf_counter()
    plan.save(sys.argv[2], overwrite=True)
    t3, c3 = time.perf_counter(), time.process_time()
    fat_plan(sys.argv[1]).save(sys.argv[2], overwrite=True)
    t4 = time.perf_counter()
    print(json.dumps({{"import_s": t1 - t0, "plan_s": t2 - t1, "write_s": t3 - t2, "fat_s": t4 - t3, "cpu_s": c3 - c1,
                      "layers": len(plan.layers), "pieces": len(plan.pieces), "sheets": plan.sheets,
                      "composite_mm3": plan.composite_volume_mm3, "defect_mm3": plan.defect_volume_mm3,
                      "bound_mm3": plan.volume_bound.bound_mm3,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
    """
)


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: on a shared machine the wall times "
          "follow the load; CPU time (the process's own, all threads) much less")
    with tempfile.TemporaryDirectory() as tmp:
        analysis = str(Path(tmp) / "analysis")
        n, n_depth = run(ANALYSE.format(target=TARGET_VERTICES), analysis).split()
        print(f"plan adm / plan fat on the analysis of a {int(n):,}-vertex face ({int(n_depth):,}-vertex depth map, "
              "5,000 mm3 round dent)")
        for thickness in (1.0, 0.5):
            r = json.loads(run(PLAN.format(), analysis, str(Path(tmp) / "plan"), str(thickness)))
            total = r["plan_s"] + r["write_s"]
            print(f"  T = {thickness:g} mm: plan {r['plan_s']:.1f} s + write {r['write_s']:.1f} s = {total:.1f} s "
                  f"[target < 10 s] (CPU {r['cpu_s']:.1f} s; import {r['import_s']:.1f} s), peak {r['peak_mb']:.0f} MB; "
                  f"{r['layers']} layers, "
                  f"{r['pieces']} pieces, {r['sheets']} sheets; composite {r['composite_mm3']:.0f} vs defect "
                  f"{r['defect_mm3']:.0f} mm3 (bound {r['bound_mm3']:.0f}); plan fat {r['fat_s']:.2f} s")


if __name__ == "__main__":
    main()
