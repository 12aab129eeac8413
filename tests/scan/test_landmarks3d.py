"""Automatic 3D landmarks and frame on real scans moved to random poses, against published landmarks.

Truth is what the scans' authors published, not what hemiface produced:
- meshmonk template: ``template_landmarks.csv`` (5 points, renamed from meshmonk's TemplateLandmarks.csv);
- Rvcg humface: ``tests/data/humface_lm.csv``, 7 unnamed points. By position on the mesh (face toward
  +z, patient's left toward +x) they are, in order: exocanthion_right, endocanthion_right,
  endocanthion_left, exocanthion_left, pronasale, cheilion_right, cheilion_left;
- meshmonk demoface, the raw head-and-shoulders scan (10,000 vertices, with artefacts):
  ``DemoFaceLandmarks.csv``, 5 unnamed points; by position: endocanthion_right, endocanthion_left,
  pronasale, cheilion_right, cheilion_left;
- menpo3d james: ``james.ljson``, menpo's 68-point iBUG-style set whose groups are named from the
  viewer's side ("leye" is the patient's RIGHT eye, x < 0): 17 exocanthion_right, 20
  endocanthion_right, 23 endocanthion_left, 26 exocanthion_left, 37 nose tip (pronasale),
  40 subnasale, 48 cheilion_right, 54 cheilion_left, 51 labrale_superius, 57 labrale_inferius.
  (34, the top of the nasal bridge in that scheme, is not nasion and is not compared.)

The reference frame is :func:`frame_from_landmarks` on the published points (it needs no detection),
carried through the same random rotation. Each scan is rotated uniformly at random (seeded),
translated by up to 500 mm, and for some given in cm or m.
"""

import csv
import functools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hemiface import datasets
from hemiface.scan import load_scan, scan_from_arrays
from hemiface.scan._frame import frame_from_landmarks
from hemiface.scan._io import MM_PER_UNIT
from hemiface.scan._landmarks3d import DETECTED_NAMES, FaceNotFoundError, canonical_frame, detect_landmarks
from hemiface.scan._mesh import vertex_normals

log = logging.getLogger(__name__)

# uncertainty=False where a test checks volumes, gains and planes only: the uncertainty is validated in
# test_atrophy_truth.py (and the CLI's default path in test_cli_compare_writes_outputs), and leaving out its
# jackknife changes no other number.
DATA = Path(__file__).parents[1] / "data"
HUMFACE_NAMES = ("exocanthion_right", "endocanthion_right", "endocanthion_left", "exocanthion_left", "pronasale",
                 "cheilion_right", "cheilion_left")
DEMOFACE_NAMES = ("endocanthion_right", "endocanthion_left", "pronasale", "cheilion_right", "cheilion_left")
JAMES_INDEX = {"exocanthion_right": 17, "endocanthion_right": 20, "endocanthion_left": 23, "exocanthion_left": 26,
               "pronasale": 37, "subnasale": 40, "cheilion_right": 48, "cheilion_left": 54,
               "labrale_superius": 51, "labrale_inferius": 57}
#: Published points further than 4 mm from the detected ones, with the measured error pinned; every other
#: published point must lie within TOLERANCE_MM.
#: template endocanthion_left (4.8-5.1 mm): the published point is itself 5 mm off the exactly symmetric
#: template's mirror image of the published right endocanthion (x = 20.8 vs -15.6 mm), while the detection
#: is symmetric; an annotation bias, not a detection error.
#: demoface_raw (meshmonk's annotations, like the template's): cheilion_left (5.0-6.1 mm): the published
#: point lies 4-6 mm lateral of where the oral fissure visibly ends on the mesh (the cheilions published
#: at -24.4 / +31.0 mm from pronasale in the detected frame, the detected ones at -23.9 / +26.7 mm), the same
#: left-side bias as on the template. endocanthion_right (5.0-5.5 mm, 5 mm lower than published): this
#: 10,000-vertex head-and-shoulders mesh has 4-5 mm edges around the eyes and no palpebral fissure at
#: all, so the inner eye corner is not on the surface to be found; a limit of the mesh, not met. Checked
#: by hand (not in the suite: 3 MB) on meshmonk's full-resolution demoFace_2018_cleaned.obj (25,524
#: vertices, another frame), registered onto this mesh by landmarks and ICP (median 0.4 mm): detected there,
#: endocanthion_right lies 1.2 mm and cheilion_right 1.0 mm from the published points, while
#: cheilion_left stays 4.1 mm off (3.8 mm medial of the published point: the annotation's left-side bias).
KNOWN_GAPS_MM = {("template", "endocanthion_left"): 5.5, ("demoface_raw", "cheilion_left"): 6.6,
                 ("demoface_raw", "endocanthion_right"): 6.0}
