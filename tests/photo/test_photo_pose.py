"""Head pose and the 2D symmetry ratio (issue 13): renders at known poses, the London set, atrophy seen turned.

Truth:
(a) the textured james and Lee Perry-Smith scans, turned to face the camera and rendered at yaw and
    pitch -10 ... +10 degrees: the face does not change, so neither should a pose-free ratio;
(b) the 30 Face Research Lab London photos (normal adults) with the set's own delineated templates;
(c) a scan with its left side compressed by a known smooth warp, rendered frontal and turned: the
    known ratio is the warp applied to the unwarped frontal render's outline.

Each test logs its per-case table at INFO. Targets the method does not reach are
``xfail(strict=True)`` with the measured figure in the reason: they fail the suite
the day they are met, so the reason is updated.
"""

import logging

import numpy as np
import pytest
from pose_validation import (
    ATROPHY_FACTOR, CUES, LEVELS, SCAN_NAMES, atrophy_table, cue_table, deviation_from_frontal, format_rows,
    known_pose_table, london_atrophy_table, london_table, render_table,
)

log = logging.getLogger(__name__)
RENDER_KEYS = ["scan", "render_yaw_deg", "render_pitch_deg", "yaw_deg", "pitch_deg", "ratio", "ratio_compensated",
               "contour_mouth", "contour_mouth_compensated", "contour_jaw", "contour_jaw_compensated",
               "landmark_ratio", "landmark_ratio_compensated"]
COMPENSATED = ["ratio_compensated", "landmark_ratio_compensated"] + [f"contour_{lv}_compensated" for lv in LEVELS]


@pytest.fixture(scope="module", params=SCAN_NAMES)
def renders(request):
    rows = render_table(request.param)
    log.info("renders of %s at known poses:\n%s", request.param, format_rows(rows, RENDER_KEYS))
    return rows


def test_uncompensated_ratio_follows_yaw(renders):
    """The failure issue 13 reports, reproduced: about 2 points per degree of yaw."""
    yaw_rows = [r for r in renders if r["render_pitch_deg"] == 0]
    slope = np.polyfit([r["render_yaw_deg"] for r in yaw_rows], [r["ratio"] for r in yaw_rows], 1)[0]
    log.info("%s: uncompensated ratio %.2f points per degree of yaw", renders[0]["scan"], slope)
    assert slope < -1.5


def test_reported_pose_follows_the_render(renders):
    """The pose every photo reports (and compare_photos differences) moves with the head: the yaw and
    pitch read from the face mesh change by the render's turn within 25% and 3 degrees."""
    frontal = renders[0]
    for r in renders[1:]:
        for axis in ("yaw", "pitch"):
            true = r[f"render_{axis}_deg"] - frontal[f"render_{axis}_deg"]
            got = r[f"{axis}_deg"] - frontal[f"{axis}_deg"]
            assert abs(got - true) <= max(3.0, 0.25 * abs(true)), (axis, r["render_yaw_deg"], r["render_pitch_deg"], got)


def test_compensation_removes_most_of_the_yaw_effect(renders):
    """Pose compensation at least halves the largest change of the hemiface-area ratio over the renders."""
    before, after = deviation_from_frontal(renders, "ratio"), deviation_from_frontal(renders, "ratio_compensated")
    log.info("%s: largest change over poses: uncompensated %.1f, compensated %.1f points",
             renders[0]["scan"], before, after)
    assert after < 0.5 * before


@pytest.mark.xfail(strict=True, reason=(
    "not reached: largest change of a compensated ratio from the frontal render over yaw and pitch -10..+10 "
    "measured 4.8 (hemiface-area ratio) to 18.9 points (contour and landmark ratios) on james and 8.4 to "
    "20.5 points on Lee Perry-Smith (uncompensated area ratio: 30.1 and 48.1); target 1 point"))
def test_compensated_ratios_within_1_point_of_frontal(renders):
    worst = {k: deviation_from_frontal(renders, k) for k in COMPENSATED}
    log.info("%s: largest change from frontal per compensated ratio: %s", renders[0]["scan"],
             {k: round(v, 1) for k, v in worst.items()})
    assert max(worst.values()) <= 1.0


