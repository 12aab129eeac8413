"""table_one: summaries chosen by type and normality, denominators, missing patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hemiface.stats import OVERALL, TABLE_ONE_COLUMNS, StatsError, table_one


def _data():
    rng = np.random.default_rng(0)
    n = 30
    return pd.DataFrame({
        "patient_id": [f"P{i:02d}" for i in range(n)],
        "technique": np.repeat(["fat", "flap"], n // 2),
        "age": rng.normal(30, 5, n),
        "onset_years": rng.lognormal(1, 1.2, n),
        "sex": ["female", "male", "female"] * 10,
        "stage": [1, 2, 3, 4, 2] * 6,
    })


def _t(df, **kw):
    return table_one(df, continuous=("age", "onset_years"), categorical=("sex", "stage"), **kw)


def test_columns_are_frozen():
    assert TABLE_ONE_COLUMNS == ("variable", "level", "group", "n", "n_missing", "missing_ids", "summary_type",
                                 "summary", "mean", "sd", "median", "q1", "q3", "count", "percent")
    assert tuple(_t(_data()).columns) == TABLE_ONE_COLUMNS


def test_normal_variable_mean_sd_skewed_variable_median_iqr():
    t = _t(_data())
    age = t[(t.variable == "age") & (t.group == OVERALL)].iloc[0]
    onset = t[(t.variable == "onset_years") & (t.group == OVERALL)].iloc[0]
    assert age.summary_type == "mean_sd" and onset.summary_type == "median_iqr"
    d = _data()
    assert age.summary == f"{d.age.mean():.1f} ± {d.age.std():.1f}"
    q1, med, q3 = np.percentile(d.onset_years, [25, 50, 75])
    assert onset.summary == f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def test_counts_and_percent_of_known():
    d = _data()
    d.loc[[0, 1], "sex"] = None  # both in "fat"
    t = _t(d)
    rows = t[(t.variable == "sex") & (t.group == "fat")].set_index("level")
    known = d[d.technique == "fat"].sex.dropna()
    assert rows.loc["female", "count"] == (known == "female").sum()
    assert rows.loc["female", "percent"] == pytest.approx(100 * (known == "female").mean())
    assert (rows.n == 13).all() and (rows.missing_ids == "P00;P01").all()
    assert list(t[(t.variable == "stage") & (t.group == OVERALL)].level) == ["1", "2", "3", "4"]
    patients = t[t.variable == "patients"].set_index("group")["count"]
    assert patients.to_dict() == {"fat": 15, "flap": 15, OVERALL: 30}


def test_missing_continuous_values_are_named():
    d = _data()
    d.loc[20, "age"] = np.nan
    t = _t(d)
    row = t[(t.variable == "age") & (t.group == "flap")].iloc[0]
    assert row.n == 14 and row.n_missing == 1 and row.missing_ids == "P20"


def test_bad_input_raises():
    with pytest.raises(StatsError, match="no column 'height'"):
        table_one(_data(), continuous=("height",), categorical=())
    d = _data()
    d["age"] = d["age"].astype(object)
    d.loc[3, "age"] = "thirty"
    with pytest.raises(StatsError, match="non-numeric values for P03"):
        _t(d)
