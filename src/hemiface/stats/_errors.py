"""Errors of the statistics module."""

from __future__ import annotations

from .._errors import HemifaceError


class StatsError(HemifaceError, ValueError):
    """Input to a statistical analysis is malformed (unequal pre/post lengths, too few groups, bad values).

    Raised for inputs that cannot be analysed as asked; a sample that is merely
    too small to test is *not* an error: the result row says ``cannot test`` instead.
    """
