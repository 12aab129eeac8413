"""Aesthetic zones: hand-placed points, exact mirror images on the symmetric template, and the defect split
by zone against the phantoms' truth.

Truth per zone is the carved closed shell's volume (swept from the carved to the unmodified surface, per
triangle of the phantom) split by where each triangle of the unmodified face lies, never the code under test.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from scipy.spatial import cKDTree

from hemiface import datasets
from hemiface._errors import LandmarkError
from hemiface.scan import (
    LANDMARK_NAMES, ZONE_NAMES, FaceRegion, analyze_scan, compare_scans, read_landmarks, scan_from_arrays,
)
from hemiface.scan._defect import Patch
from hemiface.scan._mesh import swept_volumes_mm3
from hemiface.scan._zones import MIDLINE, PAIRED, REFERENCE_LANDMARKS, zone_areas_mm2, zone_layout

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def template():
    return datasets.load_sample("template")


@pytest.fixture(scope="module")
def multizone(template):
    """The multizone atrophy (malar, buccal, chin, temple, forehead groove) on the template, and its analysis."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern="multizone", side="left")
    return ph, analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces, source_name="multizone.ply"), affected="left",
                            uncertainty=False)


def to_symmetry_frame(result):
    """The rigid map scan frame -> symmetry frame of an analysis (fitted exactly on the depth map's two copies)."""
    a, b = result.depth_vertices_mm, result.render_vertices
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    r = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    assert np.abs((a - ca) @ r + cb - b).max() < 1e-6
    return lambda p: (np.asarray(p) - ca) @ r + cb


def true_zone_volumes(phantom, result, *, outer=None):
    """Closed-shell volume per zone, inside the face region (mm3), between the phantom and ``outer`` (default: the
    unmodified face), each triangle placed where it lies on the unmodified face."""
    original = phantom.original_vertices_mm
    swept = swept_volumes_mm3(phantom.vertices_mm, original if outer is None else outer, phantom.faces)
    centres = to_symmetry_frame(result)(original[phantom.faces].mean(axis=1))
    inside = FaceRegion().ellipse_margin(centres) > 0
    return np.bincount(result.zone_layout.label(centres), weights=swept * inside, minlength=len(ZONE_NAMES))


def test_zone_names_and_hand_placed_points():
    assert ZONE_NAMES == ("forehead", "temple", "nose", "orbit", "upper_lip", "chin", "preauricular", "infraorbital",
                          "malar", "buccal")
    layout = zone_layout(None)  # the reference face: lines worked out by hand from REFERENCE_LANDMARKS
    assert REFERENCE_LANDMARKS["endocanthion"] == (16.5, 31.5) and REFERENCE_LANDMARKS["exocanthion"] == (41.0, 32.5)
    # canthal line 32, fissure 24.5, lid-cheek 32 - 12.25 = 19.75, mid-pupil 28.75, lateral orbital 41 + 6.125
    assert (layout.eye_y, layout.infraorbital_y, layout.midpupil_u, layout.lateral_u) == (32.0, 19.75, 28.75, 47.125)
    cases = {
        (0, 60): "forehead", (30, 50): "forehead", (0, 40): "forehead", (50, 50): "temple", (5, 20): "nose",
        (10, -7): "nose", (10, -9): "upper_lip",  # the nasal base at u = 10: -11 + 10 / 18 * 5 = -8.2
        (30, 25): "orbit", (50, 25): "preauricular", (22, 5): "infraorbital", (38, 5): "malar", (5, -20): "upper_lip",
        (5, -50): "chin", (35, -30): "buccal", (55, -30): "preauricular", (28, -60): "chin", (31, -60): "buccal",
    }  # the labiomandibular line at y = -60: 18 + 5 / 25.5 * 54 = 28.6
    points = np.array([[u, y, 0.0] for u, y in cases], float)
    for sign in (1.0, -1.0):
        got = [ZONE_NAMES[k] for k in layout.label(points * [sign, 1.0, 1.0])]
        assert got == list(cases.values())


