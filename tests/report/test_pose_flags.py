"""The study report's list of photograph pairs whose head pose differs between the visits (issue 13)."""

import pandas as pd

from hemiface.report._study import POSE_FLAG_COLUMNS, pose_flagged_pairs


def test_flagged_pairs_are_listed_and_others_not():
    endpoints = pd.DataFrame({
        "patient_id": ["P1", "P2", "P3"], "technique": ["fat_grafting"] * 3,
        "yaw_difference_deg": [4.5, 1.0, float("nan")], "pitch_difference_deg": [0.0, 0.5, float("nan")],
        "roll_difference_deg": [0.1, 0.0, float("nan")], "pose_differs": [True, False, None],
        "pose_flags": ["yaw_differs_by_more_than_3_deg", "", None], "symmetry_ratio_change": [8.0, 2.0, float("nan")],
    })
    flagged = pose_flagged_pairs(endpoints)
    assert tuple(flagged.columns) == POSE_FLAG_COLUMNS
    assert flagged["patient_id"].tolist() == ["P1"]
    assert pose_flagged_pairs(endpoints.drop(columns=["pose_differs"])).empty
