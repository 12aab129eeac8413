"""Named facial landmarks in photo pixels: from the automatic mesh, from hemiface's JSON, from iBUG .pts.

Names use the patient's anatomical sides: ``*_right`` is the patient's right,
which is on the image's LEFT in an unmirrored frontal photo.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._errors import LandmarkError
from .._face_mesh import IRIS, N_LANDMARKS

#: Named points taken directly from the MediaPipe mesh.
MESH_POINTS = {
    "pupil_right": IRIS["right"]["centre"],
    "pupil_left": IRIS["left"]["centre"],
    # Horizontal iris diameter ends (image-medial / image-lateral ring points).
    "iris_right_nasal": 469, "iris_right_temporal": 471,
    "iris_left_nasal": 476, "iris_left_temporal": 474,
    "exocanthion_right": 33, "endocanthion_right": 133,
    "endocanthion_left": 362, "exocanthion_left": 263,
    "brow_lateral_right": 70, "brow_peak_right": 105, "brow_medial_right": 107,
    "brow_lateral_left": 300, "brow_peak_left": 334, "brow_medial_left": 336,
    "alar_base_right": 64, "alar_base_left": 294,
    "cheilion_right": 61, "cheilion_left": 291,
    "glabella": 9, "nasion": 168, "subnasale": 2,
    # Pronasale: vertex 4, the mesh's most anterior point on frontal faces (vertex 1 lies below the tip).
    "pronasale": 4,
    "labrale_superius": 0, "stomion": 13, "labrale_inferius": 17,
}
#: Named points taken from the refined outline (index into the 72-point outline; j mirrors 72 - j).
OUTLINE_POINTS = {"menton": 36, "gonion_right": 48, "gonion_left": 24, "jaw_mid_right": 44, "jaw_mid_left": 28}

#: Points on the midline, used by the fitted midline.
MIDLINE_NAMES = ("glabella", "nasion", "pronasale", "subnasale", "labrale_superius", "stomion",
                 "labrale_inferius", "menton")
#: Bilateral pairs for the landmark ratio (distance to the midline).
RATIO_PAIRS = ("exocanthion", "endocanthion", "alar_base", "cheilion", "gonion", "jaw_mid")
#: Bilateral pairs whose height difference is reported.
HEIGHT_PAIRS = ("brow_peak", "exocanthion", "endocanthion", "cheilion")

#: iBUG 300-W 68-point scheme (0-based index) -> hemiface name. Pupils are the means of the eye contours.
IBUG68 = {
    "exocanthion_right": 36, "endocanthion_right": 39, "endocanthion_left": 42, "exocanthion_left": 45,
    "brow_lateral_right": 17, "brow_peak_right": 19, "brow_medial_right": 21,
    "brow_medial_left": 22, "brow_peak_left": 24, "brow_lateral_left": 26,
    "alar_base_right": 31, "alar_base_left": 35,
    "cheilion_right": 48, "cheilion_left": 54,
    "nasion": 27, "pronasale": 30, "subnasale": 33, "labrale_superius": 51, "labrale_inferius": 57,
    "menton": 8, "gonion_right": 3, "gonion_left": 13, "jaw_mid_right": 5, "jaw_mid_left": 11,
}

FORMAT = "hemiface-landmarks-1"
COORDINATES = (
    "pixels of the photo as displayed (EXIF orientation applied): x right, y down, origin at the "
    "top-left corner of the top-left pixel (a pixel centre is at i + 0.5)"
)


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """Named points and the face outline, in photo px. ``outline`` is a closed polygon (n, 2), n >= 8.

    ``mesh`` is the (478, 3) face mesh the points came from (photo px, z in px), when they
    came from one: it carries the face's 3D shape for the pose compensation.
    """

    points: dict = field(repr=False)
    outline: np.ndarray = field(repr=False)
    source: str
    model: str | None = None
    model_version: str | None = None
    mesh: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        outline = np.asarray(self.outline, dtype=np.float64)
        if outline.ndim != 2 or outline.shape[1] != 2 or len(outline) < 8 or not np.isfinite(outline).all():
            raise LandmarkError(f"{self.source}: the face outline needs at least 8 finite (x, y) points")
        for name in ("pupil_right", "pupil_left"):
            if name not in self.points:
                raise LandmarkError(f"{self.source}: missing the landmark {name!r}")
        for name, p in self.points.items():
            p = np.asarray(p, dtype=np.float64)
            if p.shape != (2,) or not np.isfinite(p).all():
                raise LandmarkError(f"{self.source}: landmark {name!r} must be two finite numbers [x, y]")

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.points[name], dtype=np.float64)

    def has(self, *names: str) -> bool:
        return all(n in self.points for n in names)


def from_mesh(mesh: np.ndarray, outline: np.ndarray, *, model: str, model_version: str) -> FaceLandmarks:
    """Named points from a (478, 2+) MediaPipe mesh and a refined outline, all in photo px."""
    if len(mesh) != N_LANDMARKS:
        raise LandmarkError(f"expected {N_LANDMARKS} mesh landmarks; got {len(mesh)}")
    points = {name: [float(mesh[i, 0]), float(mesh[i, 1])] for name, i in MESH_POINTS.items()}
    for name, j in OUTLINE_POINTS.items():
        points[name] = [float(outline[j, 0]), float(outline[j, 1])]
    return FaceLandmarks(points, np.asarray(outline, float), "automatic", model, model_version,
                         mesh=np.asarray(mesh, float)[:, :3] if np.shape(mesh)[1] >= 3 else None)


def to_json_dict(lm: FaceLandmarks, *, image: dict) -> dict:
    return {
        "format": FORMAT,
        "coordinates": COORDINATES,
        "image": image,
        "source": lm.source,
        "landmark_model": lm.model,
        "landmark_model_version": lm.model_version,
        "points": {k: [float(v[0]), float(v[1])] for k, v in lm.points.items()},
        "outline": [[float(x), float(y)] for x, y in lm.outline],
        "note": "Edit any point and pass this file back with --landmarks; the outline is a closed polygon.",
    }


def read_pts(path: Path) -> np.ndarray:
    """An iBUG .pts file -> (n, 2) continuous px (the format is 1-based at pixel centres)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        body = text[text.index("{") + 1: text.index("}")]
        pts = np.array([[float(v) for v in line.split()] for line in body.strip().splitlines() if line.strip()])
    except (ValueError, IndexError):
        raise LandmarkError(f"{path.name}: not an iBUG .pts file (expected 'n_points: 68' and a {{ ... }} block)") from None
    if pts.shape != (68, 2):
        raise LandmarkError(f"{path.name}: expected 68 points of (x, y); got shape {pts.shape}")
    return pts - 0.5


