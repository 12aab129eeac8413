"""The endpoint table's pose columns (issue 13), from photo_analyze results as `study run` stores them."""

import math

import pandas as pd
from study_helpers import no_database

from hemiface.study._endpoints import ENDPOINT_COLUMNS, _pose_columns

pytestmark = no_database


def _outcome(yaw, pitch, roll, compensated):
    return ("ok", None, {"pose": {"yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll},
                         "symmetry_ratio_pose_compensated_percent": compensated})


def test_pose_columns_average_the_visit_and_flag_the_pair():
    outcomes = {
        ("P1", "2020-01-01", "photo_analyze"): [_outcome(1.0, 2.0, 0.5, 90.0), _outcome(3.0, 2.0, 0.5, 92.0)],
        ("P1", "2020-09-01", "photo_analyze"): [_outcome(-2.5, 1.0, 0.0, 95.0), ("failed", "no face", None)],
    }
    row = _pose_columns(outcomes, "P1", "2020-01-01", "2020-09-01", 3.0)
    assert set(row) <= set(ENDPOINT_COLUMNS)
    assert row["yaw_baseline_deg"] == 2.0 and row["yaw_followup_deg"] == -2.5
    assert row["yaw_difference_deg"] == -4.5 and row["pitch_difference_deg"] == -1.0
    assert row["pose_differs"] is True and row["pose_flags"] == "yaw_differs_by_more_than_3_deg"
    assert row["symmetry_ratio_pose_compensated_change"] == 95.0 - 91.0
    relaxed = _pose_columns(outcomes, "P1", "2020-01-01", "2020-09-01", 5.0)
    assert relaxed["pose_differs"] is False and relaxed["pose_flags"] == ""


def test_pose_columns_without_a_photo_are_missing_not_flagged():
    outcomes = {("P1", "2020-01-01", "photo_analyze"): [_outcome(1.0, 2.0, 0.5, 90.0)]}
    row = _pose_columns(outcomes, "P1", "2020-01-01", "2020-09-01", 3.0)
    assert math.isnan(row["yaw_followup_deg"]) and math.isnan(row["yaw_difference_deg"])
    assert row["pose_differs"] is None and row["pose_flags"] is None
    assert pd.isna(row["symmetry_ratio_pose_compensated_change"])
