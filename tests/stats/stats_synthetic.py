"""A synthetic endpoint table following the study's contract (one row per eligible patient)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TECHNIQUES = ("adm", "fat_grafting", "free_flap")
SCALES = ("satisfaction_with_facial_appearance", "psychological_function")


def endpoint_table(n_per_group: int = 8, *, seed: int = 1, techniques=TECHNIQUES) -> pd.DataFrame:
    """Patients with known true changes: symmetry ratio +5, +10, +15 points by technique.

    Built from the contract's column names; a few values are missing on purpose
    (with their reasons), one patient has no 3D scans, one has no complications record.
    """
    rng = np.random.default_rng(seed)
    rows = []
    k = 0
    for t_i, tech in enumerate(techniques):
        for _ in range(n_per_group):
            k += 1
            pid = f"P{k:03d}"
            base = rng.normal(80, 5)
            follow = base + 5 * (t_i + 1) + rng.normal(0, 2)
            d_base = rng.normal(20, 4)
            d_follow = d_base - 4 * (t_i + 1) + rng.normal(0, 1.5)
            unaff = 40000.0
            comps = rng.choice(["", "", "", "infection", "seroma", "infection;seroma"])
            row = dict(
                patient_id=pid, technique=tech, affected_side=rng.choice(["left", "right"]),
                sex=rng.choice(["female", "male"]), age_at_surgery_years=rng.normal(30, 8),
                guerrerosantos_stage=int(rng.integers(1, 5)), age_at_onset_years=rng.normal(12, 3),
                initial_surgery_date="2024-03-01", baseline_date="2024-02-01", followup_date="2025-03-01",
                followup_interval_days=int(rng.integers(330, 420)),
                symmetry_ratio_baseline_percent=base, symmetry_ratio_followup_percent=follow,
                symmetry_ratio_change=follow - base,
                discrepancy_baseline_mm3=d_base * unaff / 100, discrepancy_followup_mm3=d_follow * unaff / 100,
                discrepancy_change_mm3=d_follow * unaff / 100 - d_base * unaff / 100,
                discrepancy_baseline_percent=d_base, discrepancy_followup_percent=d_follow,
                discrepancy_change_percent=d_follow - d_base,
                defect_volume_baseline_mm3=d_base * unaff / 100, volume_gain_mm3=(d_base - d_follow) * unaff / 100,
                complications_followup=comps, complications_followup_n=len([c for c in comps.split(";") if c]),
                major_complication=bool(comps == "infection;seroma"),
                missing_2d_reason="", missing_3d_reason="",
            )
            row["years_since_onset"] = row["age_at_surgery_years"] - row["age_at_onset_years"]
            for s_i, scale in enumerate(SCALES):
                fb = float(rng.integers(20, 60))
                ff = fb + float(rng.integers(0, 30))
                row[f"faceq_{scale}_baseline"] = fb
                row[f"faceq_{scale}_followup"] = ff
                row[f"faceq_{scale}_change"] = ff - fb
            rows.append(row)
    df = pd.DataFrame(rows)
    # Missing on purpose, with reasons.
    df.loc[1, ["symmetry_ratio_followup_percent", "symmetry_ratio_change"]] = np.nan
    df.loc[1, "missing_2d_reason"] = "follow-up photograph not frontal"
    cols3d = [c for c in df.columns if c.startswith("discrepancy_")]
    df.loc[2, cols3d] = np.nan
    df.loc[2, "missing_3d_reason"] = "no 3D scan at baseline"
    df.loc[3, "complications_followup"] = np.nan
    df.loc[3, "complications_followup_n"] = np.nan
    df.loc[4, "age_at_onset_years"] = np.nan
    df.loc[4, "years_since_onset"] = np.nan
    scale = SCALES[0]
    df.loc[5, [f"faceq_{scale}_baseline", f"faceq_{scale}_change"]] = np.nan
    # The dtypes of hemiface.study.endpoint_table: whole years and counts as nullable Int64,
    # dates as datetime.date, no reason as None.
    for col in ("age_at_surgery_years", "age_at_onset_years"):
        df[col] = df[col].round()
    df["years_since_onset"] = df["age_at_surgery_years"] - df["age_at_onset_years"]
    for col in ("age_at_surgery_years", "guerrerosantos_stage", "age_at_onset_years", "years_since_onset",
                "followup_interval_days", "complications_followup_n"):
        df[col] = df[col].astype("Int64")
    for col in ("initial_surgery_date", "baseline_date", "followup_date"):
        df[col] = pd.to_datetime(df[col]).dt.date
    for col in ("missing_2d_reason", "missing_3d_reason"):
        df[col] = df[col].where(df[col] != "", None)
    return df
