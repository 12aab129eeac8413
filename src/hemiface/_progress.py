"""The one progress helper: a tqdm bar on standard error.

Shown when standard error is a terminal; ``HEMIFACE_PROGRESS=0`` hides it and
``HEMIFACE_PROGRESS=1`` forces it (for example in a CI log).
"""

from __future__ import annotations

import os
import sys


def _disabled() -> bool | None:
    value = os.environ.get("HEMIFACE_PROGRESS", "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return True
    if value in ("1", "true", "yes", "on"):
        return False
    return None  # tqdm: hide when not a terminal


def progress(*, total: int, desc: str, unit: str = "it"):
    """A progress bar over ``total`` steps (use as a context manager; call ``update(1)`` per step)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=_disabled(), dynamic_ncols=True)
