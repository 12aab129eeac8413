"""analyze_endpoints on a synthetic endpoint table; workbook and CSV writing."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from stats_synthetic import SCALES, endpoint_table

from hemiface._errors import OutputExistsError
from hemiface.stats import (
    GROUP_COLUMNS,
    PAIRED_COLUMNS,
    TABLE_COLUMNS,
    StatsError,
    analyze_endpoints,
    write_csv,
    write_workbook,
)


@pytest.fixture(scope="module")
def table():
    return endpoint_table()


@pytest.fixture(scope="module")
def result(table):
    return analyze_endpoints(table)


def test_table_names_and_columns_are_frozen(result):
    assert list(TABLE_COLUMNS) == ["endpoints", "table1", "descriptives", "within_group", "between_groups", "ancova",
                                   "ancova_assumptions", "complications", "complication_tests", "missing", "outcomes",
                                   "outcome_descriptives", "outcome_between_groups", "pose_sensitivity"]
    assert TABLE_COLUMNS["outcomes"] == ("outcome", "label", "unit", "column", "population_column", "reason_column",
                                         "population")
    assert TABLE_COLUMNS["outcome_descriptives"] == ("outcome", "group", "n", "n_missing", "missing_ids", "mean", "sd",
                                                     "median", "q1", "q3", "min", "max")
    assert TABLE_COLUMNS["outcome_between_groups"] == ("outcome",) + GROUP_COLUMNS
    assert TABLE_COLUMNS["within_group"] == ("endpoint", "group") + PAIRED_COLUMNS
    assert TABLE_COLUMNS["between_groups"] == ("endpoint",) + GROUP_COLUMNS
    assert TABLE_COLUMNS["pose_sensitivity"] == ("endpoint", "group", "n_excluded", "excluded_ids") + GROUP_COLUMNS
    assert TABLE_COLUMNS["missing"] == ("patient_id", "group", "endpoint", "timepoint", "reason")
    assert TABLE_COLUMNS["descriptives"] == ("endpoint", "group", "timepoint", "n", "n_missing", "missing_ids",
                                             "mean", "sd", "median", "q1", "q3", "min", "max")
    assert TABLE_COLUMNS["endpoints"] == ("endpoint", "label", "unit", "baseline_column", "followup_column",
                                          "change_column", "reason_column", "population")
    assert list(result) == list(TABLE_COLUMNS)
    for name, cols in TABLE_COLUMNS.items():
        assert tuple(result[name].columns) == cols, name


def test_endpoints_include_each_faceq_scale(result):
    assert list(result["endpoints"].endpoint) == ["symmetry_ratio", "discrepancy_percent", "discrepancy_mm3"] + [
        f"faceq_{s}" for s in SCALES]


def test_known_changes_are_recovered(result):
    w = result["within_group"]
    t = w[(w.endpoint == "symmetry_ratio") & (w.test == "paired_t")].set_index("group")
    for group, truth in (("adm", 5), ("fat_grafting", 10), ("free_flap", 15)):
        assert t.loc[group, "ci_low"] < truth < t.loc[group, "ci_high"]
    d = w[(w.endpoint == "discrepancy_percent") & (w.test == "paired_t")].set_index("group")
    assert d.loc["free_flap", "ci_low"] < -12 < d.loc["free_flap", "ci_high"]
    # one test per (endpoint, group) is selected at most
    assert (w.groupby(["endpoint", "group"]).selected.sum() <= 1).all()
    b = result["between_groups"]
    assert (b.test == "kruskal").all() and (b[b.endpoint == "symmetry_ratio"].p_value < 0.01).all()


def test_missing_patients_are_listed_with_reasons(result, table):
    m = result["missing"]
    row = m[(m.patient_id == "P002") & (m.endpoint == "symmetry_ratio")].iloc[0]
    assert row.reason == "follow-up photograph not frontal" and row.timepoint == "followup"
    three_d = m[m.endpoint == "discrepancy_percent"]
    assert list(three_d.patient_id) == ["P003"] and three_d.reason.iloc[0] == "no 3D scan at baseline"
    assert ((m.patient_id == "P004") & (m.endpoint == "complications")).any()
    assert ((m.patient_id == "P006") & (m.endpoint == f"faceq_{SCALES[0]}")).any()
    assert ((m.patient_id == "P005") & (m.endpoint == "years_since_onset")).any()
    w = result["within_group"]
    adm3d = w[(w.endpoint == "discrepancy_percent") & (w.group == "adm")]
    assert (adm3d.n == 7).all() and (adm3d.missing_ids == "P003").all()
    allp = w[(w.endpoint == "discrepancy_percent") & (w.group == "all")]
    assert (allp.n == len(table) - 1).all()
    d = result["descriptives"]
    assert (d[(d.endpoint == "symmetry_ratio") & (d.group == "adm")].n == 7).all()


def test_ancova_and_complications_are_reported(result):
    a = result["ancova"]
    assert set(a.endpoint) == set(result["endpoints"].endpoint)
    assert (a[a.term == "group"].statistic_name == "F").all()
    assert len(result["ancova_assumptions"]) == 3 * len(result["endpoints"])
    c = result["complications"]
    assert {"any_complication", "major_complication", "complication_type:infection",
            "complication_type:seroma"} == set(c.outcome)
    any_all = c[(c.outcome == "any_complication") & (c.group == "all")].iloc[0]
    assert any_all.n == 23 and any_all.missing_ids == "P004"
    assert set(result["complication_tests"].test) == {"fisher_freeman_halton"}


def test_graft_retention_is_summarised_per_technique(table):
    """Retention drawn around 40 % (fat grafting) and 60 % (free flap with fat): descriptives and the comparison."""
    rng = np.random.default_rng(3)
    t = table.copy()
    truth = {"fat_grafting": 40.0, "free_flap": 60.0}
    t["fat_injected_ml"] = [20.0 if g in truth else np.nan for g in t.technique]
    t["graft_retention_percent"] = [truth[g] + rng.normal(0, 4) if g in truth else np.nan for g in t.technique]
    t["missing_retention_reason"] = None
    first_fat = t.index[t.technique == "fat_grafting"][0]
    t.loc[first_fat, "graft_retention_percent"] = np.nan
    t.loc[first_fat, "missing_retention_reason"] = "no scan at the follow-up visit"
    res = analyze_endpoints(t)
    assert list(res["outcomes"].outcome) == ["graft_retention"]  # no planned gains: that outcome is absent
    d = res["outcome_descriptives"].set_index("group")
    assert list(d.index) == ["fat_grafting", "free_flap", "all"]  # adm patients injected nothing: not in it
    for g in truth:
        values = t.loc[(t.technique == g), "graft_retention_percent"].dropna()
        assert d.loc[g, "n"] == len(values) and d.loc[g, "mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert d.loc[g, "sd"] == pytest.approx(values.std(ddof=1), rel=1e-12)
        assert abs(d.loc[g, "mean"] - truth[g]) < 4
    assert d.loc["fat_grafting", "n_missing"] == 1 and d.loc["fat_grafting", "missing_ids"] == t.patient_id[first_fat]
    b = res["outcome_between_groups"]
    assert set(b.test) == {"welch_t", "mann_whitney"} and (b.comparison == "fat_grafting - free_flap").all()
    assert (b.p_value < 1e-3).all()  # 7 vs 8 patients: the exact Mann-Whitney p cannot go below 3e-4
    m = res["missing"]
    row = m[m.endpoint == "graft_retention"]
    assert list(row.patient_id) == [t.patient_id[first_fat]] and row.reason.iloc[0] == "no scan at the follow-up visit"


def test_two_techniques_use_two_group_tests(table):
    two = table[table.technique != "free_flap"]
    res = analyze_endpoints(two)
    assert set(res["between_groups"].test) == {"welch_t", "mann_whitney"}
    assert set(res["complication_tests"].test) == {"fisher_exact"}
    assert (res["between_groups"].comparison == "adm - fat_grafting").all()


def test_one_technique_skips_between_group_tables(table, caplog):
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        res = analyze_endpoints(table[table.technique == "adm"])
    assert "between-group comparisons are not made" in caplog.text
    assert res["between_groups"].empty and res["ancova"].empty and res["complication_tests"].empty
    assert tuple(res["between_groups"].columns) == TABLE_COLUMNS["between_groups"]
    assert not res["complications"].empty


def _with_pose_artefact(table, *, as_text=False, artefact=8.0):
    """Two techniques; four fat-grafting and one adm pair flagged as differing in pose, whose 2D change carries
    ``artefact`` points of pose effect (8: about 3 degrees of yaw); every other pair's pose agrees, one pair's
    pose is unknown."""
    t = table[table.technique.isin(["adm", "fat_grafting"])].reset_index(drop=True).copy()
    flagged = [9, 10, 12, 13, 6]  # 9-13: fat_grafting, 6: adm
    t["pose_differs"] = pd.Series([False] * len(t), dtype=object)
    t.loc[flagged, "pose_differs"] = True
    t.loc[7, "pose_differs"] = None  # no pose recorded for this pair
    for col in ("symmetry_ratio_followup_percent", "symmetry_ratio_change"):
        t.loc[flagged, col] += artefact
    if as_text:  # as an endpoint table read back from CSV
        t["pose_differs"] = t["pose_differs"].map({True: "True", False: "False", None: ""})
    return t, flagged


@pytest.mark.parametrize("as_text", [False, True])
def test_pose_sensitivity_leaves_out_the_pairs_whose_pose_differs(table, as_text):
    """The 2D endpoint again on the pairs whose pose agrees: the pose artefact of the flagged pairs biases the
    primary comparison and not the sensitivity analysis. Oracle: scipy's tests on the subset, computed here."""
    from scipy import stats as st

    t, flagged = _with_pose_artefact(table, as_text=as_text)
    res = analyze_endpoints(t, order=["fat_grafting", "adm"])
    sens = res["pose_sensitivity"]
    assert tuple(sens.columns) == TABLE_COLUMNS["pose_sensitivity"] and set(sens.endpoint) == {"symmetry_ratio"}
    change = t.symmetry_ratio_change.to_numpy(float)
    keep = np.array([str(v) in ("False",) for v in t.pose_differs])
    left_out = sorted(t.patient_id[~keep & np.isfinite(change)])
    assert len(left_out) == 6  # the five flagged and the one of unknown pose (pair 1 has no change: not counted)
    welch = sens[(sens.group == "between") & (sens.test == "welch_t")].iloc[0]
    fg = change[keep & (t.technique == "fat_grafting").to_numpy() & np.isfinite(change)]
    adm = change[keep & (t.technique == "adm").to_numpy() & np.isfinite(change)]
    oracle = st.ttest_ind(fg, adm, equal_var=False)
    ci = oracle.confidence_interval(0.95)
    assert welch.estimate == pytest.approx(fg.mean() - adm.mean(), abs=1e-12)
    assert (welch.ci_low, welch.ci_high, welch.p_value) == pytest.approx((ci.low, ci.high, oracle.pvalue), abs=1e-9)
    assert welch.n == len(fg) + len(adm) and sorted(welch.excluded_ids.split(";")) == left_out
    # Against the same table without the artefact: the primary estimate moves by exactly the artefact's share
    # (8 points on 4 of 8 fat-grafting and 1 of 7 adm changes), the sensitivity estimate not at all.
    clean = analyze_endpoints(_with_pose_artefact(table, as_text=as_text, artefact=0.0)[0], order=["fat_grafting", "adm"])

    def welch_of(tables, name, group=None):
        t = tables[name]
        t = t[(t.endpoint == "symmetry_ratio") & (t.test == "welch_t") & ((t.group == group) if group else True)]
        return t.iloc[0].estimate

    bias = welch_of(res, "between_groups") - welch_of(clean, "between_groups")
    assert bias == pytest.approx(8.0 * (4 / 8 - 1 / 7), abs=1e-9)
    assert welch.estimate == pytest.approx(welch_of(clean, "pose_sensitivity", "between"), abs=1e-12)
    within = sens[(sens.group == "fat_grafting") & (sens.test == "paired_t")].iloc[0]
    assert within.estimate == pytest.approx(fg.mean(), abs=1e-12) and within.n == len(fg)
    assert sorted(within.excluded_ids.split(";")) == sorted(t.patient_id[[9, 10, 12, 13]])
    assert set(sens.group) == {"fat_grafting", "adm", "all", "between"}


