"""Speed and memory of `scan compare` on two dense faces (target: < 30 s on 2 cores).

Run with `make bench`; prints figures, asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

MAKE = textwrap.dedent(
    """
    import sys, trimesh
    from hemiface import datasets
    for volume, out in ((5000.0, sys.argv[1]), (2000.0, sys.argv[2])):
        ph = datasets.make_phantom("demoface", side="left", volume_mm3=volume, centre_offset_mm=(38.0, 8.0), radius_mm=22.0)
        v, f = trimesh.remesh.subdivide(*trimesh.remesh.subdivide(ph.vertices_mm, ph.faces))
        trimesh.Trimesh(v, f, process=False).export(out)
    print(len(v))
    """
)

COMPARE = textwrap.dedent(
    """
    import json, resource, sys, time
    from hemiface.scan import compare_scans
    t0 = time.perf_counter()
    r = compare_scans(sys.argv[1], sys.argv[2], affected="left")
    t1 = time.perf_counter()
    r.save(sys.argv[3], overwrite=True)
    t2 = time.perf_counter()
    print(json.dumps({"compare_s": t1 - t0, "write_s": t2 - t1, "gain_mm3": r.gain.volume_mm3,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def run(code: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pre, post = str(Path(tmp) / "pre.ply"), str(Path(tmp) / "post.ply")
        n = int(run(MAKE, pre, post))
        r = json.loads(run(COMPARE, pre, post, str(Path(tmp) / "out")))
        print(f"scan compare of two {n:,}-vertex faces: compare {r['compare_s']:.1f} s + write {r['write_s']:.1f} s "
              f"= {r['compare_s'] + r['write_s']:.1f} s [target < 30 s], peak memory {r['peak_mb']:.0f} MB; "
              f"gain {r['gain_mm3']:.0f} mm3 (truth 3,000)")


if __name__ == "__main__":
    main()
