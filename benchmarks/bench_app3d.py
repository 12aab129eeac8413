"""The 3D view's payload for a ~500,000-vertex depth map: clustering for display, and what goes to the browser.

A 456,000-vertex face (the template refined by midpoint subdivision) with a smooth depth
field: times :func:`hemiface.scan.display_mesh` (clustering to at most DISPLAY_MAX_VERTICES),
the per-display-vertex mean of the values, the base64 arrays the app sends, and their size;
and a painted mask mapped back to the scan's vertices (what a save does). Prints; asserts nothing.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    import trimesh

    from hemiface.app._scan3d import b64, pack_mask
    from hemiface.datasets import load_sample
    from hemiface.scan import DISPLAY_MAX_VERTICES, display_mesh

    scan = load_sample("template")
    v, f = scan.vertices_mm, scan.faces
    while len(v) < 400_000:  # 7,160 -> 28,000 -> 114,000 -> 456,000
        v, f = trimesh.remesh.subdivide(v, f)
    depth = 3.0 * np.exp(-np.sum((v - [40.0, 0.0, 30.0]) ** 2, axis=1) / (2 * 15.0**2))
    t = time.perf_counter()
    display = display_mesh(v, f)
    t_cluster = time.perf_counter() - t
    t = time.perf_counter()
    values = display.mean(depth)
    payload = [b64(display.vertices, "<f4"), b64(display.faces, "<u4"), b64(values, "<f4")]
    t_encode = time.perf_counter() - t
    painted = np.flatnonzero(display.vertices[:, 1] > 40.0)
    t = time.perf_counter()
    original = display.expand(painted)
    mask = pack_mask(painted, len(display.vertices))
    t_expand = time.perf_counter() - t
    mb = sum(len(p) for p in payload) / 1e6
    print(f"depth map {len(v):,} vertices, {len(f):,} triangles -> display {len(display.vertices):,} vertices "
          f"(limit {DISPLAY_MAX_VERTICES:,}), {len(display.faces):,} triangles")
    print(f"  clustering {t_cluster:.2f} s, values + base64 {t_encode:.2f} s, payload {mb:.1f} MB of base64")
    print(f"  painted {len(painted):,} display vertices = {len(original):,} scan vertices; mask {len(mask) / 1e3:.0f} kB, "
          f"mapped back in {t_expand * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