TOLERANCE_MM = 4.0
FRAME_TOLERANCE_DEG = 5.0



@functools.lru_cache(maxsize=None)
def _published(name):
    """(scan, published landmarks); cached: scans are immutable (read-only arrays)."""
    if name == "template":
        from hemiface.scan import read_landmarks

        scan = datasets.load_sample("template")
        return scan, read_landmarks(datasets.sample_landmarks_path("template"))
    if name == "humface":
        scan = load_scan(DATA / "humface.ply")
        rows = [r for r in csv.reader(open(DATA / "humface_lm.csv")) if r and not r[0].startswith("#")]
        return scan, {n: np.array([float(c) for c in r]) for n, r in zip(HUMFACE_NAMES, rows)}
    if name == "demoface_raw":
        scan = load_scan(DATA / "demoface_raw_10k.obj")
        rows = np.loadtxt(DATA / "demoface_raw_10k_landmarks.csv", delimiter=",")
        return scan, dict(zip(DEMOFACE_NAMES, rows))
    scan = datasets.load_sample("james")
    ljson = DATA / "james.ljson"
    points = np.array(json.loads(ljson.read_text())["groups"]["LJSON"]["landmarks"]["points"])
    return scan, {n: points[i] for n, i in JAMES_INDEX.items()}


def _moved(scan, seed, units):
    rng = np.random.default_rng(seed)
    rot = Rotation.random(random_state=seed).as_matrix()
    shift = rng.uniform(-500, 500, 3)
    v = (scan.vertices_mm @ rot.T + shift) / MM_PER_UNIT[units]
    moved = scan_from_arrays(v, scan.faces, units=units, source_name=f"moved-{seed}", texture=scan.texture)
    return moved, rot, shift


def _angle_deg(a, b):
    return float(np.degrees(np.arccos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1))))


CASES = [("demoface_raw", 16, "mm"), ("template", 11, "mm"), ("humface", 12, "mm"), ("humface", 13, "cm"), ("james", 14, "m"), ("james", 15, "mm")]
_cache = {}


def _detect(name, seed, units):
    if (name, seed, units) not in _cache:
        scan, published = _published(name)
        moved, rot, shift = _moved(scan, seed, units)
        found = detect_landmarks(moved)
        back = {n: (p - shift) @ rot for n, p in found.points_mm.items()}  # into the original frame, mm
        _cache[(name, seed, units)] = (scan, published, moved, rot, found, back)
    return _cache[(name, seed, units)]


