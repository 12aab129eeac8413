"""Input checks and row helpers shared by the statistics functions."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .._validate import check_option
from ._errors import StatsError


def as_float_array(name: str, values) -> np.ndarray:
    """``values`` as a 1-D float array; None/NaN stay NaN (missing), text or infinity raise."""
    if isinstance(values, (str, bytes)):
        raise StatsError(f"{name} must be a 1-D sequence of numbers; got a string")
    try:
        arr = pd.to_numeric(object_series(values), errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{name} must hold numbers (NaN or None for missing); {exc}") from None
    if arr.ndim != 1:
        raise StatsError(f"{name} must be 1-D; got shape {arr.shape}")
    if np.isinf(arr).any():
        raise StatsError(f"{name} holds infinite values at positions {np.flatnonzero(np.isinf(arr)).tolist()}; "
                         "use NaN for missing values")
    return arr


def check_aligned(**inputs) -> None:
    """Refuse pandas inputs whose indexes differ: values are paired by position, never silently re-paired."""
    indexed = [(name, v.index) for name, v in inputs.items() if isinstance(v, (pd.Series, pd.DataFrame))]
    for name, index in indexed[1:]:
        if not index.equals(indexed[0][1]):
            raise StatsError(
                f"{indexed[0][0]} and {name} are pandas objects with different indexes; values are paired by "
                f"position, so align them first (e.g. {name}.reindex({indexed[0][0]}.index)) or pass arrays"
            )


def resolve_ids(ids, n: int, *candidates) -> list[str]:
    """Labels of the observations: ``ids`` if given, else the index of the first pandas input, else 0..n-1."""
    if ids is None:
        for c in candidates:
            if isinstance(c, pd.Series):
                ids = c.index
                break
    if ids is None:
        return [str(i) for i in range(n)]
    ids = [str(i) for i in ids]
    if len(ids) != n:
        raise StatsError(f"ids has {len(ids)} labels for {n} observations; give one id per observation")
    return ids


def object_series(values) -> pd.Series:
    """Any sequence (or Series, index dropped: values pair by position) as an object Series."""
    return pd.Series(list(values) if not isinstance(values, pd.Series) else values.to_numpy(), dtype=object)


def group_labels(groups: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Group labels as strings ("" where missing) and the mask of the present ones."""
    present = groups.notna().to_numpy()
    return np.array([str(s) if ok else "" for s, ok in zip(groups, present)], dtype=object), present


def group_order(present: list[str], order, who: str) -> list[str]:
    """The groups in reporting order: ``order`` (each present label once) or sorted; at least two."""
    if order is None:
        order = list(present)
    else:
        order = [str(o) for o in order]
        if sorted(order) != present:
            raise StatsError(f"order must list each group exactly once: {present}; got {order}")
    if len(order) < 2:
        raise StatsError(f"{who} needs at least two groups; got {len(order)} ({order})")
    return order


def check_alpha(name: str, value: float) -> float:
    value = float(value)
    if not 0 < value < 1:
        raise StatsError(f"{name} must be between 0 and 1 (exclusive); got {value!r}")
    return value


def check_method(name: str, value: str) -> str:
    check_option(name, value, ("auto", "exact", "approx"))
    return value


def join_ids(ids: Sequence[str]) -> str:
    return ";".join(ids)


def blank_row(columns: Sequence[str], **values) -> dict:
    row = {c: np.nan for c in columns}
    unknown = set(values) - set(columns)
    if unknown:  # programming error, not user error
        raise KeyError(f"unknown columns {sorted(unknown)}")
    row.update(values)
    return row


def frame(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x:.{digits}g}"
