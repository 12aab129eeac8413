"""The pose validation harness: tables shared by ``test_photo_pose.py`` and ``benchmarks/validate_photo_pose.py``.

(a) textured scans rendered at known yaw and pitch (:mod:`pose_renders`);
(b) the 30 Face Research Lab London photos with their delineated templates;
(c) a smooth one-sided compression of known area change applied to a scan before
    rendering it turned.
Each function returns a list of dict rows (one per case) and is cached.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

LONDON = Path(__file__).parents[1] / "data" / "photos" / "frl_london"
SCAN_NAMES = ("james", "lee_perry_smith")
#: (yaw, pitch) of the renders, degrees.
RENDER_POSES = ((0, 0), (-10, 0), (-5, 0), (5, 0), (10, 0), (0, -10), (0, -5), (0, 5), (0, 10))
LEVELS = ("eyes", "cheekbones", "mouth", "jaw")
#: Template point -> hemiface name (see tests/data/photos/frl_london/README.md).
TEMPLATE_POINTS = {
    "pupil_right": 0, "pupil_left": 1, "exocanthion_right": 18, "endocanthion_right": 22,
    "endocanthion_left": 23, "exocanthion_left": 27, "alar_base_right": 63, "alar_base_left": 68,
    "subnasale": 55, "cheilion_right": 87, "cheilion_left": 93, "menton": 129,
    "jaw_mid_right": 127, "jaw_mid_left": 131,
}
#: Points whose definitions agree between hemiface and the template (the landmark error). The template's
#: jaw points 127/131 lie midway between the mouth-corner level and the chin; hemiface's jaw_mid points are
#: fixed places on its outline: not the same points (about 9% of the IPD apart).
ERROR_POINTS = tuple(n for n in TEMPLATE_POINTS if not n.startswith("jaw_mid"))
#: The template's face outline: lower outline from the right ear lobe over the chin to the left ear lobe,
#: then the hairline from the left ear back over the forehead to the right ear.
TEMPLATE_OUTLINE = (111, 125, 126, 127, 128, 129, 130, 131, 132, 133, 114,
                    112, 144, 143, 142, 141, 140, 139, 138, 137, 136, 135, 134, 109)
#: How many of TEMPLATE_OUTLINE's points are the delineated lower outline (ear lobe over the chin to ear lobe).
TEMPLATE_LOWER = 11
ATROPHY_FACTOR = 0.10
ATROPHY_POSES = ((10, 0), (-10, 0), (0, 10))


def _row(a) -> dict:
    comp = a.pose_compensated
    row = {
        "ratio": a.symmetry_ratio_percent, "ratio_compensated": a.symmetry_ratio_pose_compensated_percent,
        "landmark_ratio": a.landmark_ratio_percent, "landmark_ratio_compensated": comp["landmark_ratio_percent"],
        "yaw_deg": a.pose["yaw_deg"], "pitch_deg": a.pose["pitch_deg"], "roll_deg": a.pose["roll_deg"],
    }
    for lv in LEVELS:
        row[f"contour_{lv}"] = a.contour_ratio_percent[lv]
        row[f"contour_{lv}_compensated"] = comp["contour_ratio_percent"][lv]
    return row


@functools.lru_cache(maxsize=None)
def render_analysis(name: str, yaw: float, pitch: float, atrophy: bool = False):
    """The analysis of a render at a known pose (``atrophy``: with the one-sided compression), cached."""
    from pose_renders import left_compression, render

    from hemiface.photo import analyze_photo, photo_from_array

    warp = left_compression(ATROPHY_FACTOR) if atrophy else None
    tag = "_atrophy" if atrophy else ""
    return analyze_photo(photo_from_array(render(name, yaw, pitch, warp=warp), name=f"{name}{tag}_y{yaw}_p{pitch}"),
                         affected="left")


@functools.lru_cache(maxsize=None)
def render_table(name: str) -> tuple:
    rows = []
    for yaw, pitch in RENDER_POSES:
        a = render_analysis(name, yaw, pitch)
        rows.append({"scan": name, "render_yaw_deg": yaw, "render_pitch_deg": pitch, **_row(a)})
    return tuple(rows)


def read_template(path: Path) -> np.ndarray:
    lines = path.read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in lines[1 + i].split()[:2]] for i in range(n)])


def template_landmarks(path: Path):
    from hemiface.photo import FaceLandmarks

    t = read_template(path)
    points = {name: t[i].tolist() for name, i in TEMPLATE_POINTS.items()}
    return FaceLandmarks(points, t[list(TEMPLATE_OUTLINE)], f"template {path.name}")


@functools.lru_cache(maxsize=None)
def london_analysis(name: str):
    """The analysis of one London photo (affected left), cached."""
    from hemiface.photo import analyze_photo

    return analyze_photo(LONDON / name, affected="left")


@functools.lru_cache(maxsize=None)
def london_atrophy_table(factor: float = ATROPHY_FACTOR, contour_only: bool = True) -> tuple:
    """The 30 London photos, each with its left hemiface's contour drawn in toward the midline by ``factor``
    (``photo_helpers.simulate_atrophy``: a thin-plate-spline warp of the photo; ``contour_only``: the eyes,
    brows, nose and mouth corners held, as soft-tissue atrophy leaves them), at the photo's own head pose.

    Known: the warped outline's ratio about the warped pupils (``known_ratio``) and so the change the warp
    made (``known_change``: from the unwarped photo's own ratio, measured on the outline the warp moved).
    Measured: the warped photo's ratio, and the pose-compensated ratio's change between the two photos
    (the face mesh's yaw moving with the warp hides part of it).
    """
    from photo_helpers import simulate_atrophy, true_ratio

    from hemiface.photo import analyze_photo, photo_from_array, read_photo

    rows = []
    for jpg in sorted(LONDON.glob("*.jpg")):
        base = london_analysis(jpg.name)
        warped, outline, pupils = simulate_atrophy(read_photo(jpg).rgb, base, factor, contour_only=contour_only)
        a = analyze_photo(photo_from_array(warped, name=f"{jpg.stem}_atrophy"), affected="left")
        known = true_ratio(outline, pupils)
        rows.append({
            "photo": jpg.name, "yaw_deg": base.pose["yaw_deg"], "yaw_warped_deg": a.pose["yaw_deg"],
            "known_ratio": known, "ratio": a.symmetry_ratio_percent,
            "known_change": known - base.symmetry_ratio_percent,
            "change": a.symmetry_ratio_percent - base.symmetry_ratio_percent,
            "change_compensated": a.symmetry_ratio_pose_compensated_percent
            - base.symmetry_ratio_pose_compensated_percent,
        })
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def london_table() -> tuple:
    from hemiface.photo import FaceLandmarks
    from hemiface.photo._analyze import measure

    rows = []
    for jpg in sorted(LONDON.glob("*.jpg")):
        a = london_analysis(jpg.name)
        tem = template_landmarks(jpg.with_suffix(".tem"))
        # The template's own outline measured the same two ways, with hemiface's points (so at the same
        # levels about the same midline: the comparison is of the outlines) and the photo's face mesh.
        both = FaceLandmarks(dict(a.landmarks.points), tem.outline, f"{jpg.name}: template outline",
                             mesh=a.landmarks.mesh)
        t = measure(both, affected="left", name=jpg.name)
        ipd = float(np.hypot(*(tem["pupil_left"] - tem["pupil_right"])))
        err = [float(np.hypot(*(a.landmarks[n] - tem[n]))) / ipd for n in ERROR_POINTS]
        row = {"photo": jpg.name, **_row(a), "landmark_error_ipd": float(np.mean(err)),
               "template_ratio": t["symmetry_ratio_percent"],
               "template_ratio_compensated": t["symmetry_ratio_pose_compensated_percent"]}
        # hemiface's outline read the way the template is drawn: its closest points to the template's
        # lower-outline vertices, joined by the template's straight chords (the delineators placed 11 points
        # from ear lobe to ear lobe, so a chord cuts across the jaw angle).
        outline = np.asarray(a.landmarks.outline, float)
        lower = np.asarray(tem.outline, float)[:TEMPLATE_LOWER]
        closest = np.array([closest_on_polyline(outline, q) for q in lower])
        row["outline_error_ipd"] = float(np.linalg.norm(closest - lower, axis=1).mean() / ipd)
        chorded = np.asarray(tem.outline, float).copy()
        chorded[:TEMPLATE_LOWER] = closest
        c = measure(FaceLandmarks(dict(a.landmarks.points), chorded, f"{jpg.name}: outline at the template's points",
                                  mesh=a.landmarks.mesh), affected="left", name=jpg.name)
        for lv in ("mouth", "jaw"):
            row[f"template_contour_{lv}"] = t["contour_ratio_percent"][lv]
            row[f"template_contour_{lv}_compensated"] = t["pose_compensated"]["contour_ratio_percent"][lv]
            row[f"chorded_contour_{lv}"] = c["contour_ratio_percent"][lv]
        rows.append(row)
    return tuple(rows)


def closest_on_polyline(polyline: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The point of the closed ``polyline`` (n, 2) closest to ``q`` (2,)."""
    a, b = polyline, np.roll(polyline, -1, axis=0)
    ab = b - a
    t = np.clip(((q - a) * ab).sum(axis=1) / np.maximum((ab * ab).sum(axis=1), 1e-12), 0.0, 1.0)
    near = a + t[:, None] * ab
    return near[np.argmin(np.linalg.norm(near - q, axis=1))]


@functools.lru_cache(maxsize=None)
def atrophy_table(name: str) -> tuple:
    """The scan with its left side compressed by ATROPHY_FACTOR, rendered frontal and turned.

    Known ratio: the unwarped frontal render's detected outline and pupils, moved by the same warp (in the
    frontal head frame the warp acts on x alone, so it maps the frontal silhouette onto the warped one).
    """
    from photo_helpers import true_ratio
    from pose_renders import image_x_warp, left_compression

    frontal = render_analysis(name, 0, 0)
    warp = left_compression(ATROPHY_FACTOR)
    lm = frontal.landmarks
    outline = lm.outline.copy()
    outline[:, 0] = image_x_warp(name, warp, outline[:, 0])
    pupils = np.array([lm["pupil_right"], lm["pupil_left"]])
    pupils[:, 0] = image_x_warp(name, warp, pupils[:, 0])
    truth = true_ratio(outline, pupils)
    rows = []
    for yaw, pitch in ((0, 0),) + ATROPHY_POSES:
        a = render_analysis(name, yaw, pitch, atrophy=True)
        rows.append({"scan": name, "render_yaw_deg": yaw, "render_pitch_deg": pitch, "known_ratio": truth,
                     "unwarped_frontal_ratio": frontal.symmetry_ratio_percent, **_row(a)})
    return tuple(rows)


# ---- what limits the compensation: the pose cues and the depth model, each on its own ----------------

#: Yaw cues read from the face mesh (see :func:`pose_cues`).
CUES = ("mesh_axes", "symmetry_plane", "symmetry_plane_upper_inner", "nose_offset")


def pose_cues(mesh: np.ndarray) -> dict:
    """Yaw (degrees, the convention of ``HeadAxes.pose``) of a (478, 3) face mesh from four cues:

    * ``mesh_axes``: hemiface's head axes (the plane of the mesh's midline vertices; ``_frontal.head_axes``);
    * ``symmetry_plane``: the left-right axis as the principal direction of the 3D differences between each
      mesh vertex and its mirror vertex (a one-sided compression along that axis leaves these directions
      unchanged on a real face, unlike the midline plane's fit);
    * ``symmetry_plane_upper_inner``: the same from the pairs above the nose tip and within 0.6 IPD of it
      (eyes, brows, nose: away from the cheeks);
    * ``nose_offset``: asin of the pronasale's horizontal offset from the endocanthions' midpoint (in the
      pupils' frame) over the nose's projection depth in front of the endocanthions (mesh z).
    """
    from hemiface._face_mesh import MIRROR_MAP
    from hemiface.photo._frontal import _PUPILS, HeadAxes, _template_down, _toward, head_axes
    from hemiface.photo._geometry import Frame

    mesh = np.asarray(mesh, float)
    mirror = np.asarray(MIRROR_MAP)
    base = head_axes(mesh)
    out = {"mesh_axes": base.pose["yaw_deg"]}
    image = Frame.from_pupils(mesh[_PUPILS[0], :2], mesh[_PUPILS[1], :2])
    uv = image.uv(mesh[:, :2])
    left = np.array([i for i in range(len(mirror)) if mirror[i] != i and uv[i, 0] > uv[mirror[i], 0]])
    ipd = float(np.hypot(*(uv[_PUPILS[1]] - uv[_PUPILS[0]])))
    upper_inner = (uv[left, 1] < uv[4, 1]) & (np.abs(uv[left, 0] - uv[4, 0]) < 0.6 * ipd)
    for key, sel in (("symmetry_plane", np.ones(len(left), bool)), ("symmetry_plane_upper_inner", upper_inner)):
        d = mesh[left[sel]] - mesh[mirror[left[sel]]]
        ex = _toward(np.linalg.svd(d, full_matrices=False)[2][0], mesh[_PUPILS[1]] - mesh[_PUPILS[0]])
        down = _template_down(mesh)
        ey = down - (down @ ex) * ex
        ey /= np.linalg.norm(ey)
        out[key] = HeadAxes(base.centre, np.column_stack([ex, ey, np.cross(ex, ey)])).pose["yaw_deg"]
    depth = 0.5 * (mesh[133, 2] + mesh[362, 2]) - mesh[4, 2]
    offset = uv[4, 0] - 0.5 * (uv[133, 0] + uv[362, 0])
    out["nose_offset"] = float(np.degrees(np.arcsin(np.clip(offset / depth, -1, 1))))
    return out


@functools.lru_cache(maxsize=None)
def cue_table(name: str) -> tuple:
    """Per atrophy pose: each cue's change over the render's turn from frontal (``turn_<cue>``, truth
    ``render_yaw_deg``) and its shift by the one-sided compression at the same pose (``compression_<cue>``,
    truth 0: the compression turns nothing)."""
    frontal = pose_cues(render_analysis(name, 0, 0).landmarks.mesh)
    rows = []
    for yaw, pitch in ((0, 0),) + ATROPHY_POSES:
        plain = pose_cues(render_analysis(name, yaw, pitch).landmarks.mesh)
        warped = pose_cues(render_analysis(name, yaw, pitch, atrophy=True).landmarks.mesh)
        row = {"scan": name, "render_yaw_deg": yaw, "render_pitch_deg": pitch}
        for c in CUES:
            row[f"turn_{c}"] = plain[c] - frontal[c]
            row[f"compression_{c}"] = warped[c] - plain[c]
        rows.append(row)
    return tuple(rows)


def known_head(name: str, yaw: float, pitch: float, mesh: np.ndarray):
    """The head axes a render at a known pose really has (the render's frame turned by the known rotation;
    frontal = the render at yaw 0, pitch 0), origin at the mesh's pupils."""
    from pose_renders import rotation

    from hemiface.photo._frontal import _PUPILS, HeadAxes

    flip = np.diag([1.0, -1.0, -1.0])  # the scans' frame (y up, z toward the camera) <-> image axes
    mesh = np.asarray(mesh, float)
    return HeadAxes(0.5 * (mesh[_PUPILS[0]] + mesh[_PUPILS[1]]), flip @ rotation(yaw, pitch) @ flip)


@functools.lru_cache(maxsize=None)
def known_pose_table(name: str) -> tuple:
    """The compensation with the render's KNOWN rotation in place of the mesh's axes: what the depth model
    (mesh depths, face-oval depth of the outline) leaves when the pose is exact. Renders at every pose, and
    the compressed scan at the atrophy poses (with its known ratio)."""
    from hemiface.photo._analyze import _geometry
    from hemiface.photo._frontal import frontal_landmarks

    from pose_renders import left_compression

    def ratios(a, yaw, pitch, warp=None):
        lm = a.landmarks
        front, _ = frontal_landmarks(lm, lm.mesh, head=known_head(name, yaw, pitch, lm.mesh))
        g = _geometry(front, affected="left", midline="pupils", name=name)
        exact = _geometry(exact_surface_landmarks(name, yaw, pitch, lm, front, warp=warp), affected="left",
                          midline="pupils", name=name)
        row = {"ratio_known_pose": g["ratios"]["pupils"], "landmark_ratio_known_pose": g["landmark_ratio"],
               "ratio_exact_surface": exact["ratios"]["pupils"]}
        row.update({f"contour_{lv}_known_pose": g["contour"][lv] for lv in LEVELS})
        row.update({f"contour_{lv}_exact_surface": exact["contour"][lv] for lv in LEVELS})
        return row

    rows = [{"scan": name, "case": "render", "render_yaw_deg": y, "render_pitch_deg": p, "known_ratio": None,
             **ratios(render_analysis(name, y, p), y, p)} for y, p in RENDER_POSES]
    truth = atrophy_table(name)[0]["known_ratio"]
    warp = left_compression(ATROPHY_FACTOR)
    rows += [{"scan": name, "case": "atrophy", "render_yaw_deg": y, "render_pitch_deg": p, "known_ratio": truth,
              **ratios(render_analysis(name, y, p, atrophy=True), y, p, warp)} for y, p in ((0, 0),) + ATROPHY_POSES]
    return tuple(rows)


def exact_surface_landmarks(name: str, yaw: float, pitch: float, lm, known_pose_front, *, warp=None):
    """The detected points and outline of a render at a known pose, each lifted to the scan's TRUE surface
    point under it (a ray cast into the turned scan), turned back to frontal and projected into the frontal
    render's pixels: a compensation with exact depth and exact pose, so what is left is the outline
    detection itself (at each pose the outline may follow another physical curve: the near ear, the far
    jaw's occluding contour). A point whose ray misses the scan keeps its known-pose model lift
    (``known_pose_front``, head frame), placed at the exact lift of the pupils."""
    from pose_renders import frontal_pixels, frontal_rotation, load, rotation, surface_points

    from hemiface.photo._landmarks import FaceLandmarks

    v0, f, _ = load(name)
    v = v0 @ frontal_rotation(name).T
    v = warp(v) if warp is not None else v
    R = rotation(yaw, pitch)

    def lift(xy):
        with np.errstate(invalid="ignore"):  # a ray that misses: NaN
            front = surface_points(name, v @ R.T, f, np.asarray(xy, float)) @ R  # exact 3D point, turned back
        return frontal_pixels(name, front)

    names = list(lm.points)
    points, outline = lift([lm[n] for n in names]), lift(lm.outline)
    pupils = 0.5 * (points[names.index("pupil_right")] + points[names.index("pupil_left")])
    for got, model in ((points, np.array([known_pose_front[n] for n in names])), (outline, known_pose_front.outline)):
        miss = ~np.isfinite(got).all(axis=1)
        got[miss] = model[miss] + pupils
    return FaceLandmarks({n: p.tolist() for n, p in zip(names, points)}, outline, f"{lm.source}; exact surface lift")


def deviation_from_frontal(rows, key: str) -> float:
    """The largest change of ``rows``' ``key`` from the frontal render's (yaw 0, pitch 0), in points."""
    frontal = next(r for r in rows if r["render_yaw_deg"] == 0 and r["render_pitch_deg"] == 0)
    return max(abs(r[key] - frontal[key]) for r in rows)


def format_rows(rows, keys) -> str:
    head = " ".join(f"{k:>14.14s}" for k in keys)
    lines = [head]
    for r in rows:
        lines.append(" ".join(f"{r[k]:>14.2f}" if isinstance(r[k], float) else f"{str(r[k]):>14.14s}" for k in keys))
    return "\n".join(lines)


# ---- pose differences between two visits: can any estimate be trusted when the cheek changed? ----------

#: (baseline yaw, pitch), (follow-up yaw, pitch) of the visit pairs.
PAIR_POSES = (((0, 0), (0, 0)), ((0, 0), (3, 0)), ((0, 0), (-3, 0)), ((2, 0), (-2, 0)), ((0, 0), (0, 3)),
              ((-5, 0), (5, 0)))
#: Relative-pose estimates compared by :func:`pose_pair_table`.
PAIR_ESTIMATES = ("mesh_axes", "upper_face", "own_scan")


@functools.lru_cache(maxsize=None)
def _located(name: str, yaw: float, pitch: float, cheek: float):
    from pose_renders import cheek_compression, render

    from hemiface.photo._locate import locate

    warp = cheek_compression(name, cheek) if cheek else None
    return locate(render(name, yaw, pitch, warp=warp)).mesh


def _rigid_fit(model: np.ndarray, image_xy: np.ndarray) -> np.ndarray:
    """(yaw, pitch) in degrees (``fit_pose`` conventions) of the weak-perspective rotation that best maps
    3D ``model`` points (x right, y down in the image, z into it) onto ``image_xy`` (robust least squares)."""
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    ok = np.isfinite(model).all(1)  # scan points whose ray missed the scan are left out
    model, image_xy = model[ok], image_xy[ok]
    X = model - model.mean(0)

    def residual(p):
        Y = X @ Rotation.from_rotvec(p[:3]).as_matrix().T
        return (p[3] * Y[:, :2] + p[4:6] - image_xy).ravel()

    p = least_squares(residual, np.r_[0.0, 0.0, 0.0, 1.0, image_xy.mean(0)], loss="soft_l1", f_scale=1.0).x
    yaw, pitch = Rotation.from_rotvec(p[:3]).as_euler("yxz", degrees=True)[:2]
    # Image axes (x right, y down, z into the photo): a positive turn about y moves the nose (z < 0) toward the
    # image's left, about x downward: yaw is minus the first angle, pitch (chin down) the second.
    return np.array([-yaw, pitch])


@functools.lru_cache(maxsize=None)
def _own_scan_points(name: str, cheek: float) -> np.ndarray:
    """The face mesh's 478 points on the frontal render cast onto the (warped) scan itself: its true 3D
    shape at those points, in image axes (px; x right, y down, z into the image)."""
    from pose_renders import VIEWS, cheek_compression, frontal_rotation, load, surface_points

    v0, f, _ = load(name)
    v = v0 @ frontal_rotation(name).T
    if cheek:
        v = cheek_compression(name, cheek)(v)
    mesh = _located(name, 0, 0, cheek)
    z = surface_points(name, v, f, mesh[:, :2])[:, 2]  # toward the camera
    return np.column_stack([mesh[:, 0], mesh[:, 1], -z / VIEWS[name]["pixel_mm"]])


def _upper_face(mesh: np.ndarray) -> np.ndarray:
    """Mesh points above the subnasale and within 0.6 IPD of the pupils' midpoint: eyes, brows, nose."""
    ipd = float(np.hypot(*(mesh[473, :2] - mesh[468, :2])))
    mid = 0.5 * (mesh[468, 0] + mesh[473, 0])
    return (mesh[:, 1] < mesh[2, 1]) & (np.abs(mesh[:, 0] - mid) < 0.6 * ipd)


@functools.lru_cache(maxsize=None)
def pose_pair_table(name: str, cheek: float = ATROPHY_FACTOR) -> tuple:
    """Visit pairs: the baseline's left cheek and jaw compressed by ``cheek`` (eyes and brows unmoved:
    :func:`pose_renders.cheek_compression`), the follow-up's restored, each rendered at its own pose.
    The error of three estimates of the pose difference (follow-up minus baseline, degrees; truth: the
    renders' turns):

    * ``mesh_axes``: each photo's own head axes (what ``photo compare`` reports);
    * ``upper_face``: the follow-up's eye, brow and nose points fitted rigidly to the baseline's 3D face
      mesh (same person: shape cancels, if the model's points stay put);
    * ``own_scan``: each photo's face mesh points fitted to that visit's scan (its true 3D shape, atrophy
      included), as if each visit had a same-day 3D scan.
    """
    from hemiface.photo._frontal import head_axes

    rows = []
    for (ya, pa), (yb, pb) in PAIR_POSES:
        a, b = _located(name, ya, pa, cheek), _located(name, yb, pb, 0.0)
        true = np.array([yb - ya, pb - pa], float)
        pose_a, pose_b = head_axes(a).pose, head_axes(b).pose
        est = {"mesh_axes": np.array([pose_b["yaw_deg"] - pose_a["yaw_deg"], pose_b["pitch_deg"] - pose_a["pitch_deg"]])}
        sel = _upper_face(a)
        est["upper_face"] = _rigid_fit(a[sel], b[sel, :2])
        est["own_scan"] = (_rigid_fit(_own_scan_points(name, 0.0), b[:, :2])
                           - _rigid_fit(_own_scan_points(name, cheek), a[:, :2]))
        row = {"scan": name, "baseline_yaw_deg": ya, "baseline_pitch_deg": pa, "followup_yaw_deg": yb,
               "followup_pitch_deg": pb}
        for k, e in est.items():
            row[f"{k}_yaw_error"], row[f"{k}_pitch_error"] = (float(v) for v in e - true)
        rows.append(row)
    return tuple(rows)