@pytest.mark.parametrize("name,seed,units", CASES)
def test_frame_and_landmarks_recovered_from_random_pose(name, seed, units):
    scan, published, moved, rot, found, back = _detect(name, seed, units)
    # frame_from_landmarks' vertical axis depends on which lower midline point it is given (menton,
    # else subnasale, else the mouth corners), so the detected points are restricted to the published
    # names: same definition, independent points.
    reference = frame_from_landmarks(published, scan.vertices_mm, vertex_normals(scan.vertices_mm, scan.faces))
    same_names = {n: found.points_mm[n] for n in published}
    mm = moved.vertices_mm
    detected = frame_from_landmarks(same_names, mm, vertex_normals(mm, moved.faces))
    angle = _angle_deg(detected.rotation, reference.rotation @ rot.T)
    log.info("%s seed %d (%s): frame angle error %.2f deg, face score %.2f", name, seed, units, angle, found.face_score)
    assert angle < FRAME_TOLERANCE_DEG
    assert found.method == "face_mesh" and not found.low_confidence
    # The x axis (eyes) of the frame detect_landmarks returns (it uses menton for the vertical).
    x_angle = float(np.degrees(np.arccos(np.clip(found.frame.rotation[0] @ (reference.rotation[0] @ rot.T), -1, 1))))
    log.info("%s seed %d: detected frame's x axis off by %.2f deg", name, seed, x_angle)
    assert x_angle < FRAME_TOLERANCE_DEG
    errors = {n: float(np.linalg.norm(back[n] - p)) for n, p in published.items() if n in back}
    for n, e in errors.items():
        log.info("%s seed %d: %-20s error %.2f mm (spread %.2f mm, confidence %.2f)", name, seed, n, e,
                 found.spread_mm[n], found.confidence[n])
    assert set(errors) == set(published)
    for n, e in errors.items():
        assert e < KNOWN_GAPS_MM.get((name, n), TOLERANCE_MM), (n, e)
    if name == "template":  # exactly mirror-symmetric about x = 0: the published right eye corner, mirrored,
        # is as good a truth for the left one as the published left (measured 2.6 mm against 5.1 mm)
        mirrored_right = published["endocanthion_right"] * [-1, 1, 1]
        e = float(np.linalg.norm(back["endocanthion_left"] - mirrored_right))
        log.info("template seed %d: endocanthion_left %.2f mm from the mirrored published right one", seed, e)
        assert e < TOLERANCE_MM
    # The frame's origin is the detected pronasale, and canonical +x points to the patient's left.
    assert np.allclose(found.frame.origin_mm, found.points_mm["pronasale"])
    canon = found.frame.to_canonical(np.array([found.points_mm["exocanthion_left"], found.points_mm["exocanthion_right"]]))
    assert canon[0, 0] > 25 and canon[1, 0] < -25 and (canon[:, 2] < 0).all() and (canon[:, 1] > 0).all()


@pytest.mark.parametrize("name,seeds", [("humface", (12, 13)), ("james", (14, 15))])
def test_random_poses_agree(name, seeds):
    a = _detect(name, seeds[0], CASES[[c[:2] for c in CASES].index((name, seeds[0]))][2])[5]
    b = _detect(name, seeds[1], CASES[[c[:2] for c in CASES].index((name, seeds[1]))][2])[5]
    diffs = {n: float(np.linalg.norm(a[n] - b[n])) for n in a if n in b}
    for n, d in diffs.items():
        log.info("%s seeds %s: %-20s poses differ by %.2f mm", name, seeds, n, d)
    assert len(diffs) >= 10
    for n, d in diffs.items():
        assert d < 1.0, (n, d)


def test_mirrored_scan_swaps_sides():
    """The template of the seed-11 case, mirrored (x -> -x in its random pose): left and right swap."""
    _, _, moved, _, found, _ = _detect("template", 11, "mm")
    mirrored = scan_from_arrays(moved.vertices_mm * [-1, 1, 1], moved.faces[:, ::-1])
    found_mirrored = detect_landmarks(mirrored)
    a, b = found.points_mm, found_mirrored.points_mm
    other_side = {n: n.replace("_left", "_RIGHT").replace("_right", "_left").replace("_RIGHT", "_right") for n in a}
    for n in a:  # every point, sides swapped (measured: at most 1.0 mm on the template, 1.2 mm on james)
        d = float(np.linalg.norm(a[n] - b[other_side[n]] * [-1, 1, 1]))
        log.info("mirrored template: %-20s %.2f mm from the mirror image of its partner", n, d)
        assert d < 1.5, (n, d)
    for n in ("exocanthion", "endocanthion", "cheilion"):
        # The patient's left is canonical +x on both faces.
        assert found.frame.to_canonical(a[f"{n}_left"])[0] > 0 and found_mirrored.frame.to_canonical(b[f"{n}_left"])[0] > 0


def _sphere():
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=4, radius=80.0)
    return np.asarray(m.vertices), np.asarray(m.faces)


def _shape(shape):
    import trimesh

    if shape == "sphere":
        return _sphere()
    if shape == "box":
        m = trimesh.creation.box(extents=(150.0, 200.0, 120.0)).subdivide().subdivide()
        return np.asarray(m.vertices), np.asarray(m.faces)
    v, f = _sphere()
    rng = np.random.default_rng(0)
    bumps = rng.normal(size=(6, 3))
    d = v / np.linalg.norm(v, axis=1, keepdims=True)
    return v * (1 + 0.25 * np.tanh(d @ bumps.T).sum(axis=1, keepdims=True) / 6), f


