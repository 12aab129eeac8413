"""The endpoint table: one row per eligible patient, from the study database and `study run`'s results.

Changes are follow-up minus baseline. A missing value is NaN with the reason in
``missing_2d_reason`` / ``missing_3d_reason`` (for example "no photo at the
follow-up visit" or the analysis' own error message); nobody is dropped
silently: patients who are not eligible are listed, with their reason, by
:func:`study_flow`.
"""

from __future__ import annotations

import json
import math
import re

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..photo._compare import MAX_POSE_DIFFERENCE_DEG, POSE_ANGLES, pose_agreement
from ._eligibility import EXCLUSION_REASONS, eligibility, flow_counts
from ._models import AnalysisResult, Patient, Visit
from ._run import plan_jobs

#: Columns of :func:`endpoint_table` before the FACE-Q columns (frozen: a tested constant).
ENDPOINT_COLUMNS = (
    "patient_id", "technique", "affected_side", "sex", "age_at_surgery_years", "guerrerosantos_stage",
    "age_at_onset_years", "years_since_onset", "initial_surgery_date", "baseline_date", "followup_date",
    "followup_interval_days",
    "symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent", "symmetry_ratio_change",
    "discrepancy_baseline_mm3", "discrepancy_followup_mm3", "discrepancy_change_mm3",
    "discrepancy_baseline_percent", "discrepancy_followup_percent", "discrepancy_change_percent",
    "defect_volume_baseline_mm3", "volume_gain_mm3",
    # scan compare's SDs of the change: from the registration of the follow-up onto the baseline, and with what
    # the face region's edge may cut off (registration and edge in quadrature; neither is the method's error)
    "volume_gain_registration_sd_mm3", "discrepancy_change_registration_sd_mm3",
    "volume_gain_uncertainty_mm3", "discrepancy_change_uncertainty_mm3",
    "complications_followup", "complications_followup_n", "major_complication",
    "missing_2d_reason", "missing_3d_reason",
    # Head pose at each visit (mean over the visit's photos; degrees, as photo analyze reports it) and its
    # agreement between the visits; the experimental pose-compensated 2D ratio.
    "yaw_baseline_deg", "pitch_baseline_deg", "roll_baseline_deg",
    "yaw_followup_deg", "pitch_followup_deg", "roll_followup_deg",
    "yaw_difference_deg", "pitch_difference_deg", "roll_difference_deg", "pose_differs", "pose_flags",
    "symmetry_ratio_pose_compensated_baseline_percent", "symmetry_ratio_pose_compensated_followup_percent",
    "symmetry_ratio_pose_compensated_change",
    # What the surgeries between the visits put in, and what of it is there at follow-up (see graft_retention_percent).
    "fat_injected_ml", "adm_sheets", "adm_thickness_mm", "net_volume_gain_mm3", "graft_retention_percent",
    "planned_gain_mm3", "achieved_of_planned_percent", "missing_retention_reason",
)
#: Each FACE-Q scale adds ``faceq_<scale>_baseline``, ``faceq_<scale>_followup`` and ``faceq_<scale>_change``.
FACEQ_COLUMN = "faceq_{scale}_{when}"

#: Keys of :func:`study_flow`'s counts beyond :data:`hemiface.study.FLOW_KEYS`.
ANALYSED_KEYS = ("analysed_2d", "analysed_3d")

_NAN = float("nan")
#: Millilitres (what surgeons record) to cubic millimetres (what the scans measure).
MM3_PER_ML = 1000.0


def graft_retention_percent(net_volume_gain_mm3: float, injected_ml: float) -> float:
    """Graft retention at follow-up: 100 x the net volume gained on the affected side / the volume injected.

    ``net_volume_gain_mm3`` is ``scan compare``'s net gain over the affected hemiface
    (``discrepancy_pre_mm3 - discrepancy_post_mm3``: the gain at each point less the
    gain at its mirror image, so swelling or weight that reach both sides cancel);
    ``injected_ml`` is converted at 1 ml = 1,000 mm3.

    >>> graft_retention_percent(3000.0, 7.5)
    40.0
    """
    return 100.0 * net_volume_gain_mm3 / (injected_ml * MM3_PER_ML)