def test_given_landmarks_fit_the_reference_face():
    # Both endocanthions (asymmetric by 1 mm: averaged after mirroring) and one cheilion, in the symmetry frame.
    lm = {"endocanthion_left": np.array([17.0, 30.0, -30.0]), "endocanthion_right": np.array([-16.0, 30.0, -30.0]),
          "cheilion_left": np.array([25.0, -35.0, -30.0]), "pronasale": np.zeros(3)}
    layout = zone_layout(lm)
    assert layout.endocanthion == (16.5, 30.0) and layout.cheilion == (25.0, -35.0)
    s_u = (16.5 * 16.5 + 25.0 * 23.0) / (16.5**2 + 23.0**2)
    s_y = (30.0 * 31.5 + 35.0 * 31.5) / (2 * 31.5**2)
    assert layout.scale_lateral == pytest.approx(s_u) and layout.scale_vertical == pytest.approx(s_y)
    assert layout.exocanthion == pytest.approx((41.0 * s_u, 32.5 * s_y))
    assert layout.sources["endocanthion"] == "given" and layout.sources["exocanthion"] == "reference"
    # every landmark the zones read is one a landmark file may name (read_landmarks keeps it without a warning)
    assert {f"{n}_{s}" for n in PAIRED for s in ("left", "right")} | set(MIDLINE) <= set(LANDMARK_NAMES)
    with pytest.raises(LandmarkError, match="one below the other"):
        zone_layout({**lm, "cheilion_left": np.array([25.0, 40.0, -30.0])})


def test_zones_are_exact_mirror_images_on_the_symmetric_template(template):
    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    r = analyze_scan(template, affected="left", landmarks=lm, uncertainty=False)
    v, f, layout = r.render_vertices, r.depth_faces, r.zone_layout
    assert layout.sources["endocanthion"] == "given" and layout.sources["cheilion"] == "given"
    labels = layout.label(v)
    assert np.array_equal(labels, layout.label(v * [-1.0, 1.0, 1.0]))
    # Each zone's vertex set on the left maps onto the same zone's set on the right under the mirror.
    left, right = v[:, 0] > 1e-6, v[:, 0] < -1e-6
    dist, j = cKDTree(v[right] * [-1.0, 1.0, 1.0]).query(v[left])
    log.info("template: mirror partners within %.1e mm; %d vertices", dist.max(), len(v))
    assert dist.max() < 1e-3
    assert np.array_equal(labels[left], labels[right][j])
    # ... and the areas agree (depth is 0 here: the skin is its own mirrored counterpart).
    patch = Patch(v, f, r.depth_values_mm, v)
    area_l = zone_areas_mm2(layout, patch.clip(v[:, 0]))
    area_r = zone_areas_mm2(layout, patch.clip(-v[:, 0]))
    for z in r.zones:
        log.info("template %s: %.1f mm2 left, %.1f mm2 right", z.name, area_l[z.name], area_r[z.name])
        assert area_l[z.name] > 50.0
        assert area_l[z.name] == pytest.approx(area_r[z.name], rel=0.005)
        assert z.area_mm2 == pytest.approx(area_l[z.name], rel=0.001)
    assert sum(area_l.values()) + sum(area_r.values()) == pytest.approx(r.region_area_mm2, rel=1e-9)
    assert abs(r.volumetric_discrepancy_mm3) < 1.0  # no deficit: shares are NaN unless the (noise) discrepancy is > 0
    assert all(np.isnan(z.discrepancy_share) for z in r.zones) == (r.volumetric_discrepancy_mm3 <= 0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_dent_inside_the_malar_zone_stays_there(template, side):
    ref = zone_layout(None)  # no landmarks: the analysis below uses the reference face too
    centre = (0.5 * (ref.midpupil_u + ref.lateral_u), 0.5 * (ref.alar_base[1] + ref.infraorbital_y))
    ph = datasets.carve_defect(template.vertices_mm, template.faces, side=side, centre_offset_mm=centre,
                               radius_mm=9.0, volume_mm3=400.0)
    r = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected=side, uncertainty=False)
    zones = {z.name: z for z in r.zones}
    share = zones["malar"].defect_volume_mm3 / r.defect_volume_mm3
    log.info("malar dent (%s): %.1f %% of %.0f mm3 (truth %.0f) in the malar zone", side, 100 * share,
             r.defect_volume_mm3, ph.true_volume_mm3)
    assert share >= 0.95
    assert zones["malar"].max_depth_mm == pytest.approx(r.max_depth_mm)
    assert zones["malar"].area_deeper_than_threshold_mm2 == pytest.approx(r.area_deeper_than_threshold_mm2, rel=0.01)
    assert zones["malar"].discrepancy_share >= 0.95


