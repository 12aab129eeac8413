"""Number formatting for report tables: one rule per kind of column, chosen from the column's name.

The rules follow journal practice: p-values as ``<0.001`` or three decimals,
volumes (mm³) and areas (mm²) as whole numbers with thousands separators,
counts as whole numbers, lengths and percentages with one decimal, test
statistics and effect sizes with two. Missing values show as an en dash.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import re
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from ._errors import ReportError

#: Shown for a missing value (NaN, None, NaT).
MISSING = "\u2013"
#: The kinds of column :func:`format_value` knows.
KINDS = ("p", "n", "mm3", "mm2", "mm", "percent", "days", "years", "deg", "stat", "general", "text")

_UNIT_SUFFIXES = (  # (suffix, kind, label unit)
    ("_mm3", "mm3", "mm\u00b3"),
    ("_mm2", "mm2", "mm\u00b2"),
    ("_mm", "mm", "mm"),
    ("_percent", "percent", "%"),
    ("_pct", "percent", "%"),
    ("_days", "days", "days"),
    ("_years", "years", "years"),
    ("_deg", "deg", "\u00b0"),
)
_P_RE = re.compile(r"^(p|pval|pvalue|p_value|p_val|p_adj|p_adjusted|p_corrected|p_holm|p_fdr)(_.*)?$|_p$|_p_value$")
_N_RE = re.compile(r"^(n|count|events|df|df_resid|df_model|n_.*|.*_n|.*_count)$")
_STAT_NAMES = {
    "statistic", "effect_size", "ci_low", "ci_high", "estimate", "coef", "se", "t", "z", "u", "w", "f",
    "chi2", "hedges_g", "cohen_d", "rank_biserial", "r", "r2", "odds_ratio", "mean_difference",
}
_LABELS = {
    "p_value": "p", "p": "p", "p_adj": "p (adjusted)", "p_adjusted": "p (adjusted)", "n": "n",
    "ci_low": "CI low", "ci_high": "CI high", "effect_size": "Effect size", "statistic": "Statistic",
    "test": "Test", "selected": "Selected", "sd": "SD", "df": "df", "df_resid": "df (residual)", "se": "SE",
    "conf_level": "Confidence level", "n_missing": "n missing", "missing_ids": "Missing IDs", "q1": "Q1", "q3": "Q3",
}
_WORDS = {"followup": "follow-up", "faceq": "FACE-Q", "sd": "SD", "ci": "CI", "iqr": "IQR", "adm": "ADM", "id": "ID", "2d": "2D", "3d": "3D"}


def column_kind(name) -> str:
    """The formatting kind of a column, from its (snake_case) name."""
    key = str(name).lower()
    if _P_RE.search(key):
        return "p"
    if _N_RE.match(key):
        return "n"
    if key in ("percent", "pct"):
        return "percent"
    for suffix, kind, _ in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return kind
    if key in _STAT_NAMES or key.endswith("_ci_low") or key.endswith("_ci_high"):
        return "stat"
    return "general"


def column_label(name) -> str:
    """A reader's label for a snake_case column name: ``discrepancy_change_mm3`` -> ``Discrepancy change (mm³)``."""
    key = str(name)
    if key.lower() in _LABELS:
        return _LABELS[key.lower()]
    if " " in key.strip():  # already a reader's label (a journal table's "p (within)"): kept as written
        return key
    unit = None
    for suffix, _, label in _UNIT_SUFFIXES:
        if key.lower().endswith(suffix):
            key, unit = key[: -len(suffix)], label
            break
    words = [_WORDS.get(w.lower(), w) for w in key.split("_") if w]
    text = " ".join(words) if words else str(name)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _is_missing(value) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, Mapping)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _general(v: float) -> str:
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.2f}"
    return f"{v:.2g}"


def format_value(value, kind: str = "general") -> str:
    """Format one table cell. ``kind`` is one of :data:`KINDS` (see the module docstring)."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time(0) else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return f"{value.days:d} days"
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return ", ".join(format_value(v, "text") for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {format_value(v, 'text')}" for k, v in value.items())
    if not isinstance(value, numbers.Real) or kind == "text":
        return str(value)
    v = float(value)
    if math.isinf(v):
        return "\u221e" if v > 0 else "-\u221e"
    if kind == "p":
        return "<0.001" if v < 0.001 else f"{v:.3f}"
    if kind == "n":
        return f"{v:.0f}" if v == round(v) else _general(v)
    if kind in ("mm3", "mm2", "days"):
        return f"{v:,.0f}"
    if kind in ("mm", "percent", "years", "deg"):
        return f"{v:,.1f}"
    if kind == "stat":
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return _general(v)


Formatter = str | Callable[[object], str]


def _formatter(spec: Formatter) -> Callable[[object], str]:
    if callable(spec):
        return lambda v: MISSING if _is_missing(v) else str(spec(v))
    if spec in KINDS:
        return lambda v: format_value(v, spec)
    if isinstance(spec, str) and "{" in spec:
        return lambda v: MISSING if _is_missing(v) else spec.format(v)
    raise ReportError(
        f"formats: {spec!r} is not a kind ({', '.join(KINDS)}), a format string like '{{:.2f}}' or a function"
    )


def flatten_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with a plain index shown as columns and MultiIndex columns joined by ' / '."""
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" / ".join(str(p) for p in col if str(p) != "") for col in out.columns]
    if not isinstance(out.index, pd.RangeIndex) or out.index.name is not None:
        names = [n if n is not None else ("" if out.index.nlevels == 1 else f"level_{i}")
                 for i, n in enumerate(out.index.names)]
        out.index.names = names
        out = out.reset_index()
    return out


def format_table(df: pd.DataFrame, *, formats: Mapping[str, Formatter] | None = None):
    """Format a DataFrame for display.

    Returns
    -------
    columns : list of str
        The original column names (after :func:`flatten_columns`).
    labels : list of str
        Readers' labels (:func:`column_label`).
    rows : list of list of str
        The formatted cells.
    numeric : list of bool
        Whether each column holds numbers (right-aligned).
    """
    if not isinstance(df, pd.DataFrame):
        raise ReportError(f"a table must be a pandas DataFrame; got {type(df).__name__}")
    flat = flatten_columns(df)
    formats = dict(formats or {})
    unknown = [k for k in formats if k not in flat.columns]
    if unknown:
        raise ReportError(f"formats names columns the table does not have: {unknown}; columns: {list(flat.columns)}")
    columns = [str(c) for c in flat.columns]
    fns, numeric = [], []
    for name, col in zip(columns, flat.columns):
        series = flat[col]
        is_num = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if series.dtype == object:  # mixed ints and floats kept as Python objects
            present = [v for v in series if not _is_missing(v)]
            is_num = bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                           for v in present)
        numeric.append(bool(is_num))
        fns.append(_formatter(formats[col]) if col in formats else
                   (lambda v, k=column_kind(name): format_value(v, k)))
    rows = [[fn(v) for fn, v in zip(fns, values)] for values in flat.itertuples(index=False, name=None)]
    labels = [str(c) if str(c) == "" else column_label(c) for c in columns]
    return columns, labels, rows, numeric
