"""paired_change: frozen columns, constructed truth, invariances, missing pairs and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from hemiface import HemifaceError
from hemiface.stats import MIN_N, PAIRED_COLUMNS, StatsError, paired_change


def _row(df, test):
    return df.loc[df.test == test].iloc[0]


def test_columns_are_frozen():
    assert PAIRED_COLUMNS == (
        "test", "selected", "statistic", "statistic_name", "df", "p_value", "estimate", "estimate_name",
        "ci_low", "ci_high", "conf_level", "effect_size", "effect_size_name", "n", "n_missing", "missing_ids",
        "normality_p", "method_note",
    )
    res = paired_change([1.0, 2, 3, 4, 5], [2.0, 2.5, 4, 6, 5.5])
    assert tuple(res.columns) == PAIRED_COLUMNS
    assert list(res.test) == ["paired_t", "wilcoxon"]


def test_known_shift_is_recovered():
    rng = np.random.default_rng(0)
    before = rng.normal(60, 8, 40)
    after = before + 7 + rng.normal(0, 1, 40)
    res = paired_change(before, after)
    t, w = _row(res, "paired_t"), _row(res, "wilcoxon")
    assert t.ci_low < 7 < t.ci_high and w.ci_low < 7 < w.ci_high
    assert t.estimate == pytest.approx(np.mean(after - before))
    assert t.effect_size == pytest.approx(np.mean(after - before) / np.std(after - before, ddof=1))
    assert t.p_value < 1e-10 and w.p_value < 1e-6
    assert w.effect_size == 1.0  # every difference positive: rank-biserial +1


def test_symmetric_differences_give_exact_centre():
    # d = 1..10: mean and Hodges-Lehmann pseudomedian are 5.5; V = 55 = n(n+1)/2, exact p = 2/2^10.
    before = np.zeros(10)
    after = np.arange(1, 11, dtype=float)
    res = paired_change(before, after)
    w = _row(res, "wilcoxon")
    assert w.estimate == 5.5 and w.statistic == 55
    assert w.p_value == pytest.approx(2 / 2**10)
    assert "exact" in w.method_note
    assert _row(res, "paired_t").estimate == 5.5


def test_adding_a_constant_to_both_visits_changes_nothing():
    rng = np.random.default_rng(1)
    before = rng.integers(0, 400, 15) / 8  # dyadic values: the shift is exact in floating point
    after = before + rng.integers(-40, 120, 15) / 8
    a = paired_change(before, after)
    b = paired_change(before + 1024, after + 1024)
    pd.testing.assert_frame_equal(a, b)


def test_swapping_visits_mirrors_the_result():
    rng = np.random.default_rng(2)
    before = rng.normal(50, 5, 12)
    after = before + rng.normal(3, 2, 12)
    a, b = paired_change(before, after), paired_change(after, before)
    ta, tb = _row(a, "paired_t"), _row(b, "paired_t")
    assert tb.statistic == pytest.approx(-ta.statistic) and tb.p_value == pytest.approx(ta.p_value)
    assert (tb.ci_low, tb.ci_high) == pytest.approx((-ta.ci_high, -ta.ci_low))
    wa, wb = _row(a, "wilcoxon"), _row(b, "wilcoxon")
    assert wa.statistic + wb.statistic == 12 * 13 / 2
    assert wb.p_value == pytest.approx(wa.p_value)
    assert (wb.estimate, wb.ci_low, wb.ci_high) == pytest.approx((-wa.estimate, -wa.ci_high, -wa.ci_low))
    assert wb.effect_size == pytest.approx(-wa.effect_size)


def test_order_of_pairs_does_not_matter():
    rng = np.random.default_rng(3)
    before, after = rng.normal(0, 1, 20), rng.normal(0.5, 1, 20)
    p = rng.permutation(20)
    pd.testing.assert_frame_equal(paired_change(before, after), paired_change(before[p], after[p]))


def test_selection_rule_follows_shapiro():
    rng = np.random.default_rng(4)
    before = rng.normal(50, 5, 30)
    d_normal, d_skewed = rng.normal(2, 1, 30), rng.exponential(2, 30) ** 2
    normal = paired_change(before, before + d_normal)
    skewed = paired_change(before, before + d_skewed)
    assert normal.normality_p.iloc[0] >= 0.05 and list(normal.selected) == [True, False]
    assert skewed.normality_p.iloc[0] < 0.05 and list(skewed.selected) == [False, True]
    assert skewed.normality_p.iloc[0] == pytest.approx(st.shapiro((before + d_skewed) - before).pvalue)
    assert "Shapiro-Wilk p" in skewed.method_note.iloc[1]
    # The threshold is an option: with normality_alpha below the skewed p, the t test is chosen.
    lenient = paired_change(before, before + d_skewed, normality_alpha=skewed.normality_p.iloc[0] / 2)
    assert list(lenient.selected) == [True, False]


def test_nan_pairs_are_excluded_and_listed():
    before = pd.Series([50.0, 52, np.nan, 49, 61, 55], index=["P1", "P2", "P3", "P4", "P5", "P6"])
    after = pd.Series([55.0, 53, 60, None, 64, 61], index=before.index)
    res = paired_change(before, after)
    assert (res.n == 4).all() and (res.n_missing == 2).all()
    assert (res.missing_ids == "P3;P4").all()
    complete = paired_change([50.0, 52, 61, 55], [55.0, 53, 64, 61])
    cols = ["statistic", "p_value", "estimate", "ci_low", "ci_high", "effect_size"]
    pd.testing.assert_frame_equal(res[cols], complete[cols])


def test_explicit_ids_name_the_missing():
    res = paired_change([1.0, np.nan, 3, 4], [2.0, 3, 5, 4.5], ids=["a", "b", "c", "d"])
    assert res.missing_ids.iloc[0] == "b"
    with pytest.raises(StatsError, match="ids has 2 labels for 4"):
        paired_change([1.0, 2, 3, 4], [2.0, 3, 5, 4.5], ids=["a", "b"])


def test_unequal_lengths_raise():
    with pytest.raises(StatsError, match="before has 3 values and after has 2") as err:
        paired_change([1.0, 2, 3], [1.0, 2])
    assert isinstance(err.value, HemifaceError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("bad", [["a", "b", "c"], [1.0, np.inf, 2.0], "123"])
def test_non_numbers_raise(bad):
    with pytest.raises(StatsError):
        paired_change(bad, [1.0, 2.0, 3.0])


def test_bad_options_raise():
    with pytest.raises(ValueError, match="wilcoxon_method"):
        paired_change([1.0, 2, 3], [2.0, 3, 5], wilcoxon_method="pratt")
    with pytest.raises(StatsError, match="alpha"):
        paired_change([1.0, 2, 3], [2.0, 3, 5], alpha=5)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_pairs_cannot_test(n):
    res = paired_change(np.arange(n, dtype=float), np.arange(n, dtype=float) * 2 + 1)
    assert not res.selected.any()
    assert res.method_note.str.startswith("cannot test").all()
    assert (res.n == n).all()
    assert n < MIN_N
    if n == 1:
        assert np.isnan(_row(res, "paired_t").p_value)


def test_all_zero_differences_cannot_test():
    res = paired_change([1.0, 2, 3, 4], [1.0, 2, 3, 4])
    assert not res.selected.any()
    assert np.isnan(res.p_value).all()
    assert "no nonzero differences" in _row(res, "wilcoxon").method_note


def test_zero_differences_are_dropped_as_in_r():
    # One zero among the differences: R drops it and uses the normal approximation.
    d = np.array([0.0, 1.5, 2.5, -0.5, 3.5, 4.5, 5.5, 2.0])
    res = _row(paired_change(np.zeros(8), d), "wilcoxon")
    assert "1 zero difference dropped" in res.method_note and "normal" in res.method_note
    ref = st.wilcoxon(d, zero_method="wilcox", correction=True, method="approx")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)


@pytest.mark.parametrize("method,correction", [("exact", True), ("approx", True), ("approx", False)])
def test_wilcoxon_p_agrees_with_scipy(method, correction):
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(1, 2, 18), 2)
    d = d[d != 0]
    res = _row(paired_change(np.zeros(d.size), d, wilcoxon_method=method, correction=correction), "wilcoxon")
    ref = st.wilcoxon(d, zero_method="wilcox", correction=correction, method=method)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_exact_requested_with_ties_falls_back_and_says_so():
    d = np.array([1.0, 1.0, 2.0, 3.0, -1.5, 4.0])
    res = _row(paired_change(np.zeros(6), d, wilcoxon_method="exact"), "wilcoxon")
    assert "normal approximation used" in res.method_note


def test_inputs_are_not_modified():
    before = pd.Series([1.0, np.nan, 3.0, 4.0])
    after = np.array([2.0, 3.0, np.nan, 6.0])
    b0, a0 = before.copy(), after.copy()
    paired_change(before, after)
    pd.testing.assert_series_equal(before, b0)
    np.testing.assert_array_equal(after, a0)


def test_differently_indexed_series_raise_instead_of_repairing():
    before = pd.Series([1.0, 2.0, 3.0], index=["P1", "P2", "P3"])
    after = pd.Series([2.0, 3.0, 5.0], index=["P2", "P1", "P3"])
    with pytest.raises(StatsError, match="different indexes"):
        paired_change(before, after)
    res = paired_change(before, after.reindex(before.index))
    assert res.estimate.iloc[0] == pytest.approx(np.mean([2.0, 0.0, 2.0]))


def test_exact_distribution_is_capped_for_huge_samples():
    rng = np.random.default_rng(7)
    d = rng.normal(0.2, 1, 450)
    res = _row(paired_change(np.zeros(d.size), d, wilcoxon_method="exact"), "wilcoxon")
    assert "exact distribution not computed for n > 400" in res.method_note
