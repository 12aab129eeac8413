"""Which patients enter the analysis: inclusion window, baseline and follow-up visits, with reasons.

Applies :func:`baseline_visit` and :func:`followup_visit` to every patient of a
study, using the rules in its ``study.toml``. No patient is dropped silently:
each row says whether the patient is eligible and, if not, why.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ._models import Patient
from ._visits import baseline_visit, followup_visit

#: Columns of :func:`eligibility`'s table (frozen: a tested constant).
ELIGIBILITY_COLUMNS = (
    "patient_id",
    "technique",
    "initial_surgery_date",
    "in_inclusion_window",
    "baseline_date",
    "followup_date",
    "followup_interval_days",
    "eligible",
    "exclusion_reason",
)

#: Exclusion reasons, in the order they are checked (the first that applies is reported).
EXCLUSION_REASONS = {
    "no_initial_surgery": "no surgery is marked as the initial one",
    "outside_inclusion_window": "the initial surgery is outside the inclusion window",
    "no_baseline_visit": "no preoperative visit on or before the initial surgery within the baseline window",
    "no_followup_visit": "no follow-up visit at or after the follow-up interval",
}

#: Keys of :func:`flow_counts` (a tested constant).
FLOW_KEYS = ("screened", "with_initial_surgery", "in_inclusion_window", "with_baseline", "with_followup", "eligible")


@dataclass(frozen=True)
class PatientEligibility:
    """One patient's visit-rule outcome. Dates are ``datetime.date`` or None."""

    patient_id: str
    technique: str | None
    initial_surgery_date: _dt.date | None
    in_inclusion_window: bool
    baseline_date: _dt.date | None
    followup_date: _dt.date | None
    followup_interval_days: int | None
    eligible: bool
    exclusion_reason: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def patient_eligibility(settings, patient_id: str, surgeries, visits) -> PatientEligibility:
    """Apply the study's rules to one patient.

    Parameters
    ----------
    settings : StudySettings
        Inclusion window and visit rules.
    patient_id : str
        Pseudonymous id.
    surgeries : iterable of (date, technique, is_initial)
    visits : iterable of (date, kind), kind ``"preoperative"`` or ``"follow-up"``
    """
    initial = [(d, t) for d, t, is_initial in surgeries if is_initial]
    if len(initial) > 1:  # the import refuses this; a hand-edited database might not
        from ._errors import StudyError

        raise StudyError(f"patient {patient_id} has {len(initial)} initial surgeries; only one can be the initial one")
    if not initial:
        return PatientEligibility(patient_id, None, None, False, None, None, None, False, "no_initial_surgery")
    surgery_date, technique = initial[0]
    lo, hi = settings.inclusion_from, settings.inclusion_to
    in_window = (lo is None or surgery_date >= lo) and (hi is None or surgery_date <= hi)
    visits = list(visits)
    baseline = baseline_visit(
        surgery_date, [d for d, kind in visits if kind == "preoperative"], window_days=settings.baseline_window_days
    )
    followup = followup_visit(
        surgery_date, [d for d, kind in visits if kind == "follow-up"], months=settings.followup_months
    )
    if not in_window:
        reason = "outside_inclusion_window"
    elif baseline is None:
        reason = "no_baseline_visit"
    elif followup is None:
        reason = "no_followup_visit"
    else:
        reason = None
    return PatientEligibility(
        patient_id=patient_id,
        technique=technique,
        initial_surgery_date=surgery_date,
        in_inclusion_window=in_window,
        baseline_date=baseline,
        followup_date=followup,
        followup_interval_days=(followup - surgery_date).days if followup else None,
        eligible=reason is None,
        exclusion_reason=reason,
    )


def eligibility(study):
    """Every patient of ``study`` with the visit rules applied: a DataFrame, one row per patient.

    Columns are :data:`ELIGIBILITY_COLUMNS`; rows are sorted by ``patient_id``. The
    rules used (``study.settings.to_dict()``) are in ``DataFrame.attrs["rules"]``.
    Baseline is chosen among ``preoperative`` visits and follow-up among
    ``follow-up`` visits, relative to the surgery marked as initial.
    """
    import pandas as pd

    with study.session() as session:
        patients = session.scalars(
            select(Patient).options(selectinload(Patient.surgeries), selectinload(Patient.visits)).order_by(Patient.pseudonym)
        ).all()
        rows = [
            patient_eligibility(
                study.settings, p.pseudonym,
                [(s.date, s.technique, s.is_initial) for s in p.surgeries],
                [(v.date, v.kind) for v in p.visits],
            ).to_dict()
            for p in patients
        ]
    table = pd.DataFrame(rows, columns=list(ELIGIBILITY_COLUMNS))
    table["followup_interval_days"] = table["followup_interval_days"].astype("Int64")
    table["in_inclusion_window"] = table["in_inclusion_window"].astype(bool)
    table["eligible"] = table["eligible"].astype(bool)
    table.attrs["rules"] = study.settings.to_dict()
    return table


def flow_counts(table) -> dict[str, int]:
    """The study flow from an :func:`eligibility` table: how many patients pass each step (:data:`FLOW_KEYS`)."""
    has_initial = table["initial_surgery_date"].notna()
    in_window = has_initial & table["in_inclusion_window"]
    with_baseline = in_window & table["baseline_date"].notna()
    with_followup = with_baseline & table["followup_date"].notna()
    return {
        "screened": int(len(table)),
        "with_initial_surgery": int(has_initial.sum()),
        "in_inclusion_window": int(in_window.sum()),
        "with_baseline": int(with_baseline.sum()),
        "with_followup": int(with_followup.sum()),
        "eligible": int(table["eligible"].sum()),
    }
