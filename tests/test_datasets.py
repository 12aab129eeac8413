"""Sample data and the phantom generator's own truth."""

import numpy as np
import pytest

from hemiface import datasets
from hemiface._errors import HemifaceError


@pytest.mark.parametrize("name", list(datasets.SAMPLES))
def test_samples_load(name):
    scan = datasets.load_sample(name)
    assert len(scan.faces) > 1000 and len(scan.sha256) == 64


def test_template_is_exactly_symmetric():
    from scipy.spatial import cKDTree

    v = datasets.load_sample("template").vertices_mm
    d, _ = cKDTree(v).query(v * np.array([-1.0, 1.0, 1.0]))
    assert d.max() < 1e-3


def test_phantom_volume_matches_analytic_flat_formula_on_a_plane():
    # A flat grid: the raised-cosine dent has volume R^2 (pi/2 - 2/pi) depth exactly (up to discretisation).
    n, size = 201, 200.0
    x, y = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(-size / 2, size / 2, n))
    v = np.column_stack([x.ravel(), y.ravel(), np.zeros(n * n)])
    v[np.argmin(np.linalg.norm(v[:, :2], axis=1)), 2] = 0.001  # a unique "pronasale" at the centre
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    f = np.concatenate([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    ph = datasets.carve_defect(v, f, side="left", centre_offset_mm=(50.0, 0.0), radius_mm=30.0, depth_mm=5.0)
    assert ph.true_volume_mm3 == pytest.approx(30.0**2 * (np.pi / 2 - 2 / np.pi) * 5.0, rel=5e-3)
    assert ph.true_max_depth_mm == pytest.approx(5.0, abs=0.05)


def test_target_volume_is_met():
    ph = datasets.make_phantom("template", volume_mm3=7000.0, side="right")
    assert ph.true_volume_mm3 == pytest.approx(7000.0, rel=1e-4)
    assert ph.side == "right" and ph.true_depth_mm.max() == pytest.approx(ph.true_max_depth_mm)


def test_defect_crossing_the_midline_is_refused():
    with pytest.raises(HemifaceError, match="midline"):
        datasets.make_phantom("template", volume_mm3=5000.0, centre_offset_mm=(10.0, 0.0), radius_mm=30.0)


def test_unknown_sample_name():
    with pytest.raises(ValueError, match="sample name"):
        datasets.sample_path("nobody")


def test_sample_photo_is_bundled():
    path = datasets.sample_photo_path("astronaut")
    assert path.is_file() and path.stat().st_size > 100_000


@pytest.mark.parametrize("pattern", ["multizone", "broad", "midline"])
def test_atrophy_patterns_meet_their_volume_and_stay_on_one_side(pattern):
    scan = datasets.load_sample("template")
    ph = datasets.carve_atrophy(scan.vertices_mm, scan.faces, pattern=pattern, side="right")
    target = datasets.DEFAULT_VOLUME_MM3[pattern]
    assert ph.true_volume_mm3 == pytest.approx(target, rel=1e-3)
    moved = ph.true_depth_mm > 0
    # Right side: every carved vertex lies at x < 0 (the template is symmetric about x = 0).
    assert np.all(scan.vertices_mm[moved, 0] < 0.0)
    # Carved along the normals by exactly the recorded depth.
    shift = np.linalg.norm(ph.vertices_mm - scan.vertices_mm, axis=1)
    assert np.allclose(shift, ph.true_depth_mm, atol=1e-9)
    # The volume is the closed shell's, not the depth integral's: close to it on a gently curved face.
    from hemiface.scan._mesh import face_areas_mm2

    area = np.zeros(len(scan.vertices_mm))
    for k in range(3):
        np.add.at(area, scan.faces[:, k], face_areas_mm2(scan.vertices_mm, scan.faces) / 3)
    assert np.sum(area * ph.true_depth_mm) == pytest.approx(ph.true_volume_mm3, rel=0.05)


def test_broad_pattern_is_broad_and_shallow():
    ph = datasets.make_phantom("template", pattern="broad")
    # Like the published 10,621 mm3 case: about 3 mm deep at most, over most of a hemiface.
    assert 2.5 < ph.true_max_depth_mm < 3.6
    assert ph.true_area_deeper_than_threshold_mm2 == 0.0


@pytest.mark.parametrize("fraction", [0.3, 1.0, 1.2])
def test_restoration_truth_adds_up(fraction):
    ph = datasets.make_phantom("template", pattern="multizone")
    follow = ph.restored(fraction)
    # Gain and what remains make up the baseline defect; overcorrection leaves a negative remainder.
    assert follow.true_gain_mm3 + follow.true_volume_mm3 == pytest.approx(ph.true_volume_mm3, rel=1e-6)
    assert follow.true_gain_mm3 == pytest.approx(fraction * ph.true_volume_mm3, rel=0.03)
    assert follow.baseline_volume_mm3 == ph.true_volume_mm3 and follow.restored_fraction == fraction
    if fraction == 1.0:
        assert np.allclose(follow.vertices_mm, ph.original_vertices_mm)
    with pytest.raises(HemifaceError, match="fraction"):
        ph.restored(-0.1)


def test_unknown_pattern():
    with pytest.raises(ValueError, match="pattern"):
        datasets.make_phantom("template", pattern="diagonal")
