"""``study_report``: the study's results as one :class:`Report` (flow, Table 1, endpoints, figures,
complications, methods, per-patient pages)."""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import __version__, logger
from .._cells import read_flag
from ._errors import ReportError
from ._format import column_kind, column_label, format_value
from ._journal import ci_percent, journal_tables
from ._rating import RATING_TABLES, is_rating_table, rating_methods_text, rating_tables
from ._report import Report
from . import figures as _fig

#: Endpoints summarised and plotted: (label, unit, baseline column, follow-up column, change column).
CORE_ENDPOINTS = (
    ("Symmetry ratio (2D)", "%", "symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent",
     "symmetry_ratio_change"),
    ("Volumetric discrepancy (3D)", "mm\u00b3", "discrepancy_baseline_mm3", "discrepancy_followup_mm3",
     "discrepancy_change_mm3"),
    ("Volumetric discrepancy (3D)", "% of the unaffected hemiface", "discrepancy_baseline_percent",
     "discrepancy_followup_percent", "discrepancy_change_percent"),
)
#: Titles and sections of the statistics tables this report knows (others go to "Further analyses").
KNOWN_TABLES = {
    "table1": ("Table 1", "Table 1. Baseline characteristics by technique"),
    "table2": ("Endpoints", "Table 2. Endpoints by technique: baseline, follow-up and change"),
    "endpoints": ("Endpoints", "Endpoint definitions"),
    "descriptives": ("Endpoints", "Endpoints by technique and visit (patients with both visits)"),
    "within_group": ("Endpoints", "Change within each technique (follow-up vs baseline)"),
    "between_groups": ("Endpoints", "Comparison of change between techniques"),
    "ancova": ("Endpoints", "Table 3. Follow-up adjusted for baseline (ANCOVA)"),
    "ancova_assumptions": ("Endpoints", "ANCOVA assumption checks"),
    "pose_sensitivity": ("Endpoints", "Sensitivity analysis: the 2D symmetry ratio in the pairs whose head pose "
                                      "agrees between the visits"),
    "outcome_descriptives": ("Endpoints", "Graft retention and achieved share of the planned volume at follow-up, "
                                          "by technique"),
    "outcome_between_groups": ("Endpoints", "Graft retention and achieved share of the planned volume compared "
                                            "between techniques"),
    "complications": ("Complications", "Complications at follow-up"),
    "complication_tests": ("Complications", "Complication rates compared between techniques"),
    "missing": ("Missing data", "Missing endpoints"),
}
#: Image keys of a patient page, their captions, and whether the image is a hemiface scan figure
#: whose title band (naming the scan file) is cropped.
PATIENT_IMAGES = {
    "overlay_baseline": ("Baseline photograph: hemifaces, midline and contour levels", False),
    "overlay_followup": ("Follow-up photograph: hemifaces, midline and contour levels", False),
    "depth_map": ("Baseline depth map (mm): > 0 affected side below the mirrored unaffected side", True),
    "gain_map": ("Tissue gained between baseline and follow-up (mm)", True),
    "before_after": ("Depth maps before (left) and after (right), on one colour scale (mm)", True),
}
#: Titles of appendix tables that are not in :data:`KNOWN_TABLES`.
APPENDIX_TITLES = {"rating_agreement": "Blinded rating: agreement between the raters, every ICC form and kappa",
                   "ancova": "Follow-up adjusted for baseline (ANCOVA): the complete models",
                   "ancova_assumptions": "ANCOVA assumption checks",
                   "pose_sensitivity": "Sensitivity analysis without the pairs whose head pose differs: both tests "
                                       "of each comparison"}
#: Tables whose key starts with this go to the appendix (after the methods), in the order given.
APPENDIX_PREFIX = "appendix_"
_OUTCOME_NOTE = ("Graft retention = net 3D volume gained on the affected side at follow-up / fat volume injected "
                 "(1 ml = 1,000 mm\u00b3), in patients with a recorded injected volume; achieved share = net gain / "
                 "planned gain, in patients with a recorded planned gain.")
_TEST_NOTE = ("n: patients with values at both visits. Changes are follow-up minus baseline. "
              "'Selected' marks the test chosen by the pre-specified rule (see Methods).")


def _faceq_endpoints(endpoints: pd.DataFrame) -> list[tuple]:
    out = []
    for col in endpoints.columns:
        m = re.fullmatch(r"faceq_(.+)_change", str(col))
        if m and f"faceq_{m[1]}_baseline" in endpoints and f"faceq_{m[1]}_followup" in endpoints:
            label = "FACE-Q " + m[1].replace("_", " ")
            out.append((label, "score 0\u2013100", f"faceq_{m[1]}_baseline", f"faceq_{m[1]}_followup", col))
    return out


