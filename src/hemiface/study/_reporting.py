"""The study report from the database: endpoint table, statistics, flow, settings and per-patient pages."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from ._endpoints import endpoint_table
from ._models import AnalysisResult, Media
from ._run import plan_jobs

#: Per-patient images: (analysis, visit, file in the result folder) -> key of a report patient page.
_PAGE_IMAGES = (
    ("photo_analyze", "baseline", "overlay.png", "overlay_baseline"),
    ("photo_analyze", "followup", "overlay.png", "overlay_followup"),
    ("scan_analyze", "baseline", "depth_map.png", "depth_map"),
    ("scan_compare", "followup", "gain_map.png", "gain_map"),
    ("scan_compare", "followup", "before_after.png", "before_after"),
)


def patient_pages(study, endpoints) -> list[dict]:
    """One page per eligible patient: the photo overlays and the depth and gain maps that `study run` wrote."""
    jobs, _ = plan_jobs(study)
    with study.session() as session:
        ok = {(r.analysis, r.inputs_sha256, r.parameters_sha256) for r in session.scalars(
            select(AnalysisResult).where(AnalysisResult.status == "ok"))}
    found: dict = {}
    for job in jobs:
        if job.key in ok:
            found.setdefault((job.patient_id, job.visit_date, job.analysis), study.path / job.output_dir)
    pages = []
    for row in endpoints.itertuples():
        page = {"patient_id": row.patient_id}
        dates = {"baseline": row.baseline_date.isoformat(), "followup": row.followup_date.isoformat()}
        for analysis, visit, name, key in _PAGE_IMAGES:
            folder = found.get((row.patient_id, dates[visit], analysis))
            if folder is not None and (folder / name).is_file():
                page[key] = str(folder / name)
        pages.append(page)
    return pages


def source_file_names(study) -> set[str]:
    """The media files' own names: a report must not show them (they may carry names or hospital numbers)."""
    with study.session() as session:
        return {Path(m.path).name for m in session.scalars(select(Media))}


#: Columns of the compact test tables in the report body (every computed test stays in the appendix tables).
_TEST_SUMMARY = ["endpoint", "test", "n", "estimate_name", "estimate", "ci_low", "ci_high",
                 "effect_size_name", "effect_size", "p_value"]


def table_one_wide(table1):
    """Table 1 as journals print it: one row per characteristic (and level), one column per group."""
    import pandas as pd

    if table1.empty:
        return table1
    groups = list(dict.fromkeys(table1["group"]))
    sizes = table1[table1["variable"] == "patients"].set_index("group")["n"].to_dict()
    label = {g: f"{'All' if g == 'all' else g.replace('_', ' ')} (n = {sizes.get(g, '?')})" for g in groups}
    body = table1[table1["variable"] != "patients"].copy()
    body["level"] = body["level"].fillna("").astype(str)
    body["missing"] = body["n_missing"]
    wide = body.pivot_table(index=["variable", "level"], columns="group", values="summary", aggfunc="first", sort=False)
    wide = wide.reindex(columns=groups).rename(columns=label)
    note = body.groupby(["variable", "level"], sort=False).agg(summary_type=("summary_type", "first"),
                                                                missing=("missing", "max"))
    out = wide.join(note).reset_index()
    out["summary_type"] = out["summary_type"].map({"median_iqr": "median [IQR]", "mean_sd": "mean ± SD",
                                                   "count_percent": "n (%)"}).fillna(out["summary_type"])
    out.columns = [str(c) for c in out.columns]
    return pd.DataFrame(out)


def selected_tests(table, by=("group",)):
    """The tests the analysis plan selected, with the columns a reader needs."""
    if table.empty or "selected" not in table:
        return table
    keep = table[table["selected"].astype(bool)]
    cols = [c for c in ["endpoint", *by, *_TEST_SUMMARY[1:]] if c in keep.columns]
    return keep[cols].reset_index(drop=True)


def build_study_report(study, *, with_patient_pages: bool = True):
    """The :class:`hemiface.report.Report` of a study, and the tables it shows.

    Returns
    -------
    report : hemiface.report.Report
    endpoints : DataFrame
    tables : dict of DataFrame
    """
    from ..report import study_report
    from ..stats import SELECTION_RULE, analyze_endpoints

    endpoints = endpoint_table(study)
    tables = analyze_endpoints(endpoints)
    settings = {
        "name": study.settings.name,
        "rules": endpoints.attrs["rules"],
        "parameters": endpoints.attrs["parameters"],
        "test_selection": SELECTION_RULE,
        "alpha": 0.05,
        "ci_level": 95,
    }
    pages = patient_pages(study, endpoints) if with_patient_pages else None
    shown = dict(tables)
    shown["table1"] = table_one_wide(tables["table1"])
    shown["within_group"] = selected_tests(tables["within_group"], by=("group",))
    shown["between_groups"] = selected_tests(tables["between_groups"], by=("comparison",))
    if "descriptives" in tables:  # the full table, with min and max, is in the workbook of `study analyze`
        shown["descriptives"] = tables["descriptives"].drop(columns=["min", "max"], errors="ignore")
    shown["table1_detail"] = tables["table1"]
    shown["within_group_all_tests"] = tables["within_group"]
    shown["between_groups_all_tests"] = tables["between_groups"]
    report = study_report(endpoints, shown, endpoints.attrs["flow"], settings, patient_pages=pages,
                          title=f"{study.settings.name}: study report", forbidden=source_file_names(study))
    return report, endpoints, tables


def write_study_report(study, out_dir, *, overwrite: bool = False, pdf: bool = True) -> list[Path]:
    """Write ``report.html`` (self-contained) and ``report.pdf`` into ``out_dir``; returns the paths."""
    from .._outputs import check_writable, staged_outputs

    out_dir = Path(out_dir)
    names = (["report.pdf"] if pdf else []) + ["report.html"]
    check_writable(out_dir, names, overwrite=overwrite)
    report, _endpoints, _tables = build_study_report(study)
    with staged_outputs(out_dir, names, overwrite=overwrite) as stage:  # both files or neither
        report.save_html(stage / "report.html", overwrite=True)
        if pdf:
            report.save_pdf(stage / "report.pdf", overwrite=True)
    return [out_dir / "report.html"] + ([out_dir / "report.pdf"] if pdf else [])
