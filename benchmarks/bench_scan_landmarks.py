"""Speed and memory of `scan landmarks` (automatic 3D landmarks) on dense scans (target: < 10 s on 2 cores).

Run with `make bench`. The real meshmonk demoface scan is subdivided (the last time only in part) to about
100,000 and 500,000 vertices and turned to a random pose; each measurement runs in a fresh subprocess so
that peak memory (ru_maxrss) belongs to it alone. MediaPipe's models are loaded before the
clock starts (their one-off load is printed separately). Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TARGETS = (100_000, 500_000)

MAKE_MESH = textwrap.dedent(
    """
    import sys, numpy as np, trimesh
    from scipy.spatial.transform import Rotation
    from hemiface import datasets
    scan = datasets.load_sample("demoface")
    v, f = np.array(scan.vertices_mm), np.array(scan.faces)
    target = int(sys.argv[2])
    while len(v) < target * 0.95:  # whole subdivisions, then part of the faces to land near the target
        short = target - len(v)
        index = None if short > 1.5 * len(f) else np.arange(int(short / 1.5))
        v, f = trimesh.remesh.subdivide(v, f, face_index=index)
    v = v @ Rotation.random(random_state=7).as_matrix().T + [120.0, -40.0, 300.0]
    trimesh.Trimesh(v, f, process=False).export(sys.argv[1])
    print(len(v))
    """
)

DETECT = textwrap.dedent(
    """
    import json, resource, sys, time
    from hemiface import _face_mesh as _mediapipe
    from hemiface.scan import detect_landmarks, load_scan
    t0 = time.perf_counter()
    _mediapipe.load_models()
    t1 = time.perf_counter()
    scan = load_scan(sys.argv[1])
    t2 = time.perf_counter()
    found = detect_landmarks(scan)
    t3 = time.perf_counter()
    print(json.dumps({"models_s": t1 - t0, "load_s": t2 - t1, "detect_s": t3 - t2, "views": found.views_tried,
                      "face_score": found.face_score,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for target in TARGETS:
            mesh = Path(tmp) / f"face_{target}.ply"
            n = int(subprocess.run([sys.executable, "-c", MAKE_MESH, str(mesh), str(target)], check=True,
                                   capture_output=True, text=True).stdout.split()[-1])
            out = subprocess.run([sys.executable, "-c", DETECT, str(mesh)], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"scan landmarks, {n:,} vertices (random pose): detect {r['detect_s']:.2f} s "
                  f"(target < 10 s; {r['views']} candidate views, face score {r['face_score']:.2f}), "
                  f"load {r['load_s']:.2f} s, model load {r['models_s']:.2f} s, peak memory {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
