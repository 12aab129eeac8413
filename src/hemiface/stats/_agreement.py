"""Agreement between raters: intraclass correlation, weighted kappa (two raters), Fleiss' kappa (more).

Every function takes the ratings *wide*: one row per rated subject (a patient's
photo pair, a photograph), one column per rater, numbers on the rating scale,
NaN where a rater gave none. A subject missing any rating is left out of that
analysis (complete cases: the designs below are balanced) and listed in
``missing_ids``. Each returns rows with the columns :data:`AGREEMENT_COLUMNS`,
so the tables concatenate; :func:`rater_agreement` returns every measure that
applies.

Libraries: Cohen's weighted kappa, its asymptotic standard errors (Fleiss,
Cohen & Everitt 1969) and Fleiss' kappa are statsmodels' ``inter_rater``; the
F distribution is scipy's. Written here: the ICC's two-way ANOVA mean squares
and the F-based formulas of Shrout & Fleiss (1979) and McGraw & Wong (1996)
(the numbers of R's ``psych::ICC`` and of pingouin's ``intraclass_corr``, which
the tests also check against): pingouin's two-way ANOVA groups the data cell by
cell, 3 s for a 600-pair round of two raters where the closed form of a
complete, balanced design takes a millisecond, and importing it costs seconds
more; and the standard error of Fleiss' kappa under the null (Fleiss, Nee &
Landis 1979, as R's ``irr::kappam.fleiss``), which statsmodels does not give. ``tests/reference/agreement_reference.R`` holds
the R script and the numbers the tests reproduce.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy import stats as _st

from .._validate import check_option
from ._common import blank_row, check_alpha, frame, join_ids
from ._errors import StatsError

#: Columns of :func:`icc`, :func:`weighted_kappa`, :func:`fleiss_kappa` and :func:`rater_agreement` (frozen).
AGREEMENT_COLUMNS = (
    "measure",
    "form",
    "description",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "conf_level",
    "statistic",
    "statistic_name",
    "df1",
    "df2",
    "p_value",
    "n_subjects",
    "n_raters",
    "n_categories",
    "n_missing",
    "missing_ids",
    "method_note",
)

#: Values of the ``measure`` column.
AGREEMENT_MEASURES = ("icc", "weighted_kappa", "fleiss_kappa")

#: The ICC forms in Shrout & Fleiss's (1979) names -> (McGraw & Wong's 1996 name, R psych's name, description).
ICC_FORMS = {
    "ICC(1,1)": ("ICC(1)", "ICC1", "one-way random effects, absolute agreement, single rater"),
    "ICC(2,1)": ("ICC(A,1)", "ICC2", "two-way random effects, absolute agreement, single rater"),
    "ICC(3,1)": ("ICC(C,1)", "ICC3", "two-way mixed effects, consistency, single rater"),
    "ICC(1,k)": ("ICC(k)", "ICC1k", "one-way random effects, absolute agreement, mean of k raters"),
    "ICC(2,k)": ("ICC(A,k)", "ICC2k", "two-way random effects, absolute agreement, mean of k raters"),
    "ICC(3,k)": ("ICC(C,k)", "ICC3k", "two-way mixed effects, consistency, mean of k raters"),
}
#: Confidence level of the ICC intervals (as psych's and pingouin's default).
ICC_CONF_LEVEL = 0.95

#: Weightings of :func:`weighted_kappa`: disagreement weight of categories i and j.
KAPPA_WEIGHTS = ("unweighted", "linear", "quadratic")


def _wide(ratings, who: str, *, min_raters: int = 2) -> tuple[np.ndarray, list[str], list[str]]:
    """Ratings as a float matrix (subjects x raters) with subject and rater labels; text or infinity raise."""
    if isinstance(ratings, pd.DataFrame):
        subjects = [str(i) for i in ratings.index]
        raters = [str(c) for c in ratings.columns]
        values = ratings
    else:
        arr = np.asarray(ratings, dtype=object)
        if arr.ndim != 2:
            raise StatsError(f"{who}: ratings must be 2-D (one row per subject, one column per rater); "
                             f"got shape {arr.shape}")
        values = pd.DataFrame(arr)
        subjects = [str(i) for i in range(values.shape[0])]
        raters = [str(i) for i in range(values.shape[1])]
    try:
        x = values.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{who}: ratings must be numbers (NaN for a missing rating); {exc}") from None
    if x.ndim != 2:
        raise StatsError(f"{who}: ratings must be 2-D (one row per subject, one column per rater); got {x.shape}")
    if np.isinf(x).any():
        raise StatsError(f"{who}: ratings hold infinite values; use NaN for a missing rating")
    if x.shape[1] < min_raters:
        raise StatsError(f"{who} needs at least {min_raters} raters (columns); got {x.shape[1]}")
    return x, subjects, raters


def _complete(x: np.ndarray, subjects: list[str]) -> tuple[np.ndarray, list[str]]:
    ok = np.isfinite(x).all(axis=1)
    return x[ok], [s for s, good in zip(subjects, ok) if not good]


def _categories(x: np.ndarray, categories, who: str) -> np.ndarray:
    """The scale's categories (given, or those observed), sorted; a rating outside them raises."""
    seen = np.unique(x[np.isfinite(x)])
    if categories is None:
        return seen
    cats = np.unique(np.asarray(categories, dtype=float))
    if cats.size != len(categories):
        raise StatsError(f"{who}: categories must be distinct numbers; got {list(categories)}")
    outside = sorted(set(seen) - set(cats))
    if outside:
        raise StatsError(f"{who}: ratings {outside} are not among the categories {cats.tolist()}")
    return cats


