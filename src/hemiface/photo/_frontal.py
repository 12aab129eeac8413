"""Pose compensation: the face's landmarks and outline as seen straight from the front.

A turned head moves a 2D symmetry ratio by about 2 points per degree: the face's
silhouette lies well behind the pupils, so turning the nose toward one side
widens the near hemiface in the image and narrows the far one. hemiface undoes
the turn with the face's own 3D shape, the 478-point face mesh (its z is in the
same px scale as x and y):

1. **Head axes** from the mesh in 3D (:func:`head_axes`): the left-right axis
   ``ex`` is the normal of the plane through the mesh's 28 midline vertices
   (those ``MIRROR_MAP`` maps to themselves; toward the patient's left): they
   spread in height and depth (the nose stands about half an interpupillary
   distance in front of the eyes), so a turn tilts their plane by parallax.
   The vertical axis ``ey`` is :data:`POSE_TEMPLATE`'s vertical axis as a 3D
   similarity fit of that template's 15 points places it in the mesh, made
   perpendicular to ``ex``; ``ez = ex x ey`` points into the head. "Frontal" is
   the view in which the midline plane contains the viewing direction and the
   template's eye-corner / mouth-corner plane faces the camera. Yaw, pitch and
   roll are read off these axes.
2. **Depth of every 2D point** in the head frame: a named point that the mesh
   has (``MESH_POINTS``) takes its mesh vertex's depth; a point of the face
   outline takes the depth of the mesh's face oval at the same angle around the
   oval's centre (interpolated), and so do outline-derived points (menton,
   gonion, jaw points).
3. **Lift and turn**: with its depth ``z`` known, each 2D image point ``q``
   gives the head-frame point ``(x, y, z)`` whose projection is ``q``
   (``q = c + x ex + y ey + z ez`` in the image's two axes, solved for x and y);
   the frontal view is ``(x, y)``.

**Near and far silhouettes.** On a turned head the outline seen on the near
side is a contour further back on the cheek than the frontal silhouette, and on
the far side one further forward: different curves on the face. Step 3 treats
each outline point as lying at the depth of the *frontal* silhouette (the face
oval's depth there). By the envelope theorem this is exact to first order in
the turn: the silhouette at angle t is where ``x cos t + z sin t`` is largest
over the cross-section, whose derivative at t = 0 is the frontal silhouette
point's ``z``; so the near and the far side's occluding contours both map back
onto the frontal silhouette, each with an error of order ``t**2`` (0.015 of the
local curvature radius at 10 degrees), equal on both sides of a symmetric face.

**Limitation (measured, see tests/photo/test_photo_pose.py).** The face mesh is
a holistic model: on a face whose one side is narrower it turns its whole mesh,
midline included, as if the head were turned (a 10% one-sided compression of
the james scan, rendered frontally, reads as 2.7 degrees of yaw), and the
compensation then undoes the asymmetry along with the "turn". The compensated
ratios are therefore a secondary, experimental output; the primary ratio is
measured in the photo's own 2D geometry. A second pass tried other pose cues
from the mesh (the symmetry plane of the mirror pairs' 3D differences, all pairs
or the eye/brow/nose pairs only; the nose's offset from the eye corners): each
moves by 1.5 to 6.5 degrees with the same compression (the model places its
nose too). And with a render's known rotation (``head``) the depth model alone
leaves 3.2 (james) and 9.0 points (Lee Perry-Smith) over yaw and pitch ±10
degrees (README, "Pose-compensated ratios").

Every step is mirror-equivariant: a mirrored photo gives the mirrored mesh
(``locate`` averages the photo and its mirror image), mirrored axes, mirrored
depths and so the same ratios with sides swapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import LandmarkError
from ._geometry import POSE_TEMPLATE
from ._landmarks import MESH_POINTS, FaceLandmarks
from .._face_mesh import FACE_OVAL, MIRROR_MAP, N_LANDMARKS

#: The mesh's midline vertices (their own mirror images: 28 points from the forehead over the nose and lips
#: to the chin); the plane through them is the face's symmetry plane.
_MIDLINE = np.array([i for i in range(N_LANDMARKS) if MIRROR_MAP[i] == i], dtype=np.intp)
#: Mesh vertex of each POSE_TEMPLATE point (menton: the mesh's chin vertex 152).
_TEMPLATE_VERTEX = {n: MESH_POINTS.get(n, 152) for n in POSE_TEMPLATE}
_PUPILS = (MESH_POINTS["pupil_right"], MESH_POINTS["pupil_left"])


@dataclass(frozen=True, eq=False)
class HeadAxes:
    """The head frame in photo px: origin ``centre`` (pupils' midpoint, x, y, z) and unit axes as columns
    of ``axes`` (ex to the patient's left, ey toward the chin, ez into the head)."""

    centre: np.ndarray
    axes: np.ndarray

    @property
    def pose(self) -> dict:
        """Degrees: yaw > 0 nose toward the patient's left (image right), pitch > 0 chin down,
        roll > 0 clockwise in the image (the conventions of ``fit_pose``)."""
        ex = self.axes[:, 0]
        nose = -self.axes[:, 2]  # out of the face, toward the camera when frontal
        return {
            "yaw_deg": float(np.degrees(np.arctan2(nose[0], -nose[2]))),
            "pitch_deg": float(np.degrees(np.arcsin(np.clip(nose[1], -1, 1)))),
            "roll_deg": float(np.degrees(np.arctan2(ex[1], ex[0]))),
        }

    def to_head(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) photo px (x, y, z) -> head frame."""
        return (np.asarray(points, float) - self.centre) @ self.axes

    def lift(self, xy: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Head-frame (x, y) of image points ``xy`` (n, 2) lying at head-frame depths ``depth`` (n,)."""
        a2, b2 = self.axes[:2, :2], self.axes[:2, 2]
        rhs = np.asarray(xy, float) - self.centre[:2] - np.outer(depth, b2)
        return np.linalg.solve(a2, rhs.T).T


def head_axes(mesh: np.ndarray) -> HeadAxes:
    """Head frame of a (478, 3) face mesh in photo px (see the module docstring, step 1)."""
    mesh = np.asarray(mesh, float)
    if mesh.shape != (N_LANDMARKS, 3) or not np.isfinite(mesh).all():
        raise LandmarkError(f"pose compensation needs the ({N_LANDMARKS}, 3) face mesh; got shape {mesh.shape}")
    mid = mesh[_MIDLINE] - mesh[_MIDLINE].mean(0)
    ex = np.linalg.svd(mid, full_matrices=False)[2][2]  # the normal of the midline points' plane
    ex = _toward(ex, mesh[_PUPILS[1]] - mesh[_PUPILS[0]])
    down = _template_down(mesh)
    ey = down - (down @ ex) * ex
    if np.linalg.norm(ey) < 1e-9:
        raise LandmarkError("the face mesh is degenerate: its eye and mouth corners coincide")
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    return HeadAxes(0.5 * (mesh[_PUPILS[0]] + mesh[_PUPILS[1]]), np.column_stack([ex, ey, ez]))


def _template_down(mesh: np.ndarray) -> np.ndarray:
    """The direction of :data:`POSE_TEMPLATE`'s y axis (toward the chin) in the mesh, from a 3D
    similarity fit (Kabsch) of the template's 15 points to the mesh's."""
    names = list(POSE_TEMPLATE)
    X = np.array([POSE_TEMPLATE[n] for n in names])
    Y = np.array([mesh[_TEMPLATE_VERTEX[n]] for n in names])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    U, _, Vt = np.linalg.svd(Yc.T @ Xc)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt  # template -> mesh
    return R[:, 1]


def _toward(axis: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return axis if axis @ reference >= 0 else -axis


def _oval_3d(mesh: np.ndarray) -> np.ndarray:
    """The face oval (36 points) densified to 72 as the refined outline is (each point and the midpoint to the next)."""
    oval = mesh[list(FACE_OVAL)]
    out = np.empty((2 * len(oval), 3))
    out[0::2] = oval
    out[1::2] = 0.5 * (oval + np.roll(oval, -1, axis=0))
    return out


def outline_depth(mesh: np.ndarray, head: HeadAxes, xy: np.ndarray) -> np.ndarray:
    """Head-frame depth of image points on (or near) the face outline: the face oval's depth at the
    same angle around the oval's image centroid, interpolated linearly (periodic)."""
    oval = _oval_3d(mesh)
    z = head.to_head(oval)[:, 2]
    centre = oval[:, :2].mean(0)
    ang = np.arctan2(oval[:, 1] - centre[1], oval[:, 0] - centre[0])
    order = np.argsort(ang)
    q = np.asarray(xy, float)
    qa = np.arctan2(q[:, 1] - centre[1], q[:, 0] - centre[0])
    return np.interp(qa, ang[order], z[order], period=2 * np.pi)


def frontal_landmarks(lm: FaceLandmarks, mesh: np.ndarray, head: HeadAxes | None = None
                      ) -> tuple[FaceLandmarks, HeadAxes]:
    """``lm`` as seen straight from the front (head-frame x, y in photo px), and the head axes.

    ``mesh`` is the (478, 3) face mesh of the same photo (photo px, z in px). The
    result's points and outline are in the head frame (origin at the pupils'
    midpoint, x toward the patient's left, y toward the chin), so the same
    geometry as for the photo measures it. ``head`` replaces the axes read from
    the mesh (:func:`head_axes`), e.g. by a render's known rotation: the
    validation harness measures the depth model alone that way.
    """
    mesh = np.asarray(mesh, float)
    head = head_axes(mesh) if head is None else head
    depth_mesh = head.to_head(mesh)[:, 2]
    names = list(lm.points)
    xy = np.array([lm[n] for n in names])
    depth = outline_depth(mesh, head, xy)
    for k, n in enumerate(names):
        if n in MESH_POINTS:
            depth[k] = depth_mesh[MESH_POINTS[n]]
    points = {n: p.tolist() for n, p in zip(names, head.lift(xy, depth))}
    outline = head.lift(lm.outline, outline_depth(mesh, head, lm.outline))
    return FaceLandmarks(points, outline, f"{lm.source}; pose-compensated (frontal view from the face mesh in 3D)",
                         lm.model, lm.model_version), head
