"""MediaPipe's face mesh for photo and scan alike: the model wrapper, its index map, mirror consistency.

* MediaPipe (offline, CPU) face detection and face mesh, loaded once and reused
  (:func:`detect_faces`, :func:`face_mesh`). Only this module imports mediapipe;
  both models ship inside the mediapipe wheel, nothing is downloaded.
* The mesh's index constants: :data:`MIRROR_MAP` (left/right correspondence),
  :data:`FACE_OVAL`, :data:`IRIS`, :data:`N_LANDMARKS`; :func:`derive_mirror_map`
  re-derives the map from photographs.
* :func:`mirror_consistent_mesh`: the mesh of an image averaged with the
  relabelled mesh of its mirror image.

``hemiface.photo`` (automatic photo landmarks) and ``hemiface.scan`` (3D
landmarks on renders of a scan) both use it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np

from typing import Iterable

from . import logger
from ._errors import LandmarkError

#: What landmarks.json and measurements.json record as the landmark model.
MODEL_NAME = "mediapipe face_mesh (refine_landmarks=True, 478 points) + face_detection full-range"

_lock = threading.RLock()
_models: dict = {}
_warmed: set = set()


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what mediapipe's C++ side writes straight to file descriptor 2 (TFLite and absl
    start-up notices) while a model is created and first run. Python-level stderr is untouched."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _run(kind: str, rgb: np.ndarray):
    model = _get(kind)
    if kind in _warmed:
        return model.process(rgb)
    with _quiet_native_stderr():
        result = model.process(rgb)
    _warmed.add(kind)
    return result


def model_version() -> str:
    from importlib.metadata import version

    return version("mediapipe")


def _get(kind: str):
    with _lock:
        if kind not in _models:
            with _quiet_native_stderr():
                import mediapipe as mp

                if kind == "mesh":
                    _models[kind] = mp.solutions.face_mesh.FaceMesh(
                        static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
                    )
                else:
                    _models[kind] = mp.solutions.face_detection.FaceDetection(
                        model_selection=1, min_detection_confidence=0.3
                    )
            logger.info("loaded mediapipe %s model", kind)
        return _models[kind]


def load_models() -> None:
    """Load both models now (benchmarks time analysis after this)."""
    _get("mesh")
    _get("detector")


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box in px (continuous coordinates), detector score in [0, 1]."""

    x0: float
    y0: float
    width: float
    height: float
    score: float

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x0 + self.width / 2, self.y0 + self.height / 2])


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(h, w) greyscale or (h, w, 3) RGB uint8 -> contiguous (h, w, 3) RGB."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image)


def detect_faces(rgb: np.ndarray) -> list[FaceBox]:
    """All faces the full-range detector finds, largest first (boxes in ``rgb``'s px; ``rgb`` may be (h, w) grey)."""
    h, w = rgb.shape[:2]
    with _lock:
        result = _run("detector", _as_rgb(rgb))
    boxes = []
    for det in result.detections or []:
        b = det.location_data.relative_bounding_box
        boxes.append(FaceBox(b.xmin * w, b.ymin * h, b.width * w, b.height * h, float(det.score[0])))
    return sorted(boxes, key=lambda b: -b.width * b.height)


def face_mesh(rgb: np.ndarray) -> np.ndarray | None:
    """(478, 3) landmarks in ``rgb``'s px (z in px, smaller is nearer the camera), or None.

    ``rgb`` may be (h, w) greyscale.
    """
    h, w = rgb.shape[:2]
    with _lock:
        result = _run("mesh", _as_rgb(rgb))
    if not result.multi_face_landmarks:
        return None
    lm = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)


# ---- index constants ------------------------------------------------------------------------------
# ``MIRROR_MAP[i]`` and how it was derived:
# ``MIRROR_MAP[i]`` is the index of the landmark that sits where landmark ``i``
# would be on the mirror image of the face (patient's left <-> right); midline
# landmarks map to themselves. It was derived from landmark positions, not typed
# by hand: on each of five frontal photos in shared data the face mesh was run
# on the photo and on its mirror image, the mirror-image landmarks were flipped
# back, and an optimal one-to-one assignment (Hungarian algorithm on the summed
# squared distances, in units of the interpupillary distance) matched them to the
# photo's landmarks. :func:`derive_mirror_map` redoes
# this; the tests check that it reproduces this table and that the map is an
# involution.

