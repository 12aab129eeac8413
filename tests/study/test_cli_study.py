"""`hemiface study init` and `hemiface study import` as a user meets them: messages and exit codes."""

import subprocess
import sys

import pytest
from study_helpers import EXAMPLE, EXAMPLE_COUNTS, csvs, no_database
from databases import database_state
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.study import open_study

runner = CliRunner()


def test_init_then_import_the_example(tmp_path):
    folder = tmp_path / "cohort"
    result = runner.invoke(app, ["study", "init", str(folder), "--from", "2020-01-01", "--to", "2023-12-31",
                                 "--technique", "fat_grafting", "--technique", "free_flap", "--technique", "adm"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"created study {folder} (settings: {folder / 'study.toml'})"
    result = runner.invoke(app, ["study", "import", str(folder), *map(str, csvs(EXAMPLE))])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines == ["imported 8 files: added 6 patients, 7 surgeries, 3 injections, 13 visits, 13 media, 3 complications, "
                     "13 faceq; 0 rows already in the study, unchanged"]
    result = runner.invoke(app, ["study", "import", str(folder), *map(str, csvs(EXAMPLE))])
    assert result.exit_code == 0
    assert result.output.strip() == "imported 8 files: added nothing; 58 rows already in the study, unchanged"
    with open_study(folder) as study:
        assert study.settings.techniques == ("fat_grafting", "free_flap", "adm")
        counts = study.counts()
        assert {k: counts[k] for k in EXAMPLE_COUNTS} == EXAMPLE_COUNTS


def test_init_over_an_existing_study_is_one_line_and_exit_1(tmp_path):
    assert runner.invoke(app, ["study", "init", str(tmp_path / "s")]).exit_code == 0
    result = runner.invoke(app, ["study", "init", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"hemiface: error: {tmp_path / 's'}: already holds a study (study.toml); open it instead of creating it"]


def test_bad_option_values(tmp_path):
    result = runner.invoke(app, ["study", "init", str(tmp_path / "s"), "--from", "1/1/2020"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = runner.invoke(app, ["study", "init", str(tmp_path / "s"), "--technique", "Fat Grafting"])
    assert result.exit_code == 1 and "snake_case" in result.output
    assert not (tmp_path / "s").exists()


def test_a_bad_import_lists_every_problem_and_exits_1(tmp_path, example):
    runner.invoke(app, ["study", "init", str(tmp_path / "s")])
    before = database_state(tmp_path / "s")
    text = (example / "patients.csv").read_text()
    (example / "patients.csv").write_text(text.replace("P001,female,1994,,left", "P001,female,1994,,lft")
                                          .replace("P002,male,1988", "P002,male,2099"))
    result = runner.invoke(app, ["study", "import", str(tmp_path / "s"), *map(str, csvs(example))])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "hemiface: error: 2 problems found; nothing was imported"
    assert lines[1:] == [
        "  patients.csv, row 2, column affected_side: unknown side 'lft'; use left or right",
        "  patients.csv, row 3, column birth_year: 2099 is outside the plausible range 1900 to "
        f"{__import__('datetime').date.today().year}",
    ]
    assert database_state(tmp_path / "s") == before


@no_database
def test_import_into_something_that_is_not_a_study(tmp_path):
    result = runner.invoke(app, ["study", "import", str(tmp_path), str(EXAMPLE / "patients.csv")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"hemiface: error: {tmp_path / 'study.toml'}: no study settings here; create a study with `hemiface study init`"]


@pytest.mark.sqlite_only("the installed command, in a subprocess, which the PostgreSQL case's routing of new studies "
                         "does not reach; the same commands run on both databases in-process")
def test_the_installed_command(tmp_path):
    hemiface = [sys.executable, "-m", "hemiface.cli"]
    done = subprocess.run([*hemiface, "study", "init", str(tmp_path / "s")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*hemiface, "study", "import", str(tmp_path / "s"), str(EXAMPLE / "visits.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert "visits.csv, row 2, column patient_id: unknown patient P001" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_endpoints_and_correct_from_the_command_line(tmp_path):
    """The example study end to end: run (twice: nothing redone), endpoints as XLSX, a correction, bad input."""
    import json

    import pandas as pd

    folder = tmp_path / "cohort"
    assert runner.invoke(app, ["study", "init", str(folder), "--from", "2020-01-01", "--to", "2023-12-31"]).exit_code == 0
    assert runner.invoke(app, ["study", "import", str(folder), *map(str, csvs(EXAMPLE))]).exit_code == 0
    result = runner.invoke(app, ["study", "run", str(folder)], env={"HEMIFACE_PROGRESS": "0"})
    assert result.exit_code == 0, result.output
    # the example's photos are copies of one file: analysed once
    assert result.stdout.splitlines()[0] == ("study run: 9 analyses: 0 already done, 3 done now, 0 failed, "
                                             "6 duplicate files analysed once")
    result = runner.invoke(app, ["study", "run", str(folder)], env={"HEMIFACE_PROGRESS": "0"})
    assert result.stdout.splitlines()[0] == "study run: 9 analyses: 9 already done, 0 done now, 0 failed"

    out = tmp_path / "endpoints.xlsx"
    result = runner.invoke(app, ["study", "endpoints", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 eligible patients: 2D change for 4, 3D change for 0" in result.output
    assert "P002: 3D missing: no scan at the follow-up visit" in result.output
    table = pd.read_excel(out, sheet_name="endpoints")
    assert table["patient_id"].tolist() == ["P001", "P002", "P004", "R002"]
    assert runner.invoke(app, ["study", "endpoints", str(folder), "--out", str(out)]).exit_code == 1

    landmarks = next((folder / "results" / "photo_analyze").glob("*/landmarks.json"))
    edited = json.loads(landmarks.read_text())
    edited["points"]["cheilion_left"][0] += 1.0
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(edited))
    result = runner.invoke(app, ["study", "correct", str(folder), "P001", "2021-08-20", str(fixed),
                                 "--reason", "mouth corner", "--user", "rc"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("P001 2021-08-20: symmetry ratio ")
    result = runner.invoke(app, ["study", "correct", str(folder), "P001", "2021-08-21", str(fixed), "--reason", "x"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "hemiface: error: patient P001 has no visit on 2021-08-21"
    result = runner.invoke(app, ["study", "endpoints", str(folder), "--out", str(tmp_path / "e.txt")])
    assert result.exit_code == 1 and "written as .csv or .xlsx" in result.output
