"""Loading surface scans: formats, units and the checks that refuse bad input.

Meshes are loaded without silent processing; every repair is logged.
Coordinates are converted to millimetres once, here, at the boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import logger
from .._errors import InputFileError, UnitsError
from .._provenance import sha256_file
from .._validate import check_option

SUPPORTED_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb")
MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
#: A face scan's largest extent, in mm, must lie in this range (a face alone is
#: about 120 mm, a head-and-shoulders scan well under a metre).
PLAUSIBLE_EXTENT_MM = (60.0, 1200.0)
MAX_FILE_BYTES = 2 * 1024**3
MAX_VERTICES = 20_000_000


@dataclass(frozen=True, eq=False)
class SurfaceScan:
    """A triangle surface in millimetres, in the scan's own frame.

    Attributes
    ----------
    vertices_mm : (n, 3) float64
    faces : (m, 3) int64, counter-clockwise seen from outside
    source_name : file name the scan came from (no folder: folders can name patients)
    sha256 : hex SHA-256 of the source file ("" for in-memory meshes)
    units : the units the source was given in
    has_texture : whether the source carried a texture or vertex colours
    """

    vertices_mm: np.ndarray
    faces: np.ndarray
    source_name: str = "<memory>"
    sha256: str = ""
    units: str = "mm"
    has_texture: bool = False
    repairs: tuple[str, ...] = field(default_factory=tuple)


def _describe_units(extent_raw: float) -> str:
    fits = [u for u, f in MM_PER_UNIT.items() if PLAUSIBLE_EXTENT_MM[0] <= extent_raw * f <= PLAUSIBLE_EXTENT_MM[1]]
    if not fits:
        return "it does not look like a face in mm, cm or m"
    names = {"mm": "millimetres", "cm": "centimetres", "m": "metres"}
    return f"the values look like {names[fits[0]]}: pass --units {fits[0]}"


def check_units(vertices: np.ndarray, units: str, name: str) -> None:
    """Raise UnitsError when the mesh is implausibly sized for a face in ``units``."""
    extent_raw = float(np.ptp(vertices, axis=0).max())
    extent_mm = extent_raw * MM_PER_UNIT[units]
    lo, hi = PLAUSIBLE_EXTENT_MM
    if not lo <= extent_mm <= hi:
        raise UnitsError(
            f"{name}: a largest extent of {extent_raw:.4g} {units} is implausible for a face scan "
            f"(expected {lo:.0f} to {hi:.0f} mm); {_describe_units(extent_raw)}"
        )


def merge_coincident_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge vertices at exactly the same position (texture seams split them in OBJ files)."""
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    merged = len(vertices) - len(unique)
    if merged == 0:
        return vertices, faces, 0
    return unique, inverse.reshape(-1)[faces], merged


