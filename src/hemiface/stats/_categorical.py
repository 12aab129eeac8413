"""Binary outcomes by group (complications): rates with exact intervals and exact tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st
from scipy.special import gammaln

from ._common import (
    blank_row, check_aligned, check_alpha, frame, group_labels, group_order, join_ids, object_series,
    resolve_ids,
)
from ._errors import StatsError

#: Columns of :attr:`ComplicationsResult.rates` (frozen: a tested constant).
RATE_COLUMNS = ("outcome", "group", "n", "n_missing", "missing_ids", "events", "rate", "ci_low", "ci_high", "conf_level")

#: Columns of :attr:`ComplicationsResult.tests` (frozen: a tested constant).
RATE_TEST_COLUMNS = (
    "outcome",
    "test",
    "p_value",
    "effect_size",
    "effect_size_name",
    "ci_low",
    "ci_high",
    "conf_level",
    "comparison",
    "n",
    "n_missing",
    "missing_ids",
    "method_note",
)

#: Largest number of tables the exact k x 2 test enumerates before it turns to Monte Carlo.
MAX_EXACT_TABLES = 2_000_000
#: Monte Carlo draws (seeded) when the exact enumeration is too large.
MONTE_CARLO_DRAWS = 100_000


@dataclass(frozen=True)
class ComplicationsResult:
    """Per-group rates and the test comparing them."""

    rates: pd.DataFrame
    tests: pd.DataFrame

    def to_dict(self) -> dict:
        return {"rates": self.rates, "tests": self.tests}


def clopper_pearson(events: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    r"""Exact (Clopper-Pearson) interval of a binomial proportion, as R's ``binom.test``.

    :math:`[B(\alpha/2; k, n-k+1),\ B(1-\alpha/2; k+1, n-k)]` with B the beta
    quantile; 0 when k = 0 and 1 when k = n. NaN for n = 0.
    """
    alpha = check_alpha("alpha", alpha)
    if n == 0:
        return (np.nan, np.nan)
    ci = _st.binomtest(int(events), int(n)).proportion_ci(confidence_level=1 - alpha, method="exact")
    return (float(ci.low), float(ci.high))


def _log_choose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def freeman_halton_k_by_2(events, sizes, *, seed: int = 0) -> tuple[float, str]:
    """Exact two-sided p of a k x 2 table (Fisher-Freeman-Halton), as R's ``fisher.test``.

    With the margins fixed, a table's probability is the multivariate
    hypergeometric :math:`\\prod_i \\binom{n_i}{x_i} / \\binom{N}{K}`; p sums the
    tables no more probable than the observed one (relative tolerance 1e-7, as R).
    Returns (p, method) with method "exact" or "monte_carlo" (when more than
    :data:`MAX_EXACT_TABLES` tables would be enumerated; seeded, R's
    ``simulate.p.value`` estimator (1 + hits) / (B + 1)).
    """
    x = np.asarray(events, int)
    n = np.asarray(sizes, int)
    total_k = int(x.sum())
    lp_obs = float(np.sum(_log_choose(n, x)))
    tol = np.log1p(1e-7)
    s = np.zeros(1, int)
    lp = np.zeros(1)
    for i, ni in enumerate(n[:-1]):
        xs = np.arange(ni + 1)
        s = (s[:, None] + xs[None, :]).ravel()
        lp = (lp[:, None] + _log_choose(ni, xs)[None, :]).ravel()
        rest = int(n[i + 1 :].sum())
        keep = (s <= total_k) & (s >= total_k - rest)
        s, lp = s[keep], lp[keep]
        if s.size > MAX_EXACT_TABLES:
            break
    else:
        last = total_k - s
        lp = lp + _log_choose(n[-1], last)
        lp_all = lp - _log_choose(n.sum(), total_k)
        p = float(np.exp(lp_all[lp <= lp_obs + tol]).sum())
        return (min(p, 1.0), "exact")
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_hypergeometric(n, total_k, size=MONTE_CARLO_DRAWS)
    lps = _log_choose(n[None, :], draws).sum(axis=1)
    hits = int(np.sum(lps <= lp_obs + tol))
    return ((1 + hits) / (MONTE_CARLO_DRAWS + 1), "monte_carlo")


def rate_rows(e, ok, g, g_ok, labels, *, order, outcome: str, alpha: float) -> list[dict]:
    """Rows of the rates table: one per group in ``order`` and one for all patients."""
    rows = []
    for lev in list(order) + ["all"]:
        in_g = g_ok if lev == "all" else (g == lev)
        miss = [labels[i] for i in np.flatnonzero(~ok if lev == "all" else in_g & ~ok)]
        sel = in_g & ok
        n, k = int(sel.sum()), int(e[sel].sum())
        lo, hi = clopper_pearson(k, n, alpha=alpha)
        rows.append(blank_row(RATE_COLUMNS, outcome=outcome, group=lev, n=n, n_missing=len(miss),
                              missing_ids=join_ids(miss), events=k, rate=k / n if n else np.nan,
                              ci_low=lo, ci_high=hi, conf_level=1 - alpha))
    return rows


def complications_by_group(
    events,
    groups,
    *,
    outcome: str = "any_complication",
    order=None,
    alpha: float = 0.05,
    ids=None,
) -> ComplicationsResult:
    r"""Rate of a binary outcome in each group, with exact intervals, and an exact test between groups.

    Parameters
    ----------
    events : array-like of bool, shape (n,)
        True when the patient had the outcome; NaN or None when unknown
        (excluded and listed in ``missing_ids``).
    groups : array-like, shape (n,)
        Group labels; at least two distinct.
    outcome : str
        Name written in the ``outcome`` column.
    order : sequence of str, optional
        Group order (default sorted); for two groups the odds ratio is
        ``order[0]`` versus ``order[1]``.
    alpha : float
        Intervals at level ``1 - alpha``.
    ids : sequence of str, optional
        Patient ids for ``missing_ids``.

    Returns
    -------
    ComplicationsResult
        ``rates`` (columns :data:`RATE_COLUMNS`): one row per group and one
        with ``group`` = "all"; ``rate`` = events / n with the Clopper-Pearson
        interval. ``tests`` (columns :data:`RATE_TEST_COLUMNS`), one row:

        * two groups, ``test`` = "fisher_exact": Fisher's exact test (scipy's
          ``fisher_exact``, two-sided), ``effect_size`` the conditional
          maximum-likelihood odds ratio with its exact interval (both as R's
          ``fisher.test``);
        * more groups, ``test`` = "fisher_freeman_halton": the exact test of the
          k x 2 table by full enumeration (:func:`freeman_halton_k_by_2`; scipy's
          ``fisher_exact`` handles only 2 x 2), no effect size.

    Raises
    ------
    StatsError
        On unequal lengths, non-boolean events or fewer than two group labels.
    """
    alpha = check_alpha("alpha", alpha)
    check_aligned(events=events, groups=groups)
    ev = object_series(events)
    gs = object_series(groups)
    if ev.size != gs.size:
        raise StatsError(f"events has {ev.size} entries and groups has {gs.size}; give one group label per patient")
    labels = resolve_ids(ids, ev.size, events, groups)
    known = ev.notna().to_numpy()
    bad = [v for v, k in zip(ev, known) if k and not (isinstance(v, (bool, np.bool_)) or v in (0, 1))]
    if bad:
        raise StatsError(f"events must be True/False (or 1/0), NaN for unknown; got {bad[:3]!r}")
    g, g_ok = group_labels(gs)
    present = sorted({s for s, ok in zip(g, g_ok) if ok})
    order = group_order(present, order, "complications_by_group")
    ok = known & g_ok
    e = np.array([bool(v) if k else False for v, k in zip(ev, known)])
    conf = 1 - alpha
    rates = rate_rows(e, ok, g, g_ok, labels, order=order, outcome=outcome, alpha=alpha)
    counts = [(int((e & ok & (g == lev)).sum()), int((ok & (g == lev)).sum())) for lev in order]
    all_missing = [labels[i] for i in np.flatnonzero(~ok)]
    common = dict(outcome=outcome, conf_level=conf, n=int(ok.sum()), n_missing=len(all_missing),
                  missing_ids=join_ids(all_missing))
    have = [(lev, c) for lev, c in zip(order, counts) if c[1] > 0]
    if len(order) == 2:
        row = blank_row(RATE_TEST_COLUMNS, test="fisher_exact", effect_size_name="odds_ratio",
                        comparison=f"{order[0]} vs {order[1]}", **common)
        if len(have) < 2:
            row["method_note"] = "cannot test: a group has no patients with a known outcome"
        else:
            table = np.array([[k, n - k] for k, n in counts])
            p = float(_st.fisher_exact(table).pvalue)
            orr = _st.contingency.odds_ratio(table, kind="conditional")
            ci = orr.confidence_interval(confidence_level=conf)
            row.update(p_value=p, effect_size=float(orr.statistic), ci_low=float(ci.low), ci_high=float(ci.high),
                       method_note="Fisher's exact test, two-sided; conditional MLE odds ratio with exact interval")
        return ComplicationsResult(frame(rates, RATE_COLUMNS), frame([row], RATE_TEST_COLUMNS))
    row = blank_row(RATE_TEST_COLUMNS, test="fisher_freeman_halton", comparison=", ".join(order), **common)
    if len(have) < 2:
        row["method_note"] = "cannot test: fewer than two groups have patients with a known outcome"
    else:
        p, how = freeman_halton_k_by_2([c[0] for _, c in have], [c[1] for _, c in have])
        row.update(p_value=p, method_note=(
            "Fisher-Freeman-Halton exact test of the k x 2 table (full enumeration)" if how == "exact" else
            f"Fisher-Freeman-Halton test, Monte Carlo p from {MONTE_CARLO_DRAWS} seeded draws (table too large "
            "to enumerate)"))
    return ComplicationsResult(frame(rates, RATE_COLUMNS), frame([row], RATE_TEST_COLUMNS))
