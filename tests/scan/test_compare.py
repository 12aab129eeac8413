"""scan compare against a phantom series built from a real face (humface).

PRE carries a carved defect of known volume; POST has it partly filled (known
remaining volume): the gain's truth is the difference of the two closed-solid
volumes, computed by the phantom generator, not by the code under test.
"""

import json
import logging

import numpy as np
import pytest

from hemiface import datasets
from hemiface._errors import RegistrationError
from hemiface.scan import analyze_scan, compare_scans, load_scan, scan_from_arrays
from helpers import add_noise, expression_change, move, pseudo_landmarks, random_rigid, subdivide

log = logging.getLogger(__name__)

# uncertainty=False where a test checks volumes, gains and planes only: the plane's uncertainty is validated in
# test_atrophy_truth.py, the registration's in test_registration_sd_is_the_registrations_error (and the CLI's
# default path in test_cli_compare_writes_outputs), and leaving out their jackknives changes no other number.
SITE = dict(side="left", centre_offset_mm=(38.0, 8.0), radius_mm=22.0)  # malar: clear of the mouth


@pytest.fixture(scope="module")
def series():
    from pathlib import Path

    base = load_scan(Path(__file__).parents[1] / "data" / "humface.ply")
    pre = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=5000.0, **SITE)
    post = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=2000.0, **SITE)
    return base, pre, post


@pytest.fixture(scope="module")
def smile(series):
    """A symmetric expression for this face: centred on its symmetry plane."""
    base = series[0]
    natural = analyze_scan(base, affected="left", uncertainty=False)
    return lambda v, f: expression_change(v, f, natural.symmetry_plane_point_mm, natural.symmetry_plane_normal)


def expression_discrepancy_change(before, after, faces, plane_point, plane_normal):
    """Truth: how much a displacement changes the left (affected) hemiface's discrepancy.

    Even a mirror-symmetric expression adds different volumes to two sides of
    unequal shape. Volume added per side = swept volume of the known
    displacement (exact for the triangulated surfaces), split at the plane;
    discrepancy = unaffected - affected, so it changes by right - left.
    """
    from hemiface.scan._mesh import swept_volumes_mm3

    swept = swept_volumes_mm3(np.asarray(before), np.asarray(after), np.asarray(faces))
    side = (np.asarray(before)[faces].mean(axis=1) - plane_point) @ np.asarray(plane_normal)
    return swept[side < 0].sum() - swept[side > 0].sum()


@pytest.fixture(scope="module")
def template_series():
    """The exactly symmetric template: clean truth for shares of the defect and for plans."""
    base = datasets.load_sample("template")
    pre = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=5000.0, **SITE)
    return base, pre


def as_scan(v, f, name):
    return scan_from_arrays(v, f, source_name=name)


def test_partial_fill_moved_remeshed_noisy_with_expression(series, smile):
    base, pre, post = series
    truth_gain = pre.true_volume_mm3 - post.true_volume_mm3
    v = smile(post.vertices_mm, post.faces)
    natural = analyze_scan(base, affected="left", uncertainty=False)
    truth_change = -truth_gain + expression_discrepancy_change(
        post.vertices_mm, v, post.faces, natural.symmetry_plane_point_mm, natural.symmetry_plane_normal)
    v, f = subdivide(v, post.faces)
    v = add_noise(v, 0.1, seed=3)
    landmarks = pseudo_landmarks(post.vertices_mm, post.faces)
    rot, trans = random_rigid(11)
    moved = move(v, rot, trans)
    moved_landmarks = {k: move(p[None], rot, trans)[0] for k, p in landmarks.items()}
    result = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(moved, f, "post"),
                           affected="left", landmarks_post=moved_landmarks, uncertainty=False)
    log.info("gain %.0f mm3 (truth %.0f), discrepancy change %.0f mm3 (truth %.0f, of which the expression %.0f), "
             "registration RMS %.3f mm", result.gain.volume_mm3, truth_gain, result.discrepancy_change_mm3,
             truth_change, truth_change + truth_gain, result.registration_rms_mm)
    assert result.gain.volume_mm3 == pytest.approx(truth_gain, rel=0.03)
    assert result.discrepancy_change_mm3 == pytest.approx(truth_change, rel=0.03)
    assert result.registration_rms_mm < 0.3  # 0.1 mm noise on both sides of each pair: about 0.07 mm
    assert result.registration.converged