def clean_faces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop faces that repeat a vertex or have zero area."""
    f = faces
    distinct = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    cross = np.cross(vertices[f[:, 1]] - vertices[f[:, 0]], vertices[f[:, 2]] - vertices[f[:, 0]])
    nonzero = np.einsum("ij,ij->i", cross, cross) > 0
    keep = distinct & nonzero
    return f[keep], int((~keep).sum())


def drop_unused_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    used = np.zeros(len(vertices), bool)
    used[faces.reshape(-1)] = True
    if used.all():
        return vertices, faces, 0
    remap = np.cumsum(used) - 1
    return vertices[used], remap[faces], int((~used).sum())


def scan_from_arrays(
    vertices, faces, *, units: str = "mm", source_name: str = "<memory>", sha256: str = "", has_texture: bool = False,
    face_sized: bool = True,
) -> SurfaceScan:
    """Build a SurfaceScan from arrays, with the same checks and repairs as :func:`load_scan`.

    ``face_sized=False`` skips the face-size plausibility check (for meshes that are
    not faces: a printed defect solid, a mask of stable areas).
    """
    check_option("units", units, MM_PER_UNIT)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise InputFileError(f"{source_name}: contains no vertices")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise InputFileError(
            f"{source_name}: has no triangles (a point cloud?); hemiface needs a surface mesh"
        )
    if not np.isfinite(v).all():
        raise InputFileError(f"{source_name}: has non-finite vertex coordinates (NaN or infinity)")
    if f.min() < 0 or f.max() >= len(v):
        raise InputFileError(f"{source_name}: has faces that refer to vertices that do not exist")
    if face_sized:
        check_units(v, units, source_name)
    repairs = []
    v, f, merged = merge_coincident_vertices(v, f)
    if merged:
        repairs.append(f"merged {merged} coincident vertices (texture seams)")
    f, dropped = clean_faces(v, f)
    if dropped:
        repairs.append(f"dropped {dropped} degenerate faces")
    if len(f) == 0:
        raise InputFileError(f"{source_name}: has no non-degenerate triangles")
    v, f, unused = drop_unused_vertices(v, f)
    if unused:
        repairs.append(f"dropped {unused} vertices not used by any face")
    for r in repairs:
        logger.info("%s: %s", source_name, r)
    v = v * MM_PER_UNIT[units]
    v.setflags(write=False)
    f.setflags(write=False)
    return SurfaceScan(v, f, source_name, sha256, units, has_texture, tuple(repairs))


def load_scan(path: str | os.PathLike, *, units: str = "mm", face_sized: bool = True) -> SurfaceScan:
    """Read a surface scan (OBJ, PLY, STL, OFF, GLB) and convert it to millimetres.

    Raises
    ------
    InputFileError
        Missing, unreadable, corrupt, empty, point-cloud-only or absurdly large file.
    UnitsError
        The mesh is implausibly sized for a face in ``units``; the message says
        which units it looks like.
    """
    import trimesh

    check_option("units", units, MM_PER_UNIT)
    path = Path(path)
    name = path.name
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if not path.is_file():
        raise InputFileError(f"{path}: is not a file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputFileError(
            f"{path}: unsupported format {suffix or '(no extension)'}; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path}: is empty")
    if size > MAX_FILE_BYTES:
        raise InputFileError(f"{path}: is {size / 1024**3:.1f} GB, larger than the {MAX_FILE_BYTES / 1024**3:.0f} GB limit")
    try:
        loaded = trimesh.load(path, process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many types on corrupt files
        raise InputFileError(f"{path}: cannot be read as a {suffix[1:].upper()} mesh ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if isinstance(loaded, trimesh.Scene):
        geoms = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh)] if loaded.geometry else []
        if not geoms:
            kinds = {type(g).__name__ for g in loaded.geometry.values()}
            if kinds & {"PointCloud"}:
                raise InputFileError(f"{path}: is a point cloud without faces; hemiface needs a surface mesh")
            raise InputFileError(f"{path}: contains no surface mesh")
        mesh = trimesh.util.concatenate(geoms) if len(geoms) > 1 else geoms[0]
    elif isinstance(loaded, trimesh.PointCloud):
        raise InputFileError(f"{path}: is a point cloud without faces; hemiface needs a surface mesh")
    elif isinstance(loaded, trimesh.Trimesh):
        mesh = loaded
    else:
        raise InputFileError(f"{path}: contains no surface mesh ({type(loaded).__name__})")
    vertices = np.asarray(mesh.vertices)
    faces = np.asarray(mesh.faces)
    if len(vertices) > MAX_VERTICES:
        raise InputFileError(f"{path}: has {len(vertices):,} vertices, more than the {MAX_VERTICES:,} limit")
    if len(vertices) == 0:
        raise InputFileError(f"{path}: contains no vertices")
    if len(faces) == 0:
        raise InputFileError(f"{path}: is a point cloud without faces; hemiface needs a surface mesh")
    has_texture = getattr(mesh.visual, "kind", None) in ("texture", "vertex")
    return scan_from_arrays(
        vertices, faces, units=units, source_name=name, sha256=sha256_file(path), has_texture=has_texture,
        face_sized=face_sized,
    )
