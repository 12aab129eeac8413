"""The study report from the database: endpoint table, statistics, flow, settings, the rating panel's
results and per-patient pages."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from .. import logger
from ..report._rating import RATING_TABLES
from ._endpoints import endpoint_table
from ._errors import StudyError
from ._models import AnalysisResult, Media
from ._rating import DISTRIBUTION_COLUMNS, list_rounds, round_results, scale_of
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
        "pose": endpoints.attrs.get("pose", {}),
        "test_selection": SELECTION_RULE,
        "alpha": alpha,
        "ci_level": round(100 * (1 - alpha), 6),
    }


# ----------------------------------------------------------------------------- the rating panel's results
#: Leading columns of every rating table: which round (a table holds every completed round).
_ROUND_COLUMNS = ("round_id", "round", "scale")
#: The rank-based rows of hemiface.stats' tests: rating scores are ordinal, so these are the tests reported.
RATING_TESTS = ("wilcoxon", "mann_whitney", "kruskal")


def rating_table_columns() -> dict[str, tuple[str, ...]]:
    """Columns of the rating tables of :func:`rating_analysis` (frozen), by table name.

    A function, not a constant, so that importing the study layer does not import the statistics.
    """
    from ..stats import AGREEMENT_COLUMNS, GROUP_COLUMNS, PAIRED_COLUMNS

    return {
        # each technique's (and all patients') patient scores: a patient's score is the mean over the raters
        # (pair scales) or the follow-up minus baseline mean (symmetry of single photographs)
        "rating_summary": _ROUND_COLUMNS + ("technique", "measure", "n_patients", "n_raters", "mean", "sd", "median",
                                            "q1", "q3", "min", "max"),
        "rating_distribution": _ROUND_COLUMNS + DISTRIBUTION_COLUMNS,
        "rating_within": _ROUND_COLUMNS + ("technique",) + PAIRED_COLUMNS,
        "rating_between": _ROUND_COLUMNS + GROUP_COLUMNS,
        "rating_agreement": _ROUND_COLUMNS + AGREEMENT_COLUMNS,
    }


@dataclass(frozen=True)
class RatingAnalysis:
    """The completed rating rounds' results: tidy tables (:func:`rating_table_columns`) and what each round was.

    ``rounds``: one mapping per completed round (closed, or every rater whose link stands submitted) with ``round_id``,
    ``name``, ``scale`` (:meth:`RatingScale.to_dict`), ``n_raters``, ``n_patients``, ``n_items``,
    ``measure``, ``agreement_note``, ``within_tested`` and ``between_tested`` (whether ``rating_within`` /
    ``rating_between`` hold rows for it); what the report's methods sentence says. Empty when no round is
    complete (and then ``tables`` is empty too).
    """

    tables: dict
    rounds: tuple


def _patient_measure(scale) -> str:
    return "change" if scale.design == "single" else "mean_score"


def _within_testable(scale) -> bool:
    """Whether a change within a technique can be tested: on the symmetry scale (follow-up against baseline)
    and on pair scales whose 0 means "no difference" (scores against 0); not on ``improvement_4``."""
    return scale.design == "single" or 0 in scale.values


@contextlib.contextmanager
def _quiet_moments():
    """Scipy warns of "precision loss" when a group's scores are all equal (common on a short scale); that
    touches only the parametric rows, which are dropped (:func:`_rank_rows`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        yield


def _rank_rows(table: pd.DataFrame) -> pd.DataFrame:
    table = table[table["test"].isin(RATING_TESTS)].copy()
    table["selected"] = True  # ordinal scores: the rank test is the pre-specified one
    return table


def rating_analysis(study, *, alpha: float = 0.05, order=None) -> RatingAnalysis:
    """The results of every completed rating round (:func:`list_rounds`' ``complete``), as tidy tables.

    Per round and technique (and all patients): the patients' scores (``rating_summary``; a patient's
    score is the mean over the raters, on the symmetry scale the follow-up minus baseline mean), the
    distribution of the single ratings (``rating_distribution``), the change within each technique
    (``rating_within``: Wilcoxon signed-rank of the scores against 0 on the pair scales whose 0 means
    no difference, of follow-up against baseline on the symmetry scale; none on ``improvement_4``), the
    comparison between techniques (``rating_between``: Mann-Whitney U, Kruskal-Wallis for more than
    two) and the agreement between the raters (``rating_agreement``: :func:`hemiface.stats.rater_agreement`).
    The tests are hemiface.stats' rank tests (R's ``wilcox.test`` / ``kruskal.test``), as suits
    ordinal scores. ``order`` orders the techniques (default: the study's).
    """
    from ..stats import compare_groups, paired_change

    order = list(order if order is not None else study.settings.techniques or ())
    parts: dict = {name: [] for name in RATING_TABLES}
    rounds = []
    for listed in list_rounds(study):
        if not listed["complete"]:  # every rater whose link stands has submitted, or the round is closed
            continue
        res = round_results(study, listed["round_id"])
        scale = scale_of(res.progress["scale"]["name"])
        lead = dict(round_id=listed["round_id"], round=listed["name"], scale=scale.name)
        measure = _patient_measure(scale)
        patients = res.patients.dropna(subset=["technique"])
        techniques = [t for t in order if t in set(patients.technique)]
        techniques += sorted(set(patients.technique) - set(techniques), key=str)
        for tech in [*techniques, "all"]:
            sub = patients if tech == "all" else patients[patients.technique == tech]
            x = pd.to_numeric(sub[measure], errors="coerce").dropna().to_numpy(float)
            q1, median, q3 = np.percentile(x, [25, 50, 75]) if len(x) else (np.nan,) * 3
            parts["rating_summary"].append(pd.DataFrame([dict(
                lead, technique=tech, measure=measure, n_patients=len(x), n_raters=int(res.progress["n_submitted"]),
                mean=x.mean() if len(x) else np.nan, sd=x.std(ddof=1) if len(x) > 1 else np.nan, median=median,
                q1=q1, q3=q3, min=x.min() if len(x) else np.nan, max=x.max() if len(x) else np.nan)]))
            if not _within_testable(scale):
                continue
            if scale.design == "single":
                before, after = sub["baseline_mean"].to_numpy(float), sub["followup_mean"].to_numpy(float)
            else:
                before, after = np.zeros(len(sub)), sub["mean_score"].to_numpy(float)
            with _quiet_moments():
                within = paired_change(before, after, alpha=alpha, ids=list(sub.patient_id))
            parts["rating_within"].append(_rank_rows(within).assign(**lead, technique=tech))
        dist = res.distribution.assign(**lead)
        parts["rating_distribution"].append(dist)
        if len(techniques) > 1:
            with _quiet_moments():
                between = compare_groups(patients[measure].to_numpy(float), list(patients.technique), order=techniques,
                                         alpha=alpha, ids=list(patients.patient_id))
            parts["rating_between"].append(_rank_rows(between).assign(**lead))
        parts["rating_agreement"].append(res.agreement.assign(**lead))
        rounds.append(dict(round_id=listed["round_id"], name=listed["name"], scale=scale.to_dict(),
                           n_raters=int(res.progress["n_submitted"]), n_patients=int(len(patients)),
                           n_items=int(res.progress["n_items"]), measure=measure, agreement_note=res.agreement_note,
                           within_tested=_within_testable(scale),
                           between_tested=len(techniques) > 1))
    tables = {}
    if rounds:
        for name, columns in rating_table_columns().items():
            frames = [f for f in parts[name] if len(f)]
            tables[name] = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).reindex(
                columns=list(columns))
    logger.info("rating panel: %d completed round(s) analysed", len(rounds))
    return RatingAnalysis(tables, tuple(rounds))


