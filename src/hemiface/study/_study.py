"""A study: a folder with ``study.toml`` and a database reached through SQLAlchemy."""

from __future__ import annotations

import datetime as _dt
import os
import uuid
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .. import logger
from ._database import check_identity, connect_study, engine_url, lock_for_writing, make_engine
from ._errors import StudyError, StudyExistsError
from ._migrate import check_schema, stamp_head
from ._models import TABLES, Base, StudyMeta
from ._settings import DEFAULT_TECHNIQUES, SETTINGS_NAME, StudySettings


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

    @contextmanager
    def writing(self):
        """A session in a transaction that holds the study's write lock; committed on success.

        Every change to the study goes through one (see :mod:`hemiface.study._database`):
        concurrent writers take turns, none loses another's change.
        """
        with self.session() as session, session.begin():
            lock_for_writing(session.connection())
            yield session

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
    url = engine_url(folder, settings.database_url)
    if url.get_backend_name() == "sqlite" and Path(url.database).exists():
        raise StudyExistsError(f"{url.database}: a database file already exists; refusing to write over it")
    folder.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        existing = inspect(engine).get_table_names()
        if existing:
            raise StudyExistsError(
                f"{url.render_as_string(hide_password=True)}: the database already has tables "
                f"({', '.join(sorted(existing))}); use an empty database"
            )
        with engine.connect() as conn, conn.begin():  # the current schema, stamped at the newest migration
            lock_for_writing(conn)
            Base.metadata.create_all(conn)
            stamp_head(conn)
            conn.execute(StudyMeta.__table__.insert().values(key="study_id", value=settings.study_id))
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
    """Open an existing study folder (its ``study.toml`` and database).

    Refuses a study whose database schema is older than this hemiface's (upgrade it with
    :func:`upgrade_study`, ``hemiface study upgrade DIR``) or newer.
    """
    folder, settings, engine = connect_study(path)
    try:
        check_schema(engine, folder)
        check_identity(engine, folder, settings)
    except BaseException:
        engine.dispose()
        raise
    return Study(folder, settings, engine)
