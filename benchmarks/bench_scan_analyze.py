"""Speed and memory of `scan analyze` on a dense face (target: < 15 s and < 2 GB on 2 cores).

Run with `make bench`. Each measurement runs in a fresh subprocess so that peak
memory (ru_maxrss) belongs to that measurement alone. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TARGET_VERTICES = 500_000

MAKE_MESH = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {bench_dir!r})
    from dense_mesh import write_dense
    from hemiface import datasets
    ph = datasets.make_phantom("demoface", side="left", pattern="multizone")
    print(write_dense(ph.vertices_mm, ph.faces, sys.argv[1], {target}))
    """
)

ANALYZE = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.perf_counter()
    from hemiface.scan import analyze_scan
    from hemiface.scan import _analyze, _outputs
    t1 = time.perf_counter()
    zones_s = {{}}

    def timed(name, fn):  # the aesthetic zones' share: splitting the defect, and zones.png
        def run(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            zones_s[name] = time.perf_counter() - start
            zones_s[name + "_cpu"] = time.process_time() - cpu
            return out
        return run

    _analyze.measure_zones = timed("measure", _analyze.measure_zones)
    _outputs.save_zones_figure = timed("figure", _outputs.save_zones_figure)
    result = analyze_scan(sys.argv[1], affected="auto")
    t2 = time.perf_counter()
    result.save(sys.argv[2], overwrite=True)
    t3 = time.perf_counter()
    print(json.dumps({{"import_s": t1 - t0, "analyze_s": t2 - t1, "write_s": t3 - t2,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "zones_s": zones_s,
                      "defect_volume_mm3": result.defect_volume_mm3,
                      "sd_mm3": result.defect_volume_uncertainty_mm3, "plane_sd_deg": result.plane_uncertainty_deg}}))
    """
)

QUERY = textwrap.dedent(
    """
    import json, sys, time, numpy as np
    from hemiface.scan import load_scan
    from hemiface.scan._distance import SurfaceQuery
    scan = load_scan(sys.argv[1])
    v = scan.vertices_mm
    t0 = time.perf_counter()
    q = SurfaceQuery(v * np.array([-1.0, 1.0, 1.0]), scan.faces[:, ::-1])
    t1 = time.perf_counter()
    pts = v[np.random.default_rng(0).choice(len(v), 1_000_000, replace=len(v) < 1_000_000)]
    t2 = time.perf_counter()
    q.closest(pts)
    t3 = time.perf_counter()
    print(json.dumps({{"build_s": t1 - t0, "query_s_per_million": t3 - t2, "n_triangles": len(scan.faces)}}))
    """
)


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = str(Path(tmp) / "dense_face.ply")
        n = int(run(MAKE_MESH.format(target=TARGET_VERTICES, bench_dir=str(Path(__file__).resolve().parent)), mesh))
        print(f"scan analyze on a {n:,}-vertex face (demoface subdivided and decimated, 15,000 mm3 multizone atrophy carved), "
              f"uncertainty included")
        for attempt in range(2):
            r = json.loads(run(ANALYZE.format(), mesh, str(Path(tmp) / "out")))
            total = r["analyze_s"] + r["write_s"]
            print(
                f"  run {attempt + 1}: analyse {r['analyze_s']:.1f} s + write outputs {r['write_s']:.1f} s = {total:.1f} s "
                f"(import {r['import_s']:.1f} s), peak memory {r['peak_mb']:.0f} MB "
                f"[target < 15 s, < 2048 MB]; defect {r['defect_volume_mm3']:.0f} +/- {r['sd_mm3']:.0f} mm3, "
                f"plane +/- {r['plane_sd_deg']:.3f} deg"
            )
            z = r["zones_s"]
            print(f"    of which aesthetic zones: split {z['measure']:.2f} s + zones.png {z['figure']:.2f} s = "
                  f"{z['measure'] + z['figure']:.2f} s (CPU {z['measure_cpu'] + z['figure_cpu']:.2f} s, load average "
                  f"{os.getloadavg()[0]:.1f}) [target < 1 s]")
        q = json.loads(run(QUERY.format(), mesh))
        print(
            f"distance query alone: {q['query_s_per_million']:.2f} s per million points against "
            f"{q['n_triangles']:,} triangles (BVH build {q['build_s']:.2f} s)"
        )


if __name__ == "__main__":
    main()
