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
from photo_helpers import analysis, photo_rgb

from hemiface.photo import analyze_photo, photo_from_array
from hemiface.photo._geometry import Frame, hemiface_polygons, polygon_area, pupils_midline

log = logging.getLogger(__name__)
FACTORS = (0.05, 0.10, 0.15)
TOLERANCE_POINTS = 2.0


def _tps(src, dst):
    from scipy.interpolate import RBFInterpolator

    return RBFInterpolator(np.asarray(src, float), np.asarray(dst, float), kernel="thin_plate_spline")


def _border_points(w, h, step=80):
    xs, ys = np.arange(0, w + 1, step), np.arange(step, h, step)  # corners once only
    return np.vstack([np.column_stack([xs, np.zeros_like(xs)]), np.column_stack([xs, np.full_like(xs, h)]),
                      np.column_stack([np.zeros_like(ys), ys]), np.column_stack([np.full_like(ys, w), ys])]).astype(float)


#: Features held in place for contour-only atrophy.
INTERIOR = ("pupil_right", "pupil_left", "exocanthion_right", "exocanthion_left", "endocanthion_right",
            "endocanthion_left", "alar_base_right", "alar_base_left", "cheilion_right", "cheilion_left",
            "brow_peak_right", "brow_peak_left", "pronasale")


def simulate_atrophy(rgb, base, factor, *, contour_only=False):
    """Warped image, warped outline and warped pupils for a compression ``factor`` of the left hemiface."""
    import cv2

    lm, frame = base.landmarks, base.frame
    uv = frame.uv(lm.outline)
    moved_uv = uv.copy()
    left = uv[:, 0] > 0
    moved_uv[left, 0] *= 1.0 - factor
    h, w = rgb.shape[:2]
    held = ("nasion", "subnasale", "stomion") + (INTERIOR if contour_only else ())
    fixed = np.vstack([_border_points(w, h)] + [lm[n][None] for n in held])
    src = np.vstack([lm.outline, fixed])
    dst = np.vstack([frame.px(moved_uv), fixed])
    forward, inverse = _tps(src, dst), _tps(dst, src)
    # Inverse map on a coarse grid (the field is smooth), upsampled to every pixel.
    step = 8
    gx, gy = np.meshgrid(np.arange(0, w + step, step) + 0.5, np.arange(0, h + step, step) + 0.5)
    coarse = inverse(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape + (2,))
    # Coarse sample k sits at pixel centre k * step + 0.5, i.e. at fine index k * step.
    from scipy.ndimage import map_coordinates

    fy, fx = np.meshgrid(np.arange(h) / step, np.arange(w) / step, indexing="ij")
    mx = map_coordinates(coarse[..., 0], [fy, fx], order=1, mode="nearest").astype(np.float32)
    my = map_coordinates(coarse[..., 1], [fy, fx], order=1, mode="nearest").astype(np.float32)
    warped = cv2.remap(rgb, mx - 0.5, my - 0.5, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    pupils = forward(np.vstack([lm["pupil_right"], lm["pupil_left"]]))
    return warped, frame.px(moved_uv), pupils


def true_ratio(outline_px, pupils):
    frame = Frame.from_pupils(pupils[0], pupils[1])
    parts = hemiface_polygons(frame.uv(outline_px), pupils_midline())
    return 100.0 * polygon_area(parts["left"]) / polygon_area(parts["right"])


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
