"""Agreement between raters against R (tests/reference/agreement_reference.csv), published values,
hand-computed cases, invariances, missing ratings and bad input.

The reference numbers come from tests/reference/agreement_reference.R: psych::ICC (R 4.2, psych
2.2.9) for the ICC, vcd::Kappa for Cohen's kappa with its ASE and interval, and, written in the
script from their published formulas, Fleiss' kappa with its null standard error and the null
standard error of Cohen's kappa. Each must agree to 4 decimals and 4 significant digits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hemiface.stats import (
    AGREEMENT_COLUMNS,
    AGREEMENT_MEASURES,
    ICC_FORMS,
    StatsError,
    fleiss_kappa,
    icc,
    rater_agreement,
    weighted_kappa,
)

REF = Path(__file__).parents[1] / "reference"
log = logging.getLogger(__name__)
ABS = 5e-5  # four decimals
REL = 1e-4  # four significant digits


def _data(case: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{case}.csv", index_col="subject")


@pytest.fixture(scope="module")
def ours() -> dict[tuple[str, str], float]:
    out: dict = {}
    for case in ("agreement_shrout_fleiss", "agreement_two_raters", "agreement_three_raters", "agreement_five_point",
                 "agreement_negative_icc"):
        res = icc(_data(case))
        for r in res.itertuples():
            for name, value in (("estimate", r.estimate), ("F", r.statistic), ("df1", r.df1), ("df2", r.df2),
                                ("p", r.p_value), ("ci_low", r.ci_low), ("ci_high", r.ci_high)):
                out[case, f"{r.form}.{name}"] = value
        out[case, "icc.n_subjects"] = res.n_subjects.iloc[0]
    kappa_cases = {"agreement_two_raters": (_data("agreement_two_raters"), range(-2, 3)),
                   "agreement_three_raters_r1r2": (_data("agreement_three_raters")[["r1", "r2"]], range(-2, 3)),
                   "agreement_five_point_r1r4": (_data("agreement_five_point")[["r1", "r4"]], range(1, 6)),
                   "agreement_kappa_high": (_data("agreement_kappa_high"), range(1, 5)),
                   "agreement_kappa_low": (_data("agreement_kappa_low"), range(1, 3))}
    for case, (d, cats) in kappa_cases.items():
        res = weighted_kappa(d, categories=cats, weights=("unweighted", "linear", "quadratic"))
        for r in res.itertuples():
            for name, value in (("estimate", r.estimate), ("se", r.se), ("ci_low", r.ci_low),
                                ("ci_high", r.ci_high), ("z", r.statistic), ("p", r.p_value)):
                out[case, f"{r.form}.{name}"] = value
        out[case, "kappa.n_subjects"] = res.n_subjects.iloc[0]
    for case in ("agreement_three_raters", "agreement_five_point", "agreement_fleiss_wikipedia",
                 "agreement_shrout_fleiss"):
        r = fleiss_kappa(_data(case)).iloc[0]
        out[case, "fleiss.estimate"], out[case, "fleiss.se"] = r.estimate, r.se
        out[case, "fleiss.z"], out[case, "fleiss.p"] = r.statistic, r.p_value
        out[case, "fleiss.n_subjects"] = r.n_subjects
    return out


#: R numbers that are not what their name says, and that hemiface reports as NaN (with the reason) instead:
#: psych's ICC(2,k) lower "bound" of the negative-ICC case is ICC(2,1)'s lower bound (-0.545, below
#: -1/(k-1) = -0.5) carried past the pole of the Spearman-Brown step, and lies above its own estimate (-6).
R_NOT_A_BOUND = {("agreement_negative_icc", "ICC(2,k).ci_low"): ("agreement_negative_icc", "ICC(2,k).estimate")}


def test_every_reference_number_is_reproduced(ours):
    ref = pd.read_csv(REF / "agreement_reference.csv")
    ref = {(c, q): float(v) for c, q, v in ref.itertuples(index=False)}
    assert set(ref) == set(ours), (sorted(set(ref) - set(ours)), sorted(set(ours) - set(ref)))
    for key, estimate in R_NOT_A_BOUND.items():
        assert ref[key] > ref[estimate] and np.isnan(ours[key])  # R's lower bound above its estimate; ours NaN
    worst_abs = worst_rel = 0.0
    bad = []
    for key, expected in ref.items():
        if key in R_NOT_A_BOUND:
            continue
        got = float(ours[key])
        diff = abs(got - expected)
        rel = diff / abs(expected) if expected else diff
        worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, rel)
        if not (diff <= ABS and (rel <= REL or diff <= 1e-12)):
            bad.append((key, got, expected))
    log.info("agreement vs R: %d numbers, max abs difference %.2g, max rel difference %.2g",
             len(ref), worst_abs, worst_rel)
    assert not bad, bad


def test_published_values():
    """Shrout & Fleiss (1979) Table 4 and the Wikipedia worked example of Fleiss' kappa, as printed."""
    sf = icc(_data("agreement_shrout_fleiss")).set_index("form").estimate
    assert sf.round(2).to_dict() == {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71, "ICC(1,k)": 0.44,
                                     "ICC(2,k)": 0.62, "ICC(3,k)": 0.91}
    assert round(fleiss_kappa(_data("agreement_fleiss_wikipedia")).estimate.item(), 3) == 0.210