def _order(endpoints: pd.DataFrame, settings: Mapping) -> list:
    preferred = list(flat_settings(settings).get("techniques") or [])
    present = list(pd.unique(endpoints["technique"].dropna())) if "technique" in endpoints else []
    return [t for t in preferred if t in present] + sorted((t for t in present if t not in preferred), key=str)


def endpoint_summary(endpoints: pd.DataFrame, *, order: Sequence | None = None) -> pd.DataFrame:
    """Baseline, follow-up and change (mean, SD; change median) per endpoint and technique.

    Only patients with both visits count (n), so the three columns describe the same patients.
    """
    rows = []
    order = list(order) if order is not None else sorted(pd.unique(endpoints["technique"].dropna()), key=str)
    for label, unit, base, follow, change in [*CORE_ENDPOINTS, *_faceq_endpoints(endpoints)]:
        if not {base, follow, change} <= set(endpoints.columns):
            continue
        for tech in order:
            sub = endpoints.loc[endpoints["technique"] == tech, [base, follow, change]].apply(pd.to_numeric, errors="coerce")
            sub = sub.dropna()
            rows.append({
                "endpoint": f"{label} ({unit})", "technique": _fig.group_label(tech), "n": int(len(sub)),
                "baseline_mean": sub[base].mean() if len(sub) else np.nan,
                "baseline_sd": sub[base].std(ddof=1) if len(sub) > 1 else np.nan,
                "followup_mean": sub[follow].mean() if len(sub) else np.nan,
                "followup_sd": sub[follow].std(ddof=1) if len(sub) > 1 else np.nan,
                "change_mean": sub[change].mean() if len(sub) else np.nan,
                "change_sd": sub[change].std(ddof=1) if len(sub) > 1 else np.nan,
                "change_median": sub[change].median() if len(sub) else np.nan,
            })
    return pd.DataFrame(rows, columns=["endpoint", "technique", "n", "baseline_mean", "baseline_sd", "followup_mean",
                                       "followup_sd", "change_mean", "change_sd", "change_median"])


def baseline_characteristics(endpoints: pd.DataFrame, *, order: Sequence | None = None) -> pd.DataFrame:
    """A plain Table 1 (used when the statistics tables bring none): counts, and mean (SD) of ages and intervals."""
    order = list(order) if order is not None else sorted(pd.unique(endpoints["technique"].dropna()), key=str)
    groups = [(_fig.group_label(t), endpoints[endpoints["technique"] == t]) for t in order] + [("All", endpoints)]
    rows = [{"characteristic": "Patients", "statistic": "n", **{g: int(len(d)) for g, d in groups}}]
    for col in ("sex", "affected_side", "guerrerosantos_stage"):
        if col not in endpoints:
            continue
        for level in sorted(pd.unique(endpoints[col].dropna()), key=str):
            rows.append({"characteristic": f"{column_label(col)}: {level}", "statistic": "n",
                         **{g: int((d[col] == level).sum()) for g, d in groups}})
    for col in ("age_at_surgery_years", "age_at_onset_years", "years_since_onset", "followup_interval_days"):
        if col not in endpoints:
            continue
        for stat in ("mean", "sd"):
            values = {}
            for g, d in groups:
                x = pd.to_numeric(d[col], errors="coerce").dropna()
                values[g] = float(x.mean() if stat == "mean" else x.std(ddof=1)) if len(x) > (stat == "sd") else np.nan
            rows.append({"characteristic": column_label(col), "statistic": stat.upper() if stat == "sd" else stat,
                         **values})
    return pd.DataFrame(rows, dtype=object)


def complication_summary(endpoints: pd.DataFrame, *, order: Sequence | None = None) -> pd.DataFrame:
    """Patients with any and with a major complication at follow-up, per technique (n and %)."""
    order = list(order) if order is not None else sorted(pd.unique(endpoints["technique"].dropna()), key=str)
    rows = []
    for tech in order:
        d = endpoints[endpoints["technique"] == tech]
        n = len(d)
        anyc = int((pd.to_numeric(d["complications_followup_n"], errors="coerce") > 0).sum()) \
            if "complications_followup_n" in d else None
        major = int(d["major_complication"].eq(True).sum()) if "major_complication" in d else None
        rows.append({"technique": _fig.group_label(tech), "n": n,
                     "any_complication_n": anyc, "any_complication_percent": 100.0 * anyc / n if n and anyc is not None else np.nan,
                     "major_complication_n": major,
                     "major_complication_percent": 100.0 * major / n if n and major is not None else np.nan})
    return pd.DataFrame(rows, columns=["technique", "n", "any_complication_n", "any_complication_percent",
                                       "major_complication_n", "major_complication_percent"])


