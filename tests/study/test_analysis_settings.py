"""One source of analysis settings: ``[analysis.*]`` in ``study.toml``, checked against the functions.

The settings a study's analyses run with must be the ones passed to the analysis
functions (as the functions' own provenance records them), the ones the endpoint
table, the report and ``study correct`` look results up with, and the ones quoted
in the methods text. A typo is an error naming the key and the allowed ones.
"""

import datetime as dt
import inspect
import json

import pytest
from study_helpers import no_database
from sqlalchemy import select

from hemiface.photo import analyze_photo
from hemiface.scan import analyze_scan, compare_scans
from hemiface.study import (
    STUDY_DEFAULTS,
    StudyError,
    StudySettings,
    analysis_parameters,
    correct_landmarks,
    endpoint_table,
    open_study,
    read_settings,
    run_study,
)
from hemiface.report._study import methods_text
from hemiface.study._reporting import report_settings
from hemiface.study.models import AnalysisResult
from test_run import make_study, media  # noqa: F401 - the module-scoped media fixture

OVERRIDES = """
[analysis.photo_analyze]
midline = "fitted"
iris_mm = 10.0

[analysis.scan_analyze]
smoothing_mm = 0.75
threshold_mm = 3.0

[analysis.scan_analyze.region]
width_mm = 135.0

[analysis.scan_compare]
smoothing_mm = 0.75
"""


def _write_settings(folder, text):
    (folder / "study.toml").write_text((folder / "study.toml").read_text() + text)


