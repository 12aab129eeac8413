"""Closing a scan's small holes: flat triangles on the rim, refined and faired to the skin around.

A hole (a nostril, an eye, a specular dropout on the cheek) is first triangulated on
its own border by VTK's hole filler (:func:`fill_small_holes`). A flat patch is the
wrong surface where the skin curves: over the deepest part of a defect it lifts the
floor to the rim's level (a 5 mm hole at the bottom of a round 5,000 mm3 dent read
0.31 mm too shallow, an 8 mm one 0.70 mm), and on the unaffected side it flattens the
mirrored reference. :func:`fair_filled_holes` therefore gives each patch interior
vertices at the density of the mesh around it (Liepa's refinement: centroid splits
and Delaunay edge flips; P. Liepa, "Filling holes in meshes", SGP 2003) and moves
them onto the biharmonic surface (``igl.harmonic``, k = 2, cotangent weights) that
continues the position and the slope of the skin around the hole: the scan's own
vertices stay fixed, with three rings of them around every hole as the boundary
condition (:func:`close_small_holes` does all of it; a loop VTK leaves open gets a fan first). libigl has the solver but no refinement of a hole patch, which is written
here (about 60 lines of list work on a patch of at most a few thousand triangles).
"""

from __future__ import annotations

import math

import numpy as np

from ._mesh import boundary_edges, face_area_vectors, face_areas_mm2, hole_edges, vertex_components, vertex_normals

#: Liepa's density factor: a triangle is split while its centroid lies farther than
#: sigma / sqrt(2) from each of its corners (sigma: the mean edge length around a corner).
_DENSITY = math.sqrt(2.0)
#: Rings of the scan's own vertices around a hole held fixed for the biharmonic fill.
_RINGS = 3


def fill_small_holes(vertices: np.ndarray, faces: np.ndarray, max_radius_mm: float) -> tuple[np.ndarray, int, float]:
    """Close every hole whose bounding sphere's radius is at most ``max_radius_mm``.

    VTK's hole filler (``open3d.t.geometry.TriangleMesh.fill_holes``) triangulates each such
    border loop on its own vertices: no vertex is added or moved, the original faces come
    first and unchanged, and the open border of the scan (a larger loop) stays open. A new
    triangle is turned to face the way the surface around it faces (the filler does not
    keep the winding). Returns (faces, number of holes closed, area closed in mm2).
    """
    if max_radius_mm <= 0:
        return faces, 0, 0.0
    from .._open3d import open3d

    o3d = open3d()
    mesh = o3d.t.geometry.TriangleMesh()
    mesh.vertex.positions = o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float64))
    mesh.triangle.indices = o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.int64))
    filled = mesh.fill_holes(hole_size=float(max_radius_mm))
    out = filled.triangle.indices.numpy().astype(faces.dtype)
    if len(filled.vertex.positions) != len(vertices) or not np.array_equal(out[: len(faces)], faces):
        raise RuntimeError("internal error: the hole filler changed the scan's own vertices or faces")
    new = out[len(faces):]
    if not len(new):
        return faces, 0, 0.0
    around = vertex_normals(vertices, faces)[new].sum(axis=1)
    flip = np.einsum("ij,ij->i", face_area_vectors(vertices, new), around) < 0
    new[flip] = new[flip][:, ::-1]
    _, labels = vertex_components(len(vertices), new)
    n_holes = len(np.unique(labels[new[:, 0]]))
    return np.concatenate([faces, new]), n_holes, float(face_areas_mm2(vertices, new).sum())


