"""A study: a folder with ``study.toml`` and a database reached through SQLAlchemy."""

from __future__ import annotations

import datetime as _dt
import os
import uuid
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .. import logger
from ._errors import StudyError, StudyExistsError
from ._models import SCHEMA_VERSION, TABLES, UPGRADABLE_SCHEMA_VERSIONS, Base, StudyMeta
from ._settings import DEFAULT_TECHNIQUES, SETTINGS_NAME, StudySettings, masked_url, read_settings


def _engine_url(folder: Path, database_url: str):
    """The settings' URL, with a relative SQLite path made relative to the study folder."""
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise StudyError(f"database_url {masked_url(database_url)!r} is not an SQLAlchemy URL") from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise StudyError("database_url: an in-memory SQLite database cannot hold a study; name a file")
        if not Path(url.database).is_absolute():
            url = url.set(database=str(folder / url.database))
    return url


def _make_engine(url) -> Engine:
    try:
        return create_engine(url)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StudyError(f"cannot use the study database {url.render_as_string(hide_password=True)}: {exc}") from None


class Study:
    """An open study. Use :func:`open_study` or :func:`init_study` rather than this constructor.

    Attributes
    ----------
    path : pathlib.Path
        The study folder (absolute).
    settings : StudySettings
        The rules read from ``study.toml``.
    engine : sqlalchemy.engine.Engine
        The database engine (SQLite file in the folder by default).
    """

    def __init__(self, path: Path, settings: StudySettings, engine: Engine):
        self.path = path
        self.settings = settings
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new ORM session on the study database (use as a context manager)."""
        return self._sessions()

    def counts(self) -> dict[str, int]:
        """Rows in each table, by table name."""
        with self.session() as session:
            return {name: session.scalar(select(func.count()).select_from(model)) for name, model in TABLES.items()}

    def import_files(self, files, *, user: str | None = None, today: _dt.date | None = None,
                     deidentify: bool = False):
        """Validate and import spreadsheets; see :func:`hemiface.study.import_files`."""
        from ._import import import_files

        return import_files(self, files, user=user, today=today, deidentify=deidentify)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Study":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r}, name={self.settings.name!r})"


def init_study(
    path: str | Path,
    *,
    name: str = "hemiface study",
    inclusion_from: _dt.date | None = None,
    inclusion_to: _dt.date | None = None,
    baseline_window_days: int = 90,
    followup_months: int = 6,
    techniques=DEFAULT_TECHNIQUES,
    database_url: str | None = None,
) -> Study:
    """Create a study folder with ``study.toml`` and an empty database, and open it.

    Refuses (:class:`StudyExistsError`) when the folder already holds anything, or
    when the database already has tables; nothing is ever written over.
    """
    folder = Path(path).absolute()
    settings = StudySettings(
        name=name, inclusion_from=inclusion_from, inclusion_to=inclusion_to,
        baseline_window_days=baseline_window_days, followup_months=followup_months,
        techniques=tuple(techniques), database_url=database_url or StudySettings.database_url,
        study_id=uuid.uuid4().hex,
    )
    if folder.exists():
        if not folder.is_dir():
            raise StudyExistsError(f"{folder}: exists and is not a folder")
        if (folder / SETTINGS_NAME).exists():
            raise StudyExistsError(f"{folder}: already holds a study ({SETTINGS_NAME}); open it instead of creating it")
        if any(folder.iterdir()):
            raise StudyExistsError(f"{folder}: the folder is not empty; create the study in a new or empty folder")
    url = _engine_url(folder, settings.database_url)
    if url.get_backend_name() == "sqlite" and Path(url.database).exists():
        raise StudyExistsError(f"{url.database}: a database file already exists; refusing to write over it")
    folder.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = _make_engine(url)
    try:
        existing = inspect(engine).get_table_names()
        if existing:
            raise StudyExistsError(
                f"{url.render_as_string(hide_password=True)}: the database already has tables "
                f"({', '.join(sorted(existing))}); use an empty database"
            )
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            session.add(StudyMeta(key="schema_version", value=SCHEMA_VERSION))
            session.add(StudyMeta(key="study_id", value=settings.study_id))
        # settings last, atomically: its presence marks a complete study
        fd, tmp = tempfile.mkstemp(prefix=".study-", suffix=".toml", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(settings.to_toml())
        os.replace(tmp, folder / SETTINGS_NAME)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StudyError(f"cannot create the study database: {exc}") from None
    except BaseException:
        engine.dispose()
        raise
    logger.info("created study %s", folder)
    return Study(folder, settings, engine)


def open_study(path: str | Path) -> Study:
    """Open an existing study folder (its ``study.toml`` and database)."""
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise StudyError(f"{folder}: no such study folder; create one with `hemiface study init`")
    settings = read_settings(folder / SETTINGS_NAME)
    url = _engine_url(folder, settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise StudyError(f"{url.database}: the study database is missing")
    engine = _make_engine(url)
    try:
        with Session(engine) as session:
            version = session.get(StudyMeta, "schema_version")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StudyError(f"{folder}: the database is not a hemiface study database: {exc.__class__.__name__}") from None
    if version is not None and version.value in UPGRADABLE_SCHEMA_VERSIONS:
        _upgrade(engine, folder, version.value)
        version = StudyMeta(key="schema_version", value=SCHEMA_VERSION)
    if version is None or version.value != SCHEMA_VERSION:
        engine.dispose()
        found = None if version is None else version.value
        raise StudyError(f"{folder}: database schema version {found!r}; this hemiface reads {SCHEMA_VERSION!r}")
    try:
        _check_integrity(engine, folder)
        _check_identity(engine, folder, settings)
    except BaseException:
        engine.dispose()
        raise
    return Study(folder, settings, engine)


def _check_integrity(engine: Engine, folder: Path) -> None:
    """SQLite's quick check (every page and index readable and well formed); a damaged database is refused."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as conn:
            found = [row[0] for row in conn.execute(text("PRAGMA quick_check(5)"))]
    except SQLAlchemyError as exc:
        found = [exc.__class__.__name__]
    if found != ["ok"]:
        logger.debug("quick_check: %s", found)
        raise StudyError(f"{folder}: the study database is damaged (SQLite's integrity check failed); nothing was "
                         "read from it: restore it from a backup")


def _check_identity(engine: Engine, folder: Path, settings: StudySettings) -> None:
    """The database must be this study's: the study_id in study.toml and in the database agree."""
    with Session(engine) as session:
        stored = session.get(StudyMeta, "study_id")
    stored = None if stored is None else stored.value
    if stored == settings.study_id:
        if stored is None:
            logger.info("this study predates study identities; its database cannot be checked to be its own")
        return
    if stored is None:
        why = "the database records no study identity"
    elif settings.study_id is None:
        why = f"study.toml records no study_id but the database belongs to the study {stored}"
    else:
        why = f"the database belongs to another study ({stored}, not {settings.study_id})"
    raise StudyError(f"{folder}: {why}; check database_url in study.toml (it must name this study's own database)")


def _upgrade(engine: Engine, folder: Path, found: str) -> None:
    """Bring an older study database to :data:`SCHEMA_VERSION` (later versions only add tables)."""
    try:
        Base.metadata.create_all(engine)  # creates the missing tables, leaves existing ones alone
        with Session(engine) as session, session.begin():
            session.get(StudyMeta, "schema_version").value = SCHEMA_VERSION
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StudyError(f"{folder}: cannot upgrade the database from schema {found!r}: {exc}") from None
    logger.warning("upgraded the study database from schema version %s to %s", found, SCHEMA_VERSION)
