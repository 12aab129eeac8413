"""A throwaway PostgreSQL server for the study's database tests, and the fixtures that run a test on both databases.

The server is Debian's (``make setup`` installs the ``postgresql`` package): ``initdb`` into a
temporary folder and ``pg_ctl start`` on a unix socket in it (no TCP port), as the ``postgres``
user when the tests run as root (PostgreSQL refuses to run as root). It is stopped and removed
when the session ends. Without PostgreSQL the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH), newest version first: where
    ``initdb`` is, found as ``study upgrade`` finds pg_dump (:func:`hemiface.study._migrate._pg_tool`)."""
    from hemiface.study._migrate import _pg_tool

    found = _pg_tool("initdb")
    return Path(found).resolve().parent if found else None


def _as_server_user() -> tuple[list[str], int | None, int | None, str | None]:
    """(command prefix, uid, gid, why not) for running the server: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return [], None, None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        return [], None, None, "running as root and there is no 'postgres' user to run the server as"
    runuser = shutil.which("runuser")
    if runuser is None:
        return [], None, None, "running as root and runuser (util-linux) is missing"
    return [runuser, "-u", "postgres", "--"], user.pw_uid, user.pw_gid, None


class PostgresServer:
    """A running throwaway cluster; :meth:`new_database` makes an empty database and returns its URL."""

    def __init__(self, folder: Path, prefix: list[str], bin_dir: Path):
        self.folder, self.prefix, self.bin_dir = folder, prefix, bin_dir
        self.socket_dir = folder

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def _admin(self):
        import psycopg

        return psycopg.connect(dbname="postgres", user="postgres", host=str(self.socket_dir), autocommit=True)

    def new_database(self) -> tuple[str, str]:
        """An empty database, copied from ``template1`` file by file (80 ms, half the default WAL_LOG copy's time)."""
        name = f"hemiface_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            file_copy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}"{file_copy}')
        return name, self.url(name)

    def copy_database(self, source: str) -> tuple[str, str]:
        """A new database holding what ``source`` holds (``CREATE DATABASE ... TEMPLATE``; nobody may be connected)."""
        name = f"hemiface_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')
        return name, self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


#: The end of every reason a PostgreSQL case is skipped for (see :func:`fold_skip`).
SKIPPED = "the PostgreSQL cases of the study tests are skipped"


def _skip(why: str):
    pytest.skip(f"{why}: {SKIPPED}")


def fold_skip(report) -> None:
    """Reports the skip of a PostgreSQL case at this file, not at its test, so the summary says it once with the count.

    (``make test``'s ``-rs`` lists skips by place and reason: else one line per skipped case.)
    """
    if report.skipped and isinstance(report.longrepr, tuple) and str(report.longrepr[2]).endswith(SKIPPED):
        report.longrepr = (os.path.relpath(__file__), _SKIP_LINE, report.longrepr[2])


def start_postgres() -> PostgresServer:
    """Start a cluster, or ``pytest.skip`` with the reason it cannot be had here."""
    bin_dir = _pg_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        _skip("PostgreSQL is not installed (no initdb/pg_ctl; `make setup` installs Debian's postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip("psycopg is not installed")
    prefix, uid, gid, why = _as_server_user()
    if why:
        _skip(f"cannot start a throwaway PostgreSQL server: {why}")
    folder = Path(tempfile.mkdtemp(prefix="hemiface-pg-"))
    os.chmod(folder, 0o755)
    if uid is not None:
        os.chown(folder, uid, gid)
    started = time.perf_counter()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8", "--locale", "C"], check=True, capture_output=True, timeout=120)
        # no durability (a throwaway), no autovacuum (its databases live seconds), and room for the connections
        # of the studies a test module keeps open
        options = (f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                   " -c autovacuum=off -c max_connections=300")
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-l",
                        str(folder / "server.log"), "-w", "-t", "60", "start"], check=True, capture_output=True,
                       timeout=90)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        _skip(f"cannot start a throwaway PostgreSQL server ({exc.__class__.__name__}: "
              f"{detail.decode(errors='replace').strip()[:200]})")
    import logging

    logging.getLogger(__name__).info("throwaway PostgreSQL server (%s) started in %.1f s", bin_dir.parent.name,
                                     time.perf_counter() - started)
    return PostgresServer(folder, prefix, bin_dir)


