"""Automatic landmarks: detect the subject, resample a canonical crop, mirror-consistent face mesh,
and a face outline refined from the image's own edges.

Pipeline (every step is equivariant under mirroring the photo, so a mirrored
photo gives mirrored landmarks):

1. The full-range face detector finds faces in the photo (small faces in wide
   scenes included); the largest is the subject.
2. A rough mesh on a square crop around that face gives the pupils.
3. A canonical crop is resampled from the photo (cubic spline, see
   ``WARP_ORDER``): upright (roll removed), pupils' midpoint at a fixed place,
   interpupillary distance ``CANON_IPD_PX``. Everything after this is
   independent of the photo's size, rotation, padding.
4. The mesh is run on the canonical crop (zoomed by each of ``ENSEMBLE_SCALES``)
   and on its mirror image; the mirror image's landmarks are flipped back and
   relabelled through ``MIRROR_MAP``, and the estimates are averaged.
5. The face outline (MediaPipe's face oval, densified to ``N_OUTLINE`` points)
   is moved along its normals onto the luminance edge nearby: a chain model
   weighs edge strength against smoothness, and each point takes its posterior
   mean offset (``EDGE_TEMPERATURE``), which moves continuously with the image
   instead of jumping between two similar edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import logger
from ._errors import PhotoError
from .._face_mesh import FACE_OVAL, IRIS, MIRROR_MAP, FaceBox, detect_faces, mirror_consistent_mesh

#: Canonical crop: side, pupils' midpoint position, interpupillary distance (px).
CANON_SIZE_PX = 512
CANON_CENTRE_PX = (256.0, 205.0)
CANON_IPD_PX = 128.0
#: Outline points after densifying the 36-point face oval (index j mirrors (N - j) % N).
N_OUTLINE = 72
#: Faces at least this wide relative to the subject's count as a second person in the photo.
SECOND_FACE_WIDTH_FRACTION = 0.6
#: Detector score below which a detection is ignored.
MIN_DETECTION_SCORE = 0.5
#: Outline refinement: search +- this many canonical px along the normal (0.14 IPD, about 9 mm).
SEARCH_PX = 18.0
#: Gaussian blur (canonical px) before the edge search: suppresses skin and hair texture.
EDGE_BLUR_PX = 1.5


@dataclass(frozen=True)
class CropTransform:
    """Maps canonical-crop coordinates to photo coordinates: ``photo = crop @ A.T + b`` (continuous px)."""

    A: np.ndarray
    b: np.ndarray

    def to_photo(self, pts):
        return np.asarray(pts)[..., :2] @ self.A.T + self.b

    @property
    def photo_px_per_crop_px(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.A))))


#: Spline order of the resampling into the canonical crop. Cubic: a face smaller than the crop is
#: enlarged (up to 8 times for a face 16 px between the pupils), and bilinear enlargement makes the
#: luminance piecewise linear between photo pixels, so edge strength is flat across each photo pixel
#: and the outline snapped to the photo's pixel grid (a face halved in size moved the ratio by 1.6
#: points); a cubic spline keeps the edge profile smooth and its maximum between pixels.
WARP_ORDER = 3


def _warp(image: np.ndarray, tf: CropTransform, size: int, *, as_uint8: bool = True) -> np.ndarray:
    """Resample the photo ((h, w) grey or (h, w, c)) into a ``size`` x ``size`` crop.

    The region the crop needs is cut out first (and area-averaged down when
    shrinking by more than 2, so the warp does not alias), then resampled with a
    spline of order ``WARP_ORDER`` in double precision (cv2.warpAffine rounds
    coordinates to 1/32 px). Pixel centres: crop index i -> continuous i + 0.5.
    Returns uint8, or float32 (unrounded, for the edge search) with ``as_uint8=False``.
    """
    import cv2
    from scipy.ndimage import map_coordinates

    A, b = tf.A.astype(np.float64), tf.b.astype(np.float64)
    corners = tf.to_photo(np.array([[0, 0], [size, 0], [0, size], [size, size]], float))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 4
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 4
    h, w = image.shape[:2]
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1c - x0c < 4 or y1c - y0c < 4:
        raise PhotoError("the face lies outside the photo")
    src = image[y0c:y1c, x0c:x1c]
    b = b - np.array([x0c, y0c])
    shrink = tf.photo_px_per_crop_px
    if shrink > 2.0:
        k = 1.5 / shrink
        small = cv2.resize(src, (max(1, round(src.shape[1] * k)), max(1, round(src.shape[0] * k))),
                           interpolation=cv2.INTER_AREA)
        kx, ky = small.shape[1] / src.shape[1], small.shape[0] / src.shape[0]
        A = np.diag([kx, ky]) @ A  # cut -> small: s = p * (kx, ky)
        b = b * np.array([kx, ky])
        src = small
    g = np.arange(size, dtype=np.float64) + 0.5
    gx, gy = np.meshgrid(g, g)
    sx = A[0, 0] * gx + A[0, 1] * gy + b[0] - 0.5
    sy = A[1, 0] * gx + A[1, 1] * gy + b[1] - 0.5
    planes = [src] if src.ndim == 2 else [src[:, :, c] for c in range(src.shape[2])]
    out = [map_coordinates(p.astype(np.float32), [sy, sx], order=WARP_ORDER, mode="nearest") for p in planes]
    out = np.clip(out[0] if src.ndim == 2 else np.stack(out, axis=-1), 0, 255)
    return np.rint(out).astype(np.uint8) if as_uint8 else out.astype(np.float32)


def _similarity(centre_photo, angle_rad: float, photo_px_per_crop_px: float, crop_centre) -> CropTransform:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    A = photo_px_per_crop_px * np.array([[c, -s], [s, c]])
    b = np.asarray(centre_photo, float) - A @ np.asarray(crop_centre, float)
    return CropTransform(A, b)


def _detect(rgb: np.ndarray) -> list[FaceBox]:
    """Detections on ``rgb`` averaged with the flipped-back detections on its mirror image.

    Averaging makes the subject's box mirror-equivariant, so the whole pipeline is.
    """
    w = rgb.shape[1]
    direct = [b for b in detect_faces(rgb) if b.score >= MIN_DETECTION_SCORE]
    mirrored = [
        FaceBox(w - b.x0 - b.width, b.y0, b.width, b.height, b.score)
        for b in detect_faces(np.ascontiguousarray(rgb[:, ::-1])) if b.score >= MIN_DETECTION_SCORE
    ]
    out = []
    for b in direct + mirrored:
        # Pair each box with its best-overlapping box from the other pass (if any) and average.
        others = mirrored if b in direct else direct
        best = max(others, key=lambda o: _iou(b, o), default=None)
        if best is not None and _iou(b, best) > 0.3:
            b = FaceBox(*(0.5 * (np.array([b.x0, b.y0, b.width, b.height, b.score])
                                 + np.array([best.x0, best.y0, best.width, best.height, best.score]))))
        if not any(_iou(b, o) > 0.5 for o in out):
            out.append(b)
    return sorted(out, key=lambda b: (-round(b.width * b.height, 6), b.x0 + b.width / 2))


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x0 + a.width, b.x0 + b.width) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y0 + a.height, b.y0 + b.height) - max(a.y0, b.y0))
    inter = ix * iy
    return inter / (a.width * a.height + b.width * b.height - inter)


def choose_subject(rgb: np.ndarray, *, name: str = "photo") -> FaceBox:
    """The largest clearly visible face; refuse when none, or when another face is nearly as large."""
    import cv2

    h, w = rgb.shape[:2]
    k = min(1.0, 1024.0 / max(h, w))
    small = rgb if k == 1.0 else cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    boxes = _detect(small)
    if not boxes:
        raise PhotoError(f"{name}: no face found")
    boxes = [FaceBox(b.x0 / k, b.y0 / k, b.width / k, b.height / k, b.score) for b in boxes]
    subject, others = boxes[0], boxes[1:]
    rivals = [b for b in others if b.width >= SECOND_FACE_WIDTH_FRACTION * subject.width]
    if rivals:
        raise PhotoError(
            f"{name}: more than one face ({1 + len(rivals)} of similar size); crop the photo to the patient"
        )
    if others:
        logger.info("%s: %d smaller face(s) ignored; the largest face is the subject", name, len(others))
    return subject


def _pupils(mesh: np.ndarray):
    return mesh[IRIS["right"]["centre"], :2], mesh[IRIS["left"]["centre"], :2]


def canonical_transform(rgb: np.ndarray, box: FaceBox, *, name: str = "photo") -> CropTransform:
    """Transform of the canonical crop, from a rough mirror-consistent mesh in a crop around ``box``."""
    rough_size = 256
    side = 2.2 * max(box.width, box.height)
    rough_tf = _similarity(box.centre, 0.0, side / rough_size, (rough_size / 2, rough_size / 2))
    rough = mirror_consistent_mesh(_warp(rgb, rough_tf, rough_size))
    if rough is None:
        raise PhotoError(f"{name}: a face was detected but no face landmarks could be placed on it")
    return _transform_from_pupils(*(rough_tf.to_photo(p) for p in _pupils(rough)), name=name)


def _transform_from_pupils(pr, pl, *, name: str) -> CropTransform:
    d = pl - pr  # patient's right pupil is on the image's left
    ipd = float(np.hypot(*d))
    if ipd < 4.0:
        raise PhotoError(f"{name}: the face is too small to measure (pupils {ipd:.1f} px apart)")
    return _similarity(0.5 * (pr + pl), float(np.arctan2(d[1], d[0])), ipd / CANON_IPD_PX, CANON_CENTRE_PX)


def densify_oval(oval: np.ndarray) -> np.ndarray:
    """36 oval points -> ``N_OUTLINE`` points: each point and the midpoint to the next."""
    nxt = np.roll(oval, -1, axis=0)
    out = np.empty((2 * len(oval), 2))
    out[0::2] = oval
    out[1::2] = 0.5 * (oval + nxt)
    return out


def outward_normals(outline: np.ndarray) -> np.ndarray:
    tangent = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    outward = outline - outline.mean(axis=0)
    normal *= np.sign((normal * outward).sum(axis=1))[:, None]
    return normal


#: Outline points refined (an open chain from temple to temple through the chin; index j mirrors
#: 72 - j). The forehead points above stay where the mesh put them: the hairline is not the face edge.
REFINE_FIRST, REFINE_LAST = 6, 66
#: Smoothness of the refined outline: cost per px of offset change between neighbouring points,
#: in units of the typical edge strength.
SMOOTHNESS_PER_PX = 0.08


#: Width (SD) of the Gaussian preference for the starting outline, as a share of the search range.
PRIOR_WIDTH = 0.6


#: Temperature of the soft choice among edges (units of the typical edge strength, like the costs).
#: Each point's offset is the mean of its posterior over the whole chain, not the single best path:
#: where two edges along a normal are nearly equally strong (a weak jaw line over a shadowed neck, an
#: ear beside the temple), the best path jumps from one to the other under a sub-pixel change of the
#: image and moved the symmetry ratio by up to 2.4 points (rotation, rescaling); the posterior mean
#: moves continuously with the image, and still sits on an edge that clearly wins.
EDGE_TEMPERATURE = 0.2


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(a - top).sum(axis=axis))


def _chain_posterior_mean(unary: np.ndarray, t: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """Posterior mean of each state of a chain with energy sum(unary[j, s_j]) + weight * |t[s_j] - t[s_j-1]|.

    The chain's Gibbs distribution exp(-energy / temperature) is marginalised
    exactly by the forward-backward algorithm (in log space); returns, for
    each point j, the expected ``t`` under its marginal.
    """
    n, m = unary.shape
    log_pair = -weight * np.abs(t[:, None] - t[None, :]) / temperature  # (previous, next)
    log_unary = -unary / temperature
    fwd = np.empty((n, m))
    bwd = np.zeros((n, m))
    fwd[0] = log_unary[0]
    for j in range(1, n):
        fwd[j] = log_unary[j] + _logsumexp(fwd[j - 1][:, None] + log_pair, axis=0)
    for j in range(n - 2, -1, -1):
        bwd[j] = _logsumexp(log_pair + (log_unary[j + 1] + bwd[j + 1])[None, :], axis=1)
    log_post = fwd + bwd
    log_post -= _logsumexp(log_post, axis=1)[:, None]
    return np.exp(log_post) @ t


def refine_outline(crop: np.ndarray, outline: np.ndarray, *, search_px: float = SEARCH_PX) -> tuple[np.ndarray, np.ndarray]:
    """Move outline points along their outward normals onto the face's edge in the image.

    For the chain of points from temple to temple through the chin, the offsets
    along the normals (within +- ``search_px``) are weighed together: each
    offset's cost is minus its luminance edge strength (times a Gaussian
    preference for the starting outline), and neighbouring offsets that differ
    cost ``SMOOTHNESS_PER_PX`` per px, so a stray edge (a collar, an earring, a
    beard's texture) cannot pull one point away. Each point moves to its
    posterior mean offset at ``EDGE_TEMPERATURE`` (see there), so small changes of
    the image or of the starting outline move the result only a little. ``crop``
    is (h, w) grey or (h, w, 3) RGB. Returns the refined outline and each point's
    edge strength at its new place (grey levels per px; 0 where not refined).
    """
    import cv2
    from scipy.ndimage import map_coordinates

    # Luminance (ITU-R 601 weights, as Pillow's greyscale conversion): colour plays no part.
    lum = crop.astype(np.float32)
    if lum.ndim == 3:
        lum = lum @ np.array([0.299, 0.587, 0.114], np.float32)
    img = cv2.GaussianBlur(lum, (0, 0), EDGE_BLUR_PX)
    normals = outward_normals(outline)
    chain = np.arange(REFINE_FIRST, REFINE_LAST + 1)
    step = 0.5
    t = np.arange(-search_px, search_px + step / 2, step)
    pts = outline[chain, None, :] + t[None, :, None] * normals[chain, None, :]  # (n, m, 2)
    samples = map_coordinates(img, [pts[..., 1] - 0.5, pts[..., 0] - 0.5], order=1, mode="nearest")
    strength = np.abs(np.gradient(samples, step, axis=1))
    prior = np.exp(-0.5 * (t / (PRIOR_WIDTH * search_px)) ** 2)
    score = strength * prior[None, :]
    typical = float(np.median(score.max(axis=1))) or 1.0
    offset = _chain_posterior_mean(-score / typical, t, SMOOTHNESS_PER_PX, EDGE_TEMPERATURE)
    refined = outline.copy()
    refined[chain] = outline[chain] + offset[:, None] * normals[chain]
    rows = np.arange(len(chain))
    edge = np.zeros(len(outline))
    edge[chain] = [np.interp(o, t, strength[r]) for r, o in zip(rows, offset)]
    return refined, edge


@dataclass(frozen=True, eq=False)
class AutoLandmarks:
    """Automatic landmarks in photo px: the 478-point mesh (x, y, z) and the refined outline."""

    mesh: np.ndarray
    outline: np.ndarray
    outline_unrefined: np.ndarray
    transform: CropTransform
    face_box: FaceBox


#: Canonical-crop zooms (about the pupils' midpoint) whose meshes and refined outlines are averaged
#: (reduces the mesh's own jitter and damps edge switching).
ENSEMBLE_SCALES = (1.0, 0.96, 1.04)


def _zoomed(tf: CropTransform, k: float) -> CropTransform:
    """Transform of the canonical crop zoomed by ``k`` about the pupils' midpoint: zoomed = c + k (crop - c)."""
    centre = np.array(CANON_CENTRE_PX)
    return CropTransform(tf.A / k, tf.b + tf.A @ centre * (1 - 1 / k))


def _ensemble_mesh(grey: np.ndarray, tf: CropTransform, *, name: str) -> tuple[np.ndarray, list]:
    """Mirror-consistent meshes on the canonical crop zoomed by each of ``ENSEMBLE_SCALES``, averaged.

    Returns the mean mesh (in the unzoomed crop's coordinates) and the list of
    (zoom, crop) pairs for the outline refinement; the crops are float32, unrounded.
    """
    meshes, crops = [], []
    centre = np.array(CANON_CENTRE_PX)
    for k in ENSEMBLE_SCALES:
        ck = _warp(grey, _zoomed(tf, k), CANON_SIZE_PX, as_uint8=False)
        crops.append((k, ck))
        mesh = mirror_consistent_mesh(np.rint(ck).astype(np.uint8))
        if mesh is not None:
            mesh = mesh.copy()
            mesh[:, :2] = centre + (mesh[:, :2] - centre) / k
            mesh[:, 2] /= k
            meshes.append(mesh)
    if not meshes:
        raise PhotoError(f"{name}: no face landmarks could be placed on the detected face")
    return np.mean(meshes, axis=0), crops


def _ensemble_refine(crops: list, oval: np.ndarray) -> np.ndarray:
    """The outline refined in each zoomed crop, mapped back and averaged."""
    centre = np.array(CANON_CENTRE_PX)
    refined = [centre + (refine_outline(ck, centre + k * (oval - centre))[0] - centre) / k for k, ck in crops]
    return np.mean(refined, axis=0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Greyscale (Pillow's ITU-R 601 luminance), (h, w) uint8.

    The landmarks are found on luminance only, so a greyscale copy of a photo gives
    the same landmarks as the colour photo, and colour balance does not matter.
    """
    from PIL import Image

    if rgb.ndim == 2:
        return rgb
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def _locate_once(grey: np.ndarray, *, name: str, refine: bool) -> AutoLandmarks:
    box = choose_subject(grey, name=name)
    tf = canonical_transform(grey, box, name=name)
    # Re-centre once on the pupils found in the canonical crop, so the crop depends on the face only.
    first = mirror_consistent_mesh(_warp(grey, tf, CANON_SIZE_PX))
    if first is None:
        raise PhotoError(f"{name}: no face landmarks could be placed on the detected face")
    tf = _transform_from_pupils(*(tf.to_photo(p) for p in _pupils(first)), name=name)
    mesh, crops = _ensemble_mesh(grey, tf, name=name)
    oval = densify_oval(mesh[list(FACE_OVAL), :2])
    outline = _ensemble_refine(crops, oval) if refine else oval
    mesh_photo = np.column_stack([tf.to_photo(mesh), mesh[:, 2] * tf.photo_px_per_crop_px])
    return AutoLandmarks(mesh_photo, tf.to_photo(outline), tf.to_photo(oval), tf, box)


def _unmirror(auto: AutoLandmarks, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks found on the mirror image, flipped back and relabelled to the photo's anatomy."""
    mesh = auto.mesh.copy()
    mesh[:, 0] = width - mesh[:, 0]
    n = len(auto.outline)
    relabel = (n - np.arange(n)) % n

    def flip(p):
        q = p.copy()
        q[:, 0] = width - q[:, 0]
        return q[relabel]

    return mesh[MIRROR_MAP], flip(auto.outline), flip(auto.outline_unrefined)


def locate(rgb: np.ndarray, *, name: str = "photo", refine: bool = True) -> AutoLandmarks:
    """Automatic, mirror-consistent landmarks and refined outline of the subject in ``rgb``.

    The whole pipeline runs on the photo and on its mirror image; the mirror
    image's landmarks and outline are flipped back, relabelled and averaged with
    the photo's. A mirrored photo therefore gives exactly the mirrored landmarks,
    however sensitive the steps inside are to tiny differences in resampling.
    """
    from concurrent.futures import ThreadPoolExecutor

    grey = luminance(rgb)
    # The two passes are independent: the mirror image's runs on a second thread (the resampling and the
    # edge search release the GIL; the models are shared behind their lock, so the numbers are the same).
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(_locate_once, np.ascontiguousarray(grey[:, ::-1]), name=name, refine=refine)
        direct = _locate_once(grey, name=name, refine=refine)
        mirrored = later.result()
    mesh_m, outline_m, oval_m = _unmirror(mirrored, grey.shape[1])
    return AutoLandmarks(
        0.5 * (direct.mesh + mesh_m), 0.5 * (direct.outline + outline_m), 0.5 * (direct.outline_unrefined + oval_m),
        direct.transform, direct.face_box,
    )