#: Columns of :func:`pose_flagged_pairs` (frozen).
POSE_FLAG_COLUMNS = ("patient_id", "technique", "yaw_difference_deg", "pitch_difference_deg", "roll_difference_deg",
                     "pose_flags", "symmetry_ratio_change")


def pose_flagged_pairs(endpoints: pd.DataFrame) -> pd.DataFrame:
    """Patients whose baseline and follow-up photographs differ in head pose beyond the limit
    (``pose_differs`` of the endpoint table); empty when the table has no pose columns."""
    if "pose_differs" not in endpoints:
        return pd.DataFrame(columns=list(POSE_FLAG_COLUMNS))
    # True, numpy's True or "True" (an endpoint table read back from CSV); missing or False is not flagged.
    flagged = endpoints[endpoints["pose_differs"].map(lambda v: read_flag(v) is True)]
    return flagged.reindex(columns=list(POSE_FLAG_COLUMNS)).reset_index(drop=True)


def _fmt_date(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)[:10]


DEG = "\u00b0"


def flat_settings(settings: Mapping) -> dict:
    """Settings for lookup by key: top-level values first, then those of nested mappings, level by level.

    So ``{"rules": StudySettings.to_dict(), "parameters": {"scan_analyze": {"threshold_mm": 4.0}}}``
    (the endpoint table's ``attrs``) and a flat dict are read alike.
    """
    flat, level = {}, [settings]
    while level:
        nested = []
        for mapping in level:
            for key, value in mapping.items():
                if isinstance(value, Mapping):
                    nested.append(value)
                else:
                    flat.setdefault(str(key), value)
        level = nested
    return flat


def methods_text(settings: Mapping, flow: Mapping) -> str:
    """The methods paragraphs, written from the settings actually used (plain text, blank-line separated).

    The settings are those the results were computed with (the study layer passes them
    complete: rules, every analysis' settings, flag limits, alpha); a value they do not give is
    written as "(not recorded)", never guessed. Nested settings are read through :func:`flat_settings`.
    """
    s = flat_settings(settings)

    def val(key: str, unit: str = "") -> str:
        if key in s and s[key] is not None:
            value = s[key]
            text = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
            return f"{text}{unit}"
        return "(not recorded)"

    version = s.get("hemiface_version", __version__)
    start, end = _fmt_date(s.get("inclusion_from")), _fmt_date(s.get("inclusion_to"))
    if start or end:
        window = f"between {start or 'the start of records'} and {end or 'the date of analysis'}"
    else:
        window = "at any date (open inclusion window)"
    paras = [
        f"Design and participants. Patients treated for hemifacial atrophy were screened (n = {flow.get('screened')}) "
        f"and included when their initial surgery took place {window}. Baseline was the last preoperative visit "
        f"at most {val('baseline_window_days', ' days')} before the initial surgery; follow-up was the first "
        f"visit at least {val('followup_months', ' calendar months')} after it."
        + (f" Techniques: {', '.join(_fig.group_label(t) for t in s['techniques'])}." if s.get("techniques") else "")
    ]
    midlines = {"pupils": "the perpendicular bisector of the line between the pupils",
                "fitted": "a line fitted through the midline landmarks"}
    midline = midlines.get(s["midline"], str(s["midline"])) if s.get("midline") else "(not recorded)"
    model = s.get("landmark_model") or "hemiface's automatic face-landmark model"
    paras.append(
        f"2D photographs. Facial landmarks were located on frontal photographs with {model}; the facial midline "
        f"was {midline}; millimetres were scaled from a horizontal iris diameter of {val('iris_mm', ' mm')}. The "
        "symmetry ratio is 100 \u00d7 the area of the affected hemiface / the area of the unaffected hemiface "
        "(100 % = symmetric, below 100 % = deficient affected side). Photographs with head yaw beyond "
        f"{val('max_yaw_deg', DEG)} or pitch beyond {val('max_pitch_deg', DEG)} were flagged. Pairs whose baseline "
        f"and follow-up head yaw, pitch or roll differ by more than {val('max_pose_difference_deg', DEG)} were "
        "flagged and listed, and the 2D endpoint was analysed again without them (sensitivity analysis)."
    )
    paras.append(
        "3D surface scans. The unaffected hemiface was mirrored across the face's fitted symmetry plane. A defect "
        f"is an area where the affected surface lies below the mirrored surface by more than {val('floor_mm', ' mm')} "
        f"somewhere; the area deeper than {val('threshold_mm', ' mm')} is reported. The volumetric discrepancy "
        "is the unaffected minus the affected hemiface volume (mm\u00b3; > 0 = affected side deficient). Follow-up "
        "scans were registered rigidly onto the baseline scan over stable areas (forehead, nasal dorsum, unaffected "
        f"side); comparisons with a registration RMS above {val('max_registration_rms_mm', ' mm')} were refused. "
        "Volume gained is net of the mirror-image change on the unaffected side."
    )
    if s.get("test_selection"):
        rule = str(s["test_selection"]).strip()
    elif s.get("normality_test"):
        rule = (f"Parametric tests were used when the data looked normal ({s['normality_test']} "
                f"p \u2265 {val('alpha') if s.get('normality_alpha') is None else format(s['normality_alpha'], 'g')}), "
                "rank-based tests otherwise.")
    else:
        rule = "Each table names the test used; 'Selected' marks the test chosen by the pre-specified rule."
    paras.append(
        f"Statistics. Changes are follow-up minus baseline. {rule} Tests were two-sided at \u03b1 = {val('alpha')}; "
        f"effect sizes are given with {val('ci_level', ' %')} confidence intervals. Patients missing an endpoint "
        "were left out of that endpoint's analysis only (complete-case analysis); the reasons are tabulated."
    )
    paras.append(f"Software. Measurements and this report were made with hemiface {version}.")
    return "\n\n".join(paras)


