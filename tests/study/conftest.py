import shutil
from pathlib import Path

import pytest

from databases import AnalysisReplay, Databases, fold_skip, start_postgres
from study_helpers import BACKENDS, EXAMPLE

@pytest.fixture
def example(tmp_path) -> Path:
    """A private copy of the example spreadsheets (media linked, not copied) that a test may edit."""
    folder = tmp_path / "sheets"
    folder.mkdir()
    for csv in EXAMPLE.glob("*.csv"):
        shutil.copy(csv, folder / csv.name)
    (folder / "media").symlink_to(EXAMPLE / "media", target_is_directory=True)
    return folder


@pytest.fixture
def study(tmp_path):
    from hemiface.study import init_study

    with init_study(tmp_path / "study") as s:
        yield s


def pytest_generate_tests(metafunc):
    """Each study test runs once per database (``[sqlite]``, ``[postgresql]``), grouped by module; a test that
    asks for the ``postgres`` server itself is about PostgreSQL and runs once, as ``[postgresql]``."""
    if "backend" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("sqlite_only"):
            backends = BACKENDS[:1]
        elif "postgres" in metafunc.fixturenames:
            backends = BACKENDS[1:]
        else:
            backends = BACKENDS
        metafunc.parametrize("backend", backends, indirect=True, scope="module")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item):
    """The analysis replay follows the running test (its module's fixtures included, set up in its setup)."""
    callspec = getattr(item, "callspec", None)
    _REPLAY.start_test(item.nodeid, callspec.params.get("backend", "sqlite") if callspec else "sqlite")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without PostgreSQL, its cases' skips are summed up in one line (see :func:`databases.fold_skip`)."""
    outcome = yield
    fold_skip(outcome.get_result())


#: Each PostgreSQL case replays the analyses of its SQLite twin (see :class:`databases.AnalysisReplay`).
_REPLAY = AnalysisReplay()


@pytest.fixture(scope="session", autouse=True)
def _analysis_replay():
    with pytest.MonkeyPatch.context() as patch:
        _REPLAY.install(patch)
        yield _REPLAY


@pytest.fixture(scope="module", autouse=True)
def _forget_analyses(_analysis_replay):
    yield
    _analysis_replay.forget()  # a module's tapes serve its own cases only


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session, one per xdist worker (skips when PostgreSQL is not installed)."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def backend(request):
    """The database the module's studies live in: None for SQLite (each study's own file, the default), or
    the :class:`databases.Databases` of the session's PostgreSQL server.

    On PostgreSQL every study created without a ``database_url`` gets a database of its own; a test's
    databases are dropped when it ends, its module fixtures' when the module ends. A module fixture that
    creates a study requests this fixture, so that it is made again on each database. Without PostgreSQL
    these cases are skipped, with the reason.
    """
    if request.param == "sqlite":
        yield None
        return
    databases = Databases(request.getfixturevalue("postgres"))
    with pytest.MonkeyPatch.context() as patch, databases.watching_sqlite():
        databases.route_new_studies(patch)
        yield databases
    databases.drop_after(0)


@pytest.fixture(autouse=True)
def _drop_the_tests_databases(request, backend):
    """Drops a test's PostgreSQL databases after it; fails a PostgreSQL case that used an SQLite study."""
    mark = None if backend is None else len(backend.names)
    yield
    if backend is not None:
        backend.drop_after(mark)
        backend.check_no_sqlite(request.node.nodeid)


@pytest.fixture
def database_url(backend):
    """None (the study's own SQLite file) or a new, empty PostgreSQL database (dropped after the test)."""
    return None if backend is None else backend.new_url()
