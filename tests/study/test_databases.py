"""The study on SQLite and on PostgreSQL: import, an all-or-nothing refusal, and concurrent writers.

Each test runs on both databases (the ``database_url`` fixture); the PostgreSQL cases
need Debian's PostgreSQL (``make setup``) and are skipped with the reason without it.
"""

import datetime as dt
import multiprocessing

import pytest
from sqlalchemy import func, select, text

from study_helpers import EXAMPLE, EXAMPLE_COUNTS, csvs, no_database
from hemiface.study import StudyImportError, init_study, open_study
from hemiface.study.models import AuditEntry, Patient, Surgery

TODAY = dt.date(2024, 6, 1)
#: Processes writing at once in the concurrency test.
WRITERS = 4


@no_database
def test_a_postgresql_url_uses_psycopg_3_and_never_shows_its_password(tmp_path):
    from hemiface.study import StudyError
    from hemiface.study._database import engine_url

    assert engine_url(tmp_path, "postgresql://team:s3cret@db.example/cohort").drivername == "postgresql+psycopg"
    assert engine_url(tmp_path, "postgresql+psycopg://team@/cohort?host=/run/pg").drivername == "postgresql+psycopg"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.toml").write_text(
        '[study]\ndatabase_url = "postgresql://team:s3cret@/cohort?host=/nonexistent-socket-dir"\n')
    with pytest.raises(StudyError, match=r"cannot connect to the study database postgresql\+psycopg://team:\*\*\*@/cohort") as info:
        open_study(tmp_path / "s")
    assert "s3cret" not in str(info.value)


def _counts(study) -> dict:
    counts = study.counts()
    return {t: counts[t] for t in EXAMPLE_COUNTS}


def test_import_reimport_and_refusal(tmp_path, database_url, example):
    with init_study(tmp_path / "s", database_url=database_url) as study:
        assert study.engine.dialect.name == ("sqlite" if database_url is None else "postgresql")
        summary = study.import_files(csvs(EXAMPLE), today=TODAY)
        assert _counts(study) == EXAMPLE_COUNTS and summary.added["injections"] == 3
        again = study.import_files(csvs(EXAMPLE), today=TODAY)
        assert not again.changed and sum(again.unchanged.values()) == sum(EXAMPLE_COUNTS.values())
        # a bad row in one file: nothing of the other files is written either
        (example / "patients.csv").write_text((example / "patients.csv").read_text() + "P009,female,1990,,lft,,\n")
        (example / "visits.csv").write_text((example / "visits.csv").read_text() + "P001,2021-12-01,follow-up\n")
        with pytest.raises(StudyImportError, match="unknown side 'lft'"):
            study.import_files(csvs(example), today=TODAY)
        assert _counts(study) == EXAMPLE_COUNTS
        with study.session() as session:
            assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
            p1 = session.scalars(select(Surgery).join(Patient).where(Patient.pseudonym == "P001")).one()
            assert p1.fat_injected_ml == 24.5 and sorted(i.volume_ml for i in p1.injections) == [4.0, 8.5, 12.0]
    with open_study(tmp_path / "s") as study:  # the study reopens on the same database
        assert _counts(study) == EXAMPLE_COUNTS


def _write_concurrently(folder, sheets, barrier, results, k):
    """One writer process: open the study, wait for the others, import; report what it did."""
    try:
        with open_study(folder) as study:
            barrier.wait(timeout=60)
            summary = study.import_files(sheets, user=f"writer{k}", today=TODAY)
        results.put((k, "ok", sum(summary.added.values())))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((k, "error", f"{exc.__class__.__name__}: {exc}"))


def test_concurrent_writers_lose_nothing_and_corrupt_nothing(tmp_path, database_url):
    """Writers import at the same moment: two the same example spreadsheets, two their own extra patients.

    Without the write lock two imports of the same rows both decide they are new and one fails on the
    unique constraints (SQLite: or 'database is locked'); with it they take turns, the second finds
    every row already there, and every extra patient of the others is kept.
    """
    init_study(tmp_path / "s", database_url=database_url).close()
    sheet_sets = []
    for k in range(WRITERS):
        if k < 2:
            sheet_sets.append(csvs(EXAMPLE))
            continue
        own = tmp_path / f"writer{k}"
        own.mkdir()
        (own / "patients.csv").write_text("patient_id,sex,birth_year,affected_side\n" + "".join(
            f"W{k}{i:02d},female,1990,left\n" for i in range(20)))
        sheet_sets.append([own / "patients.csv"])
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_write_concurrently, args=(tmp_path / "s", sheets, barrier, results, k))
             for k, sheets in enumerate(sheet_sets)]
    for p in procs:
        p.start()
    outcome = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(status == "ok" for _k, status, _n in outcome), outcome
    added = [n for _k, _s, n in outcome]
    assert sorted(added[:2]) == [0, sum(EXAMPLE_COUNTS.values())]  # one imported the example, the other found it
    assert added[2:] == [20] * (WRITERS - 2)
    with open_study(tmp_path / "s") as study:
        counts = _counts(study)
        assert counts == dict(EXAMPLE_COUNTS, patients=EXAMPLE_COUNTS["patients"] + 20 * (WRITERS - 2))
        with study.session() as session:
            users = sorted(session.scalars(select(AuditEntry.user)))
        assert len(users) == WRITERS - 1  # the import that added nothing wrote nothing
        if study.engine.dialect.name == "sqlite":
            with study.engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def _increment(folder, barrier, results, k, times):
    """Read a counter and write it back plus one, ``times`` times, each in one write transaction."""
    from hemiface.study.models import StudyMeta

    try:
        with open_study(folder) as study:
            barrier.wait(timeout=60)
            for _ in range(times):
                with study.writing() as session:
                    row = session.get(StudyMeta, "test_counter")
                    row.value = str(int(row.value) + 1)
        results.put((k, "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        results.put((k, f"{exc.__class__.__name__}: {exc}"))


def test_read_modify_write_under_the_write_lock_loses_no_update(tmp_path, database_url):
    """The lost-update pattern itself: 4 processes x 25 increments of one value must give exactly 100."""
    from hemiface.study.models import StudyMeta

    with init_study(tmp_path / "s", database_url=database_url) as study, study.writing() as session:
        session.add(StudyMeta(key="test_counter", value="0"))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_increment, args=(tmp_path / "s", barrier, results, k, 25)) for k in range(WRITERS)]
    for p in procs:
        p.start()
    outcome = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert [status for _k, status in outcome] == ["ok"] * WRITERS, outcome
    with open_study(tmp_path / "s") as study, study.session() as session:
        assert session.get(StudyMeta, "test_counter").value == str(WRITERS * 25)
