"""Names the study tests share (imported by name: a test module cannot import its conftest reliably, since
every test folder has one and the first imported takes the module name ``conftest``)."""

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "study_minimal"

#: Rows the example study holds, counted by hand from its spreadsheets
#: (per-table CSVs: 4 patients ... ; REDCap export: 2 patients, 2 surgeries, 4 visits, 4 photos, 1 complication, 6 FACE-Q;
#: injections.csv: P001's fat split over 3 zones).
EXAMPLE_COUNTS = {"patients": 6, "surgeries": 7, "surgery_injections": 3, "visits": 13, "media": 13, "complications": 3,
                  "faceq_scores": 13}


def csvs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


#: The databases every study test runs on, unless marked ``sqlite_only`` (with the reason).
BACKENDS = ("sqlite", "postgresql")
#: A test that never reaches a study database (rules, settings files, messages): it runs once.
no_database = pytest.mark.sqlite_only("it never touches a study database")
