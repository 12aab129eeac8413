"""Landmark files and the face frame."""

import numpy as np
import pytest

from hemiface._errors import LandmarkError
from hemiface.scan import read_landmarks
from hemiface.scan._frame import find_pronasale, frame_from_landmarks
from helpers import move, random_rigid


def write(tmp_path, text):
    path = tmp_path / "lm.csv"
    path.write_text(text)
    return path


def test_reads_and_converts_units(tmp_path):
    path = write(tmp_path, "name,x,y,z\npronasale,1,2,3\nendocanthion_left,1.5,0,0\n")
    lm = read_landmarks(path, units="cm")
    assert np.allclose(lm["pronasale"], [10, 20, 30]) and np.allclose(lm["endocanthion_left"], [15, 0, 0])


@pytest.mark.parametrize(
    "text,message",
    [
        ("x,y,z\n1,2,3\n", "header"),
        ("name,x,y,z\npronasale,1,2\n", "row 2 has 3 columns"),
        ("name,x,y,z\npronasale,1,two,3\n", "row 2 .pronasale. has a non-numeric"),
        ("name,x,y,z\npronasale,1,2,3\npronasale,1,2,3\n", "appears twice"),
    ],
)
def test_malformed_files_name_the_row(tmp_path, text, message):
    with pytest.raises(LandmarkError, match=message):
        read_landmarks(write(tmp_path, text))


def test_frame_needs_a_pair_and_pronasale():
    with pytest.raises(LandmarkError, match="endocanthion"):
        frame_from_landmarks({"pronasale": np.zeros(3)}, np.zeros((3, 3)), np.zeros((3, 3)))


def test_frame_is_equivariant_under_rigid_motion():
    lm = {
        "endocanthion_right": np.array([-16.0, 37.0, 14.0]), "endocanthion_left": np.array([16.0, 37.0, 14.0]),
        "pronasale": np.array([0.0, 18.0, 54.0]), "menton": np.array([0.0, -60.0, 30.0]),
    }
    base = frame_from_landmarks(lm, np.zeros((1, 3)), np.zeros((1, 3)))
    rot, trans = random_rigid(3)
    moved = frame_from_landmarks({k: move(v[None], rot, trans)[0] for k, v in lm.items()}, np.zeros((1, 3)), np.zeros((1, 3)))
    probe = np.array([[10.0, -20.0, 5.0], [0, 0, 0]])
    assert np.allclose(base.to_canonical(probe), moved.to_canonical(move(probe, rot, trans)), atol=1e-9)


def test_frame_uses_both_eye_pairs_so_one_rolled_pair_is_diluted():
    """Published endocanthions rolled 5 degrees against level exocanthions (as menpo's james): alone they
    roll the frame by 5 degrees; with the exocanthions (2.8 times further apart) the roll is about a quarter."""
    roll = np.radians(5.0)
    lm = {"exocanthion_right": np.array([-45.0, 35.0, 0.0]), "exocanthion_left": np.array([45.0, 35.0, 0.0]),
          "endocanthion_right": np.array([-16 * np.cos(roll), 37 - 16 * np.sin(roll), 14.0]),
          "endocanthion_left": np.array([16 * np.cos(roll), 37 + 16 * np.sin(roll), 14.0]),
          "pronasale": np.array([0.0, 18.0, 54.0]), "menton": np.array([0.0, -60.0, 30.0])}
    flat = np.zeros((1, 3))

    def roll_deg(points):
        x_axis = frame_from_landmarks(points, flat, flat).rotation[0]
        return float(np.degrees(np.arctan2(x_axis[1], x_axis[0])))

    endo_only = {k: v for k, v in lm.items() if not k.startswith("exocanthion")}
    exo_only = {k: v for k, v in lm.items() if not k.startswith("endocanthion")}
    assert roll_deg(endo_only) == pytest.approx(5.0)
    assert roll_deg(exo_only) == pytest.approx(0.0, abs=1e-9)
    assert 1.0 < roll_deg(lm) < 1.5  # atan(32 sin 5 / (90 + 32 cos 5)) = 1.31 degrees


def test_swapped_sides_are_refused():
    lm = {"endocanthion_left": np.array([-16.0, 37.0, 14.0]), "endocanthion_right": np.array([16.0, 37.0, 14.0]),
          "pronasale": np.array([0.0, 18.0, 54.0]), "menton": np.array([0.0, -60.0, 30.0])}
    with pytest.raises(LandmarkError, match="patient's sides"):
        frame_from_landmarks(lm, np.zeros((1, 3)), np.zeros((1, 3)))


def test_pronasale_found_on_a_face_tilted_back():
    from hemiface import datasets

    scan = datasets.load_sample("demoface")  # its chin is more anterior than its nose
    tip = find_pronasale(scan.vertices_mm, scan.faces)
    assert tip[2] < scan.vertices_mm[:, 2].max()
    assert abs(tip[0]) < 10 and 40 < tip[1] < 75
