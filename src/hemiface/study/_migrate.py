"""Schema migrations of the study database (Alembic), and the check that a study's schema is this hemiface's.

The migration scripts live in ``hemiface/study/migrations/versions`` (revisions
``0001``, ``0002``, ... in order); the newest one, the *head*, is the schema of
:mod:`._models`. A database records its revision in Alembic's ``alembic_version``
table. Each revision also writes its number into ``study_meta.schema_version``
(``0003`` -> ``"3"``), so that a hemiface from before the migrations (which reads
only that key) refuses a newer database instead of misreading it; a database made
by such a hemiface (``schema_version`` ``"1"`` or ``"2"``, no ``alembic_version``)
is stamped at its revision and upgraded from there.

Upgrading (:func:`upgrade_study`, ``hemiface study upgrade DIR``) backs the database
up into ``backups/`` first (SQLite: its online backup API, checked with ``quick_check``;
PostgreSQL: ``pg_dump`` in its custom format, checked by ``pg_restore --list``), then
applies the migrations and records the upgrade in the audit table in one transaction
that holds the study's write lock, so an interrupted upgrade changes nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import glob
import os
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .. import logger
from .._provenance import sha256_file
from ._database import check_identity, connect_study, lock_for_writing, sqlite_file
from ._errors import StudyError
from ._import import _login
from ._models import AuditEntry, StudyMeta

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Schema versions written by hemiface before Alembic (``study_meta.schema_version``) -> their revision.
LEGACY_REVISIONS = {"1": "0001", "2": "0002"}
#: Where :func:`upgrade_study` puts the backup of the database, in the study folder.
BACKUP_DIR = "backups"


@contextmanager
def _quiet_alembic():
    """Alembic logs every step at INFO; hemiface reports the upgrade itself (its INFO is noise in a CLI)."""
    log = logging.getLogger("alembic")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _config(connection: Connection | None = None):
    with _quiet_alembic():  # importing alembic logs its plugins at INFO
        from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts():
    with _quiet_alembic():
        from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The revision of this hemiface's schema (the newest migration)."""
    return _scripts().get_current_head()


def known_revisions() -> tuple[str, ...]:
    """Every revision this hemiface knows, oldest first."""
    return tuple(reversed([s.revision for s in _scripts().walk_revisions()]))


def schema_version(revision: str) -> str:
    """The ``study_meta.schema_version`` a revision writes: its number (``"0003"`` -> ``"3"``)."""
    return str(int(revision))


def stored_revision(conn: Connection) -> tuple[str | None, str | None]:
    """(Alembic revision or None, ``study_meta.schema_version`` or None) of a database (None, None when empty)."""
    with _quiet_alembic():
        from alembic.runtime.migration import MigrationContext

        revision = MigrationContext.configure(conn).get_current_revision()
    if not inspect(conn).has_table(StudyMeta.__tablename__):
        return revision, None
    row = conn.execute(text("SELECT value FROM study_meta WHERE key = 'schema_version'")).first()
    return revision, None if row is None else row[0]


def _state(conn: Connection) -> tuple[str, str | None, str | None]:
    revision, version = stored_revision(conn)
    if revision is None:
        revision = LEGACY_REVISIONS.get(version)
        if revision is None:
            newer = version is not None and version.isdigit() and int(version) > int(schema_version(head_revision()))
            return ("newer" if newer else "unknown"), None, version
    if revision == head_revision():
        return "current", revision, version
    return ("older" if revision in known_revisions() else "newer"), revision, version


def _checked_state(engine: Engine, folder: Path) -> tuple[str, str | None, str | None]:
    """(``"current" | "older" | "newer" | "unknown"``, revision, schema_version) of a study database.

    ``revision`` is the Alembic revision the database is at (a legacy database's is
    inferred from its ``schema_version``), or None when unknown.
    """
    try:
        with engine.connect() as conn:
            return _state(conn)
    except SQLAlchemyError as exc:
        raise StudyError(f"{folder}: the database is not a hemiface study database: "
                         f"{exc.__class__.__name__}") from None


