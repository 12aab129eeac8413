"""Automatic 3D facial landmarks and the canonical face frame, from a scan in any orientation.

Method
------
1. Candidate views: the six directions along the principal axes of the
   vertices (both signs), each at four in-plane rolls. Each direction is
   rendered once by orthographic ray casting (open3d's BVH, no OpenGL) with
   Lambert shading; rolls are 90-degree rotations of that image.
2. MediaPipe's face detector scores every candidate; the best view above
   :data:`MIN_FACE_SCORE` is kept. A view whose face mesh puts the nose behind the eyes (a face-only
   scan seen from behind looks like a hollow face) is tried again from the opposite side. No view
   above it: the geometric fallback (8), and a second search with each view lit from its roll's up
   whose face stands only within :data:`RELIT_AGREEMENT_DEG` of the fallback's frame.
3. MediaPipe's 478-point face mesh on that view and on its mirror image (sides swapped back; each
   point is the mean of the two placements, so a mirrored scan gives mirrored points); named points
   are cast back onto the surface along the viewing rays; :func:`frame_from_landmarks` gives a frame
   (its left-right axis from both eye-corner pairs).
4. The face is re-rendered straight from the front of that frame, cropped to the
   face (about :data:`FACE_PX` pixels across the outer eye corners), and the
   face mesh is run again (twice per round, :data:`REFINE_ROUNDS` rounds).
5. Stability: the frontal render is repeated from directions turned
   :data:`JITTER_DEG` degrees left, right, up and down, each view rendered as shaded geometry under
   the three :data:`LIGHTS` and, when the scan has a texture, textured (the texture's colours, shaded).
   Each landmark is the geometric median of its placements over those renders; its spread
   (RMS distance from their mean, mm) is its uncertainty, and
   ``confidence = face_score * clip(1 - spread_mm / 4, 0, 1)``.
6. Pronasale is refined to the most anterior surface point (canonical z, softly weighted) within
   :data:`PRONASALE_SEARCH_MM` of the detected nose tip; pogonion is found on the midline profile.
7. The midline points are moved onto hemiface's mirror-registration symmetry plane (fitted in the
   frame the landmarks give) and back onto the surface; the frame's origin is the final pronasale.
8. Geometric fallback, when no view yields a face (or none places the eyes and nose): a nose-shaped
   protrusion with a mirror-symmetry plane through it gives pronasale and the frame, marked
   ``method="geometric_fallback"``, ``low_confidence=True``. A shape without one (a sphere, a box, a
   blob) raises :class:`FaceNotFoundError`: hemiface does not guess a face.

All coordinates are millimetres in the scan's own frame unless a name says
``canonical``. Renders are never mirrored (only the copy given to the face mesh in step 3,
whose points are mapped back): a render's right-hand direction is
``cross(forward, up)``, so a frontal render shows the patient's left on the
image's right, as a viewer facing the patient sees it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .. import logger
from .._errors import LandmarkError
from ._distance import SurfaceQuery
from ._frame import FaceFrame, frame_from_landmarks
from ._io import SurfaceScan, SurfaceTexture
from ._mesh import face_normals, vertex_normals
from ._registration import rotation_angle

#: Detector score a view must reach to count as showing a face.
MIN_FACE_SCORE = 0.5
#: Lights of the upright renders, each (up, right): the light sits at the camera, raised toward the view's
#: up and right by these. The face mesh's points move by 1-3 mm with the light on shaded geometry (there
#: is no colour to fix the eye and lip contours), so every stable view is rendered under each light and
#: the points are averaged; the first is used alone while the frame is still being found.
LIGHTS = ((0.35, -0.25), (0.35, 0.25), (0.7, 0.0))
TEXTURE_LIGHT = (0.35, 0.0)
#: Share of a textured render's brightness that does not depend on the surface's turn to the light.
TEXTURE_AMBIENT = 0.45
#: Side of the square candidate renders, px.
SEARCH_PX = 384
#: The second candidate search's lights, (up, right) of the unrolled view: raised toward the up of the
#: image rolled by 0, 1, 2, 3 quarter turns (see :meth:`_View.rolled`); used only when the headlit search
#: finds no face, and its result only within RELIT_AGREEMENT_DEG of the geometric frame.
SEARCH_RAISED_LIGHTS = ((0.35, 0.0), (0.0, 0.35), (-0.35, 0.0), (0.0, -0.35))
RELIT_AGREEMENT_DEG = 15.0
#: Side of the square frontal renders, px; the outer eye corners span about FACE_PX / 2.6.
FACE_PX = 640
REFINE_ROUNDS = 2
#: A face box narrower than this in a candidate render is zoomed onto before the face mesh runs.
ZOOM_BELOW_PX = 120
JITTER_DEG = 8.0
PRONASALE_SEARCH_MM = 8.0

#: MediaPipe face-mesh vertex of each named landmark (patient's sides).
MEDIAPIPE_POINTS = {
    "endocanthion_right": 133, "endocanthion_left": 362, "exocanthion_right": 33, "exocanthion_left": 263,
    "pronasale": 4, "subnasale": 2, "nasion": 168, "menton": 152,
    "cheilion_right": 61, "cheilion_left": 291,
    "glabella": 9, "alar_base_right": 64, "alar_base_left": 294,
    "labrale_superius": 0, "labrale_inferius": 17,
}
#: Landmarks written by :func:`detect_landmarks`, in output order.
DETECTED_NAMES = tuple(MEDIAPIPE_POINTS) + ("pogonion",)


class FaceNotFoundError(LandmarkError):
    """No view of the mesh shows a face the landmark model recognises."""


@dataclass(frozen=True, eq=False)
class DetectedLandmarks:
    """Landmarks found on a scan, and the canonical frame they define.

    Attributes
    ----------
    points_mm : dict name -> (3,) array, mm, in the scan's own frame
    spread_mm : dict name -> float, RMS spread over five slightly different views (mm; inf when
        only one view placed it)
    confidence : dict name -> float in [0, 1]
    frame : :class:`FaceFrame` mapping scan coordinates (mm) to the canonical face frame
    face_score : detector score, in [0, 1], of the final frontal render or, if higher, of the
        candidate view the face was found in
    method : ``"face_mesh"``, or ``"geometric_fallback"`` when no view yielded a face and the frame and
        pronasale come from the shape alone (see :func:`detect_landmarks`)
    views_tried : number of candidate views scored
    symmetry_plane_rms_mm : RMS of the symmetry-plane fit the midline points were moved onto
        (None: not refined, the fit failed); for the geometric fallback, the residual of its mirror plane
    low_confidence : True for the geometric fallback: treat frame and points as a starting guess to check
    """

    points_mm: dict = field(repr=False)
    spread_mm: dict = field(repr=False)
    confidence: dict = field(repr=False)
    frame: FaceFrame
    face_score: float
    method: str
    views_tried: int
    symmetry_plane_rms_mm: float | None = None
    low_confidence: bool = False

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "low_confidence": self.low_confidence,
            "face_score": round(float(self.face_score), 4),
            "views_tried": self.views_tried,
            "midline_on_symmetry_plane": self.symmetry_plane_rms_mm is not None,
            "symmetry_plane_rms_mm": None if self.symmetry_plane_rms_mm is None else round(self.symmetry_plane_rms_mm, 3),
            "landmarks": {
                n: {"xyz_mm": [round(float(c), 4) for c in p],
                    "spread_mm": round(float(self.spread_mm[n]), 3) if np.isfinite(self.spread_mm[n]) else None,
                    "confidence": round(float(self.confidence[n]), 3)}
                for n, p in self.points_mm.items()
            },
        }


@dataclass(frozen=True)
class _View:
    forward: np.ndarray  # rays travel along this (from the camera into the scene)
    up: np.ndarray
    centre: np.ndarray  # image centre, in the plane through the scene centre
    pixel_mm: float
    size_px: int
    reach_mm: float  # ray origins lie this far behind the centre, toward the camera

    @property
    def right(self) -> np.ndarray:
        return np.cross(self.forward, self.up)

    def origins(self, xy_px: np.ndarray) -> np.ndarray:
        """Ray origins for continuous pixel coordinates (x right, y down, origin top-left corner)."""
        half = self.size_px / 2
        ab = (np.asarray(xy_px, float) - half) * [self.pixel_mm, -self.pixel_mm]
        return ab @ np.stack([self.right, self.up]) + (self.centre - self.reach_mm * self.forward)

    def rolled(self, k: int) -> "_View":
        """The view whose render is ``np.rot90(render, k)`` (k quarter turns counter-clockwise)."""
        up, right = self.up, self.right
        for _ in range(k % 4):
            up, right = right, -up
        return _View(self.forward, up, self.centre, self.pixel_mm, self.size_px, self.reach_mm)


def _unit(v):
    return v / np.linalg.norm(v)


def _make_view(forward, up, centre, width_mm, size_px, reach_mm) -> _View:
    f = _unit(np.asarray(forward, float))
    u = np.asarray(up, float) - (np.asarray(up, float) @ f) * f
    return _View(f, _unit(u), np.asarray(centre, float), width_mm / size_px, size_px, reach_mm)


class _Renderer:
    """Shaded orthographic renders and back-projection of pixels onto one mesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, texture: SurfaceTexture | None = None):
        self.vertices, self.faces, self.texture = vertices, faces, texture
        self.query = SurfaceQuery(vertices, faces)
        self.normals = face_normals(vertices, faces)
        self.centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
        self.radius = float(np.linalg.norm(vertices - self.centre, axis=1).max())

    @functools.cached_property
    def face_centroids_and_area_normals(self) -> tuple[np.ndarray, np.ndarray]:
        """Face centroids and face normals scaled by face area (mm2)."""
        corners = self.vertices[self.faces]
        cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        area = np.linalg.norm(cross, axis=1) / 2
        return corners.mean(axis=1), self.normals * area[:, None]

    @functools.cached_property
    def vertex_normals(self) -> np.ndarray:
        return vertex_normals(self.vertices, self.faces)

    def render(self, view: _View, *, from_above: bool = True, textured: bool = True) -> np.ndarray:
        """(size, size, 3) uint8 RGB render, black background: Lambert shading of grey geometry, or,
        when the mesh has a texture (and ``textured``), of the texture's colours.

        The light sits at the camera, raised toward the view's up and left when ``from_above``
        (as faces are usually lit); a face lit from below is often not recognised, so renders whose
        up is not yet known (the candidate search, rolled afterwards) use the plain headlight.
        """
        light = LIGHTS[0] if from_above else (0.0, 0.0)
        return self.renders(view, lights=(light,), textured=textured)[0]

    def renders(self, view: _View, *, lights, textured: bool = True) -> list[np.ndarray]:
        """One render per light (each ``(up, right)``: the light sits at the camera, raised toward the
        view's up and right by these), from a single ray cast. Textured meshes (when ``textured``)
        are rendered with their colours, others as grey geometry."""
        n = view.size_px
        j, i = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
        xy = np.stack([j.ravel(), i.ravel()], axis=1)
        hits = self.query.cast(view.origins(xy), np.broadcast_to(view.forward, (len(xy), 3)))
        hit = np.isfinite(hits["t_hit"])
        normals = self.normals[hits["face_ids"][hit]]
        colour = None
        if self.texture is not None and textured:
            colour = self.texture.colour_at(self.faces, hits["face_ids"][hit], hits["uv"][hit])
        images = []
        for up, right in lights:
            shade = np.abs(normals @ _unit(-view.forward + up * view.up + right * view.right))
            if colour is None:
                grey = np.zeros(n * n)
                grey[hit] = 40 + 200 * shade
                images.append(np.repeat(grey.reshape(n, n).round().astype(np.uint8)[..., None], 3, axis=2))
            else:
                rgb = np.zeros((n * n, 3))
                rgb[hit] = 255 * colour * (TEXTURE_AMBIENT + (1 - TEXTURE_AMBIENT) * shade[:, None])
                images.append(rgb.reshape(n, n, 3).round().clip(0, 255).astype(np.uint8))
        return images

    def back_project(self, view: _View, xy_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surface points under pixels (NaN where a ray misses) and a hit mask."""
        origins = view.origins(xy_px)
        hits = self.query.cast(origins, np.broadcast_to(view.forward, origins.shape))
        t = hits["t_hit"].astype(float)
        hit = np.isfinite(t)
        return origins + np.where(hit, t, np.nan)[:, None] * view.forward, hit


def _mediapipe():
    from .. import _face_mesh as _mediapipe

    return _mediapipe


def _face_score(rgb: np.ndarray) -> float:
    return _best_face(rgb)[0]


def _best_face(rgb: np.ndarray):
    """(score, box) of the most confident face the detector finds, or (0.0, None)."""
    boxes = _mediapipe().detect_faces(rgb)
    if not boxes:
        return 0.0, None
    best = max(boxes, key=lambda b: b.score)
    return float(best.score), best


def _zoomed(view: _View, box) -> _View:
    """A FACE_PX render centred on a detected face box, the box filling about 40% of it: a face
    that is small in a whole-scan render (head and shoulders, far spikes) gets enough pixels."""
    centre_px = np.array([[box.x0 + box.width / 2, box.y0 + box.height / 2]])
    centre = view.origins(centre_px)[0] + view.reach_mm * view.forward
    width_mm = 2.5 * max(box.width, box.height) * view.pixel_mm
    return _View(view.forward, view.up, centre, width_mm / FACE_PX, FACE_PX, view.reach_mm)


def _search_views(renderer: _Renderer, *, raised: bool = False) -> tuple[list[tuple[float, _View]], int]:
    """Candidate views (principal axes, both signs, four rolls) with their face scores, best first;
    views with a small face are returned zoomed onto it (see :func:`_zoomed`). Lit by the headlight, or
    with ``raised`` by a light raised toward each roll's up (:data:`SEARCH_RAISED_LIGHTS`)."""
    v = renderer.vertices
    _, _, axes = np.linalg.svd(v - v.mean(axis=0), full_matrices=False)
    width = 2.05 * renderer.radius
    scored = []
    for k in range(3):
        for sign in (1.0, -1.0):
            forward = sign * axes[k]
            view = _make_view(forward, axes[(k + 1) % 3], renderer.centre, width, SEARCH_PX, 2 * renderer.radius)
            images = renderer.renders(view, lights=SEARCH_RAISED_LIGHTS) if raised else \
                [renderer.render(view, from_above=False)] * 4
            for roll in range(4):
                rolled = view.rolled(roll)
                score, box = _best_face(np.ascontiguousarray(np.rot90(images[roll], roll)))
                small = box is not None and max(box.width, box.height) < ZOOM_BELOW_PX
                scored.append((score, _zoomed(rolled, box) if small else rolled))
    scored.sort(key=lambda sv: -sv[0])
    return scored, len(scored)


def _reversed(view: _View) -> _View:
    """The same view from the opposite side, with the same up (the image mirrored left to right)."""
    return _View(-view.forward, view.up, view.centre, view.pixel_mm, view.size_px, view.reach_mm)


def _landmarks_in_view(renderer: _Renderer, view: _View) -> dict[str, np.ndarray] | None:
    """Named surface points from the face mesh on one render (None if no face; misses dropped)."""
    return _landmarks_from_image(renderer, view, renderer.render(view))


def _landmarks_from_image(renderer: _Renderer, view: _View, img: np.ndarray) -> dict[str, np.ndarray] | None:
    """Named surface points under the face mesh's points on ``img`` (None if no face; misses dropped).

    The face mesh is the mean of its placements on the image and on its mirror image, relabelled (as
    ``photo analyze`` places it): the model is not mirror-symmetric (its eye corners move by 1-2 mm
    between a face and its mirror image), and averaging makes the points of a mirrored scan the
    mirror images of the points of the scan, sides swapped.
    """
    from .._face_mesh import mirror_consistent_mesh

    mesh = mirror_consistent_mesh(img)
    if mesh is None:
        return None
    names = list(MEDIAPIPE_POINTS)
    points, hit = renderer.back_project(view, mesh[[MEDIAPIPE_POINTS[n] for n in names], :2])
    return {n: p for n, p, h in zip(names, points, hit) if h}


def _landmark_samples(renderer: _Renderer, view: _View) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Named surface points from one view rendered as shaded geometry under each of :data:`LIGHTS`
    and, when the mesh has a texture, textured under :data:`TEXTURE_LIGHT` (the texture's colour
    contours hold the eye and lip points whatever the light); faces not found are dropped. Also
    returns the first render (as :meth:`_Renderer.render` makes it)."""
    images = renderer.renders(view, lights=LIGHTS, textured=False)
    if renderer.texture is not None:
        images += renderer.renders(view, lights=(TEXTURE_LIGHT,))
    found = (_landmarks_from_image(renderer, view, img) for img in images)
    first = images[-1] if renderer.texture is not None else images[0]
    return [f for f in found if f is not None], first


def _geometric_median(points: np.ndarray, iterations: int = 50) -> np.ndarray:
    """The point that minimises the summed distances to ``points`` (Weiszfeld's iteration): unlike the
    mean, one render in which the face mesh slipped does not drag it; unlike a per-axis median, it does
    not depend on the scan's axes."""
    m = points.mean(axis=0)
    for _ in range(iterations):
        d = np.maximum(np.linalg.norm(points - m, axis=1), 1e-6)
        new = (points / d[:, None]).sum(axis=0) / (1 / d).sum()
        if np.linalg.norm(new - m) < 1e-4:
            return new
        m = new
    return m


def _frame(points: dict, renderer: _Renderer) -> FaceFrame:
    # frame_from_landmarks reads the vertex normals only when no lower midline point or mouth corner pair
    # fixes the vertical; they take about a second to compute on a 500,000-vertex scan.
    from ._frame import _LOWER_MIDLINE

    vertical_known = any(n in points for n in _LOWER_MIDLINE) or ("cheilion_left" in points and "cheilion_right" in points)
    normals = np.zeros((len(renderer.vertices), 3)) if vertical_known else renderer.vertex_normals
    return frame_from_landmarks(points, renderer.vertices, normals)


def _frontal_view(frame: FaceFrame, points: dict, renderer: _Renderer, *, yaw_deg=0.0, pitch_deg=0.0) -> _View:
    x, y, z = frame.rotation
    eyes = (points["exocanthion_left"] + points["exocanthion_right"]) / 2 if "exocanthion_left" in points and \
        "exocanthion_right" in points else frame.origin_mm
    span = float(np.linalg.norm(points.get("exocanthion_left", eyes) - points.get("exocanthion_right", eyes)))
    width = 2.6 * span if span > 30 else 2.6 * 90.0
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    facing = np.cos(yaw) * np.cos(pitch) * z + np.sin(yaw) * x + np.sin(pitch) * y
    centre = eyes - 0.25 * width * y  # eyes sit a quarter of the image above its centre
    return _make_view(-facing, y, centre, width, FACE_PX, 2 * renderer.radius)


#: Softness of "most anterior" (mm): a flat nose tip or chin has no single most anterior vertex, and
#: a hard maximum jumps by millimetres when the frame turns by a degree.
ANTERIOR_SOFTNESS_MM = 1.0
#: The chin is flatter than the nose tip: its hard most anterior point moves about 1 mm per degree of pitch
#: (1.3 mm between two poses of humface with 1 mm softness, 0.8 mm with 2.5 mm).
CHIN_SOFTNESS_MM = 2.5


def _soft_most_anterior(points_scan: np.ndarray, z_canonical: np.ndarray, query: SurfaceQuery, *,
                        softness_mm: float = ANTERIOR_SOFTNESS_MM) -> np.ndarray:
    """Weighted mean of points (weights exp((z - z_max) / softness)), put back on the surface."""
    w = np.exp((z_canonical - z_canonical.max()) / softness_mm)
    mean = (w[:, None] * points_scan).sum(axis=0) / w.sum()
    return query.closest(mean[None]).points[0]


def _refine_pronasale(points: dict, frame: FaceFrame, renderer: "_Renderer") -> np.ndarray:
    tip = points["pronasale"]
    near = np.linalg.norm(renderer.vertices - tip, axis=1) < PRONASALE_SEARCH_MM
    if near.sum() < 3:
        return tip
    candidates = renderer.vertices[near]
    return _soft_most_anterior(candidates, frame.to_canonical(candidates)[:, 2], renderer.query)


def _pogonion(points: dict, frame: FaceFrame, renderer: "_Renderer") -> np.ndarray | None:
    """Chin prominence: along the midline profile from labrale inferius down to menton (canonical
    frame, 1 mm bins), the most anterior point below the mentolabial sulcus (the profile's deepest point in
    the upper three fifths)."""
    if "labrale_inferius" not in points or "menton" not in points:
        return None
    vertices = renderer.vertices
    c = frame.to_canonical(vertices)
    li, me = frame.to_canonical(points["labrale_inferius"]), frame.to_canonical(points["menton"])
    band = (np.abs(c[:, 0] - (li[0] + me[0]) / 2) < 2.0) & (c[:, 1] < li[1]) & (c[:, 1] > me[1])
    if band.sum() < 10:
        return None
    bins = np.floor(c[band, 1] - me[1]).astype(int)
    idx = np.flatnonzero(band)
    top = np.full(bins.max() + 1, -1)
    for b in np.unique(bins):
        members = idx[bins == b]
        top[b] = members[int(np.argmax(c[members, 2]))]
    top = top[top >= 0]
    profile = c[top, 2]
    lower = len(profile) * 2 // 5  # the sulcus lies in the upper three fifths, nearer the lip
    sulcus = lower + int(np.argmin(profile[lower:]))
    if sulcus == 0:
        return None
    chin = top[:sulcus]
    return _soft_most_anterior(vertices[chin], c[chin, 2], renderer.query, softness_mm=CHIN_SOFTNESS_MM)


#: Midline landmarks moved onto the mirror-symmetry plane by :func:`_onto_symmetry_plane`.
MIDLINE_NAMES = ("glabella", "nasion", "pronasale", "subnasale", "labrale_superius", "labrale_inferius",
                 "pogonion", "menton")


#: Above this many vertices the plane is fitted on a copy simplified by vertex clustering.
PLANE_MAX_VERTICES = 150_000
PLANE_CLUSTER_MM = 1.0


def _clustered(scan: SurfaceScan, voxel_mm: float) -> SurfaceScan:
    """A copy of the scan simplified by vertex clustering (one vertex per ``voxel_mm`` cube)."""
    from .._open3d import open3d
    from ._io import scan_from_arrays

    o3d = open3d()
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.array(scan.vertices_mm, dtype=np.float64)),
                                     o3d.utility.Vector3iVector(np.array(scan.faces, dtype=np.int32)))
    simple = mesh.simplify_vertex_clustering(voxel_size=voxel_mm)
    logger.info("%s: symmetry plane fitted on a copy clustered to %g mm (%d of %d vertices)", scan.source_name,
                voxel_mm, len(simple.vertices), len(scan.vertices_mm))
    return scan_from_arrays(np.asarray(simple.vertices), np.asarray(simple.triangles), source_name=scan.source_name,
                            face_sized=False)


