"""Study cohorts: visit-window rules (the database, import and endpoint table come next).

Public: :func:`baseline_visit`, :func:`followup_visit`, :func:`add_calendar_months`.
"""

from ._visits import VisitRuleError, add_calendar_months, baseline_visit, followup_visit

__all__ = ["VisitRuleError", "add_calendar_months", "baseline_visit", "followup_visit"]
