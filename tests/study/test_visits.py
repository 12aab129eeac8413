"""Visit-window rules on the edge cases a study meets."""

from datetime import date, datetime

import pytest
from study_helpers import no_database

from hemiface.study import VisitRuleError, add_calendar_months, baseline_visit, followup_visit

pytestmark = no_database


@pytest.mark.parametrize(
    "start,months,expected",
    [
        (date(2021, 1, 31), 6, date(2021, 7, 31)),
        (date(2021, 1, 31), 1, date(2021, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2023, 8, 31), 6, date(2024, 2, 29)),
        (date(2022, 8, 31), 6, date(2023, 2, 28)),
        (date(2023, 2, 28), 6, date(2023, 8, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2021, 7, 15), 6, date(2022, 1, 15)),  # across a year end
    ],
)
def test_calendar_months(start, months, expected):
    assert add_calendar_months(start, months) == expected


def test_followup_exactly_six_months_counts():
    assert followup_visit(date(2021, 3, 10), [date(2021, 9, 10)]) == date(2021, 9, 10)


def test_followup_at_five_months_thirty_days_does_not():
    # 10 March + 5 months + 30 days = 9 September: one day short.
    assert followup_visit(date(2021, 3, 10), [date(2021, 9, 9)]) is None


def test_followup_31_january_plus_six_months():
    visits = [date(2021, 7, 30), date(2021, 7, 31)]
    assert followup_visit(date(2021, 1, 31), visits) == date(2021, 7, 31)


def test_followup_from_31_august_lands_on_the_leap_day():
    visits = [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    assert followup_visit(date(2023, 8, 31), visits) == date(2024, 2, 29)


def test_first_eligible_followup_wins_whatever_the_order():
    visits = [date(2022, 3, 1), date(2021, 12, 1), date(2021, 10, 1), date(2021, 4, 1)]
    assert followup_visit(date(2021, 3, 10), visits) == date(2021, 10, 1)


def test_followup_before_surgery_is_never_chosen():
    assert followup_visit(date(2021, 3, 10), [date(2020, 10, 1), date(2021, 3, 9)]) is None


def test_baseline_is_the_last_preoperative_visit_in_the_window():
    visits = [date(2020, 11, 1), date(2021, 1, 20), date(2021, 3, 1), date(2021, 3, 20)]
    assert baseline_visit(date(2021, 3, 10), visits) == date(2021, 3, 1)


def test_baseline_on_the_day_of_surgery_counts():
    assert baseline_visit(date(2021, 3, 10), [date(2021, 2, 1), date(2021, 3, 10)]) == date(2021, 3, 10)


def test_baseline_window_edges():
    surgery = date(2021, 3, 10)
    assert baseline_visit(surgery, [date(2020, 12, 10)]) == date(2020, 12, 10)  # exactly 90 days
    assert baseline_visit(surgery, [date(2020, 12, 9)]) is None  # 91 days
    assert baseline_visit(surgery, [date(2020, 12, 9)], window_days=91) == date(2020, 12, 9)


def test_no_visits():
    assert baseline_visit(date(2021, 3, 10), []) is None
    assert followup_visit(date(2021, 3, 10), []) is None


def test_only_dates_are_accepted():
    with pytest.raises(VisitRuleError, match="datetime.date"):
        followup_visit(datetime(2021, 3, 10, 9, 30), [date(2021, 10, 1)])
    with pytest.raises(VisitRuleError, match="visit date"):
        baseline_visit(date(2021, 3, 10), ["2021-03-01"])