@pytest.mark.parametrize("shape", ["sphere", "box", "blob"])
def test_mesh_without_a_face_is_an_error(shape, monkeypatch):
    """No face, and no guess: the geometric fallback is tried and refuses (no nose-like protrusion)."""
    from hemiface.scan import _landmarks3d

    calls = []
    real = _landmarks3d._geometric_fallback
    monkeypatch.setattr(_landmarks3d, "_geometric_fallback", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(FaceNotFoundError, match="no face found.*no nose-like protrusion"):
        canonical_frame(scan_from_arrays(*_shape(shape), source_name=shape))
    assert calls


def test_analyze_orient_auto_is_pose_invariant():
    """A carved template phantom analysed with orient="auto" in a random pose (given in cm) gives the
    same numbers as the phantom as given, in the canonical frame with the published landmarks."""
    from hemiface.scan import analyze_scan

    scan, published = _published("template")
    phantom = datasets.carve_defect(scan.vertices_mm, scan.faces, side="left", volume_mm3=5000.0)
    original = scan_from_arrays(phantom.vertices_mm, phantom.faces)
    moved, rot, shift = _moved(original, 21, "cm")
    given = analyze_scan(original, affected="auto", landmarks=published, uncertainty=False)
    auto = analyze_scan(moved, affected="auto", orient="auto", uncertainty=False)
    log.info("orient auto: defect %.0f vs %.0f mm3 (truth %.0f), discrepancy %.0f vs %.0f mm3, max depth %.2f vs %.2f mm",
             auto.defect_volume_mm3, given.defect_volume_mm3, phantom.true_volume_mm3, auto.volumetric_discrepancy_mm3,
             given.volumetric_discrepancy_mm3, auto.max_depth_mm, given.max_depth_mm)
    assert auto.frame_source == "detected" and auto.affected_side == given.affected_side == "left"
    assert auto.defect_volume_mm3 == pytest.approx(given.defect_volume_mm3, rel=0.03)
    assert auto.volumetric_discrepancy_mm3 == pytest.approx(given.volumetric_discrepancy_mm3, rel=0.03)
    assert auto.max_depth_mm == pytest.approx(given.max_depth_mm, abs=0.1)
    normal_back = np.array(auto.symmetry_plane_normal) @ rot  # into the original frame
    assert abs(normal_back @ np.array(given.symmetry_plane_normal)) > np.cos(np.radians(0.5))


def test_compare_orient_auto_with_scans_in_different_poses():
    """Baseline and follow-up of the same face, each as its own scanner left it (two random poses, the
    follow-up in cm): `compare_scans(orient="auto")` gives the gain the phantom generator built in and the
    numbers of the comparison of the scans as given, in the canonical frame."""
    from hemiface.scan import compare_scans

    base, _ = _published("humface")
    site = dict(side="left", centre_offset_mm=(38.0, 8.0), radius_mm=22.0)
    pre = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=5000.0, **site)
    post = datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=2000.0, **site)
    truth_gain = pre.true_volume_mm3 - post.true_volume_mm3
    pre_scan, post_scan = (scan_from_arrays(p.vertices_mm, p.faces, source_name=n) for p, n in ((pre, "pre"), (post, "post")))
    given = compare_scans(pre_scan, post_scan, affected="left", orient="canonical", uncertainty=False)
    pre_moved, _, _ = _moved(pre_scan, 41, "mm")
    post_moved, _, _ = _moved(post_scan, 42, "cm")
    auto = compare_scans(pre_moved, post_moved, affected="left", orient="auto", uncertainty=False)
    log.info("compare orient auto: gain %.0f vs %.0f mm3 as given (truth %.0f), discrepancy change %.0f vs %.0f mm3",
             auto.gain.volume_mm3, given.gain.volume_mm3, truth_gain, auto.discrepancy_change_mm3,
             given.discrepancy_change_mm3)
    assert auto.gain.volume_mm3 == pytest.approx(truth_gain, rel=0.03)
    assert auto.gain.volume_mm3 == pytest.approx(given.gain.volume_mm3, rel=0.02)
    assert auto.discrepancy_change_mm3 == pytest.approx(given.discrepancy_change_mm3, rel=0.03)
    assert auto.registration.converged


