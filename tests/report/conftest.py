"""Shared inputs for the report tests: a synthetic endpoint table, small fake statistics tables, and
real result folders written by the command line (`scan analyze`, `scan compare`, `photo analyze`, each
with --report) on bundled sample data."""


import numpy as np
import pandas as pd
import pytest
from report_helpers import SCAN_POST, SCAN_PRE, TECHNIQUES, endpoint_rows
from typer.testing import CliRunner
SITE = dict(side="left", centre_offset_mm=(38.0, 8.0), radius_mm=22.0)


@pytest.fixture(scope="session")
def endpoints():
    """One row per patient, with the endpoint table's columns; a few values missing on purpose."""
    df = endpoint_rows(24)
    for i, reason in ((2, "no_followup_photo"), (9, "pose_flagged")):
        df.loc[i, ["symmetry_ratio_followup_percent", "symmetry_ratio_change"]] = np.nan
        df.loc[i, "missing_2d_reason"] = reason
    df.loc[5, ["discrepancy_followup_mm3", "discrepancy_change_mm3", "discrepancy_followup_percent",
               "discrepancy_change_percent", "volume_gain_mm3"]] = np.nan
    df.loc[5, "missing_3d_reason"] = "no_followup_scan"
    return df


@pytest.fixture(scope="session")
def tables(endpoints):
    """Fake statistics tables with the columns the statistics module promises (values arbitrary)."""
    within = pd.DataFrame({
        "endpoint": ["symmetry_ratio_change"] * 3 + ["discrepancy_change_mm3"] * 3,
        "technique": list(TECHNIQUES) * 2,
        "test": ["paired_t", "wilcoxon", "paired_t"] * 2,
        "statistic": [4.213, 31.0, 2.0456, -5.5, 3.0, -2.25],
        "p_value": [0.00042, 0.0123, 0.0804, 1e-6, 0.5, 1.0],
        "n": [7, 8, 8, 8, 7, 8],
        "effect_size": [1.234, 0.876, 0.512, -1.95, 0.0049, -0.8],
        "ci_low": [0.41, 0.12, -0.1, -2.9, -0.7, -1.6],
        "ci_high": [2.05, 1.63, 1.12, -1.0, 0.71, 0.01],
        "mean_difference_mm3": [np.nan, np.nan, np.nan, -3312.7, -2150.2, -1234567.8],
        "selected": [True, False, True, True, True, False],
        "df": [6.0, np.nan, 7.0, 7.0, 6.0, 7.0],
        "conf_level": [0.95] * 6,
        "n_missing": [1, 0, 2, 0, 1, 0],
        "missing_ids": [["HFA-002"], [], ["HFA-009", "HFA-011"], [], ["HFA-005"], []],
        "method_note": ["paired t test on after - before; selected: Shapiro-Wilk p = 0.96 >= 0.05"] * 6,
    })
    between = pd.DataFrame({"endpoint": ["symmetry_ratio_change"], "test": ["kruskal"], "statistic": [3.21],
                            "p_value": [0.2009], "n": [22], "effect_size": [0.05], "ci_low": [np.nan],
                            "ci_high": [np.nan], "selected": [True]})
    ancova = pd.DataFrame({"endpoint": ["symmetry_ratio_followup_percent"], "term": ["technique"], "test": ["ancova"],
                           "statistic": [2.87], "p_value": [0.0812], "n": [22], "effect_size": [0.223],
                           "ci_low": [0.01], "ci_high": [0.41], "selected": [True]})
    table1 = pd.DataFrame({"characteristic": ["Age (years), mean", "Female, n"], "fat_grafting": [30.25, 5],
                           "free_flap": [35.5, 3], "adm": [28.0, 6]})
    complications = pd.DataFrame({"technique": list(TECHNIQUES), "n": [8, 8, 8], "any_n": [3, 4, 1],
                                  "any_percent": [37.5, 50.0, 12.5], "p_value": [0.31, np.nan, np.nan]})
    definitions = pd.DataFrame({"endpoint": ["symmetry_ratio", "discrepancy_mm3"], "label": ["Symmetry ratio",
                                "Volumetric discrepancy"], "unit": ["%", "mm3"], "population": ["2D", "3D"]})
    assumptions = pd.DataFrame({"endpoint": ["symmetry_ratio"] * 2, "check": ["normality", "homogeneity"],
                                "statistic": [0.97, 1.2], "df": [np.nan, 2.0], "df_resid": [np.nan, 19.0],
                                "p_value": [0.61, 0.32], "passed": [True, True]})
    complication_tests = pd.DataFrame({"outcome": ["any_complication"], "test": ["fisher_freeman_halton"],
                                       "p_value": [0.4937], "effect_size": [np.nan], "n": [24]})
    missing = pd.DataFrame({"endpoint": ["symmetry_ratio_change", "discrepancy_change_mm3"], "missing_n": [2, 1]})
    outcomes = pd.DataFrame({"outcome": ["graft_retention"] * 2, "group": ["fat_grafting", "all"], "n": [6, 7],
                             "n_missing": [1, 1], "mean": [43.21, 44.05], "sd": [8.7, 8.1]})
    outcome_tests = pd.DataFrame({"outcome": ["graft_retention"], "test": ["welch_t"], "p_value": [0.0415],
                                  "selected": [True]})
    return {"outcome_descriptives": outcomes, "outcome_between_groups": outcome_tests, "table1": table1, "within_group": within, "between_groups": between, "ancova": ancova, "complications": complications,
            "endpoints": definitions, "ancova_assumptions": assumptions, "complication_tests": complication_tests,
            "missing": missing, "sensitivity_per_protocol": between.assign(n=[20])}


