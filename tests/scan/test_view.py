"""display_mesh: a mesh clustered for a viewer, and a painted area mapped back to exactly the scan's vertices."""

import numpy as np

from hemiface.datasets import load_sample
from hemiface.scan import display_mesh


def test_clustered_display_maps_painting_back_exactly():
    scan = load_sample("template")
    v, f = scan.vertices_mm, scan.faces
    small = display_mesh(v, f)
    assert not small.clustered and np.array_equal(small.vertices, v) and np.array_equal(small.labels, np.arange(len(v)))

    d = display_mesh(v, f, max_vertices=1500)
    assert d.clustered and len(d.vertices) <= 1500 and d.n_original == len(v) and len(d.labels) == len(v)
    assert d.faces.max() < len(d.vertices) and (np.diff(np.sort(d.faces, axis=1), axis=1) > 0).all()  # no degenerate
    # each display vertex is the mean of its scan vertices, and lies within one cell of each of them
    for k in range(3):
        assert np.allclose(d.mean(v[:, k]), d.vertices[:, k])
    cell = np.linalg.norm(v - d.vertices[d.labels], axis=1).max()
    assert cell < 12.0
    # painting display vertices selects whole clusters; painting those again changes nothing (a round trip)
    painted = np.flatnonzero(d.vertices[:, 0] > 20.0)
    scan_vertices = d.expand(painted)
    assert np.array_equal(d.reduce(scan_vertices), painted)
    assert np.array_equal(d.expand(d.reduce(scan_vertices)), scan_vertices)
    assert set(np.unique(d.labels[scan_vertices])) == set(painted)
    assert (v[scan_vertices, 0] > 20.0 - cell).all()
