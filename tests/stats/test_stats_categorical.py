"""Complication rates: Clopper-Pearson intervals, Fisher and Fisher-Freeman-Halton tests, missing outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

import hemiface.stats._categorical as cat
from hemiface.stats import RATE_COLUMNS, RATE_TEST_COLUMNS, StatsError, clopper_pearson, complications_by_group


def _events(counts):
    e, g = [], []
    for name, k, n in counts:
        e += [True] * k + [False] * (n - k)
        g += [name] * n
    return np.array(e, dtype=object), np.array(g)


def test_columns_are_frozen():
    assert RATE_COLUMNS == ("outcome", "group", "n", "n_missing", "missing_ids", "events", "rate", "ci_low",
                            "ci_high", "conf_level")
    assert RATE_TEST_COLUMNS == ("outcome", "test", "p_value", "effect_size", "effect_size_name", "ci_low", "ci_high",
                                 "conf_level", "comparison", "n", "n_missing", "missing_ids", "method_note")
    res = complications_by_group(*_events([("a", 1, 5), ("b", 3, 6)]))
    assert tuple(res.rates.columns) == RATE_COLUMNS and tuple(res.tests.columns) == RATE_TEST_COLUMNS


def test_rates_and_clopper_pearson_bounds():
    res = complications_by_group(*_events([("a", 0, 8), ("b", 8, 8), ("c", 3, 12)]), outcome="infection")
    r = res.rates.set_index("group")
    assert list(r.index) == ["a", "b", "c", "all"]
    assert r.loc["a", "ci_low"] == 0 and r.loc["b", "ci_high"] == 1
    assert r.loc["a", "ci_high"] == pytest.approx(1 - 0.025 ** (1 / 8))  # closed form when k = 0
    assert r.loc["all", "events"] == 11 and r.loc["all", "n"] == 28
    assert r.loc["c", "rate"] == 0.25 and (res.rates.outcome == "infection").all()
    assert res.tests.test.iloc[0] == "fisher_freeman_halton"


def test_two_groups_use_fisher_exact():
    e, g = _events([("a", 2, 12), ("b", 7, 10)])
    t = complications_by_group(e, g).tests.iloc[0]
    assert t.test == "fisher_exact" and t.comparison == "a vs b"
    assert t.p_value == pytest.approx(st.fisher_exact([[2, 10], [7, 3]]).pvalue)
    assert t.effect_size < 1 and t.ci_low < t.effect_size < t.ci_high


def test_freeman_halton_reduces_to_fisher_for_two_groups():
    for counts, sizes in (([2, 7], [12, 10]), ([0, 5], [6, 9]), ([3, 3], [10, 10])):
        p, how = cat.freeman_halton_k_by_2(counts, sizes)
        table = [[counts[0], sizes[0] - counts[0]], [counts[1], sizes[1] - counts[1]]]
        assert how == "exact" and p == pytest.approx(st.fisher_exact(table).pvalue, rel=1e-9)


def test_monte_carlo_fallback_is_close_to_exact(monkeypatch):
    exact, _ = cat.freeman_halton_k_by_2([2, 7, 1, 4], [12, 10, 9, 11])
    monkeypatch.setattr(cat, "MAX_EXACT_TABLES", 10)
    mc, how = cat.freeman_halton_k_by_2([2, 7, 1, 4], [12, 10, 9, 11])
    assert how == "monte_carlo" and mc == pytest.approx(exact, abs=0.01)


def test_unknown_outcomes_are_excluded_and_listed():
    e = np.array([True, None, False, True, np.nan, False], dtype=object)
    g = ["a", "a", "a", "b", "b", "b"]
    res = complications_by_group(e, g, ids=["P1", "P2", "P3", "P4", "P5", "P6"])
    r = res.rates.set_index("group")
    assert r.loc["a", "n"] == 2 and r.loc["a", "missing_ids"] == "P2"
    assert r.loc["all", "missing_ids"] == "P2;P5"
    assert res.tests.n.iloc[0] == 4 and res.tests.missing_ids.iloc[0] == "P2;P5"


def test_clopper_pearson_of_nothing_is_nan():
    assert np.isnan(clopper_pearson(0, 0)).all()


def test_bad_input_raises():
    with pytest.raises(StatsError, match="True/False"):
        complications_by_group(["yes", "no"], ["a", "b"])
    with pytest.raises(StatsError, match="at least two groups"):
        complications_by_group([True, False], ["a", "a"])
