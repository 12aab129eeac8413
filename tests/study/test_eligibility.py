"""The visit rules applied to a whole study: who is eligible, and why the others are not."""

import datetime as dt

import pandas as pd
import pytest
from study_helpers import EXAMPLE, csvs, no_database
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.study import (
    ELIGIBILITY_COLUMNS,
    EXCLUSION_REASONS,
    FLOW_KEYS,
    StudyError,
    StudySettings,
    eligibility,
    flow_counts,
    init_study,
    patient_eligibility,
)

D = dt.date


@no_database
def test_frozen_column_names():
    assert ELIGIBILITY_COLUMNS == (
        "patient_id", "technique", "initial_surgery_date", "in_inclusion_window", "baseline_date", "followup_date",
        "followup_interval_days", "eligible", "exclusion_reason")
    assert FLOW_KEYS == ("screened", "with_initial_surgery", "in_inclusion_window", "with_baseline", "with_followup", "eligible")
    assert set(EXCLUSION_REASONS) == {"no_initial_surgery", "outside_inclusion_window", "no_baseline_visit", "no_followup_visit"}


def test_example_study(tmp_path):
    # Hand-derived from examples/study_minimal: P003's preop visit is 164 days before surgery; R001's only
    # follow-up (2021-11-15) is before 1 June + 6 months = 1 December; P004's 2023-07-10 visit is short of 16 July.
    with init_study(tmp_path / "s", inclusion_from=D(2020, 1, 1), inclusion_to=D(2023, 12, 31)) as study:
        study.import_files(csvs(EXAMPLE))
        table = eligibility(study)
    assert tuple(table.columns) == ELIGIBILITY_COLUMNS
    rows = {r["patient_id"]: r for r in table.to_dict("records")}
    assert list(rows) == ["P001", "P002", "P003", "P004", "R001", "R002"]
    expected = {
        "P001": ("fat_grafting", D(2021, 2, 15), D(2021, 1, 10), D(2021, 8, 20), 186, True, None),
        "P002": ("free_flap", D(2020, 6, 3), D(2020, 5, 20), D(2020, 12, 10), 190, True, None),
        "P003": ("fat_grafting", D(2022, 9, 12), None, D(2023, 3, 20), 189, False, "no_baseline_visit"),
        "P004": ("adm", D(2023, 1, 16), D(2023, 1, 16), D(2023, 9, 1), 228, True, None),
        "R001": ("fat_grafting", D(2021, 6, 1), D(2021, 5, 3), None, None, False, "no_followup_visit"),
        "R002": ("free_flap", D(2022, 2, 21), D(2022, 2, 7), D(2022, 8, 29), 189, True, None),
    }
    for pid, (technique, surgery, baseline, followup, days, ok, reason) in expected.items():
        r = rows[pid]
        interval = None if pd.isna(r["followup_interval_days"]) else int(r["followup_interval_days"])
        got = (r["technique"], r["initial_surgery_date"], r["baseline_date"], r["followup_date"], interval,
               bool(r["eligible"]), r["exclusion_reason"])
        assert got == (technique, surgery, baseline, followup, days, ok, reason), pid
    assert flow_counts(table) == {"screened": 6, "with_initial_surgery": 6, "in_inclusion_window": 6,
                                  "with_baseline": 5, "with_followup": 4, "eligible": 4}
    assert table.attrs["rules"]["inclusion_from"] == "2020-01-01" and table.attrs["rules"]["followup_months"] == 6


def test_rules_from_settings_change_the_outcome(tmp_path):
    with init_study(tmp_path / "s", inclusion_to=D(2022, 12, 31), baseline_window_days=200, followup_months=5) as study:
        study.import_files(csvs(EXAMPLE))
        table = eligibility(study).set_index("patient_id")
    assert table.loc["P004", "exclusion_reason"] == "outside_inclusion_window"  # surgery 2023-01-16
    assert table.loc["P003", "baseline_date"] == D(2022, 4, 1) and table.loc["P003", "eligible"]  # 164 <= 200 days
    assert table.loc["R001", "followup_date"] == D(2021, 11, 15) and table.loc["R001", "eligible"]  # >= 1 November