# ---- (b) the London set ----------------------------------------------------------------------------

LONDON_KEYS = ["photo", "yaw_deg", "pitch_deg", "ratio", "ratio_compensated", "template_ratio",
               "landmark_error_ipd", "contour_mouth", "template_contour_mouth", "contour_jaw", "template_contour_jaw",
               "contour_mouth_compensated", "template_contour_mouth_compensated",
               "contour_jaw_compensated", "template_contour_jaw_compensated", "outline_error_ipd",
               "chorded_contour_jaw"]


@pytest.fixture(scope="module")
def london():
    rows = london_table()
    log.info("London set, 30 normal adults:\n%s", format_rows(rows, LONDON_KEYS))
    return rows


def _stats(rows, key):
    v = np.array([r[key] for r in rows])
    yaw = np.array([r["yaw_deg"] for r in rows])
    return float(v.std(ddof=1)), float(np.corrcoef(v, yaw)[0, 1])


def test_london_landmarks_agree_with_the_templates(london):
    err = np.array([r["landmark_error_ipd"] for r in london])
    log.info("London: landmark error %.2f%% of the IPD on average (max %.2f%%)", 100 * err.mean(), 100 * err.max())
    assert len(london) == 30
    assert err.mean() < 0.03


def test_london_outline_passes_through_the_delineated_points(london):
    """The template's 11 lower-outline points (ear lobe over the chin to ear lobe) lie within 3% of the IPD of
    hemiface's outline on average, the landmarks' criterion (1.81% measured; the chin's three points 2.5-3.5%)."""
    err = np.array([r["outline_error_ipd"] for r in london])
    log.info("London: the template's lower-outline points lie %.2f%% of the IPD from hemiface's outline on average "
             "(worst photo %.2f%%)", 100 * err.mean(), 100 * err.max())
    assert err.mean() < 0.03


_JAW_XFAIL = pytest.mark.xfail(strict=True, reason=(
    "not reached: at the jaw level hemiface's outline gives contour ratios 4.2 (uncompensated) and 4.7 "
    "(compensated) points from the template outline's on average (MediaPipe's unrefined oval 2.8); target 2 points. "
    "A lower-face rule preferring edges darker outside read 2.4 but broke the 1-point scale invariance on a bearded "
    "photo (README, sixth pass). Part of it is the truth's: the template joins 11 points by straight chords "
    "that cut across the jaw angle; hemiface's outline read at the template's points and chorded the same way is "
    "2.06 points from it, and the chords alone move hemiface's jaw ratio by 2.65 points (README, eighth pass)"))


@pytest.mark.parametrize("suffix", ["", "_compensated"])
@pytest.mark.parametrize("level", ["mouth", pytest.param("jaw", marks=_JAW_XFAIL)])
def test_london_contour_ratios_agree_with_the_templates(london, level, suffix):
    """The same ratio measured on hemiface's outline and on the set's delineated outline (hemiface's
    points: the same levels and midline, so only the outlines differ)."""
    d = np.array([r[f"contour_{level}{suffix}"] - r[f"template_contour_{level}{suffix}"] for r in london])
    log.info("London: contour ratio%s at the %s level %.2f points from the template's on average (max %.2f)",
             suffix, level, np.abs(d).mean(), np.abs(d).max())
    if not suffix:
        chord = np.array([r[f"chorded_contour_{level}"] - r[f"template_contour_{level}"] for r in london])
        log.info("London: hemiface's outline at the template's points, chorded as the template is: %.2f points",
                 np.abs(chord).mean())
    assert np.abs(d).mean() <= 2.0


def test_london_uncompensated_ratio_spread_is_mostly_pose(london):
    sd, corr = _stats(london, "ratio")
    log.info("London: uncompensated ratio SD %.2f points, correlation with yaw %.2f", sd, corr)
    assert corr < -0.5