def test_columns_forms_and_description_are_frozen():
    assert AGREEMENT_COLUMNS == (
        "measure", "form", "description", "estimate", "se", "ci_low", "ci_high", "conf_level", "statistic",
        "statistic_name", "df1", "df2", "p_value", "n_subjects", "n_raters", "n_categories", "n_missing",
        "missing_ids", "method_note",
    )
    assert AGREEMENT_MEASURES == ("icc", "weighted_kappa", "fleiss_kappa")
    assert tuple(ICC_FORMS) == ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")
    two = rater_agreement(_data("agreement_two_raters"), categories=range(-2, 3))
    assert tuple(two.columns) == AGREEMENT_COLUMNS
    assert list(two.measure) == ["icc"] * 6 + ["weighted_kappa"] * 2
    assert list(two.form) == list(ICC_FORMS) + ["linear", "quadratic"]
    row = two.set_index("form").loc["ICC(2,1)"]
    assert row.description.startswith("two-way random effects, absolute agreement, single rater")
    assert "ICC(A,1)" in row.description and row.conf_level == 0.95 and row.statistic_name == "F"
    assert row.n_missing == 1 and row.missing_ids == "s07" and row.n_subjects == 39 and row.n_raters == 2
    many = rater_agreement(_data("agreement_five_point"))
    assert list(many.measure) == ["icc"] * 6 + ["fleiss_kappa"]
    assert many.iloc[-1].n_raters == 4 and np.isnan(many.iloc[-1].ci_low)


def test_icc_invariances_and_what_tells_the_forms_apart():
    d = _data("agreement_five_point").astype(float)
    base = icc(d).set_index("form").estimate
    # the same answer with subjects and raters reordered, and on another origin and unit of the scale
    shuffled = d.sample(frac=1, random_state=1)[["r3", "r1", "r4", "r2"]]
    pd.testing.assert_series_equal(icc(shuffled).set_index("form").estimate, base)
    pd.testing.assert_series_equal(icc(10 + 2.5 * d).set_index("form").estimate, base)
    # one rater more severe by a constant: consistency (ICC 3) unchanged, absolute agreement (ICC 1, 2) lower
    harsher = d.assign(r4=d.r4 - 2)
    moved = icc(harsher).set_index("form").estimate
    assert moved["ICC(3,1)"] == pytest.approx(base["ICC(3,1)"], abs=1e-12)
    assert moved["ICC(3,k)"] == pytest.approx(base["ICC(3,k)"], abs=1e-12)
    assert moved["ICC(2,1)"] < base["ICC(2,1)"] - 0.05 and moved["ICC(1,1)"] < base["ICC(1,1)"] - 0.05
    # raters who agree exactly: every form is 1
    same = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [1.0, 2, 3, 4, 5]})
    np.testing.assert_allclose(icc(same).estimate, 1.0)


def test_kappa_hand_computed_symmetric_and_perfect():
    # linear weights on 1..5: observed disagreement 0.05, chance 0.41 (worked by hand): 1 - 0.05/0.41
    pairs = [[1, 1], [2, 2], [3, 2], [4, 4], [5, 5]]
    res = weighted_kappa(pairs, categories=range(1, 6), weights=("unweighted", "linear", "quadratic"))
    lin = res.set_index("form").loc["linear"]
    assert lin.estimate == pytest.approx(1 - 0.05 / 0.41, abs=1e-12)
    # unweighted: agreement 4/5, chance sum(p_a * p_b) = 0.2 * (0.2 + 0.4 + 0 + 0.2 + 0.2) = 0.2
    assert res.set_index("form").loc["unweighted"].estimate == pytest.approx((0.8 - 0.2) / (1 - 0.2), abs=1e-12)
    swapped = weighted_kappa([p[::-1] for p in pairs], categories=range(1, 6), weights=("unweighted", "linear",
                                                                                          "quadratic"))
    np.testing.assert_allclose(swapped.estimate, res.estimate, atol=1e-12)
    np.testing.assert_allclose(swapped.se, res.se, atol=1e-12)
    perfect = weighted_kappa([[1, 1], [2, 2], [3, 3], [2, 2]])
    np.testing.assert_allclose(perfect.estimate, 1.0)
    # an unused middle category widens the distance between its neighbours: the scale matters
    gap = [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]
    full = weighted_kappa(gap, categories=[1, 2, 3], weights="linear").estimate.item()
    observed = weighted_kappa(gap, weights="linear").estimate.item()
    assert full == pytest.approx(observed)  # linear: the gap scales all distances alike
    with_end = weighted_kappa([[1, 1], [2, 3], [3, 3], [2, 2]], categories=[1, 2, 3, 4], weights="linear")
    assert with_end.n_categories.item() == 4
    assert with_end.estimate.item() == pytest.approx(
        weighted_kappa([[1, 1], [2, 3], [3, 3], [2, 2]], categories=[1, 2, 3], weights="linear").estimate.item())


