"""Study cohorts: the study folder and database, spreadsheet import, and the visit-window rules.

Public: :func:`init_study`, :func:`open_study`, :class:`Study`, :func:`import_files`,
:class:`StudySettings`, :func:`baseline_visit`, :func:`followup_visit`,
:func:`add_calendar_months`, and :func:`eligibility` / :func:`flow_counts`, which apply
the rules to every patient of a study; :func:`run_study` (analyse every eligible visit's
photos and scans, resumable; a scan's symmetry plane or painted stable area set by a person with
:func:`set_scan_settings`) and :func:`endpoint_table` / :func:`write_endpoints` (one row
per patient, with the study flow); the blinded rating panel (:func:`create_round`,
:func:`rater_view`, :func:`record_rating`, :func:`submit_ratings`, :func:`round_results`).
The analyses' settings have one home, the analysis
functions' keyword arguments, overridden in ``study.toml`` (:func:`analysis_parameters`). The database models are in :mod:`hemiface.study.models`; :func:`upgrade_study` applies the schema
migrations (Alembic, ``hemiface/study/migrations``) to a study made by an older hemiface.
"""

from ._eligibility import (
    ELIGIBILITY_COLUMNS,
    EXCLUSION_REASONS,
    FLOW_KEYS,
    PatientEligibility,
    eligibility,
    flow_counts,
    patient_eligibility,
)
from ._analyses import ANALYSES, STUDY_DEFAULTS, analysis_parameters, setting_defaults
from ._correct import CORRECTIONS_DIR, correct_landmarks, landmarks_version
from ._endpoints import (
    ENDPOINT_COLUMNS,
    FACEQ_COLUMN,
    MM3_PER_ML,
    endpoint_table,
    flow_table,
    graft_retention_percent,
    study_flow,
    write_endpoints,
)
from ._errors import Problem, StaleEditError, StudyError, StudyExistsError, StudyImportError
from ._import import TABLE_COLUMNS, ImportSummary, import_files
from ._rating import (
    DISTRIBUTION_COLUMNS,
    PATIENT_SCORE_COLUMNS,
    RATING_COLUMNS,
    RATING_SCALES,
    RaterInvite,
    RaterNotFoundError,
    RaterRevokedError,
    RatingClosedError,
    RatingError,
    RatingScale,
    RoundClosedError,
    RoundCreated,
    RoundResults,
    candidate_patients,
    close_round,
    create_round,
    invite_raters,
    list_rounds,
    presentation,
    rater_view,
    rating_photo,
    record_rating,
    round_progress,
    revoke_rater,
    round_results,
    submit_ratings,
)
from ._reporting import (RATING_TABLES, RatingAnalysis, build_study_report, patient_pages, rating_analysis,
                         rating_table_columns, study_analysis, write_study_report)
from ._run import RESULTS_DIR, Job, RunSummary, plan_jobs, run_study
from ._scan_settings import PLANE_METHODS, current_scan_settings, set_scan_settings
from ._settings import DEFAULT_TECHNIQUES, SETTINGS_NAME, RunSettings, StudySettings, read_settings
from ._migrate import UpgradeResult, head_revision, upgrade_study
from ._study import Study, init_study, open_study
from ._visits import VisitRuleError, add_calendar_months, baseline_visit, followup_visit

__all__ = [
    "DISTRIBUTION_COLUMNS",
    "PATIENT_SCORE_COLUMNS",
    "RATING_COLUMNS",
    "RATING_SCALES",
    "RaterInvite",
    "RaterNotFoundError",
    "RatingClosedError",
    "RaterRevokedError",
    "RoundClosedError",
    "close_round",
    "revoke_rater",
    "RatingError",
    "RatingScale",
    "RoundCreated",
    "RoundResults",
    "candidate_patients",
    "create_round",
    "invite_raters",
    "list_rounds",
    "presentation",
    "rater_view",
    "rating_photo",
    "record_rating",
    "round_progress",
    "round_results",
    "submit_ratings",
    "ANALYSES",
    "STUDY_DEFAULTS",
    "analysis_parameters",
    "setting_defaults",
    "RATING_TABLES",
    "RatingAnalysis",
    "build_study_report",
    "rating_analysis",
    "rating_table_columns",
    "study_analysis",
    "patient_pages",
    "write_study_report",
    "CORRECTIONS_DIR",
    "correct_landmarks",
    "landmarks_version",
    "PLANE_METHODS",
    "StaleEditError",
    "current_scan_settings",
    "set_scan_settings",
    "ENDPOINT_COLUMNS",
    "FACEQ_COLUMN",
    "MM3_PER_ML",
    "graft_retention_percent",
    "Job",
    "RESULTS_DIR",
    "RunSummary",
    "endpoint_table",
    "flow_table",
    "plan_jobs",
    "run_study",
    "study_flow",
    "write_endpoints",
    "DEFAULT_TECHNIQUES",
    "ELIGIBILITY_COLUMNS",
    "EXCLUSION_REASONS",
    "FLOW_KEYS",
    "PatientEligibility",
    "ImportSummary",
    "Problem",
    "SETTINGS_NAME",
    "Study",
    "UpgradeResult",
    "head_revision",
    "upgrade_study",
    "StudyError",
    "StudyExistsError",
    "StudyImportError",
    "RunSettings",
    "StudySettings",
    "TABLE_COLUMNS",
    "VisitRuleError",
    "add_calendar_months",
    "baseline_visit",
    "eligibility",
    "flow_counts",
    "followup_visit",
    "import_files",
    "init_study",
    "open_study",
    "patient_eligibility",
    "read_settings",
]