def test_london_compensated_ratio_is_pose_free(london):
    """Met, with a caveat: the face mesh's yaw also absorbs part of a face's own asymmetry (see the atrophy
    test below), so part of this smaller spread is natural asymmetry removed along with the pose."""
    sd, corr = _stats(london, "ratio_compensated")
    log.info("London: compensated ratio SD %.2f points, correlation with yaw %.2f", sd, corr)
    assert sd <= 3.5 and abs(corr) < 0.3


# ---- (c) simulated atrophy seen turned -------------------------------------------------------------

ATROPHY_KEYS = ["scan", "render_yaw_deg", "render_pitch_deg", "known_ratio", "unwarped_frontal_ratio",
                "ratio", "ratio_compensated", "yaw_deg"]


@pytest.fixture(scope="module", params=SCAN_NAMES)
def atrophy(request):
    rows = atrophy_table(request.param)
    log.info("%s with its left side compressed by %.0f%%:\n%s", request.param, 100 * ATROPHY_FACTOR,
             format_rows(rows, ATROPHY_KEYS))
    return rows


@pytest.mark.xfail(strict=True, reason=(
    "not reached: the face mesh reads a one-sided compression as a head turn (james: frontal yaw 2.0 -> 4.7 "
    "degrees), so the compensated ratio hides the atrophy: measured 104.9-108.1 % on james (known 96.6 %) "
    "and 97.9-110.1 % on Lee Perry-Smith (known 100.4 %); target within 2 points"))
def test_compensated_ratio_recovers_atrophy_seen_turned(atrophy):
    for r in atrophy:
        assert abs(r["ratio_compensated"] - r["known_ratio"]) <= 2.0, r


# ---- (c) on the London photos: simulated atrophy at each photo's own (real) head pose --------------------

LONDON_ATROPHY_KEYS = ["photo", "yaw_deg", "yaw_warped_deg", "known_ratio", "ratio", "known_change", "change",
                       "change_compensated"]


def _london_atrophy(contour_only: bool) -> tuple:
    first = (contour_only,) not in _LOGGED
    rows = london_atrophy_table(contour_only=contour_only)
    if first:
        _LOGGED.add((contour_only,))
        log.info("London set with 10%% of the left hemiface drawn in (%s):\n%s",
                 "contour only" if contour_only else "whole hemiface", format_rows(rows, LONDON_ATROPHY_KEYS))
    return rows


_LOGGED: set = set()
_KINDS = {False: "whole hemiface", True: "contour only"}


_CONTOUR_ONLY_MISS = pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "not reached with the contour alone drawn in (features held): mean |error| 1.32 points (mean +1.14: too "
    "little of the change) but 9 of 30 photos beyond 2 (011, 031, 041, 066 read 3.6-4.5 points too little; 031, 041 "
    "and 096 are photos whose jaw the outline misses, README)"))


@pytest.mark.parametrize("contour_only", [False, pytest.param(True, marks=_CONTOUR_ONLY_MISS)], ids=_KINDS.get)
def test_london_simulated_atrophy_is_measured(contour_only):
    """The primary (uncompensated) ratio of each warped London photo within 2 points of its known ratio, as
    ``test_photo_atrophy.py`` asks on two photos (met for the whole hemiface: largest 0.95 points)."""
    rows = _london_atrophy(contour_only)
    err = np.array([r["ratio"] - r["known_ratio"] for r in rows])
    log.info("London, %s: ratio - known ratio mean %+.2f, mean |.| %.2f, max |.| %.2f points (%d of %d beyond 2)",
             _KINDS[contour_only], err.mean(), np.abs(err).mean(), np.abs(err).max(), (np.abs(err) > 2).sum(),
             len(rows))
    assert np.abs(err).max() <= 2.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "not reached: the face mesh reads the drawn-in hemiface as a head turn (its yaw moves +2.4 degrees on "
    "average, whole hemiface; +2.7 contour only), so the compensated ratio keeps only part of the known change: "
    "on average 0.8 of 5.8 points (whole hemiface) and 3.2 of 10.1 (contour only); target within 2 points on "
    "every photo"))
