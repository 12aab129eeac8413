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
    import sys
    sys.path.insert(0, sys.argv[3])
    from dense_mesh import write_dense
    from hemiface import datasets
    pre = datasets.make_phantom("demoface", side="left", pattern="multizone")
    post = pre.restored(0.6)
    n = [write_dense(ph.vertices_mm, ph.faces, out) for ph, out in ((pre, sys.argv[1]), (post, sys.argv[2]))]
    print(min(n), post.true_gain_mm3)
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
                      "plane_sd_deg": r.plane_uncertainty_deg, "gain_registration_sd_mm3": r.volume_gain_registration_sd_mm3,
                      "gain_sd_mm3": r.volume_gain_uncertainty_mm3,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def run(code: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pre, post = str(Path(tmp) / "pre.ply"), str(Path(tmp) / "post.ply")
        n, truth = run(MAKE, pre, post, str(Path(__file__).resolve().parent)).split()
        n, truth = int(n), float(truth)
        r = json.loads(run(COMPARE, pre, post, str(Path(tmp) / "out")))
        print(f"scan compare of two faces of {n:,}+ vertices (subdivided and decimated separately): compare {r['compare_s']:.1f} s + write {r['write_s']:.1f} s "
              f"= {r['compare_s'] + r['write_s']:.1f} s [target < 30 s], peak memory {r['peak_mb']:.0f} MB; "
              f"gain {r['gain_mm3']:.0f} +/- {r['gain_sd_mm3']:.0f} mm3 (1 SD; registration {r['gain_registration_sd_mm3']:.0f}; "
              f"truth {truth:,.0f}: multizone, 60% restored); PRE's plane "
              f"+/- {r['plane_sd_deg']:.3f} deg (uncertainty included)")


if __name__ == "__main__":
    main()
