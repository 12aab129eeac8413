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
class SurfaceTexture:
    """A scan's surface colour: an image mapped by per-corner UV coordinates, or colours per vertex.

    Attributes
    ----------
    image : (h, w, 3) uint8 RGB, or None for vertex colours
    corner_uv : (m, 3, 2) float, the UV of each face's three corners, aligned with the scan's faces
        (u to the image's right, v up, both in [0, 1] over the image), or None
    vertex_rgb : (n, 3) uint8, aligned with the scan's vertices, or None
    """

    image: np.ndarray | None = None
    corner_uv: np.ndarray | None = None
    vertex_rgb: np.ndarray | None = None

    def colour_at(self, faces: np.ndarray, face_ids: np.ndarray, barycentric_uv: np.ndarray) -> np.ndarray:
        """(k, 3) RGB in [0, 1] at surface points given by face ids and barycentric (u, v), where the
        point is ``(1 - u - v) * corner0 + u * corner1 + v * corner2`` (open3d's ray-cast convention)."""
        u, v = barycentric_uv[:, 0:1], barycentric_uv[:, 1:2]
        weights = np.concatenate([1 - u - v, u, v], axis=1)[:, :, None]  # (k, 3, 1)
        if self.vertex_rgb is not None:
            corners = self.vertex_rgb[faces[face_ids]].astype(np.float64)  # (k, 3, 3)
            return (weights * corners).sum(axis=1) / 255.0
        uv = (weights * self.corner_uv[face_ids]).sum(axis=1)
        h, w = self.image.shape[:2]
        # Bilinear sampling; UVs outside [0, 1] wrap (OBJ's repeat convention).
        x = np.mod(uv[:, 0], 1.0) * w - 0.5
        y = (1.0 - np.mod(uv[:, 1], 1.0)) * h - 0.5
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        img = self.image

        def at(yy, xx):
            return img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.float64)

        top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
        bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
        return (top * (1 - fy) + bottom * fy) / 255.0


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
    texture : the surface colour (:class:`SurfaceTexture`) when it could be read, else None
    """

    vertices_mm: np.ndarray
    faces: np.ndarray
    source_name: str = "<memory>"
    sha256: str = ""
    units: str = "mm"
    has_texture: bool = False
    repairs: tuple[str, ...] = field(default_factory=tuple)
    texture: SurfaceTexture | None = None


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


def _may_coincide(vertices: np.ndarray) -> bool:
    """Whether two vertices may lie at exactly the same position: only rows sharing an x can (a 1-D sort of x,
    then the rows sort on those few; the full row sort takes about 0.8 s on 400,000 vertices)."""
    x = vertices[:, 0]
    order = np.argsort(x, kind="stable")
    same = x[order[1:]] == x[order[:-1]]
    if not same.any():
        return False
    rows = vertices[order[np.r_[same, False] | np.r_[False, same]]]
    return len(np.unique(rows, axis=0)) < len(rows)


def merge_coincident_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge vertices at exactly the same position (texture seams split them in OBJ files)."""
    if not _may_coincide(vertices):
        return vertices, faces, 0
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    merged = len(vertices) - len(unique)
    if merged == 0:
        return vertices, faces, 0
    return unique, inverse.reshape(-1)[faces], merged


def _valid_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Mask of the faces that have three distinct vertices and non-zero area."""
    f = faces
    distinct = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    cross = np.cross(vertices[f[:, 1]] - vertices[f[:, 0]], vertices[f[:, 2]] - vertices[f[:, 0]])
    nonzero = np.einsum("ij,ij->i", cross, cross) > 0
    return distinct & nonzero


def clean_faces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop faces that repeat a vertex or have zero area."""
    keep = _valid_faces(vertices, faces)
    return faces[keep], int((~keep).sum())


