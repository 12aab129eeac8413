"""A synthetic study: real faces with simulated atrophy and simulated treatment of known size.

:func:`synthetic_study` writes a folder that ``hemiface study import`` accepts as
it is (six spreadsheets and ``media/``), plus ``truth/truth.csv``: what was
simulated for each patient and what the measurements should therefore find.

How the media are made
----------------------
Photos
    A bundled real frontal photograph (:data:`PHOTO_BASES`) is cropped around
    the face and resampled to ``PHOTO_SIZE_PX`` square ("prepared"), mirrored
    when its naturally narrower hemiface is not the patient's affected side,
    and its face outline, pupils and three midline points (nasion, subnasale,
    stomion) are found once with :func:`hemiface.photo.analyze_photo`. Atrophy
    is a thin-plate-spline warp: each outline point of the affected hemiface
    moves to ``(1 - factor)`` times its distance from the pupils' midline
    (along the interpupillary line); the other hemiface's outline, the three
    midline points and the image border stay; everything in between bends
    smoothly (eyes, nose and mouth of the affected side move with it). As the
    affected pupil moves too, the pupils midline shifts toward the unaffected
    side and the ratio falls by about half the factor. The follow-up photo
    uses a smaller factor (the treatment). Each photo is then
    rotated, scaled and shifted a little (the patient never sits exactly the
    same way) and its exposure changed, and written as a JPEG without
    metadata.
Scans
    A bundled face scan (:data:`SCAN_BASES`) with a smooth depression of known
    volume carved into the affected cheek (:func:`hemiface.datasets.carve_defect`)
    at baseline, and the same face with a smaller depression at the same site at
    follow-up, moved by a small random rigid motion. Binary PLY in mm.

What the truth means (``truth/truth.csv``, columns :data:`TRUTH_COLUMNS`)
-------------------------------------------------------------------------
``expected_ratio_*_percent`` is the symmetry ratio of the warped control points:
100 x the area of the affected part / the unaffected part of the warped outline
polygon, split by the perpendicular bisector of the warped pupils (the pupils
midline), computed here from the construction, not by the code under test. It
is what :func:`hemiface.photo.analyze_photo` (default pupils midline) should
measure, up to its landmark error (about 1-2 points). ``base_ratio_percent`` is
the same for the unwarped prepared photo (factor 0): the base face's own
asymmetry, which the expected ratios include.

``carved_volume_*_mm3`` is the closed-solid volume of the carved depression
(:attr:`hemiface.datasets.Phantom.true_volume_mm3`). On the exactly symmetric
``template`` it is what :func:`hemiface.scan.analyze_scan` should report as the
defect volume. On the real faces (``demoface``, ``james``) the measured defect
volume also contains the face's natural asymmetry (1,000-5,000 mm3), which
the truth cannot know; the change between visits cancels it:
``volume_restored_mm3`` (baseline minus follow-up carved volume) is what
:func:`hemiface.scan.compare_scans` should report as the volume gain, on every
base face.

Everything is deterministic given ``seed`` (and the hemiface version).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from . import __version__, logger
from ._errors import HemifaceError, OutputExistsError
from ._validate import OptionError, check_option

if TYPE_CHECKING:
    import pandas as pd

#: Bundled photographs used as base faces (names of :data:`hemiface.datasets.SAMPLE_PHOTOS`).
PHOTO_BASES = ("astronaut", "takeo")
#: Bundled scans used as base faces, assigned in turn to the patients with scans.
SCAN_BASES = ("template", "demoface", "james")
#: Side of the written photographs (px, square).
PHOTO_SIZE_PX = 640
#: Face outline width as a fraction of the prepared photo's side (0.55: about 350 px, so that the
#: photo analysis's 300 px minimum face width is met also after the random scaling by 0.94-1.06).
FACE_FRACTION = 0.55
#: JPEG quality of the written photographs.
JPEG_QUALITY = 90
#: Midline points held in place by the atrophy warp.
HELD_POINTS = ("nasion", "subnasale", "stomion")
#: Guerrerosantos stage: probability, and the range of the photo atrophy factor and of the carved
#: volume (mm3) at baseline; a patient's place in both ranges is the same (one latent severity).
STAGES = {
    "I": (0.25, (0.04, 0.08), (3000.0, 4500.0)),
    "II": (0.35, (0.07, 0.12), (4000.0, 6000.0)),
    "III": (0.25, (0.11, 0.16), (5500.0, 7500.0)),
    "IV": (0.15, (0.15, 0.20), (7000.0, 9000.0)),
}
#: Exclusion reasons the generator can build deliberately (see :data:`hemiface.study.EXCLUSION_REASONS`).
INELIGIBLE_KINDS = ("outside_inclusion_window", "no_baseline_visit", "no_followup_visit")
FACEQ_SCALE = "satisfaction_with_facial_appearance"


@dataclass(frozen=True)
class TechniqueEffect:
    """What a technique does to a simulated patient.

    ``correction_mean`` / ``correction_sd``: share of the baseline defect corrected at
    follow-up (normal, clipped to 0.05-0.97); the follow-up photo's atrophy factor and
    the follow-up carved volume are the baseline ones times ``1 - correction``.
    ``faceq_gain_mean`` / ``faceq_gain_sd``: change of the FACE-Q satisfaction score
    (0-100) from baseline to follow-up. ``complications``: (type, severity,
    probability) recorded at the follow-up visit, each drawn independently.
    ``stage_weights``: relative preference for the technique in stages I-IV (the
    technique is drawn with probability proportional to it among the study's techniques).
    ``retention_mean`` / ``retention_sd``: for a technique that injects fat, the share of the
    injected volume that survives (normal, clipped to 0.15-0.95); the recorded injected volume
    is the restored volume divided by it. ``records_planned_gain``: the surgery records the
    baseline defect volume as its planned gain (as ``hemiface plan adm`` would give it).
    """

    correction_mean: float
    correction_sd: float
    faceq_gain_mean: float
    faceq_gain_sd: float
    complications: tuple[tuple[str, str, float], ...]
    stage_weights: tuple[float, float, float, float]
    retention_mean: float | None = None
    retention_sd: float = 0.0
    records_planned_gain: bool = False


#: Default effects. Free flaps treat larger defects and correct more of them; fat grafts partly resorb.
TECHNIQUE_EFFECTS: dict[str, TechniqueEffect] = {
    "fat_grafting": TechniqueEffect(
        0.55, 0.12, 15.0, 10.0,
        (("graft_resorption", "minor", 0.15), ("contour_irregularity", "minor", 0.10), ("fat_necrosis", "minor", 0.05)),
        (1.0, 0.8, 0.4, 0.2),
        retention_mean=0.45, retention_sd=0.08,  # 31-60 % at a year, depending on processing
    ),
    "free_flap": TechniqueEffect(
        0.85, 0.08, 25.0, 10.0,
        (("flap_ptosis", "minor", 0.12), ("seroma", "minor", 0.08), ("venous_congestion", "major", 0.05),
         ("partial_flap_loss", "major", 0.03)),
        (0.1, 0.35, 0.6, 0.8),
    ),
    "adm": TechniqueEffect(
        0.40, 0.10, 10.0, 10.0,
        (("seroma", "minor", 0.08), ("infection", "major", 0.04), ("extrusion", "major", 0.03)),
        (0.3, 0.3, 0.2, 0.1),
        records_planned_gain=True,
    ),
}

#: Columns of ``truth/truth.csv`` and of :attr:`SyntheticStudy.truth` (frozen: a tested constant).
TRUTH_COLUMNS = (
    "patient_id",
    "intended_eligible",
    "intended_exclusion_reason",
    "technique",
    "affected_side",
    "guerrerosantos_stage",
    "sex",
    "age_at_surgery_years",
    "initial_surgery_date",
    "preop_visit_date",
    "followup_visit_date",
    "correction_fraction",
    "photo_base",
    "photo_base_mirrored",
    "base_ratio_percent",
    "atrophy_factor_baseline",
    "atrophy_factor_followup",
    "expected_ratio_baseline_percent",
    "expected_ratio_followup_percent",
    "expected_ratio_change_points",
    "baseline_photo",
    "followup_photo",
    "has_scans",
    "scan_base",
    "defect_centre_lateral_mm",
    "defect_centre_height_mm",
    "defect_radius_mm",
    "carved_volume_baseline_mm3",
    "carved_volume_followup_mm3",
    "volume_restored_mm3",
    "carved_max_depth_baseline_mm",
    "followup_scan_rotation_deg",
    "followup_scan_translation_mm",
    "baseline_scan",
    "followup_scan",
    "faceq_baseline",
    "faceq_followup",
    "expected_faceq_change",
    "complications",
    "retention_fraction",
    "fat_injected_ml",
    "expected_retention_percent",
    "planned_gain_ml",
    "expected_achieved_of_planned_percent",
)

#: What each truth column means (written to ``truth/COLUMNS.md``). Sides are the patient's.
TRUTH_COLUMN_DOCS = {
    "patient_id": "pseudonymous id, P001... in order of the initial surgery",
    "intended_eligible": "True when the patient was built to pass the study's visit rules",
    "intended_exclusion_reason": "for the others, the reason built in (hemiface.study.EXCLUSION_REASONS); "
                                 "empty when eligible",
    "technique": "technique of the initial surgery",
    "affected_side": "the simulated affected side (left or right)",
    "guerrerosantos_stage": "I-IV; sets the range of the atrophy factor and of the carved volume",
    "sex": "female or male",
    "age_at_surgery_years": "age at the initial surgery",
    "initial_surgery_date": "date of the initial surgery",
    "preop_visit_date": "the preoperative visit with the baseline photo (and scan); too early for no_baseline_visit",
    "followup_visit_date": "the follow-up visit with the follow-up photo (and scan); too early for no_followup_visit",
    "correction_fraction": "share of the baseline atrophy (photo factor and carved volume) corrected at follow-up",
    "photo_base": "bundled photo the patient's photos are made from (hemiface.datasets.SAMPLE_PHOTOS)",
    "photo_base_mirrored": "True when the base photo was mirrored (its naturally narrower side is then the affected "
                           "one)",
    "base_ratio_percent": "symmetry ratio of the unwarped prepared base photo's outline: the face's own asymmetry",
    "atrophy_factor_baseline": "the affected hemiface outline's distance to the pupils midline was multiplied by "
                               "1 - factor",
    "atrophy_factor_followup": "the same at follow-up: atrophy_factor_baseline x (1 - correction_fraction)",
    "expected_ratio_baseline_percent": "100 x affected / unaffected area of the warped outline split by the warped "
                                       "pupils' midline: what analyze_photo (pupils midline) should measure on the "
                                       "baseline photo",
    "expected_ratio_followup_percent": "the same for the follow-up photo",
    "expected_ratio_change_points": "follow-up minus baseline expected ratio (> 0: more symmetric)",
    "baseline_photo": "path of the baseline photo, relative to the study folder",
    "followup_photo": "path of the follow-up photo, relative to the study folder",
    "has_scans": "True when the patient has a baseline and a follow-up scan",
    "scan_base": "bundled scan the patient's scans are made from (hemiface.datasets.SAMPLES); empty without scans",
    "defect_centre_lateral_mm": "defect centre: lateral distance from pronasale, seen from the front (carve_defect)",
    "defect_centre_height_mm": "defect centre: height relative to pronasale (> 0: above)",
    "defect_radius_mm": "radius of the raised-cosine depression",
    "carved_volume_baseline_mm3": "closed-solid volume carved into the baseline scan; the measured defect volume on "
                                  "the symmetric template (real faces add their natural asymmetry)",
    "carved_volume_followup_mm3": "the same at follow-up (same site and radius, smaller depth)",
    "volume_restored_mm3": "baseline minus follow-up carved volume: what compare_scans should report as volume gain",
    "carved_max_depth_baseline_mm": "deepest point of the baseline defect",
    "followup_scan_rotation_deg": "rigid motion applied to the follow-up scan: rotation angle",
    "followup_scan_translation_mm": "rigid motion applied to the follow-up scan: translation length",
    "baseline_scan": "path of the baseline scan, relative to the study folder",
    "followup_scan": "path of the follow-up scan, relative to the study folder",
    "faceq_baseline": "FACE-Q satisfaction_with_facial_appearance score written at the preoperative visit "
                      "(empty: not returned)",
    "faceq_followup": "the same at the follow-up visit",
    "expected_faceq_change": "the technique's mean FACE-Q change (TechniqueEffect.faceq_gain_mean); each patient "
                             "adds noise",
    "complications": "complication types recorded at the follow-up visit, separated by ';'",
    "retention_fraction": "share of the injected fat that survives (techniques that inject fat; TechniqueEffect)",
    "fat_injected_ml": "fat volume recorded for the initial surgery (surgeries.csv, rounded to 0.1 ml): the restored "
                       "volume / retention_fraction",
    "expected_retention_percent": "100 x volume_restored_mm3 / (fat_injected_ml x 1,000): the graft retention the "
                                  "endpoint table should report (patients with scans)",
    "planned_gain_ml": "planned gain recorded for the initial surgery (rounded to 0.1 ml): the baseline defect volume",
    "expected_achieved_of_planned_percent": "100 x volume_restored_mm3 / (planned_gain_ml x 1,000) (patients with "
                                            "scans)",
}

#: The spreadsheets written, in import order.
SPREADSHEETS = ("patients.csv", "surgeries.csv", "visits.csv", "media.csv", "complications.csv", "faceq.csv")


@dataclass(frozen=True, eq=False)
class SyntheticStudy:
    """Result of :func:`synthetic_study`: where everything is, the truth, and the rules it was built for.

    ``truth`` is a DataFrame with columns :data:`TRUTH_COLUMNS`, one row per patient,
    exactly what ``truth_path`` holds. :meth:`study_settings` gives the keyword
    arguments of :func:`hemiface.study.init_study` whose rules the intended
    eligibility assumes.
    """

    path: Path
    spreadsheets: tuple[Path, ...]
    media_dir: Path
    truth_path: Path
    truth: pd.DataFrame = field(repr=False)
    seed: int
    inclusion: tuple[_dt.date, _dt.date]
    techniques: tuple[str, ...]
    baseline_window_days: int
    followup_months: int

    def to_dict(self) -> dict:
        """Paths (as strings), seed and rules; JSON-ready."""
        return {
            "path": str(self.path), "spreadsheets": [str(p) for p in self.spreadsheets],
            "media_dir": str(self.media_dir), "truth_path": str(self.truth_path), "seed": self.seed,
            "inclusion": [d.isoformat() for d in self.inclusion], "techniques": list(self.techniques),
            "baseline_window_days": self.baseline_window_days, "followup_months": self.followup_months,
        }

    def study_settings(self) -> dict:
        """Keyword arguments for :func:`hemiface.study.init_study` matching this study's rules."""
        return {
            "inclusion_from": self.inclusion[0], "inclusion_to": self.inclusion[1], "techniques": self.techniques,
            "baseline_window_days": self.baseline_window_days, "followup_months": self.followup_months,
        }


# --------------------------------------------------------------------------- photos


def outline_area_ratio_percent(outline_px, pupils_px, side: str) -> float:
    """100 x area of the ``side`` part / the other part of a closed outline, split by the pupils midline.

    The midline is the perpendicular bisector of ``pupils_px`` = [right pupil,
    left pupil] (patient's sides; the left pupil lies on the image's right). A
    plain implementation (half-plane clipping and the shoelace formula), kept
    independent of :mod:`hemiface.photo` so that it can serve as truth for it.
    """
    outline, pupils = np.asarray(outline_px, float), np.asarray(pupils_px, float)
    axis = pupils[1] - pupils[0]
    axis /= np.hypot(*axis)
    u = (outline - pupils.mean(axis=0)) @ axis  # > 0 toward the patient's left

    def clipped_area(sign: float) -> float:
        s = sign * u
        pts = []
        for i in range(len(outline)):
            j = (i + 1) % len(outline)
            if s[i] >= 0:
                pts.append(outline[i])
            if (s[i] >= 0) != (s[j] >= 0):
                t = s[i] / (s[i] - s[j])
                pts.append(outline[i] + t * (outline[j] - outline[i]))
        if len(pts) < 3:
            return 0.0
        x, y = np.array(pts).T
        return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))

    left, right = clipped_area(1.0), clipped_area(-1.0)
    affected, other = (left, right) if side == "left" else (right, left)
    if other <= 0:
        raise HemifaceError("the outline has no area on the unaffected side of the pupils midline")
    return 100.0 * affected / other


