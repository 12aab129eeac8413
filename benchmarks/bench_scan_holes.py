"""A scanner's holes on the 500,000-vertex benchmark face: what closing them costs (``make bench``).

The face of ``bench_scan_analyze.py`` (demoface with the multi-zone atrophy, subdivided and decimated
to 500,000 vertices) with 18 scanner-like holes (``tests/helpers.py``, ``scanner_holes``: both
nostrils, both lash lines, under both brows, 12 dropouts of 2-5 mm radius), and the same face
subdivided to about 2,000,000 vertices with one more hole of 10.5 mm radius on the cheek. Prints the
time of ``hemiface/scan/_holes.py``'s ``close_small_holes`` on the whole mesh, and of ``scan analyze``
with and without the holes (uncertainty included; target < 15 s at 500,000 vertices). Asserts nothing.

    python benchmarks/bench_scan_holes.py
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

from bench_scan_analyze import MAKE_MESH, TARGET_VERTICES, run

TESTS = str(Path(__file__).resolve().parents[1] / "tests")

HOLES = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from helpers import punch_holes, scanner_holes, surface_point
    from hemiface.scan import analyze_scan, load_scan, scan_from_arrays
    from hemiface.scan._frame import find_pronasale
    from hemiface.scan._holes import close_small_holes
    from hemiface.scan._mesh import refine_to_edge_length

    scan = load_scan(sys.argv[1])
    v, f = scan.vertices_mm, scan.faces
    holed = scanner_holes(v, f, seed=3)
    out = {{"vertices": len(v)}}
    t = time.perf_counter()
    _, _, out["closed"], out["area_mm2"] = close_small_holes(v, holed, 12.5)
    out["close_s"] = time.perf_counter() - t
    for name, faces in (("analyze_s", f), ("analyze_holes_s", holed)):
        t = time.perf_counter()
        r = analyze_scan(scan_from_arrays(v, faces), affected="left")
        out[name] = time.perf_counter() - t
        out[name.replace("_s", "_mm3")] = r.defect_volume_mm3
    fine, ff = refine_to_edge_length(v, f, 0.5)
    tip = find_pronasale(fine, ff)
    big = punch_holes(fine, scanner_holes(fine, ff, seed=3), [surface_point(fine, ff, tip[0] + 40, tip[1] - 10)], [10.5])
    t = time.perf_counter()
    _, _, out["fine_closed"], _ = close_small_holes(fine, big, 12.5)
    out["fine_close_s"] = time.perf_counter() - t
    out["fine_vertices"] = len(fine)
    print(json.dumps(out))
    """
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mesh = str(Path(tmp) / "dense_face.ply")
        run(MAKE_MESH.format(target=TARGET_VERTICES, bench_dir=str(Path(__file__).resolve().parent)), mesh)
        r = json.loads(run(HOLES.format(tests=TESTS), mesh))
    print(f"scanner holes on the {r['vertices']:,}-vertex benchmark face: {r['closed']} closed ({r['area_mm2']:.0f} mm2) "
          f"in {r['close_s']:.1f} s on the whole mesh")
    print(f"  scan analyze: {r['analyze_s']:.1f} s without holes, {r['analyze_holes_s']:.1f} s with them [target < 15 s]; "
          f"defect {r['analyze_mm3']:.0f} / {r['analyze_holes_mm3']:.0f} mm3 (the holes move a real face's plane: README)")
    print(f"  {r['fine_vertices']:,} vertices, {r['fine_closed']} holes closed (one of 10.5 mm radius): {r['fine_close_s']:.1f} s")


if __name__ == "__main__":
    main()
