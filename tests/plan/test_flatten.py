"""Flattening a dense piece on its decimated copy, against truth and against solving it whole.

A developable surface (a cylinder's side) has an exact flat shape, whatever the resolution it is
solved at; a spherical cap has none, so there the coarse solve carried to every vertex is held to
the full-resolution solve of the same library, and its reported distortion to the polygon it draws.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hemiface.plan._flatten import COARSE_EDGE_MM, flatten_piece
from test_adm_plan import _cylinder, _shoelace  # tests/plan's own helpers

log = logging.getLogger(__name__)
UP, MEDIAL = np.array([0.0, 1.0, 0.0]), np.array([-1.0, 0.0, 0.0])


def _sphere_cap(sphere_radius, cap_radius, spacing):
    """A Delaunay-triangulated disc of ``cap_radius`` lifted onto a sphere (seen from +z)."""
    from scipy.spatial import Delaunay

    g = np.arange(-cap_radius, cap_radius + spacing, spacing)
    x, y = np.meshgrid(g, g * np.sqrt(3) / 2)
    x = x + 0.5 * spacing * (np.arange(len(g))[:, None] % 2)
    p = np.column_stack([x.ravel(), y.ravel()])
    p = p[np.hypot(p[:, 0], p[:, 1]) <= cap_radius]
    faces = Delaunay(p).simplices
    z = np.sqrt(sphere_radius**2 - (p**2).sum(axis=1))
    return np.column_stack([p, z]), faces


@pytest.mark.parametrize("hole", [None, 20])
def test_dense_cylinder_unrolls_exactly_from_its_coarse_copy(hole):
    radius, angle, height, n = 40.0, 1.2, 30.0, (160, 100)
    v, f = _cylinder(radius, angle, height, hole=hole, n=n)
    flat = flatten_piece(v, f, superior=UP, medial=MEDIAL)
    assert flat.solved_triangles < len(f) / 4  # solved on the ~1 mm copy, not whole
    w, h = flat.size_mm
    assert w == pytest.approx(2 * radius * np.sin(angle / (2 * (n[0] - 1))) * (n[0] - 1), rel=1e-3)
    assert h == pytest.approx(height, rel=1e-3)
    d = flat.distortion
    assert d["length_error_p95_percent"] < 0.1 and d["flipped_triangles"] == 0
    assert len(flat.outlines) == (1 if hole is None else 2)
    outer, *holes = flat.outlines
    polygon = abs(_shoelace(outer)) - sum(abs(_shoelace(o)) for o in holes)
    assert polygon == pytest.approx(flat.curved_area_mm2, rel=1e-3)
    assert flat.superior_2d == pytest.approx([0.0, 1.0], abs=1e-3)
    assert flat.medial_2d == pytest.approx([-1.0, 0.0], abs=0.05)


def test_dense_cap_from_its_coarse_copy_matches_the_whole_solve():
    v, f = _sphere_cap(60.0, 20.0, 0.45)
    coarse = flatten_piece(v, f, superior=UP, medial=MEDIAL)
    whole = flatten_piece(v, f, superior=UP, medial=MEDIAL, coarse_edge_mm=None)
    assert whole.solved_triangles == len(f) and coarse.solved_triangles < len(f) / 2
    dc, dw = coarse.distortion, whole.distortion
    log.info("cap R 60 mm, radius 20 mm, %d triangles: solved on %d -> mean length error %.3f %% (whole %.3f %%), "
             "p95 %.3f %% (%.3f %%), area %+.3f %% (%+.3f %%)", len(f), coarse.solved_triangles,
             dc["length_error_mean_percent"], dw["length_error_mean_percent"], dc["length_error_p95_percent"],
             dw["length_error_p95_percent"], dc["area_error_percent"], dw["area_error_percent"])
    # A curved cap cannot flatten without error: both solves show it, and the coarse one within a tenth of it.
    assert dw["length_error_mean_percent"] > 0.1
    assert dc["length_error_mean_percent"] == pytest.approx(dw["length_error_mean_percent"], rel=0.1)
    assert dc["length_error_p95_percent"] == pytest.approx(dw["length_error_p95_percent"], rel=0.1)
    assert abs(dc["area_error_percent"] - dw["area_error_percent"]) < 0.05
    assert dc["flipped_triangles"] == 0
    # The reported figures are the drawn piece's: its outline holds the curved area within the reported error.
    polygon = abs(_shoelace(coarse.outlines[0]))
    assert abs(polygon / coarse.curved_area_mm2 - 1) * 100 <= abs(dc["area_error_percent"]) + 0.01
    # Same template: the two outlines lie within a few hundredths of a millimetre of each other.
    gap = np.linalg.norm(coarse.uv_mm - whole.uv_mm - (coarse.uv_mm - whole.uv_mm).mean(axis=0), axis=1)
    assert gap.max() < 0.02
    assert coarse.size_mm == pytest.approx(whole.size_mm, abs=0.05)


def test_a_sparse_piece_is_solved_whole():
    v, f = _sphere_cap(60.0, 10.0, 1.5 * COARSE_EDGE_MM)
    assert flatten_piece(v, f, superior=UP, medial=MEDIAL).solved_triangles == len(f)