def from_ibug68(pts: np.ndarray, *, source: str) -> FaceLandmarks:
    """Named points from the 68-point iBUG scheme (0-based rows, continuous px).

    There is no iris, so no mm scale. The outline is the 17-point jawline, which
    runs from ear to ear under the chin and has nothing above the ears: as a
    polygon it is closed by the straight line between its ends. ``analyze_photo``
    completes it above that line from the automatic model
    (:func:`complete_jaw_outline`).
    """
    points = {name: [float(pts[i, 0]), float(pts[i, 1])] for name, i in IBUG68.items()}
    points["pupil_right"] = pts[36:42].mean(axis=0).tolist()
    points["pupil_left"] = pts[42:48].mean(axis=0).tolist()
    points["stomion"] = (0.5 * (pts[62] + pts[66])).tolist()
    return FaceLandmarks(points, pts[0:17].copy(), source)


#: Points of an iBUG 68-point file that form its outline: the jawline, from the patient's right ear
#: (image left) under the chin to the left ear.
IBUG68_JAW = slice(0, 17)


def complete_jaw_outline(lm: FaceLandmarks, auto_outline: np.ndarray, *, model: str | None = None,
                         model_version: str | None = None) -> FaceLandmarks:
    """The iBUG jawline of ``lm`` closed over the forehead by the automatic outline of the same photo.

    ``lm.outline`` is the 17-point jawline (image left ear -> chin -> image right
    ear); ``auto_outline`` is the automatic 72-point outline in the same photo's
    px (index 0 at the top of the forehead, increasing toward the image's right).
    The completed outline is the jawline followed by the run of automatic points
    that lie strictly above the straight line joining the jaw's two ends (the side
    away from the chin), from the image's right end over the forehead to its left
    end. Every point the file gives is kept; only the part it has no points for
    comes from the model. Raises LandmarkError when the automatic outline does
    not reach above that line.
    """
    jaw = np.asarray(lm.outline, float)
    auto = np.asarray(auto_outline, float)
    a, b = jaw[0], jaw[-1]
    d = b - a
    toward_chin = np.array([-d[1], d[0]])  # y points down: (dx, dy) turned clockwise on screen
    if (jaw[len(jaw) // 2] - a) @ toward_chin <= 0:
        raise LandmarkError(f"{lm.source}: the jawline does not run from the image's left to its right under the chin")
    # Strictly above; an automatic point at one of the jaw's ends (within 0.1% of the chord: when the jawline
    # was taken from the automatic outline and written with finite precision) only repeats that end.
    chord = float(np.hypot(*d))
    at_end = np.minimum(np.hypot(*(auto - a).T), np.hypot(*(auto - b).T)) < 1e-3 * chord
    above = ((auto - a) @ toward_chin < 0) & ~at_end
    n = len(auto)
    if not above[0]:
        raise LandmarkError(f"{lm.source}: the automatic outline does not reach above the jaw's ends")
    right = 0  # last index of the run above the chord, walking from the top toward the image's right
    while right + 1 < n and above[right + 1]:
        right += 1
    left = 0  # the same walking toward the image's left (indices n-1, n-2, ...)
    while (left - 1) % n != right and above[(left - 1) % n]:
        left -= 1
    arc = [i % n for i in range(right, left - 1, -1)]  # image right -> top -> image left
    return FaceLandmarks(
        dict(lm.points), np.vstack([jaw, auto[arc]]),
        f"{lm.source}; outline above the jaw's ends from the automatic model", model, model_version,
    )


def read_landmarks(path: str | os.PathLike) -> FaceLandmarks:
    """Read ``--landmarks``: hemiface's ``landmarks.json`` or an iBUG 68-point ``.pts``."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: no such landmark file")
    if path.suffix.lower() == ".pts":
        return from_ibug68(read_pts(path), source=f"ibug68 file {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LandmarkError(f"{path.name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LandmarkError(f"{path.name}: not a hemiface landmark file (expected \"format\": \"{FORMAT}\") or a .pts file")
    points, outline = data.get("points"), data.get("outline")
    if not isinstance(points, dict) or not isinstance(outline, list):
        raise LandmarkError(f"{path.name}: needs a \"points\" object and an \"outline\" list")
    try:
        outline_arr = np.array(outline, dtype=np.float64)
        pts = {str(k): [float(v[0]), float(v[1])] for k, v in points.items() if len(v) == 2}
    except (TypeError, ValueError, IndexError):
        raise LandmarkError(f"{path.name}: every point must be [x, y] numbers") from None
    if len(pts) != len(points):
        raise LandmarkError(f"{path.name}: every point must be [x, y]")
    source = f"landmark file {path.name}" + (" (automatic, as written by hemiface)" if data.get("source") == "automatic" else "")
    return FaceLandmarks(pts, outline_arr, source, data.get("landmark_model"), data.get("landmark_model_version"))
