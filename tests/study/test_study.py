"""Creating and opening a study: folder, settings file and database."""

import datetime as dt

import pytest
from study_helpers import no_database
from databases import database_state, study_engine
from sqlalchemy import inspect, text

from hemiface import HemifaceError
from hemiface.study import (
    SETTINGS_NAME,
    StudyError,
    StudyExistsError,
    StudySettings,
    init_study,
    open_study,
    read_settings,
)
from hemiface.study.models import TABLES


def made_url(backend) -> str:
    """The database_url init_study wrote: the SQLite default, or the test's newest PostgreSQL database."""
    return StudySettings.database_url if backend is None else backend.server.url(backend.names[-1])


def test_init_creates_settings_and_every_table(tmp_path, backend):
    folder = tmp_path / "new" / "study"
    with init_study(folder, name="PRS cohort", inclusion_from=dt.date(2020, 1, 1), inclusion_to=dt.date(2023, 12, 31),
                    baseline_window_days=60, followup_months=12, techniques=("fat_grafting", "free_flap")) as study:
        assert (folder / SETTINGS_NAME).is_file() and (folder / "study.sqlite").is_file() == (backend is None)
        assert set(inspect(study.engine).get_table_names()) == set(TABLES) | {"alembic_version"}
        counts = study.counts()
        assert counts.pop("study_meta") == 2 and not any(counts.values())
    settings = read_settings(folder / SETTINGS_NAME)
    assert settings == StudySettings(
        name="PRS cohort", inclusion_from=dt.date(2020, 1, 1), inclusion_to=dt.date(2023, 12, 31),
        baseline_window_days=60, followup_months=12, techniques=("fat_grafting", "free_flap"),
        database_url=made_url(backend),
    )


def test_default_settings_round_trip(tmp_path, backend):
    init_study(tmp_path / "s").close()
    with open_study(tmp_path / "s") as study:
        assert study.settings == StudySettings(database_url=made_url(backend))
        assert study.settings.baseline_window_days == 90 and study.settings.followup_months == 6
        assert study.settings.inclusion_from is None and study.settings.inclusion_to is None


def test_open_from_another_working_directory(tmp_path, monkeypatch):
    init_study(tmp_path / "s").close()
    monkeypatch.chdir(tmp_path)
    with open_study("s") as study:
        assert study.path == tmp_path / "s"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with open_study(tmp_path / "s") as study:  # the SQLite path is relative to the study folder, not the cwd
        assert study.counts()["study_meta"] == 2
    assert not (elsewhere / "study.sqlite").exists()


def test_init_refuses_existing_study_and_non_empty_folder(tmp_path):
    init_study(tmp_path / "s").close()
    before = database_state(tmp_path / "s")
    with pytest.raises(StudyExistsError, match="already holds a study"):
        init_study(tmp_path / "s")
    assert database_state(tmp_path / "s") == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(StudyExistsError, match="not empty"):
        init_study(tmp_path / "other")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StudyExistsError, match="not a folder"):
        init_study(tmp_path / "afile")
    assert issubclass(StudyExistsError, HemifaceError) and issubclass(StudyExistsError, FileExistsError)


@pytest.mark.sqlite_only("SQLite's own file")
def test_init_refuses_an_existing_database_file(tmp_path):
    db = tmp_path / "shared.sqlite"
    db.write_bytes(b"not mine")
    with pytest.raises(StudyExistsError, match="database file already exists"):
        init_study(tmp_path / "s", database_url=f"sqlite:///{db}")
    assert db.read_bytes() == b"not mine"


def test_init_into_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    init_study(tmp_path / "empty").close()
    assert (tmp_path / "empty" / SETTINGS_NAME).is_file()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(inclusion_from=dt.date(2024, 1, 1), inclusion_to=dt.date(2020, 1, 1)), "starts .* after it ends"),
        (dict(techniques=("Fat Grafting",)), "snake_case"),
        (dict(techniques=()), "at least one"),
        (dict(baseline_window_days=-1), "baseline_window_days"),
        (dict(followup_months=1.5), "followup_months"),
        (dict(inclusion_from="2020-01-01"), "must be a date"),
    ],
)
def test_settings_refuse_bad_values(tmp_path, kwargs, match):
    with pytest.raises(StudyError, match=match):
        init_study(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_open_refuses_missing_or_malformed_studies(tmp_path, backend):
    with pytest.raises(StudyError, match="no such study folder"):
        open_study(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StudyError, match="no study settings"):
        open_study(tmp_path / "plain")
    init_study(tmp_path / "s").close()
    toml = tmp_path / "s" / SETTINGS_NAME
    text = toml.read_text()
    toml.write_text(text.replace("followup_months = 6", "follow_up_months = 6"))
    with pytest.raises(StudyError, match="unknown key.*follow_up_months"):
        open_study(tmp_path / "s")
    toml.write_text(text)
    if backend is None:
        (tmp_path / "s" / "study.sqlite").unlink()
        missing = "database is missing"
    else:
        backend.server.drop_database(backend.names[-1])
        missing = r"cannot connect to the study database postgresql\+psycopg://postgres@/hemiface_\w+\?host=.*: " \
                  r".*does not exist"
    with pytest.raises(StudyError, match=missing):
        open_study(tmp_path / "s")


def test_settings_edited_by_hand_are_read(tmp_path):
    init_study(tmp_path / "s").close()
    toml = tmp_path / "s" / SETTINGS_NAME
    toml.write_text(toml.read_text().replace("# initial_surgery_from = YYYY-MM-DD", "initial_surgery_from = 2020-01-01 #")
                    .replace("baseline_window_days = 90", "baseline_window_days = 30"))
    with open_study(tmp_path / "s") as study:
        assert study.settings.inclusion_from == dt.date(2020, 1, 1)
        assert study.settings.baseline_window_days == 30


def test_open_refuses_a_foreign_database(tmp_path, backend):
    import sqlite3

    init_study(tmp_path / "s").close()
    if backend is None:  # another database file where the study's was
        db = tmp_path / "s" / "study.sqlite"
        db.unlink()
        sqlite3.connect(db).execute("create table something (x)").connection.close()
    else:  # the study's database emptied and given another table
        engine = study_engine(tmp_path / "s")
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            conn.execute(text("CREATE TABLE something (x integer)"))
        engine.dispose()
    with pytest.raises(StudyError, match="not a hemiface study database"):
        open_study(tmp_path / "s")


@pytest.mark.sqlite_only("where SQLite's file goes")
def test_a_database_url_of_ones_choice(tmp_path):
    from study_helpers import EXAMPLE, csvs

    db = tmp_path / "databases" / "cohort.db"
    init_study(tmp_path / "s", database_url=f"sqlite:///{db}").close()
    assert db.is_file() and not (tmp_path / "s" / "study.sqlite").exists()
    with open_study(tmp_path / "s") as study:
        assert study.settings.database_url == f"sqlite:///{db}"
        study.import_files(csvs(EXAMPLE))
        assert study.counts()["patients"] == 6
    init_study(tmp_path / "t", database_url="sqlite:///data/cohort.sqlite").close()
    assert (tmp_path / "t" / "data" / "cohort.sqlite").is_file()


@no_database
def test_in_memory_and_malformed_urls_are_refused(tmp_path):
    with pytest.raises(StudyError, match="in-memory"):
        init_study(tmp_path / "s", database_url="sqlite://")
    with pytest.raises(StudyError, match="SQLAlchemy URL"):
        init_study(tmp_path / "s", database_url="not a url")
