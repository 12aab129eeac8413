"""Geometric primitives against analytic values."""

import numpy as np
import pytest
import trimesh

from hemiface.scan._mesh import (
    boundary_edges, clip_by_scalar, column_volume_mm3, face_areas_mm2, smooth_vertex_field, swept_volumes_mm3,
)


def grid(n=21, size=20.0):
    x, y = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(-size / 2, size / 2, n))
    v = np.column_stack([x.ravel(), y.ravel(), np.zeros(n * n)])
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    f = np.concatenate([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    return v, f


def test_swept_volume_of_a_prism_and_a_sheared_prism():
    v, f = grid()
    top = v + np.array([0, 0, 3.0])
    assert swept_volumes_mm3(v, top, f).sum() == pytest.approx(20 * 20 * 3.0)
    sheared = v + np.array([2.0, 1.0, 3.0])  # shear keeps the volume
    assert swept_volumes_mm3(v, sheared, f).sum() == pytest.approx(20 * 20 * 3.0)
    assert swept_volumes_mm3(v, v - np.array([0, 0, 1.0]), f).sum() == pytest.approx(-400.0)


def test_swept_volume_of_a_paraboloid_cap():
    # Top z = h (1 - r^2/R^2) over a flat disc bottom: volume pi R^2 h / 2, on a fine mesh.
    v, f = grid(n=161, size=20.0)
    r2 = (v[:, 0] ** 2 + v[:, 1] ** 2) / 100.0
    top = v.copy()
    top[:, 2] = np.where(r2 < 1, 5.0 * (1 - r2), 0.0)
    assert swept_volumes_mm3(v, top, f).sum() == pytest.approx(np.pi * 100 * 5 / 2, rel=2e-3)


def test_clip_by_scalar_cuts_exactly_along_a_line():
    v, f = grid()
    cv, cf, attrs, on_cut = clip_by_scalar(v, f, v[:, 0] - 3.3, {"x": v[:, 0]})
    assert face_areas_mm2(cv, cf).sum() == pytest.approx((10 - 3.3) * 20)
    assert np.allclose(cv[on_cut, 0], 3.3)
    assert np.allclose(attrs["x"], cv[:, 0])
    # The clipped patch is one manifold piece: its border is a single rectangle's perimeter.
    lengths = np.linalg.norm(cv[boundary_edges(cf)[:, 0]] - cv[boundary_edges(cf)[:, 1]], axis=1)
    assert lengths.sum() == pytest.approx(2 * (6.7 + 20))


def test_column_volume_of_a_sphere_cap():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=10.0)
    upper = sphere.faces[sphere.vertices[sphere.faces].mean(axis=1)[:, 2] > 0]
    # Hemisphere over the plane z = 0: 2/3 pi r^3 (discretisation within 0.5%).
    assert column_volume_mm3(sphere.vertices, upper) == pytest.approx(2 / 3 * np.pi * 1000, rel=5e-3)


def test_smoothing_keeps_a_constant_and_damps_noise():
    v, f = grid(n=81, size=40.0)
    assert np.allclose(smooth_vertex_field(v, f, np.full(len(v), 2.5), 1.5), 2.5)
    noise = np.random.default_rng(0).normal(0, 1, len(v))
    assert smooth_vertex_field(v, f, noise, 1.5).std() < 0.4 * noise.std()
    assert np.array_equal(smooth_vertex_field(v, f, noise, 0.0), noise)