def test_fleiss_hand_computed_and_rater_order_free():
    # P_i = 1, 1, 1/3, 1; p = (4, 5, 3)/12: kappa = (5/6 - 50/144) / (1 - 50/144)
    x = [[1, 1, 1], [2, 2, 2], [1, 2, 2], [3, 3, 3]]
    res = fleiss_kappa(x).iloc[0]
    assert res.estimate == pytest.approx((5 / 6 - 50 / 144) / (1 - 50 / 144), abs=1e-12)
    assert fleiss_kappa([r[::-1] for r in x]).estimate.item() == pytest.approx(res.estimate, abs=1e-12)
    assert fleiss_kappa(x, categories=[1, 2, 3, 4]).estimate.item() == pytest.approx(res.estimate, abs=1e-12)
    assert res.n_categories == 3 and fleiss_kappa(x, categories=[1, 2, 3, 4]).n_categories.item() == 4


def test_kappa_intervals_are_capped_to_its_range_as_in_r():
    """kappa +/- z SE passes 1 (near-perfect agreement of 12 pairs) and -1 (10 pairs mostly opposite); vcd's
    confint caps both, and so does hemiface (the values themselves are in the reference test)."""
    high = weighted_kappa(_data("agreement_kappa_high"), categories=range(1, 5),
                          weights=("unweighted", "linear", "quadratic"))
    assert (high.estimate + 1.959963984540054 * high.se > 1).all() and (high.ci_high == 1).all()
    assert (high.ci_low < high.estimate).all() and high.method_note.str.contains("capped to \\[-1, 1\\]").all()
    low = weighted_kappa(_data("agreement_kappa_low"), categories=[1, 2], weights="unweighted").iloc[0]
    assert low.estimate - 1.959963984540054 * low.se < -1 and low.ci_low == -1 and low.ci_high < -0.4
    assert "lower -1.164" in low.method_note
    untouched = weighted_kappa(_data("agreement_two_raters"), categories=range(-2, 3))
    assert not untouched.method_note.str.contains("capped").any()
    rng = np.random.default_rng(5)  # small random panels: never a bound outside [-1, 1]
    for _ in range(15):
        a = rng.integers(1, 4, 6)
        pairs = np.c_[a, np.where(rng.random(6) < 0.8, a, rng.integers(1, 4, 6))]
        res = weighted_kappa(pairs, categories=[1, 2, 3], weights=("unweighted", "linear", "quadratic"))
        ok = res.ci_low.notna()
        assert ((res.ci_low[ok] >= -1) & (res.ci_high[ok] <= 1) & (res.ci_low[ok] <= res.estimate[ok])).all()


def test_icc_intervals_the_f_formulas_leave_undefined_are_nan_with_the_reason():
    neg = icc(_data("agreement_negative_icc")).set_index("form")
    assert (neg.estimate < 0).all()  # raters who disagree more than chance
    two_k = neg.loc["ICC(2,k)"]
    assert np.isnan(two_k.ci_low) and two_k.ci_high == pytest.approx(0.1455275, abs=5e-7)  # R's upper bound
    assert "lower bound undefined: ICC(2,1)'s is -0.5451, at or below -1/(k-1) = -0.5" in two_k.method_note
    assert "(the formula gives 18.15)" in two_k.method_note
    others = neg.drop(index="ICC(2,k)")  # negative, yet their intervals are defined (and R's, reference test)
    assert (others.ci_low < others.estimate).all() and (others.estimate < others.ci_high).all()
    assert not others.method_note.str.contains("undefined").any()
    # every subject's mean the same (MS_R = 0): no interval; ICC(2,1) = -8/7 lies below the pole -1, so ICC(2,k)
    # is undefined (psych prints 16 for it, and NaN intervals for ICC(2,·) only)
    flat_means = icc([[1, 5], [2, 4], [3, 3], [4, 2], [5, 1], [1, 5], [2, 4]]).set_index("form")
    assert flat_means.ci_low.isna().all() and flat_means.ci_high.isna().all()
    assert flat_means.loc["ICC(2,1)"].estimate == pytest.approx(-8 / 7)
    assert "every subject's mean rating is the same (F = 0)" in flat_means.loc["ICC(1,1)"].method_note
    assert np.isnan(flat_means.loc["ICC(2,k)"].estimate)
    assert flat_means.loc["ICC(2,k)"].method_note.startswith("cannot compute: ICC(2,1) = -1.143 is at or below")


