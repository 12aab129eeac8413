"""Table 1: baseline characteristics by group."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from ._common import blank_row, check_alpha, frame, join_ids
from ._errors import StatsError

#: Columns of :func:`table_one` (frozen: a tested constant).
TABLE_ONE_COLUMNS = (
    "variable",
    "level",
    "group",
    "n",
    "n_missing",
    "missing_ids",
    "summary_type",
    "summary",
    "mean",
    "sd",
    "median",
    "q1",
    "q3",
    "count",
    "percent",
)

#: Continuous baseline variables of the endpoint table, summarised by default.
DEFAULT_CONTINUOUS = ("age_at_surgery_years", "age_at_onset_years", "years_since_onset", "followup_interval_days")
#: Categorical baseline variables of the endpoint table, summarised by default.
DEFAULT_CATEGORICAL = ("sex", "affected_side", "guerrerosantos_stage")
#: Label of the all-patients column.
OVERALL = "all"


def _level_order(values: pd.Series) -> list:
    levels = list(pd.unique(values.dropna()))
    try:
        return sorted(levels, key=float)
    except (TypeError, ValueError):
        return sorted(levels, key=str)


def table_one(
    data: pd.DataFrame,
    *,
    group_column: str = "technique",
    id_column: str = "patient_id",
    continuous: Sequence[str] = DEFAULT_CONTINUOUS,
    categorical: Sequence[str] = DEFAULT_CATEGORICAL,
    order=None,
    normality_alpha: float = 0.05,
    digits: int = 1,
) -> pd.DataFrame:
    r"""Baseline characteristics by group, with n and the missing patients of every variable.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient (the endpoint table).
    group_column, id_column : str
        Columns holding the group label and the patient id.
    continuous, categorical : sequence of str
        Variables to summarise; every one must be a column of ``data``.
    order : sequence of str, optional
        Group order (default sorted); the ``"all"`` column comes last.
    normality_alpha : float
        A continuous variable is summarised as mean ± SD when Shapiro-Wilk
        p >= ``normality_alpha`` in every group (each with n >= 3); otherwise
        (or when normality cannot be assessed) as median [Q1, Q3].
    digits : int
        Decimals in the ``summary`` text (the numeric columns are unrounded).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_ONE_COLUMNS`. A first row per group,
        ``variable`` = "patients", counts the patients. Continuous variables: one
        row per group, ``summary_type`` "mean_sd" (``summary`` "m ± s") or
        "median_iqr" (``summary`` "median [q1, q3]", quartiles of R's default
        type 7). Categorical variables: one row per level and group,
        ``summary_type`` "count_percent", ``summary`` "k (p%)" with p the
        percentage of the group's patients in whom the variable is known. ``n``
        is the number of patients with the variable known, ``n_missing`` and
        ``missing_ids`` those without.
    """
    normality_alpha = check_alpha("normality_alpha", normality_alpha)
    needed = [id_column, group_column, *continuous, *categorical]
    absent = [c for c in needed if c not in data.columns]
    if absent:
        raise StatsError(f"table_one: data has no column {', '.join(map(repr, absent))}")
    present = sorted(str(g) for g in pd.unique(data[group_column].dropna()))
    order = present if order is None else [str(o) for o in order]
    if sorted(order) != present:
        raise StatsError(f"order must list each group exactly once: {present}; got {order}")
    groups = data[group_column].map(lambda g: None if pd.isna(g) else str(g))
    ids = data[id_column].astype(str)
    columns = [(g, (groups == g).to_numpy()) for g in order] + [(OVERALL, np.ones(len(data), bool))]
    rows = [blank_row(TABLE_ONE_COLUMNS, variable="patients", level="", group=g, n=int(m.sum()), n_missing=0,
                      missing_ids="", summary_type="count", summary=str(int(m.sum())), count=int(m.sum()))
            for g, m in columns]
    for var in continuous:
        values = pd.to_numeric(data[var], errors="coerce")
        bad = data[var].notna() & values.isna()
        if bad.any():
            raise StatsError(f"table_one: column {var!r} has non-numeric values for {', '.join(ids[bad])}")
        x = values.to_numpy(float)
        ps = []
        for _, m in columns[:-1]:
            xv = x[m & np.isfinite(x)]
            ps.append(_st.shapiro(xv).pvalue if xv.size >= 3 and np.ptp(xv) > 0 else np.nan)
        normal = all(np.isfinite(p) and p >= normality_alpha for p in ps)
        for g, m in columns:
            xv = x[m & np.isfinite(x)]
            miss = list(ids[m & ~np.isfinite(x)])
            row = blank_row(TABLE_ONE_COLUMNS, variable=var, level="", group=g, n=int(xv.size), n_missing=len(miss),
                            missing_ids=join_ids(miss), summary_type="mean_sd" if normal else "median_iqr")
            if xv.size:
                q1, med, q3 = np.percentile(xv, [25, 50, 75])
                sd = float(np.std(xv, ddof=1)) if xv.size > 1 else np.nan
                row.update(mean=float(np.mean(xv)), sd=sd, median=float(med), q1=float(q1), q3=float(q3))
                row["summary"] = (f"{row['mean']:.{digits}f} ± {sd:.{digits}f}" if normal and np.isfinite(sd) else
                                  f"{med:.{digits}f} [{q1:.{digits}f}, {q3:.{digits}f}]")
                if normal and not np.isfinite(sd):
                    row["summary_type"] = "median_iqr"
            else:
                row["summary"] = "NA"
            rows.append(row)
    for var in categorical:
        col = data[var]
        known = col.notna().to_numpy()
        levels = _level_order(col)
        for g, m in columns:
            n = int((m & known).sum())
            miss = list(ids[m & ~known])
            for lev in levels:
                k = int(((col == lev).to_numpy() & m).sum())
                pct = 100 * k / n if n else np.nan
                rows.append(blank_row(TABLE_ONE_COLUMNS, variable=var, level=str(lev), group=g, n=n,
                                      n_missing=len(miss), missing_ids=join_ids(miss), summary_type="count_percent",
                                      summary=f"{k} ({pct:.{digits}f}%)" if n else f"{k} (NA)", count=k, percent=pct))
    return frame(rows, TABLE_ONE_COLUMNS)


def describe(values: np.ndarray) -> dict:
    """n, mean, sd, median, quartiles (R type 7), min and max of the finite values."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if not x.size:
        return dict(n=0, mean=np.nan, sd=np.nan, median=np.nan, q1=np.nan, q3=np.nan, min=np.nan, max=np.nan)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return dict(n=int(x.size), mean=float(np.mean(x)), sd=float(np.std(x, ddof=1)) if x.size > 1 else np.nan,
                median=float(med), q1=float(q1), q3=float(q3), min=float(x.min()), max=float(x.max()))

