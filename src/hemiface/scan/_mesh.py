"""Triangle-mesh primitives used by the analyses: normals, borders, clipping, volumes.

All functions are pure: they take arrays and return new arrays.
Sign convention for normals: faces are counter-clockwise seen from outside, so
``cross(v1 - v0, v2 - v0)`` points out of the face (anterior on a face scan).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def face_area_vectors(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(m, 3) area vectors: the face normal scaled by the face area."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return 0.5 * np.cross(v1 - v0, v2 - v0)


def face_areas_mm2(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    return np.linalg.norm(face_area_vectors(vertices, faces), axis=1)


def vertex_areas_mm2(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """A third of each adjacent triangle's area at each vertex."""
    area = np.zeros(len(vertices))
    a = face_areas_mm2(vertices, faces) / 3.0
    for k in range(3):
        np.add.at(area, faces[:, k], a)
    return area


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a = face_area_vectors(vertices, faces)
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    a = face_area_vectors(vertices, faces)
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], a)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(k, 2) directed edges that belong to exactly one face (the open border and holes)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    key = lo.astype(np.int64) * (int(hi.max(initial=0)) + 1) + hi  # one integer per undirected edge: a 1-D sort
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return edges[counts[inverse.reshape(-1)] == 1]


def boundary_points(vertices: np.ndarray, faces: np.ndarray, *, spacing_mm: float = 1.0, edges=None) -> np.ndarray:
    """Points along every border edge, no farther apart than ``spacing_mm`` (``edges``: the
    :func:`boundary_edges` of ``faces``, when already found)."""
    edges = boundary_edges(faces) if edges is None else edges
    if len(edges) == 0:
        return np.empty((0, 3))
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    lengths = np.linalg.norm(b - a, axis=1)
    steps = np.maximum(1, np.ceil(lengths / spacing_mm).astype(int))
    idx = np.repeat(np.arange(len(edges)), steps)
    offsets = np.arange(len(idx)) - np.repeat(np.cumsum(steps) - steps, steps)
    t = (offsets / steps[idx])[:, None]
    return a[idx] + t * (b[idx] - a[idx])