def close_small_holes(vertices: np.ndarray, faces: np.ndarray, max_radius_mm: float):
    """Close every hole of the surface whose border fits in a sphere of ``max_radius_mm``, on the skin around it.

    VTK's filler (:func:`fill_small_holes`) triangulates each such border; a part of a
    border it leaves open (it can leave a small loop of a long, crooked border) is closed by
    a fan around a new vertex. Then every patch is refined and faired (module docstring).
    The scan's own vertices and faces come first and unchanged, the scan's open border and
    larger holes stay open. Returns (vertices, faces, number of holes closed, area closed in mm2).
    """
    if max_radius_mm <= 0:
        return vertices, faces, 0, 0.0
    n_own, n_fixed = len(faces), len(vertices)
    holes = hole_edges(vertices, boundary_edges(faces))
    if not len(holes):
        return vertices, faces, 0, 0.0
    before = _loops(n_fixed, holes)
    rim = np.zeros(n_fixed, bool)
    rim[holes.ravel()] = True
    faces, _, _ = fill_small_holes(vertices, faces, max_radius_mm)
    fans, centres = [], []
    for loop in _loops(n_fixed, _rim_border(faces, rim)):
        ends = vertices[loop.ravel()]
        centre = ends.mean(axis=0)
        if np.linalg.norm(ends - centre, axis=1).max() <= max_radius_mm:
            k = n_fixed + len(centres)
            centres.append(centre)
            fans.append(np.column_stack([loop[:, 1], loop[:, 0], np.full(len(loop), k)]))
    if fans:
        vertices = np.concatenate([vertices, np.asarray(centres)])
        faces = np.concatenate([faces, *[f.astype(faces.dtype) for f in fans]])
        rim = np.concatenate([rim, np.zeros(len(centres), bool)])
    if len(faces) == n_own:
        return vertices, faces, 0, 0.0
    still_open = {tuple(e) for e in _rim_border(faces, rim)}
    n_holes = sum(not any(tuple(e) in still_open for e in loop) for loop in before)
    vertices, faces = fair_filled_holes(vertices, faces, n_own, n_fixed)
    return vertices, faces, n_holes, float(face_areas_mm2(vertices, faces[n_own:]).sum())


def _rim_border(faces, rim):
    """The border edges between two ``rim`` vertices (the holes' borders), found on the faces around them only
    (a whole scan's borders cost seconds at millions of faces)."""
    edges = boundary_edges(faces[rim[faces].any(axis=1)])
    return edges[rim[edges].all(axis=1)]


def _loops(n_vertices, edges):
    """Border edges grouped into connected loops: a list of (k, 2) directed edge arrays."""
    _, labels = vertex_components(n_vertices, np.column_stack([edges, edges[:, 1]]))
    loop = labels[edges[:, 0]]
    return [edges[loop == k] for k in np.unique(loop)]


def fair_filled_holes(vertices: np.ndarray, faces: np.ndarray, n_own: int, n_fixed: int | None = None):
    """Refine the hole patches ``faces[n_own:]`` and move their new vertices onto the biharmonic fill.

    The scan's own faces (``faces[:n_own]``) and vertices (``vertices[:n_fixed]``, all of
    them by default) stay as they are and first; the vertices from ``n_fixed`` on (a fan's
    centre) and the refinement's, appended, are placed by the fill. Returns (vertices, faces).
    """
    n_fixed = len(vertices) if n_fixed is None else n_fixed
    own, patch = faces[:n_own], faces[n_own:]
    if not len(patch):
        return vertices, faces
    touching = np.zeros(len(vertices), bool)
    touching[patch.ravel()] = True
    sigma = _mean_edge_length_at(vertices, own[touching[own].any(axis=1)])
    sigma[n_fixed:] = [np.mean(sigma[patch[(patch == k).any(axis=1)][:, :2].ravel()]) for k in range(n_fixed, len(vertices))]
    points = []  # the new vertices, appended as they are made
    refined = []
    _, labels = vertex_components(len(vertices), patch)
    for hole in np.unique(labels[patch[:, 0]]):
        tris = patch[labels[patch[:, 0]] == hole]
        refined.extend(_refine(vertices, sigma, tris.tolist(), points, len(vertices)))
    v = np.concatenate([vertices, np.reshape(points, (-1, 3))]) if points else vertices
    f = np.concatenate([own, np.asarray(refined, dtype=faces.dtype)])
    if len(v) > n_fixed:
        v = _biharmonic(v, f, n_own, n_fixed)
    return v, f