def _checked_texture(texture: SurfaceTexture | None, n_vertices: int, n_faces: int, name: str) -> SurfaceTexture | None:
    if texture is None:
        return None
    if texture.vertex_rgb is not None:
        rgb = np.asarray(texture.vertex_rgb)
        if rgb.shape != (n_vertices, 3):
            raise InputFileError(f"{name}: vertex colours have shape {rgb.shape}, expected ({n_vertices}, 3)")
        return SurfaceTexture(vertex_rgb=np.clip(rgb, 0, 255).astype(np.uint8))
    image, uv = np.asarray(texture.image), np.asarray(texture.corner_uv, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputFileError(f"{name}: texture image has shape {image.shape}, expected (h, w, 3)")
    if uv.shape != (n_faces, 3, 2) or not np.isfinite(uv).all():
        raise InputFileError(f"{name}: texture coordinates have shape {uv.shape} (or are not finite), expected "
                             f"({n_faces}, 3, 2)")
    return SurfaceTexture(image=image.astype(np.uint8), corner_uv=uv)


def drop_unused_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    used = np.zeros(len(vertices), bool)
    used[faces.reshape(-1)] = True
    if used.all():
        return vertices, faces, 0
    remap = np.cumsum(used) - 1
    return vertices[used], remap[faces], int((~used).sum())


def scan_from_arrays(
    vertices, faces, *, units: str = "mm", source_name: str = "<memory>", sha256: str = "", has_texture: bool = False,
    face_sized: bool = True, texture: SurfaceTexture | None = None,
) -> SurfaceScan:
    """Build a SurfaceScan from arrays, with the same checks and repairs as :func:`load_scan`.

    ``face_sized=False`` skips the face-size plausibility check (for meshes that are
    not faces: a printed defect solid, a mask of stable areas). ``texture`` (aligned with the
    given vertices and faces) is carried through the repairs.
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
    texture = _checked_texture(texture, len(v), len(f), source_name)
    repairs = []
    if texture is not None and texture.vertex_rgb is not None:
        _, first = np.unique(v, axis=0, return_index=True)  # the order merge_coincident_vertices keeps
    v, f, merged = merge_coincident_vertices(v, f)
    if merged:
        repairs.append(f"merged {merged} coincident vertices (texture seams)")
        if texture is not None and texture.vertex_rgb is not None:
            texture = SurfaceTexture(vertex_rgb=texture.vertex_rgb[first])  # the first vertex's colour
    keep = _valid_faces(v, f)
    f, dropped = f[keep], int((~keep).sum())
    if dropped:
        repairs.append(f"dropped {dropped} degenerate faces")
        if texture is not None and texture.corner_uv is not None:
            texture = SurfaceTexture(image=texture.image, corner_uv=texture.corner_uv[keep])
    if len(f) == 0:
        raise InputFileError(f"{source_name}: has no non-degenerate triangles")
    used = np.zeros(len(v), bool)
    used[f.reshape(-1)] = True
    v, f, unused = drop_unused_vertices(v, f)
    if unused:
        repairs.append(f"dropped {unused} vertices not used by any face")
        if texture is not None and texture.vertex_rgb is not None:
            texture = SurfaceTexture(vertex_rgb=texture.vertex_rgb[used])
    for r in repairs:
        logger.info("%s: %s", source_name, r)
    v = v * MM_PER_UNIT[units]
    v.setflags(write=False)
    f.setflags(write=False)
    if texture is not None:
        for array in (texture.image, texture.corner_uv, texture.vertex_rgb):
            if array is not None:
                array.setflags(write=False)
    return SurfaceScan(v, f, source_name, sha256, units, has_texture or texture is not None, tuple(repairs), texture)


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
        # An OBJ is read with its vertices split where a texture seam gives one position two UVs (so each
        # face corner keeps its own UV); scan_from_arrays merges the split copies again. Other formats
        # keep one vertex per stored vertex.
        loaded = trimesh.load(path, process=False, maintain_order=suffix != ".obj")
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
    texture = _read_texture(mesh, path) if has_texture else None
    return scan_from_arrays(
        vertices, faces, units=units, source_name=name, sha256=sha256_file(path), has_texture=has_texture,
        face_sized=face_sized, texture=texture,
    )


def _read_texture(mesh, path: Path) -> SurfaceTexture | None:
    """The mesh's texture image with per-corner UVs, or its vertex colours; None (logged) when they
    cannot be read. UVs are per vertex; an OBJ is loaded split at texture seams (see :func:`load_scan`),
    so each corner's UV is its own even where two faces meet at a seam."""
    visual = mesh.visual
    try:
        if visual.kind == "vertex":
            return _informative(SurfaceTexture(vertex_rgb=np.asarray(visual.vertex_colors)[:, :3]), path.name)
        material = visual.material
        image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
        if image is None or visual.uv is None:
            logger.info("%s: has texture coordinates but no readable texture image; rendered untextured", path.name)
            return None
        corner_uv = np.asarray(visual.uv, dtype=np.float64)[np.asarray(mesh.faces)]
        return _informative(SurfaceTexture(image=np.asarray(image.convert("RGB")), corner_uv=corner_uv), path.name)
    except Exception as exc:  # a texture is optional: an unreadable one must not stop the analysis
        logger.info("%s: texture not read (%s: %s); rendered untextured", path.name, type(exc).__name__, exc)
        return None


def _informative(texture: SurfaceTexture, name: str) -> SurfaceTexture | None:
    """None (logged) for a texture of a single colour: trimesh supplies a uniform placeholder image for
    an OBJ with texture coordinates but no image, and such a texture carries nothing to render."""
    colours = texture.vertex_rgb if texture.vertex_rgb is not None else texture.image
    if np.ptp(np.asarray(colours).reshape(-1, 3), axis=0).max() == 0:
        logger.info("%s: texture or vertex colours are a single colour; rendered untextured", name)
        return None
    return texture
