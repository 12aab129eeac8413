"""The whole statistical analysis plan on the study's endpoint table."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._cells import read_flag
from ._ancova import ANCOVA_ASSUMPTION_COLUMNS, ANCOVA_COLUMNS, ancova
from ._categorical import RATE_COLUMNS, RATE_TEST_COLUMNS, complications_by_group, rate_rows
from ._common import frame
from ._errors import StatsError
from ._inference import GROUP_COLUMNS, PAIRED_COLUMNS, compare_groups, paired_change
from ._table_one import DEFAULT_CATEGORICAL, DEFAULT_CONTINUOUS, OVERALL, TABLE_ONE_COLUMNS, describe, table_one

logger = logging.getLogger("hemiface")


@dataclass(frozen=True)
class Endpoint:
    """One pre/post endpoint of the endpoint table. Change = follow-up - baseline."""

    endpoint: str
    label: str
    unit: str
    baseline_column: str
    followup_column: str
    change_column: str
    reason_column: str | None
    population: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ENDPOINT_COLUMNS}


#: Columns of the ``endpoints`` table (frozen: a tested constant).
ENDPOINT_COLUMNS = (
    "endpoint",
    "label",
    "unit",
    "baseline_column",
    "followup_column",
    "change_column",
    "reason_column",
    "population",
)

#: The fixed endpoints; FACE-Q scales are added for every ``faceq_<scale>_baseline`` column present.
ENDPOINTS = (
    Endpoint("symmetry_ratio", "2D symmetry ratio", "%", "symmetry_ratio_baseline_percent",
             "symmetry_ratio_followup_percent", "symmetry_ratio_change", "missing_2d_reason",
             "patients with a usable frontal photograph at baseline and follow-up"),
    Endpoint("discrepancy_percent", "3D volume discrepancy (primary 3D measure)", "%",
             "discrepancy_baseline_percent", "discrepancy_followup_percent", "discrepancy_change_percent",
             "missing_3d_reason", "subset of patients with a 3D scan at baseline and follow-up"),
    Endpoint("discrepancy_mm3", "3D volume discrepancy", "mm3", "discrepancy_baseline_mm3",
             "discrepancy_followup_mm3", "discrepancy_change_mm3", "missing_3d_reason",
             "subset of patients with a 3D scan at baseline and follow-up"),
)

@dataclass(frozen=True)
class Outcome:
    """A follow-up outcome: one value per patient, measured once (no baseline), summarised by group.

    ``population_column``: only patients with a value there belong to the outcome (e.g. the
    retention rate is defined for patients with a recorded injected volume); among them a
    missing value is listed in ``missing`` with ``reason_column``'s text.
    """

    outcome: str
    label: str
    unit: str
    column: str
    population_column: str
    reason_column: str | None
    population: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in OUTCOME_COLUMNS}


#: Columns of the ``outcomes`` table (frozen: a tested constant).
OUTCOME_COLUMNS = ("outcome", "label", "unit", "column", "population_column", "reason_column", "population")

#: The follow-up outcomes, analysed when the endpoint table has their columns.
OUTCOMES = (
    Outcome("graft_retention", "Graft retention at follow-up", "%", "graft_retention_percent", "fat_injected_ml",
            "missing_retention_reason",
            "patients with a recorded injected fat volume; net 3D volume gained / volume injected"),
    Outcome("achieved_of_planned", "Achieved volume, share of planned", "%", "achieved_of_planned_percent",
            "planned_gain_mm3", "missing_3d_reason",
            "patients with a recorded planned gain; net 3D volume gained / planned gain"),
)

_FACEQ = re.compile(r"^faceq_(?P<scale>[a-z0-9_]+)_baseline$")

#: Columns of the ``descriptives`` table.
DESCRIPTIVE_COLUMNS = ("endpoint", "group", "timepoint", "n", "n_missing", "missing_ids", "mean", "sd", "median",
                       "q1", "q3", "min", "max")
#: Columns of the ``missing`` table.
MISSING_COLUMNS = ("patient_id", "group", "endpoint", "timepoint", "reason")
#: Complication outcomes always reported (one per complication type is added, ``complication_type:<type>``).
COMPLICATION_OUTCOMES = ("any_complication", "major_complication")

#: Columns of the ``outcome_descriptives`` table.
OUTCOME_DESCRIPTIVE_COLUMNS = ("outcome", "group", "n", "n_missing", "missing_ids", "mean", "sd", "median", "q1", "q3",
                               "min", "max")

#: The endpoint whose photographs carry a head pose, and the endpoint table's column saying whether the two
#: visits' poses differ beyond the limit (``study._endpoints``: True, False, or missing when unknown).
POSE_ENDPOINT = "symmetry_ratio"
POSE_DIFFERS_COLUMN = "pose_differs"
#: Columns of the ``pose_sensitivity`` table: within each group (``group`` a technique or "all"; no
#: ``comparison``) and between the groups (``group`` "between", ``comparison`` set), in the pairs whose pose agrees.
POSE_SENSITIVITY_COLUMNS = ("endpoint", "group", "n_excluded", "excluded_ids") + GROUP_COLUMNS

#: Every table :func:`analyze_endpoints` returns, in order, with its frozen columns.
TABLE_COLUMNS = {
    "endpoints": ENDPOINT_COLUMNS,
    "table1": TABLE_ONE_COLUMNS,
    "descriptives": DESCRIPTIVE_COLUMNS,
    "within_group": ("endpoint", "group") + PAIRED_COLUMNS,
    "between_groups": ("endpoint",) + GROUP_COLUMNS,
    "ancova": ("endpoint",) + ANCOVA_COLUMNS,
    "ancova_assumptions": ("endpoint",) + ANCOVA_ASSUMPTION_COLUMNS,
    "complications": RATE_COLUMNS,
    "complication_tests": RATE_TEST_COLUMNS,
    "missing": MISSING_COLUMNS,
    "outcomes": OUTCOME_COLUMNS,
    "outcome_descriptives": OUTCOME_DESCRIPTIVE_COLUMNS,
    "outcome_between_groups": ("outcome",) + GROUP_COLUMNS,
    "pose_sensitivity": POSE_SENSITIVITY_COLUMNS,
}

REQUIRED_COLUMNS = (
    "patient_id",
    "complications_followup",
    "major_complication",
    "missing_2d_reason",
    "missing_3d_reason",
)


def endpoints_of(endpoints: pd.DataFrame) -> list[Endpoint]:
    """The fixed endpoints and one per FACE-Q scale with baseline and follow-up columns in ``endpoints``."""
    out = list(ENDPOINTS)
    for col in endpoints.columns:
        m = _FACEQ.match(col)
        if not m:
            continue
        scale = m["scale"]
        follow = f"faceq_{scale}_followup"
        if follow not in endpoints.columns:
            raise StatsError(f"endpoint table has {col!r} but no {follow!r}")
        out.append(Endpoint(f"faceq_{scale}", f"FACE-Q {scale.replace('_', ' ')}", "score (0-100)", col, follow,
                            f"faceq_{scale}_change", None, "patients with the FACE-Q scale at baseline and follow-up"))
    return out


def outcomes_of(endpoints: pd.DataFrame) -> list[Outcome]:
    """The follow-up outcomes whose value and population columns ``endpoints`` has."""
    return [oc for oc in OUTCOMES if {oc.column, oc.population_column} <= set(endpoints.columns)]


def _follow_up_outcome(oc: Outcome, data: pd.DataFrame, ids, groups, order, include_overall, tables, kw) -> None:
    """Descriptives by group (and all), the between-group comparison of the value, and who is missing and why.

    Summarised as the changes of the pre/post endpoints are: the same descriptive
    statistics and the same between-group test selection (:func:`compare_groups`).
    """
    values = _numeric(data, oc.column)
    member = np.isfinite(_numeric(data, oc.population_column))
    tables["outcomes"].append(oc.to_dict())
    for i in np.flatnonzero(member & ~np.isfinite(values)):
        r = data[oc.reason_column].iloc[i] if oc.reason_column in data.columns else None
        reason = r.strip() if isinstance(r, str) and r.strip() else f"{oc.label} not available (no reason recorded)"
        tables["missing"].append(dict(patient_id=ids[i], group=groups[i], endpoint=oc.outcome, timepoint="followup",
                                      reason=reason))
    present = [g for g in order if (member & (groups == g).to_numpy()).any()]
    sets = [(g, member & (groups == g).to_numpy()) for g in present]
    if include_overall and member.any():
        sets.append((OVERALL, member))
    for g, m in sets:
        miss = [ids[i] for i in np.flatnonzero(m & ~np.isfinite(values))]
        tables["outcome_descriptives"].append(dict(outcome=oc.outcome, group=g, n_missing=len(miss),
                                                   missing_ids=";".join(miss), **describe(values[m])))
    if len(present) >= 2:
        idx = np.flatnonzero(member)
        res = compare_groups(values[idx], groups.iloc[idx].to_numpy(), order=present, ids=[ids[i] for i in idx], **kw)
        res.insert(0, "outcome", oc.outcome)
        tables["outcome_between_groups"] += res.to_dict("records")


def _check_table(endpoints: pd.DataFrame, group_column: str, eps: list[Endpoint]) -> None:
    need = list(REQUIRED_COLUMNS) + [group_column]
    for ep in eps:
        need += [ep.baseline_column, ep.followup_column]
    absent = [c for c in dict.fromkeys(need) if c not in endpoints.columns]
    if absent:
        raise StatsError(f"endpoint table lacks column{'s' if len(absent) > 1 else ''} {', '.join(absent)}")
    ids = endpoints["patient_id"]
    if ids.isna().any():
        raise StatsError(f"endpoint table has {int(ids.isna().sum())} row(s) without a patient_id")
    dup = sorted(set(ids[ids.duplicated()].astype(str)))
    if dup:
        raise StatsError(f"endpoint table has more than one row for patient(s) {', '.join(dup)}; one row per patient")
    nog = endpoints.loc[endpoints[group_column].isna(), "patient_id"].astype(str).tolist()
    if nog:
        raise StatsError(f"patient(s) {', '.join(nog)} have no {group_column}; every analysed patient needs one")


def _numeric(endpoints: pd.DataFrame, col: str) -> np.ndarray:
    values = pd.to_numeric(endpoints[col], errors="coerce")
    bad = endpoints[col].notna() & values.isna()
    if bad.any():
        raise StatsError(f"column {col!r} has non-numeric values for {', '.join(endpoints.loc[bad, 'patient_id'].astype(str))}")
    arr = values.to_numpy(float)
    if np.isinf(arr).any():
        raise StatsError(f"column {col!r} has infinite values")
    return arr


def _change(endpoints: pd.DataFrame, ep: Endpoint, base: np.ndarray, follow: np.ndarray) -> np.ndarray:
    change = follow - base
    if ep.change_column in endpoints.columns:
        given = _numeric(endpoints, ep.change_column)
        scale = np.maximum(1.0, np.abs(np.nan_to_num(change)))
        agree = np.where(np.isfinite(change), np.abs(given - change) <= 1e-6 * scale, ~np.isfinite(given))
        agree |= np.isnan(change) & np.isnan(given)
        if not agree.all():
            who = endpoints.loc[~agree, "patient_id"].astype(str).tolist()
            raise StatsError(f"{ep.change_column} is not {ep.followup_column} - {ep.baseline_column} for "
                             f"{', '.join(who)}; fix the endpoint table (change = follow-up minus baseline)")
    return change


def _reason(endpoints: pd.DataFrame, ep: Endpoint, i: int, timepoint: str) -> str:
    if ep.reason_column is not None:
        r = endpoints[ep.reason_column].iloc[i]
        if isinstance(r, str) and r.strip():
            return r.strip()
    if ep.endpoint.startswith("faceq_"):
        return f"no {ep.label} score at {timepoint}"
    return f"{ep.label} not available at {timepoint} (no reason recorded)"


def _complication_outcomes(endpoints: pd.DataFrame) -> dict[str, pd.Series]:
    raw = endpoints["complications_followup"]
    known = raw.notna()
    types_per = raw.map(lambda s: [t.strip() for t in str(s).split(";") if t.strip()] if isinstance(s, str) else [])
    if known.any() and not raw[known].map(lambda s: isinstance(s, str)).all():
        raise StatsError("complications_followup must be text: ';'-separated types, '' for none, empty for unknown")
    any_ = pd.Series([bool(t) if k else None for t, k in zip(types_per, known)], index=endpoints.index, dtype=object)
    if "complications_followup_n" in endpoints.columns:
        count = _numeric(endpoints, "complications_followup_n")
        both = known.to_numpy() & np.isfinite(count)
        clash = both & ((count > 0) != np.array([bool(t) for t in types_per]))
        if clash.any():
            who = endpoints.loc[clash, "patient_id"].astype(str).tolist()
            raise StatsError(f"complications_followup_n and complications_followup disagree on whether there was a "
                             f"complication for {', '.join(who)}")
    out = {"any_complication": any_}
    major = endpoints["major_complication"]
    out["major_complication"] = pd.Series([None if pd.isna(v) else bool(v) for v in major], index=endpoints.index,
                                          dtype=object)
    for t in sorted({t for ts in types_per for t in ts}):
        out[f"complication_type:{t}"] = pd.Series([(t in ts) if k else None for ts, k in zip(types_per, known)],
                                                  index=endpoints.index, dtype=object)
    return out


def pose_agrees(values) -> np.ndarray:
    """True where the endpoint table's ``pose_differs`` says False (the two visits' head poses agree within the
    limit): False, 0 or "False" (a table read back from CSV). True, missing or unreadable: not known to agree."""
    return np.array([read_flag(v) is False for v in values], dtype=bool)


def _pose_sensitivity(data, ids, groups, order, sets, kw) -> list[dict]:
    """The 2D endpoint again in the pairs whose head pose agrees between the visits (sensitivity analysis).

    The pairs left out are those flagged (or of unknown pose) that have a change; they are listed in each
    row. Empty when the table has no pose column (an endpoint table from before pose agreement).
    """
    if POSE_DIFFERS_COLUMN not in data:
        return []
    ep = next(e for e in ENDPOINTS if e.endpoint == POSE_ENDPOINT)
    base, follow = _numeric(data, ep.baseline_column), _numeric(data, ep.followup_column)
    change = _change(data, ep, base, follow)
    keep = pose_agrees(data[POSE_DIFFERS_COLUMN])
    rows = []

    def add(res, group, excluded):
        for r in res.to_dict("records"):
            rows.append(dict(endpoint=ep.endpoint, group=group, n_excluded=len(excluded),
                             excluded_ids=";".join(excluded), **r))

    for g, m in sets:
        excluded = [ids[i] for i in np.flatnonzero(m & ~keep & np.isfinite(change))]
        add(paired_change(base[m & keep], follow[m & keep], ids=[ids[i] for i in np.flatnonzero(m & keep)], **kw),
            g, excluded)
    kept_order = [g for g in order if (keep & (groups == g).to_numpy()).any()]
    if len(kept_order) >= 2:
        m = keep & groups.isin(kept_order).to_numpy()
        excluded = [ids[i] for i in np.flatnonzero(~keep & np.isfinite(change))]
        add(compare_groups(change[m], groups[m].to_numpy(), order=kept_order, ids=[ids[i] for i in np.flatnonzero(m)],
                           **kw), "between", excluded)
    return rows


def analyze_endpoints(
    endpoints: pd.DataFrame,
    *,
    group_column: str = "technique",
    alpha: float = 0.05,
    normality_alpha: float = 0.05,
    include_overall: bool = True,
    order=None,
) -> dict[str, pd.DataFrame]:
    """Run the statistical analysis plan on the endpoint table.

    Parameters
    ----------
    endpoints : pandas.DataFrame
        The study's endpoint table, one row per eligible patient (columns in
        the :mod:`hemiface.stats` module docstring). Not modified.
    group_column : str
        Column holding the group (the surgical technique).
    alpha : float
        Confidence intervals at level ``1 - alpha``.
    normality_alpha : float
        Shapiro-Wilk threshold of the test selection rule.
    include_overall : bool
        Also test the within-patient change in all patients pooled (group "all").
    order : sequence of str, optional
        Group order (default sorted): the sign of two-group differences is
        ``order[0] - order[1]`` and ``order[0]`` is the ANCOVA reference.

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables of :data:`TABLE_COLUMNS`, in that order, each with exactly
        those columns (a table may have no rows, e.g. the between-group tables
        when only one group is present).

    Raises
    ------
    StatsError
        When a required column is absent, a patient appears twice or has no
        group, a value is not numeric, or a ``*_change`` column disagrees with
        follow-up minus baseline.
    """
    eps = endpoints_of(endpoints)
    _check_table(endpoints, group_column, eps)
    data = endpoints.reset_index(drop=True)
    ids = data["patient_id"].astype(str).tolist()
    groups = data[group_column].astype(str)
    present = sorted(groups.unique())
    order = present if order is None else [str(o) for o in order]
    if sorted(order) != present:
        raise StatsError(f"order must list each group exactly once: {present}; got {order}")
    if not order:
        logger.warning("no patients: every table is empty")
    elif len(order) < 2:
        logger.warning("only one %s (%s): between-group comparisons are not made", group_column, order[0])
    kw = dict(alpha=alpha, normality_alpha=normality_alpha)
    tables: dict[str, list] = {name: [] for name in TABLE_COLUMNS}
    tables["endpoints"] = [ep.to_dict() for ep in eps]
    sets = [(g, (groups == g).to_numpy()) for g in order]
    if include_overall:
        sets.append((OVERALL, np.ones(len(data), bool)))

    for ep in eps:
        base = _numeric(data, ep.baseline_column)
        follow = _numeric(data, ep.followup_column)
        change = _change(data, ep, base, follow)
        for i in np.flatnonzero(~np.isfinite(change)):
            tp = ("baseline and followup" if not (np.isfinite(base[i]) or np.isfinite(follow[i])) else
                  "baseline" if not np.isfinite(base[i]) else "followup")
            tables["missing"].append(dict(patient_id=ids[i], group=groups[i], endpoint=ep.endpoint, timepoint=tp,
                                          reason=_reason(data, ep, i, tp)))
        complete = np.isfinite(change)
        for g, m in sets:
            gid = [ids[i] for i in np.flatnonzero(m)]
            res = paired_change(base[m], follow[m], ids=gid, **kw)
            res.insert(0, "group", g)
            res.insert(0, "endpoint", ep.endpoint)
            tables["within_group"] += res.to_dict("records")
            miss = [ids[i] for i in np.flatnonzero(m & ~complete)]
            for tp, v in (("baseline", base), ("followup", follow), ("change", change)):
                tables["descriptives"].append(dict(endpoint=ep.endpoint, group=g, timepoint=tp, n_missing=len(miss),
                                                   missing_ids=";".join(miss), **describe(v[m & complete])))
        if len(order) >= 2:
            res = compare_groups(change, groups, order=order, ids=ids, **kw)
            res.insert(0, "endpoint", ep.endpoint)
            tables["between_groups"] += res.to_dict("records")
            an = ancova(base, follow, groups, order=order, alpha=alpha, ids=ids)
            for name, t in (("ancova", an.coefficients), ("ancova_assumptions", an.assumptions)):
                t = t.copy()
                t.insert(0, "endpoint", ep.endpoint)
                tables[name] += t.to_dict("records")

    for oc in outcomes_of(data):
        _follow_up_outcome(oc, data, ids, groups, order, include_overall, tables, kw)
    tables["pose_sensitivity"] = _pose_sensitivity(data, ids, groups, order, sets, kw)

    table1 = table_one(data, group_column=group_column, order=order, normality_alpha=normality_alpha)
    for var in DEFAULT_CONTINUOUS + DEFAULT_CATEGORICAL:
        for i in np.flatnonzero(data[var].isna().to_numpy()):
            tables["missing"].append(dict(patient_id=ids[i], group=groups[i], endpoint=var, timepoint="baseline",
                                          reason=f"{var} not recorded"))

    g_arr = groups.to_numpy(dtype=object)
    for outcome, events in _complication_outcomes(data).items():
        known = events.notna().to_numpy()
        if outcome == "any_complication":
            for i in np.flatnonzero(~known):
                tables["missing"].append(dict(patient_id=ids[i], group=groups[i], endpoint="complications",
                                              timepoint="followup", reason="complications at follow-up not recorded"))
        elif outcome == "major_complication":
            for i in np.flatnonzero(~known):
                tables["missing"].append(dict(patient_id=ids[i], group=groups[i], endpoint="major_complication",
                                              timepoint="followup", reason="major complication not recorded"))
        if len(order) >= 2:
            res = complications_by_group(events, groups, outcome=outcome, order=order, alpha=alpha, ids=ids)
            tables["complications"] += res.rates.to_dict("records")
            tables["complication_tests"] += res.tests.to_dict("records")
        else:
            e = np.array([bool(v) if k else False for v, k in zip(events, known)])
            tables["complications"] += rate_rows(e, known, g_arr, np.ones(len(data), bool), ids, order=order,
                                                 outcome=outcome, alpha=alpha)

    out = {name: table1 if name == "table1" else frame(tables[name], cols) for name, cols in TABLE_COLUMNS.items()}
    for name, t in out.items():
        logger.info("stats: %s: %d rows", name, len(t))
    return out

