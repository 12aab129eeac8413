"""ANCOVA of the follow-up value adjusted for baseline: the sensitivity analysis of the between-group comparison."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as _st

from ._common import (
    as_float_array, blank_row, check_aligned, check_alpha, fmt, frame, group_labels, group_order, join_ids,
    object_series, resolve_ids,
)
from ._errors import StatsError

#: Columns of :attr:`AncovaResult.coefficients` (frozen: a tested constant).
ANCOVA_COLUMNS = (
    "term",
    "estimate",
    "se",
    "statistic",
    "statistic_name",
    "df",
    "df_resid",
    "p_value",
    "ci_low",
    "ci_high",
    "conf_level",
    "n",
    "n_missing",
    "missing_ids",
    "method_note",
)

#: Columns of :attr:`AncovaResult.assumptions` (frozen: a tested constant).
ANCOVA_ASSUMPTION_COLUMNS = ("check", "statistic", "statistic_name", "df", "df_resid", "p_value", "passed", "method_note")

#: Values of the ``check`` column, in row order.
ANCOVA_CHECKS = ("residual_normality", "homogeneity_of_slopes", "equal_residual_variance")


@dataclass(frozen=True)
class AncovaResult:
    """Coefficients (one row per model term plus the omnibus group test) and assumption checks."""

    coefficients: pd.DataFrame
    assumptions: pd.DataFrame

    def to_dict(self) -> dict:
        return {"coefficients": self.coefficients, "assumptions": self.assumptions}


def _design(x: np.ndarray, g: np.ndarray, levels: list[str], *, interaction: bool) -> np.ndarray:
    cols = [np.ones_like(x), x]
    dummies = [(g == lev).astype(float) for lev in levels[1:]]
    cols += dummies
    if interaction:
        cols += [x * dmy for dmy in dummies]
    return np.column_stack(cols)


def ancova(
    baseline,
    followup,
    groups,
    *,
    order=None,
    alpha: float = 0.05,
    assumption_alpha: float = 0.05,
    ids=None,
) -> AncovaResult:
    r"""Follow-up value by group, adjusted for the baseline value (ordinary least squares).

    The model is R's ``lm(followup ~ baseline + group)``, i.e. statsmodels'
    ``followup ~ baseline + C(group)`` with treatment coding:

    .. math:: y_i = \beta_0 + \beta_1 x_i + \sum_{g \ne \mathrm{ref}} \gamma_g [G_i = g] + \varepsilon_i

    where :math:`x` is the baseline and :math:`y` the follow-up value. The
    reference group is ``order[0]`` (default: the first label in sorted order),
    so ``group[g]`` is the adjusted mean difference :math:`\gamma_g` of group g
    minus the reference. With a baseline covariate this is equivalent to
    analysing the change adjusted for baseline.

    Parameters
    ----------
    baseline, followup : array-like of float, shape (n,)
        NaN marks missing; a patient missing either is excluded and listed.
    groups : array-like, shape (n,)
        Group labels; at least two distinct.
    order : sequence of str, optional
        Group order; the first is the reference.
    alpha : float
        Confidence intervals at level ``1 - alpha``.
    assumption_alpha : float
        An assumption check "passes" when its p is at or above this.
    ids : sequence of str, optional
        Patient ids for ``missing_ids``.

    Returns
    -------
    AncovaResult
        ``coefficients`` (columns :data:`ANCOVA_COLUMNS`): rows ``intercept``,
        ``baseline``, ``group[<g>]`` for each non-reference group (t tests on
        ``df_resid`` = n - k - 1 degrees of freedom) and ``group`` (omnibus F
        test of all group terms, ``df`` = k - 1).
        ``assumptions`` (columns :data:`ANCOVA_ASSUMPTION_COLUMNS`), rows
        :data:`ANCOVA_CHECKS`: Shapiro-Wilk on the residuals; the F test of the
        ``baseline:group`` interaction added to the model (homogeneity of
        regression slopes); Levene's test (Brown-Forsythe, median-centred) of
        the residuals across groups.

    Raises
    ------
    StatsError
        On unequal lengths or fewer than two group labels.
    """
    alpha = check_alpha("alpha", alpha)
    assumption_alpha = check_alpha("assumption_alpha", assumption_alpha)
    check_aligned(baseline=baseline, followup=followup, groups=groups)
    x = as_float_array("baseline", baseline)
    y = as_float_array("followup", followup)
    gs = object_series(groups)
    if not (x.size == y.size == gs.size):
        raise StatsError(f"baseline ({x.size}), followup ({y.size}) and groups ({gs.size}) must have equal lengths")
    labels = resolve_ids(ids, x.size, baseline, followup, groups)
    g, g_ok = group_labels(gs)
    present = sorted({s for s, ok in zip(g, g_ok) if ok})
    order = group_order(present, order, "ancova")
    ok = np.isfinite(x) & np.isfinite(y) & g_ok
    missing = [labels[i] for i in np.flatnonzero(~ok)]
    x, y, g = x[ok], y[ok], g[ok]
    levels = [lev for lev in order if np.any(g == lev)]
    n = int(x.size)
    conf = 1 - alpha
    common = dict(n=n, n_missing=len(missing), missing_ids=join_ids(missing), conf_level=conf)
    terms = ["intercept", "baseline"] + [f"group[{lev}]" for lev in order[1:]] + ["group"]
    k = len(levels)
    dropped = [lev for lev in order if lev not in levels]
    problem = None
    if k < 2:
        problem = "cannot fit: fewer than two groups have complete baseline and follow-up values"
    elif n - (k + 1) < 1:
        problem = f"cannot fit: n = {n} leaves no residual degrees of freedom for {k + 1} parameters"
    elif np.ptp(x) == 0:
        problem = "cannot fit: the baseline does not vary"
    if problem is not None:
        rows = [blank_row(ANCOVA_COLUMNS, term=t, method_note=problem, **common) for t in terms]
        checks = [blank_row(ANCOVA_ASSUMPTION_COLUMNS, check=c, passed=None, method_note=problem) for c in ANCOVA_CHECKS]
        return AncovaResult(frame(rows, ANCOVA_COLUMNS), frame(checks, ANCOVA_ASSUMPTION_COLUMNS))

    fit = sm.OLS(y, _design(x, g, levels, interaction=False)).fit()
    reduced = sm.OLS(y, _design(x, g, levels[:1], interaction=False)).fit()
    ci = fit.conf_int(alpha)
    note = "OLS followup ~ baseline + C(group), treatment coding, reference " + levels[0]
    if dropped:
        note += f"; no complete cases in {', '.join(dropped)}"
    rows = []
    fitted_terms = ["intercept", "baseline"] + [f"group[{lev}]" for lev in levels[1:]]
    for j, term in enumerate(fitted_terms):
        rows.append(blank_row(ANCOVA_COLUMNS, term=term, estimate=float(fit.params[j]), se=float(fit.bse[j]),
                              statistic=float(fit.tvalues[j]), statistic_name="t", df=float(fit.df_resid),
                              df_resid=float(fit.df_resid), p_value=float(fit.pvalues[j]),
                              ci_low=float(ci[j, 0]), ci_high=float(ci[j, 1]), method_note=note, **common))
    for lev in dropped:
        rows.append(blank_row(ANCOVA_COLUMNS, term=f"group[{lev}]", method_note=f"no complete cases in {lev}", **common))
    f_val, p_val, df_diff = fit.compare_f_test(reduced)
    rows.append(blank_row(ANCOVA_COLUMNS, term="group", statistic=float(f_val), statistic_name="F", df=float(df_diff),
                          df_resid=float(fit.df_resid), p_value=float(p_val),
                          method_note="omnibus F test of the group terms (model with vs without group)", **common))
    order_index = {t: i for i, t in enumerate(terms)}
    rows.sort(key=lambda r: order_index[r["term"]])
    return AncovaResult(frame(rows, ANCOVA_COLUMNS), _assumptions(fit, x, y, g, levels, assumption_alpha))


def _assumptions(fit, x, y, g, levels, a) -> pd.DataFrame:
    resid = np.asarray(fit.resid)
    rows = []
    r = blank_row(ANCOVA_ASSUMPTION_COLUMNS, check="residual_normality", statistic_name="W", passed=None)
    if resid.size >= 3 and np.ptp(resid) > 0:
        sw = _st.shapiro(resid)
        r.update(statistic=float(sw.statistic), p_value=float(sw.pvalue), passed=bool(sw.pvalue >= a),
                 method_note="Shapiro-Wilk on the model residuals")
    else:
        r["method_note"] = "cannot test: fewer than 3 residuals or all equal"
    rows.append(r)

    r = blank_row(ANCOVA_ASSUMPTION_COLUMNS, check="homogeneity_of_slopes", statistic_name="F", passed=None)
    n_int = 2 * len(levels)
    if x.size - n_int >= 1:
        full = sm.OLS(y, _design(x, g, levels, interaction=True)).fit()
        if full.df_model < n_int - 1:
            r["method_note"] = "cannot test: the baseline does not vary within some group"
        else:
            f_val, p_val, df_diff = full.compare_f_test(fit)
            r.update(statistic=float(f_val), df=float(df_diff), df_resid=float(full.df_resid), p_value=float(p_val),
                     passed=bool(p_val >= a), method_note="F test of the baseline:group interaction")
    else:
        r["method_note"] = "cannot test: too few patients for the interaction model"
    rows.append(r)

    r = blank_row(ANCOVA_ASSUMPTION_COLUMNS, check="equal_residual_variance", statistic_name="F", passed=None)
    parts = [resid[g == lev] for lev in levels]
    if all(p.size >= 2 for p in parts):
        lv = _st.levene(*parts, center="median")
        r.update(statistic=float(lv.statistic), df=float(len(parts) - 1), df_resid=float(resid.size - len(parts)),
                 p_value=float(lv.pvalue), passed=bool(lv.pvalue >= a),
                 method_note="Levene (Brown-Forsythe, median-centred) on the residuals by group")
    else:
        r["method_note"] = "cannot test: a group has fewer than 2 residuals"
    rows.append(r)
    for row in rows:
        if row["passed"] is not None and isinstance(row["method_note"], str):
            row["method_note"] += f"; passes when p >= {fmt(a)}"
    return frame(rows, ANCOVA_ASSUMPTION_COLUMNS)