def _mean_edge_length_at(vertices, faces):
    """Each vertex's mean edge length over the faces around it (0 where it has none)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(vertices[edges[:, 1]] - vertices[edges[:, 0]], axis=1)
    total = np.bincount(edges.ravel(), weights=np.repeat(length, 2), minlength=len(vertices))
    count = np.bincount(edges.ravel(), minlength=len(vertices))
    return total / np.maximum(count, 1)


def _refine(vertices, sigma, tris, points, n_vertices):
    """Liepa's refinement of one hole patch: centroid splits while the patch is coarser than the
    mesh around it, each round followed by Delaunay flips of its interior edges."""
    sig = {}

    def pos(i):
        return vertices[i] if i < n_vertices else points[i - n_vertices]

    def s(i):
        return sigma[i] if i < n_vertices else sig[i]

    for _ in range(64):
        split = []
        for a, b, c in tris:
            centre = (pos(a) + pos(b) + pos(c)) / 3.0
            sc = (s(a) + s(b) + s(c)) / 3.0
            d = [_DENSITY * float(np.linalg.norm(centre - pos(m))) for m in (a, b, c)]
            if all(dm > sc and dm > s(m) for dm, m in zip(d, (a, b, c))):
                k = n_vertices + len(points)
                points.append(centre)
                sig[k] = sc
                split.extend([[a, b, k], [b, c, k], [c, a, k]])
            else:
                split.append([a, b, c])
        if len(split) == len(tris):
            break
        tris = _delaunay_flips(pos, split)
    return tris


def _delaunay_flips(pos, tris):
    """Flip every interior edge of the patch whose two opposite angles add up to more than pi."""
    for _ in range(100):
        flipped = False
        edge_tri = {}
        for t, tri in enumerate(tris):
            for k in range(3):
                edge_tri.setdefault(frozenset((tri[k], tri[(k + 1) % 3])), []).append(t)
        edges = {frozenset((tri[k], tri[(k + 1) % 3])) for tri in tris for k in range(3)}
        touched = set()
        for edge, owners in edge_tri.items():
            if len(owners) != 2 or owners[0] in touched or owners[1] in touched:
                continue
            t1, t2 = tris[owners[0]], tris[owners[1]]
            c = next(x for x in t1 if x not in edge)
            d = next(x for x in t2 if x not in edge)
            if frozenset((c, d)) in edges:
                continue
            a, b = (t1[(t1.index(c) + 1) % 3], t1[(t1.index(c) + 2) % 3])  # t1 = (c, a, b) in its winding
            if _angle(pos, a, c, b) + _angle(pos, a, d, b) <= math.pi + 1e-9:
                continue
            tris[owners[0]], tris[owners[1]] = [c, a, d], [d, b, c]
            edges.add(frozenset((c, d)))
            touched.update(owners)
            flipped = True
        if not flipped:
            break
    return tris


def _angle(pos, a, apex, b):
    """The angle at ``apex`` of the triangle (a, apex, b), in plain floats (called for every edge of every pass)."""
    (px, py, pz), (qx, qy, qz), (rx, ry, rz) = pos(a).tolist(), pos(apex).tolist(), pos(b).tolist()
    ux, uy, uz, wx, wy, wz = px - qx, py - qy, pz - qz, rx - qx, ry - qy, rz - qz
    norm = math.sqrt((ux * ux + uy * uy + uz * uz) * (wx * wx + wy * wy + wz * wz))
    cos = (ux * wx + uy * wy + uz * wz) / max(norm, 1e-300)
    return math.acos(min(1.0, max(-1.0, cos)))


def _biharmonic(v, f, n_own, n_fixed):
    """Move the vertices from ``n_fixed`` on onto the biharmonic surface over the patches,
    with ``_RINGS`` rings of the scan's own faces around them as the boundary condition."""
    import igl

    near = np.zeros(len(v), bool)
    near[n_fixed:] = True
    n = len(v)
    # One ring per pass: the vertices of every face that touches the set (no whole-mesh adjacency matrix).
    for _ in range(_RINGS):
        near[f[near[f].any(axis=1)]] = True
    keep = near[f].all(axis=1)
    keep[n_own:] = True
    sub = f[keep]
    used = np.unique(sub)
    local = np.full(n, -1, np.int64)
    local[used] = np.arange(len(used))
    fixed = np.flatnonzero(used < n_fixed)
    free = np.flatnonzero(used >= n_fixed)
    faired = igl.harmonic(np.ascontiguousarray(v[used], dtype=np.float64), np.ascontiguousarray(local[sub], dtype=np.int64),
                          fixed.astype(np.int64), np.ascontiguousarray(v[used[fixed]], dtype=np.float64), 2)
    out = v.copy()
    out[used[free]] = faired[free]
    return out