class Databases:
    """The PostgreSQL databases of a test module's studies, each study its own, dropped when their owner ends.

    :meth:`route_new_studies` makes every :func:`hemiface.study.init_study` without a ``database_url`` (the
    tests' ``study`` fixture, their helpers, ``hemiface study init``, the demo) create its study in a new
    database here; an explicit ``database_url`` (a test of SQLite's own file, say) is left as it is.
    """

    def __init__(self, server: PostgresServer):
        self.server = server
        self.names: list[str] = []
        self.sqlite_used: set[str] = set()  # SQLite databases this process connected to meanwhile

    @contextmanager
    def watching_sqlite(self):
        """Notes every connection to an SQLite database in this process (see :meth:`check_no_sqlite`)."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        def connected(conn):
            if conn.dialect.name == "sqlite":
                self.sqlite_used.add(str(conn.engine.url.database))

        event.listen(Engine, "engine_connect", connected)
        try:
            yield
        finally:
            event.remove(Engine, "engine_connect", connected)

    def check_no_sqlite(self, test: str) -> None:
        """A PostgreSQL case that used an SQLite study tested SQLite twice: say which and how to mend it."""
        used, self.sqlite_used = self.sqlite_used, set()
        if used:
            pytest.fail(f"{test}: its PostgreSQL case used an SQLite database ({', '.join(sorted(used))}): a "
                        "module-scoped fixture that creates a study must request the `backend` fixture (to be "
                        "made again on each database), and a test of SQLite's own file is marked sqlite_only",
                        pytrace=False)

    def new_url(self) -> str:
        name, url = self.server.new_database()
        self.names.append(name)
        return url

    def copy_study(self, source: Path, target: Path) -> None:
        """``source``'s folder copied to ``target``, and its database into a new one that the copy names."""
        from sqlalchemy.engine import make_url

        from hemiface.study._settings import SETTINGS_NAME

        shutil.copytree(source, target)
        settings = target / SETTINGS_NAME
        text = settings.read_text()
        url = re.search(r'^database_url = "(.*)"$', text, re.M).group(1)
        name, copy = self.server.copy_database(make_url(url).database)
        self.names.append(name)
        settings.write_text(text.replace(url, copy))

    def drop_after(self, mark: int) -> None:
        """Drop the databases made since there were ``mark`` (a test's, at its end; all, at the module's end)."""
        names, self.names[mark:] = self.names[mark:], []
        for name in names:
            self.server.drop_database(name)

    def route_new_studies(self, monkeypatch) -> None:
        import hemiface.study._study as study_module

        original = study_module.init_study

        @functools.wraps(original)
        def init_study(path, *, database_url=None, **settings):
            return original(path, database_url=self.new_url() if database_url is None else database_url, **settings)

        # wherever it was imported by name: hemiface.study (the CLI and the demo import it from there when they
        # run) and the test modules, which imported it when they were collected
        for module in list(sys.modules.values()):
            if vars(module).get("init_study") is original:
                monkeypatch.setattr(module, "init_study", init_study)


def twin(nodeid: str) -> str:
    """The SQLite case of a test case (its node id with the ``postgresql`` parameter replaced)."""
    return re.sub(r"(?<=[\[-])postgresql(?=[\]-])", "sqlite", nodeid)


class AnalysisReplay:
    """A test's PostgreSQL case replays the analyses its SQLite case computed, in the same order.

    The analyses' numbers do not depend on the database, and computing them is most of the study tests'
    time, so the PostgreSQL case gets each analysis's outcome (its result object, or the exception it
    raised) from a tape that its SQLite twin recorded, while everything the study does with it (staging,
    the files, the database rows, the endpoints) runs for real. A job is replayed only when it is the
    one recorded at that point (the same analysis function, inputs' and parameters' SHA-256 and side);
    from the first other job on, the case computes for itself. Analyses run in other processes (worker
    pools, Dask, a ``hemiface`` subprocess) are computed in both cases.
    """

    def __init__(self):
        self.tapes: dict[str, list] = {}
        self.test: str | None = None  # the running test's node id
        self.backend = "sqlite"
        self.played = 0
        self.replaying = False

    def start_test(self, nodeid: str, backend: str) -> None:
        self.test, self.backend, self.played = nodeid, backend, 0
        self.replaying = backend == "postgresql"
        if backend == "sqlite":
            self.tapes[nodeid] = []

    def forget(self) -> None:
        self.tapes.clear()

    def install(self, monkeypatch) -> None:
        import hemiface.study._run as run_module

        analyse = run_module._analyse

        def key(job):
            return (id(run_module.analysis_function(job.analysis)), job.analysis, job.inputs_sha256,
                    job.parameters_sha256, job.affected)

        @functools.wraps(analyse)
        def replayed(job):
            if self.test is None:
                return analyse(job)
            if self.backend == "postgresql":
                tape = self.tapes.get(twin(self.test), [])
                if self.replaying and self.played < len(tape) and tape[self.played][0] == key(job):
                    _, result, error = tape[self.played]
                    self.played += 1
                    if error is not None:
                        raise error
                    return result
                self.replaying = False
                return analyse(job)
            tape = self.tapes.setdefault(self.test, [])
            try:
                result = analyse(job)
            except Exception as exc:
                tape.append((key(job), None, exc))
                raise
            tape.append((key(job), result, None))
            return result

        monkeypatch.setattr(run_module, "_analyse", replayed)


def database_state(folder: Path):
    """What a study's database holds, to compare before and after an operation that must change nothing.

    SQLite: the database file's bytes (nothing at all was written). PostgreSQL: every row of every
    table, in order, and every sequence's position (no row, and no id drawn, by a refused operation).
    """
    from sqlalchemy import select, text

    from hemiface.study._models import Base

    engine = study_engine(folder)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        return Path(engine.url.database).read_bytes()
    try:
        with engine.connect() as conn:  # the study's tables as the models declare them (reflecting them took 0.4 s)
            rows = {table.name: conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                    for table in Base.metadata.sorted_tables}
            rows["alembic_version"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            sequences = conn.execute(text("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")).all()
        return rows, sequences
    finally:
        engine.dispose()


def study_engine(folder: Path, *, timeout_s: float = 1.0):
    """An engine on a study folder's database (as its study.toml names it), for a test to look in from outside."""
    from sqlalchemy import create_engine

    from hemiface.study._database import engine_url
    from hemiface.study._settings import SETTINGS_NAME, read_settings

    folder = Path(folder).absolute()
    url = engine_url(folder, read_settings(folder / SETTINGS_NAME).database_url)
    return create_engine(url, connect_args={"timeout": timeout_s} if url.get_backend_name() == "sqlite" else {})


def copy_study(source: Path, target: Path, databases: Databases | None) -> None:
    """A copy of a closed study (its folder and, on PostgreSQL, its database), to change leaving the original be."""
    if databases is None:
        shutil.copytree(source, target)
    else:
        databases.copy_study(source, target)


_SKIP_LINE = start_postgres.__code__.co_firstlineno
