"""The study database connection: its URL, its engine, and how writers take turns.

SQLite (the default, one file in the study folder) and PostgreSQL (a
``postgresql://`` URL in ``study.toml``, through psycopg 3) are both supported.

Several processes may write to one study at once (two imports, a run and a
correction, the browser workspace). Every write transaction starts with
:func:`lock_for_writing`, which makes writers take turns for the whole
transaction, its reads included, so no writer decides on data another is about
to change (no lost update), and a waiting writer waits rather than fails:

* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at the start; other
  writers wait up to :data:`WRITE_LOCK_TIMEOUT_S`. The rollback journal is kept
  (not WAL): WAL needs shared memory that network folders, where a team's study
  often lives, do not provide reliably, and it leaves ``-wal``/``-shm`` files beside
  the database.
* PostgreSQL: a transaction-scoped advisory lock (``pg_advisory_xact_lock``),
  released at commit or rollback, even when the process dies; other writers wait
  up to :data:`WRITE_LOCK_TIMEOUT_S` for it (``lock_timeout``, for that wait only).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from .. import logger
from ._errors import StudyError
from ._models import StudyMeta
from ._settings import SETTINGS_NAME, StudySettings, masked_url, read_settings

#: How long a writer waits for another to finish before giving up (seconds), on either database.
WRITE_LOCK_TIMEOUT_S = 120.0
#: The advisory-lock key of study writers in PostgreSQL (any constant; one database holds one study).
PG_WRITE_LOCK_KEY = 0x68656D69  # "hemi"
#: PostgreSQL session-level advisory lock held by a `study run` for its whole run (see :func:`hold_run_lock`).
PG_RUN_LOCK_KEY = 0x68656D72  # "hemr"
#: The PostgreSQL driver used for a plain ``postgresql://`` URL (SQLAlchemy's default, psycopg2, is not installed).
PG_DRIVER = "postgresql+psycopg"


def engine_url(folder: Path, database_url: str):
    """The settings' URL: a relative SQLite path made relative to the study folder, psycopg 3 for PostgreSQL."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise StudyError(f"database_url {masked_url(database_url)!r} is not an SQLAlchemy URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise StudyError("database_url: an in-memory SQLite database cannot hold a study; name a file")
        if not Path(url.database).is_absolute():
            url = url.set(database=str(folder / url.database))
    elif backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername=PG_DRIVER)
    return url


def make_engine(url) -> Engine:
    """An engine on ``url``; SQLite waits :data:`WRITE_LOCK_TIMEOUT_S` for a busy database."""
    kwargs = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": WRITE_LOCK_TIMEOUT_S}
    try:
        return create_engine(url, **kwargs)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StudyError(f"cannot use the study database {url.render_as_string(hide_password=True)}: {exc}") from None


def connect_study(path) -> tuple[Path, StudySettings, Engine]:
    """A study folder (absolute), its settings, and an engine on its database, which must exist and be sound.

    The caller owns the engine (``engine.dispose()``). Raises :class:`StudyError` for a
    missing folder, settings or SQLite file, and for a damaged SQLite database.
    """
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise StudyError(f"{folder}: no such study folder; create one with `hemiface study init`")
    settings = read_settings(folder / SETTINGS_NAME)
    url = engine_url(folder, settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise StudyError(f"{url.database}: the study database is missing")
    engine = make_engine(url)
    try:
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as exc:
            why = str(getattr(exc, "orig", exc) or exc.__class__.__name__).strip().splitlines()[0]
            raise StudyError(f"cannot connect to the study database {url.render_as_string(hide_password=True)}: "
                             f"{why}") from None
        check_integrity(engine, folder)
    except BaseException:
        engine.dispose()
        raise
    return folder, settings, engine


def sqlite_file(engine: Engine) -> Path | None:
    """The SQLite database file of ``engine``, or None for another database."""
    return Path(engine.url.database) if engine.dialect.name == "sqlite" else None


def lock_for_writing(conn: Connection) -> None:
    """Hold the study's write lock until the current transaction ends; call it first in the transaction.

    Raises :class:`StudyError` when another writer held the lock for longer than :data:`WRITE_LOCK_TIMEOUT_S`.
    """
    try:
        if conn.dialect.name == "sqlite":
            # pysqlite opens its own transaction only before a data change; an explicit BEGIN IMMEDIATE
            # makes the whole transaction (reads, DDL) one locked unit, committed by the usual COMMIT.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            # lock_timeout bounds the wait (an advisory lock is a heavyweight lock); reset for the rest of it
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, round(1000 * WRITE_LOCK_TIMEOUT_S))}")
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK_KEY})
            conn.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
    except SQLAlchemyError as exc:
        raise StudyError(f"the study database is busy (another process is writing to it): "
                         f"{exc.__class__.__name__}; try again") from None


@contextmanager
def hold_run_lock(engine: Engine, folder: Path):
    """On PostgreSQL, hold the database's run lock for the block: one `study run` per study database.

    The study folder's file lock already keeps two runs of one folder apart; this also
    keeps apart two folders (or machines) that name the same database. A session-level
    advisory lock on a connection of its own, released when the block ends or the
    process dies. SQLite: nothing (its database is the folder's own file).
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_RUN_LOCK_KEY}).scalar():
            raise StudyError(f"{folder}: another `hemiface study run` is working on this study's database "
                             f"({masked_url(engine.url)}), from another folder or machine")
        conn.commit()  # the session lock outlives the transaction; end the transaction, keep the connection
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_RUN_LOCK_KEY})
            conn.commit()


def check_integrity(engine: Engine, folder: Path) -> None:
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


def check_identity(engine: Engine, folder: Path, settings: StudySettings) -> None:
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