def test_mouth_expression_does_not_move_the_registration(series, smile):
    base, pre, post = series
    plain = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(post.vertices_mm, post.faces, "post"),
                          affected="left", uncertainty=False)
    smiling = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"),
                            as_scan(smile(post.vertices_mm, post.faces), post.faces, "post"),
                            affected="left", uncertainty=False)
    probe = np.random.default_rng(0).uniform(-60, 60, (100, 3))
    shift = np.linalg.norm(plain.registration.apply(probe) - smiling.registration.apply(probe), axis=1).max()
    log.info("registration moved by %.3f mm (max over the face) when the mouth changed", shift)
    assert shift < 0.1
    truth = pre.true_volume_mm3 - post.true_volume_mm3
    natural = analyze_scan(base, affected="left", uncertainty=False)
    expression = expression_discrepancy_change(post.vertices_mm, smile(post.vertices_mm, post.faces), post.faces,
                                               natural.symmetry_plane_point_mm, natural.symmetry_plane_normal)
    log.info("the expression alone changes the discrepancy by %.0f mm3 (the two sides differ in shape)", expression)
    assert smiling.gain.volume_mm3 == pytest.approx(truth, rel=0.03)
    assert smiling.discrepancy_change_mm3 == pytest.approx(-truth + expression, rel=0.03)


def test_share_of_the_defect_corrected(template_series):
    base, pre = template_series
    partial = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=2000.0, **SITE)
    result = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(partial.vertices_mm, partial.faces, "post"),
                           affected="left", uncertainty=False)
    assert result.defect_corrected_percent == pytest.approx(60.0, abs=2.0)
    assert result.defect_volume_post_mm3 == pytest.approx(partial.true_volume_mm3, rel=0.03)


def test_overcorrection(template_series):
    base, pre = template_series
    bulge = np.asarray(base.vertices_mm) + 0.3 * (np.asarray(base.vertices_mm) - pre.vertices_mm)
    result = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(bulge, base.faces, "post"),
                           affected="left", uncertainty=False)
    assert result.discrepancy_post_mm3 < 0
    assert result.discrepancy_post_mm3 == pytest.approx(-0.3 * pre.true_volume_mm3, rel=0.1)
    assert result.defect_corrected_percent > 100
    assert result.defect_corrected_percent == pytest.approx(130.0, abs=4.0)


def test_identical_scans_show_no_change(series):
    _, pre, _ = series
    scan = as_scan(pre.vertices_mm, pre.faces, "pre")
    result = compare_scans(scan, scan, affected="left", uncertainty=False)
    assert result.gain.volume_mm3 < 20 and result.loss.volume_mm3 < 20
    assert abs(result.discrepancy_change_mm3) < 20
    assert result.registration_rms_mm < 0.01


def test_plan_vs_result(template_series, tmp_path):
    base, pre = template_series
    pre_scan = as_scan(pre.vertices_mm, pre.faces, "pre")
    analyze_scan(pre_scan, affected="left").save(tmp_path / "pre")
    plan = tmp_path / "pre" / "defect.stl"
    exact = compare_scans(pre_scan, as_scan(base.vertices_mm, base.faces, "post"), affected="left", plan=plan, uncertainty=False)
    shifted_carve = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=5000.0, side="left",
                                          centre_offset_mm=(38.0, 18.0), radius_mm=22.0)  # 10 mm higher
    shifted_fill = pre.vertices_mm + (np.asarray(base.vertices_mm) - shifted_carve.vertices_mm)
    shifted = compare_scans(pre_scan, as_scan(shifted_fill, base.faces, "post"), affected="left", plan=plan, uncertainty=False)
    log.info("plan exact: %s", exact.plan)
    log.info("plan shifted 10 mm: %s", shifted.plan)
    assert exact.plan["plan_dice"] > 0.95
    assert exact.plan["plan_thickness_difference_mean_mm"] < 0.2
    assert exact.plan["achieved_volume_mm3"] == pytest.approx(exact.plan["planned_volume_mm3"], rel=0.05)
    assert shifted.plan["plan_dice"] < exact.plan["plan_dice"] - 0.1
    assert shifted.plan["plan_thickness_difference_mean_mm"] > 5 * exact.plan["plan_thickness_difference_mean_mm"]


