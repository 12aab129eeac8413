"""How a yes/no cell of an endpoint table reads, whether it comes from pandas or back from a CSV file."""

from __future__ import annotations


def read_flag(value) -> bool | None:
    """True for True, 1 or "True"; False for False, 0 or "False" (any case, and "1.0"/"0.0" as pandas
    writes a float column); None for a missing or unreadable value."""
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    return None
