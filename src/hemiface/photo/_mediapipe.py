"""MediaPipe (offline, CPU) face detection and face mesh, loaded once and reused.

Only this module imports mediapipe. Both models ship inside the mediapipe wheel;
nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np

from .. import logger

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