@pytest.fixture(scope="session")
def flow():
    return {"screened": 31, "with_initial_surgery": 30, "in_inclusion_window": 28, "with_baseline": 26,
            "with_followup": 24, "eligible": 24,
            "excluded": {"no_initial_surgery": 1, "outside_inclusion_window": 2, "no_baseline_visit": 2,
                         "no_followup_visit": 2}}


@pytest.fixture(scope="session")
def settings():
    return {"name": "Hemifacial atrophy pilot", "inclusion_from": "2021-01-01", "inclusion_to": "2022-12-31",
            "baseline_window_days": 60, "followup_months": 12, "techniques": list(TECHNIQUES),
            "landmark_model": "mediapipe face_mesh 0.10.21", "midline": "fitted", "iris_mm": 11.7,
            "threshold_mm": 3.5, "floor_mm": 1.0, "max_registration_rms_mm": 1.0, "alpha": 0.05}


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    """Folders written by `scan analyze`, `scan compare` and `photo analyze`, each run with --report."""
    from hemiface import datasets
    from hemiface.cli import app

    root = tmp_path_factory.mktemp("results")
    base = datasets.load_sample("template")
    datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=5000.0, **SITE).save(root / SCAN_PRE)
    datasets.carve_defect(base.vertices_mm, base.faces, volume_mm3=2000.0, **SITE).save(root / SCAN_POST)
    runner = CliRunner()
    commands = {
        "scan_analyze": ["scan", "analyze", str(root / SCAN_PRE), "--affected", "left", "--orient", "canonical"],
        "scan_compare": ["scan", "compare", str(root / SCAN_PRE), str(root / SCAN_POST), "--affected", "left",
                         "--orient", "canonical"],
        "photo_analyze": ["photo", "analyze", str(datasets.sample_photo_path("astronaut")), "--affected", "left"],
    }
    out = {}
    for kind, args in commands.items():
        folder = root / kind
        run = runner.invoke(app, [*args, "--out", str(folder), "--report"])
        assert run.exit_code == 0, run.output
        out[kind] = folder
    return out


@pytest.fixture(scope="session")
def report_artifacts():
    """Where the report tests keep rendered pages (test-artifacts/report/; see ``helpers.artifact_folder``)."""
    from helpers import artifact_folder

    return artifact_folder("report")