def test_pose_sensitivity_is_empty_without_pose_columns(result):
    assert len(result["pose_sensitivity"]) == 0  # the synthetic table has no pose_differs column


def test_pose_sensitivity_with_a_group_wholly_flagged(table):
    t, _ = _with_pose_artefact(table)
    t.loc[t.technique == "adm", "pose_differs"] = True
    sens = analyze_endpoints(t)["pose_sensitivity"]
    assert "between" not in set(sens.group)  # one technique left: no comparison
    adm = sens[(sens.group == "adm") & (sens.test == "paired_t")].iloc[0]
    assert adm.n == 0 and adm.n_excluded == 7  # 8 adm patients, one without a 2D change (not counted)


def test_input_is_not_modified(table):
    before = table.copy()
    analyze_endpoints(table)
    pd.testing.assert_frame_equal(table, before)


def test_inconsistent_change_raises(table):
    bad = table.copy()
    bad.loc[7, "symmetry_ratio_change"] += 1
    with pytest.raises(StatsError, match="symmetry_ratio_change is not .* for P008"):
        analyze_endpoints(bad)


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.drop(columns="discrepancy_baseline_percent"), "lacks column discrepancy_baseline_percent"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "more than one row for patient"),
    (lambda t: t.assign(technique=[None] + list(t.technique[1:])), "P001 have no technique"),
    (lambda t: t.drop(columns=f"faceq_{SCALES[1]}_followup"), f"faceq_{SCALES[1]}_followup"),
    (lambda t: t.assign(complications_followup_n=3), "complications_followup_n and complications_followup disagree"),
    (lambda t: t.assign(age_at_surgery_years="old"), "non-numeric values"),
])
def test_malformed_tables_raise(table, edit, match):
    with pytest.raises(StatsError, match=match):
        analyze_endpoints(edit(table.copy()))