def _put_in(surgeries, baseline, followup) -> dict:
    """Fat injected, ADM used and gain planned by the surgeries from the baseline visit up to the follow-up visit."""
    between = [s for s in surgeries if baseline <= s.date < followup]
    fat = [s.fat_injected_ml for s in between if s.fat_injected_ml is not None]
    planned = [s.planned_gain_ml for s in between if s.planned_gain_ml is not None]
    adm = [s for s in between if s.adm_sheets is not None]
    thickness = {s.adm_thickness_mm for s in adm}
    return dict(fat_injected_ml=sum(fat) if fat else _NAN, adm_sheets=sum(s.adm_sheets for s in adm) if adm else None,
                adm_thickness_mm=thickness.pop() if len(thickness) == 1 else _NAN,
                planned_gain_mm3=sum(planned) * MM3_PER_ML if planned else _NAN)


def _retention(scan: dict, why_3d: str | None, put_in: dict) -> dict:
    net = scan["discrepancy_baseline_mm3"] - scan["discrepancy_followup_mm3"]
    fat, planned = put_in["fat_injected_ml"], put_in["planned_gain_mm3"]
    if math.isnan(fat):
        why = "no injected fat volume recorded"
    elif math.isnan(net):
        why = why_3d
    else:
        why = None
    return dict(put_in, net_volume_gain_mm3=net,
                graft_retention_percent=_NAN if why else graft_retention_percent(net, fat),
                achieved_of_planned_percent=100.0 * net / planned if not math.isnan(planned) else _NAN,
                missing_retention_reason=why)


def _results_by_key(study) -> dict:
    with study.session() as session:
        return {(r.analysis, r.inputs_sha256, r.parameters_sha256): (r.status, r.message, r.result_json)
                for r in session.scalars(select(AnalysisResult))}


def _outcomes(jobs, results) -> dict:
    """(patient, visit date, analysis) -> list of (status, message, values) in job order."""
    out: dict = {}
    for job in jobs:
        status, message, text = results.get(job.key, ("not_run", None, None))
        values = json.loads(text) if text else None
        out.setdefault((job.patient_id, job.visit_date, job.analysis), []).append((status, message, values))
    return out


