"""Visit-window rules: which visit is the baseline and which the follow-up.

Plain functions on :class:`datetime.date` values, so a study's rules can be
read, tested and cited exactly as they are applied.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from typing import Iterable

from .._errors import HemifaceError


class VisitRuleError(HemifaceError, TypeError):
    """A visit rule was given something that is not a calendar date."""


def _check_date(name: str, value) -> _dt.date:
    # datetime is a subclass of date; a time of day has no place in these rules.
    if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
        raise VisitRuleError(f"{name} must be a datetime.date; got {type(value).__name__} {value!r}")
    return value


def add_calendar_months(day: _dt.date, months: int) -> _dt.date:
    """The same day of the month ``months`` calendar months later, clamped to the month's last day.

    31 January + 1 month = 28 (or 29) February; 31 August + 6 months = 28 (or 29) February.
    """
    _check_date("day", day)
    index = day.month - 1 + int(months)
    year, month = day.year + index // 12, index % 12 + 1
    return _dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def baseline_visit(surgery_date: _dt.date, visit_dates: Iterable[_dt.date], *, window_days: int = 90) -> _dt.date | None:
    """The last visit on or before the surgery date, at most ``window_days`` before it; None if there is none.

    A visit on the day of surgery counts as preoperative.
    """
    surgery_date = _check_date("surgery_date", surgery_date)
    if int(window_days) < 0:
        raise VisitRuleError(f"window_days must be >= 0; got {window_days!r}")
    earliest = surgery_date - _dt.timedelta(days=int(window_days))
    eligible = [_check_date("visit date", d) for d in visit_dates]
    eligible = [d for d in eligible if earliest <= d <= surgery_date]
    return max(eligible) if eligible else None


def followup_visit(surgery_date: _dt.date, visit_dates: Iterable[_dt.date], *, months: int = 6) -> _dt.date | None:
    """The first visit on or after ``months`` calendar months after the surgery; None if there is none.

    "6 calendar months after 31 August" is 28 February (29 in a leap year): the
    day is clamped to the end of the target month.
    """
    surgery_date = _check_date("surgery_date", surgery_date)
    if int(months) < 0:
        raise VisitRuleError(f"months must be >= 0; got {months!r}")
    due = add_calendar_months(surgery_date, months)
    eligible = [d for d in (_check_date("visit date", d) for d in visit_dates) if d >= due]
    return min(eligible) if eligible else None
