"""hemiface.stats against R: every number in tests/reference/stats_reference.csv is reproduced.

The numbers come from tests/reference/stats_reference.R (base R 4.2) on the CSV
datasets beside it. Each must agree to rel 1e-4 (4 significant digits); most
agree to machine precision. R finds the normal-approximation Hodges-Lehmann
bounds with ``uniroot(tol = 1e-4)``; hemiface finds the exact step, so those
agree to R's root tolerance, which the datasets' scale keeps below rel 1e-4.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hemiface import stats

REF = Path(__file__).parents[1] / "reference"
REL = 1e-4
log = logging.getLogger(__name__)


def _reference() -> dict[tuple[str, str], float]:
    table = pd.read_csv(REF / "stats_reference.csv")
    return {(c, q): float(v) for c, q, v in table.itertuples(index=False)}


def _row(df: pd.DataFrame, test: str) -> pd.Series:
    return df.loc[df.test == test].iloc[0]


def _put(out: dict, case: str, prefix: str, row: pd.Series, *, df=True, ci=True, estimate=True) -> None:
    out[case, f"{prefix}.statistic"] = row.statistic
    if df:
        out[case, f"{prefix}.df"] = row.df
    out[case, f"{prefix}.p"] = row.p_value
    if ci:
        out[case, f"{prefix}.ci_low"] = row.ci_low
        out[case, f"{prefix}.ci_high"] = row.ci_high
        out[case, f"{prefix}.conf_level"] = row.conf_level
    if estimate:
        out[case, f"{prefix}.estimate"] = row.estimate


def _shapiro(out, case, prefix, x):
    from scipy import stats as st

    res = st.shapiro(x)
    out[case, f"{prefix}.statistic"] = res.statistic
    out[case, f"{prefix}.p"] = res.pvalue


def _ours() -> dict[tuple[str, str], float]:
    out: dict = {}
    for case in ("paired_exact", "paired_ties", "paired_large"):
        d = pd.read_csv(REF / f"{case}.csv")
        default = stats.paired_change(d.before, d.after)
        _put(out, case, "t", _row(default, "paired_t"))
        _put(out, case, "wilcox_default", _row(default, "wilcoxon"), df=False)
        for prefix, correction in (("wilcox_normal_cc", True), ("wilcox_normal", False)):
            res = stats.paired_change(d.before, d.after, wilcoxon_method="approx", correction=correction)
            _put(out, case, prefix, _row(res, "wilcoxon"), df=False)
        _shapiro(out, case, "shapiro", d.after - d.before)
        assert _row(default, "paired_t").normality_p == out[case, "shapiro.p"]

    for case in ("groups_exact", "groups_ties"):
        d = pd.read_csv(REF / f"{case}.csv")
        default = stats.compare_groups(d.value, d.group)
        _put(out, case, "welch", _row(default, "welch_t"))
        _put(out, case, "wilcox_default", _row(default, "mann_whitney"), df=False)
        for prefix, correction in (("wilcox_normal_cc", True), ("wilcox_normal", False)):
            res = stats.compare_groups(d.value, d.group, mann_whitney_method="approx", correction=correction)
            _put(out, case, prefix, _row(res, "mann_whitney"), df=False)
        for g in ("A", "B"):
            _shapiro(out, case, f"shapiro_{g}", d.value[d.group == g])

    d = pd.read_csv(REF / "ancova.csv")
    kw = stats.compare_groups(d.followup - d.baseline, d.group)
    _put(out, "ancova", "kruskal", _row(kw, "kruskal"), ci=False, estimate=False)
    res = stats.ancova(d.baseline, d.followup, d.group)
    co = res.coefficients.set_index("term")
    r_names = {"intercept": "(Intercept)", "baseline": "baseline", "group[fat]": "groupfat", "group[flap]": "groupflap"}
    for term, r_term in r_names.items():
        row = co.loc[term]
        for q, v in (("estimate", row.estimate), ("se", row.se), ("t", row.statistic), ("p", row.p_value),
                     ("ci_low", row.ci_low), ("ci_high", row.ci_high)):
            out["ancova", f"{r_term}.{q}"] = v
    out["ancova", "df_resid"] = co.loc["baseline", "df_resid"]
    out["ancova", "group.F"] = co.loc["group", "statistic"]
    out["ancova", "group.p"] = co.loc["group", "p_value"]
    checks = res.assumptions.set_index("check")
    out["ancova", "slopes.F"] = checks.loc["homogeneity_of_slopes", "statistic"]
    out["ancova", "slopes.p"] = checks.loc["homogeneity_of_slopes", "p_value"]
    out["ancova", "shapiro_resid.statistic"] = checks.loc["residual_normality", "statistic"]
    out["ancova", "shapiro_resid.p"] = checks.loc["residual_normality", "p_value"]
    two = d[d.group != "flap"]
    co2 = stats.ancova(two.baseline, two.followup, two.group).coefficients.set_index("term").loc["group[fat]"]
    for q, v in (("estimate", co2.estimate), ("se", co2.se), ("p", co2.p_value), ("ci_low", co2.ci_low),
                 ("ci_high", co2.ci_high)):
        out["ancova2", f"groupfat.{q}"] = v

    c = pd.read_csv(REF / "complications.csv")
    events, groups = [], []
    for g, k, n in c.itertuples(index=False):
        events += [True] * k + [False] * (n - k)
        groups += [g] * n
    events, groups = np.array(events), np.array(groups)
    three = stats.complications_by_group(events, groups)
    for row in three.rates.itertuples():
        if row.group != "all":
            out["complications", f"binom_{row.group}.ci_low"] = row.ci_low
            out["complications", f"binom_{row.group}.ci_high"] = row.ci_high
    for k, n in ((0, 9), (9, 9)):
        lo, hi = stats.clopper_pearson(k, n)
        out["complications", f"binom_{k}_of_{n}.ci_low"] = lo
        out["complications", f"binom_{k}_of_{n}.ci_high"] = hi
    ab = np.isin(groups, ["A", "B"])
    t2 = stats.complications_by_group(events[ab], groups[ab]).tests.iloc[0]
    out["complications", "fisher_AB.p"] = t2.p_value
    out["complications", "fisher_AB.estimate"] = t2.effect_size
    out["complications", "fisher_AB.ci_low"] = t2.ci_low
    out["complications", "fisher_AB.ci_high"] = t2.ci_high
    out["complications", "fisher_AB.conf_level"] = t2.conf_level
    out["complications", "fisher_ABC.p"] = three.tests.iloc[0].p_value
    return out


@pytest.fixture(scope="module")
def comparison():
    return _reference(), _ours()


def test_every_reference_number_is_computed(comparison):
    ref, ours = comparison
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    assert len(ref) > 150


def test_agrees_with_r_to_four_significant_digits(comparison):
    ref, ours = comparison
    errors = {}
    for key, want in ref.items():
        got = float(ours[key])
        errors[key] = abs(got - want) / abs(want) if want != 0 else abs(got)
    worst = max(errors, key=errors.get)
    log.info("compared %d numbers with R; max relative error %.2e at %s", len(ref), errors[worst], worst)
    bad = {k: (float(ours[k]), ref[k], e) for k, e in errors.items() if not e <= REL}
    assert bad == {}


def test_reference_covers_both_wilcoxon_branches():
    # The datasets exercise R's exact branch and the normal branch (ties, zeros, n >= 50).
    d = pd.read_csv(REF / "paired_exact.csv")
    assert "exact" in _row(stats.paired_change(d.before, d.after), "wilcoxon").method_note
    for case in ("paired_ties", "paired_large"):
        d = pd.read_csv(REF / f"{case}.csv")
        assert "normal" in _row(stats.paired_change(d.before, d.after), "wilcoxon").method_note
    d = pd.read_csv(REF / "paired_ties.csv")
    assert ((d.after - d.before) == 0).sum() >= 2
    d = pd.read_csv(REF / "groups_exact.csv")
    assert "exact" in _row(stats.compare_groups(d.value, d.group), "mann_whitney").method_note
    d = pd.read_csv(REF / "groups_ties.csv")
    assert "normal" in _row(stats.compare_groups(d.value, d.group), "mann_whitney").method_note