def test_poor_registration_is_refused():
    humface = load_scan(__import__("pathlib").Path(__file__).parents[1] / "data" / "humface.ply")
    with pytest.raises(RegistrationError, match="refusing to report change|stable regions"):
        compare_scans(humface, datasets.load_sample("demoface"), affected="left", uncertainty=False)


def test_cli_compare_writes_outputs(series, tmp_path):
    import trimesh
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.scan import COMPARE_OUTPUT_NAMES

    _, pre, post = series
    pre_path, post_path = tmp_path / "p01_pre.ply", tmp_path / "p01_6m.ply"
    trimesh.Trimesh(pre.vertices_mm, pre.faces, process=False).export(pre_path)
    trimesh.Trimesh(post.vertices_mm, post.faces, process=False).export(post_path)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["scan", "compare", str(pre_path), str(post_path), "--affected", "left",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(COMPARE_OUTPUT_NAMES)
    c = json.loads((out / "comparison.json").read_text())
    assert c["volume_gain_mm3"] == pytest.approx(pre.true_volume_mm3 - post.true_volume_mm3, rel=0.03)
    assert c["provenance"]["inputs"]["pre"]["file"] == "p01_pre.ply"
    assert c["provenance"]["inputs"]["post"]["file"] == "p01_6m.ply"
    # the gain's SD and its two parts, printed as written
    assert c["volume_gain_uncertainty_mm3"] == pytest.approx(np.hypot(c["volume_gain_registration_sd_mm3"],
                                                                      c["volume_gain_edge_sd_mm3"]))
    assert (f"+/- {c['volume_gain_uncertainty_mm3']:.0f} mm3, 1 SD: registration "
            f"{c['volume_gain_registration_sd_mm3']:.0f}, region edge {c['volume_gain_edge_sd_mm3']:.0f}") in result.output


def test_user_stable_mask(series, tmp_path):
    import trimesh

    base, pre, post = series
    natural = analyze_scan(base, affected="left", uncertainty=False)
    n, point = np.asarray(natural.symmetry_plane_normal), np.asarray(natural.symmetry_plane_point_mm)
    v, f = np.asarray(pre.vertices_mm), np.asarray(pre.faces)
    lateral = (v[f].mean(axis=1) - point) @ n
    height = v[f].mean(axis=1)[:, 1] - point[1]
    keep = (lateral < -10) | (height > 40)  # the user's mask: the right (unaffected) side and the forehead
    mask = tmp_path / "stable.ply"
    trimesh.Trimesh(v, f[keep], process=False).export(mask)
    result = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(post.vertices_mm, post.faces, "post"),
                           affected="left", stable=mask, uncertainty=False)
    assert result.gain.volume_mm3 == pytest.approx(pre.true_volume_mm3 - post.true_volume_mm3, rel=0.03)
    assert result.provenance["inputs"]["stable"]["file"] == "stable.ply"
    assert result.provenance["parameters"]["stable"] == "stable.ply"


# --- Disease-like atrophy, restored in part, in full and beyond (issue 12) --------------------------------------

@pytest.fixture(scope="module")
def template_natural():
    base = datasets.load_sample("template")
    return base, analyze_scan(base, affected="left", uncertainty=False)


@pytest.fixture(scope="module")
def template_pattern(template_natural):
    """The template carved with a pattern (cached per pattern)."""
    base, _ = template_natural
    cache = {}

    def get(pattern):
        if pattern not in cache:
            cache[pattern] = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
        return cache[pattern]

    return get


