"""Rank statistics done the way R's ``wilcox.test`` does them.

Exact null distributions of the signed-rank statistic V and the rank-sum
statistic W (Mann-Whitney U), and Hodges-Lehmann estimates with the
confidence intervals R reports with ``conf.int=TRUE``:

* exact (no ties, no zeros, n < 50): order statistics of the Walsh averages
  (one sample) or of the pairwise differences (two samples) at the
  ``qsignrank`` / ``qwilcox`` quantile;
* normal approximation: the points where the (tie- and continuity-corrected)
  standardised statistic, as a step function of the shift ``d``, crosses the
  normal quantile. R finds them with ``uniroot(tol = 1e-4)``; here they are
  found exactly, as the Walsh average (pairwise difference) at which the step
  occurs, so R's values agree to within its root tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

_EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- null distributions
def signed_rank_pmf(n: int) -> np.ndarray:
    """P(V = k), k = 0 .. n(n+1)/2, for the Wilcoxon signed-rank statistic of n untied nonzero values."""
    p = np.ones(1)
    for i in range(1, n + 1):
        q = np.zeros(p.size + i)
        q[: p.size] += 0.5 * p
        q[i:] += 0.5 * p
        p = q
    return p


def rank_sum_pmf(m: int, n: int) -> np.ndarray:
    """P(W = k), k = 0 .. mn, for the Mann-Whitney statistic W = U of the first sample (sizes m, n, no ties).

    Uses the recursion P_{m,n}(k) = m/(m+n) P_{m-1,n}(k-n) + n/(m+n) P_{m,n-1}(k),
    which only adds positive numbers (no cancellation).
    """
    # row[j] holds P_{i,j} for the current i; start with i = 0: W = 0 surely.
    row = [np.ones(1) for _ in range(n + 1)]
    for i in range(1, m + 1):
        new = [np.ones(1)]  # P_{i,0}: W = 0 surely
        for j in range(1, n + 1):
            a = row[j]  # P_{i-1,j}, shifted by j
            b = new[j - 1]  # P_{i,j-1}
            out = np.zeros(i * j + 1)
            out[j : j + a.size] += i / (i + j) * a
            out[: b.size] += j / (i + j) * b
            new.append(out)
        row = new
    return row[n]


def _quantile(pmf: np.ndarray, prob: float) -> int:
    """R's qsignrank/qwilcox: the smallest q with P(X <= q) >= prob (less 10 machine epsilons)."""
    cdf = np.cumsum(pmf)
    return int(np.searchsorted(cdf, prob - 10 * _EPS, side="left"))


def _two_sided_exact_p(pmf: np.ndarray, stat: float, centre: float) -> float:
    k = int(round(stat))
    if stat > centre:
        p = float(np.sum(pmf[k:]))  # P(X >= stat)
    else:
        p = float(np.sum(pmf[: k + 1]))  # P(X <= stat)
    return min(2.0 * p, 1.0)


def signed_rank_exact_p(v: float, n: int) -> float:
    """Two-sided exact p of the signed-rank statistic V (R's psignrank rule)."""
    return _two_sided_exact_p(signed_rank_pmf(n), v, n * (n + 1) / 4)


def rank_sum_exact_p(w: float, m: int, n: int) -> float:
    """Two-sided exact p of the rank-sum statistic W (R's pwilcox rule)."""
    return _two_sided_exact_p(rank_sum_pmf(m, n), w, m * n / 2)


# ----------------------------------------------------------------------------- normal-approximation statistics
def _tie_term(ranks: np.ndarray) -> float:
    _, t = np.unique(ranks, return_counts=True)
    return float(np.sum(t.astype(float) ** 3 - t))


def signed_rank_z(x: np.ndarray, d: float = 0.0, *, correct: bool) -> float:
    """R's standardised signed-rank statistic of ``x - d`` (zeros dropped, tie-corrected variance)."""
    xd = x - d
    xd = xd[xd != 0]
    nx = xd.size
    r = _st.rankdata(np.abs(xd))
    zd = float(np.sum(r[xd > 0])) - nx * (nx + 1) / 4
    var = nx * (nx + 1) * (2 * nx + 1) / 24 - _tie_term(r) / 48
    sigma = np.sqrt(var) if var > 0 else 0.0
    corr = np.sign(zd) * 0.5 if correct else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(zd - corr) / np.float64(sigma))


def rank_sum_z(x: np.ndarray, y: np.ndarray, d: float = 0.0, *, correct: bool) -> float:
    """R's standardised rank-sum statistic of ``x - d`` against ``y`` (tie-corrected variance)."""
    m, n = x.size, y.size
    r = _st.rankdata(np.concatenate([x - d, y]))
    dz = float(np.sum(r[:m])) - m * (m + 1) / 2 - m * n / 2
    var = (m * n / 12) * ((m + n + 1) - _tie_term(r) / ((m + n) * (m + n - 1)))
    sigma = np.sqrt(var) if var > 0 else 0.0
    corr = np.sign(dz) * 0.5 if correct else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(dz - corr) / np.float64(sigma))


