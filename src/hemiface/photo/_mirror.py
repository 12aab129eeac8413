"""Deriving MediaPipe's left/right landmark correspondence from photographs (see ``_mp_indices``)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .._errors import LandmarkError
from ._mediapipe import face_mesh
from ._mp_indices import IRIS, N_LANDMARKS


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
        direct = face_mesh(rgb)
        flipped = face_mesh(np.ascontiguousarray(rgb[:, ::-1]))
        if direct is None or flipped is None:
            continue
        flipped[:, 0] = rgb.shape[1] - flipped[:, 0]
        ipd = np.hypot(*(direct[IRIS["left"]["centre"], :2] - direct[IRIS["right"]["centre"], :2]))
        cost += ((flipped[:, None, :2] - direct[None, :, :2]) ** 2).sum(-1) / ipd ** 2
        n += 1
    if n == 0:
        raise LandmarkError("no face found in any image; cannot derive the mirror map")
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]