def rules(**kw):
    return StudySettings(**kw)


@no_database
def test_no_initial_surgery_is_reported():
    e = patient_eligibility(rules(), "X1", [(D(2021, 1, 1), "fat_grafting", False)], [(D(2020, 12, 1), "preoperative")])
    assert (e.eligible, e.exclusion_reason, e.initial_surgery_date) == (False, "no_initial_surgery", None)


@no_database
def test_secondary_surgeries_do_not_move_the_windows():
    surgeries = [(D(2021, 1, 10), "free_flap", True), (D(2021, 6, 1), "fat_grafting", False)]
    visits = [(D(2021, 1, 5), "preoperative"), (D(2021, 5, 30), "preoperative"), (D(2021, 7, 10), "follow-up")]
    e = patient_eligibility(rules(), "X1", surgeries, visits)
    assert (e.technique, e.baseline_date, e.followup_date, e.followup_interval_days) == (
        "free_flap", D(2021, 1, 5), D(2021, 7, 10), 181)


@no_database
def test_visit_kinds_are_respected():
    surgery = [(D(2021, 3, 1), "adm", True)]
    # a follow-up-kind visit before surgery is no baseline; a preoperative-kind visit 7 months later is no follow-up
    e = patient_eligibility(rules(), "X1", surgery, [(D(2021, 2, 20), "follow-up"), (D(2021, 10, 1), "preoperative")])
    assert (e.baseline_date, e.followup_date, e.exclusion_reason) == (None, None, "no_baseline_visit")


@no_database
def test_window_ends_are_inclusive():
    visits = [(D(2019, 12, 1), "preoperative"), (D(2020, 7, 1), "follow-up")]
    window = rules(inclusion_from=D(2020, 1, 1), inclusion_to=D(2023, 12, 31))
    assert patient_eligibility(window, "X", [(D(2020, 1, 1), "adm", True)], visits).in_inclusion_window
    assert not patient_eligibility(window, "X", [(D(2019, 12, 31), "adm", True)], visits).in_inclusion_window
    late = patient_eligibility(window, "X", [(D(2024, 1, 1), "adm", True)], visits)
    assert (late.in_inclusion_window, late.exclusion_reason) == (False, "outside_inclusion_window")


@no_database
def test_two_initial_surgeries_in_a_hand_edited_database_are_refused():
    with pytest.raises(StudyError, match="2 initial surgeries"):
        patient_eligibility(rules(), "X", [(D(2021, 1, 1), "adm", True), (D(2021, 2, 1), "adm", True)], [])


def test_an_empty_study(tmp_path):
    with init_study(tmp_path / "s") as study:
        table = eligibility(study)
    assert tuple(table.columns) == ELIGIBILITY_COLUMNS and len(table) == 0
    assert flow_counts(table) == dict.fromkeys(FLOW_KEYS, 0)


def test_status_command(tmp_path):
    runner = CliRunner()
    folder = tmp_path / "s"
    runner.invoke(app, ["study", "init", str(folder), "--to", "2022-12-31"])
    runner.invoke(app, ["study", "import", str(folder), *map(str, csvs(EXAMPLE))])
    out = tmp_path / "eligibility.csv"
    result = runner.invoke(app, ["study", "status", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("rules: initial surgery open to 2022-12-31; baseline: last preoperative visit 0-90 days")
    assert "  eligible                   3" in lines
    assert [line.split()[:2] for line in lines[lines.index("excluded:") + 1:-1]] == [
        ["P003", "no_baseline_visit:"], ["P004", "outside_inclusion_window:"], ["R001", "no_followup_visit:"]]
    assert out.read_text().splitlines()[0] == ",".join(ELIGIBILITY_COLUMNS)
    assert (tmp_path / "eligibility.csv.rules.json").is_file()
    again = runner.invoke(app, ["study", "status", str(folder), "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(app, ["study", "status", str(tmp_path / "none")]).exit_code == 1
