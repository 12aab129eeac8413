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


def report_settings(study, endpoints) -> dict:
    """Everything the report's methods text quotes, as actually used: the study's rules, each
    analysis' complete settings (from the endpoint table), the photo flag limits, the statistics."""
    import inspect

    from ..photo._analyze import MAX_PITCH_DEG, MAX_YAW_DEG
    from ..stats import SELECTION_RULE, analyze_endpoints

    alpha = inspect.signature(analyze_endpoints).parameters["alpha"].default
    return {
        "name": study.settings.name,
        "rules": endpoints.attrs["rules"],
        "parameters": endpoints.attrs["parameters"],
        "photo_flags": {"max_yaw_deg": MAX_YAW_DEG, "max_pitch_deg": MAX_PITCH_DEG},
        "test_selection": SELECTION_RULE,
        "alpha": alpha,
        "ci_level": round(100 * (1 - alpha), 6),
    }


def build_study_report(study, *, with_patient_pages: bool = True):
    """The :class:`hemiface.report.Report` of a study, and the tables it shows.

    Returns
    -------
    report : hemiface.report.Report
    endpoints : DataFrame
    tables : dict of DataFrame
    """
    from ..report import journal_tables, study_report
    from ..stats import analyze_endpoints

    endpoints = endpoint_table(study)
    settings = report_settings(study, endpoints)
    tables = analyze_endpoints(endpoints, alpha=settings["alpha"])
    pages = patient_pages(study, endpoints) if with_patient_pages else None
    journal = journal_tables(tables, order=study.settings.techniques)
    shown = {key: j.table for key, j in journal.items()}
    captions = {key: j.caption for key, j in journal.items()}
    for key in ("endpoints", "ancova", "ancova_assumptions", "outcome_descriptives", "outcome_between_groups",
                "complications", "complication_tests", "missing"):
        if key in tables:
            shown[key] = tables[key]
    # the complete tidy tables (every computed test, min and max) go to the appendix, as in the workbook
    for key in ("table1", "descriptives", "within_group", "between_groups"):
        if key in tables:
            shown[f"appendix_{key}"] = tables[key]
    report = study_report(endpoints, shown, endpoints.attrs["flow"], settings, patient_pages=pages,
                          title=f"{study.settings.name}: study report", forbidden=source_file_names(study),
                          captions=captions)
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
