import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "study_minimal"

#: Rows the example study holds, counted by hand from its spreadsheets
#: (per-table CSVs: 4 patients ... ; REDCap export: 2 patients, 2 surgeries, 4 visits, 4 photos, 1 complication, 6 FACE-Q;
#: injections.csv: P001's fat split over 3 zones).
EXAMPLE_COUNTS = {"patients": 6, "surgeries": 7, "surgery_injections": 3, "visits": 13, "media": 13, "complications": 3,
                  "faceq_scores": 13}


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


def csvs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (skips when PostgreSQL is not installed)."""
    from databases import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=("sqlite", "postgresql"))
def database_url(request):
    """Runs a test on each database: None (the study's own SQLite file) and an empty PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres")
    name, url = server.new_database()
    yield url
    server.drop_database(name)