def _onto_symmetry_plane(scan: SurfaceScan, points: dict, renderer: "_Renderer") -> tuple[dict, float | None]:
    """Midline points projected onto the mirror-registration symmetry plane (hemiface's own fit, in
    the frame the points give) and put back on the surface at the closest point.

    Returns (points, plane fit RMS in mm), or the points unchanged and None when the plane fit fails
    or does not converge (logged).
    """
    from .._errors import HemifaceError
    from ._plane import fit_plane
    from ._region import FaceRegion
    from ._surface import surface_in_frame

    region = FaceRegion()
    if len(scan.vertices_mm) > PLANE_MAX_VERTICES:
        scan = _clustered(scan, PLANE_CLUSTER_MM)
    try:
        frame = frame_from_landmarks(points, scan.vertices_mm, vertex_normals(scan.vertices_mm, scan.faces))
        prepared = surface_in_frame(scan, frame, region)
        plane = fit_plane(prepared, region, 1.5, uncertainty=False).plane
    except HemifaceError as exc:
        logger.info("%s: midline not refined (symmetry plane: %s)", scan.source_name, exc)
        return points, None
    if not plane.converged:
        logger.info("%s: midline not refined (symmetry plane fit did not converge)", scan.source_name)
        return points, None
    frame = prepared.frame
    names = [n for n in MIDLINE_NAMES if n in points]
    c = frame.to_canonical(np.array([points[n] for n in names]))
    c = c - plane.signed_distance_mm(c)[:, None] * plane.normal
    snapped = renderer.query.closest(frame.to_scan(c)).points
    moved = dict(points)
    for n, p in zip(names, snapped):
        logger.info("%s: %s moved %.2f mm onto the symmetry plane", scan.source_name, n, np.linalg.norm(p - points[n]))
        moved[n] = p
    return moved, float(plane.rms_mm)