def _flow_with_analysed(flow: Mapping, endpoints: pd.DataFrame) -> tuple[dict, dict]:
    flow = dict(flow)
    not_analysed = {}
    for dim, change, reason in (("2d", "symmetry_ratio_change", "missing_2d_reason"),
                                ("3d", "discrepancy_change_mm3", "missing_3d_reason")):
        if change in endpoints:
            flow.setdefault(f"analysed_{dim}", int(pd.to_numeric(endpoints[change], errors="coerce").notna().sum()))
        if reason in endpoints:
            counts = endpoints[reason].dropna().astype(str).value_counts()
            not_analysed[dim] = {k: int(v) for k, v in counts.items() if k}
    return flow, not_analysed


def _patient_rows(row: pd.Series) -> pd.DataFrame:
    rows = []
    for label, unit, base, follow, change in [*CORE_ENDPOINTS, *_faceq_endpoints(row.to_frame().T)]:
        if base in row or follow in row:
            rows.append({"measure": f"{label} ({unit})", "baseline": row.get(base), "followup": row.get(follow),
                         "change": row.get(change)})
    table = pd.DataFrame(rows, columns=["measure", "baseline", "followup", "change"])
    for col in ("baseline", "followup", "change"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def _patient_page(report: Report, page: Mapping, endpoints: pd.DataFrame) -> None:
    if "patient_id" not in page:
        raise ReportError(f"each patient page needs a 'patient_id' (the pseudonym); got keys {sorted(page)}")
    pid = str(page["patient_id"])
    section = f"Patient {pid}"
    report.add_section(section, new_page=True, docx=False)  # the Word document is for the manuscript
    match = endpoints[endpoints["patient_id"].astype(str) == pid] if "patient_id" in endpoints else endpoints.iloc[:0]
    if len(match):
        row = match.iloc[0]
        facts = []
        for col, text in (("technique", "Technique"), ("affected_side", "Affected side (patient's)"),
                          ("followup_interval_days", "Follow-up interval (days)"),
                          ("volume_gain_mm3", "Volume gained (mm\u00b3)"),
                          ("complications_followup", "Complications at follow-up")):
            if col in row and not (isinstance(row[col], float) and np.isnan(row[col])):
                value = row[col]
                if col == "technique":
                    value = _fig.group_label(value)
                elif col == "volume_gain_mm3":
                    value = f"{float(value):,.0f}"
                elif col == "followup_interval_days":
                    value = f"{float(value):.0f}"
                elif col == "complications_followup":
                    value = ", ".join(str(value).replace("_", " ").split(";")) if str(value).strip() else "none"
                facts.append(f"{text}: {value}")
        if facts:
            report.add_text("\n\n".join(facts), section=section)
        report.add_table(_patient_rows(row), "Measurements", section=section,
                         formats={"baseline": "general", "followup": "general", "change": "general"})
    else:
        report.add_text("This patient has no row in the endpoint table.", section=section)
    images = dict(page.get("images") or {})
    for key, (caption, is_scan) in PATIENT_IMAGES.items():
        if page.get(key) is not None:
            report.add_image(page[key], caption=caption, section=section, crop_title=is_scan, max_height_mm=95,
                             max_width_px=1000, photo=True)
    for caption, path in images.items():
        report.add_image(path, caption=str(caption), section=section, max_height_mm=95, max_width_px=1000, photo=True)


#: Statistics tables shown as they are, in their sections (the rating panel's are laid out in theirs).
_SHOWN_AS_GIVEN = ("outcome_descriptives", "outcome_between_groups", "complications", "complication_tests", "missing",
                   *RATING_TABLES)
#: The complete tidy tables (every computed test, min and max) that go to the appendix, as in the workbook.
APPENDIX_TABLES = ("endpoints", "table1", "descriptives", "within_group", "between_groups", "ancova",
                   "ancova_assumptions", "pose_sensitivity", "rating_agreement")
#: Columns of the tidy tables whose values are identifiers ("paired_t", "mean_change") printed as words.
_WORDED_COLUMNS = ("test", "estimate_name", "effect_size_name", "statistic_name", "timepoint", "term", "check",
                   "summary_type", "comparison", "level", "variable")
#: (value, name) column pairs of the tidy tables printed as one column ("t −2.31", "hedges g 0.45").
_NAMED_VALUES = (("statistic", "statistic_name"), ("estimate", "estimate_name"), ("effect_size", "effect_size_name"))
#: Columns that list ids or sizes joined by ";": printed with a space after each, so they wrap.
_LIST_COLUMNS = ("missing_ids", "group_sizes", "excluded_ids")
#: Columns holding ";"-separated patient ids, and how many a report cell lists (a registry leaves hundreds of
#: patients out of its 3D endpoints: one cell listing them all is taller than a page). The workbook and the
#: CSV files keep every id.
_ID_COLUMNS = ("missing_ids", "excluded_ids")
MAX_IDS_SHOWN = 12


def shorten_ids(value):
    """A ";"-separated id list with at most :data:`MAX_IDS_SHOWN` ids, the rest counted
    ("HFA-001;...;HFA-012 … and 558 more (every id in the workbook)")."""
    if not isinstance(value, str):
        return value
    ids = [i.strip() for i in value.split(";") if i.strip()]
    if len(ids) <= MAX_IDS_SHOWN:
        return value
    return ";".join(ids[:MAX_IDS_SHOWN]) + f" \u2026 and {len(ids) - MAX_IDS_SHOWN} more (every id in the workbook)"


def _shortened(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose id lists are shortened (:func:`shorten_ids`)."""
    out = table.copy()
    for c in _ID_COLUMNS:
        if c in out:
            out[c] = [shorten_ids(v) for v in out[c]]
    return out


def appendix_display(table: pd.DataFrame, endpoint_labels: Mapping[str, str]) -> tuple[pd.DataFrame, str | None]:
    """A tidy table as the appendix prints it: the same rows and numbers, with endpoints by their labels,
    techniques by their names, identifiers as words, each statistic, estimate and effect size with its
    name in one column, the number of missing patients with their ids, id lists that wrap, and a column
    holding one confidence level throughout moved to the caption (returned), so the complete table fits a
    landscape page instead of being split into column groups (the workbook keeps the tidy columns)."""
    out = _shortened(table)
    note = None
    if "endpoint" in out:
        out["endpoint"] = [endpoint_labels.get(str(e), e) for e in out["endpoint"]]
        out = out.drop(columns=[c for c in ("label",) if c in out])  # the endpoint definitions: now the same
    for value, name in _NAMED_VALUES:
        if {value, name} <= set(out.columns):
            kind = column_kind(value)
            out[value] = [format_value(v, kind) if not isinstance(n, str) or not n else
                          f"{n.replace('_', ' ')} {format_value(v, kind)}" for v, n in zip(out[value], out[name])]
            out = out.drop(columns=name)
    for col in ("group", "technique"):
        if col in out:
            out[col] = [v if pd.isna(v) else _fig.group_label(v) for v in out[col]]
    for col in _WORDED_COLUMNS:
        if col in out:
            out[col] = [v.replace("_", " ") if isinstance(v, str) else v for v in out[col]]
    for col in _LIST_COLUMNS:
        if col in out:
            out[col] = [v.replace(";", "; ").replace("=", " = ") if isinstance(v, str) else v for v in out[col]]
    if {"n_missing", "missing_ids"} <= set(out.columns):
        out["missing_ids"] = [f"{format_value(k, 'n')}" + (f": {ids}" if isinstance(ids, str) and ids else "")
                              for k, ids in zip(out["n_missing"], out["missing_ids"])]
        out = out.drop(columns="n_missing").rename(columns={"missing_ids": "missing_n_and_ids"})
    if "conf_level" in out:
        if pd.to_numeric(out["conf_level"], errors="coerce").dropna().nunique() == 1:
            note = f"Confidence intervals: {ci_percent(out['conf_level']):g}%."
            out = out.drop(columns="conf_level")
    return out, note


def report_tables(tables: Mapping[str, pd.DataFrame], *, order: Sequence | None = None) -> tuple[dict, dict]:
    """The ``tables`` and ``captions`` :func:`study_report` takes, from the statistics' tidy tables
    (:func:`hemiface.stats.analyze_endpoints`, :func:`hemiface.study.rating_analysis`): Table 1, Table 2
    and the ANCOVA as journals print them (:func:`journal_tables`), the others as given, and the complete
    tables for the appendix (:func:`appendix_display`)."""
    journal = journal_tables(tables, order=order)
    shown = {key: j.table for key, j in journal.items()}
    captions = {key: j.caption for key, j in journal.items()}
    shown.update({key: _shortened(tables[key]) for key in _SHOWN_AS_GIVEN if key in tables})
    labels = {}
    if "endpoints" in tables and {"endpoint", "label"} <= set(tables["endpoints"].columns):
        labels = dict(zip(tables["endpoints"]["endpoint"].astype(str), tables["endpoints"]["label"]))
    for key in APPENDIX_TABLES:
        if key in tables:
            shown[f"{APPENDIX_PREFIX}{key}"], note = appendix_display(tables[key], labels)
            if note:
                captions[f"{APPENDIX_PREFIX}{key}"] = note
    return shown, captions


def _rating_section(report: Report, tables: Mapping[str, pd.DataFrame], rounds: Sequence[Mapping], order) -> None:
    report.add_section("Blinded rating")
    titles = {"scores": "patients' scores by technique", "distribution": "distribution of the ratings",
              "agreement": "agreement between the raters"}
    for round_, laid in rating_tables(tables, rounds, order=order):
        report.add_text(rating_methods_text(round_))
        for key, table in laid.items():
            report.add_table(table.table, f"Rating round \u201c{round_['name']}\u201d: {titles[key]}",
                             caption=table.caption)


def study_report(endpoints: pd.DataFrame, tables: Mapping[str, pd.DataFrame], flow: Mapping, settings: Mapping, *,
                 patient_pages: Iterable[Mapping] | None = None, title: str = "Study report",
                 forbidden: Iterable[str] = (), date=None, captions: Mapping[str, str] | None = None,
                 rating_rounds: Sequence[Mapping] = ()) -> Report:
    """Lay out a study's results as a :class:`Report` (save it with ``save_html`` / ``save_pdf``).

    Parameters
    ----------
    endpoints : DataFrame
        One row per eligible patient (the endpoint table): ``patient_id`` (pseudonym), ``technique``, the
        baseline/follow-up/change columns of each endpoint (``symmetry_ratio_*``, ``discrepancy_*_mm3``,
        ``discrepancy_*_percent``, ``faceq_<scale>_*``), ``complications_followup_n``, ``major_complication``,
        ``missing_2d_reason``, ``missing_3d_reason``... Missing columns leave out what needs them.
        Changes are follow-up minus baseline; NaN = missing.
    tables : mapping of str -> DataFrame
        Statistics tables, rendered as given: ``table1``, ``table2``, ``within_group``, ``between_groups``,
        ``ancova``, ``complications``, ``missing`` are placed in their sections (see :func:`journal_tables`
        for Table 1 and Table 2 as journals print them); keys starting with ``appendix_`` go to an appendix
        after the methods; any other key goes to "Further analyses". Without ``table1`` (or
        ``complications``) a plain one is made from ``endpoints``.
    flow : mapping
        Study flow counts (:func:`hemiface.study.flow_counts`), optionally ``analysed_2d``, ``analysed_3d``
        (default: patients with a 2D / 3D change) and ``excluded``: reason -> count.
    settings : mapping
        What the results were computed with; written into the Methods and the footer. May be flat or
        nested (e.g. ``{"rules": ..., "parameters": ...}`` from the endpoint table's ``attrs``). Keys used:
        ``name`` (study name), ``inclusion_from``, ``inclusion_to``, ``baseline_window_days``,
        ``followup_months``, ``techniques``, ``landmark_model``, ``midline``, ``iris_mm``, ``max_yaw_deg``,
        ``max_pitch_deg``, ``threshold_mm``, ``floor_mm``, ``max_registration_rms_mm``, ``alpha``,
        ``test_selection`` (free text) or ``normality_test`` / ``normality_alpha``, ``ci_level``,
        ``hemiface_version``. Others are listed in the footer.
    patient_pages : iterable of mappings, optional
        One page each: ``patient_id`` and any of ``overlay_baseline``, ``overlay_followup`` (photo overlays),
        ``depth_map``, ``gain_map``, ``before_after`` (scan figures; their title band, which names the
        scan file, is cropped) as image paths, and ``images``: caption -> path for anything else.
    forbidden : iterable of str
        Strings that must not appear (names, hospital numbers, source file names); see :class:`Report`.
    captions : mapping of str -> str, optional
        A caption (footnotes) for any table key.
    rating_rounds : sequence of mappings, optional
        The completed rounds of the blinded rating panel (:attr:`hemiface.study.RatingAnalysis.rounds`);
        with ``tables``' ``rating_summary``, ``rating_distribution``, ``rating_within``, ``rating_between``
        and ``rating_agreement`` (:func:`hemiface.study.rating_analysis`) they make the "Blinded rating"
        section: per round the methods sentence, the scores by technique, the distribution of the
        ratings and the agreement between the raters.

    Returns
    -------
    Report
    """
    if not isinstance(endpoints, pd.DataFrame):
        raise ReportError(f"endpoints must be a pandas DataFrame; got {type(endpoints).__name__}")
    if "technique" not in endpoints:
        raise ReportError("the endpoint table needs a 'technique' column (one row per patient)")
    if not isinstance(tables, Mapping) or any(not isinstance(t, pd.DataFrame) for t in tables.values()):
        raise ReportError("tables must map names to pandas DataFrames")
    patient_pages = list(patient_pages or ())
    for page in patient_pages:
        if not isinstance(page, Mapping) or "patient_id" not in page:
            raise ReportError("each patient page must be a mapping with a 'patient_id' (the pseudonym); got "
                              f"{sorted(page) if isinstance(page, Mapping) else type(page).__name__}")
    settings = dict(settings)
    settings.setdefault("hemiface_version", __version__)
    order = _order(endpoints, settings)
    lookup = flat_settings(settings)
    report = Report(title, study_name=lookup.get("name") or lookup.get("study_name"), parameters=settings,
                    forbidden=forbidden, date=date)

    # Study flow
    flow_full, not_analysed = _flow_with_analysed(flow, endpoints)
    if isinstance(flow_full.get("eligible"), (int, np.integer)) and flow_full["eligible"] != len(endpoints):
        logger.warning("study report: the flow counts %d eligible patients but the endpoint table has %d rows",
                       flow_full["eligible"], len(endpoints))
    report.add_section("Study flow")
    report.add_figure(_fig.flow_diagram(flow_full, not_analysed=not_analysed), "Figure 1. Study flow",
                      caption="Numbers of patients at each step of the visit rules; reasons for exclusion at the side.",
                      max_height_mm=200)
    steps = [(k, t) for k, t, _ in _fig.FLOW_STEPS] + [("analysed_2d", "Analysed: 2D photographs"),
                                                       ("analysed_3d", "Analysed: 3D scans")]
    report.add_table(pd.DataFrame([{"step": t, "n": flow_full[k]} for k, t in steps if k in flow_full]),
                     "Study flow counts")
    captions = dict(captions or {})
    # Table 1
    report.add_section("Table 1")
    if "table1" in tables:
        report.add_table(tables["table1"], KNOWN_TABLES["table1"][1], caption=captions.get("table1"))
    else:
        report.add_table(baseline_characteristics(endpoints, order=order), KNOWN_TABLES["table1"][1],
                         caption="n: patients; mean and SD over patients with a value.")
    # Endpoints
    report.add_section("Endpoints")
    if "endpoints" in tables:
        report.add_table(tables["endpoints"], KNOWN_TABLES["endpoints"][1])
    if "table2" in tables:
        report.add_table(tables["table2"], KNOWN_TABLES["table2"][1], caption=captions.get("table2"))
    elif "descriptives" in tables:
        report.add_table(tables["descriptives"], KNOWN_TABLES["descriptives"][1],
                         caption="Change = follow-up minus baseline.")
    else:
        report.add_table(endpoint_summary(endpoints, order=order), "Endpoints by technique",
                         caption="Patients with both visits only. Change = follow-up minus baseline.")
    if "pose_differs" in endpoints:
        flagged = pose_flagged_pairs(endpoints)
        caption = ("Differences are follow-up minus baseline (degrees). A head turn moves the 2D symmetry ratio by "
                   "about 2 points per degree of yaw: these patients' 2D change includes a pose effect.")
        if len(flagged):
            report.add_table(flagged, "Photograph pairs whose head pose differs between the visits", caption=caption)
            if "pose_sensitivity" in tables:
                report.add_table(tables["pose_sensitivity"], KNOWN_TABLES["pose_sensitivity"][1],
                                 caption=captions.get("pose_sensitivity"))
        else:
            report.add_text("No patient's baseline and follow-up photographs differ in head yaw, pitch or roll "
                            "beyond the limit (so no sensitivity analysis without them).")
    for key in ("within_group", "between_groups", "ancova", "ancova_assumptions"):
        if key in tables:
            cols = set(map(str, tables[key].columns))
            report.add_table(tables[key], KNOWN_TABLES[key][1],
                             caption=captions.get(key) or (_TEST_NOTE if "selected" in cols else None))
    for key in ("outcome_descriptives", "outcome_between_groups"):  # follow-up outcomes, when recorded
        if key in tables and len(tables[key]):
            report.add_table(tables[key], KNOWN_TABLES[key][1], caption=captions.get(key) or _OUTCOME_NOTE)
    # Figures
    report.add_section("Figures")
    k = 2
    for label, unit, base, follow, change in [*CORE_ENDPOINTS[:1], *_faceq_endpoints(endpoints)]:
        if {base, follow} <= set(endpoints.columns):
            report.add_figure(_fig.paired_plot(endpoints, base, follow, label=label, unit=unit, order=order),
                              f"Figure {k}. {label}: baseline and follow-up",
                              caption="One line per patient with both visits; boxes: median and quartiles.")
            k += 1
    if "symmetry_ratio_change" in endpoints:
        report.add_figure(_fig.change_plot(endpoints, "symmetry_ratio_change", label="symmetry ratio",
                                           unit="percentage points", order=order),
                          f"Figure {k}. Change in symmetry ratio by technique",
                          caption="Follow-up minus baseline; > 0 = more symmetric. Dashed line: no change.")
        k += 1
    if {"discrepancy_baseline_mm3", "discrepancy_followup_mm3", "discrepancy_change_mm3"} <= set(endpoints.columns):
        report.add_figure(_fig.discrepancy_change_plot(endpoints, order=order),
                          f"Figure {k}. 3D volumetric discrepancy",
                          caption="Left: points below the dashed identity line became more symmetric. Right: change "
                                  "(follow-up minus baseline); < 0 = affected side fuller.")
        k += 1
    if k == 2:
        report.add_text("The endpoint table holds no endpoint columns to plot.")
    # Complications, missing data, other tables
    report.add_section("Complications")
    if "complications" in tables:
        report.add_table(tables["complications"], KNOWN_TABLES["complications"][1])
        if "complication_tests" in tables:
            report.add_table(tables["complication_tests"], KNOWN_TABLES["complication_tests"][1])
    elif {"complications_followup_n", "major_complication"} & set(endpoints.columns):
        report.add_table(complication_summary(endpoints, order=order), KNOWN_TABLES["complications"][1],
                         caption="Patients with at least one complication recorded at follow-up.")
    else:
        report.add_text("No complication data were given.")
    if "missing" in tables:
        report.add_section("Missing data")
        report.add_table(tables["missing"], KNOWN_TABLES["missing"][1])
    rating_rounds = list(rating_rounds)
    if rating_rounds:
        _rating_section(report, tables, rating_rounds, order)
    others = [k for k in tables if k not in KNOWN_TABLES and not k.startswith(APPENDIX_PREFIX) and not is_rating_table(k)]
    if others:
        report.add_section("Further analyses")
        for key in others:
            report.add_table(tables[key], column_label(key))
    # Methods
    report.add_section("Methods")
    report.add_text(methods_text(settings, flow_full))
    appendix = [k for k in tables if k.startswith(APPENDIX_PREFIX)]
    if appendix:
        report.add_section("Appendix: complete tables")
        for key in appendix:
            name = key[len(APPENDIX_PREFIX):]
            title = APPENDIX_TITLES.get(name) or (KNOWN_TABLES[name][1] if name in KNOWN_TABLES else column_label(name))
            report.add_table(tables[key], f"Appendix. {title}", caption=captions.get(key))
    # Patients
    for page in patient_pages:
        _patient_page(report, page, endpoints)
    return report
