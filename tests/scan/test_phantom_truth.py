"""scan analyze against constructed truth: a symmetric face with a carved defect of known size.

Truth comes from the phantom's construction (closed solid between the original
and the carved surface, divergence theorem), not from the measurement code.
"""

import logging

import numpy as np
import pytest
import trimesh

from hemiface import datasets
from hemiface.scan import analyze_scan, scan_from_arrays
from helpers import add_noise, decimate, mirror_x, move, random_rigid, subdivide

log = logging.getLogger(__name__)
LANDMARK_NAMES = ("endocanthion_right", "endocanthion_left", "pronasale", "cheilion_right", "cheilion_left")


def template_landmarks_mm():
    from hemiface.scan import read_landmarks

    return read_landmarks(datasets.sample_landmarks_path("template"))


def check_truth(result, phantom, *, volume_rel=0.03, depth_mm=0.2, side=None):
    side = side or phantom.side
    log.info(
        "measured %.1f mm3 (truth %.1f), max depth %.3f mm (truth %.3f), side %s",
        result.defect_volume_mm3, phantom.true_volume_mm3, result.max_depth_mm, phantom.true_max_depth_mm,
        result.affected_side,
    )
    assert result.affected_side == side
    assert result.defect_volume_mm3 == pytest.approx(phantom.true_volume_mm3, rel=volume_rel)
    assert abs(result.max_depth_mm - phantom.true_max_depth_mm) < depth_mm


def test_carved_defect_is_recovered(template_phantom):
    result = analyze_scan(scan_from_arrays(template_phantom.vertices_mm, template_phantom.faces), affected="auto")
    check_truth(result, template_phantom)
    assert result.affected_side_chosen_by == "auto"
    assert len(result.defects) == 1
    # The area deeper than 4 mm: within 10% (it is a thin ring-bounded disc, sensitive to smoothing).
    assert result.area_deeper_than_threshold_mm2 == pytest.approx(
        template_phantom.true_area_deeper_than_threshold_mm2, rel=0.10
    )
    # The rest of the template is exactly symmetric: the whole-hemiface discrepancy is the defect.
    assert result.volumetric_discrepancy_mm3 == pytest.approx(template_phantom.true_volume_mm3, rel=0.03)
    # Cross-check with an independent volume: hemiface column volumes to a common back plane.
    column_difference = result.unaffected_hemiface_volume_mm3 - result.affected_hemiface_volume_mm3
    assert column_difference == pytest.approx(template_phantom.true_volume_mm3, rel=0.03)
    assert result.plane_fit_rms_mm < 0.05
    assert result.plane_fit_converged


@pytest.mark.parametrize("volume_mm3,radius_mm", [(2000.0, 22.0), (12000.0, 35.0)])
def test_defect_sizes_across_the_published_range(volume_mm3, radius_mm):
    phantom = datasets.make_phantom(
        "template", side="right", volume_mm3=volume_mm3, radius_mm=radius_mm, centre_offset_mm=(38.0, -5.0)
    )
    result = analyze_scan(scan_from_arrays(phantom.vertices_mm, phantom.faces), affected="auto")
    check_truth(result, phantom)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_rigid_motion_with_landmarks(template_phantom, seed):
    rot, trans = random_rigid(seed)
    moved = move(template_phantom.vertices_mm, rot, trans)
    landmarks = {k: move(v[None, :], rot, trans)[0] for k, v in template_landmarks_mm().items()}
    result = analyze_scan(scan_from_arrays(moved, template_phantom.faces), affected="auto", landmarks=landmarks)
    check_truth(result, template_phantom)
    assert result.frame_source == "landmarks"
    # The plane comes back in the moved frame: its normal is the moved x axis.
    assert abs(np.dot(result.symmetry_plane_normal, rot[:, 0])) > np.cos(np.radians(0.1))


def test_subdivided(template_phantom):
    v, f = subdivide(template_phantom.vertices_mm, template_phantom.faces)
    check_truth(analyze_scan(scan_from_arrays(v, f)), template_phantom)


def test_decimated(template_phantom):
    v, f = decimate(template_phantom.vertices_mm, template_phantom.faces, 0.5)
    check_truth(analyze_scan(scan_from_arrays(v, f)), template_phantom)


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_0_1_mm(template_phantom, seed):
    noisy = add_noise(template_phantom.vertices_mm, 0.1, seed)
    check_truth(analyze_scan(scan_from_arrays(noisy, template_phantom.faces)), template_phantom)


def test_mirrored_input_swaps_side(template_phantom):
    original = analyze_scan(scan_from_arrays(template_phantom.vertices_mm, template_phantom.faces))
    v, f = mirror_x(template_phantom.vertices_mm, template_phantom.faces)
    mirrored = analyze_scan(scan_from_arrays(v, f))
    assert original.affected_side == "left" and mirrored.affected_side == "right"
    assert mirrored.defect_volume_mm3 == pytest.approx(original.defect_volume_mm3, rel=1e-3)
    assert mirrored.max_depth_mm == pytest.approx(original.max_depth_mm, abs=0.01)
    assert mirrored.volumetric_discrepancy_mm3 == pytest.approx(original.volumetric_discrepancy_mm3, rel=1e-3)


def test_units_and_scale(template_phantom):
    in_cm = scan_from_arrays(template_phantom.vertices_mm / 10.0, template_phantom.faces, units="cm")
    check_truth(analyze_scan(in_cm), template_phantom)


def test_no_defect_on_the_symmetric_template():
    result = analyze_scan(datasets.load_sample("template"), affected="auto")
    assert result.defect_volume_by_side_mm3["left"] < 50.0
    assert result.defect_volume_by_side_mm3["right"] < 50.0
    assert abs(result.volumetric_discrepancy_mm3) < 50.0


def test_given_side_measures_that_side(template_phantom, caplog):
    scan = scan_from_arrays(template_phantom.vertices_mm, template_phantom.faces)
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        right = analyze_scan(scan, affected="right")
    assert "check the side" in caplog.text  # the defect is on the other side: the user is told
    assert right.affected_side == "right" and right.affected_side_chosen_by == "user"
    assert right.defect_volume_mm3 < 50.0
    # Seen from the healthy side the carved side is fuller: a negative discrepancy.
    assert right.volumetric_discrepancy_mm3 == pytest.approx(-template_phantom.true_volume_mm3, rel=0.03)


def test_defect_solid_is_watertight_and_matches_volume(template_phantom):
    result = analyze_scan(scan_from_arrays(template_phantom.vertices_mm, template_phantom.faces))
    solid = trimesh.Trimesh(result.defect_solid_vertices_mm, result.defect_solid_faces, process=False)
    assert solid.is_watertight
    assert solid.is_winding_consistent
    assert solid.volume > 0
    assert solid.volume == pytest.approx(result.defect_volume_mm3, rel=0.01)