def _mean(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else _NAN


def _photo_ratio(outcomes, pid, when, label) -> tuple[float, str | None]:
    found = outcomes.get((pid, when, "photo_analyze"))
    if not found:
        return _NAN, f"no photo at the {label} visit"
    ok = [v["symmetry_ratio_percent"] for status, _m, v in found if status == "ok"]
    if ok:
        return _mean(ok), None
    status, message, _v = found[0]
    if status == "not_run":
        return _NAN, f"{label} photo not analysed yet (run `hemiface study run`)"
    return _NAN, f"{label} photo analysis failed: {message}"


def _photo_pose(outcomes, pid, when) -> dict:
    """Mean yaw, pitch, roll and pose-compensated ratio over a visit's analysed photos (NaN when none)."""
    ok = [v for status, _m, v in outcomes.get((pid, when, "photo_analyze"), []) if status == "ok"]
    out = {k: _mean([v.get("pose", {}).get(k) for v in ok]) for k in POSE_ANGLES}
    out["compensated"] = _mean([v.get("symmetry_ratio_pose_compensated_percent") for v in ok])
    return out


def _pose_columns(outcomes, pid, base, follow, limit_deg) -> dict:
    a, b = _photo_pose(outcomes, pid, base), _photo_pose(outcomes, pid, follow)
    row = {}
    for k in POSE_ANGLES:
        axis = k[:-4]
        row[f"{axis}_baseline_deg"], row[f"{axis}_followup_deg"] = a[k], b[k]
        row[f"{axis}_difference_deg"] = b[k] - a[k]
    known = all(not math.isnan(a[k]) and not math.isnan(b[k]) for k in POSE_ANGLES)
    flags = pose_agreement(a, b, max_difference_deg=limit_deg)["flags"] if known else []
    row["pose_differs"] = bool(flags) if known else None
    row["pose_flags"] = ";".join(flags) if known else None
    row["symmetry_ratio_pose_compensated_baseline_percent"] = a["compensated"]
    row["symmetry_ratio_pose_compensated_followup_percent"] = b["compensated"]
    row["symmetry_ratio_pose_compensated_change"] = b["compensated"] - a["compensated"]
    return row


def _scan_values(outcomes, pid, baseline, followup) -> tuple[dict, str | None]:
    empty = dict(discrepancy_baseline_mm3=_NAN, discrepancy_followup_mm3=_NAN, discrepancy_change_mm3=_NAN,
                 discrepancy_baseline_percent=_NAN, discrepancy_followup_percent=_NAN,
                 discrepancy_change_percent=_NAN, defect_volume_baseline_mm3=_NAN, volume_gain_mm3=_NAN,
                 volume_gain_registration_sd_mm3=_NAN, discrepancy_change_registration_sd_mm3=_NAN,
                 volume_gain_uncertainty_mm3=_NAN, discrepancy_change_uncertainty_mm3=_NAN)
    pre = outcomes.get((pid, baseline, "scan_analyze"))
    if pre and pre[0][0] == "ok":
        empty["defect_volume_baseline_mm3"] = pre[0][2]["defect_volume_mm3"]
    has_post = bool(outcomes.get((pid, followup, "scan_analyze")))
    if not pre and not has_post:
        return empty, "no scans"
    if not pre or not has_post:
        return empty, f"no scan at the {'baseline' if not pre else 'follow-up'} visit"
    for label, found in (("baseline", pre), ("follow-up", outcomes[(pid, followup, "scan_analyze")])):
        status, message, _v = found[0]
        if status == "not_run":
            return empty, f"{label} scan not analysed yet (run `hemiface study run`)"
        if status != "ok":
            return empty, f"{label} scan analysis failed: {message}"
    status, message, comp = outcomes.get((pid, followup, "scan_compare"), [("not_run", None, None)])[0]
    if status == "not_run":
        return empty, "scan comparison not run yet (run `hemiface study run`)"
    if status != "ok":
        return empty, f"scan comparison failed: {message}"
    # percentages of the baseline's unaffected hemiface volume, so that both visits share one denominator
    unaffected = pre[0][2]["unaffected_hemiface_volume_mm3"]
    before, after = comp["discrepancy_pre_mm3"], comp["discrepancy_post_mm3"]
    values = dict(empty, discrepancy_baseline_mm3=before, discrepancy_followup_mm3=after,
                  discrepancy_change_mm3=after - before, volume_gain_mm3=comp["volume_gain_mm3"],
                  # absent from comparisons written before 2026-12-03 (NaN: not known)
                  volume_gain_registration_sd_mm3=_number(comp.get("volume_gain_registration_sd_mm3")),
                  discrepancy_change_registration_sd_mm3=_number(comp.get("discrepancy_change_registration_sd_mm3")),
                  # absent from comparisons written before 2026-12-04
                  volume_gain_uncertainty_mm3=_number(comp.get("volume_gain_uncertainty_mm3")),
                  discrepancy_change_uncertainty_mm3=_number(comp.get("discrepancy_change_uncertainty_mm3")))
    if unaffected and unaffected > 0:
        values.update(discrepancy_baseline_percent=100.0 * before / unaffected,
                      discrepancy_followup_percent=100.0 * after / unaffected,
                      discrepancy_change_percent=100.0 * (after - before) / unaffected)
    return values, None


def _number(value) -> float:
    return _NAN if value is None else float(value)


def _slug(scale: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", scale.lower()).strip("_")


def endpoint_table(study, *, max_pose_difference_deg: float = MAX_POSE_DIFFERENCE_DEG):
    """The endpoint table of ``study``: a DataFrame, one row per eligible patient.

    Columns are :data:`ENDPOINT_COLUMNS` followed by three columns per FACE-Q
    scale found at the baseline or follow-up visits (:data:`FACEQ_COLUMN`).

    * 2D: ``symmetry_ratio_*_percent`` is 100 x affected / unaffected hemiface area
      (mean over the visit's photos); ``symmetry_ratio_change`` is follow-up minus
      baseline, in percentage points.
    * 3D (patients with a scan at both visits): the volumetric discrepancy (mm3,
      > 0 = affected side deficient) before and after from ``scan compare`` (the
      follow-up value is the baseline's minus the net volume gained, measured on
      the registered scans); percentages are of the baseline's unaffected
      hemiface volume, and the change is in percentage points.
    * ``age_at_surgery_years`` is the recorded age, else surgery year minus birth
      year (may be one year high); ``years_since_onset`` = age at surgery minus
      age at onset.
    * Complications are those recorded at the follow-up visit.
    * What was put in: ``fat_injected_ml`` (sum over the surgeries from the baseline
      visit up to, not including, the follow-up visit that record it), ``adm_sheets``
      (their sum) and ``adm_thickness_mm`` (NaN when they differ), ``planned_gain_mm3``
      (the recorded planned gains, in mm3). ``net_volume_gain_mm3`` = baseline minus
      follow-up discrepancy (``scan compare``'s net gain over the affected hemiface);
      ``graft_retention_percent`` = 100 x net gain / injected volume
      (:func:`graft_retention_percent`; NaN with ``missing_retention_reason`` when no
      fat volume is recorded or the 3D change is missing); ``achieved_of_planned_percent``
      = 100 x net gain / planned gain.
    * Pose: ``yaw/pitch/roll_{baseline,followup}_deg`` (mean over the visit's photos),
      ``*_difference_deg`` (follow-up minus baseline); ``pose_differs`` is True when
      any differs by more than ``max_pose_difference_deg`` (``pose_flags`` says
      which): the 2D ratio's change then includes a pose effect (about 2 points per
      degree of yaw). ``symmetry_ratio_pose_compensated_*`` is the experimental
      pose-compensated ratio (see ``hemiface.photo``).

    ``DataFrame.attrs`` holds ``rules`` (the visit rules), ``flow`` (see
    :func:`study_flow`) and ``parameters`` (of the analyses).
    """
    import pandas as pd

    table = eligibility(study)
    eligible = table[table["eligible"]]
    jobs, problems = plan_jobs(study)
    outcomes = _outcomes(jobs, _results_by_key(study))
    for problem in problems:  # missing or changed files: reported as that analysis' failure
        key = (problem["patient_id"], problem["visit_date"], problem["analysis"])
        outcomes.setdefault(key, []).insert(0, ("failed", problem["message"], None))
    with study.session() as session:
        patients = {p.pseudonym: p for p in session.scalars(select(Patient).options(
            selectinload(Patient.surgeries),
            selectinload(Patient.visits).selectinload(Visit.complications),
            selectinload(Patient.visits).selectinload(Visit.faceq_scores)))}
        rows, scales = [], set()
        for e in eligible.itertuples():
            p = patients[e.patient_id]
            visits = {v.date: v for v in p.visits}
            base, follow = e.baseline_date.isoformat(), e.followup_date.isoformat()
            age = p.age_at_surgery_years
            if age is None and p.birth_year is not None:
                age = e.initial_surgery_date.year - p.birth_year
            r2d_base, why_base = _photo_ratio(outcomes, p.pseudonym, base, "baseline")
            r2d_follow, why_follow = _photo_ratio(outcomes, p.pseudonym, follow, "follow-up")
            scan, why_3d = _scan_values(outcomes, p.pseudonym, base, follow)
            complications = sorted(visits[e.followup_date].complications, key=lambda c: c.type)
            row = dict(
                patient_id=p.pseudonym, technique=e.technique, affected_side=p.affected_side, sex=p.sex,
                age_at_surgery_years=age, guerrerosantos_stage=p.guerrerosantos_stage,
                age_at_onset_years=p.age_at_onset_years,
                years_since_onset=(age - p.age_at_onset_years) if age is not None and p.age_at_onset_years is not None else None,
                initial_surgery_date=e.initial_surgery_date, baseline_date=e.baseline_date,
                followup_date=e.followup_date, followup_interval_days=e.followup_interval_days,
                symmetry_ratio_baseline_percent=r2d_base, symmetry_ratio_followup_percent=r2d_follow,
                symmetry_ratio_change=r2d_follow - r2d_base,
                **scan,
                complications_followup=";".join(c.type for c in complications),
                complications_followup_n=len(complications),
                major_complication=any(c.severity == "major" for c in complications),
                missing_2d_reason="; ".join(w for w in (why_base, why_follow) if w) or None,
                missing_3d_reason=why_3d,
                **_pose_columns(outcomes, p.pseudonym, base, follow, max_pose_difference_deg),
                **_retention(scan, why_3d, _put_in(p.surgeries, e.baseline_date, e.followup_date)),
            )
            for when, label in ((e.baseline_date, "baseline"), (e.followup_date, "followup")):
                for q in visits[when].faceq_scores:
                    slug = _slug(q.scale)
                    scales.add(slug)
                    row[FACEQ_COLUMN.format(scale=slug, when=label)] = q.score
            rows.append(row)
    faceq_columns = []
    for slug in sorted(scales):
        b, f, c = (FACEQ_COLUMN.format(scale=slug, when=w) for w in ("baseline", "followup", "change"))
        faceq_columns += [b, f, c]
        for row in rows:
            row[c] = row.get(f, _NAN) - row.get(b, _NAN)
    out = pd.DataFrame(rows, columns=list(ENDPOINT_COLUMNS) + faceq_columns)
    for col in ("age_at_surgery_years", "guerrerosantos_stage", "age_at_onset_years", "years_since_onset",
                "followup_interval_days", "complications_followup_n", "adm_sheets"):
        out[col] = out[col].astype("Int64")
    out["major_complication"] = out["major_complication"].astype(bool)
    numeric = [c for c in out.columns if c.endswith(("_percent", "_mm3", "_change", "_baseline", "_followup", "_deg",
                                                     "_ml", "_mm"))
               and c not in ("complications_followup",)]
    out[numeric] = out[numeric].astype(float)
    out.attrs["rules"] = study.settings.to_dict()
    out.attrs["flow"] = study_flow(table, out)
    out.attrs["parameters"] = study.settings.analysis_parameters()
    out.attrs["pose"] = {"max_pose_difference_deg": float(max_pose_difference_deg)}
    return out


def study_flow(eligibility_table, endpoints) -> dict:
    """Flow counts (:data:`FLOW_KEYS` + :data:`ANALYSED_KEYS`) and the excluded patients by reason.

    Returns a dict with the counts, ``excluded`` (reason -> count) and
    ``excluded_patients`` (list of {patient_id, reason, description}).
    """
    counts = flow_counts(eligibility_table)
    counts["analysed_2d"] = int(endpoints["symmetry_ratio_change"].notna().sum())
    counts["analysed_3d"] = int(endpoints["discrepancy_change_mm3"].notna().sum())
    excluded = eligibility_table[~eligibility_table["eligible"]]
    counts["excluded"] = {reason: int((excluded["exclusion_reason"] == reason).sum())
                          for reason in EXCLUSION_REASONS if (excluded["exclusion_reason"] == reason).any()}
    counts["excluded_patients"] = [
        dict(patient_id=r.patient_id, reason=r.exclusion_reason, description=EXCLUSION_REASONS[r.exclusion_reason])
        for r in excluded.itertuples()
    ]
    return counts


def flow_table(flow: dict):
    """The flow counts as a two-column DataFrame (step, patients), exclusions last as ``excluded: <reason>``."""
    import pandas as pd

    rows = [(k, v) for k, v in flow.items() if isinstance(v, int)]
    rows += [(f"excluded: {reason}", n) for reason, n in flow.get("excluded", {}).items()]
    return pd.DataFrame(rows, columns=["step", "patients"])


def write_endpoints(table, path, *, overwrite: bool = False):
    """Write the endpoint table with its flow counts, exclusions and rules; all files or none.

    ``.csv``: ``FILE.csv`` plus ``FILE_flow.csv``, ``FILE_excluded.csv`` and
    ``FILE_rules.json`` beside it. ``.xlsx``: one workbook with the sheets
    ``endpoints``, ``flow``, ``excluded`` and ``rules``.
    """
    import pandas as pd
    from pathlib import Path

    from .._outputs import staged_outputs
    from ._errors import StudyError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise StudyError(f"{path}: the endpoint table is written as .csv or .xlsx; got {path.suffix or 'no extension'!r}")
    flow = table.attrs.get("flow", {})
    excluded = pd.DataFrame(flow.get("excluded_patients", []), columns=["patient_id", "reason", "description"])
    rules = {"rules": table.attrs.get("rules"), "parameters": table.attrs.get("parameters")}
    rules_df = pd.DataFrame([(k, json.dumps(v)) for k, v in rules.items()], columns=["item", "value"])
    if suffix == ".csv":
        names = [f"{path.stem}_flow.csv", f"{path.stem}_excluded.csv", f"{path.stem}_rules.json", path.name]
        with staged_outputs(path.parent, names, overwrite=overwrite) as stage:
            flow_table(flow).to_csv(stage / names[0], index=False)
            excluded.to_csv(stage / names[1], index=False)
            (stage / names[2]).write_text(json.dumps(rules, indent=2, default=str) + "\n")
            table.to_csv(stage / names[3], index=False)
        return [path.parent / n for n in names]
    with staged_outputs(path.parent, [path.name], overwrite=overwrite) as stage:
        with pd.ExcelWriter(stage / path.name, engine="openpyxl") as xl:
            table.to_excel(xl, sheet_name="endpoints", index=False)
            flow_table(flow).to_excel(xl, sheet_name="flow", index=False)
            excluded.to_excel(xl, sheet_name="excluded", index=False)
            rules_df.to_excel(xl, sheet_name="rules", index=False)
    return [path]