def _step_root(fun, breakpoints: np.ndarray, zq: float) -> float:
    """Where the non-increasing step function ``fun`` crosses ``zq``.

    ``fun`` is constant between consecutive breakpoints; the crossing is the
    breakpoint at which it drops to or below ``zq``. If it equals ``zq`` on a
    whole piece, that piece's midpoint is returned.
    """
    b = breakpoints
    if b.size == 1:
        return float(b[0])
    mids = (b[:-1] + b[1:]) / 2
    lo, hi = 0, mids.size  # first index with fun(mid) - zq <= 0, in [0, size]
    while lo < hi:
        k = (lo + hi) // 2
        if fun(mids[k]) - zq <= 0:
            hi = k
        else:
            lo = k + 1
    if lo == mids.size:
        return float(b[-1])
    if fun(mids[lo]) - zq == 0:
        return float(mids[lo])
    return float(b[lo])


@dataclass(frozen=True)
class ShiftInterval:
    """A Hodges-Lehmann estimate with its confidence interval, as R's ``wilcox.test(conf.int=TRUE)``."""

    estimate: float
    ci_low: float
    ci_high: float
    conf_level: float  # achieved level (R lowers it when the requested one is not achievable)
    method: str  # "exact" or "normal"


def walsh_averages(x: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(x.size)
    return np.sort((x[i] + x[j]) / 2)


def signed_rank_shift(x: np.ndarray, *, conf_level: float, exact: bool, correct: bool) -> ShiftInterval:
    """Hodges-Lehmann pseudomedian of ``x`` (nonzero values) and R's confidence interval for it.

    ``x`` must already have its zeros removed (R removes them before the interval is computed).
    The estimate is the median of the Walsh averages (x_i + x_j)/2, i <= j, in both branches.
    """
    x = np.asarray(x, float)
    n = x.size
    if n == 0:
        return ShiftInterval(np.nan, np.nan, np.nan, 0.0, "normal")
    w = walsh_averages(x)
    est = float(np.median(w))
    alpha = 1 - conf_level
    if exact:
        pmf = signed_rank_pmf(n)
        qu = _quantile(pmf, alpha / 2)
        if qu == 0:
            qu = 1
        ql = n * (n + 1) // 2 - qu
        achieved = 2 * float(np.sum(pmf[: qu]))  # 2 * psignrank(qu - 1)
        level = conf_level if achieved - alpha <= alpha / 2 else 1 - float(f"{achieved:.2g}")
        return ShiftInterval(est, float(w[qu - 1]), float(w[ql]), level, "exact")
    mumin, mumax = float(x.min()), float(x.max())
    fun = lambda d: signed_rank_z(x, d, correct=correct)  # noqa: E731
    wmin = fun(mumin)
    wmax = fun(mumax) if np.isfinite(wmin) else np.nan
    if not np.isfinite(wmax):
        return ShiftInterval((mumin + mumax) / 2, np.nan, np.nan, 0.0, "normal")
    while True:  # R widens alpha until both roots lie inside [min, max]
        if wmin - _st.norm.ppf(1 - alpha / 2) < 0 or wmax - _st.norm.ppf(alpha / 2) > 0:
            alpha *= 2
        else:
            break
    level = conf_level
    if alpha >= 1 or 1 - conf_level < alpha * 0.75:
        level = 1 - min(1.0, alpha)
    if alpha >= 1:
        med = float(np.median(x))
        return ShiftInterval(est, med, med, level, "normal")
    b = np.unique(w)
    lo = _step_root(fun, b, float(_st.norm.ppf(1 - alpha / 2)))
    hi = _step_root(fun, b, float(_st.norm.ppf(alpha / 2)))
    return ShiftInterval(est, lo, hi, level, "normal")


def rank_sum_shift(x: np.ndarray, y: np.ndarray, *, conf_level: float, exact: bool, correct: bool) -> ShiftInterval:
    """Hodges-Lehmann shift (median of x_i - y_j) and R's confidence interval for it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    m, n = x.size, y.size
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    est = float(np.median(diffs))
    alpha = 1 - conf_level
    if exact:
        pmf = rank_sum_pmf(m, n)
        qu = _quantile(pmf, alpha / 2)
        if qu == 0:
            qu = 1
        ql = m * n - qu
        achieved = 2 * float(np.sum(pmf[: qu]))
        level = conf_level if achieved - alpha <= alpha / 2 else 1 - achieved
        return ShiftInterval(est, float(diffs[qu - 1]), float(diffs[ql]), level, "exact")
    mumin, mumax = float(x.min() - y.max()), float(x.max() - y.min())
    fun = lambda d: rank_sum_z(x, y, d, correct=correct)  # noqa: E731
    wmin, wmax = fun(mumin), fun(mumax)
    if not (np.isfinite(wmin) and np.isfinite(wmax)):
        return ShiftInterval(est, np.nan, np.nan, 0.0, "normal")
    b = np.unique(diffs)

    def root(zq: float) -> float:
        if wmin - zq <= 0:
            return mumin
        if wmax - zq >= 0:
            return mumax
        return _step_root(fun, b, zq)

    lo = root(float(_st.norm.ppf(1 - alpha / 2)))
    hi = root(float(_st.norm.ppf(alpha / 2)))
    return ShiftInterval(est, lo, hi, conf_level, "normal")
