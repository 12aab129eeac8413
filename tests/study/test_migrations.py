"""Schema migrations (Alembic): the baseline upgraded with its data, a version-1 study made by an older hemiface,
head equal to the models, older and newer schemas refused in one line, and an idempotent, audited upgrade."""

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

from study_helpers import EXAMPLE, EXAMPLE_COUNTS, csvs, no_database
from databases import study_engine
from hemiface.cli import app
from hemiface.study import StudyError, head_revision, init_study, open_study, upgrade_study
from hemiface.study._migrate import LEGACY_REVISIONS, known_revisions, migrate, schema_version
from hemiface._provenance import sha256_file
from hemiface.study.models import AuditEntry, Base, Media, Surgery, TABLES
from test_integrity import one_line_error

V1_STUDY = Path(__file__).resolve().parents[1] / "data" / "study_v1"
runner = CliRunner()

#: Rows written at the baseline revision by hand (raw SQL, no ORM model of today involved).
D = dt.date
BASELINE_ROWS = {
    "patients": [(1, "B001", "female", 1990, None, "left", 2, 12), (2, "B002", "male", None, 31, "right", None, None)],
    "surgeries": [(1, 1, D(2021, 3, 1), "fat_grafting", True, "first session"), (2, 2, D(2021, 4, 1), "adm", True, None)],
    "visits": [(1, 1, D(2021, 2, 20), "preoperative"), (2, 1, D(2021, 9, 10), "follow-up"),
               (3, 2, D(2021, 3, 30), "preoperative")],
    "media": [(1, 1, "photo", "media/B001_pre.png", "a" * 64), (2, 2, "scan", "/abs/B001_post.ply", "b" * 64)],
    "complications": [(1, 2, "seroma", "minor")],
    "faceq_scores": [(1, 1, "satisfaction_with_face", 41.5)],
    "analysis_results": [(1, "photo_analyze", 1, 1, "c" * 64, "d" * 64, "ok", None, '{"symmetry_ratio_percent": 91.2}',
                          "{}", dt.datetime(2021, 10, 1, 12, 0))],
}
#: The baseline columns of each table, in its order (what the rows above give).
BASELINE_COLUMNS = {
    "patients": "id, pseudonym, sex, birth_year, age_at_surgery_years, affected_side, guerrerosantos_stage, "
                "age_at_onset_years",
    "surgeries": "id, patient_id, date, technique, is_initial, notes",
    "visits": "id, patient_id, date, kind",
    "media": "id, visit_id, kind, path, sha256",
    "complications": "id, visit_id, type, severity",
    "faceq_scores": "id, visit_id, scale, score",
    "analysis_results": "id, analysis, visit_id, media_id, inputs_sha256, parameters_sha256, status, message, "
                        "result_json, provenance_json, created_utc",
}


def _rows(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {t: [tuple(r) for r in conn.execute(text(f"SELECT {cols} FROM {t} ORDER BY id"))]
               for t, cols in BASELINE_COLUMNS.items()}
    engine.dispose()
    return out


def _baseline_study(folder: Path, database_url: str | None) -> str:
    """A study folder whose database was made by the baseline migration (0001) and filled by plain SQL; its URL."""
    folder.mkdir()
    study_id = uuid.uuid4().hex
    url = database_url or f"sqlite:///{folder / 'study.sqlite'}"
    engine = create_engine(url)
    with engine.connect() as conn, conn.begin():
        migrate(conn, to=known_revisions()[0])
        conn.execute(text("INSERT INTO study_meta (key, value) VALUES ('study_id', :s)"), {"s": study_id})
        for table, rows in BASELINE_ROWS.items():
            names = [c.strip() for c in BASELINE_COLUMNS[table].split(",")]
            conn.execute(text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"),
                         [dict(zip(names, row)) for row in rows])
            if conn.dialect.name == "postgresql":  # explicit ids: move the id sequence past them, as pg_restore does
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {len(rows)})"))
    engine.dispose()
    (folder / "study.toml").write_text(f'[study]\nname = "baseline"\nstudy_id = "{study_id}"\n'
                                       f'database_url = "{url}"\n')
    return url