@pytest.mark.parametrize("contour_only", [False, True], ids=_KINDS.get)
def test_london_compensated_ratio_keeps_the_atrophy(contour_only):
    rows = _london_atrophy(contour_only)
    miss = np.array([r["change_compensated"] - r["known_change"] for r in rows])
    log.info("London, %s: compensated change - known change mean %+.2f, max |.| %.2f points", _KINDS[contour_only],
             miss.mean(), np.abs(miss).max())
    assert np.abs(miss).max() <= 2.0


# ---- (d) what limits the compensation: the pose cues and the depth model, each on its own -------------
# Issue 13's second pass: pose cues a one-sided change should not fake (a symmetry plane from the mirror
# pairs' 3D differences, the same restricted to eyes/brows/nose, the nose's offset from the eye corners) and
# the compensation with the render's known rotation in place of any estimate.

@pytest.fixture(scope="module", params=SCAN_NAMES)
def cues(request):
    rows = cue_table(request.param)
    keys = ["scan", "render_yaw_deg", "render_pitch_deg"] + [f"{k}_{c}" for c in CUES for k in ("turn", "compression")]
    log.info("%s: yaw cues, change over the turn and shift by the %.0f%% compression (degrees):\n%s",
             request.param, 100 * ATROPHY_FACTOR, format_rows(rows, keys))
    return rows


def test_mesh_pose_cues_follow_the_turn(cues):
    """The 3D cues (mesh axes, symmetry planes) follow the render's yaw within 1.5 degrees."""
    for r in cues:
        for c in ("mesh_axes", "symmetry_plane", "symmetry_plane_upper_inner"):
            assert abs(r[f"turn_{c}"] - r["render_yaw_deg"]) <= 1.5, (c, r)


@pytest.mark.xfail(strict=True, reason=(
    "not reached: every cue from the face mesh reads the 10% one-sided compression as a turn: largest shift "
    "over the frontal and turned views 3.3 (mesh axes), 3.0 (symmetry plane of all mirror pairs), 3.0 "
    "(eyes/brows/nose pairs), 4.2 degrees (nose offset) on james and 4.5, 3.5, 3.4, 6.5 on Lee Perry-Smith "
    "(never below 1.5 degrees at any pose); "
    "target 0.5 degree (about 1.5 points of ratio)"))
def test_some_pose_cue_is_not_moved_by_the_compression(cues):
    worst = {c: max(abs(r[f"compression_{c}"]) for r in cues) for c in CUES}
    log.info("%s: largest shift of each yaw cue by the compression: %s", cues[0]["scan"],
             {c: round(v, 2) for c, v in worst.items()})
    assert min(worst.values()) <= 0.5


@pytest.fixture(scope="module", params=SCAN_NAMES)
def known_pose(request):
    rows = known_pose_table(request.param)
    keys = ["scan", "case", "render_yaw_deg", "render_pitch_deg", "known_ratio", "ratio_known_pose",
            "ratio_exact_surface", "landmark_ratio_known_pose"] + [f"contour_{lv}_known_pose" for lv in LEVELS]
    log.info("%s: compensation at the KNOWN pose (depth model alone; exact_surface: exact depth too):\n%s",
             request.param, format_rows(rows, keys))
    return rows


@pytest.mark.xfail(strict=True, reason=(
    "not reached even with the render's known rotation (the depth model alone: mesh depths and the face "
    "oval's depth for the outline): largest change of the hemiface-area ratio from the frontal render "
    "3.2-3.4 points on james and 8.8-9.0 on Lee Perry-Smith; compressed scan 2.2-2.4 and 6.4-7.8 points from "
    "its known ratio (ranges over two machines: MediaPipe's float results and so the refined outline differ "
    "slightly by CPU); targets 1 and 2 points"))