def test_zone_volumes_tile_the_defect_and_match_truth(multizone, tmp_path):
    ph, r = multizone
    zones = {z.name: z for z in r.zones}
    assert tuple(zones) == ZONE_NAMES
    assert sum(z.defect_volume_mm3 for z in r.zones) == pytest.approx(r.defect_volume_mm3, rel=0.01)
    assert sum(z.discrepancy_mm3 for z in r.zones) == pytest.approx(r.volumetric_discrepancy_mm3, rel=0.01)
    assert sum(z.discrepancy_share for z in r.zones) == pytest.approx(1.0, rel=0.01)
    assert sum(z.area_deeper_than_threshold_mm2 for z in r.zones) == pytest.approx(r.area_deeper_than_threshold_mm2,
                                                                                  rel=0.01)
    assert max(z.max_depth_mm for z in r.zones) == pytest.approx(r.max_depth_mm)
    assert sum(z.area_mm2 for z in r.zones) == pytest.approx(r.region_area_mm2 / 2, rel=0.01)
    truth = true_zone_volumes(ph, r)
    for k, name in enumerate(ZONE_NAMES):
        measured = zones[name].defect_volume_mm3
        log.info("multizone %s: %.0f mm3 (truth %.0f, %+.1f %%)", name, measured, truth[k],
                 100 * (measured / truth[k] - 1) if truth[k] else float("nan"))
        if truth[k] > 0.01 * truth.sum():  # every zone the pattern reaches (temple: 1 %)
            assert measured == pytest.approx(truth[k], rel=0.05)
        else:
            assert measured < 0.01 * truth.sum()
    # measurements.json: flat keys, one set per zone, and zones.png among the outputs.
    r.save(tmp_path)
    m = json.loads((tmp_path / "measurements.json").read_text())
    found = [re.match(r"^zone_(.+)_defect_volume_mm3$", k).group(1) for k in m if re.match(r"^zone_(.+)_defect_volume_mm3$", k)]
    assert found == list(ZONE_NAMES)
    assert m["zone_malar_defect_volume_mm3"] == zones["malar"].defect_volume_mm3
    assert m["zone_malar_area_deeper_than_threshold_mm2"] == zones["malar"].area_deeper_than_threshold_mm2
    assert m["zones"]["names"] == list(ZONE_NAMES)
    assert (tmp_path / "zones.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_gain_per_zone(multizone):
    ph, r = multizone
    post = ph.restored(0.5)
    c = compare_scans(scan_from_arrays(ph.vertices_mm, ph.faces, source_name="pre.ply"),
                      scan_from_arrays(post.vertices_mm, post.faces, source_name="post.ply"), affected="left",
                      uncertainty=False)
    assert sum(c.zone_gain_mm3.values()) == pytest.approx(c.gain.volume_mm3, rel=0.01)
    d = c.to_dict()
    assert [k for k in d if k.startswith("zone_") and k.endswith("_volume_gained_mm3")] == \
        [f"zone_{n}_volume_gained_mm3" for n in ZONE_NAMES]
    truth = true_zone_volumes(ph, r, outer=post.vertices_mm)  # the shell between PRE and POST
    log.info("compare: gain %.0f mm3 (truth %.0f in the region, %.0f in all)", c.gain.volume_mm3, truth.sum(),
             post.true_gain_mm3)
    for k, name in enumerate(ZONE_NAMES):
        gained = c.zone_gain_mm3[name]
        log.info("compare %s: gained %.0f mm3 (truth %.0f, %+.1f %%)", name, gained, truth[k],
                 100 * (gained / truth[k] - 1) if truth[k] else float("nan"))
        if truth[k] > 0.05 * truth.sum():
            assert gained == pytest.approx(truth[k], rel=0.06)