def _common(n: int, k: int, missing: list[str], **values) -> dict:
    return dict(n_subjects=n, n_raters=k, n_missing=len(missing), missing_ids=join_ids(missing), **values)


# ----------------------------------------------------------------------------- ICC
def icc(ratings) -> pd.DataFrame:
    r"""Intraclass correlation coefficients in all six forms, with F tests and 95% intervals.

    From the two-way ANOVA of the complete subjects (n subjects, k raters) with
    mean squares :math:`MS_R` (subjects, "rows"), :math:`MS_W` (within subjects),
    :math:`MS_C` (raters, "columns") and :math:`MS_E` (residual):

    * ICC(1,1) = :math:`(MS_R - MS_W) / (MS_R + (k-1) MS_W)`, one-way random:
      each subject rated by different raters;
    * ICC(2,1) = :math:`(MS_R - MS_E) / (MS_R + (k-1) MS_E + k (MS_C - MS_E)/n)`,
      two-way random, absolute agreement: the raters are a sample of raters and
      a rater who rates everyone higher counts as disagreement (the form to
      report for a panel of surgeons);
    * ICC(3,1) = :math:`(MS_R - MS_E) / (MS_R + (k-1) MS_E)`, two-way mixed,
      consistency: these raters only, systematic offsets ignored;
    * ICC(1,k), ICC(2,k), ICC(3,k): the same for the mean of the k raters.

    F tests against ICC = 0: :math:`MS_R/MS_W` on (n-1, n(k-1)) df for the
    one-way forms, :math:`MS_R/MS_E` on (n-1, (n-1)(k-1)) for the others. The
    95% intervals are those of Shrout & Fleiss (1979) and McGraw & Wong (1996),
    with Satterthwaite's df for ICC(2,·). R: ``psych::ICC(x, lmer = FALSE)``
    (Shrout & Fleiss's names map to psych's ICC1, ICC2, ICC3, ICC1k, ...; see
    :data:`ICC_FORMS`).

    Where the F-based interval is undefined it is NaN and ``method_note`` says
    why (R psych prints a number there that is not a bound). ICC(2,k) and its
    bounds are ICC(2,1)'s carried to k raters by Spearman-Brown,
    :math:`k x / (1 + (k-1) x)`, which has its pole at :math:`x = -1/(k-1)`:
    with ICC(2,1) at or below it ICC(2,k) is undefined, and with a bound of
    ICC(2,1) at or below it that bound of ICC(2,k) is (psych then gives, for
    example, "18.15 to 0.146" around an estimate of -6: past the pole the
    bound changes sign). When every subject's mean rating is the same (F = 0)
    the interval collapses to a point and is NaN; a bound that is not finite
    (Satterthwaite's df of 0, for instance) or an interval that leaves out its
    own estimate is NaN too. Negative ICCs otherwise keep their intervals, as
    in R.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like, shape (n_subjects, n_raters)
        One row per subject (its index gives the ids), one column per rater;
        NaN marks a missing rating, and such a subject is left out (listed in
        ``missing_ids``).

    Returns
    -------
    pandas.DataFrame
        Six rows (``measure`` = "icc", ``form`` in :data:`ICC_FORMS` order),
        columns :data:`AGREEMENT_COLUMNS`; ``statistic`` is F with ``df1``,
        ``df2``; ``conf_level`` is always 0.95; ``se`` is NaN.
        Fewer than 2 complete subjects, or ratings without any spread, give rows
        saying ``cannot compute``.

    Examples
    --------
    Shrout & Fleiss's (1979) six subjects rated by four judges:

    >>> from hemiface.stats import icc
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> icc(sf).set_index("form").estimate.round(2).tolist()
    [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]
    """
    x, subjects, _raters = _wide(ratings, "icc")
    x, missing = _complete(x, subjects)
    n, k = x.shape
    rows = [blank_row(AGREEMENT_COLUMNS, measure="icc", form=form, conf_level=ICC_CONF_LEVEL,
                      description=f"{desc} (McGraw & Wong {mw}; R psych {psych})",
                      **_common(n, k, missing, n_categories=np.nan))
            for form, (mw, psych, desc) in ICC_FORMS.items()]
    if n < 2:
        for r in rows:
            r["method_note"] = f"cannot compute: {n} complete subject{'s' if n != 1 else ''}"
        return frame(rows, AGREEMENT_COLUMNS)
    if np.ptp(x) == 0:
        for r in rows:
            r["method_note"] = "cannot compute: every rating is the same (no variance to apportion)"
        return frame(rows, AGREEMENT_COLUMNS)
    for r, values in zip(rows, _icc_forms(x)):
        r.update(values, statistic_name="F",
                 method_note="two-way ANOVA mean squares; F-based 95% interval (Shrout & Fleiss 1979, McGraw & Wong 1996)")
    _undefined_intervals(rows, k)
    return frame(rows, AGREEMENT_COLUMNS)