#: 60% is run for the multi-zone pattern only (the suite's time); benchmarks/study_compare_patterns.py runs every case.
TEMPLATE_RESTORATIONS = [(p, f) for p in ("multizone", "broad", "midline") for f in (0.3, 0.6, 1.0, 1.2)
                         if f != 0.6 or p == "multizone"]


def follow_up_scan(post, natural, seed):
    """The follow-up as a scanner would give it: a symmetric smile, re-meshed, 0.1 mm noise, moved; with landmarks."""
    v = expression_change(post.vertices_mm, post.faces, natural.symmetry_plane_point_mm, natural.symmetry_plane_normal)
    v, f = subdivide(v, post.faces)
    v = add_noise(v, 0.1, seed=seed)
    landmarks = pseudo_landmarks(post.vertices_mm, post.faces)
    rot, trans = random_rigid(20 + seed)
    return as_scan(move(v, rot, trans), f, "post"), {k: move(p[None], rot, trans)[0] for k, p in landmarks.items()}


@pytest.mark.parametrize("pattern,fraction", TEMPLATE_RESTORATIONS)
def test_pattern_restoration_on_the_template(template_natural, template_pattern, pattern, fraction):
    """Every pattern, 30-100% restored and 20% overcorrected (an overfilled groove bulges over the hollow)."""
    natural, pre = template_natural[1], template_pattern(pattern)
    post = pre.restored(fraction)
    scan, landmarks = follow_up_scan(post, natural, seed=int(10 * fraction))
    r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), scan, affected="left", landmarks_post=landmarks, uncertainty=False)
    log.info("template %s %.0f%% restored: gain %.0f mm3 (truth %.0f, %+.1f %%), defect corrected %.1f %% "
             "(truth %.0f), baseline defect %.0f (truth %.0f), registration RMS %.3f mm, %.0f%% of samples moved",
             pattern, 100 * fraction, r.gain.volume_mm3, post.true_gain_mm3,
             100 * (r.gain.volume_mm3 / post.true_gain_mm3 - 1),
             r.defect_corrected_percent, 100 * fraction, r.defect_volume_pre_mm3, pre.true_volume_mm3,
             r.registration_rms_mm, 100 * r.provenance["parameters"]["moved_share"])
    assert r.gain.volume_mm3 == pytest.approx(post.true_gain_mm3, rel=0.05)
    assert r.defect_corrected_percent == pytest.approx(100 * fraction, abs=5.0)
    assert r.registration_rms_mm < 0.3


@pytest.fixture(scope="module")
def humface_natural():
    from pathlib import Path

    base = load_scan(Path(__file__).parents[1] / "data" / "humface.ply")
    return base, analyze_scan(base, affected="left", uncertainty=False)


@pytest.mark.parametrize("pattern,fraction", [("multizone", 0.3), ("multizone", 0.6), ("broad", 0.3)])
def test_pattern_restoration_on_a_real_face(humface_natural, pattern, fraction):
    """The other faces and the midline pattern: ``benchmarks/study_compare_patterns.py`` (table in the README)."""
    base, natural = humface_natural
    pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
    post = pre.restored(fraction)
    scan, landmarks = follow_up_scan(post, natural, seed=int(10 * fraction))
    r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), scan, affected="left", landmarks_post=landmarks, uncertainty=False)
    log.info("humface %s %.0f%% restored: gain %.0f mm3 (truth %.0f, %+.1f %%), defect corrected %.1f %% "
             "(of a baseline defect %.0f mm3 that includes the face's own asymmetry; carved %.0f)", pattern,
             100 * fraction, r.gain.volume_mm3, post.true_gain_mm3, 100 * (r.gain.volume_mm3 / post.true_gain_mm3 - 1),
             r.defect_corrected_percent, r.defect_volume_pre_mm3, pre.true_volume_mm3)
    assert r.gain.volume_mm3 == pytest.approx(post.true_gain_mm3, rel=0.08)


