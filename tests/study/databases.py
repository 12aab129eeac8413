"""A throwaway PostgreSQL server for the study's database tests, and the fixtures that run a test on both databases.

The server is Debian's (``make setup`` installs the ``postgresql`` package): ``initdb`` into a
temporary folder and ``pg_ctl start`` on a unix socket in it (no TCP port), as the ``postgres``
user when the tests run as root (PostgreSQL refuses to run as root). It is stopped and removed
when the session ends. Without PostgreSQL the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH), newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return Path(versions[0]).parent if versions else None


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
        name = f"hemiface_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name, self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a cluster, or ``pytest.skip`` with the reason it cannot be had here."""
    bin_dir = _pg_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl; `make setup` installs Debian's postgresql): "
                    "the PostgreSQL cases of the study database tests are skipped")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: the PostgreSQL cases are skipped")
    prefix, uid, gid, why = _as_server_user()
    if why:
        pytest.skip(f"cannot start a throwaway PostgreSQL server: {why}")
    folder = Path(tempfile.mkdtemp(prefix="hemiface-pg-"))
    os.chmod(folder, 0o755)
    if uid is not None:
        os.chown(folder, uid, gid)
    started = time.perf_counter()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8", "--locale", "C"], check=True, capture_output=True, timeout=120)
        options = f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-l",
                        str(folder / "server.log"), "-w", "-t", "60", "start"], check=True, capture_output=True,
                       timeout=90)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot start a throwaway PostgreSQL server ({exc.__class__.__name__}: "
                    f"{detail.decode(errors='replace').strip()[:200]})")
    import logging

    logging.getLogger(__name__).info("throwaway PostgreSQL server (%s) started in %.1f s", bin_dir.parent.name,
                                     time.perf_counter() - started)
    return PostgresServer(folder, prefix, bin_dir)