def _icc_forms(x: np.ndarray) -> list[dict]:
    """The six ICC forms of a complete subjects x raters matrix, in :data:`ICC_FORMS` order, with F, df, p, CI.

    The two-way ANOVA of a balanced design without replication: rows (subjects) MS_R on n - 1 df,
    columns (raters) MS_C on k - 1, residual MS_E on (n - 1)(k - 1), within subjects MS_W on
    n (k - 1). Then the formulas of :func:`icc` (as psych::ICC and pingouin.intraclass_corr).
    """
    n, k = x.shape
    grand = x.mean()
    ss_r = k * float(np.sum((x.mean(axis=1) - grand) ** 2))
    ss_c = n * float(np.sum((x.mean(axis=0) - grand) ** 2))
    ss_e = max(float(np.sum((x - grand) ** 2)) - ss_r - ss_c, 0.0)
    df_r, df_e, df_w = n - 1, (n - 1) * (k - 1), n * (k - 1)
    # numpy scalars: a zero mean square gives inf / NaN (then said undefined), not ZeroDivisionError
    msb, msj, mse, msw = np.float64([ss_r / df_r, ss_c / (k - 1), ss_e / df_e, (ss_c + ss_e) / df_w])
    alpha = 1 - ICC_CONF_LEVEL
    q = lambda d1, d2: float(_st.f.ppf(1 - alpha / 2, d1, d2))  # noqa: E731 - the upper quantile, as in the papers
    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msb - msw) / (msb + (k - 1) * msw)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        icc3 = (msb - mse) / (msb + (k - 1) * mse)
        f1, f3 = msb / msw, msb / mse
        # one-way (1) and consistency (3) forms: F over its quantiles
        f1l, f1u = f1 / q(df_r, df_w), f1 * q(df_w, df_r)
        f3l, f3u = f3 / q(df_r, df_e), f3 * q(df_e, df_r)
        # absolute agreement (2): Satterthwaite's df for the mixture of MS_C and MS_E (McGraw & Wong 1996)
        fj = msj / mse
        vn = df_e * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df_r * k ** 2 * icc2 ** 2 * fj ** 2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        f2u, f2l = q(df_r, v), q(v, df_r)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
        p1, p3 = float(_st.f.sf(f1, df_r, df_w)), float(_st.f.sf(f3, df_r, df_e))
        forms = [
            (icc1, f1, df_w, p1, (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
            (icc2, f3, df_e, p3, l2, u2),
            (icc3, f3, df_e, p3, (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
            ((msb - msw) / msb, f1, df_w, p1, 1 - 1 / f1l, 1 - 1 / f1u),
            ((msb - mse) / (msb + (msj - mse) / n), f3, df_e, p3, l2 * k / (1 + l2 * (k - 1)),
             u2 * k / (1 + u2 * (k - 1))),
            ((msb - mse) / msb, f3, df_e, p3, 1 - 1 / f3l, 1 - 1 / f3u),
        ]
    return [dict(estimate=float(e), statistic=float(f), df1=float(df_r), df2=float(d2), p_value=p, ci_low=float(lo),
                 ci_high=float(hi)) for e, f, d2, p, lo, hi in forms]


def _undefined_intervals(rows: list[dict], k: int) -> None:
    """Set to NaN, saying why, the ICC estimates and bounds that the F-based formulas leave undefined (see :func:`icc`)."""
    def drop(r: dict, fields, why: str) -> None:
        r["method_note"] += f"; {why}"
        r.update({f: np.nan for f in fields})

    bound = {"ci_low": "lower", "ci_high": "upper"}
    for r in rows:
        if not np.isfinite(r["estimate"]):
            r.update(estimate=np.nan, ci_low=np.nan, ci_high=np.nan,
                     method_note="cannot compute: the ANOVA mean squares leave the ICC undefined")
    single, mean_k = (next(r for r in rows if r["form"] == form) for form in ("ICC(2,1)", "ICC(2,k)"))
    pole = -1.0 / (k - 1)
    step = f"-1/(k-1) = {pole:.4g}, the pole of the Spearman-Brown step from ICC(2,1) to k raters"
    if np.isfinite(single["estimate"]) and single["estimate"] <= pole:
        mean_k.update(method_note=f"cannot compute: ICC(2,1) = {single['estimate']:.4g} is at or below {step} "
                                  f"(the formula gives {mean_k['estimate']:.4g})",
                      estimate=np.nan, ci_low=np.nan, ci_high=np.nan)
    for side in ("ci_low", "ci_high"):
        if np.isfinite(mean_k["estimate"]) and single[side] <= pole:
            drop(mean_k, [side], f"{bound[side]} bound undefined: ICC(2,1)'s is {single[side]:.4g}, at or below {step} "
                                 f"(the formula gives {mean_k[side]:.4g})")
    for r in rows:
        if not np.isfinite(r["estimate"]):
            continue
        if r["statistic"] <= 1e-12:
            drop(r, ["ci_low", "ci_high"], "no interval: every subject's mean rating is the same (F = 0), where the "
                                           "F-based interval collapses to a point")
            continue
        for side in ("ci_low", "ci_high"):
            if np.isinf(r[side]) or (np.isnan(r[side]) and f"{bound[side]} bound undefined" not in r["method_note"]):
                drop(r, [side], f"{bound[side]} bound undefined (the F-based formula gives no finite value here)")
        low, high = r["ci_low"], r["ci_high"]
        if low > r["estimate"] + 1e-12 or high < r["estimate"] - 1e-12:  # False for NaN
            drop(r, ["ci_low", "ci_high"], f"no interval: the F-based bounds {low:.4g} to {high:.4g} leave out the "
                                           "estimate")


# ----------------------------------------------------------------------------- weighted kappa
def weighted_kappa(ratings, *, categories=None, weights=("linear", "quadratic"), alpha: float = 0.05) -> pd.DataFrame:
    r"""Cohen's kappa of two raters, unweighted or weighted, with its asymptotic interval and z test.

    With :math:`p_{ij}` the proportion of subjects put in category i by the first
    rater and j by the second, :math:`p_{i\cdot}, p_{\cdot j}` the margins and
    disagreement weights :math:`w_{ij}` (0 on the diagonal):
    :math:`\kappa_w = 1 - \sum w_{ij} p_{ij} / \sum w_{ij} p_{i\cdot} p_{\cdot j}`.
    Linear weights are :math:`|c_i - c_j| / (c_{max} - c_{min})`, quadratic
    :math:`(c_i - c_j)^2 / (c_{max} - c_{min})^2` for category values :math:`c`;
    unweighted is Cohen's kappa (1 off the diagonal). The categories are the
    scale's, not only those used: an unused middle category changes the
    distances between its neighbours.

    ``se`` is the large-sample standard error of Fleiss, Cohen & Everitt (1969);
    the interval is :math:`\kappa \pm z_{1-\alpha/2}\,se`, capped to kappa's
    range [-1, 1] (as vcd's ``confint``; ``method_note`` says when it was). The z test of
    :math:`\kappa = 0` uses the standard error under that null. R:
    ``vcd::Kappa(table, weights = "Equal-Spacing" | "Fleiss-Cohen")`` and its
    ``confint`` (the same estimate, ASE and interval). Computed with
    :func:`statsmodels.stats.inter_rater.cohens_kappa`.

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like, shape (n_subjects, 2)
        One row per subject, one column per rater; a subject missing either
        rating is left out and listed.
    categories : sequence of float, optional
        The rating scale's categories (for example ``range(-2, 3)``); default the
        values observed. A rating outside them raises.
    weights : str or sequence of str
        Any of :data:`KAPPA_WEIGHTS`; one row each, in the order given.
    alpha : float
        Intervals at level ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        One row per weighting (``measure`` = "weighted_kappa", ``form`` the
        weighting), columns :data:`AGREEMENT_COLUMNS`; ``statistic`` is z.

    Examples
    --------
    >>> from hemiface.stats import weighted_kappa
    >>> res = weighted_kappa([[1, 1], [2, 2], [3, 2], [4, 4], [5, 5]], categories=range(1, 6), weights="linear")
    >>> round(res.estimate.item(), 4)
    0.878
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    alpha = check_alpha("alpha", alpha)
    weights = (weights,) if isinstance(weights, str) else tuple(weights)
    for w in weights:
        check_option("weights", w, KAPPA_WEIGHTS)
    x, subjects, _raters = _wide(ratings, "weighted_kappa")
    if x.shape[1] != 2:
        raise StatsError(f"weighted_kappa is for two raters; got {x.shape[1]} columns (use fleiss_kappa or icc)")
    cats = _categories(x, categories, "weighted_kappa")
    x, missing = _complete(x, subjects)
    n = x.shape[0]
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((cats.size, cats.size))
    for a, b in x:
        table[index[a], index[b]] += 1
    z_crit = float(_st.norm.isf(alpha / 2))
    rows = []
    for w in weights:
        row = blank_row(AGREEMENT_COLUMNS, measure="weighted_kappa", form=w, conf_level=1 - alpha,
                        description=("Cohen's kappa" if w == "unweighted" else f"Cohen's weighted kappa, {w} weights")
                        + ", two raters", **_common(n, 2, missing, n_categories=int(cats.size)))
        if n < 2:
            row["method_note"] = f"cannot compute: {n} complete subject{'s' if n != 1 else ''}"
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                res = cohens_kappa(table, weights=None if w == "unweighted" else cats,
                                   wt=None if w == "unweighted" else w)
            kappa, se, se0 = float(res.kappa), float(res.std_kappa), float(res.std_kappa0)
            if not np.isfinite(kappa):
                row["method_note"] = "cannot compute: chance agreement is 1 (both raters used a single category)"
            else:
                z = kappa / se0 if se0 > 0 else np.nan
                low, high = kappa - z_crit * se, kappa + z_crit * se
                capped = [f"{name} {value:.4g}" for name, value in (("lower", low), ("upper", high)) if abs(value) > 1]
                row.update(estimate=kappa, se=se, ci_low=max(-1.0, low), ci_high=min(1.0, high),
                           statistic=z, statistic_name="z",
                           p_value=float(2 * _st.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
                           method_note="asymptotic SE (Fleiss, Cohen & Everitt 1969); z test with the SE under "
                                       "kappa = 0 (statsmodels cohens_kappa)"
                                       + (f"; interval capped to [-1, 1] (kappa +/- z SE gave {', '.join(capped)})"
                                          if capped else ""))
        rows.append(row)
    return frame(rows, AGREEMENT_COLUMNS)


# ----------------------------------------------------------------------------- Fleiss' kappa
def fleiss_kappa(ratings, *, categories=None) -> pd.DataFrame:
    r"""Fleiss' kappa of m raters on nominal categories, with the z test of Fleiss, Nee & Landis (1979).

    With :math:`n_{ij}` the number of raters putting subject i in category j,
    :math:`p_j` the share of all ratings in category j and
    :math:`P_i = (\sum_j n_{ij}^2 - m) / (m (m-1))`:
    :math:`\kappa = (\bar P - \sum p_j^2) / (1 - \sum p_j^2)` (Fleiss 1971).
    The standard error under :math:`\kappa = 0` is
    :math:`\sqrt{2} \sqrt{(\sum p_j q_j)^2 - \sum p_j q_j (q_j - p_j)} /
    (\sum p_j q_j \sqrt{n m (m-1)})` with :math:`q_j = 1 - p_j`; z is
    :math:`\kappa / se_0`. No interval: there is no accepted closed form away
    from the null (``ci_low``/``ci_high`` are NaN). The categories are treated
    as unordered; for an ordinal scale report the ICC beside it. Raters need
    not be the same people for every subject, but every subject needs m
    ratings. R: ``irr::kappam.fleiss``. Computed with
    :func:`statsmodels.stats.inter_rater.fleiss_kappa` (the standard error is
    written here).

    Parameters
    ----------
    ratings : pandas.DataFrame or array-like, shape (n_subjects, m_raters)
        One row per subject, one column per rater (m >= 2); a subject missing a
        rating is left out and listed.
    categories : sequence of float, optional
        The scale's categories (default: those observed); unused ones do not
        change kappa. A rating outside them raises.

    Returns
    -------
    pandas.DataFrame
        One row (``measure`` = "fleiss_kappa", ``form`` = "fleiss"), columns
        :data:`AGREEMENT_COLUMNS`; ``se`` is the standard error under the null.

    Examples
    --------
    >>> from hemiface.stats import fleiss_kappa
    >>> res = fleiss_kappa([[1, 1, 1], [2, 2, 2], [1, 2, 2], [3, 3, 3]])
    >>> round(res.estimate.item(), 4)
    0.7447
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    x, subjects, _raters = _wide(ratings, "fleiss_kappa")
    cats = _categories(x, categories, "fleiss_kappa")
    x, missing = _complete(x, subjects)
    n, m = x.shape
    row = blank_row(AGREEMENT_COLUMNS, measure="fleiss_kappa", form="fleiss", conf_level=np.nan,
                    description=f"Fleiss' kappa, {m} raters, nominal categories",
                    **_common(n, m, missing, n_categories=int(cats.size)))
    counts = (x[:, :, None] == cats[None, None, :]).sum(axis=1).astype(float)  # subjects x categories
    p = counts.sum(axis=0) / max(n * m, 1)
    pq = float(np.sum(p * (1 - p)))
    if n < 2:
        row["method_note"] = f"cannot compute: {n} complete subject{'s' if n != 1 else ''}"
    elif pq == 0:
        row["method_note"] = "cannot compute: every rating is in one category (chance agreement is 1)"
    else:
        kappa = float(_fleiss(counts, method="fleiss"))
        se0 = float(np.sqrt(2) * np.sqrt(pq ** 2 - np.sum(p * (1 - p) * (1 - 2 * p))) / (pq * np.sqrt(n * m * (m - 1))))
        z = kappa / se0
        row.update(estimate=kappa, se=se0, statistic=z, statistic_name="z", p_value=float(2 * _st.norm.sf(abs(z))),
                   method_note="Fleiss (1971); z test with the SE under kappa = 0 (Fleiss, Nee & Landis 1979); "
                               "no confidence interval")
    return frame([row], AGREEMENT_COLUMNS)


# ----------------------------------------------------------------------------- all that apply
def rater_agreement(ratings, *, categories=None, alpha: float = 0.05) -> pd.DataFrame:
    """Every agreement measure that applies: the six ICC forms, then weighted kappa (linear and
    quadratic) for two raters or Fleiss' kappa for more.

    Parameters and missing data as in :func:`icc`, :func:`weighted_kappa` and
    :func:`fleiss_kappa`; ``alpha`` sets the kappa intervals (the ICC's are
    always 95%). Columns :data:`AGREEMENT_COLUMNS`.
    """
    x, _subjects, _raters = _wide(ratings, "rater_agreement")
    parts = [icc(ratings)]
    if x.shape[1] == 2:
        parts.append(weighted_kappa(ratings, categories=categories, alpha=alpha))
    else:
        parts.append(fleiss_kappa(ratings, categories=categories))
    return pd.concat(parts, ignore_index=True)
