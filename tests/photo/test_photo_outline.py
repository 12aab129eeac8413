"""Outline refinement and canonical-crop resampling against constructed images with known edges."""

import numpy as np
import pytest

from hemiface.photo._locate import (
    CropTransform, _chain_posterior_mean, _warp, densify_oval, refine_outline,
)

SIZE = 512
CENTRE = np.array([256.0, 256.0])


def _ellipse(a, b, n=36):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return CENTRE + np.column_stack([a * np.sin(t), -b * np.cos(t)])  # index 0 at the top, as the face oval


def _disc_image(a, b, *, inside=200.0, outside=60.0):
    """A bright ellipse on a dark ground, anti-aliased (4x4 supersampling), float32."""
    sub = (np.arange(SIZE * 4) + 0.5) / 4
    x, y = np.meshgrid(sub, sub)
    fine = (((x - CENTRE[0]) / a) ** 2 + ((y - CENTRE[1]) / b) ** 2 <= 1.0).astype(np.float32)
    cover = fine.reshape(SIZE, 4, SIZE, 4).mean(axis=(1, 3))
    return outside + (inside - outside) * cover


def _radial_error(outline, a, b):
    """Distance of each point from the true ellipse along the ray from the centre (px)."""
    d = outline - CENTRE
    r = np.hypot(*d.T)
    r_true = 1.0 / np.sqrt((d[:, 0] / r / a) ** 2 + (d[:, 1] / r / b) ** 2)
    return r - r_true


def test_refinement_finds_a_known_edge():
    a, b = 150.0, 190.0
    image = _disc_image(a, b)
    start = densify_oval(_ellipse(a - 8.0, b - 8.0))  # the model's outline 8 px inside the true edge
    refined, strength = refine_outline(image, start)
    chain = strength > 0
    err = _radial_error(refined[chain], a, b)
    assert np.abs(err).max() < 0.5, err
    assert np.abs(_radial_error(start[chain], a, b)).min() > 5  # it did move


def test_refinement_moves_continuously_between_two_equal_edges():
    """Over a stretch of the outline (an ear beside the cheek, say) two edges of equal strength lie
    8 px apart. As the starting outline slides from one to the other, the hard best path would jump
    8 px at once; each point's posterior mean moves in steps of a few px at most."""
    a, b = 150.0, 190.0
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    wedge = np.abs(np.degrees(np.arctan2(y - CENTRE[1], x - CENTRE[0]))) < 20  # image right, around the eyes' level
    image = (_disc_image(a, b, inside=120.0, outside=60.0)
             + np.where(wedge, _disc_image(a - 8, b - 8, inside=60.0, outside=0.0), 0.0)).astype(np.float32)
    means = []
    for shift in np.linspace(-8, 0, 17):
        start = densify_oval(_ellipse(a + shift, b + shift))
        refined, strength = refine_outline(image, start)
        d = refined - CENTRE
        in_wedge = (strength > 0) & (np.abs(np.degrees(np.arctan2(d[:, 1], d[:, 0]))) < 12)
        means.append(float(np.mean(_radial_error(refined[in_wedge], a, b))))
    steps = np.abs(np.diff(means))
    assert all(-8.5 < m < 0.5 for m in means), means  # on or between the two edges
    assert means[0] < -4 and means[-1] > -4, means  # it follows the start from one edge to the other
    assert steps.max() < 3.0, means  # and never jumps the whole 8 px


def test_chain_posterior_mean_of_a_single_clear_minimum():
    t = np.arange(-10, 10.5, 0.5)
    unary = np.zeros((5, len(t)))
    unary[:, np.searchsorted(t, 3.0)] = -50.0  # every point has one overwhelming edge at t = 3
    assert _chain_posterior_mean(unary, t, 0.08, 0.2) == pytest.approx(np.full(5, 3.0), abs=1e-6)


@pytest.mark.parametrize("scale", [0.125, 0.5, 1.0, 3.0])
def test_warp_resamples_an_affine_map_exactly(scale):
    """A linear ramp stays a linear ramp through the canonical-crop warp (cubic spline), at any zoom."""
    h, w = 600, 700
    y, x = np.mgrid[0:h, 0:w] + 0.5
    ramp = (40 + 0.1 * x + 0.05 * y).astype(np.float32)
    ang = np.radians(7.0)
    A = scale * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    tf = CropTransform(A, np.array([350.0, 300.0]) - A @ np.array([32.0, 32.0]))
    crop = _warp(ramp, tf, 64, as_uint8=False)
    g = np.arange(64) + 0.5
    px = tf.to_photo(np.stack(np.meshgrid(g, g), axis=-1))
    expected = 40 + 0.1 * px[..., 0] + 0.05 * px[..., 1]
    inside = (px[..., 0] > 4) & (px[..., 0] < w - 4) & (px[..., 1] > 4) & (px[..., 1] < h - 4)
    tol = 1e-3 if scale <= 2 else 0.05  # beyond a 2x shrink the photo is area-averaged first
    assert np.abs(crop - expected)[inside].max() < tol