#: Landmark count of MediaPipe's face mesh with iris refinement.
N_LANDMARKS = 478

MIRROR_MAP = np.array([
    0, 1, 2, 248, 4, 5, 6, 249, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272,
    273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291,
    292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310,
    311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322, 323, 94, 324, 325, 326, 327, 328,
    329, 330, 331, 332, 333, 334, 335, 336, 337, 338, 339, 340, 341, 342, 343, 344, 345, 346, 347,
    348, 349, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 360, 361, 362, 363, 364, 365, 366,
    367, 368, 369, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 151, 152, 380, 381, 382, 383,
    384, 385, 386, 387, 388, 389, 390, 164, 391, 392, 393, 168, 394, 395, 396, 397, 398, 399, 175,
    400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418,
    195, 419, 197, 420, 199, 200, 421, 422, 423, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433,
    434, 435, 436, 437, 438, 439, 440, 441, 442, 443, 444, 445, 446, 447, 448, 449, 450, 451, 452,
    453, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463, 464, 465, 466, 467, 3, 7, 20, 21, 22, 23,
    24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71,
    72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 95, 96,
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116,
    117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135,
    136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 153, 154, 155, 156,
    157, 158, 159, 160, 161, 162, 163, 165, 166, 167, 169, 170, 171, 172, 173, 174, 176, 177, 178,
    179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 196, 198, 201,
    202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220,
    221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 473, 476, 475, 474, 477, 468, 471, 470, 469, 472
], dtype=np.intp)
MIRROR_MAP.setflags(write=False)

#: MediaPipe's face-oval silhouette, clockwise in the image from the top of the forehead (10),
#: down the image-right side (patient's left) to the chin (152) and back up. Position k mirrors
#: position (36 - k) % 36.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

#: Iris centres and iris contour points (4 per eye) of the refined mesh; patient's sides.
IRIS = {
    "right": {"centre": 468, "ring": (469, 470, 471, 472)},
    "left": {"centre": 473, "ring": (474, 475, 476, 477)},
}


def _mesh_and_mirror_mesh(image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The face mesh of ``image`` and that of its mirror image flipped back (x mirrored; indices not relabelled)."""
    direct = face_mesh(image)
    flipped = face_mesh(np.ascontiguousarray(image[:, ::-1]))
    if flipped is not None:
        flipped[:, 0] = image.shape[1] - flipped[:, 0]
    return direct, flipped


def mirror_consistent_mesh(crop: np.ndarray) -> np.ndarray | None:
    """Mesh of ``crop`` averaged with the relabelled, flipped-back mesh of its mirror image (478, 3)."""
    direct, mirrored = _mesh_and_mirror_mesh(crop)
    if mirrored is not None:
        mirrored = mirrored[MIRROR_MAP]
    if direct is None and mirrored is None:
        return None
    if direct is None or mirrored is None:
        logger.warning("the face mesh found the face in only one of the image and its mirror image")
        return direct if direct is not None else mirrored
    return 0.5 * (direct + mirrored)


def derive_mirror_map(images: Iterable[np.ndarray]) -> np.ndarray:
    """The mirror map that best explains the face mesh on each image and on its mirror image.

    For each image, the mesh of the mirror image is flipped back; landmark j of
    it then lies where the anatomical counterpart of j lies in the image. The
    squared distances (in interpupillary distances) are summed over images and
    an optimal one-to-one assignment (Hungarian algorithm) gives the map.
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.zeros((N_LANDMARKS, N_LANDMARKS))
    n = 0
    for rgb in images:
        direct, flipped = _mesh_and_mirror_mesh(rgb)
        if direct is None or flipped is None:
            continue
        ipd = np.hypot(*(direct[IRIS["left"]["centre"], :2] - direct[IRIS["right"]["centre"], :2]))
        cost += ((flipped[:, None, :2] - direct[None, :, :2]) ** 2).sum(-1) / ipd ** 2
        n += 1
    if n == 0:
        raise LandmarkError("no face found in any image; cannot derive the mirror map")
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]
