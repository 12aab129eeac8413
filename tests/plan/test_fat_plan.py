"""The fat-graft plan's arithmetic on hand-computed cases, its inputs, and both plan commands' bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hemiface import HemifaceError
from hemiface.cli import app
from hemiface.plan import FAT_COLUMNS, FAT_OUTPUT_NAMES, fat_plan

runner = CliRunner()


def _analysis(folder, **extra):
    """A minimal analysis folder: the measurements a plan reads (no zones unless given)."""
    folder.mkdir(parents=True, exist_ok=True)
    m = {"affected_side": "left", "floor_mm": 1.0, "threshold_mm": 4.0, "defect_volume_mm3": 4200.0,
         "symmetry_plane": {"normal": [1, 0, 0], "point": [0, 0, 0]}, **extra}
    (folder / "measurements.json").write_text(json.dumps(m))
    return folder


def test_zones_hand_computed(tmp_path):
    # malar 3000 mm3 x 1.25 / 0.4 = 9375 mm3; temple 1000 -> 3125; total 12.5 ml; at most 5 ml a session -> 3 sessions.
    folder = _analysis(tmp_path / "a", zone_malar_defect_volume_mm3=3000.0, zone_temple_defect_volume_mm3=1000.0,
                       zone_malar_max_depth_mm=5.0, zone_count=2)
    plan = fat_plan(folder, retention=0.4, overcorrection=0.25, max_per_session_ml=5)
    by = {z.zone: z for z in plan.zones}
    assert set(by) == {"malar", "temple"} and plan.zones_source == "zones"
    assert by["malar"].inject_mm3 == pytest.approx(9375.0) and by["malar"].inject_ml == pytest.approx(9.375)
    assert by["temple"].inject_mm3 == pytest.approx(3125.0)
    assert plan.total_inject_mm3 == pytest.approx(12500.0) and plan.sessions == 3
    assert by["malar"].per_session_ml == pytest.approx(3.125) and by["temple"].per_session_ml == pytest.approx(3125 / 3000)
    assert list(plan.table().columns) == list(FAT_COLUMNS)
    # Exactly at the limit: 12.5 ml at 12.5 ml per session is one session, not two.
    assert fat_plan(folder, retention=0.4, overcorrection=0.25, max_per_session_ml=12.5).sessions == 1


def test_without_zones_the_hemiface_is_one_zone(tmp_path):
    folder = _analysis(tmp_path / "b")
    plan = fat_plan(folder)  # defaults: retention 0.5, overcorrection 0.2, no limit
    (zone,) = plan.zones
    assert zone.zone == "hemiface" and zone.deficit_mm3 == 4200.0
    assert zone.inject_mm3 == pytest.approx(4200.0 * 1.2 / 0.5) and plan.sessions == 1
    assert "no zone volumes" in plan.zones_source
    out = plan.save(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == sorted(FAT_OUTPUT_NAMES)
    d = json.loads((out / "fat_plan.json").read_text())
    assert "no zone volumes" in d["zones_source"] and d["total_inject_ml"] == pytest.approx(10.08)
    assert d["provenance"]["inputs"]["measurements"]["sha256"]


def test_zone_without_deficit_needs_nothing(tmp_path):
    folder = _analysis(tmp_path / "c", zone_chin_defect_volume_mm3=0.0, zone_malar_defect_volume_mm3=500.0)
    plan = fat_plan(folder, retention=1.0, overcorrection=0.0)
    by = {z.zone: z for z in plan.zones}
    assert by["chin"].inject_mm3 == 0.0 and by["chin"].sessions == 0
    assert by["malar"].inject_mm3 == pytest.approx(500.0) and by["malar"].sessions == 1


@pytest.mark.parametrize("kwargs, fragment", [
    ({"retention": 0}, "retention must be in (0, 1]"),
    ({"retention": 1.5}, "retention must be in (0, 1]"),
    ({"retention": float("nan")}, "retention must be in (0, 1]"),
    ({"overcorrection": -0.1}, "overcorrection must be >= 0"),
    ({"max_per_session_ml": 0}, "max_per_session_ml must be > 0 ml"),
])
def test_bad_parameters_say_which(tmp_path, kwargs, fragment):
    with pytest.raises(HemifaceError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        fat_plan(_analysis(tmp_path / "d"), **kwargs)


@pytest.mark.parametrize("command", [["plan", "adm", "--sheet-thickness-mm", "1"], ["plan", "fat"]])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, command):
    out = tmp_path / "out"
    missing = runner.invoke(app, [*command, str(tmp_path / "nowhere"), "--out", str(out)])
    assert missing.exit_code == 1 and missing.output.strip() == f"hemiface: error: {tmp_path / 'nowhere'}: no such folder"
    (tmp_path / "photos").mkdir()
    wrong = runner.invoke(app, [*command, str(tmp_path / "photos"), "--out", str(out)])
    assert wrong.exit_code == 1 and len(wrong.output.strip().splitlines()) == 1
    assert "not a `scan analyze` output folder (no measurements.json" in wrong.output
    assert not out.exists()


def test_cli_adm_refuses_an_analysis_without_a_depth_map(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", "adm", str(_analysis(tmp_path / "e")), "--sheet-thickness-mm", "1",
                                 "--out", str(out)])
    assert result.exit_code == 1 and "no depth_map.ply" in result.output and not out.exists()
    usage = runner.invoke(app, ["plan", "adm", str(tmp_path / "e"), "--sheet-thickness-mm", "1",
                                "--sheet-size-mm", "50by60"])
    assert usage.exit_code == 2


def test_cli_fat(tmp_path):
    folder = _analysis(tmp_path / "f", zone_malar_defect_volume_mm3=3000.0)
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", "fat", str(folder), "--retention", "0.4", "--overcorrection", "0.25",
                                 "--max-per-session-ml", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "inject    9.38 ml (9375 mm3)" in result.output and "in 2 session(s)" in result.output
    bad = runner.invoke(app, ["plan", "fat", str(folder), "--retention", "0", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1 and "retention must be in (0, 1]" in bad.output and not (tmp_path / "o2").exists()