def _settings_file(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(StudySettings().to_toml() + text)
    return path


@no_database
def test_defaults_are_the_functions_own():
    params = analysis_parameters()
    for analysis, func in (("photo_analyze", analyze_photo), ("scan_analyze", analyze_scan),
                           ("scan_compare", compare_scans)):
        sig = inspect.signature(func).parameters
        for key, value in params[analysis].items():
            expected = STUDY_DEFAULTS[analysis].get(key, sig[key].default)
            if key == "region":
                from hemiface.scan import FaceRegion

                expected = FaceRegion().to_dict()
            assert value == expected, (analysis, key)
        # every keyword setting of the function is there: nothing is silently fixed by the study
        assert "smoothing_mm" in params.get(analysis, {}) or analysis == "photo_analyze"
    assert params["scan_analyze"]["orient"] == "auto" != inspect.signature(analyze_scan).parameters["orient"].default
    assert "affected" not in params["scan_analyze"] and "landmarks" not in params["photo_analyze"]


@no_database
@pytest.mark.parametrize("text, message", [
    ("[analysis.scan_analyze]\nsmoothing = 1.0\n", "unknown setting 'smoothing' in [analysis.scan_analyze]"),
    ("[analysis.scan_analyze]\nthreshold_mm = \"4\"\n", "threshold_mm must be a number"),
    ("[analysis.scan_analyze]\norient = \"sideways\"\n", "orient must be one of 'canonical', 'auto'"),
    ("[analysis.scan_analyze]\nlandmarks = \"a.csv\"\n", "given per patient by the study"),
    ("[analysis.scan_analyze.region]\nwidht_mm = 120.0\n", "unknown key 'widht_mm' in [analysis.scan_analyze.region]"),
    ("[analysis.scan_analyze.region]\nwidth_mm = -5.0\n", "width_mm must be > 0"),
    ("[analysis.photo_scan]\nx = 1\n", "unknown analysis [analysis.photo_scan]"),
    ("[analysis]\nthreshold_mm = 4.0\n", "unknown analysis [analysis.threshold_mm]; known: photo_analyze"),
])
def test_a_mistyped_setting_is_refused_naming_it(tmp_path, text, message):
    path = _settings_file(tmp_path, text)
    with pytest.raises(StudyError) as err:
        read_settings(path)
    assert message in str(err.value) and str(path) in str(err.value)
    if "unknown setting" in message:
        assert "allowed:" in str(err.value) and "smoothing_mm" in str(err.value)


@no_database
def test_settings_round_trip_through_study_toml(tmp_path):
    path = _settings_file(tmp_path, OVERRIDES)
    settings = read_settings(path)
    assert settings.analysis["scan_analyze"] == {"smoothing_mm": 0.75, "threshold_mm": 3.0,
                                                 "region": {"width_mm": 135.0}}
    again = tmp_path / "again.toml"
    again.write_text(settings.to_toml())
    assert read_settings(again) == settings
    params = settings.analysis_parameters()
    assert params["scan_analyze"]["region"]["width_mm"] == 135.0
    assert params["scan_analyze"]["region"]["above_mm"] == analysis_parameters()["scan_analyze"]["region"]["above_mm"]
    assert params["photo_analyze"]["midline"] == "fitted" and params["scan_compare"]["threshold_mm"] == 4.0


@pytest.fixture(scope="module")
def overridden(tmp_path_factory, media, backend):  # noqa: F811 - backend: made again on each database
    study = make_study(tmp_path_factory.mktemp("settings"), media)
    folder = study.path
    study.close()
    _write_settings(folder, OVERRIDES)
    study = open_study(folder)
    summary = run_study(study, jobs=1)
    yield study, summary
    study.close()


def _results(study):
    with study.session() as session:
        return [(r.analysis, r.status, json.loads(r.provenance_json), json.loads(r.result_json or "null"))
                for r in session.scalars(select(AnalysisResult))]


def test_every_setting_reaches_the_analysis_function(overridden):
    study, summary = overridden
    results = [r for r in _results(study) if r[1] == "ok"]
    kinds = {a for a, *_ in results}
    assert kinds == {"photo_analyze", "scan_analyze", "scan_compare"}, summary
    for analysis, _status, prov, values in results:
        used = prov["parameters"]  # recorded by the analysis function itself, from what it was given
        if analysis == "photo_analyze":
            assert (used["midline"], used["iris_mm"]) == ("fitted", 10.0)
        else:
            assert used["smoothing_mm"] == 0.75
        if analysis == "scan_analyze":
            assert used["threshold_mm"] == values["threshold_mm"] == 3.0
            assert used["region"]["width_mm"] == 135.0
        recorded = {k: v for k, v in prov["study_run"]["parameters"].items() if k != "affected"}
        assert recorded == study.settings.analysis_parameters()[analysis]


def test_an_override_changes_the_measured_result(overridden, media):  # noqa: F811
    """iris_mm = 10 instead of the default 11.7 scales every length by 10 / 11.7 (measured against a
    direct default analysis of the same photo); midline = fitted makes the fitted ratio the primary one."""
    study, _summary = overridden
    photo = media / "p01_pre.png"
    sha = __import__("hemiface")._provenance.sha256_file(photo)
    (values,) = [v for a, st, prov, v in _results(study)
                 if a == "photo_analyze" and st == "ok" and prov["inputs"]["photo"]["sha256"] == sha]
    default = analyze_photo(photo, affected="left").to_dict()
    assert values["face_width_mm"] == pytest.approx(default["face_width_mm"] * 10.0 / 11.7, rel=1e-9)
    assert values["face_width_px"] == pytest.approx(default["face_width_px"], rel=1e-9)
    assert values["symmetry_ratio_percent"] == pytest.approx(default["symmetry_ratio_percent_fitted_midline"])


def test_endpoints_report_and_correct_find_the_results_of_those_settings(overridden, tmp_path):
    study, _summary = overridden
    table = endpoint_table(study).set_index("patient_id")
    p01 = table.loc["P01"]
    assert p01.missing_2d_reason is None and p01.missing_3d_reason is None
    assert p01.symmetry_ratio_change == p01.symmetry_ratio_change  # not NaN
    assert table.attrs["parameters"]["scan_analyze"]["smoothing_mm"] == 0.75
    assert table.attrs["parameters"]["photo_analyze"]["midline"] == "fitted"
    text = " ".join(methods_text(report_settings(study, table), table.attrs["flow"]).split())
    assert "deeper than 3 mm" in text and "a line fitted through the midline landmarks" in text
    assert "iris diameter of 10 mm" in text and "(not recorded)" not in text
    # study correct looks the earlier result up with the same settings: "before" is known
    results = study.path / "results" / "photo_analyze"
    landmarks = next(results.glob("*/landmarks.json"))
    done = correct_landmarks(study, "P01", dt.date(2021, 9, 15), landmarks, reason="same points", user="tester")
    assert done["status"] == "ok" and done["symmetry_ratio_before_percent"] is not None


def test_changing_a_setting_reruns_exactly_what_it_belongs_to(overridden):
    study, _summary = overridden
    folder = study.path
    assert run_study(study, jobs=1).ran == 0
    text = (folder / "study.toml").read_text().replace("threshold_mm = 3.0", "threshold_mm = 3.5")
    (folder / "study.toml").write_text(text)
    with open_study(folder) as again:
        summary = run_study(again, jobs=1)
        ok = [r for r in _results(again) if r[0] == "scan_analyze" and r[1] == "ok"]
    assert summary.succeeded == 2 and summary.failed == 0  # the two scan analyses; photos and the comparison kept
    assert sorted(r[2]["parameters"]["threshold_mm"] for r in ok) == [3.0, 3.0, 3.5, 3.5]


def test_cli_lists_the_settings_and_refuses_a_typo_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from hemiface.cli import app

    runner = CliRunner()
    folder = tmp_path / "cli_study"
    assert runner.invoke(app, ["study", "init", str(folder)]).exit_code == 0
    _write_settings(folder, "\n[analysis.scan_analyze]\nthreshold_mm = 3.0\n")
    result = runner.invoke(app, ["study", "settings", str(folder)])
    assert result.exit_code == 0, result.output
    lines = {tuple(line.split()[:2]): line for line in result.output.splitlines()}
    assert lines[("scan_analyze", "threshold_mm")].endswith("3.0  (study.toml)")
    assert lines[("scan_analyze", "orient")].endswith('"auto"  (study default)')
    assert lines[("photo_analyze", "iris_mm")].endswith(f"{analysis_parameters()['photo_analyze']['iris_mm']}  (default)")
    _write_settings(folder, "smothing_mm = 1.0\n")
    result = runner.invoke(app, ["study", "run", str(folder)])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"hemiface: error: {folder / 'study.toml'}: unknown setting 'smothing_mm' in "
                           "[analysis.scan_analyze]; allowed: ")
    assert "smoothing_mm" in line.split("allowed: ")[1] and "threshold_mm" in line


@no_database
def test_cli_option_defaults_are_the_library_defaults():
    """The command line's defaults are read from the functions' signatures (one home)."""
    import click
    import typer

    from hemiface.cli import app

    command = typer.main.get_command(app)
    ctx = click.Context(command)
    scan = command.get_command(ctx, "scan")
    analyze = {p.name: p.default for p in scan.get_command(ctx, "analyze").params}
    sig = inspect.signature(analyze_scan).parameters
    assert analyze["threshold_mm"] == sig["threshold_mm"].default and analyze["floor_mm"] == sig["floor_mm"].default
    from hemiface.scan import FaceRegion

    assert analyze["region_width_mm"] == FaceRegion().width_mm
    photo = {p.name: p.default for p in command.get_command(ctx, "photo").get_command(ctx, "analyze").params}
    assert photo["iris_mm"] == inspect.signature(analyze_photo).parameters["iris_mm"].default