def test_too_little_to_compute_says_so():
    one = icc([[1, 2], [np.nan, 3]])
    assert (one.n_subjects == 1).all() and one.estimate.isna().all()
    assert one.method_note.str.startswith("cannot compute").all() and (one.missing_ids == "1").all()
    flat = icc([[3, 3], [3, 3], [3, 3]])
    assert flat.estimate.isna().all() and flat.method_note.str.contains("same").all()
    k = weighted_kappa([[2, 2], [2, 2], [2, 2]], weights="linear")
    assert np.isnan(k.estimate.item()) and k.method_note.item().startswith("cannot compute")
    f = fleiss_kappa([[1, 1, 1], [1, 1, 1]])
    assert np.isnan(f.estimate.item()) and f.method_note.item().startswith("cannot compute")


@pytest.mark.parametrize("call, match", [
    (lambda: icc([[1], [2], [3]]), "at least 2 raters"),
    (lambda: icc([1, 2, 3]), "2-D"),
    (lambda: icc([["a", "b"], ["c", "d"]]), "numbers"),
    (lambda: icc([[1, np.inf], [2, 3]]), "infinite"),
    (lambda: weighted_kappa([[1, 2, 3], [1, 2, 3]]), "two raters"),
    (lambda: weighted_kappa([[1, 7], [2, 2]], categories=range(1, 6)), r"ratings \[7.0\] are not among"),
    (lambda: weighted_kappa([[1, 1], [2, 2]], weights="cubic"), "weights must be one of"),
    (lambda: weighted_kappa([[1, 1], [2, 2]], alpha=1.5), "alpha"),
    (lambda: fleiss_kappa([[1, 1], [2, 2]], categories=[1, 1, 2]), "distinct"),
])
def test_bad_input_raises_one_clear_error(call, match):
    with pytest.raises((StatsError, ValueError), match=match):
        call()


def test_the_report_table_says_where_an_interval_is_undefined():
    """The journal table of the panel's agreement shows the defined intervals and marks an undefined one."""
    from hemiface.report._rating import rating_table_agreement

    agreement = rater_agreement(_data("agreement_negative_icc")).assign(round_id=1, round="r", scale="comparison_5")
    table = rating_table_agreement({"rating_agreement": agreement}, dict(round_id=1, n_raters=3))
    cells = {m.split(", ", 1)[0]: v for m, v in zip(table.table.Measure, table.table.iloc[:, 1])}
    assert cells["ICC(2,1)"] == "\u22120.40 (\u22120.55 to 0.05)"  # typographic minus
    assert cells["ICC(2,k)"] == "\u22126.00 (interval not defined)\u1d43"
    assert any(note.startswith("\u1d43 The F-based interval is not defined here") for note in table.footnotes)


@pytest.mark.parametrize("case", ["agreement_shrout_fleiss", "agreement_two_raters", "agreement_three_raters",
                                  "agreement_five_point", "agreement_negative_icc"])
def test_icc_is_pingouins_intraclass_corr(case):
    """hemiface's closed-form ANOVA gives pingouin.intraclass_corr's numbers (pingouin: a test dependency)."""
    pingouin = pytest.importorskip("pingouin")
    d = _data(case).dropna()
    long = d.reset_index().melt(id_vars="subject", var_name="rater", value_name="rating")
    saved = pingouin.options.get("round.column.CI95")
    pingouin.options["round.column.CI95"] = None
    try:
        theirs = pingouin.intraclass_corr(long, targets="subject", raters="rater", ratings="rating")
    finally:
        pingouin.options["round.column.CI95"] = saved
    ours = icc(d)
    np.testing.assert_allclose(ours.estimate, theirs.ICC, rtol=1e-10)
    np.testing.assert_allclose(ours.statistic, theirs.F, rtol=1e-10)
    np.testing.assert_allclose(ours.p_value, theirs.pval, rtol=1e-9)
    np.testing.assert_allclose(ours.df2, theirs.df2)
    bounds = np.vstack(theirs.CI95.to_numpy())
    for got, expected in ((ours.ci_low, bounds[:, 0]), (ours.ci_high, bounds[:, 1])):
        defined = got.notna().to_numpy()  # ours is NaN only where it says the bound is undefined
        np.testing.assert_allclose(got[defined], expected[defined], rtol=1e-10)
        assert ours.method_note[~defined].str.contains("undefined|no interval").all()
