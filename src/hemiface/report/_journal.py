"""Tables as a plastic-surgery journal prints them, laid out from the statistics' tidy tables.

:func:`journal_table_one` (baseline characteristics) and :func:`journal_table_two` (each endpoint
by technique: baseline, follow-up, change with its confidence interval, the within-group test and
the comparison between techniques) only *lay out* numbers that :func:`hemiface.stats.analyze_endpoints`
computed: nothing is recomputed, so the report and ``study analyze``'s workbook cannot disagree.
Each returns a :class:`JournalTable`: the table (strings, ready to print), its footnotes, and the
source rows it was read from.

Formatting follows journal practice: human labels with units ("Age at surgery, y"); mean ± SD or
median [IQR] as the analysis plan chose for each variable; n (%); p-values as "< 0.001" or with
three decimals (two above 0.1 would also do; three keeps equal precision throughout); confidence
intervals as "low to high" (a minus sign never reads as a dash); the tests named in footnotes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from ._errors import ReportError
from .figures import group_label

#: Reader's labels (and units) of the endpoint table's baseline characteristics.
VARIABLE_LABELS = {
    "sex": ("Sex", None),
    "affected_side": ("Affected side", None),
    "guerrerosantos_stage": ("Guerrerosantos stage", None),
    "age_at_surgery_years": ("Age at surgery", "y"),
    "age_at_onset_years": ("Age at onset", "y"),
    "years_since_onset": ("Time from onset to surgery", "y"),
    "followup_interval_days": ("Follow-up interval", "d"),
}
#: Decimals by unit (volumes and days as whole numbers).
_DECIMALS = {"mm3": 0, "mm\u00b3": 0, "d": 0, "days": 0}
#: Footnote text of each test name of the statistics tables.
TEST_NOTES = {
    "paired_t": "paired t test (mean change)",
    "wilcoxon": "Wilcoxon signed-rank test (Hodges\u2013Lehmann pseudomedian change)",
    "welch_t": "Welch's t test",
    "mann_whitney": "Mann\u2013Whitney U test",
    "kruskal": "Kruskal\u2013Wallis test",
}
_UNIT_LABELS = {"mm3": "mm\u00b3", "mm2": "mm\u00b2"}
_MARKS = "\u1d43\u1d47\u1d9c\u1d48\u1d49\u1da0\u1d4d\u02b0"  # superscript a-h


@dataclass(frozen=True)
class JournalTable:
    """A laid-out table (all cells strings), its footnotes, and the tidy rows it came from."""

    table: pd.DataFrame
    footnotes: tuple[str, ...]
    source_rows: pd.DataFrame = field(repr=False)

    @property
    def caption(self) -> str:
        return " ".join(self.footnotes)


def _need(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"{name} must be a pandas DataFrame; got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ReportError(f"{name} lacks the column(s) {', '.join(missing)} of hemiface.stats' tidy table")


def _num(value, decimals: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value):
        return "\u2013"
    text = f"{float(value):,.{decimals}f}" if decimals == 0 else f"{float(value):.{decimals}f}"
    return text.replace("-", "\u2212")


def format_p(p) -> str:
    """A p-value as journals print it: "< 0.001", else three decimals ("\u2013" when missing)."""
    if p is None or pd.isna(p):
        return "\u2013"
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def _group_label(group) -> str:
    """The figures' name for a technique (:func:`figures.group_label`), capitalised as a table row; "all" is "All"."""
    if str(group) == "all":
        return "All"
    label = group_label(group)
    return label[:1].upper() + label[1:]


def _order(groups, order: Sequence | None) -> list:
    present = list(dict.fromkeys(groups))
    first = [g for g in (order or ()) if g in present]
    rest = [g for g in present if g not in first and g != "all"]
    return first + rest + (["all"] if "all" in present else [])


def ci_percent(conf_levels) -> float | None:
    """The confidence level of a tidy table's ``conf_level`` column in percent (0.95 and 95 both give 95),
    from its first value; None when it holds none."""
    levels = pd.to_numeric(pd.Series(conf_levels), errors="coerce").dropna()
    if not len(levels):
        return None
    first = float(levels.iloc[0])
    return first * 100 if first <= 1 else first


def _estimate_ci(estimate, low, high, decimals: int) -> str:
    """"estimate (low to high)", as the tables print an estimate with its confidence interval."""
    return f"{_num(estimate, decimals)} ({_num(low, decimals)} to {_num(high, decimals)})"


