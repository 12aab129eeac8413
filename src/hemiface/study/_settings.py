"""A study's settings: the ``study.toml`` file at the top of its folder.

The visit rules and the inclusion window live here, so every output can quote
exactly the rules it was computed with.
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from ._errors import StudyError

SETTINGS_NAME = "study.toml"
DEFAULT_DATABASE_URL = "sqlite:///study.sqlite"
DEFAULT_TECHNIQUES = ("fat_grafting", "free_flap", "adm")
_TECHNIQUE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_STUDY_ID_RE = re.compile(r"^[0-9a-f]{32}$")
#: Upper bounds of the visit windows (a typo such as 99999999999 must not become a rule).
MAX_BASELINE_WINDOW_DAYS = 3650
MAX_FOLLOWUP_MONTHS = 600
#: Longest study name (it is the title of every report page).
MAX_NAME_CHARS = 200


def masked_url(database_url: str) -> str:
    """``database_url`` with any password replaced by ``***`` (for everything written or shown)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: hide everything between "://" and "@"
        return re.sub(r"://[^/@]*@", "://***@", database_url)


@dataclass(frozen=True)
class RunSettings:
    """How ``study run`` runs the analyses (``[run]`` in ``study.toml``); the command line overrides it.

    Parameters
    ----------
    jobs : int
        Analyses run in parallel on this machine (processes); 1 runs them in the ``study run`` process.
    scheduler : str or None
        A Dask distributed scheduler's address (``tcp://HOST:PORT``), or ``local:N`` for a cluster of
        N worker processes on this machine (see :mod:`hemiface.study._dask`); None runs locally.
        Excludes ``jobs`` other than 1: the cluster's workers are the parallelism. A valid
        address holds no user name or password (Dask authenticates with TLS certificates).
    """

    jobs: int = 1
    scheduler: str | None = None

    def __post_init__(self):
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise StudyError(f"jobs must be a whole number >= 1; got {self.jobs!r}")
        if self.scheduler is not None:
            from ._dask import parse_scheduler

            parse_scheduler(self.scheduler)
            object.__setattr__(self, "scheduler", self.scheduler.strip())
            if self.jobs != 1:
                raise StudyError(f"jobs={self.jobs} and a scheduler exclude each other: the cluster's workers run "
                                 "the analyses in parallel (local:N for N workers on this machine)")

    def overridden(self, *, jobs: int | None = None, scheduler: str | None = None) -> "RunSettings":
        """These settings with the caller's (the command line's) options in their place.

        A ``scheduler`` replaces ``jobs`` too, and ``jobs`` alone means this machine (the
        settings' scheduler is not used): ``--jobs 1`` runs locally whatever ``study.toml`` says.
        """
        if scheduler is not None:
            return RunSettings(jobs=1 if jobs is None else jobs, scheduler=scheduler)
        if jobs is not None:
            return RunSettings(jobs=jobs)
        return self

    def to_dict(self) -> dict:
        """What a result records of where it was computed: ``jobs`` and ``scheduler`` (None: this machine)."""
        return {"jobs": self.jobs, "scheduler": self.scheduler}