def check_schema(engine: Engine, folder: Path) -> None:
    """Refuse, in one line, a study whose schema is not this hemiface's (older: say how to upgrade it)."""
    state, revision, version = _checked_state(engine, folder)
    if state == "current":
        return
    found = revision or version
    if state == "older":
        raise StudyError(f"{folder}: the study database has the older schema {found} (this hemiface uses "
                         f"{head_revision()}); upgrade it first: hemiface study upgrade {folder}")
    if state == "newer":
        raise StudyError(f"{folder}: the study database has schema {found}, newer than this hemiface knows "
                         f"(up to {head_revision()}): it was upgraded by a newer hemiface; install that version")
    what = "no schema version" if version is None else f"the unknown schema version {version!r}"
    raise StudyError(f"{folder}: the database records {what}; it is not a hemiface study database")


def stamp_head(conn: Connection) -> None:
    """Mark a database just created from the models (``Base.metadata.create_all``) as being at the head."""
    with _quiet_alembic():
        from alembic import command

        command.stamp(_config(conn), "head")
    conn.execute(StudyMeta.__table__.insert().values(key="schema_version", value=schema_version(head_revision())))


def migrate(conn: Connection, to: str = "head") -> None:
    """Apply the migrations on ``conn`` (inside the caller's transaction), stamping a legacy database first."""
    revision, version = stored_revision(conn)
    with _quiet_alembic():
        from alembic import command

        if revision is None and version in LEGACY_REVISIONS:
            command.stamp(_config(conn), LEGACY_REVISIONS[version])
        command.upgrade(_config(conn), to)


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade_study` did: the revisions before and after, and the backup it made (None: skipped)."""

    study: Path
    from_revision: str
    to_revision: str
    backup: Path | None

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision

    def to_dict(self) -> dict:
        return {"study": str(self.study), "from_revision": self.from_revision, "to_revision": self.to_revision,
                "backup": None if self.backup is None else str(self.backup), "changed": self.changed}

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.study}: the database is already at schema {self.to_revision}; nothing to do"
        saved = f"; the previous database was backed up to {self.backup}" if self.backup else ""
        return f"{self.study}: upgraded the database from schema {self.from_revision} to {self.to_revision}{saved}"


def _backup_sqlite(db: Path, folder: Path, revision: str) -> Path:
    """A checked copy of an SQLite database in ``folder/backups/`` (SQLite's online backup API)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / BACKUP_DIR / f"{db.stem}-schema{revision}-{stamp}{db.suffix or '.sqlite'}"
    try:
        target.parent.mkdir(exist_ok=True)
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=120)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            ok = dst.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            src.close()
            dst.close()
    except (OSError, sqlite3.Error) as exc:
        target.unlink(missing_ok=True)
        raise StudyError(f"{folder}: cannot back up the database before upgrading ({exc}); nothing was changed") from None
    if not ok:
        target.unlink(missing_ok=True)
        raise StudyError(f"{folder}: the backup of the database failed SQLite's check; nothing was changed")
    return target


def _pg_tool(name: str) -> str | None:
    """A PostgreSQL client program: on PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return versions[0] if versions else None


def _backup_postgresql(engine: Engine, folder: Path, revision: str) -> Path:
    """A checked dump of a PostgreSQL database in ``folder/backups/`` (``pg_dump --format=custom``, read back by
    ``pg_restore --list``). The password goes to pg_dump in its environment, never on its command line."""
    dump, restore = _pg_tool("pg_dump"), _pg_tool("pg_restore")
    if dump is None or restore is None:
        raise StudyError(f"{folder}: cannot back up the PostgreSQL database before upgrading: pg_dump and pg_restore "
                         "are not installed (Debian: postgresql-client); install them, or back the database up "
                         "yourself and pass --no-backup; nothing was changed")
    url = engine.url
    params = {"host": url.query.get("host") or url.host, "port": url.port, "user": url.username, "dbname": url.database}
    quoted = {k: str(v).replace("\\", "\\\\").replace("'", "\\'") for k, v in params.items() if v}
    conninfo = " ".join(f"{k}='{v}'" for k, v in quoted.items())  # libpq's key='value', quotes and backslashes escaped
    env = dict(os.environ, **({"PGPASSWORD": url.password} if url.password else {}))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / BACKUP_DIR / f"{url.database}-schema{revision}-{stamp}.dump"
    try:
        target.parent.mkdir(exist_ok=True)
        made = subprocess.run([dump, "--format=custom", "--no-password", f"--file={target}", f"--dbname={conninfo}"],
                              env=env, capture_output=True, text=True, timeout=3600)
        listed = subprocess.run([restore, "--list", str(target)], capture_output=True, text=True, timeout=600) \
            if made.returncode == 0 else made
    except (OSError, subprocess.TimeoutExpired) as exc:
        target.unlink(missing_ok=True)
        raise StudyError(f"{folder}: cannot back up the database before upgrading ({exc}); nothing was changed") from None
    if made.returncode != 0 or listed.returncode != 0 or "TABLE DATA" not in listed.stdout:
        target.unlink(missing_ok=True)
        why = (made.stderr or listed.stderr or "the dump holds no table data").strip().splitlines()
        raise StudyError(f"{folder}: the backup of the database with pg_dump failed ({why[-1] if why else '?'}); "
                         "nothing was changed")
    return target


def upgrade_study(path, *, user: str | None = None, backup: bool = True) -> UpgradeResult:
    """Bring a study's database to this hemiface's schema; a no-op for a study already there.

    The database is first backed up in the study folder: an SQLite database copied to
    ``backups/<name>-schema<revision>-<UTC time>.sqlite``, a PostgreSQL one dumped by ``pg_dump``
    to ``backups/<database>-schema<revision>-<UTC time>.dump`` (restore with ``pg_restore``).
    The upgrade then runs in one transaction and is recorded in the audit table (action
    ``upgrade``, with the backup's path and SHA-256).

    Parameters
    ----------
    path : path
        The study folder.
    user : str, optional
        Who upgrades, for the audit table [default: the login name].
    backup : bool
        False skips the backup (for a PostgreSQL database that its administrator has just
        backed up, or where pg_dump is not installed); the audit entry says so.

    Raises
    ------
    StudyError
        When the folder is not a study, its database belongs to another study, is
        damaged, or is newer than this hemiface.
    """
    folder, settings, engine = connect_study(path)
    try:
        state, revision, _version = _checked_state(engine, folder)
        if state not in ("current", "older"):
            check_schema(engine, folder)  # raises, with the reason
        check_identity(engine, folder, settings)
        head = head_revision()
        if state == "current":
            logger.info("study upgrade: already at schema %s", head)
            return UpgradeResult(folder, head, head, None)
        db = sqlite_file(engine)
        skipped = not backup
        if skipped:
            backup = None
            logger.warning("study upgrade: no backup made (--no-backup)")
        else:
            backup = _backup_sqlite(db, folder, revision) if db is not None else _backup_postgresql(engine, folder, revision)
        try:
            with engine.connect() as conn, conn.begin():
                lock_for_writing(conn)
                migrate(conn)
                conn.execute(AuditEntry.__table__.insert().values(
                    at_utc=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None), user=user or _login(),
                    action="upgrade", details_json=json.dumps({
                        "from_revision": revision, "to_revision": head,
                        "backup": None if backup is None else backup.relative_to(folder).as_posix(),
                        "backup_sha256": None if backup is None else sha256_file(backup),
                        "backup_skipped": skipped,
                    }, sort_keys=True)))
        except SQLAlchemyError as exc:
            raise StudyError(f"{folder}: the upgrade from schema {revision} failed and was rolled back "
                             f"({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    finally:
        engine.dispose()
    logger.warning("upgraded the study database from schema %s to %s", revision, head)
    return UpgradeResult(folder, revision, head, backup)
