"""ancova: constructed truth, assumption checks, missing data and small samples."""

from __future__ import annotations

import numpy as np
import pytest

from hemiface.stats import ANCOVA_ASSUMPTION_COLUMNS, ANCOVA_CHECKS, ANCOVA_COLUMNS, StatsError, ancova


def _data(seed=0, n=12, slopes=(0.8, 0.8, 0.8), noise=1.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(["adm", "fat", "flap"], n)
    base = rng.normal(50, 10, 3 * n)
    slope = np.select([g == "adm", g == "fat"], slopes[:2], slopes[2])
    follow = 5 + slope * base + np.select([g == "fat", g == "flap"], [4.0, 9.0], 0.0) + rng.normal(0, noise, 3 * n)
    return base, follow, g


def test_columns_are_frozen():
    assert ANCOVA_COLUMNS == ("term", "estimate", "se", "statistic", "statistic_name", "df", "df_resid", "p_value",
                              "ci_low", "ci_high", "conf_level", "n", "n_missing", "missing_ids", "method_note")
    assert ANCOVA_ASSUMPTION_COLUMNS == ("check", "statistic", "statistic_name", "df", "df_resid", "p_value",
                                         "passed", "method_note")
    res = ancova(*_data())
    assert tuple(res.coefficients.columns) == ANCOVA_COLUMNS
    assert tuple(res.assumptions.columns) == ANCOVA_ASSUMPTION_COLUMNS
    assert tuple(res.assumptions.check) == ANCOVA_CHECKS
    assert list(res.coefficients.term) == ["intercept", "baseline", "group[fat]", "group[flap]", "group"]


def test_adjusted_group_effects_are_recovered():
    base, follow, g = _data(noise=0.5, n=20)
    co = ancova(base, follow, g).coefficients.set_index("term")
    assert co.loc["baseline", "estimate"] == pytest.approx(0.8, abs=0.02)
    for term, truth in (("group[fat]", 4.0), ("group[flap]", 9.0)):
        assert co.loc[term, "ci_low"] < truth < co.loc[term, "ci_high"]
    assert co.loc["group", "statistic_name"] == "F" and co.loc["group", "df"] == 2
    assert co.loc["baseline", "df_resid"] == 60 - 4


def test_noise_free_fit_is_exact():
    base, _, g = _data()
    follow = 5 + 0.8 * base + np.select([g == "fat", g == "flap"], [4.0, 9.0], 0.0)
    co = ancova(base, follow, g).coefficients.set_index("term")
    np.testing.assert_allclose(co.loc[["intercept", "baseline", "group[fat]", "group[flap]"], "estimate"],
                               [5, 0.8, 4, 9], atol=1e-9)


def test_reference_group_follows_order():
    base, follow, g = _data()
    a = ancova(base, follow, g).coefficients.set_index("term")
    b = ancova(base, follow, g, order=["fat", "adm", "flap"]).coefficients.set_index("term")
    assert b.loc["group[adm]", "estimate"] == pytest.approx(-a.loc["group[fat]", "estimate"])
    assert b.loc["group", "p_value"] == pytest.approx(a.loc["group", "p_value"])


def test_unequal_slopes_fail_the_homogeneity_check():
    ok = ancova(*_data(seed=3, n=20)).assumptions.set_index("check")  # equal slopes (p = 0.87)
    bad = ancova(*_data(n=20, slopes=(0.2, 0.8, 1.6))).assumptions.set_index("check")
    assert bool(ok.loc["homogeneity_of_slopes", "passed"])
    assert not bool(bad.loc["homogeneity_of_slopes", "passed"])
    assert bad.loc["homogeneity_of_slopes", "p_value"] < 1e-6


def test_missing_values_are_listed():
    base, follow, g = _data()
    base[3] = np.nan
    follow[7] = np.nan
    ids = [f"P{i}" for i in range(base.size)]
    co = ancova(base, follow, g, ids=ids).coefficients
    assert (co.n == base.size - 2).all() and (co.missing_ids == "P3;P7").all()


def test_too_few_patients_cannot_fit():
    res = ancova([1.0, 2, 3], [2.0, 3, 5], ["a", "b", "b"])
    assert res.coefficients.method_note.str.startswith("cannot fit").all()
    assert res.coefficients.p_value.isna().all()
    assert res.assumptions.passed.isna().all()


def test_bad_input_raises():
    with pytest.raises(StatsError, match="at least two groups"):
        ancova([1.0, 2, 3], [2.0, 3, 5], ["a", "a", "a"])
    with pytest.raises(StatsError, match="equal lengths"):
        ancova([1.0, 2, 3], [2.0, 3], ["a", "b", "b"])


def test_group_without_complete_cases_is_reported_not_fitted():
    base, follow, g = _data()
    follow[g == "flap"] = np.nan
    co = ancova(base, follow, g).coefficients.set_index("term")
    assert np.isnan(co.loc["group[flap]", "estimate"]) and co.loc["group[flap]", "method_note"] == "no complete cases in flap"
    assert np.isfinite(co.loc["group[fat]", "estimate"]) and co.loc["group", "df"] == 1