#: A face region that holds the whole of every carved pattern (the default's 130 x 75/80 x 80 mm misses the
#: temple's lateral part and, on humface, the part more than 80 mm behind pronasale).
WHOLE_CARVING_REGION = dict(width_mm=160.0, above_mm=90.0, below_mm=95.0, depth_mm=110.0)


@pytest.mark.parametrize("face,pattern,fraction", [("template", "multizone", 0.3), ("template", "broad", 1.0),
                                                   ("humface", "multizone", 0.3), ("humface", "broad", 1.0)])
def test_clean_gain_with_the_whole_carving_in_the_region(template_natural, humface_natural, face, pattern, fraction):
    """The method's own error, apart from the region's coverage and the scanner: the follow-up exactly as
    restored (same mesh and pose, no noise, no smile) and a face region that holds the whole carving.

    Measured (``python benchmarks/study_compare_coverage.py``): within 0.5% on every multi-zone and
    broad case of the five faces, where the default region reads -0.4 to -4.9% (the part of the carving
    it does not hold).
    """
    from hemiface.scan import FaceRegion

    base = (template_natural if face == "template" else humface_natural)[0]
    pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
    post = pre.restored(fraction)
    gains = {}
    for name, region in (("default", FaceRegion()), ("whole", FaceRegion(**WHOLE_CARVING_REGION))):
        r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(post.vertices_mm, post.faces, "post"),
                          affected="left", region=region, uncertainty=False)
        gains[name] = r.gain.volume_mm3
    log.info("%s %s %.0f%% restored, clean: gain %+.1f%% of the truth %.0f mm3 with the whole carving in the region "
             "(default region %+.1f%%)", face, pattern, 100 * fraction, 100 * (gains["whole"] / post.true_gain_mm3 - 1),
             post.true_gain_mm3, 100 * (gains["default"] / post.true_gain_mm3 - 1))
    assert gains["whole"] == pytest.approx(post.true_gain_mm3, rel=0.01)


#: Measured (``python benchmarks/study_compare_coverage.py`` gives the errors without the SDs): the clean
#: multi-zone and broad cases of the five faces, with the default region, lie within 2 of
#: ``volume_gain_uncertainty_mm3`` in 9 of 10 (|z| 0.42-1.39); the miss is held here.
EDGE_SD_MISSES = {("humface", "multizone"): "the gain reads 597 mm3 short of the exact 15,000 for an SD of 265 "
                                           "(z -2.25): the region (its depth limit behind the temple, README) cuts "
                                           "off 525 mm3 where 530 lie within 5 mm inside its edge, of which the rule "
                                           "takes half as 1 SD"}


@pytest.mark.parametrize("face,pattern", [
    pytest.param(f, p, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=EDGE_SD_MISSES[(f, p)]))
    if (f, p) in EDGE_SD_MISSES else (f, p)
    for f in ("template", "humface") for p in ("multizone", "broad")])
def test_gain_sd_holds_what_the_region_edge_cuts_off(template_natural, humface_natural, face, pattern, caplog):
    """``volume_gain_uncertainty_mm3`` on the clean, fully restored follow-up with the default region, whose
    error is what the region does not hold: within 2 SDs of the exact gain, the SD mostly the edge's; and a
    warning says the gain reaches the region's edge."""
    base = (template_natural if face == "template" else humface_natural)[0]
    pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
    post = pre.restored(1.0)
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(post.vertices_mm, post.faces, "post"),
                          affected="left")
    assert any("gain reaches the face region's edge" in m for m in caplog.messages)
    assert "gain_reaches_region_edge" in r.flags and r.to_dict()["flags"] == ["gain_reaches_region_edge"]
    err = r.gain.volume_mm3 - post.true_gain_mm3
    log.info("%s %s clean, default region: gain error %+.0f mm3, SD %.0f (registration %.0f, region edge %.0f): "
             "z %+.2f; discrepancy change error %+.0f, SD %.0f", face, pattern, err, r.volume_gain_uncertainty_mm3,
             r.volume_gain_registration_sd_mm3, r.volume_gain_edge_sd_mm3, err / r.volume_gain_uncertainty_mm3,
             r.discrepancy_change_mm3 + post.true_gain_mm3, r.discrepancy_change_uncertainty_mm3)
    assert r.volume_gain_uncertainty_mm3 == pytest.approx(np.hypot(r.volume_gain_registration_sd_mm3,
                                                                   r.volume_gain_edge_sd_mm3))
    assert r.volume_gain_edge_sd_mm3 > 10 * r.volume_gain_registration_sd_mm3  # same mesh, same pose
    assert abs(err) <= 2.0 * r.volume_gain_uncertainty_mm3
    assert abs(r.discrepancy_change_mm3 + post.true_gain_mm3) <= 2.0 * r.discrepancy_change_uncertainty_mm3


