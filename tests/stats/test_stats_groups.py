"""compare_groups: frozen columns, constructed truth, relabelling and reordering, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from hemiface.stats import GROUP_COLUMNS, PAIRED_COLUMNS, StatsError, compare_groups


def _row(df, test):
    return df.loc[df.test == test].iloc[0]


def test_columns_are_frozen():
    assert GROUP_COLUMNS == PAIRED_COLUMNS + ("comparison", "group_sizes")
    res = compare_groups([1.0, 2, 3, 4, 5, 6], list("aaabbb"))
    assert tuple(res.columns) == GROUP_COLUMNS
    assert list(res.test) == ["welch_t", "mann_whitney"]
    three = compare_groups([1.0, 2, 3, 4, 5, 6, 7, 8, 9], list("aaabbbccc"))
    assert list(three.test) == ["kruskal"]


def test_known_shift_is_recovered_exactly():
    # x = y + 3: the mean difference and the Hodges-Lehmann shift are exactly 3.
    rng = np.random.default_rng(0)
    y = rng.normal(10, 2, 12)
    x = y + 3
    res = compare_groups(np.concatenate([x, y]), ["x"] * 12 + ["y"] * 12)
    w, m = _row(res, "welch_t"), _row(res, "mann_whitney")
    assert w.estimate == pytest.approx(3) and m.estimate == pytest.approx(3)
    assert w.ci_low < 3 < w.ci_high and m.ci_low <= 3 <= m.ci_high
    assert res.comparison.iloc[0] == "x - y"
    sp = np.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2)
    assert w.effect_size == pytest.approx(3 / sp * (1 - 3 / (4 * 24 - 9)))


def test_separated_groups_have_rank_biserial_one():
    res = compare_groups([10.0, 11, 12, 13, 1, 2, 3, 4], list("aaaabbbb"))
    m = _row(res, "mann_whitney")
    assert m.statistic == 16 and m.effect_size == 1.0
    assert m.p_value == pytest.approx(2 / 70)  # exact: 2 / C(8, 4)


def test_relabelling_groups_permutes_rows_only():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 24) + np.repeat([0, 1, 2], 8)
    labels = np.repeat(["adm", "fat", "flap"], 8)
    rename = {"adm": "z_flap", "fat": "a_adm", "flap": "m_fat"}
    a = compare_groups(values, labels)
    b = compare_groups(values, [rename[x] for x in labels])
    num = ["statistic", "df", "p_value", "effect_size", "n"]
    pd.testing.assert_frame_equal(a[num], b[num])


def test_swapping_two_groups_mirrors_the_estimates():
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 1, 20), 3) + np.repeat([0, 1.5], 10)
    labels = np.repeat(["A", "B"], 10)
    ab = compare_groups(values, labels)
    ba = compare_groups(values, labels, order=["B", "A"])
    for test in ("welch_t", "mann_whitney"):
        r1, r2 = _row(ab, test), _row(ba, test)
        assert r2.p_value == pytest.approx(r1.p_value)
        assert (r2.estimate, r2.ci_low, r2.ci_high) == pytest.approx((-r1.estimate, -r1.ci_high, -r1.ci_low))
        assert r2.effect_size == pytest.approx(-r1.effect_size)
    assert ba.comparison.iloc[0] == "B - A"


def test_order_of_patients_does_not_matter():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 18)
    labels = np.repeat(["a", "b"], 9)
    p = rng.permutation(18)
    pd.testing.assert_frame_equal(compare_groups(values, labels), compare_groups(values[p], labels[p]))


def test_kruskal_matches_scipy_and_epsilon_squared():
    rng = np.random.default_rng(4)
    parts = [rng.normal(m, 1, 7) for m in (0, 0.5, 2)]
    res = _row(compare_groups(np.concatenate(parts), np.repeat(list("abc"), 7)), "kruskal")
    ref = st.kruskal(*parts)
    assert res.statistic == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    assert res.effect_size == pytest.approx(ref.statistic / (21 - 1))
    assert res.df == 2 and bool(res.selected)


@pytest.mark.parametrize("method,correction", [("exact", True), ("approx", True), ("approx", False)])
def test_mann_whitney_p_agrees_with_scipy(method, correction):
    rng = np.random.default_rng(5)
    x, y = rng.normal(0, 1, 9), rng.normal(1, 1, 11)
    res = _row(compare_groups(np.concatenate([x, y]), [0] * 9 + [1] * 11, mann_whitney_method=method,
                              correction=correction), "mann_whitney")
    ref = st.mannwhitneyu(x, y, use_continuity=correction, method="exact" if method == "exact" else "asymptotic")
    assert res.statistic == ref.statistic
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_selection_rule():
    rng = np.random.default_rng(6)
    normal = compare_groups(np.concatenate([rng.normal(0, 1, 20), rng.normal(1, 1, 20)]), np.repeat(["a", "b"], 20))
    skewed = compare_groups(np.concatenate([rng.normal(0, 1, 20), rng.lognormal(0, 1.5, 20)]),
                            np.repeat(["a", "b"], 20))
    assert list(normal.selected) == [True, False]
    assert list(skewed.selected) == [False, True]
    assert skewed.normality_p.iloc[0] < 0.05


def test_missing_values_and_labels_are_listed():
    values = pd.Series([1.0, 2, np.nan, 4, 5, 6, 7, 8], index=[f"P{i}" for i in range(8)])
    groups = ["a", "a", "a", "a", None, "b", "b", "b"]
    res = compare_groups(values, groups)
    assert (res.n == 6).all() and (res.missing_ids == "P2;P4").all()
    assert res.group_sizes.iloc[0] == "a=3; b=3"


def test_small_group_cannot_test():
    res = compare_groups([1.0, 2, 3, 4, 10], list("aaaab"))
    assert not res.selected.any()
    assert res.method_note.str.startswith("cannot test: fewer than 3 values in b").all()
    assert np.isnan(_row(res, "welch_t").p_value)  # Welch needs 2 per group
    three = compare_groups([1.0, 2, 3, 4, 5, 6, 10], list("aaabbbc"))
    assert not three.selected.any()


def test_bad_input_raises():
    with pytest.raises(StatsError, match="at least two groups"):
        compare_groups([1.0, 2, 3], ["a", "a", "a"])
    with pytest.raises(StatsError, match="values has 3 entries and groups has 2"):
        compare_groups([1.0, 2, 3], ["a", "b"])
    with pytest.raises(StatsError, match="order must list each group"):
        compare_groups([1.0, 2, 3, 4], list("aabb"), order=["a", "c"])
