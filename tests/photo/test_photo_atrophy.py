"""Simulated atrophy: one hemiface of a real photo warped toward the midline by a known factor.

A thin-plate-spline warp moves the detected outline of the patient's left
hemiface to (1 - f) times its distance from the pupils midline, keeps the right
hemiface's outline, the midline points and the image border fixed, and bends
everything in between smoothly. Truth is the area ratio of the warped outline
(the control points themselves) about the midline through the warped pupils.
Spec: the measured ratio falls monotonically with f and agrees with the truth
within 2 points.

Two kinds of atrophy: the whole hemiface compressed (eyes, nose and mouth move
with it), and the contour only (eye corners, pupils, brows, alar bases, mouth
corners held fixed: the soft-tissue contour sinks while the features stay, which
a face-shape model alone follows poorly).
"""

import logging

import numpy as np
import pytest
from photo_helpers import analysis, photo_rgb, simulate_atrophy, true_ratio

from hemiface.photo import analyze_photo, photo_from_array

log = logging.getLogger(__name__)
FACTORS = (0.05, 0.10, 0.15)
TOLERANCE_POINTS = 2.0


@pytest.mark.parametrize("contour_only", [False, True], ids=["whole_hemiface", "contour_only"])
@pytest.mark.parametrize("name", ["face_recognition_obama.jpg", "face_recognition_biden2.jpg"])
def test_ratio_tracks_simulated_atrophy(name, contour_only):
    base = analysis(name, "left")
    rgb = photo_rgb(name)
    measured, truth = [base.symmetry_ratio_percent], [base.symmetry_ratio_percent]
    for f in FACTORS:
        warped, outline, pupils = simulate_atrophy(rgb, base, f, contour_only=contour_only)
        r = analyze_photo(photo_from_array(warped, name=f"{name}-atrophy{f}"), affected="left")
        measured.append(r.symmetry_ratio_percent)
        truth.append(true_ratio(outline, pupils))
        log.info("atrophy (%s) %s f=%.2f: measured %.2f %%, truth %.2f %% (difference %+.2f points)",
                 "contour only" if contour_only else "whole hemiface", name, f, measured[-1], truth[-1],
                 measured[-1] - truth[-1])
    assert all(a > b for a, b in zip(measured, measured[1:])), measured
    assert np.max(np.abs(np.array(measured) - np.array(truth))) <= TOLERANCE_POINTS


def test_compare_reports_the_change_between_visits(tmp_path):
    """Pre: a simulated 15% atrophy of the left hemiface; post: the untouched photo (full correction)."""
    from PIL import Image
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.photo import COMPARE_OUTPUT_NAMES, compare_photos

    name = "face_recognition_obama.jpg"
    base = analysis(name, "left")
    warped, outline, pupils = simulate_atrophy(photo_rgb(name), base, 0.15)
    pre = tmp_path / "pre.png"
    Image.fromarray(warped).save(pre)
    post = tmp_path / "post.png"
    Image.fromarray(photo_rgb(name)).save(post)
    result = compare_photos(pre, post, affected="left")
    truth_change = base.symmetry_ratio_percent - true_ratio(outline, pupils)
    log.info("compare: symmetry ratio change %+.2f points (truth %+.2f)", result.change["symmetry_ratio_percent"], truth_change)
    assert result.change["symmetry_ratio_percent"] == pytest.approx(truth_change, abs=TOLERANCE_POINTS)
    assert result.change["symmetry_ratio_percent"] == pytest.approx(
        result.post.symmetry_ratio_percent - result.pre.symmetry_ratio_percent)
    logging.getLogger("hemiface").propagate = False  # see test_photo_outputs._Runner
    try:
        cli = CliRunner().invoke(app, ["photo", "compare", str(pre), str(post), "--affected", "left",
                                       "--out", str(tmp_path / "cmp")])
    finally:
        logging.getLogger("hemiface").propagate = True
    assert cli.exit_code == 0, cli.output
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == sorted(COMPARE_OUTPUT_NAMES)
    assert "symmetry_ratio_percent" in cli.output
    auto = CliRunner().invoke(app, ["photo", "compare", str(pre), str(post), "--affected", "auto"])
    assert auto.exit_code == 2  # a comparison needs the side stated