#: Geometric fallback (no view yields a face): depth-image cell, mm.
FALLBACK_CELL_MM = 1.5
#: A nose tip stands out of the surface around it: the smallest drop from it to the surface this far
#: away, in eight directions, is its prominence (as :func:`hemiface.scan._frame.find_pronasale` scores it).
NOSE_REACH_MM = (15.0, 25.0)
#: Least prominence (mm) for the geometric fallback to take a point for a nose tip. Measured at the
#: nose: 10.8-12.8 mm (humface, template, james, demoface); most prominent point of a sphere of radius
#: 80 mm 1.2 mm, of a box 0, of the smooth random blob of the tests 1.4 mm.
MIN_NOSE_PROMINENCE_MM = 6.0
#: More prominent points are not noses: a neck or a shoulder seen end-on stands 60-160 mm out.
MAX_NOSE_PROMINENCE_MM = 35.0
NOSE_CANDIDATES_PER_VIEW = 4
FALLBACK_REFINED_CANDIDATES = 3
#: The surface 10-20 mm from a nose tip, along the midline and across it, lies this far (mm, least and
#: most) behind it. Measured: 7.5-14.5 mm along, 14.6-23.8 mm across (humface, template, james, demoface);
#: other protrusions of head-and-shoulders scans (ears, shoulders, the crown, the rim of a cut-off neck)
#: fail in at least one direction.
NOSE_DROP_MM = (4.0, 35.0)
#: Mirror-symmetry residual (mm, mean distance of the mirrored surface around the nose tip to the
#: surface, each distance capped at :data:`SYMMETRY_CAP_MM`) a face-like mesh must stay below.
#: Measured at the nose: humface 0.45, template 0.57, demoface 1.2, james 3.2 mm.
MAX_SYMMETRY_RESIDUAL_MM = 4.0
SYMMETRY_CAP_MM = 10.0
SYMMETRY_RADIUS_MM = 60.0
#: Least difference between the midline profile's bends above and below the tip (see :func:`_profile_bend`).
MIN_BEND_DIFFERENCE = 0.2
#: Confidence of every landmark of a geometric fallback (the face mesh never confirmed a face).
FALLBACK_CONFIDENCE = 0.2