def test_workbook_round_trip(result, tmp_path):
    path = write_workbook(result, tmp_path / "stats.xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == list(TABLE_COLUMNS)
    for name, t in sheets.items():
        assert tuple(t.columns) == TABLE_COLUMNS[name] and len(t) == len(result[name])
    w = sheets["within_group"]
    np.testing.assert_allclose(w.p_value.to_numpy(float), result["within_group"].p_value.to_numpy(float))
    assert [p.name for p in tmp_path.iterdir()] == ["stats.xlsx"]  # no temporary file left behind
    with pytest.raises(OutputExistsError):
        write_workbook(result, path)
    write_workbook({"x": pd.DataFrame({"a": [1]})}, path, overwrite=True)
    assert list(pd.read_excel(path, sheet_name=None)) == ["x"]


def test_workbook_rejects_bad_sheet_names(tmp_path):
    with pytest.raises(StatsError, match="sheet name"):
        write_workbook({"a/b": pd.DataFrame()}, tmp_path / "x.xlsx")
    with pytest.raises(StatsError, match=".xlsx"):
        write_workbook({"a": pd.DataFrame()}, tmp_path / "x.xls")
    assert list(tmp_path.iterdir()) == []


def test_csv_round_trip(result, tmp_path):
    paths = write_csv(result, tmp_path / "out")
    assert [p.name for p in paths] == [f"{n}.csv" for n in TABLE_COLUMNS]
    m = pd.read_csv(paths[list(TABLE_COLUMNS).index("missing")])
    assert tuple(m.columns) == TABLE_COLUMNS["missing"] and len(m) == len(result["missing"])
    with pytest.raises(OutputExistsError):
        write_csv(result, tmp_path / "out")


def test_library_prints_nothing(table, capsys):
    analyze_endpoints(table.iloc[:10])
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