def hole_edges(vertices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The border edges of the surface's holes among its :func:`boundary_edges` ``edges``: every border loop
    but the longest (the scan's open border)."""
    if not len(edges):
        return edges
    _, labels = vertex_components(len(vertices), np.column_stack([edges, edges[:, 1]]))
    loop = labels[edges[:, 0]]
    lengths = np.bincount(loop, weights=np.linalg.norm(vertices[edges[:, 1]] - vertices[edges[:, 0]], axis=1))
    return edges[loop != np.argmax(lengths)]


def vertex_components(n_vertices: int, faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the vertices through shared faces."""
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_vertices, n_vertices))
    return connected_components(graph, directed=False)


def submesh(vertices: np.ndarray, faces: np.ndarray, face_mask: np.ndarray, attrs: dict | None = None):
    """Keep the masked faces and the vertices they use; per-vertex ``attrs`` follow."""
    f = faces[face_mask]
    used = np.zeros(len(vertices), bool)
    used[f.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    out_attrs = {k: np.asarray(a)[used] for k, a in (attrs or {}).items()}
    return vertices[used], remap[f], out_attrs, np.flatnonzero(used)


def clip_by_scalar(vertices: np.ndarray, faces: np.ndarray, scalar: np.ndarray, attrs: dict | None = None, *, level: float = 0.0):
    """Keep the part of the surface where ``scalar > level``, cutting triangles along the level set.

    The scalar is taken as linear over each triangle. Cut points are shared
    between neighbouring triangles, so the result stays a connected manifold
    patch; per-vertex ``attrs`` (arrays of shape (n,) or (n, k)) are
    interpolated linearly. Returns ``(vertices, faces, attrs, on_cut)`` where
    ``on_cut`` marks the new vertices lying on the level set.
    """
    attrs = dict(attrs or {})
    s = np.asarray(scalar, dtype=np.float64) - level
    pos = s > 0
    npos = pos[faces].sum(axis=1)
    keep_faces = [faces[npos == 3]]

    # Rotate partial triangles (keeping orientation) so the odd vertex comes first.
    def rotated(mask, odd_is_positive):
        f = faces[mask]
        flag = pos[f] if odd_is_positive else ~pos[f]
        first = np.argmax(flag, axis=1)
        order = (first[:, None] + np.arange(3)[None, :]) % 3
        return np.take_along_axis(f, order, axis=1)

    one = rotated(npos == 1, True)  # (p, n1, n2)
    two = rotated(npos == 2, False)  # (n, p1, p2)
    cut_edges = np.concatenate([one[:, [0, 1]], one[:, [0, 2]], two[:, [1, 0]], two[:, [2, 0]]])  # (pos, neg)
    n_v = len(vertices)
    if len(cut_edges):
        key = cut_edges[:, 0].astype(np.int64) * n_v + cut_edges[:, 1]
        uniq_key, first_idx, inverse = np.unique(key, return_index=True, return_inverse=True)
        ue = cut_edges[first_idx]
        t = s[ue[:, 0]] / (s[ue[:, 0]] - s[ue[:, 1]])
        new_v = vertices[ue[:, 0]] + t[:, None] * (vertices[ue[:, 1]] - vertices[ue[:, 0]])
        new_attrs = {}
        for k, a in attrs.items():
            a = np.asarray(a)
            tt = t.reshape((-1,) + (1,) * (a.ndim - 1))
            new_attrs[k] = a[ue[:, 0]] + tt * (a[ue[:, 1]] - a[ue[:, 0]])
        cut_index = n_v + inverse.reshape(-1)
        m1, m2 = len(one), len(two)
        e_p_n1, e_p_n2 = cut_index[:m1], cut_index[m1 : 2 * m1]
        e_p1_n, e_p2_n = cut_index[2 * m1 : 2 * m1 + m2], cut_index[2 * m1 + m2 :]
        keep_faces.append(np.stack([one[:, 0], e_p_n1, e_p_n2], axis=1))
        keep_faces.append(np.stack([two[:, 1], two[:, 2], e_p2_n], axis=1))
        keep_faces.append(np.stack([two[:, 1], e_p2_n, e_p1_n], axis=1))
        all_v = np.concatenate([vertices, new_v])
        all_attrs = {k: np.concatenate([np.asarray(a), new_attrs[k]]) for k, a in attrs.items()}
    else:
        all_v, all_attrs = vertices, {k: np.asarray(a) for k, a in attrs.items()}
    on_cut = np.zeros(len(all_v), bool)
    on_cut[n_v:] = True
    all_attrs["__on_cut"] = on_cut
    f = np.concatenate(keep_faces) if keep_faces else np.empty((0, 3), np.int64)
    v, f, out_attrs, _ = submesh(all_v, f, np.ones(len(f), bool), all_attrs)
    on_cut = out_attrs.pop("__on_cut")
    return v, f, out_attrs, on_cut


def swept_volumes_mm3(bottom: np.ndarray, top: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face volume of the solid swept from a bottom triangle to its top triangle.

    Each vertex ``i`` moves straight from ``bottom[i]`` to ``top[i]``; the solid
    between the two triangles has ruled side walls, and its volume is exact:
    ``V = (D0 + D1 + D2) / 6 . (A / 3 + B / 3 + M / 6)`` with ``D`` the vertex
    offsets, ``A`` and ``B`` the doubled area vectors of bottom and top and ``M``
    their mixed term. Neighbouring faces share walls, so the sum over a patch is
    the volume enclosed between the two surfaces. Positive where the top lies
    on the outer side (the side the bottom's normals point to).
    """
    p0, p1, p2 = (bottom[faces[:, k]] for k in range(3))
    q0, q1, q2 = (top[faces[:, k]] for k in range(3))
    pu, pv, qu, qv = p1 - p0, p2 - p0, q1 - q0, q2 - q0
    n = np.cross(pu, pv) / 3 + np.cross(qu, qv) / 3 + (np.cross(pu, qv) + np.cross(qu, pv)) / 6
    d = (q0 - p0) + (q1 - p1) + (q2 - p2)
    return np.einsum("ij,ij->i", d, n) / 6.0


def column_volume_mm3(vertices: np.ndarray, faces: np.ndarray, *, axis: int = 2, base: float = 0.0) -> float:
    """Signed volume between a surface patch and the plane ``x[axis] = base``.

    The integral of ``(x[axis] - base) n[axis] dA``: for a patch seen from the
    +axis side, the volume of the columns that drop from it to the base plane
    (exact for triangles; folds such as under the nose count with their sign).
    """
    a = face_area_vectors(vertices, faces)
    centroid_height = vertices[faces, axis].mean(axis=1) - base
    return float(np.sum(centroid_height * a[:, axis]))


def smooth_vertex_field(vertices: np.ndarray, faces: np.ndarray, values: np.ndarray, sigma_mm: float) -> np.ndarray:
    """Smooth per-vertex values over the surface with a Gaussian of about ``sigma_mm``.

    Repeated half-steps toward the 1-ring mean (uniform Laplacian, weight 1/2)
    act as diffusion: each adds about ``h^2 / 4`` of variance per axis, with
    ``h`` the RMS edge length, so ``ceil(4 sigma^2 / h^2)`` steps give a
    Gaussian of ``sigma_mm`` whatever the mesh density.
    """
    if sigma_mm <= 0 or len(faces) == 0:
        return np.asarray(values, dtype=float).copy()
    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    mean_of_ring = sparse.diags(1.0 / np.maximum(degree, 1)) @ adjacency
    h2 = float(np.mean(np.sum((vertices[edges[:, 0]] - vertices[edges[:, 1]]) ** 2, axis=1)))
    steps = int(np.ceil(4.0 * sigma_mm**2 / h2))
    x = np.asarray(values, dtype=float).copy()
    for _ in range(steps):
        x = 0.5 * x + 0.5 * (mean_of_ring @ x)
    return x


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A coarse copy of a mesh: vertices merged per ``voxel_mm`` cube (open3d's vertex clustering; winding kept)."""
    from .._open3d import open3d

    o3d = open3d()
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
                                     o3d.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)))
    simple = mesh.simplify_vertex_clustering(voxel_size=voxel_mm)
    return np.asarray(simple.vertices), np.asarray(simple.triangles).astype(np.int64)


def refine_to_edge_length(vertices: np.ndarray, faces: np.ndarray, max_edge_mm: float):
    """Midpoint-subdivide until the RMS edge length is at most ``max_edge_mm``.

    Linear subdivision leaves the surface exactly as it was; it only adds
    vertices, where depth is evaluated and integrated.
    """
    import trimesh

    def rms_edge(v, f):
        e = v[f[:, [1, 2, 0]]] - v[f]
        return float(np.sqrt(np.mean(np.sum(e**2, axis=2))))

    while len(faces) and rms_edge(vertices, faces) > max_edge_mm:
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    return vertices, faces