def _prominence(height: np.ndarray, cell_mm: float) -> np.ndarray:
    """Per pixel of a height image (mm toward the camera, NaN off the surface): the smallest drop to the
    pixels :data:`NOSE_REACH_MM` away in eight directions (-inf at silhouettes: no neighbour, no drop)."""
    from scipy import ndimage

    seen = np.isfinite(height)
    h = np.where(seen, ndimage.median_filter(np.where(seen, height, -1e9), size=3), np.nan)
    score = np.full(h.shape, np.inf)
    for reach in NOSE_REACH_MM:
        k = max(1, int(round(reach / cell_mm)))
        d = max(1, int(round(reach / cell_mm / np.sqrt(2))))
        padded = np.pad(h, k, constant_values=np.nan)
        for di, dj in ((k, 0), (-k, 0), (0, k), (0, -k), (d, d), (d, -d), (-d, d), (-d, -d)):
            neighbour = padded[k + di:k + di + h.shape[0], k + dj:k + dj + h.shape[1]]
            score = np.minimum(score, np.where(np.isfinite(neighbour), h - neighbour, -np.inf))
    return np.where(seen, score, -np.inf)


def _nose_candidates(renderer: _Renderer) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(prominence mm, point, view direction) of the most prominent points seen along the six
    principal-axis directions: per view, up to :data:`NOSE_CANDIDATES_PER_VIEW` local maxima at least
    25 mm apart with prominence between :data:`MIN_NOSE_PROMINENCE_MM` and :data:`MAX_NOSE_PROMINENCE_MM`;
    most prominent first. When there is none: a single (best prominence seen, None, None)."""
    from scipy import ndimage

    v = renderer.vertices
    _, _, axes = np.linalg.svd(v - v.mean(axis=0), full_matrices=False)
    width = 2.05 * renderer.radius
    size = int(min(400, np.ceil(width / FALLBACK_CELL_MM)))
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    xy = np.stack([j.ravel(), i.ravel()], axis=1)
    found, best = [], 0.0
    for k in range(3):
        for sign in (1.0, -1.0):
            view = _make_view(sign * axes[k], axes[(k + 1) % 3], renderer.centre, width, size, 2 * renderer.radius)
            points, hit = renderer.back_project(view, xy)
            height = np.where(hit, (points - renderer.centre) @ -view.forward, np.nan).reshape(size, size)
            score = _prominence(height, view.pixel_mm)
            score[score > MAX_NOSE_PROMINENCE_MM] = -np.inf
            best = max(best, float(score.max()))
            radius = max(1, int(round(12.5 / view.pixel_mm)))
            peaks = (score == ndimage.maximum_filter(score, size=2 * radius + 1)) & (score >= MIN_NOSE_PROMINENCE_MM)
            flat = np.flatnonzero(peaks.ravel())
            for f in flat[np.argsort(-score.ravel()[flat])][:NOSE_CANDIDATES_PER_VIEW]:
                found.append((float(score.flat[f]), points[f], view.forward))
    found.sort(key=lambda c: -c[0])
    return found or [(best, None, None)]


def _mirror(points: np.ndarray, normal: np.ndarray, origin: np.ndarray) -> np.ndarray:
    return points - 2 * ((points - origin) @ normal)[:, None] * normal


def _symmetry_plane_through(renderer: _Renderer, tip: np.ndarray, anterior: np.ndarray, *, max_points: int = 3000,
                            refine: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """The mirror plane that best maps the surface within :data:`SYMMETRY_RADIUS_MM` of ``tip`` onto
    itself: the best of planes through the tip containing ``anterior`` (6-degree steps), then (if
    ``refine``) refined by mirror ICP (each point's partner is the surface point closest to its mirror
    image; the plane is moved to the partners' midpoints and turned to their mean offset), started from
    the best roll in each 60-degree sector. Returns (unit normal, point on the plane, residual: mean
    distance of the mirrored points to the surface, each capped at :data:`SYMMETRY_CAP_MM`, mm)."""
    v = renderer.vertices
    near = np.flatnonzero(np.linalg.norm(v - tip, axis=1) < SYMMETRY_RADIUS_MM)
    if len(near) > max_points:
        near = near[np.linspace(0, len(near) - 1, max_points).round().astype(int)]
    sample = v[near]
    e1 = _unit(np.cross(anterior, [1.0, 0, 0] if abs(anterior[0]) < 0.9 else [0, 1.0, 0]))
    e2 = np.cross(anterior, e1)

    def partners(normal, origin):
        closest = renderer.query.closest(_mirror(sample, normal, origin))
        return closest.points, np.minimum(np.abs(closest.signed_distance_mm), SYMMETRY_CAP_MM)

    rolls = [np.cos(t) * e1 + np.sin(t) * e2 for t in np.radians(np.arange(0.0, 180.0, 6.0))]
    scores = np.array([partners(n, tip)[1].mean() for n in rolls])
    if not refine:
        best = int(np.argmin(scores))
        return rolls[best], tip, float(scores[best])
    # ``anterior`` is only roughly right (turned sideways, no roll gives the true plane), so ICP starts
    # from the best roll of each of three 60-degree sectors and the best end wins.
    fits = []
    for sector in range(3):
        start = 10 * sector + int(np.argmin(scores[10 * sector:10 * sector + 10]))
        normal, origin = rolls[start], tip
        for _ in range(8):
            partner, distance = partners(normal, origin)
            keep = distance <= np.quantile(distance, 0.8)  # the worst fifth: holes, borders, hair, a defect
            offset = sample[keep] - partner[keep]
            offset *= np.sign(offset @ normal)[:, None]
            normal = _unit(offset.sum(axis=0))
            origin = ((sample[keep] + partner[keep]) / 2).mean(axis=0)
        fits.append((normal, origin, float(partners(normal, origin)[1].mean())))
    return min(fits, key=lambda f: f[2])


def _anterior_at(renderer: _Renderer, tip: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Area-weighted mean normal of the faces within 40 mm of ``tip``, each turned toward the camera of
    ``forward`` (measured against the published frames: 2-4 degrees on humface, template and demoface,
    16 on james; plain vertex normals gave up to 27)."""
    centroids, weighted = renderer.face_centroids_and_area_normals
    near = np.linalg.norm(centroids - tip, axis=1) < 40.0
    n = weighted[near]
    return _unit((n * np.sign(n @ -forward)[:, None]).sum(axis=0))


def _heights_along(renderer: _Renderer, tip: np.ndarray, anterior: np.ndarray, direction: np.ndarray,
                   steps_mm) -> np.ndarray:
    """Heights (mm, along ``anterior``, relative to the tip) of the surface ``steps_mm`` from the tip
    along ``direction``, seen from the front (-inf where nothing is hit)."""
    steps = np.asarray(steps_mm, float)
    reach = 2 * renderer.radius
    origins = tip + steps[:, None] * direction + reach * anterior
    t = renderer.query.cast(origins, np.tile(-anterior, (len(steps), 1)))["t_hit"].astype(float)
    return np.where(np.isfinite(t), reach - t, -np.inf)


def _height_along(renderer: _Renderer, tip: np.ndarray, anterior: np.ndarray, direction: np.ndarray) -> float:
    """Mean height of the surface 10-20 mm from the tip along ``direction`` (-inf if any probe misses)."""
    return float(_heights_along(renderer, tip, anterior, direction, (10.0, 15.0, 20.0)).mean())


def _profile_bend(renderer: _Renderer, tip: np.ndarray, anterior: np.ndarray, direction: np.ndarray) -> float:
    """How much the midline profile flattens away from the tip: slope over 20-40 mm minus slope over 4-20
    mm (mm/mm). Below the nose tip the profile drops steeply over the columella to the lip and then levels
    (0.7-1.0 on humface, template, james, demoface); above it the dorsum falls steadily (0.2-0.3). A
    tilted anterior adds about the same to both slopes, so the difference does not depend on it."""
    h = _heights_along(renderer, tip, anterior, direction, (4.0, 20.0, 40.0))
    if not np.isfinite(h).all():
        return np.nan
    return float((h[2] - h[1]) / 20.0 - (h[1] - h[0]) / 16.0)


def _nose_shaped(renderer: _Renderer, tip: np.ndarray, anterior: np.ndarray, normal: np.ndarray) -> bool:
    """Whether the surface 10-20 mm from ``tip`` along and across the mirror plane (normal ``normal``)
    lies :data:`NOSE_DROP_MM` behind it in all four directions (a miss fails)."""
    along = np.cross(normal, anterior)
    heights = [_height_along(renderer, tip, anterior, d) for d in (along, -along, normal, -normal)]
    return all(-NOSE_DROP_MM[1] <= h <= -NOSE_DROP_MM[0] for h in heights)


def _geometric_fallback(scan: SurfaceScan, renderer: _Renderer, face_score: float, tried: int,
                        reason: str) -> DetectedLandmarks:
    """Pronasale and the canonical frame from shape alone, for a face-like mesh in which no view yields
    a face: the most prominent point is the nose tip (prominence at least :data:`MIN_NOSE_PROMINENCE_MM`),
    anterior is the mean surface normal around it, left-right is the normal of the best mirror plane
    through it (residual at most :data:`MAX_SYMMETRY_RESIDUAL_MM`), and up is the side of the midline
    where the midline profile bends less (the nasal dorsum, not the columella and lip; :func:`_profile_bend`).
    Anything else raises :class:`FaceNotFoundError` (a sphere, a box or a blob: no guess)."""
    candidates = _nose_candidates(renderer)
    if candidates[0][1] is None:
        raise FaceNotFoundError(
            f"{scan.source_name}: {reason}, and the shape has no nose-like protrusion (most prominent point "
            f"{max(candidates[0][0], 0.0):.1f} mm, needs {MIN_NOSE_PROMINENCE_MM:g} to {MAX_NOSE_PROMINENCE_MM:g}); "
            "if this is a face scan, give its landmarks with --landmarks"
        )
    # A nose tip: the surface falls away by NOSE_DROP_MM in all four directions along and across its
    # mirror plane (dorsum, columella and lip, both cheeks); the most mirror-symmetric such protrusion.
    shaped = []
    for prominence, tip, forward in candidates:
        anterior = _anterior_at(renderer, tip, forward)
        normal, _, coarse = _symmetry_plane_through(renderer, tip, anterior, max_points=500, refine=False)
        if _nose_shaped(renderer, tip, _unit(anterior - (anterior @ normal) * normal), normal):
            shaped.append((coarse, prominence, tip, anterior))
    if not shaped:
        raise FaceNotFoundError(
            f"{scan.source_name}: {reason}, and none of the shape's {len(candidates)} protrusions is nose-shaped "
            f"(the surface 10-20 mm around it must lie {NOSE_DROP_MM[0]:g}-{NOSE_DROP_MM[1]:g} mm behind it in all "
            "four directions); if this is a face scan, give its landmarks with --landmarks"
        )
    fits = sorted(((_symmetry_plane_through(renderer, tip, anterior), prominence, tip, anterior)
                   for _, prominence, tip, anterior in sorted(shaped, key=lambda c: c[0])[:FALLBACK_REFINED_CANDIDATES]),
                  key=lambda f: f[0][2])
    (normal, on_plane, residual), prominence, tip, anterior = fits[0]
    logger.info("%s: geometric fallback: protrusion of %.1f mm, mirror plane residual %.2f mm (%d candidates, %d "
                "nose-shaped)", scan.source_name, prominence, residual, len(candidates), len(shaped))
    if residual > MAX_SYMMETRY_RESIDUAL_MM:
        raise FaceNotFoundError(
            f"{scan.source_name}: {reason}, and no nose-shaped protrusion has a mirror-symmetry plane through it "
            f"(best residual {residual:.1f} mm, needs {MAX_SYMMETRY_RESIDUAL_MM:g}); if this is a face scan, "
            "give its landmarks with --landmarks"
        )
    rivals = [f for f in fits[1:] if np.linalg.norm(f[2] - tip) > 30.0 and f[0][2] < 1.5 * residual]
    if rivals:
        raise FaceNotFoundError(
            f"{scan.source_name}: {reason}, and {1 + len(rivals)} protrusions far apart look equally like a nose "
            f"(mirror residuals {residual:.1f} and {rivals[0][0][2]:.1f} mm); if this is a face scan, give its "
            "landmarks with --landmarks"
        )
    anterior = _unit(anterior - (anterior @ normal) * normal)
    tip = renderer.query.closest((tip - ((tip - on_plane) @ normal) * normal)[None]).points[0]
    along = np.cross(normal, anterior)
    bends = _profile_bend(renderer, tip, anterior, along), _profile_bend(renderer, tip, anterior, -along)
    logger.info("%s: geometric fallback: midline profile bends %.2f and %.2f either side of the tip", scan.source_name,
                *bends)
    if not np.isfinite(bends).all() or abs(bends[0] - bends[1]) < MIN_BEND_DIFFERENCE:
        raise FaceNotFoundError(
            f"{scan.source_name}: {reason}, and the midline profile through the nose-like protrusion does not tell "
            "up from down; if this is a face scan, give its landmarks with --landmarks"
        )
    up = along if bends[0] < bends[1] else -along
    rotation = np.stack([np.cross(up, anterior), up, anterior])
    frame = FaceFrame(rotation, tip.astype(float), "detected")
    pronasale = _refine_pronasale({"pronasale": tip}, frame, renderer)
    frame = FaceFrame(rotation, pronasale.astype(float), "detected")
    return DetectedLandmarks(
        {"pronasale": pronasale}, {"pronasale": np.inf}, {"pronasale": FALLBACK_CONFIDENCE}, frame,
        float(face_score), "geometric_fallback", tried, residual, low_confidence=True,
    )


def detect_landmarks(scan: SurfaceScan) -> DetectedLandmarks:
    """Find the face, its landmarks and its canonical frame on a scan in any orientation.

    Parameters
    ----------
    scan : SurfaceScan
        Vertices in mm, in whatever frame the scanner chose. A texture (``scan.texture``: UV image or
        vertex colours) is rendered alongside the shaded geometry; an untextured scan is rendered as
        shaded geometry only (on james the two agree within about 1 mm).

    Returns
    -------
    DetectedLandmarks
        Points in mm in the scan's own frame, per-landmark spread and confidence, and
        the :class:`FaceFrame` (+z anterior, +y up, +x patient's left, origin pronasale).
        When no view yields a face but the shape is face-like, the geometric fallback's result:
        pronasale only, ``method="geometric_fallback"``, ``low_confidence=True``.

    Raises
    ------
    FaceNotFoundError
        No candidate view shows a face with detector score >= :data:`MIN_FACE_SCORE` (or the face
        mesh cannot place the eyes and nose on the surface), and the shape has no nose-shaped
        protrusion with a mirror-symmetry plane through it.
    """
    renderer = _Renderer(np.asarray(scan.vertices_mm, float), np.asarray(scan.faces), scan.texture)
    scored, tried = _search_views(renderer)
    score = scored[0][0]
    logger.info("%s: best of %d candidate views has face score %.2f", scan.source_name, tried, score)
    found = _face_mesh_view(scan, renderer, scored)
    if found is not None:
        return _face_mesh_landmarks(scan, renderer, *found, tried)
    reason = (f"no face found in {tried} views of the mesh (best detector score {score:.2f}, needs {MIN_FACE_SCORE})"
              if score < MIN_FACE_SCORE else
              "faces were detected but no view placed the eyes and nose consistently on the surface")
    fallback = _geometric_fallback(scan, renderer, score, tried, reason)
    # Lit flat by the search's headlight, a shallow face can fall below the detector's threshold in every
    # view (meshmonk SIMPOP_03 with the multi-zone atrophy 6 mm lateral). The views lit from above each
    # roll's up find it, but they also light an upside-down face from its chin, which the detector can take
    # for a face (a carved humface read a frame 135 degrees off): so their result stands only where it
    # agrees with the shape's own frame.
    relit, more = _search_views(renderer, raised=True)
    found = _face_mesh_view(scan, renderer, relit)
    if found is not None:
        try:
            detected = _face_mesh_landmarks(scan, renderer, *found, tried + more)
        except LandmarkError as exc:
            logger.info("%s: views lit from above: %s", scan.source_name, exc)
        else:
            turn = np.degrees(rotation_angle(detected.frame.rotation @ fallback.frame.rotation.T))
            logger.info("%s: views lit from above found the face; its frame lies %.1f degrees from the shape's",
                        scan.source_name, turn)
            if turn <= RELIT_AGREEMENT_DEG:
                return detected
    logger.warning("%s: %s; frame and pronasale from the shape alone (geometric fallback, low confidence)",
                   scan.source_name, reason)
    return fallback


#: The points a view's face mesh must place on the surface to fix a frame.
_NEEDED = ("exocanthion_left", "exocanthion_right", "pronasale")


def _face_mesh_view(scan: SurfaceScan, renderer: _Renderer, scored) -> tuple | None:
    """(score, points, frame) of the best candidate view whose face mesh places the eyes and nose on the
    surface with the nose in front of the eyes, or None."""
    # A face-only scan seen from behind is a hollow mask that also looks like a face (mirrored, with
    # the nose pointing away): such views fail frame_from_landmarks' nose-in-front check, and the face is
    # then looked for from the opposite side.
    for score, view in (sv for sv in scored if sv[0] >= MIN_FACE_SCORE):
        for attempt in (view, _reversed(view)):
            found = _landmarks_in_view(renderer, attempt)
            if found is None or any(n not in found for n in _NEEDED):
                break
            try:
                return score, found, _frame(found, renderer)
            except LandmarkError as exc:
                # The front of a shallow face lit flat can score below the threshold while its hollow back
                # view scores high (meshmonk SIMPOP_03 with a broad atrophy: 0.00 from the front, 0.74 behind).
                logger.info("%s: view with face score %.2f rejected (%s)%s", scan.source_name, score, exc,
                            "; trying the view from the opposite side" if attempt is view else "")
    return None


def _face_mesh_landmarks(scan: SurfaceScan, renderer: _Renderer, score: float, points: dict, frame: FaceFrame,
                         tried: int) -> DetectedLandmarks:
    """Steps 4-7 of the module's method from the chosen view's points and frame."""
    for _ in range(REFINE_ROUNDS):
        frontal = _landmarks_in_view(renderer, _frontal_view(frame, points, renderer))
        if frontal is None or any(n not in frontal for n in _NEEDED):
            break
        points = frontal
        frame = _frame(points, renderer)
    samples, frontal_image = [], None
    for yaw, pitch in ((0, 0), (JITTER_DEG, 0), (-JITTER_DEG, 0), (0, JITTER_DEG), (0, -JITTER_DEG)):
        found, image = _landmark_samples(renderer, _frontal_view(frame, points, renderer, yaw_deg=yaw, pitch_deg=pitch))
        samples += found
        frontal_image = image if frontal_image is None else frontal_image
    if not samples:
        samples = [points]
    # The full-range detector can miss a face that fills the frontal render; the candidate view's
    # score stands in then.
    face_score = max(_face_score(frontal_image), score)
    averaged, spread = {}, {}
    for name in points:
        stack = np.array([s[name] for s in samples if name in s])
        averaged[name] = _geometric_median(stack)
        spread[name] = float(np.sqrt(((stack - averaged[name]) ** 2).sum(axis=1).mean())) if len(stack) > 1 else np.inf
    frame = _frame(averaged, renderer)
    averaged["pronasale"] = _refine_pronasale(averaged, frame, renderer)
    frame = FaceFrame(frame.rotation, averaged["pronasale"].astype(float), "detected")
    pog = _pogonion(averaged, frame, renderer)
    if pog is not None:
        averaged["pogonion"] = pog
        spread["pogonion"] = max(spread.get("menton", 0.0), spread.get("labrale_inferius", 0.0))
    averaged, plane_rms = _onto_symmetry_plane(scan, averaged, renderer)
    frame = FaceFrame(frame.rotation, averaged["pronasale"].astype(float), "detected")
    confidence = {n: float(face_score * np.clip(1 - spread[n] / 4.0, 0, 1)) for n in averaged}
    ordered = [n for n in DETECTED_NAMES if n in averaged]
    for n in ordered:
        logger.info("%s: %s spread %.2f mm, confidence %.2f", scan.source_name, n, spread[n], confidence[n])
    return DetectedLandmarks(
        {n: averaged[n] for n in ordered}, {n: spread[n] for n in ordered}, {n: confidence[n] for n in ordered},
        frame, float(face_score), "face_mesh", tried, plane_rms,
    )


def canonical_frame(scan: SurfaceScan) -> FaceFrame:
    """The scan's canonical face frame (see :func:`detect_landmarks`)."""
    return detect_landmarks(scan).frame