def _sources(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The tidy rows a journal table was read from, in the order it read them."""
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def journal_table_one(table1: pd.DataFrame, *, order: Sequence | None = None) -> JournalTable:
    """Table 1 from ``analyze_endpoints(...)["table1"]``: one row per characteristic (and level),
    one column per technique and all patients, headed with their n."""
    _need(table1, ("variable", "level", "group", "n", "n_missing", "summary_type", "mean", "sd", "median",
                   "q1", "q3", "count", "percent"), "table1")
    groups = _order(table1["group"], order)
    sizes = table1[table1["variable"] == "patients"].set_index("group")["n"].to_dict()
    headers = {g: f"{_group_label(g)} (n = {int(sizes[g])})" if g in sizes else _group_label(g) for g in groups}
    body = table1[table1["variable"] != "patients"]
    rows, missing_notes, kinds = [], [], set()
    for variable in dict.fromkeys(body["variable"]):
        sub = body[body["variable"] == variable]
        label, unit = VARIABLE_LABELS.get(variable, (str(variable).replace("_", " ").capitalize(), None))
        kind = str(sub["summary_type"].iloc[0])
        kinds.add(kind)
        decimals = _DECIMALS.get(unit, 1)
        if kind == "count_percent":
            rows.append({"Characteristic": f"{label}, n (%)", **{headers[g]: "" for g in groups}})
            for level in dict.fromkeys(sub["level"]):
                cells = sub[sub["level"] == level].set_index("group")
                rows.append({"Characteristic": f"\u2003{str(level).replace('_', ' ').capitalize()}",
                             **{headers[g]: (f"{int(cells.loc[g, 'count'])} ({_num(cells.loc[g, 'percent'])})"
                                             if g in cells.index else "\u2013") for g in groups}})
        else:
            cells = sub.set_index("group")
            stat = "mean \u00b1 SD" if kind == "mean_sd" else "median [IQR]"

            def cell(g):
                if g not in cells.index:
                    return "\u2013"
                r = cells.loc[g]
                if kind == "mean_sd":
                    return f"{_num(r['mean'], decimals)} \u00b1 {_num(r['sd'], decimals)}"
                return f"{_num(r['median'], decimals)} [{_num(r['q1'], decimals)}\u2013{_num(r['q3'], decimals)}]"

            rows.append({"Characteristic": f"{label}{', ' + unit if unit else ''}, {stat}",
                         **{headers[g]: cell(g) for g in groups}})
        n_missing = int(sub.loc[sub["group"] == "all", "n_missing"].max()) if (sub["group"] == "all").any() else 0
        if n_missing:
            missing_notes.append(f"{label.lower()} {n_missing}")
    notes = ["Values are n (%), mean \u00b1 SD for variables that looked normally distributed in every group "
             "(Shapiro\u2013Wilk p \u2265 0.05), and median [interquartile range] otherwise."]
    if missing_notes:
        notes.append("Patients with the value missing: " + "; ".join(missing_notes) + ".")
    table = pd.DataFrame(rows, columns=["Characteristic", *headers.values()])
    return JournalTable(table, tuple(notes), table1.copy())


def journal_table_two(endpoint_definitions: pd.DataFrame, descriptives: pd.DataFrame, within_group: pd.DataFrame,
                      between_groups: pd.DataFrame, *, order: Sequence | None = None,
                      ci_level: float | None = None) -> JournalTable:
    """Table 2: each endpoint by technique (and all patients): n, baseline, follow-up (mean ± SD),
    change with its confidence interval and p from the test the analysis plan selected, and the
    selected comparison between techniques (p, on the endpoint's first line).

    Arguments are ``analyze_endpoints(...)``'s ``endpoints``, ``descriptives``, ``within_group`` and
    ``between_groups`` tables. Only patients with both visits count, so n is the same in every column.
    """
    _need(endpoint_definitions, ("endpoint", "label", "unit"), "endpoints")
    _need(descriptives, ("endpoint", "group", "timepoint", "n", "mean", "sd"), "descriptives")
    _need(within_group, ("endpoint", "group", "test", "selected", "estimate", "ci_low", "ci_high", "p_value",
                         "conf_level", "n"), "within_group")
    _need(between_groups, ("endpoint", "test", "selected", "p_value"), "between_groups")
    within = within_group[within_group["selected"].astype(bool)]
    between = between_groups[between_groups["selected"].astype(bool)]
    marks: dict[str, str] = {}

    def mark(test: str) -> str:
        if test not in marks:
            marks[test] = _MARKS[len(marks)]
        return marks[test]

    if ci_level is None:
        ci_level = ci_percent(within["conf_level"]) or 95.0
    change_header = f"Change ({ci_level:g}% CI)"
    columns = ["Endpoint", "n", "Baseline", "Follow-up", change_header, "p (within)", "p (between techniques)"]
    rows, sources = [], []
    for d in endpoint_definitions.itertuples():
        desc = descriptives[descriptives["endpoint"] == d.endpoint]
        if desc.empty:
            continue
        unit = _UNIT_LABELS.get(str(d.unit), str(d.unit))
        decimals = _DECIMALS.get(str(d.unit), 1)
        b = between[between["endpoint"] == d.endpoint]
        p_between = f"{format_p(b['p_value'].iloc[0])}{mark(str(b['test'].iloc[0]))}" if len(b) else ""
        rows.append(dict.fromkeys(columns, "") | {"Endpoint": f"{d.label}, {unit}", "p (between techniques)": p_between})
        sources.append(b)
        for g in _order(desc["group"], order):
            at = desc[desc["group"] == g].set_index("timepoint")
            w = within[(within["endpoint"] == d.endpoint) & (within["group"] == g)]
            n = int(w["n"].iloc[0]) if len(w) else int(at.loc["change", "n"]) if "change" in at.index else 0

            def ms(tp):
                if tp not in at.index:
                    return "\u2013"
                return f"{_num(at.loc[tp, 'mean'], decimals)} \u00b1 {_num(at.loc[tp, 'sd'], decimals)}"

            if len(w):
                r = w.iloc[0]
                change = _estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], decimals)
                p_within = f"{format_p(r['p_value'])}{mark(str(r['test']))}"
            else:
                change, p_within = "\u2013", ""
            rows.append({"Endpoint": f"\u2003{_group_label(g)}", "n": str(n), "Baseline": ms("baseline"),
                         "Follow-up": ms("followup"), change_header: change, "p (within)": p_within,
                         "p (between techniques)": ""})
            sources.append(w)
    notes = ["Baseline and follow-up: mean \u00b1 SD of the patients with both visits (n). Change: follow-up minus "
             "baseline, estimated by the test the pre-specified rule selected (see Methods)."]
    notes += [f"{m} {TEST_NOTES.get(t, t.replace('_', ' '))}." for t, m in marks.items()]
    table = pd.DataFrame(rows, columns=columns)
    return JournalTable(table, tuple(notes), _sources(sources))


def journal_ancova(endpoint_definitions: pd.DataFrame, ancova: pd.DataFrame, *,
                   order: Sequence | None = None) -> JournalTable:
    """The ANCOVA as a journal prints it, from ``analyze_endpoints(...)["ancova"]``: per endpoint, the
    F test of technique on its first line and, per technique, its difference in follow-up from the
    reference technique at equal baseline (the model's coefficient) with its confidence interval and t test.
    The complete model (intercept, baseline slope, standard errors, degrees of freedom) is in the appendix.
    """
    _need(endpoint_definitions, ("endpoint", "label", "unit"), "endpoints")
    _need(ancova, ("endpoint", "term", "estimate", "p_value", "ci_low", "ci_high", "conf_level", "n"), "ancova")
    ci = ci_percent(ancova["conf_level"]) or 95.0
    diff_header = f"Adjusted difference ({ci:g}% CI)"
    columns = ["Endpoint", "n", diff_header, "p"]
    rows, sources, references = [], [], set()
    for d in endpoint_definitions.itertuples():
        model = ancova[ancova["endpoint"] == d.endpoint]
        if model.empty:
            continue
        unit = _UNIT_LABELS.get(str(d.unit), str(d.unit))
        decimals = _DECIMALS.get(str(d.unit), 1)
        omnibus = model[model["term"] == "group"]
        n = pd.to_numeric(model["n"], errors="coerce").max()
        rows.append({"Endpoint": f"{d.label}, {unit}", "n": "\u2013" if pd.isna(n) else str(int(n)), diff_header: "",
                     "p": f"{format_p(omnibus['p_value'].iloc[0])}\u1d43" if len(omnibus) else ""})
        sources.append(omnibus)
        terms = model[model["term"].astype(str).str.startswith("group[")]
        by_group = {str(t)[len("group["):-1]: r for t, r in zip(terms["term"], terms.itertuples())}
        note = " ".join(map(str, model.get("method_note", pd.Series(dtype=str)).dropna()))
        reference = _reference_of(note)
        references.update(reference)
        versus = f" vs {group_label(min(reference))}" if len(reference) == 1 else ""
        for g in _order(list(by_group), order):
            r = by_group[g]
            rows.append({"Endpoint": f"\u2003{_group_label(g)}{versus}", "n": "", "p": f"{format_p(r.p_value)}\u1d47",
                         diff_header: _estimate_ci(r.estimate, r.ci_low, r.ci_high, decimals)})
        sources.append(terms)
    reference = ", ".join(group_label(g) for g in sorted(references)) or "the first technique"
    notes = [f"Analysis of covariance: follow-up = baseline + technique (ordinary least squares, treatment coding; "
             f"reference: {reference}). Adjusted difference: a technique's follow-up minus the reference's at equal "
             "baseline.",
             "\u1d43 F test of technique.", "\u1d47 t test of the technique's coefficient.",
             "The complete model and its assumption checks are in the appendix."]
    table = pd.DataFrame(rows, columns=columns)
    return JournalTable(table, tuple(notes), _sources(sources))


def journal_pose_sensitivity(pose_sensitivity: pd.DataFrame, *, order: Sequence | None = None) -> JournalTable:
    """The 2D endpoint again in the pairs whose head pose agrees between the visits, from
    ``analyze_endpoints(...)["pose_sensitivity"]``: per technique the change and, between the techniques,
    the difference in change, each by the test the pre-specified rule selected, with how many pairs were
    left out. The complete rows (both tests of each) are in the appendix."""
    _need(pose_sensitivity, ("endpoint", "group", "n_excluded", "selected", "test", "estimate", "ci_low", "ci_high",
                             "conf_level", "p_value", "n", "comparison"), "pose_sensitivity")
    ci = ci_percent(pose_sensitivity["conf_level"]) or 95.0
    est_header = f"Change or difference, points ({ci:g}% CI)"
    columns = ["2D symmetry ratio, pairs whose pose agrees", "n", "Left out", est_header, "Test", "p"]
    chosen = pose_sensitivity[pose_sensitivity["selected"].astype(bool)]

    def row(label, r):
        return {columns[0]: label, "n": str(int(r.n)), "Left out": str(int(r.n_excluded)),
                est_header: _estimate_ci(r.estimate, r.ci_low, r.ci_high, 1),
                "Test": str(r.test).replace("_", " "), "p": format_p(r.p_value)}

    within = {str(r.group): r for r in chosen.itertuples() if str(r.group) != "between"}
    rows = [row(f"{_group_label(g)}: change", within[g]) for g in _order(list(within), order)]
    for r in chosen[chosen["group"].astype(str) == "between"].itertuples():
        versus = " \u2212 ".join(group_label(g.strip()) for g in str(r.comparison).split(" - "))
        rows.append(row(f"Difference in change ({versus})", r))
    notes = ["Sensitivity analysis of the 2D endpoint: the pairs whose baseline and follow-up head yaw, pitch or "
             "roll differ by more than the limit, or whose pose is unknown, are left out (a head turn moves the "
             "ratio by about 2 points per degree of yaw).",
             "The pose is read from the face mesh, which also moves with a one-sided change of the face, so a pair "
             "left out may have changed in shape as well as in pose: a check on the primary analysis, not a "
             "replacement for it.",
             "Both tests of each comparison are in the appendix."]
    return JournalTable(pd.DataFrame(rows, columns=columns), tuple(notes), _sources([chosen]))


def _reference_of(method_note: str) -> set[str]:
    """The reference technique named in the ANCOVA's method notes ("... treatment coding, reference fat_grafting")."""
    return set(re.findall(r"reference (\S+)", method_note))


def journal_tables(tables: Mapping[str, pd.DataFrame], *, order: Sequence | None = None) -> dict[str, JournalTable]:
    """Table 1, Table 2, the ANCOVA (key ``ancova``) and the pose sensitivity analysis (``pose_sensitivity``, when
    it has rows) from ``analyze_endpoints``' tables, for those present."""
    out = {}
    if "table1" in tables:
        out["table1"] = journal_table_one(tables["table1"], order=order)
    if {"endpoints", "descriptives", "within_group", "between_groups"} <= set(tables):
        out["table2"] = journal_table_two(tables["endpoints"], tables["descriptives"], tables["within_group"],
                                          tables["between_groups"], order=order)
    if {"endpoints", "ancova"} <= set(tables):
        out["ancova"] = journal_ancova(tables["endpoints"], tables["ancova"], order=order)
    if "pose_sensitivity" in tables and len(tables["pose_sensitivity"]):
        out["pose_sensitivity"] = journal_pose_sensitivity(tables["pose_sensitivity"], order=order)
    return out