def test_cli_scan_landmarks(tmp_path):
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.scan import read_landmarks

    scan, _ = _published("humface")
    moved, rot, shift = _moved(scan, 31, "cm")
    import trimesh

    src = tmp_path / "moved.stl"  # STL: no texture, no colours
    trimesh.Trimesh(moved.vertices_mm / 10.0, moved.faces, process=False).export(src)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["scan", "landmarks", str(src), "--units", "cm", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["frame.json", "landmarks.csv", "landmarks.png"]
    points = read_landmarks(out / "landmarks.csv", units="cm")  # readable back as --landmarks (mm)
    record = json.loads((out / "frame.json").read_text())
    r, t = np.array(record["rotation"]), np.array(record["translation_mm"])
    canon = r @ points["pronasale"] + t
    assert np.allclose(canon, 0, atol=1e-3) and record["scan_units"] == "cm"
    for name, entry in record["landmarks"].items():
        assert 0 <= entry["confidence"] <= 1 and np.allclose(entry["xyz_mm"], points[name], atol=1e-3)
    # Rerunning without --overwrite refuses (exit 1, one line); a sphere is a clear error too.
    again = CliRunner().invoke(app, ["scan", "landmarks", str(src), "--units", "cm", "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    v, f = _sphere()
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "sphere.ply")
    bad = CliRunner().invoke(app, ["scan", "landmarks", str(tmp_path / "sphere.ply"), "--out", str(tmp_path / "s")])
    assert bad.exit_code == 1 and "no face found" in bad.output


def test_face_small_in_a_large_scan():
    """A slab (a table, shoulders) and spike triangles 600 mm away make the face a few dozen pixels
    wide in the whole-scan renders; the detected face is zoomed onto and found as without them."""
    import trimesh

    scan, published = _published("humface")
    v, f = np.array(scan.vertices_mm), np.array(scan.faces)
    centre = v.mean(axis=0)
    slab = trimesh.creation.box(extents=(600.0, 40.0, 600.0))
    sv = np.asarray(slab.vertices) @ Rotation.from_euler("y", 45, degrees=True).as_matrix().T + centre + [0, -250, -150]
    spikes = centre + np.array([[600.0, 0, 0], [601, 0, 0], [600, 1, 0], [0, 0, -600], [0, 1, -600], [1, 0, -600]])
    vertices = np.vstack([v, sv, spikes])
    faces = np.vstack([f, np.asarray(slab.faces) + len(v), np.array([[0, 1, 2], [3, 4, 5]]) + len(v) + len(sv)])
    found = detect_landmarks(scan_from_arrays(vertices, faces, source_name="cluttered"))
    errors = {n: float(np.linalg.norm(found.points_mm[n] - p)) for n, p in published.items()}
    log.info("cluttered humface: %s", {n: round(e, 2) for n, e in errors.items()})
    for n, e in errors.items():
        assert e < KNOWN_GAPS_MM.get(("humface", n), TOLERANCE_MM), (n, e)


def test_clustered_plane_fit_for_dense_scans(monkeypatch):
    """Dense scans fit the symmetry plane on a 1 mm vertex-clustered copy: the midline points match
    the full-resolution fit's (the threshold is lowered here so that the template takes that path)."""
    from hemiface.scan import _landmarks3d

    _, _, moved, _, full, _ = _detect("template", 11, "mm")
    monkeypatch.setattr(_landmarks3d, "PLANE_MAX_VERTICES", 1000)
    clustered = detect_landmarks(moved)
    assert clustered.symmetry_plane_rms_mm is not None
    for n in ("pronasale", "subnasale", "nasion", "menton"):
        assert np.linalg.norm(full.points_mm[n] - clustered.points_mm[n]) < 0.5, n


def test_texture_is_read_with_seams_and_placeholders_dropped(tmp_path):
    """james.obj's texture comes with one UV per face corner (its 435 faces on texture seams keep their own
    UVs); the template's OBJ has UVs but no image (trimesh supplies a one-colour placeholder): no texture;
    PLY vertex colours survive the loader's repairs."""
    import trimesh

    from hemiface.scan import load_scan

    james = _published("james")[0]
    assert james.texture.image.shape == (1600, 2400, 3) and james.texture.corner_uv.shape == (len(james.faces), 3, 2)
    # Against the file itself, read here line by line: each face corner's position (v) and UV (vt).
    v_rows, vt_rows, corners = [], [], []
    for line in datasets.sample_path("james").read_text().splitlines():
        kind, *fields = line.split() or [""]
        if kind == "v":
            v_rows.append([float(c) for c in fields[:3]])
        elif kind == "vt":
            vt_rows.append([float(c) for c in fields[:2]])
        elif kind == "f":
            corners.append([[int(i) - 1 for i in c.split("/")[:2]] for c in fields])
    corners = np.array(corners)  # (faces, 3, [v, vt]); james is all triangles
    assert np.allclose(james.vertices_mm[james.faces], np.array(v_rows)[corners[..., 0]])
    assert np.allclose(james.texture.corner_uv, np.array(vt_rows)[corners[..., 1]])
    assert len(james.vertices_mm) == len(np.unique(np.array(v_rows), axis=0))  # seam copies merged again
    template = _published("template")[0]
    assert template.has_texture and template.texture is None
    v, f = _sphere()
    rgb = (np.abs(v) / 80 * 255).astype(np.uint8)
    # A duplicated vertex (merged on load) and an unused one (dropped): colours must follow their vertices.
    v2 = np.vstack([v, v[:1], [[0, 0, 500.0]]])
    f2 = f.copy()
    f2[0, 0] = len(v)
    rgb2 = np.vstack([rgb, rgb[:1], [[1, 2, 3]]])
    path = tmp_path / "coloured.ply"
    trimesh.Trimesh(v2, f2, vertex_colors=np.hstack([rgb2, np.full((len(rgb2), 1), 255)]), process=False).export(path)
    scan = load_scan(path)
    assert scan.texture is not None and scan.texture.vertex_rgb.shape == (len(scan.vertices_mm), 3)
    from scipy.spatial import cKDTree

    distance, index = cKDTree(v).query(scan.vertices_mm)
    assert len(scan.vertices_mm) == len(v) and distance.max() < 1e-3
    assert (scan.texture.vertex_rgb == rgb[index]).all()


def test_textured_render_uses_the_texture():
    """A render of a textured scan shows the texture's colours (a skin tone, not grey), and the colour at
    a pixel is the texture's at the UV the hit interpolates."""
    from hemiface.scan._landmarks3d import _make_view, _Renderer

    scan = _published("james")[0]
    renderer = _Renderer(np.asarray(scan.vertices_mm), np.asarray(scan.faces), scan.texture)
    centre = scan.vertices_mm.mean(axis=0)
    view = _make_view([0, 0, -1.0], [0, 1.0, 0], centre, 250.0, 128, 2 * renderer.radius)
    textured, grey = renderer.render(view), renderer.render(view, textured=False)
    hit = grey.sum(axis=2) > 0
    assert hit.mean() > 0.3
    assert (grey[hit][:, 0] == grey[hit][:, 1]).all()
    chroma = textured[hit].astype(int).max(axis=1) - textured[hit].astype(int).min(axis=1)
    assert np.median(chroma) > 15  # skin, hair, shirt: coloured
    # One pixel by hand: back-project, find the UV by barycentric interpolation, sample the image.
    j, i = np.argwhere(hit)[len(np.argwhere(hit)) // 2][::-1]
    hits = renderer.query.cast(view.origins(np.array([[j + 0.5, i + 0.5]])), view.forward[None])
    fid, (u, w) = hits["face_ids"][0], hits["uv"][0]
    uv = (1 - u - w) * scan.texture.corner_uv[fid, 0] + u * scan.texture.corner_uv[fid, 1] + w * scan.texture.corner_uv[fid, 2]
    img = scan.texture.image
    expected = img[int((1 - uv[1]) * img.shape[0]), int(uv[0] * img.shape[1])].astype(float)
    shade = (grey[i, j, 0] - 40) / 200
    from hemiface.scan._landmarks3d import TEXTURE_AMBIENT

    assert np.allclose(textured[i, j], expected * (TEXTURE_AMBIENT + (1 - TEXTURE_AMBIENT) * shade), atol=12)


def test_untextured_copy_gives_the_same_landmarks():
    """The same james scan, in the same pose, with and without its texture: every landmark within 2 mm."""
    scan, published = _published("james")
    textured = _detect("james", 15, "mm")[4]
    moved, rot, shift = _moved(scan, 15, "mm")
    bare = detect_landmarks(scan_from_arrays(moved.vertices_mm, moved.faces, source_name="untextured"))
    diffs = {n: float(np.linalg.norm(textured.points_mm[n] - bare.points_mm[n])) for n in textured.points_mm}
    for n, d in diffs.items():
        log.info("james textured vs untextured: %-20s %.2f mm", n, d)
    assert set(diffs) == set(DETECTED_NAMES)
    for n, d in diffs.items():
        assert d < 2.0, (n, d)
    back = {n: (p - shift) @ rot for n, p in bare.points_mm.items()}
    for n, p in published.items():
        assert np.linalg.norm(back[n] - p) < TOLERANCE_MM, n


#: Geometric fallback: (frame angle error, deg; pronasale error, mm) it must stay within. humface is a face
#: alone; demoface_raw a head-and-shoulders scan whose nose is one of about 24 protrusions (ears,
#: shoulders, the crown, the cut-off neck) and the only nose-shaped one. Measured over seven poses:
#: humface 4-5 deg / 0.9-1.2 mm, demoface_raw 3-6 deg / 2.0-2.3 mm. (james, not tested here: 26 deg, its
#: faces' mean normal around the nose is tilted against its eye-subnasale frame; low confidence says so.)
FALLBACK_TOLERANCE = {"humface": (8.0, 2.5), "demoface_raw": (8.0, 3.5)}


@pytest.mark.parametrize("name", sorted(FALLBACK_TOLERANCE))
def test_geometric_fallback_when_no_view_yields_a_face(name, monkeypatch, tmp_path):
    """With the face detector and face mesh made blind, a real face in a random pose falls back to its
    shape: pronasale and a frame from the nose and the mirror plane, flagged low confidence in the result,
    landmarks.csv and frame.json."""
    from hemiface import _face_mesh
    from hemiface.scan import read_landmarks, write_landmarks
    from hemiface.scan._landmarks3d import FALLBACK_CONFIDENCE

    monkeypatch.setattr(_face_mesh, "detect_faces", lambda rgb: [])
    monkeypatch.setattr(_face_mesh, "face_mesh", lambda rgb: None)
    scan, published = _published(name)
    moved, rot, shift = _moved(scan, 12, "cm")
    found = detect_landmarks(moved)
    assert found.method == "geometric_fallback" and found.low_confidence and found.face_score == 0.0
    assert set(found.points_mm) == {"pronasale"} and found.confidence["pronasale"] == FALLBACK_CONFIDENCE
    reference = frame_from_landmarks(published, scan.vertices_mm, vertex_normals(scan.vertices_mm, scan.faces))
    angle = _angle_deg(found.frame.rotation, reference.rotation @ rot.T)
    error = float(np.linalg.norm((found.points_mm["pronasale"] - shift) @ rot - published["pronasale"]))
    log.info("geometric fallback on %s: frame off by %.1f deg, pronasale by %.2f mm", name, angle, error)
    assert angle < FALLBACK_TOLERANCE[name][0] and error < FALLBACK_TOLERANCE[name][1]
    out = write_landmarks(found, moved, tmp_path / "out")
    record = json.loads((out / "frame.json").read_text())
    assert record["low_confidence"] is True and record["method"] == "geometric_fallback"
    assert record["landmarks"]["pronasale"]["confidence"] == FALLBACK_CONFIDENCE
    text = (out / "landmarks.csv").read_text()
    assert "# LOW CONFIDENCE" in text
    points = read_landmarks(out / "landmarks.csv", units="cm")
    assert np.allclose(points["pronasale"], found.points_mm["pronasale"], atol=1e-3)


def test_geometric_fallback_when_faces_are_seen_but_not_placed(monkeypatch, caplog):
    """The detector sees the face but the face mesh places nothing: the same fallback, flagged low
    confidence although the detector's score is high, with the reason logged."""
    from hemiface import _face_mesh

    monkeypatch.setattr(_face_mesh, "face_mesh", lambda rgb: None)  # the model call behind mirror_consistent_mesh
    scan, published = _published("humface")
    moved, rot, shift = _moved(scan, 12, "mm")
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        found = detect_landmarks(moved)
    assert found.method == "geometric_fallback" and found.low_confidence and found.face_score >= 0.5
    assert "no view placed the eyes and nose" in caplog.text and "low confidence" in caplog.text
    assert np.linalg.norm((found.points_mm["pronasale"] - shift) @ rot - published["pronasale"]) < FALLBACK_TOLERANCE["humface"][1]


def test_analyze_with_orient_auto_uses_the_fallback_frame_and_says_so(monkeypatch, template_phantom, caplog):
    """When no render shows a face, `scan analyze --orient auto` still measures, on the fallback frame, and warns."""
    from hemiface import _face_mesh
    from hemiface.scan import analyze_scan, scan_from_arrays

    monkeypatch.setattr(_face_mesh, "detect_faces", lambda rgb: [])
    monkeypatch.setattr(_face_mesh, "face_mesh", lambda rgb: None)
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    moved = template_phantom.vertices_mm @ q.T + np.array([40.0, -25.0, 300.0])
    scan = scan_from_arrays(moved, template_phantom.faces, source_name="phantom_moved")
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        result = analyze_scan(scan, affected="auto", orient="auto")
    assert "geometric fallback" in result.frame_source and "low confidence" in result.frame_source
    assert any("geometric fallback" in r.getMessage() for r in caplog.records)
    assert result.affected_side == "left"
    assert result.defect_volume_mm3 == pytest.approx(template_phantom.true_volume_mm3, rel=0.05)


@pytest.mark.parametrize("pattern,shift", [("broad", (0.0, 0.0)), ("multizone", (0.0, -8.0)),
                                           ("multizone", (6.0, 0.0))])
def test_atrophic_face_is_found_by_the_face_mesh(pattern, shift):
    """A shallow face with an atrophy, lit flat by the search's headlight, can fall below the face
    detector's threshold from the front while its hollow back view scores high (the first two: the face
    is then looked for from the opposite side), or in every view (the third: a second search lights each
    view from its roll's up, checked against the shape's own frame). Until 2026-12-03 these meshmonk
    SIMPOP_03 carvings (and two more of the twelve placements of ``benchmarks/study_default_plane.py``)
    fell back to the geometric frame, pronasale only. Truth: the same detector on the scan before the carving (the carving moves no eye,
    nose or lip by more than its few mm of depth)."""
    from hemiface.scan._frame import find_pronasale

    scan = load_scan(DATA / "simpop_03.obj")
    v, f = np.asarray(scan.vertices_mm), np.asarray(scan.faces)
    natural = detect_landmarks(scan)
    tip = find_pronasale(v, f)
    ph = datasets.carve_atrophy(v, f, pattern=pattern, side="left",
                                landmarks={"pronasale": tip + np.array([shift[0], shift[1], 0.0])})
    r = detect_landmarks(scan_from_arrays(ph.vertices_mm, ph.faces, source_name="carved"))
    turn = np.degrees(np.arccos(np.clip((np.trace(r.frame.rotation.T @ natural.frame.rotation) - 1) / 2, -1, 1)))
    moved = {n: float(np.linalg.norm(r.points_mm[n] - natural.points_mm[n])) for n in natural.points_mm if n in r.points_mm}
    log.info("SIMPOP_03 %s at %s: %s, frame %.2f deg from the natural scan's, landmarks moved up to %.1f mm (%s)",
             pattern, shift, r.method, turn, max(moved.values()), max(moved, key=moved.get))
    assert r.method == "face_mesh" and not r.low_confidence
    assert set(moved) == set(natural.points_mm)
    assert turn < 3.0
    assert max(moved.values()) < 5.0
