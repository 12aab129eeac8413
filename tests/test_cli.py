"""The command line as a user meets it: outputs, messages and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from hemiface import __version__, datasets
from hemiface.cli import app
from hemiface.scan import OUTPUT_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scans") / "patient_phantom.ply"
    datasets.make_phantom("template", side="right", volume_mm3=4000.0).save(path)
    return path


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_analyze_writes_all_outputs(phantom_file, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "auto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "affected side right (chosen automatically" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)
    m = json.loads((out / "measurements.json").read_text())
    truth = json.loads(Path(str(phantom_file) + ".truth.json").read_text())
    assert m["defect_volume_mm3"] == pytest.approx(truth["true_volume_mm3"], rel=0.03)
    for key in ("defect_volume_mm3", "max_depth_mm", "area_deeper_than_threshold_mm2", "threshold_mm",
                "defect_area_mm2", "volumetric_discrepancy_mm3", "volumetric_discrepancy_percent",
                "affected_side", "plane_fit_rms_mm", "defects"):
        assert key in m
    assert set(m["symmetry_plane"]) == {"normal", "point"}
    prov = m["provenance"]
    import hashlib

    assert prov["inputs"]["scan"]["sha256"] == hashlib.sha256(phantom_file.read_bytes()).hexdigest()
    assert prov["inputs"]["scan"]["file"] == "patient_phantom.ply"  # a name, never the folder
    assert str(phantom_file.parent) not in (out / "measurements.json").read_text()
    assert prov["hemiface_version"] == __version__ and prov["parameters"]["threshold_mm"] == 4.0
    # defect.stl: a closed solid in mm whose volume matches the reported defect volume.
    solid = trimesh.load(out / "defect.stl")
    assert solid.is_watertight and solid.volume == pytest.approx(m["defect_volume_mm3"], rel=0.01)
    # depth_map.ply carries the per-vertex (smoothed) depth; the maximum depth is measured on the unsmoothed
    # depth (scan/_peak.py), never below the map's deepest point, and the round dent's peak is not narrow.
    ply = trimesh.load(out / "depth_map.ply", process=False)
    depth = np.asarray(ply.metadata["_ply_raw"]["vertex"]["data"]["depth_mm"])
    assert depth.max() - 1e-6 <= m["max_depth_mm"] < depth.max() + 0.2


def test_png_has_no_metadata(phantom_file, tmp_path):
    from PIL import Image

    runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "right", "--out", str(tmp_path)])
    image = Image.open(tmp_path / "depth_map.png")
    assert not image.getexif() and "Software" not in image.info


def test_refuses_to_overwrite_without_flag(phantom_file, tmp_path):
    args = ["scan", "analyze", str(phantom_file), "--affected", "auto", "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    before = (tmp_path / "measurements.json").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (tmp_path / "measurements.json").stat().st_mtime_ns == before
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0


def test_bad_file_one_line_exit_1_nothing_written(tmp_path):
    bad = tmp_path / "scan.stl"
    bad.write_bytes(b"solid nothing\nendsolid\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "analyze", str(bad), "--affected", "left", "--out", str(out)])
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "scan.stl" in lines[0] and lines[0].startswith("hemiface: error:")
    assert not out.exists() or not any(out.iterdir())


def test_wrong_units_message(phantom_file, tmp_path):
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "left", "--units", "m",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "pass --units mm" in result.output


def test_usage_error_exit_2(phantom_file):
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "middle"])
    assert result.exit_code == 2


def test_failure_midway_leaves_no_partial_outputs(phantom_file, tmp_path, monkeypatch):
    import hemiface.scan._outputs as outputs

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs, "save_depth_figure", broken)
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "auto", "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()  # no file of the set, no staging folder, and the folder made for them removed again


def test_landmarks_option(tmp_path):
    from helpers import move, random_rigid

    phantom = datasets.make_phantom("template", side="left", volume_mm3=5000.0)
    rot, trans = random_rigid(7)
    scan = tmp_path / "moved.ply"
    trimesh.Trimesh(move(phantom.vertices_mm, rot, trans), phantom.faces, process=False).export(scan)
    from hemiface.scan import read_landmarks

    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    csv = tmp_path / "moved_landmarks.csv"
    csv.write_text("name,x,y,z\n" + "".join(f"{k},{p[0]},{p[1]},{p[2]}\n" for k, p in
                                              ((k, move(v[None], rot, trans)[0]) for k, v in lm.items())))
    result = runner.invoke(app, ["scan", "analyze", str(scan), "--affected", "auto", "--landmarks", str(csv),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "o" / "measurements.json").read_text())
    assert m["affected_side"] == "left" and m["frame_source"] == "landmarks"
    assert m["defect_volume_mm3"] == pytest.approx(phantom.true_volume_mm3, rel=0.03)
    assert m["provenance"]["inputs"]["landmarks"]["file"] == "moved_landmarks.csv"


def test_phantom_command(tmp_path):
    out = tmp_path / "ph.ply"
    result = runner.invoke(app, ["datasets", "phantom", str(out), "--volume-mm3", "3000"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "ph.ply.truth.json").read_text())
    assert truth["true_volume_mm3"] == pytest.approx(3000.0, rel=1e-3)


def test_analyze_with_a_plane_file_and_a_stable_mask(phantom_file, tmp_path):
    plane = tmp_path / "plane.json"
    plane.write_text(json.dumps({"normal": [1, 0, 0], "point": [0, 0, 0]}))
    out = tmp_path / "o"
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "right", "--orient", "canonical",
                                 "--plane", str(plane), "--out", str(out)])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "measurements.json").read_text())
    truth = json.loads(Path(str(phantom_file) + ".truth.json").read_text())
    assert m["plane_method"] == "file:plane.json" and m["plane_uncertainty_deg"] == 0.0
    assert m["provenance"]["inputs"]["plane"]["file"] == "plane.json"
    assert m["defect_volume_mm3"] == pytest.approx(truth["true_volume_mm3"], rel=0.03)
    assert m["defect_volume_uncertainty_mm3"] > 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"normal": [0, 0, 0], "point": [0, 0, 0]}))
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "right", "--orient", "canonical",
                                 "--plane", str(bad), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1
    assert "normal must be a finite non-zero vector" in result.output
    assert "Traceback" not in result.output


def test_phantom_command_patterns_and_follow_up(tmp_path):
    out = tmp_path / "mz.ply"
    result = runner.invoke(app, ["datasets", "phantom", str(out), "--pattern", "multizone", "--restored", "0.6"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "mz.ply.truth.json").read_text())
    assert truth["pattern"] == "multizone" and truth["restored_fraction"] == 0.6
    assert truth["baseline_volume_mm3"] == pytest.approx(15000.0, rel=1e-3)
    assert truth["true_gain_mm3"] + truth["true_volume_mm3"] == pytest.approx(truth["baseline_volume_mm3"])
    assert {z["name"] for z in truth["zones"]} >= {"malar", "buccal", "chin", "temple", "forehead_groove"}
    bad = runner.invoke(app, ["datasets", "phantom", str(tmp_path / "x.ply"), "--pattern", "diagonal"])
    assert bad.exit_code == 2


def test_installed_entry_point_runs():
    exe = Path(sys.executable).parent / "hemiface"
    if not exe.exists():
        pytest.skip("hemiface is not installed as a console script in this environment")
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and __version__ in done.stdout


def test_region_options_bound_the_measured_area(phantom_file, tmp_path):
    out = tmp_path / "narrow"
    result = runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "right", "--out", str(out),
                                 "--region-width-mm", "90", "--region-above-mm", "40"])
    assert result.exit_code == 0, result.output
    m = json.loads((out / "measurements.json").read_text())
    assert m["provenance"]["parameters"]["region"]["width_mm"] == 90.0
    ply = trimesh.load(out / "depth_map.ply", process=False)
    normal, point = np.array(m["symmetry_plane"]["normal"]), np.array(m["symmetry_plane"]["point"])
    lateral = (np.asarray(ply.vertices) - point) @ normal
    assert np.abs(lateral).max() <= 45.0 + 1e-3
    wide = json.loads(runner.invoke(app, ["scan", "analyze", str(phantom_file), "--affected", "right", "--out",
                                          str(tmp_path / "wide")]).output and (tmp_path / "wide" / "measurements.json").read_text())
    assert m["region_area_mm2"] < 0.8 * wide["region_area_mm2"]


def test_every_written_default_shows_in_the_help():
    """Options whose help writes its default ("\\[default: ./<scan name>_hemiface]") show it: unescaped, Rich
    took "[default: ...]" for a markup tag and dropped it ("Output folder ." was all a user saw)."""
    import typer.main

    def commands(cmd, path):
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                yield from commands(sub, path + [name])
        else:
            yield path, cmd

    checked = 0
    for path, cmd in commands(typer.main.get_command(app), []):
        written = [p for p in cmd.params if "[default: " in (getattr(p, "help", None) or "")]
        if not written:
            continue
        result = CliRunner().invoke(app, path + ["--help"], env={"COLUMNS": "200"}, terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        for p in written:
            first_word = p.help.split("[default: ", 1)[1].split()[0].lstrip("\\")
            assert f"[default: {first_word}" in result.output, (path, p.name, result.output)
            checked += 1
    assert checked >= 20