def study_analysis(study, *, alpha: float | None = None):
    """Everything ``study analyze`` writes: the endpoint table's statistics and the rating panel's tables.

    Returns
    -------
    endpoints : DataFrame
        The endpoint table (:func:`endpoint_table`).
    tables : dict of DataFrame
        :func:`hemiface.stats.analyze_endpoints`' tables, then :func:`rating_analysis`' (when a round is complete).
    ratings : RatingAnalysis
    """
    import inspect

    from ..stats import analyze_endpoints

    if alpha is None:
        alpha = inspect.signature(analyze_endpoints).parameters["alpha"].default
    endpoints = endpoint_table(study)
    tables = analyze_endpoints(endpoints, alpha=alpha)
    ratings = rating_analysis(study, alpha=alpha)
    return endpoints, {**tables, **ratings.tables}, ratings


def build_study_report(study, *, with_patient_pages: bool = True):
    """The :class:`hemiface.report.Report` of a study, and the tables it shows.

    Returns
    -------
    report : hemiface.report.Report
    endpoints : DataFrame
    tables : dict of DataFrame
    """
    from ..report import report_tables, study_report

    endpoints, tables, ratings = study_analysis(study)
    settings = report_settings(study, endpoints)
    pages = patient_pages(study, endpoints) if with_patient_pages else None
    shown, captions = report_tables(tables, order=study.settings.techniques)
    report = study_report(endpoints, shown, endpoints.attrs["flow"], settings, patient_pages=pages,
                          title=f"{study.settings.name}: study report", forbidden=source_file_names(study),
                          captions=captions, rating_rounds=ratings.rounds)
    return report, endpoints, tables


#: What ``study report`` can write, by ``--format``: the file each one writes.
REPORT_FORMATS = {"html": "report.html", "pdf": "report.pdf", "docx": "report.docx"}


def write_study_report(study, out_dir, *, overwrite: bool = False, formats=("html", "pdf")) -> list[Path]:
    """Write the study report into ``out_dir`` in each of ``formats``; returns the paths (html, pdf, docx order).

    ``html``: ``report.html``, one self-contained file; ``pdf``: ``report.pdf``; ``docx``:
    ``report.docx``, the same sections, tables and figures for the manuscript, without the per-patient
    pages. All files or none are written.
    """
    from .._outputs import check_writable, staged_outputs
    from .._validate import check_option

    formats = [formats] if isinstance(formats, str) else list(formats)
    if not formats:
        raise StudyError(f"give at least one report format of {', '.join(REPORT_FORMATS)}")
    for fmt in formats:
        check_option("format", fmt, REPORT_FORMATS)
    formats = [f for f in REPORT_FORMATS if f in formats]
    out_dir = Path(out_dir)
    names = [REPORT_FORMATS[f] for f in formats]
    check_writable(out_dir, names, overwrite=overwrite)
    report, _endpoints, _tables = build_study_report(study, with_patient_pages=formats != ["docx"])
    with staged_outputs(out_dir, names, overwrite=overwrite) as stage:  # every file or none
        for fmt, name in zip(formats, names):
            if fmt == "html":
                report.save_html(stage / name, overwrite=True)
            elif fmt == "pdf":
                report.save_pdf(stage / name, overwrite=True)
            else:
                report.save_docx(stage / name, overwrite=True)
    return [out_dir / n for n in names]