@dataclass(frozen=True, eq=False)
class _BasePhoto:
    """A prepared base photo and the control points found on it (px)."""

    name: str
    mirrored: bool
    rgb: np.ndarray
    outline: np.ndarray
    pupils: np.ndarray  # [right, left]
    held: np.ndarray

    def natural_ratio(self, side: str) -> float:
        return outline_area_ratio_percent(self.outline, self.pupils, side)


@functools.lru_cache(maxsize=None)
def _prepared_rgb(name: str) -> np.ndarray:
    """The bundled photo cropped around the face and resampled to PHOTO_SIZE_PX square."""
    import cv2

    from .datasets import sample_photo_path
    from .photo import analyze_photo, read_photo

    rgb = read_photo(sample_photo_path(name)).rgb
    outline = analyze_photo(sample_photo_path(name), affected="left").landmarks.outline
    centre = 0.5 * (outline.min(axis=0) + outline.max(axis=0))
    scale = FACE_FRACTION * PHOTO_SIZE_PX / float(np.ptp(outline[:, 0]))
    half = PHOTO_SIZE_PX / 2.0
    affine = np.array([[scale, 0.0, half - scale * centre[0]], [0.0, scale, half - scale * centre[1]]])
    out = cv2.warpAffine(rgb, affine, (PHOTO_SIZE_PX, PHOTO_SIZE_PX), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def _base_photo(name: str, mirrored: bool) -> _BasePhoto:
    from .photo import analyze_photo, photo_from_array

    rgb = _prepared_rgb(name)
    if mirrored:
        rgb = np.ascontiguousarray(rgb[:, ::-1])
        rgb.setflags(write=False)
    lm = analyze_photo(photo_from_array(rgb, name=f"{name}-prepared"), affected="left").landmarks
    pupils = np.vstack([lm["pupil_right"], lm["pupil_left"]])
    held = np.vstack([lm[n] for n in HELD_POINTS])
    return _BasePhoto(name, mirrored, rgb, np.array(lm.outline), pupils, held)


def _border_points(w: int, h: int, n: int = 8) -> np.ndarray:
    xs, ys = np.linspace(0.0, w, n + 1), np.linspace(0.0, h, n + 1)[1:-1]
    return np.vstack([np.column_stack([xs, np.zeros_like(xs)]), np.column_stack([xs, np.full_like(xs, h)]),
                      np.column_stack([np.zeros_like(ys), ys]), np.column_stack([np.full_like(ys, w), ys])])


def simulate_photo_atrophy(base: _BasePhoto, factor: float, side: str, *, roll_deg=0.0, scale=1.0,
                           shift_px=(0.0, 0.0), gain=1.0):
    """Warp the ``side`` hemiface of a base photo toward the midline by ``factor``, then move the image.

    The similarity (rotation by ``roll_deg`` clockwise in the image, scaling by
    ``scale`` about the image centre, then a shift) changes no area ratio.
    Returns the image (uint8), the warped outline and the warped pupils (px,
    the image's coordinates).
    """
    import cv2
    from scipy.interpolate import RBFInterpolator
    from scipy.ndimage import map_coordinates

    rgb = base.rgb
    h, w = rgb.shape[:2]
    origin = base.pupils.mean(axis=0)
    eu = (base.pupils[1] - base.pupils[0]) / np.hypot(*(base.pupils[1] - base.pupils[0]))
    u = (base.outline - origin) @ eu
    moved_u = np.where(u > 0 if side == "left" else u < 0, u * (1.0 - factor), u)
    outline = base.outline + (moved_u - u)[:, None] * eu
    fixed = np.vstack([_border_points(w, h), base.held])
    # Inverse map (destination -> source) sampled on a coarse grid; the field is smooth.
    inverse = RBFInterpolator(np.vstack([outline, fixed]), np.vstack([base.outline, fixed]),
                              kernel="thin_plate_spline")
    theta = np.radians(roll_deg)
    rot = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre, shift = np.array([w / 2.0, h / 2.0]), np.asarray(shift_px, float)

    def similarity(p):
        return (np.asarray(p) - centre) @ rot.T + centre + shift

    def similarity_inverse(q):
        return np.linalg.solve(rot, (np.asarray(q) - centre - shift).T).T + centre

    step = 8
    gx, gy = np.meshgrid(np.arange(0, w + step, step) + 0.5, np.arange(0, h + step, step) + 0.5)
    coarse = inverse(similarity_inverse(np.column_stack([gx.ravel(), gy.ravel()]))).reshape(gx.shape + (2,))
    # Coarse sample k sits at pixel centre k * step + 0.5, i.e. at fine index k * step.
    fy, fx = np.meshgrid(np.arange(h) / step, np.arange(w) / step, indexing="ij")
    mx = map_coordinates(coarse[..., 0], [fy, fx], order=1, mode="nearest").astype(np.float32)
    my = map_coordinates(coarse[..., 1], [fy, fx], order=1, mode="nearest").astype(np.float32)
    warped = cv2.remap(np.asarray(rgb), mx - 0.5, my - 0.5, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    if gain != 1.0:
        warped = np.clip(warped.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)
    # The pupils where the image shows them: solve inverse(p) = pupil (a few fixed-point steps).
    pupils = base.pupils.copy()
    for _ in range(30):
        step_px = base.pupils - inverse(pupils)
        pupils += step_px
        if np.abs(step_px).max() < 1e-6:
            break
    return warped, similarity(outline), similarity(pupils)


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    """JPEG with no metadata at all (no EXIF, no comment, no ICC profile)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb))
    image.info.clear()
    image.save(path, format="JPEG", quality=JPEG_QUALITY, optimize=True)


# --------------------------------------------------------------------------- scans


@functools.lru_cache(maxsize=None)
def _scan_base(name: str):
    from .datasets import load_sample

    return load_sample(name)


def _write_ply(path: Path, vertices_mm: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY: float32 vertices (mm), int32 triangles; no other data."""
    v = np.ascontiguousarray(vertices_mm, dtype="<f4")
    f = np.empty(len(faces), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    f["n"], f["i"] = 3, faces
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment hemiface synthetic scan, millimetres\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(v.tobytes())
        fh.write(f.tobytes())


def _rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(angle_deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


# --------------------------------------------------------------------------- the cohort


def _check_date(name: str, value) -> _dt.date:
    if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
        raise OptionError(f"{name} must be a datetime.date; got {type(value).__name__} {value!r}")
    return value


def _whole(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise OptionError(f"{name} must be a whole number >= {lo}; got {value!r}")
    return int(value)


def _days(rng, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _plan_patients(rng, *, n_patients, n_with_scans, techniques, effects, inclusion, include_ineligible,
                   baseline_window_days, followup_months) -> list[dict]:
    """Every patient's clinical story (no media yet), sorted by initial surgery date and numbered."""
    from .study import add_calendar_months

    n_ineligible = min(3 * math.ceil(n_patients / 30), n_patients - 1) if include_ineligible else 0
    reasons = [None] * n_patients
    for k, i in enumerate(rng.choice(n_patients, size=n_ineligible, replace=False)):
        reasons[int(i)] = INELIGIBLE_KINDS[k % len(INELIGIBLE_KINDS)]
    lo, hi = inclusion
    window_days = (hi - lo).days
    stage_names = list(STAGES)
    stage_p = np.array([STAGES[s][0] for s in stage_names])
    patients = []
    for reason in reasons:
        stage_index = int(rng.choice(len(stage_names), p=stage_p / stage_p.sum()))
        stage = stage_names[stage_index]
        weights = np.array([effects[t].stage_weights[stage_index] for t in techniques], float)
        technique = techniques[int(rng.choice(len(techniques), p=weights / weights.sum()))]
        effect = effects[technique]
        severity = float(rng.uniform())
        (f_lo, f_hi), (v_lo, v_hi) = STAGES[stage][1], STAGES[stage][2]
        correction = float(np.clip(rng.normal(effect.correction_mean, effect.correction_sd), 0.05, 0.97))
        age = int(rng.integers(10, 46))
        if reason == "outside_inclusion_window":
            surgery = lo - _dt.timedelta(days=_days(rng, 30, 270))
        else:
            surgery = lo + _dt.timedelta(days=_days(rng, 0, window_days))
        if reason == "no_baseline_visit":  # the only preoperative visit is too early
            preop = surgery - _dt.timedelta(days=_days(rng, baseline_window_days + 10, baseline_window_days + 150))
        else:
            preop = surgery - _dt.timedelta(days=_days(rng, min(1, baseline_window_days), baseline_window_days))
        due = add_calendar_months(surgery, followup_months)
        if reason == "no_followup_visit":  # only an early post-operative visit
            latest = (due - surgery).days - 7
            followup = surgery + _dt.timedelta(days=_days(rng, min(30, latest), latest))
            early = None
        else:
            latest = add_calendar_months(surgery, followup_months + 8)
            followup = due + _dt.timedelta(days=_days(rng, 0, (latest - due).days))
            early_latest = min(60, (due - surgery).days - 7)  # an early check-up, before the follow-up is due
            early = None
            if rng.uniform() < 0.3 and early_latest >= 14:
                early = surgery + _dt.timedelta(days=_days(rng, 14, early_latest))
        touch_up = None
        if technique == "fat_grafting" and rng.uniform() < 0.25:
            touch_up = followup + _dt.timedelta(days=_days(rng, 20, 120))
        birth_year = surgery.year - age - int(rng.integers(0, 2))  # 1: the birthday comes later that year
        record = rng.choice(3, p=[0.7, 0.2, 0.1])  # birth year only, age only, both
        patients.append({
            "reason": reason,
            "sex": "female" if rng.uniform() < 0.6 else "male",
            "affected_side": "left" if rng.uniform() < 0.5 else "right",
            "stage": stage,
            "technique": technique,
            "severity": severity,
            "atrophy_factor_baseline": f_lo + severity * (f_hi - f_lo),
            "volume_baseline_mm3": v_lo + severity * (v_hi - v_lo),
            "correction": correction,
            "age_at_surgery": age,
            "birth_year": birth_year if record in (0, 2) else None,
            "age_column": age if record in (1, 2) else None,
            "age_at_onset": int(rng.integers(5, min(20, age - 1) + 1)),
            "surgery": surgery,
            "preop": preop,
            "followup": followup,
            "early": early,
            "touch_up": touch_up,
        })
    patients.sort(key=lambda p: p["surgery"])
    for k, p in enumerate(patients, start=1):
        p["patient_id"] = f"P{k:03d}"
    # Scans: eligible patients first (their scans are the ones an endpoint table uses).
    shuffle = rng.permutation(n_patients)
    order = sorted(range(n_patients), key=lambda i: (patients[i]["reason"] is not None, shuffle[i]))
    with_scans = sorted(order[:n_with_scans])
    for p in patients:
        p["scan_base"] = None
    for k, i in enumerate(with_scans):
        patients[i]["scan_base"] = SCAN_BASES[k % len(SCAN_BASES)]
    return patients


def synthetic_study(
    dest: str | os.PathLike,
    *,
    n_patients: int = 60,
    n_with_scans: int = 20,
    seed: int = 0,
    techniques=("fat_grafting", "free_flap"),
    inclusion: tuple[_dt.date, _dt.date] = (_dt.date(2020, 1, 1), _dt.date(2023, 12, 31)),
    include_ineligible: bool = True,
    baseline_window_days: int = 90,
    followup_months: int = 6,
    technique_effects: Mapping[str, TechniqueEffect] | None = None,
    faceq_missing_rate: float = 0.05,
) -> SyntheticStudy:
    """Write a realistic synthetic study folder built from the bundled real faces.

    Each patient has an initial surgery, a preoperative visit and a follow-up
    visit with a frontal photo each (simulated atrophy at baseline, partly
    corrected at follow-up), FACE-Q scores, sometimes complications, an early
    post-operative visit or a touch-up surgery; ``n_with_scans`` of them also
    have a 3D scan at both visits. See the module docstring for how the media
    are made and what ``truth/truth.csv`` means.

    Parameters
    ----------
    dest : path
        Folder to create; it must not exist or be empty. Written to a temporary
        sibling folder first and renamed into place when complete.
    n_patients : int
        Patients P001, P002, ... numbered in order of their initial surgery.
    n_with_scans : int
        Patients with a baseline and a follow-up scan (eligible patients first);
        their base faces are taken in turn from :data:`SCAN_BASES`.
    seed : int
        Everything is deterministic given the seed.
    techniques : sequence of str
        Surgical techniques of the study, keys of ``technique_effects``.
    inclusion : (date, date)
        Initial-surgery window (inclusive) of the study the folder is meant for.
    include_ineligible : bool
        Add ``3 * ceil(n_patients / 30)`` patients (at most ``n_patients - 1``),
        each ineligible for one known reason, in turn: initial surgery before
        the inclusion window, only a preoperative visit earlier than
        ``baseline_window_days``, only a follow-up visit earlier than
        ``followup_months``.
    baseline_window_days, followup_months : int
        The study's visit rules (as in :func:`hemiface.study.init_study`);
        eligible patients have a preoperative visit 1 to ``baseline_window_days``
        days before surgery and a follow-up visit ``followup_months`` to
        ``followup_months + 8`` calendar months after it.
    technique_effects : mapping, optional
        :class:`TechniqueEffect` by technique; default :data:`TECHNIQUE_EFFECTS`.
    faceq_missing_rate : float
        Share of FACE-Q questionnaires not returned (each visit independently).

    Returns
    -------
    SyntheticStudy

    Raises
    ------
    OutputExistsError
        ``dest`` exists and is not an empty folder.
    OptionError
        A parameter is out of range; the message names it.
    HemifaceError
        The simulated dates would reach beyond today (move the inclusion window earlier).
    """
    started = time.perf_counter()
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OutputExistsError(f"{dest}: exists and is not an empty folder; choose a new or empty folder")
    n_patients = _whole("n_patients", n_patients, 1)
    n_with_scans = _whole("n_with_scans", n_with_scans, 0)
    if n_with_scans > n_patients:
        raise OptionError(f"n_with_scans must be at most n_patients ({n_patients}); got {n_with_scans}")
    seed = _whole("seed", seed, 0)
    baseline_window_days = _whole("baseline_window_days", baseline_window_days, 0)
    followup_months = _whole("followup_months", followup_months, 0)
    effects = dict(TECHNIQUE_EFFECTS if technique_effects is None else technique_effects)
    techniques = (techniques,) if isinstance(techniques, str) else tuple(techniques)
    if not techniques:
        raise OptionError("techniques must name at least one technique")
    for t in techniques:
        check_option("technique", t, effects)
    if len(set(techniques)) != len(techniques):
        raise OptionError(f"techniques lists a name twice: {list(techniques)}")
    for k, stage in enumerate(STAGES):
        if sum(effects[t].stage_weights[k] for t in techniques) <= 0:
            raise OptionError(
                f"technique_effects: no technique of {list(techniques)} has a positive weight for stage {stage}"
            )
    if len(inclusion) != 2:
        raise OptionError(f"inclusion must be (first date, last date); got {inclusion!r}")
    inclusion = (_check_date("inclusion[0]", inclusion[0]), _check_date("inclusion[1]", inclusion[1]))
    if inclusion[0] > inclusion[1]:
        raise OptionError(f"inclusion starts ({inclusion[0]}) after it ends ({inclusion[1]})")
    if not 0.0 <= float(faceq_missing_rate) <= 1.0:
        raise OptionError(f"faceq_missing_rate must be between 0 and 1; got {faceq_missing_rate!r}")
    if include_ineligible and n_patients > 1 and followup_months < 2:
        raise OptionError(
            f"followup_months must be >= 2 to simulate a follow-up visit that is too early; got {followup_months} "
            "(or pass include_ineligible=False)"
        )

    rng = np.random.default_rng(seed)
    patients = _plan_patients(
        rng, n_patients=n_patients, n_with_scans=n_with_scans, techniques=techniques, effects=effects,
        inclusion=inclusion, include_ineligible=bool(include_ineligible),
        baseline_window_days=baseline_window_days, followup_months=followup_months,
    )
    latest = max(max(d for d in (p["followup"], p["touch_up"]) if d is not None) for p in patients)
    if latest > _dt.date.today():
        raise HemifaceError(
            f"the simulated visits would reach {latest}, after today; end the inclusion window earlier "
            f"(at least {followup_months + 12} months ago)"
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:12]}.partial"
    stage.mkdir()  # (not mkdtemp: the folder keeps the user's usual permissions)
    try:
        # the recorded volumes come from a generator of their own: the rest of the cohort is as it was before them
        _write_study(stage, patients, rng, effects, float(faceq_missing_rate), np.random.default_rng([seed, 17]))
        params = {
            "generator": "hemiface.datasets.synthetic_study", "hemiface_version": __version__, "seed": seed,
            "n_patients": n_patients, "n_with_scans": n_with_scans, "techniques": list(techniques),
            "inclusion": [inclusion[0].isoformat(), inclusion[1].isoformat()],
            "include_ineligible": bool(include_ineligible), "baseline_window_days": baseline_window_days,
            "followup_months": followup_months, "faceq_missing_rate": float(faceq_missing_rate),
            "photo_bases": list(PHOTO_BASES), "scan_bases": list(SCAN_BASES), "photo_size_px": PHOTO_SIZE_PX,
            "technique_effects": {t: _effect_dict(effects[t]) for t in techniques},
        }
        (stage / "truth" / "generation.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
        (stage / "README.md").write_text(_README, encoding="utf-8")
        (stage / "truth" / "COLUMNS.md").write_text(
            "# truth.csv: one row per patient\n\n| column | meaning |\n|---|---|\n"
            + "".join(f"| `{c}` | {TRUTH_COLUMN_DOCS[c]} |\n" for c in TRUTH_COLUMNS), encoding="utf-8")
        if dest.exists():
            dest.rmdir()  # empty (checked above); os.rename cannot replace a folder on every platform
        os.rename(stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    truth_path = dest / "truth" / "truth.csv"
    logger.info(
        "synthetic study: %d patients (%d with scans, %d deliberately ineligible) written in %.1f s",
        n_patients, n_with_scans, sum(p["reason"] is not None for p in patients), time.perf_counter() - started,
    )
    return SyntheticStudy(
        path=dest, spreadsheets=tuple(dest / s for s in SPREADSHEETS), media_dir=dest / "media",
        truth_path=truth_path, truth=read_truth(truth_path), seed=seed, inclusion=inclusion,
        techniques=techniques, baseline_window_days=baseline_window_days, followup_months=followup_months,
    )


#: Date columns of the truth table.
_TRUTH_DATES = ("initial_surgery_date", "preop_visit_date", "followup_visit_date")


def read_truth(path: str | os.PathLike):
    """Read ``truth/truth.csv`` as a DataFrame (columns :data:`TRUTH_COLUMNS`, dates as ``datetime.date``)."""
    import pandas as pd

    truth = pd.read_csv(path)
    if tuple(truth.columns) != TRUTH_COLUMNS:
        raise HemifaceError(f"{path}: not a synthetic study's truth table (its columns differ from TRUTH_COLUMNS)")
    for c in _TRUTH_DATES:
        truth[c] = [_dt.date.fromisoformat(d) for d in truth[c]]
    return truth


def _effect_dict(effect: TechniqueEffect) -> dict:
    return {
        "correction_mean": effect.correction_mean, "correction_sd": effect.correction_sd,
        "faceq_gain_mean": effect.faceq_gain_mean, "faceq_gain_sd": effect.faceq_gain_sd,
        "complications": [list(c) for c in effect.complications], "stage_weights": list(effect.stage_weights),
    }


_README = """\
# A synthetic hemiface study

Made by `hemiface.datasets.synthetic_study` from real faces with SIMULATED atrophy and SIMULATED
treatment of known size. None of these people has hemifacial atrophy; every patient, date and
score is invented.

* `patients.csv`, `surgeries.csv`, `visits.csv`, `media.csv`, `complications.csv`, `faceq.csv`:
  import them as they are: `hemiface study import STUDY *.csv` from this folder.
* `media/`: frontal photos (JPEG, no metadata) and 3D scans (binary PLY, millimetres).
* `truth/truth.csv`: what was simulated per patient and what the measurements should find
  (`truth/COLUMNS.md` says what each column means); `truth/generation.json`: the parameters.
"""


def _recorded_volumes(p: dict, effect: TechniqueEffect, restored_mm3: float, rng) -> dict:
    """What the initial surgery records (injected fat, planned gain; ml, 0.1 ml) and the retention behind it."""
    from .study import MM3_PER_ML

    out = dict(retention_fraction=None, fat_injected_ml=None, planned_gain_ml=None)
    if effect.retention_mean is not None:
        out["retention_fraction"] = float(np.clip(rng.normal(effect.retention_mean, effect.retention_sd), 0.15, 0.95))
        out["fat_injected_ml"] = round(restored_mm3 / out["retention_fraction"] / MM3_PER_ML, 1)
    if effect.records_planned_gain:
        out["planned_gain_ml"] = round(p["volume_baseline_mm3"] / MM3_PER_ML, 1)
    return out


def _write_study(root: Path, patients: list[dict], rng, effects, faceq_missing_rate: float, volume_rng) -> None:
    """Write the spreadsheets, media and truth of ``patients`` into ``root``."""
    from .study import TABLE_COLUMNS

    media = root / "media"
    media.mkdir()
    (root / "truth").mkdir()
    rows = {name: [] for name in SPREADSHEETS}
    truth = []
    n_photos = n_scans = 0
    for p in patients:
        pid, side = p["patient_id"], p["affected_side"]
        effect = effects[p["technique"]]
        rows["patients.csv"].append({
            "patient_id": pid, "sex": p["sex"], "birth_year": p["birth_year"],
            "age_at_surgery_years": p["age_column"], "affected_side": side,
            "guerrerosantos_stage": p["stage"], "age_at_onset_years": p["age_at_onset"],
        })
        volumes = _recorded_volumes(p, effect, p["volume_baseline_mm3"] * p["correction"], volume_rng)
        rows["surgeries.csv"].append({"patient_id": pid, "surgery_date": p["surgery"], "technique": p["technique"],
                                      "is_initial": "yes", "notes": "", "fat_injected_ml": volumes["fat_injected_ml"],
                                      "planned_gain_ml": volumes["planned_gain_ml"]})
        if p["touch_up"] is not None:  # after the follow-up visit: its fat does not enter the retention
            rows["surgeries.csv"].append({"patient_id": pid, "surgery_date": p["touch_up"],
                                          "technique": "fat_grafting", "is_initial": "no",
                                          "notes": "touch-up lipofilling", "fat_injected_ml": 5.0})
        visits = [(p["preop"], "preoperative"), (p["followup"], "follow-up")]
        if p["early"] is not None:
            visits.append((p["early"], "follow-up"))
        for d, kind in sorted(visits):
            rows["visits.csv"].append({"patient_id": pid, "visit_date": d, "visit_kind": kind})

        # Photos: the base variant whose naturally narrower hemiface is the affected side.
        name = PHOTO_BASES[int(rng.integers(len(PHOTO_BASES)))]
        plain = _base_photo(name, False)
        mirrored = plain.natural_ratio(side) > 100.0
        base = _base_photo(name, True) if mirrored else plain
        f_base = p["atrophy_factor_baseline"]
        f_fu = f_base * (1.0 - p["correction"])
        expected, photo_files = {}, {}
        for visit, d, factor in (("baseline", p["preop"], f_base), ("followup", p["followup"], f_fu)):
            warped, outline, pupils = simulate_photo_atrophy(
                base, factor, side, roll_deg=float(rng.uniform(-4, 4)), scale=float(rng.uniform(0.94, 1.06)),
                shift_px=tuple(rng.uniform(-12, 12, 2)), gain=float(rng.uniform(0.9, 1.1)),
            )
            rel = f"media/{pid}_{d.isoformat()}_frontal.jpg"
            _write_jpeg(root / rel, warped)
            n_photos += 1
            rows["media.csv"].append({"patient_id": pid, "visit_date": d, "media_kind": "photo", "file": rel})
            expected[visit] = outline_area_ratio_percent(outline, pupils, side)
            photo_files[visit] = rel

        scan = {}
        if p["scan_base"] is not None:
            scan = _make_scans(root, p, rng)
            n_scans += 2
            for visit, d in (("baseline", p["preop"]), ("followup", p["followup"])):
                rows["media.csv"].append({"patient_id": pid, "visit_date": d, "media_kind": "scan",
                                          "file": scan[f"{visit}_scan"]})

        faceq = {}
        base_score = float(np.clip(rng.normal(45.0 - 5.0 * (list(STAGES).index(p["stage"]) - 1.5), 10.0), 0, 100))
        fu_score = float(np.clip(base_score + rng.normal(effect.faceq_gain_mean, effect.faceq_gain_sd), 0, 100))
        for visit, d, score in (("baseline", p["preop"], base_score), ("followup", p["followup"], fu_score)):
            if rng.uniform() < faceq_missing_rate:
                faceq[visit] = None
                continue
            faceq[visit] = int(round(score))
            rows["faceq.csv"].append({"patient_id": pid, "visit_date": d, "faceq_scale": FACEQ_SCALE,
                                      "score": faceq[visit]})

        complications = []
        for ctype, severity, prob in effect.complications:
            if rng.uniform() < prob:
                complications.append(ctype)
                rows["complications.csv"].append({"patient_id": pid, "visit_date": p["followup"],
                                                  "complication_type": ctype, "severity": severity})

        truth.append({
            "patient_id": pid,
            "intended_eligible": p["reason"] is None,
            "intended_exclusion_reason": p["reason"] or "",
            "technique": p["technique"],
            "affected_side": side,
            "guerrerosantos_stage": p["stage"],
            "sex": p["sex"],
            "age_at_surgery_years": p["age_at_surgery"],
            "initial_surgery_date": p["surgery"],
            "preop_visit_date": p["preop"],
            "followup_visit_date": p["followup"],
            "correction_fraction": p["correction"],
            "photo_base": name,
            "photo_base_mirrored": mirrored,
            "base_ratio_percent": base.natural_ratio(side),
            "atrophy_factor_baseline": f_base,
            "atrophy_factor_followup": f_fu,
            "expected_ratio_baseline_percent": expected["baseline"],
            "expected_ratio_followup_percent": expected["followup"],
            "expected_ratio_change_points": expected["followup"] - expected["baseline"],
            "baseline_photo": photo_files["baseline"],
            "followup_photo": photo_files["followup"],
            "has_scans": bool(scan),
            "scan_base": p["scan_base"] or "",
            **{k: scan.get(k) for k in (
                "defect_centre_lateral_mm", "defect_centre_height_mm", "defect_radius_mm", "carved_volume_baseline_mm3",
                "carved_volume_followup_mm3", "volume_restored_mm3", "carved_max_depth_baseline_mm",
                "followup_scan_rotation_deg", "followup_scan_translation_mm", "baseline_scan", "followup_scan")},
            "faceq_baseline": faceq["baseline"],
            "faceq_followup": faceq["followup"],
            "expected_faceq_change": effect.faceq_gain_mean,
            "complications": ";".join(complications),
            **volumes,
            "expected_retention_percent": _share_percent(scan.get("volume_restored_mm3"), volumes["fat_injected_ml"]),
            "expected_achieved_of_planned_percent": _share_percent(scan.get("volume_restored_mm3"),
                                                                   volumes["planned_gain_ml"]),
        })

    for name, table in rows.items():
        required, optional = TABLE_COLUMNS[name[:-4]]
        _write_csv(root / name, list(required) + [c for c in optional if c in _WRITTEN_OPTIONAL], table)
    _write_csv(root / "truth" / "truth.csv", TRUTH_COLUMNS, truth)
    logger.info("synthetic study: wrote %d photos and %d scans", n_photos, n_scans)


def _share_percent(volume_mm3: float | None, of_ml: float | None) -> float | None:
    from .study import MM3_PER_ML

    return None if volume_mm3 is None or of_ml is None else 100.0 * volume_mm3 / (of_ml * MM3_PER_ML)


#: Optional spreadsheet columns the generator fills.
_WRITTEN_OPTIONAL = ("birth_year", "age_at_surgery_years", "guerrerosantos_stage", "age_at_onset_years", "notes",
                     "fat_injected_ml", "planned_gain_ml")


def _cell(x) -> str:
    """One CSV cell: empty for missing, ISO dates, 4 decimals for floats, True/False for booleans."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "True" if x else "False"
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.4f}"
    if isinstance(x, _dt.date):
        return x.isoformat()
    return str(x)


def _write_csv(path: Path, columns, rows) -> None:
    """CSV, UTF-8, comma-separated, '\\n' line ends, one row per dict (missing keys empty)."""
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _make_scans(root: Path, p: dict, rng) -> dict:
    """Baseline and follow-up scans of one patient; returns their truth."""
    from .datasets import carve_defect

    base = _scan_base(p["scan_base"])
    v, f = np.asarray(base.vertices_mm), np.asarray(base.faces)
    volume = p["volume_baseline_mm3"]
    depth_target = float(rng.uniform(6.0, 10.0))
    radius = float(np.clip(np.sqrt(volume / ((np.pi / 2 - 2 / np.pi) * depth_target)), 20.0, 30.0))
    for attempt in range(20):  # a site may touch a hole or the scan's edge (james's left cheek): draw another
        offset = (float(rng.uniform(36.0, 42.0)), float(rng.uniform(-12.0, 5.0)))
        site = dict(side=p["affected_side"], centre_offset_mm=offset, radius_mm=radius)
        try:
            pre = carve_defect(v, f, volume_mm3=volume, **site)
            break
        except HemifaceError as exc:
            logger.info("synthetic scan on %s: site %d not usable (%s); drawing another", p["scan_base"], attempt, exc)
    else:
        raise HemifaceError(f"no usable defect site found on the {p['scan_base']} scan")
    post = carve_defect(v, f, volume_mm3=volume * (1.0 - p["correction"]), **site)
    axis = rng.normal(size=3)
    angle = float(rng.uniform(0.5, 3.0))
    direction = rng.normal(size=3)
    translation = direction / np.linalg.norm(direction) * float(rng.uniform(0.0, 5.0))
    centre = v.mean(axis=0)
    moved = (post.vertices_mm - centre) @ _rotation(axis, angle).T + centre + translation
    out = {}
    for visit, d, verts in (("baseline", p["preop"], pre.vertices_mm), ("followup", p["followup"], moved)):
        rel = f"media/{p['patient_id']}_{d.isoformat()}_scan.ply"
        _write_ply(root / rel, verts, f)
        out[f"{visit}_scan"] = rel
    out.update({
        "defect_centre_lateral_mm": offset[0],
        "defect_centre_height_mm": offset[1],
        "defect_radius_mm": radius,
        "carved_volume_baseline_mm3": pre.true_volume_mm3,
        "carved_volume_followup_mm3": post.true_volume_mm3,
        "volume_restored_mm3": pre.true_volume_mm3 - post.true_volume_mm3,
        "carved_max_depth_baseline_mm": pre.true_max_depth_mm,
        "followup_scan_rotation_deg": angle,
        "followup_scan_translation_mm": float(np.linalg.norm(translation)),
    })
    return out
