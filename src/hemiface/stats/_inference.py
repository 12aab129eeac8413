"""Within-group (paired) and between-group tests with the plan's selection rule.

Both functions compute every test the plan considers, one row each, and mark
the one the plan selects. The rule, written once here and in the docstrings:

* fewer than ``min_n`` (3) observations in the sample or in any group: normality
  cannot be assessed (Shapiro-Wilk needs 3) and no test is selected; the rows
  say ``cannot test`` and why, and hold whatever is still computable;
* paired: Shapiro-Wilk on the paired differences; p >= ``normality_alpha``
  selects the paired t test, otherwise the Wilcoxon signed-rank test;
* two groups: Shapiro-Wilk in every group; all p >= ``normality_alpha`` selects
  Welch's t test, otherwise the Mann-Whitney U test;
* more than two groups: the Kruskal-Wallis test (the ANCOVA is the parametric
  sensitivity analysis).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats as _st

from ._common import (
    as_float_array, blank_row, check_aligned, check_alpha, check_method, fmt, frame, group_order, join_ids,
    object_series, resolve_ids,
)
from ._errors import StatsError
from ._ranks import (
    rank_sum_exact_p,
    rank_sum_shift,
    rank_sum_z,
    signed_rank_exact_p,
    signed_rank_shift,
    signed_rank_z,
)

logger = logging.getLogger("hemiface")

#: Columns of :func:`paired_change` (frozen: a tested constant).
PAIRED_COLUMNS = (
    "test",
    "selected",
    "statistic",
    "statistic_name",
    "df",
    "p_value",
    "estimate",
    "estimate_name",
    "ci_low",
    "ci_high",
    "conf_level",
    "effect_size",
    "effect_size_name",
    "n",
    "n_missing",
    "missing_ids",
    "normality_p",
    "method_note",
)

#: Columns of :func:`compare_groups` (frozen: a tested constant).
GROUP_COLUMNS = PAIRED_COLUMNS + ("comparison", "group_sizes")

#: Values of the ``test`` column.
TESTS = ("paired_t", "wilcoxon", "welch_t", "mann_whitney", "kruskal")

#: Smallest sample (or group) on which a test is selected; Shapiro-Wilk needs 3.
MIN_N = 3
#: Largest n for which ``wilcoxon_method="exact"`` computes the exact signed-rank distribution.
MAX_EXACT_SIGNED_RANK = 400
#: Largest n1 * n2 for which ``mann_whitney_method="exact"`` computes the exact rank-sum distribution.
MAX_EXACT_RANK_SUM = 10_000


def _shapiro(x: np.ndarray) -> float:
    """Shapiro-Wilk p, NaN when it cannot be computed (n < 3 or all values equal)."""
    if x.size < 3 or np.ptp(x) == 0:
        return np.nan
    return float(_st.shapiro(x).pvalue)


def _two_sided_normal_p(z: float) -> float:
    return float(2 * _st.norm.sf(abs(z))) if np.isfinite(z) else np.nan


def _has_ties(x: np.ndarray) -> bool:
    return np.unique(x).size != x.size


# ----------------------------------------------------------------------------- paired
def paired_change(
    before,
    after,
    *,
    alpha: float = 0.05,
    normality_alpha: float = 0.05,
    wilcoxon_method: str = "auto",
    correction: bool = True,
    ids=None,
) -> pd.DataFrame:
    r"""Change from ``before`` to ``after`` within one group: paired t and Wilcoxon signed-rank.

    The paired difference is :math:`d_i = \mathrm{after}_i - \mathrm{before}_i`,
    so a positive estimate means the value increased.

    Parameters
    ----------
    before, after : array-like of float, shape (n,)
        Paired measurements, the same patient at the same position. NaN (or None)
        marks a missing value; a pair with a NaN on either side is excluded and
        listed in ``missing_ids``.
    alpha : float
        Confidence intervals are at level ``1 - alpha`` (two-sided).
    normality_alpha : float
        Shapiro-Wilk p at or above this selects the paired t test.
    wilcoxon_method : {"auto", "exact", "approx"}
        As R's ``exact=NULL/TRUE/FALSE``: "auto" uses the exact null
        distribution when there are fewer than 50 nonzero differences and no
        ties or zeros; "exact" does whenever there are no ties or zeros (else
        falls back, as R does, and says so); "approx" always uses the normal
        approximation.
    correction : bool
        Continuity correction of the normal approximation (R's ``correct``).
    ids : sequence of str, optional
        Labels of the pairs (patient ids) used in ``missing_ids``; defaults to
        the index of ``before`` when it is a pandas Series, else 0..n-1.

    Returns
    -------
    pandas.DataFrame
        Two rows, ``test`` = "paired_t" and "wilcoxon", columns
        :data:`PAIRED_COLUMNS`. ``selected`` is True on at most one row.

        *paired_t*: :math:`t = \bar d / (s_d/\sqrt n)`, ``df`` = n - 1;
        ``estimate`` is the mean change :math:`\bar d` with the t interval
        :math:`\bar d \pm t_{1-\alpha/2,n-1}\, s_d/\sqrt n`; ``effect_size`` is
        Cohen's :math:`d_z = \bar d / s_d`.

        *wilcoxon*: zero differences are dropped first (R's default, Wilcoxon's
        method, not Pratt's); ``statistic`` is R's V, the sum of the ranks of
        :math:`|d_i|` over positive :math:`d_i`; p exact, or normal with
        tie-corrected variance :math:`n(n+1)(2n+1)/24 - \sum(t^3-t)/48` and
        continuity correction. ``estimate`` is the Hodges-Lehmann
        pseudomedian (median of the Walsh averages :math:`(d_i+d_j)/2, i\le j`)
        with R's ``conf.int=TRUE`` interval; ``effect_size`` is the
        matched-pairs rank-biserial correlation
        :math:`r = (T_+ - T_-)/(T_+ + T_-)` (positive: increases dominate).

    Raises
    ------
    StatsError
        When ``before`` and ``after`` differ in length (a paired test never
        silently becomes unpaired), or hold text or infinite values.

    Examples
    --------
    >>> from hemiface.stats import paired_change
    >>> res = paired_change([60, 62, 58, 70, 65], [68, 66, 61, 79, 70])
    >>> res.loc[res.selected, "test"].item()
    'paired_t'
    """
    alpha = check_alpha("alpha", alpha)
    normality_alpha = check_alpha("normality_alpha", normality_alpha)
    check_method("wilcoxon_method", wilcoxon_method)
    check_aligned(before=before, after=after)
    b = as_float_array("before", before)
    a = as_float_array("after", after)
    if b.size != a.size:
        raise StatsError(
            f"before has {b.size} values and after has {a.size}; paired data need one after value per before "
            "value (use NaN for a missing measurement)"
        )
    labels = resolve_ids(ids, b.size, before, after)
    ok = np.isfinite(b) & np.isfinite(a)
    missing = [labels[i] for i in np.flatnonzero(~ok)]
    d = a[ok] - b[ok]
    n = int(d.size)
    conf = 1 - alpha
    common = dict(n=n, n_missing=len(missing), missing_ids=join_ids(missing), conf_level=conf)

    t_row = blank_row(PAIRED_COLUMNS, test="paired_t", statistic_name="t", estimate_name="mean_change",
                      effect_size_name="cohen_dz", selected=False, **common)
    sd = float(np.std(d, ddof=1)) if n >= 2 else np.nan
    if n >= 1:
        t_row["estimate"] = float(np.mean(d))
    if n < 2:
        t_row["method_note"] = f"cannot test: n = {n} complete pair{'s' if n != 1 else ''}"
    elif sd == 0:
        t_row["method_note"] = "cannot test: all differences are equal (standard deviation 0)"
    else:
        res = _st.ttest_1samp(d, 0.0)
        ci = res.confidence_interval(conf)
        t_row.update(statistic=float(res.statistic), df=float(n - 1), p_value=float(res.pvalue),
                     ci_low=float(ci.low), ci_high=float(ci.high), effect_size=float(np.mean(d) / sd),
                     method_note="paired t test on after - before")

    w_row = blank_row(PAIRED_COLUMNS, test="wilcoxon", statistic_name="V", estimate_name="pseudomedian_change",
                      effect_size_name="rank_biserial", selected=False, **common)
    w_row.update(_signed_rank_row(d, conf=conf, method=wilcoxon_method, correction=correction))

    rows = [t_row, w_row]
    normal_p = _shapiro(d)
    for r in rows:
        r["normality_p"] = normal_p
    if n < MIN_N:
        note = f"cannot test: n = {n} < {MIN_N} complete pairs (normality cannot be assessed); no test selected"
        for r in rows:
            r["method_note"] = note if not isinstance(r["method_note"], str) else f"{note}; {r['method_note']}"
    elif not np.isfinite(normal_p):
        if np.isfinite(w_row["p_value"]):
            w_row["selected"] = True
            w_row["method_note"] += "; selected: all differences are equal, normality cannot be assessed"
    elif normal_p >= normality_alpha:
        t_row["selected"] = True
        t_row["method_note"] += f"; selected: Shapiro-Wilk p = {fmt(normal_p)} >= {normality_alpha}"
    else:
        w_row["selected"] = True
        w_row["method_note"] += f"; selected: Shapiro-Wilk p = {fmt(normal_p)} < {normality_alpha}"
    return frame(rows, PAIRED_COLUMNS)


def _signed_rank_row(d: np.ndarray, *, conf: float, method: str, correction: bool) -> dict:
    zeros = int(np.sum(d == 0))
    x = d[d != 0]
    nn = int(x.size)
    out: dict = {}
    if nn == 0:
        out["method_note"] = "cannot test: no nonzero differences" if d.size else "cannot test: no complete pairs"
        return out
    ranks = _st.rankdata(np.abs(x))
    v = float(np.sum(ranks[x > 0]))
    ties = _has_ties(np.abs(x))
    notes = []
    if zeros:
        notes.append(f"{zeros} zero difference{'s' if zeros != 1 else ''} dropped (R's default)")
    exact = (method == "auto" and nn < 50 and not ties and not zeros) or (method == "exact" and not ties and not zeros)
    if method == "exact" and not exact:
        notes.append("exact p not available with ties or zeros; normal approximation used (as R)")
    if exact and nn > MAX_EXACT_SIGNED_RANK:
        exact = False
        notes.append(f"exact distribution not computed for n > {MAX_EXACT_SIGNED_RANK}; normal approximation used")
    if exact:
        p = signed_rank_exact_p(v, nn)
        notes.insert(0, "Wilcoxon signed-rank, exact")
    else:
        p = _two_sided_normal_p(signed_rank_z(x, correct=correction))
        notes.insert(0, "Wilcoxon signed-rank, normal approximation, tie-corrected"
                        + (", continuity-corrected" if correction else ""))
    shift = signed_rank_shift(x, conf_level=conf, exact=exact, correct=correction)
    if shift.conf_level != conf:
        notes.append(f"requested confidence level not achievable; interval is at {fmt(shift.conf_level)} (as R)")
    total = nn * (nn + 1) / 2
    out.update(statistic=v, p_value=p, estimate=shift.estimate, ci_low=shift.ci_low, ci_high=shift.ci_high,
               conf_level=shift.conf_level, effect_size=float((2 * v - total) / total),
               method_note="; ".join(notes))
    return out


# ----------------------------------------------------------------------------- between groups
def compare_groups(
    values,
    groups,
    *,
    order=None,
    alpha: float = 0.05,
    normality_alpha: float = 0.05,
    mann_whitney_method: str = "auto",
    correction: bool = True,
    ids=None,
) -> pd.DataFrame:
    r"""Compare a measurement (typically the change) between two or more independent groups.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One value per patient; NaN marks a missing value (listed in ``missing_ids``).
    groups : array-like, shape (n,)
        Group label of each value (e.g. the technique); a missing label excludes
        the value and lists it as missing.
    order : sequence of str, optional
        Group order; the first two define the sign of two-group estimates
        (``order[0] - order[1]``). Default: labels sorted.
    alpha, normality_alpha, correction, ids
        As in :func:`paired_change`.
    mann_whitney_method : {"auto", "exact", "approx"}
        As R's ``wilcox.test(exact=)``: "auto" is exact when both groups have
        fewer than 50 values and there are no ties.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GROUP_COLUMNS`. Two groups: rows "welch_t" and
        "mann_whitney"; more: one row "kruskal".

        *welch_t*: :math:`t = (\bar x_1-\bar x_2)/\sqrt{s_1^2/n_1+s_2^2/n_2}`
        with Welch-Satterthwaite ``df``; ``estimate`` is the mean difference with
        its Welch interval; ``effect_size`` is Hedges' g,
        :math:`g = J\,(\bar x_1-\bar x_2)/s_p`,
        :math:`s_p^2 = ((n_1-1)s_1^2+(n_2-1)s_2^2)/(n_1+n_2-2)`,
        :math:`J = 1 - 3/(4(n_1+n_2)-9)`.

        *mann_whitney*: ``statistic`` is R's W, the Mann-Whitney U of the first
        group (:math:`R_1 - n_1(n_1+1)/2`); p exact or normal (tie-corrected,
        continuity-corrected); ``estimate`` is the Hodges-Lehmann shift, the
        median of all :math:`x_{1i}-x_{2j}`, with R's interval; ``effect_size``
        is the rank-biserial correlation :math:`r = 2U/(n_1n_2) - 1` (positive:
        the first group tends higher).

        *kruskal*: H with tie correction, ``df`` = k - 1; ``effect_size`` is
        :math:`\varepsilon^2 = H/(n-1)`; no estimate or interval.

    Raises
    ------
    StatsError
        When values and groups differ in length, or fewer than two distinct
        group labels are given.
    """
    alpha = check_alpha("alpha", alpha)
    normality_alpha = check_alpha("normality_alpha", normality_alpha)
    check_method("mann_whitney_method", mann_whitney_method)
    check_aligned(values=values, groups=groups)
    v = as_float_array("values", values)
    g = object_series(groups)
    if g.size != v.size:
        raise StatsError(f"values has {v.size} entries and groups has {g.size}; give one group label per value")
    labels = resolve_ids(ids, v.size, values, groups)
    g_missing = g.isna().to_numpy()
    g = g.where(~g_missing, None).map(lambda s: None if s is None else str(s))
    present = sorted({s for s in g if s is not None})
    order = group_order(present, order, "compare_groups")
    ok = np.isfinite(v) & ~g_missing
    missing = [labels[i] for i in np.flatnonzero(~ok)]
    samples = {k: v[ok & (g == k).to_numpy()] for k in order}
    sizes = {k: int(s.size) for k, s in samples.items()}
    conf = 1 - alpha
    common = dict(
        n=int(ok.sum()), n_missing=len(missing), missing_ids=join_ids(missing), conf_level=conf,
        group_sizes="; ".join(f"{k}={sizes[k]}" for k in order), selected=False,
    )
    normal = {k: _shapiro(s) for k, s in samples.items()}
    finite = [p for p in normal.values() if np.isfinite(p)]
    normal_p = min(finite) if len(finite) == len(order) else np.nan
    normal_note = "Shapiro-Wilk p: " + ", ".join(f"{k} {fmt(p)}" for k, p in normal.items())
    small = [k for k in order if sizes[k] < MIN_N]

    if len(order) == 2:
        x, y = samples[order[0]], samples[order[1]]
        comparison = f"{order[0]} - {order[1]}"
        rows = [
            blank_row(GROUP_COLUMNS, test="welch_t", statistic_name="t", estimate_name="mean_difference",
                      effect_size_name="hedges_g", comparison=comparison, normality_p=normal_p, **common),
            blank_row(GROUP_COLUMNS, test="mann_whitney", statistic_name="W",
                      estimate_name="hodges_lehmann_shift", effect_size_name="rank_biserial",
                      comparison=comparison, normality_p=normal_p, **common),
        ]
        rows[0].update(_welch(x, y, conf))
        rows[1].update(_rank_sum_row(x, y, conf=conf, method=mann_whitney_method, correction=correction))
        if small:
            _cannot(rows, f"cannot test: fewer than {MIN_N} values in {', '.join(small)} "
                          "(normality cannot be assessed); no test selected")
        else:
            pick = 0 if (np.isfinite(normal_p) and normal_p >= normality_alpha) else 1
            if np.isfinite(rows[pick]["p_value"]):
                rows[pick]["selected"] = True
                rule = (f"all >= {normality_alpha}" if pick == 0 else
                        f"some < {normality_alpha} or not assessable")
                rows[pick]["method_note"] += f"; selected: {normal_note} ({rule})"
        return frame(rows, GROUP_COLUMNS)

    row = blank_row(GROUP_COLUMNS, test="kruskal", statistic_name="H", effect_size_name="epsilon_squared",
                    comparison=", ".join(order), normality_p=normal_p, **common)
    have = [s for s in samples.values() if s.size]
    n = sum(s.size for s in have)
    if len(have) < 2:
        row["method_note"] = "cannot test: fewer than two groups have values"
    elif np.ptp(np.concatenate(have)) == 0:
        row["method_note"] = "cannot test: all values are equal"
    else:
        res = _st.kruskal(*have)
        row.update(statistic=float(res.statistic), df=float(len(have) - 1), p_value=float(res.pvalue),
                   effect_size=float(res.statistic / (n - 1)),
                   method_note="Kruskal-Wallis, tie-corrected chi-square approximation")
    if small:
        _cannot([row], f"cannot test: fewer than {MIN_N} values in {', '.join(small)}; no test selected")
    elif np.isfinite(row["p_value"]):
        row["selected"] = True
        row["method_note"] += f"; selected: more than two groups ({normal_note})"
    return frame([row], GROUP_COLUMNS)


def _cannot(rows: list[dict], note: str) -> None:
    for r in rows:
        r["method_note"] = note if not isinstance(r["method_note"], str) else f"{note}; {r['method_note']}"


def _welch(x: np.ndarray, y: np.ndarray, conf: float) -> dict:
    out: dict = {}
    if x.size and y.size:
        out["estimate"] = float(np.mean(x) - np.mean(y))
    if x.size < 2 or y.size < 2:
        out["method_note"] = "cannot test: Welch's t needs at least 2 values per group"
        return out
    vx, vy = np.var(x, ddof=1), np.var(y, ddof=1)
    if vx + vy == 0:
        out["method_note"] = "cannot test: no variation within either group"
        return out
    res = _st.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(conf)
    nx, ny = x.size, y.size
    sp = np.sqrt(((nx - 1) * vx + (ny - 1) * vy) / (nx + ny - 2))
    j = 1 - 3 / (4 * (nx + ny) - 9)
    out.update(statistic=float(res.statistic), df=float(res.df), p_value=float(res.pvalue),
               ci_low=float(ci.low), ci_high=float(ci.high),
               effect_size=float(j * (np.mean(x) - np.mean(y)) / sp) if sp > 0 else np.nan,
               method_note="Welch's unequal-variance t test")
    return out


def _rank_sum_row(x: np.ndarray, y: np.ndarray, *, conf: float, method: str, correction: bool) -> dict:
    m, n = x.size, y.size
    if m == 0 or n == 0:
        return {"method_note": "cannot test: a group has no values"}
    pooled = np.concatenate([x, y])
    ranks = _st.rankdata(pooled)
    w = float(np.sum(ranks[:m]) - m * (m + 1) / 2)
    ties = _has_ties(pooled)
    exact = (method == "auto" and m < 50 and n < 50 and not ties) or (
        method == "exact" and not ties and m * n <= MAX_EXACT_RANK_SUM)
    notes = []
    if exact:
        p = rank_sum_exact_p(w, m, n)
        notes.append("Mann-Whitney U (Wilcoxon rank-sum), exact")
    else:
        z = rank_sum_z(x, y, correct=correction)
        p = _two_sided_normal_p(z)
        notes.append("Mann-Whitney U (Wilcoxon rank-sum), normal approximation, tie-corrected"
                     + (", continuity-corrected" if correction else ""))
        if method == "exact" and ties:
            notes.append("exact p not available with ties; normal approximation used (as R)")
        elif method == "exact":
            notes.append(f"exact distribution not computed for n1 x n2 > {MAX_EXACT_RANK_SUM}; "
                         "normal approximation used")
    shift = rank_sum_shift(x, y, conf_level=conf, exact=exact, correct=correction)
    if shift.conf_level != conf:
        notes.append(f"requested confidence level not achievable; interval is at {fmt(shift.conf_level)} (as R)")
    return dict(statistic=w, p_value=p, estimate=shift.estimate, ci_low=shift.ci_low, ci_high=shift.ci_high,
                conf_level=shift.conf_level, effect_size=float(2 * w / (m * n) - 1), method_note="; ".join(notes))