def test_a_gain_well_inside_the_region_has_no_edge_sd(template_series, caplog):
    """A round dent 5,000 -> 2,000 mm3 on the cheek, far from the region's edge: no edge SD to speak of, no warning."""
    base, pre = template_series
    partial = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=2000.0, **SITE)
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"),
                          as_scan(partial.vertices_mm, partial.faces, "post"), affected="left")
    log.info("round dent 3,000 mm3 restored: gain %.0f mm3 +/- %.0f (registration %.1f, region edge %.1f)",
             r.gain.volume_mm3, r.volume_gain_uncertainty_mm3, r.volume_gain_registration_sd_mm3,
             r.volume_gain_edge_sd_mm3)
    assert r.volume_gain_edge_sd_mm3 < 0.002 * r.gain.volume_mm3
    assert not any("region's edge" in m for m in caplog.messages)
    assert r.flags == ()


@pytest.mark.parametrize("seed", [3, 5])
def test_scanner_noise_adds_no_gain(template_natural, seed):
    """0.1 mm of noise on every follow-up vertex (not re-meshed first: twice the change map's noise of the
    scanner case above) around a small gain: the midline pattern 30% restored, 739 mm3.

    The gain is the signed integral over its area, so noise inside adds nothing on average; integrating
    only the positive part down to the noisy gain's own rim read +19 and +20% here.
    """
    base, _ = template_natural
    pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern="midline", side="left")
    post = pre.restored(0.3)
    noisy = as_scan(add_noise(post.vertices_mm, 0.1, seed=seed), post.faces, "post")
    r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), noisy, affected="left", uncertainty=False)
    log.info("noise seed %d: gain %.0f mm3 (truth %.0f, %+.1f %%), loss %.0f, change-map noise %.3f mm", seed,
             r.gain.volume_mm3, post.true_gain_mm3, 100 * (r.gain.volume_mm3 / post.true_gain_mm3 - 1),
             r.loss.volume_mm3, r.provenance["parameters"]["change_noise_mm"])
    assert r.gain.volume_mm3 == pytest.approx(post.true_gain_mm3, rel=0.08)
    assert r.defect_corrected_percent == pytest.approx(30.0, abs=2.0)
    # Noise neither spreads the gained area nor adds to it: the support starts above the smoothed map's own
    # noise (until 2026-12-03 above 0, and grown by its margin it spread over the hemiface: seed 3 read
    # 6,214 mm2 for the clean follow-up's 2,546, and +3.3% on the clean gain).
    clean = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"), as_scan(post.vertices_mm, post.faces, "post"),
                          affected="left", uncertainty=False)
    log.info("noise seed %d: gained area %.0f mm2 (clean follow-up %.0f), gain %+.1f %% of the clean one", seed,
             r.gain.area_mm2, clean.gain.area_mm2, 100 * (r.gain.volume_mm3 / clean.gain.volume_mm3 - 1))
    assert r.gain.area_mm2 == pytest.approx(clean.gain.area_mm2, rel=0.15)
    assert r.gain.volume_mm3 == pytest.approx(clean.gain.volume_mm3, rel=0.03)