@no_database
def test_the_revisions_are_one_chain_from_the_baseline_to_the_models():
    revisions = known_revisions()
    assert revisions[0] == "0001" and revisions[-1] == head_revision()
    assert list(revisions) == [f"{i:04d}" for i in range(1, len(revisions) + 1)]
    assert set(LEGACY_REVISIONS.values()) <= set(revisions)


def test_head_of_the_migrations_is_the_models(tmp_path, database_url):
    """Migrations from nothing to head give exactly the models' schema: a model change without a migration fails."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(database_url or f"sqlite:///{tmp_path / 'm.sqlite'}")
    with engine.connect() as conn, conn.begin():
        migrate(conn)
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("SELECT value FROM study_meta WHERE key = 'schema_version'")).scalar() == \
            schema_version(head_revision())
    engine.dispose()


def test_baseline_database_upgrades_with_its_data(tmp_path, database_url):
    url = _baseline_study(tmp_path / "s", database_url)
    before = _rows(url)
    with pytest.raises(StudyError, match=r"older schema 0001 .*hemiface study upgrade .*s$"):
        open_study(tmp_path / "s")
    result = upgrade_study(tmp_path / "s", user="tester")
    assert result.changed and (result.from_revision, result.to_revision) == ("0001", head_revision())
    assert result.backup.parent == tmp_path / "s" / "backups"
    if database_url is None:  # the backup is the SQLite database as it was, checked and complete
        assert _rows(f"sqlite:///{result.backup}") == before
    else:  # pg_dump's archive, restored into an empty database, is the database as it was
        assert result.backup.suffix == ".dump"
        assert _rows(_restored(result.backup, database_url)) == before
    assert _rows(url) == before  # every row survives, every value as it was
    with open_study(tmp_path / "s") as study:
        assert set(study.counts()) == set(TABLES)
        with study.session() as session:
            (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "upgrade")).all()
        details = json.loads(entry.details_json)
        assert entry.user == "tester" and details["from_revision"] == "0001" and details["to_revision"] == head_revision()
        assert details["backup"] == (None if result.backup is None else
                                     result.backup.relative_to(tmp_path / "s").as_posix())
        # the upgraded study is usable: an import reads and writes it
        study.import_files(csvs(EXAMPLE), today=dt.date(2024, 6, 1))
        assert study.counts()["patients"] == 2 + EXAMPLE_COUNTS["patients"]
    # idempotent: nothing to do, no second backup, no second audit entry
    again = upgrade_study(tmp_path / "s")
    assert not again.changed and again.backup is None
    assert len(list((tmp_path / "s" / "backups").iterdir())) == 1
    with open_study(tmp_path / "s") as study, study.session() as session:
        assert len(session.scalars(select(AuditEntry).where(AuditEntry.action == "upgrade")).all()) == 1


def _restored(dump, database_url) -> str:
    """A new database on the same server with ``dump`` restored into it (pg_restore); its URL."""
    import subprocess

    from sqlalchemy.engine import make_url

    from hemiface.study._migrate import _pg_tool

    url = make_url(database_url)
    name = f"restored_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    subprocess.run([_pg_tool("pg_restore"), "--no-owner", f"--dbname=host='{url.query['host']}' user='{url.username}' "
                    f"dbname='{name}'", str(dump)], check=True, capture_output=True, timeout=120)
    return url.set(database=name).render_as_string(hide_password=False)


def test_upgrade_without_a_backup_is_recorded(tmp_path, database_url):
    """--no-backup (the administrator has just made one): nothing is written to backups/, the audit says so."""
    from hemiface.cli import app

    _baseline_study(tmp_path / "s", database_url)
    out = CliRunner().invoke(app, ["study", "upgrade", str(tmp_path / "s"), "--no-backup", "--user", "dba"])
    assert out.exit_code == 0, out.output
    assert "backed up" not in out.output and not (tmp_path / "s" / "backups").exists()
    with open_study(tmp_path / "s") as study, study.session() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "upgrade")).all()
    details = json.loads(entry.details_json)
    assert entry.user == "dba" and details["backup"] is None and details["backup_skipped"] is True


@pytest.mark.sqlite_only("the version-1 study kept as test data is an SQLite folder; the same upgrade on "
                         "PostgreSQL: test_baseline_database_upgrades_with_its_data")
def test_a_version_1_study_made_by_an_older_hemiface(tmp_path):
    """tests/data/study_v1 was made by hemiface at cb310de (schema "1", no alembic_version)."""
    folder = tmp_path / "v1"
    shutil.copytree(V1_STUDY, folder)
    assert one_line_error(runner.invoke(app, ["study", "status", str(folder)])).endswith(
        f"upgrade it first: hemiface study upgrade {folder}")
    result = runner.invoke(app, ["study", "upgrade", str(folder)])
    assert result.exit_code == 0 and f"from schema 0001 to {head_revision()}" in result.output
    v1_tables = [t for t in EXAMPLE_COUNTS if t != "surgery_injections"]
    with open_study(folder) as study:
        counts = study.counts()
        assert {t: counts[t] for t in v1_tables} == {t: EXAMPLE_COUNTS[t] for t in v1_tables}
        # the same spreadsheets again (without the media, whose paths were that checkout's): every row is
        # already there with the same values, and the volumes recorded since fill in the surgeries' empty fields
        sheets = [f for f in csvs(EXAMPLE)
                  if f.stem in ("patients", "surgeries", "injections", "visits", "complications", "faceq")]
        summary = study.import_files(sheets, today=dt.date(2024, 6, 1))
        assert summary.completed == {"surgeries": 4} and summary.added["injections"] == 3
        assert summary.unchanged["patients"] == 4 and summary.unchanged["surgeries"] == 1
        with study.session() as session:
            stored = {(Path(m.path).name, m.sha256) for m in session.scalars(select(Media))}
            volumes = {(s.patient.pseudonym, s.technique): (s.fat_injected_ml, s.adm_sheets, s.adm_thickness_mm,
                                                           s.planned_gain_ml) for s in session.scalars(select(Surgery))}
    assert stored == {(p.name, sha256_file(p)) for p in (EXAMPLE / "media").iterdir()}
    assert volumes[("P001", "fat_grafting")] == (24.5, None, None, None)
    assert volumes[("P004", "adm")] == (None, 2, 1.5, 6.3)
    assert "nothing to do" in runner.invoke(app, ["study", "upgrade", str(folder)]).output


def test_new_studies_are_created_at_head(tmp_path):
    with init_study(tmp_path / "s") as study, study.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert conn.execute(text("SELECT value FROM study_meta WHERE key = 'schema_version'")).scalar() == \
            schema_version(head_revision())
    assert "nothing to do" in str(upgrade_study(tmp_path / "s"))


def test_newer_schemas_are_refused(tmp_path):
    init_study(tmp_path / "s").close()
    db = study_engine(tmp_path / "s")
    with db.begin() as con:
        con.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    line = one_line_error(runner.invoke(app, ["study", "status", str(tmp_path / "s")]))
    assert "schema 9001, newer than this hemiface knows" in line
    assert "newer than this hemiface" in one_line_error(runner.invoke(app, ["study", "upgrade", str(tmp_path / "s")]))
    # a database of a later hemiface without Alembic's table, by its schema_version alone
    with db.begin() as con:
        con.execute(text("DROP TABLE alembic_version"))
        con.execute(text("UPDATE study_meta SET value = '77' WHERE key = 'schema_version'"))
    with pytest.raises(StudyError, match="schema 77, newer"):
        open_study(tmp_path / "s")
    with db.begin() as con:
        con.execute(text("UPDATE study_meta SET value = 'x' WHERE key = 'schema_version'"))
    db.dispose()
    with pytest.raises(StudyError, match="unknown schema version 'x'"):
        open_study(tmp_path / "s")
    assert not (tmp_path / "s" / "backups").exists()  # refused before anything was copied or changed