def test_compensation_at_the_known_pose(known_pose):
    dev = deviation_from_frontal([r for r in known_pose if r["case"] == "render"], "ratio_known_pose")
    err = max(abs(r["ratio_known_pose"] - r["known_ratio"]) for r in known_pose if r["case"] == "atrophy")
    log.info("%s at the known pose: largest change from frontal %.1f points; compressed: %.1f from known",
             known_pose[0]["scan"], dev, err)
    assert dev <= 1.0 and err <= 2.0


@pytest.mark.xfail(strict=True, reason=(
    "not reached: with the exact pose AND each detected point's exact surface point (ray cast into the scan), "
    "the hemiface-area ratio still changes by up to 7.8 points from the frontal render on james and 10.1 on "
    "Lee Perry-Smith (the depth model at the known pose: 3.4 and 8.8): the outline found at each pose is "
    "another physical curve (at 10 degrees of yaw the near side's follows the ear), so no depth model can "
    "bring it to 1 point; target 1 point"))
def test_exact_lift_of_the_detected_outline(known_pose):
    """What the outline detection alone leaves: every depth and the pose exact (the scan's own surface)."""
    renders = [r for r in known_pose if r["case"] == "render"]
    dev = deviation_from_frontal(renders, "ratio_exact_surface")
    log.info("%s, exact pose and exact surface depth: largest change from frontal %.1f points (depth model at the "
             "known pose: %.1f)", known_pose[0]["scan"], dev, deviation_from_frontal(renders, "ratio_known_pose"))
    assert dev <= 1.0


# ---- pose agreement between visits -----------------------------------------------------------------

def test_compare_reports_and_flags_the_pose_difference(tmp_path):
    """Two renders of one face 6 degrees of yaw apart: compare_photos reports both poses, their difference
    (about +6 degrees of yaw, little pitch or roll) and flags the pair at the default 3 degree limit, not at
    10; the command line prints it and takes the limit as an option."""
    from PIL import Image
    from pose_renders import render
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.photo import MAX_POSE_DIFFERENCE_DEG, compare_photos, pose_agreement

    pre, post = tmp_path / "pre.png", tmp_path / "post.png"
    Image.fromarray(render("james", 0, 0)).save(pre)
    Image.fromarray(render("james", 6, 0)).save(post)
    result = compare_photos(pre, post, affected="left")
    pose = result.pose
    log.info("compare pose: %s", pose)
    assert MAX_POSE_DIFFERENCE_DEG == 3.0 and pose["max_difference_deg"] == 3.0
    assert pose["pre"]["yaw_deg"] == pytest.approx(result.pre.pose["yaw_deg"])
    assert pose["difference"]["yaw_deg"] == pytest.approx(6.0, abs=1.5)
    assert abs(pose["difference"]["roll_deg"]) < 1.5
    assert pose["differs"] and "yaw_differs_by_more_than_3_deg" in pose["flags"]
    assert result.to_dict()["pose"] == pose
    relaxed = pose_agreement(result.pre.pose, result.post.pose, max_difference_deg=10.0)
    assert not relaxed["differs"] and relaxed["flags"] == []
    same = pose_agreement(result.pre.pose, result.pre.pose)
    assert same["difference"] == {"yaw_deg": 0.0, "pitch_deg": 0.0, "roll_deg": 0.0} and not same["differs"]
    cli = CliRunner().invoke(app, ["photo", "compare", str(pre), str(post), "--affected", "left",
                                   "--max-pose-difference-deg", "10", "--out", str(tmp_path / "cmp")])
    assert cli.exit_code == 0, cli.output
    assert "pose yaw_deg" in cli.output and "POSE DIFFERS" not in cli.output
    cli = CliRunner().invoke(app, ["photo", "compare", str(pre), str(post), "--affected", "left",
                                   "--out", str(tmp_path / "cmp3")])
    assert cli.exit_code == 0 and "POSE DIFFERS" in cli.output
    bad = CliRunner().invoke(app, ["photo", "compare", str(pre), str(post), "--affected", "left",
                                   "--max-pose-difference-deg", "-1"])
    assert bad.exit_code == 1