def test_change_noise_is_the_scans_not_the_grafts(template_natural):
    """The change map's noise (``change_noise_mm``, which sets the gain floor and the support's level) is a
    property of the follow-up scan: the same 0.1 mm of noise reads the same whatever was restored.

    Read on the net map's stable areas, as until 2026-12-03, it held the change itself (the multi-zone
    pattern's forehead and temple, and the unaffected side's mirror image of every gain): 0.22 mm at 30%
    restored, which raised the floor to 0.88 mm.
    """
    base, _ = template_natural
    pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern="multizone", side="left")
    noise = {}
    for fraction in (0.0, 0.3, 1.0):
        post = pre.restored(fraction) if fraction else pre
        r = compare_scans(as_scan(pre.vertices_mm, pre.faces, "pre"),
                          as_scan(add_noise(post.vertices_mm, 0.1, seed=3), post.faces, "post"),
                          affected="left", uncertainty=False)
        noise[fraction] = r.provenance["parameters"]["change_noise_mm"]
        log.info("multizone %.0f%% restored, 0.1 mm of noise: change-map noise %.4f mm, gain floor %.2f mm, "
                 "support level %.4f mm", 100 * fraction, noise[fraction], r.provenance["parameters"]["gain_floor_mm"],
                 r.provenance["parameters"]["gain_support_level_mm"])
    assert noise[0.0] > 0.01
    assert noise[0.3] == pytest.approx(noise[0.0], rel=0.1)
    assert noise[1.0] == pytest.approx(noise[0.0], rel=0.1)


def test_registration_sd_is_the_registrations_error(template_natural, template_pattern):
    """``volume_gain_registration_sd_mm3`` against what the registration does to the gain: the multi-zone
    pattern 30% restored (4,376 mm3, a broad gain: about 10 mm3 per micrometre of lateral shift), followed
    up with 0.1 mm of noise at ten random poses, landmarks given. Reference: the same follow-up without
    noise, unmoved, which registers exactly; the method's own error is in both and drops out.

    At least 9 of the 10 within 2 reported SDs, and the SD of the ten gains within a factor of 2 of the
    mean reported SD (neither hidden nor inflated).
    """
    pre = template_pattern("multizone")
    post = pre.restored(0.3)
    pre_scan = as_scan(pre.vertices_mm, pre.faces, "pre")
    clean = compare_scans(pre_scan, as_scan(post.vertices_mm, post.faces, "post"), affected="left")
    assert clean.volume_gain_registration_sd_mm3 < 5.0
    landmarks = pseudo_landmarks(post.vertices_mm, post.faces)
    errors, sds = [], []
    for seed in range(10):
        rot, trans = random_rigid(30 + seed)
        noisy = move(add_noise(post.vertices_mm, 0.1, seed=seed), rot, trans)
        r = compare_scans(pre_scan, as_scan(noisy, post.faces, "post"), affected="left",
                          landmarks_post={k: move(p[None], rot, trans)[0] for k, p in landmarks.items()})
        errors.append(r.gain.volume_mm3 - clean.gain.volume_mm3)
        sds.append(r.volume_gain_registration_sd_mm3)
        log.info("seed %d: gain %.0f mm3 (noise-free, unmoved %.0f; exact %.0f), %+.0f = %+.2f reported SDs of "
                 "%.1f mm3; registration SD %.4f mm, defect corrected %.1f +/- %.2f %%", seed, r.gain.volume_mm3,
                 clean.gain.volume_mm3, post.true_gain_mm3, errors[-1], errors[-1] / sds[-1], sds[-1],
                 r.registration_sd_mm, r.defect_corrected_percent, r.defect_corrected_registration_sd_percent)
    errors, sds = np.array(errors), np.array(sds)
    covered = int(np.sum(np.abs(errors) <= 2 * sds))
    log.info("registration SD: %d of 10 within 2 SDs; SD of the gains %.1f mm3 against a mean reported SD of "
             "%.1f mm3 (ratio %.2f)", covered, errors.std(ddof=1), sds.mean(), errors.std(ddof=1) / sds.mean())
    assert covered >= 9
    assert 0.5 <= errors.std(ddof=1) / sds.mean() <= 2.0
