"""The printable defect: a closed solid between the affected skin and the mirrored skin.

Bottom: the affected surface over the defect, top: each bottom vertex's closest
point on the mirrored unaffected surface. Where the depth falls to zero the
two coincide and are merged; any other open edge (the midline, the face
region's edge) gets a side wall. Its volume equals the defect volume, which is
the same swept solid integrated exactly (see ``_mesh.swept_volumes_mm3``).
"""

from __future__ import annotations

import numpy as np

from .._errors import HemifaceError
from ._defect import Patch
from ._mesh import boundary_edges


def defect_solid(patch: Patch, *, merge_tolerance_mm: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces (outward normals) of the closed defect solid.

    Top and bottom coincide only on the rim (pinned there by the clip); the
    rim sits at a depth of ``DEPTH_EPS_MM`` so every other vertex pair is at
    least that far apart, which survives STL's float32 coordinates.
    """
    n = len(patch.vertices)
    if n == 0:
        raise HemifaceError("there is no defect to build a solid from")
    coincide = np.linalg.norm(patch.top - patch.vertices, axis=1) <= merge_tolerance_mm
    top_index = np.arange(n, 2 * n)
    top_index[coincide] = np.flatnonzero(coincide)
    vertices = np.concatenate([patch.vertices, patch.top])
    bottom_faces = patch.faces[:, ::-1]  # the solid lies on the bottom's outer side
    top_faces = top_index[patch.faces]
    walls = []
    for a, b in boundary_edges(patch.faces):
        ta, tb = top_index[a], top_index[b]
        # Edge a->b runs counter-clockwise around the patch seen from outside.
        walls.append((a, b, ta))
        walls.append((b, tb, ta))
    faces = np.concatenate([bottom_faces, top_faces, np.array(walls, dtype=np.int64).reshape(-1, 3)])
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    faces = faces[distinct]
    used = np.zeros(len(vertices), bool)
    used[faces.reshape(-1)] = True
    remap = np.cumsum(used) - 1
    return vertices[used], remap[faces]
