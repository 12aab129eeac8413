"""Geometry against constructed truth: polygon split, contour widths, pose recovery."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hemiface.photo import FaceLandmarks
from hemiface.photo._geometry import (
    POSE_TEMPLATE, Frame, Midline, clip_half_plane, contour_widths, fit_pose, hemiface_polygons, polygon_area,
)


def test_half_plane_clip_of_a_rectangle():
    rect = np.array([[-30.0, -10], [50, -10], [50, 90], [-30, 90]])
    parts = hemiface_polygons(rect, Midline(0.0, 0.0, "pupils"))
    assert polygon_area(parts["left"]) == pytest.approx(50 * 100)
    assert polygon_area(parts["right"]) == pytest.approx(30 * 100)
    # A slanted midline u = 10 + 0.2 v: left part is a trapezoid.
    line = Midline(10.0, 0.2, "fitted")
    left = clip_half_plane(rect, line.signed_distance)
    expected = 100 * (50 - 10) - 0.2 * (90 ** 2 - 10 ** 2) / 2
    assert polygon_area(left) == pytest.approx(expected)


def test_contour_widths_of_an_ellipse():
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    ellipse = np.column_stack([60 * np.cos(t) + 5, 80 * np.sin(t)])
    w = contour_widths(ellipse, Midline(0.0, 0.0, "pupils"), 0.0)
    assert w["left"] == pytest.approx(65, abs=0.05) and w["right"] == pytest.approx(55, abs=0.05)


def test_frame_corrects_roll():
    f = Frame.from_pupils([100.0, 100.0], [100 + 60 * np.cos(0.3), 100 + 60 * np.sin(0.3)])
    assert f.roll_deg == pytest.approx(np.degrees(0.3))
    assert f.uv([100 + 60 * np.cos(0.3), 100 + 60 * np.sin(0.3)]) == pytest.approx([30, 0])
    assert np.allclose(f.px(f.uv([[3.0, 4.0]])), [[3.0, 4.0]])


def _projected_template(yaw, pitch, roll, scale=150.0, centre=(400.0, 300.0)):
    """Landmarks of the pose template seen under a known head pose (scaled orthographic)."""
    # Yaw > 0 turns the face toward the patient's left (image right); pitch > 0 is chin down.
    R = Rotation.from_euler("ZYX", [roll, -yaw, -pitch], degrees=True).as_matrix()
    pts = {n: (scale * (R @ np.array(p)))[:2] + np.array(centre) for n, p in POSE_TEMPLATE.items()}
    pts["pupil_right"] = pts["exocanthion_right"] * 0.5 + pts["endocanthion_right"] * 0.5
    pts["pupil_left"] = pts["exocanthion_left"] * 0.5 + pts["endocanthion_left"] * 0.5
    outline = np.array(list(pts.values()))
    return FaceLandmarks({k: list(v) for k, v in pts.items()}, outline[:8], "constructed")


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (8, 0, 0), (-12, 5, 3), (4, -9, -10), (20, 15, 0)])
def test_pose_recovered_from_projected_template(yaw, pitch, roll):
    pose = fit_pose(_projected_template(yaw, pitch, roll))
    assert pose["yaw_deg"] == pytest.approx(yaw, abs=0.5)
    assert pose["pitch_deg"] == pytest.approx(pitch, abs=0.5)
    assert pose["roll_deg"] == pytest.approx(roll, abs=0.5)
    assert pose["fit_rms_ipd"] < 1e-6


def test_yaw_sign_nose_toward_image_right():
    lm = _projected_template(15, 0, 0)
    assert lm["pronasale"][0] > 0.5 * (lm["exocanthion_left"][0] + lm["exocanthion_right"][0])