@dataclass(frozen=True)
class StudySettings:
    """Rules and options of one study.

    Parameters
    ----------
    name : str
        A short title for reports.
    inclusion_from, inclusion_to : datetime.date or None
        Patients are included when their initial surgery falls in this window
        (both ends inclusive). None leaves that end open.
    baseline_window_days : int
        Baseline = the last preoperative visit on or before the initial surgery,
        at most this many days before it.
    followup_months : int
        Follow-up = the first follow-up visit at or after this many calendar
        months after the initial surgery.
    techniques : tuple of str
        The surgical techniques a spreadsheet may name (lower-case snake_case).
    database_url : str
        SQLAlchemy URL. A relative SQLite path is relative to the study folder.
    analysis : mapping
        Settings of the analyses, ``{analysis: {keyword: value}}`` (``[analysis.<analysis>]``
        in ``study.toml``), checked against the analysis functions' own keyword arguments;
        see :mod:`hemiface.study._analyses`. What it leaves out is the functions' default.
    study_id : str or None
        The study's identity (32 hex digits), also stored in its database, so that a
        ``database_url`` pointing at another study's database is refused. None for a
        study made before identities were recorded.
    """

    name: str = "hemiface study"
    inclusion_from: _dt.date | None = None
    inclusion_to: _dt.date | None = None
    baseline_window_days: int = 90
    followup_months: int = 6
    techniques: tuple[str, ...] = field(default=DEFAULT_TECHNIQUES)
    database_url: str = DEFAULT_DATABASE_URL
    analysis: Mapping = field(default_factory=dict)
    run: RunSettings = field(default_factory=RunSettings, compare=False)
    study_id: str | None = field(default=None, compare=False)  # identity, not a rule

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise StudyError(f"name must be text; got {self.name!r}")
        if not self.name.strip() or len(self.name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in self.name):
            raise StudyError(f"name must be 1 to {MAX_NAME_CHARS} characters on one line; got {len(self.name):,} "
                             "characters")
        if self.study_id is not None and (not isinstance(self.study_id, str) or not _STUDY_ID_RE.match(self.study_id)):
            raise StudyError(f"study_id must be 32 hexadecimal digits; got {self.study_id!r}")
        for end in ("inclusion_from", "inclusion_to"):
            value = getattr(self, end)
            if value is not None and (not isinstance(value, _dt.date) or isinstance(value, _dt.datetime)):
                raise StudyError(f"{end} must be a date (YYYY-MM-DD); got {value!r}")
        if self.inclusion_from and self.inclusion_to and self.inclusion_from > self.inclusion_to:
            raise StudyError(
                f"the inclusion window starts ({self.inclusion_from}) after it ends ({self.inclusion_to})"
            )
        for name in ("baseline_window_days", "followup_months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StudyError(f"{name} must be a whole number >= 0; got {value!r}")
        for name, top in (("baseline_window_days", MAX_BASELINE_WINDOW_DAYS), ("followup_months", MAX_FOLLOWUP_MONTHS)):
            if getattr(self, name) > top:
                raise StudyError(f"{name} = {getattr(self, name)} is implausible; at most {top}")
        techniques = tuple(self.techniques)
        if not techniques:
            raise StudyError("techniques must name at least one surgical technique")
        bad = [t for t in techniques if not isinstance(t, str) or not _TECHNIQUE_RE.match(t)]
        if bad:
            raise StudyError(
                f"techniques must be lower-case snake_case names like 'fat_grafting'; got {', '.join(map(repr, bad))}"
            )
        if len(set(techniques)) != len(techniques):
            raise StudyError(f"techniques lists a name twice: {list(techniques)}")
        object.__setattr__(self, "techniques", techniques)
        if not isinstance(self.database_url, str) or "://" not in self.database_url:
            raise StudyError(f"database_url must be an SQLAlchemy URL like {DEFAULT_DATABASE_URL!r}; got {masked_url(self.database_url) if isinstance(self.database_url, str) else self.database_url!r}")
        if not isinstance(self.run, RunSettings):
            raise StudyError(f"run must be RunSettings; got {self.run!r}")
        if self.analysis:
            from ._analyses import validate_analysis_settings

            object.__setattr__(self, "analysis", validate_analysis_settings(self.analysis))
        else:
            object.__setattr__(self, "analysis", {})

    def analysis_parameters(self) -> dict[str, dict]:
        """The complete settings each analysis runs with (defaults filled in)."""
        from ._analyses import analysis_parameters

        return analysis_parameters(self.analysis)

    def to_dict(self) -> dict:
        """The settings as written into every output; a password in ``database_url`` is masked."""
        d = asdict(self)
        del d["run"]  # where the analyses run is not a rule (each result records it)
        d["database_url"] = masked_url(self.database_url)
        d["inclusion_from"] = self.inclusion_from.isoformat() if self.inclusion_from else None
        d["inclusion_to"] = self.inclusion_to.isoformat() if self.inclusion_to else None
        d["techniques"] = list(self.techniques)
        d["analysis"] = {a: dict(v) for a, v in self.analysis.items()}
        return d

    def to_toml(self) -> str:
        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        def when(d, key):
            if d is None:
                return f"# {key} = YYYY-MM-DD   (not set: this end of the window is open)"
            return f"{key} = {d.isoformat()}"

        return "\n".join([
            "# hemiface study settings. Every output quotes the rules it was computed with.",
            "",
            "[study]",
            f"name = {q(self.name)}",
            "# SQLAlchemy URL; a relative SQLite path is relative to this folder.",
            f"database_url = {q(self.database_url)}",
            *([] if self.study_id is None else [
                "# This study's identity, also stored in its database: a database of another study is refused.",
                f"study_id = {q(self.study_id)}"]),
            "",
            "[inclusion]",
            "# Patients whose initial surgery falls in this window (inclusive) are included.",
            when(self.inclusion_from, "initial_surgery_from"),
            when(self.inclusion_to, "initial_surgery_to"),
            "",
            "[visits]",
            "# Baseline: the last preoperative visit on or before the initial surgery, at most this many days before.",
            f"baseline_window_days = {self.baseline_window_days}",
            "# Follow-up: the first follow-up visit at or after this many calendar months after the initial surgery.",
            f"followup_months = {self.followup_months}",
            "",
            "[techniques]",
            "# The surgical techniques a spreadsheet may name.",
            f"allowed = [{', '.join(q(t) for t in self.techniques)}]",
            "",
            *_run_toml(self.run, q),
            "",
            "# Analysis settings: any keyword argument of the analysis functions, per analysis, for example",
            "#   [analysis.scan_analyze]",
            "#   threshold_mm = 4.0",
            "#   [analysis.scan_analyze.region]",
            "#   width_mm = 140.0",
            "# (sections photo_analyze, scan_analyze, scan_compare). What is not given is hemiface's default;",
            "# changing a setting re-runs exactly the analyses it belongs to. `hemiface study settings` lists them.",
            *_analysis_toml(self.analysis, q),
        ]).rstrip("\n") + "\n"


def _run_toml(run: RunSettings, q) -> list[str]:
    """The ``[run]`` section: written out when set, else an example in comments."""
    lines = [
        "# Where `study run` runs the analyses; its --jobs and --scheduler options override this. jobs: analyses",
        "# in parallel on this machine; scheduler: a Dask cluster's scheduler, \"tcp://HOST:PORT\", or \"local:N\"",
        "# for N worker processes here (it excludes jobs). Not set: one at a time, in the `study run` process.",
    ]
    if run == RunSettings():
        return [*lines, "#   [run]", "#   jobs = 2", "#   scheduler = \"tcp://10.0.0.5:8786\""]
    return [*lines, "[run]", *([f"scheduler = {q(run.scheduler)}"] if run.scheduler else [f"jobs = {run.jobs}"])]


def _analysis_toml(analysis: Mapping, q) -> list[str]:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return q(v) if isinstance(v, str) else repr(v)

    lines = []
    for name, values in analysis.items():
        scalars = {k: v for k, v in values.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        lines += ["", f"[analysis.{name}]", *(f"{k} = {value(v)}" for k, v in scalars.items())]
        for key, table in tables.items():
            lines += [f"[analysis.{name}.{key}]", *(f"{k} = {value(v)}" for k, v in table.items())]
    return lines


_KNOWN = {
    "study": {"name", "database_url", "study_id"},
    "inclusion": {"initial_surgery_from", "initial_surgery_to"},
    "visits": {"baseline_window_days", "followup_months"},
    "techniques": {"allowed"},
    "run": {"jobs", "scheduler"},
}


def read_settings(path: str | Path) -> StudySettings:
    """Read ``study.toml``; unknown sections or keys are an error (a typo must not change a rule silently)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{path}: no study settings here; create a study with `hemiface study init`") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StudyError(f"{path}: cannot read the study settings: {exc}") from None
    if not data:
        raise StudyError(f"{path}: the study settings are empty; a study's rules must be written out "
                         "(`hemiface study init` writes them)")
    for section, value in data.items():
        if section == "analysis":
            continue  # checked against the analysis functions by StudySettings
        if section not in _KNOWN or not isinstance(value, dict):
            raise StudyError(f"{path}: unknown section [{section}]; known: {', '.join(sorted([*_KNOWN, 'analysis']))}")
        unknown = set(value) - _KNOWN[section]
        if unknown:
            raise StudyError(
                f"{path}: unknown key(s) {', '.join(sorted(unknown))} in [{section}]; "
                f"known: {', '.join(sorted(_KNOWN[section]))}"
            )
    study, inclusion = data.get("study", {}), data.get("inclusion", {})
    visits, techniques = data.get("visits", {}), data.get("techniques", {})
    defaults = StudySettings()
    try:
        run = RunSettings(**data.get("run", {}))
    except StudyError as exc:
        raise StudyError(f"{path}: [run] {exc}") from None
    try:
        return StudySettings(
            name=study.get("name", defaults.name),
            database_url=study.get("database_url", defaults.database_url),
            inclusion_from=inclusion.get("initial_surgery_from"),
            inclusion_to=inclusion.get("initial_surgery_to"),
            baseline_window_days=visits.get("baseline_window_days", defaults.baseline_window_days),
            followup_months=visits.get("followup_months", defaults.followup_months),
            techniques=tuple(techniques.get("allowed", defaults.techniques)),
            analysis=data.get("analysis", {}),
            run=run,
            study_id=study.get("study_id"),
        )
    except StudyError as exc:
        raise StudyError(f"{path}: {exc}") from None
