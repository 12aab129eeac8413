"""Importing spreadsheets: the example as it is, every kind of problem with its row, all or nothing, idempotent."""

import datetime as dt
import hashlib
import json
import logging

import pytest
from study_helpers import EXAMPLE, EXAMPLE_COUNTS, csvs, no_database
from databases import database_state
from sqlalchemy import select

from hemiface.study import StudyError, StudyImportError, import_files
from hemiface.study.models import AuditEntry, Complication, FaceQScore, Media, Patient, Surgery, Visit


def data_counts(study):
    counts = study.counts()
    return {k: counts[k] for k in EXAMPLE_COUNTS}


def db_bytes(study):
    return database_state(study.path)


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def add_row(path, row):
    path.write_text(path.read_text().rstrip("\n") + "\n" + row + "\n")


def test_example_study_imports_as_it_is(study):
    summary = study.import_files(csvs(EXAMPLE))
    assert data_counts(study) == EXAMPLE_COUNTS
    assert {k: v for k, v in summary.added.items()} == {
        "patients": 6, "surgeries": 7, "injections": 3, "visits": 13, "media": 13, "complications": 3, "faceq": 13}
    assert sum(summary.unchanged.values()) == 0
    with study.session() as s:
        p3 = s.scalars(select(Patient).where(Patient.pseudonym == "P003")).one()
        assert (p3.birth_year, p3.age_at_surgery_years, p3.affected_side, p3.guerrerosantos_stage) == (None, 17, "left", 1)
        p2 = s.scalars(select(Patient).where(Patient.pseudonym == "P002")).one()
        assert [(x.date, x.technique, x.is_initial) for x in sorted(p2.surgeries, key=lambda x: x.date)] == [
            (dt.date(2020, 6, 3), "free_flap", True), (dt.date(2021, 3, 1), "fat_grafting", False)]
        # REDCap: events give the visit kinds, faceq_<scale> columns give scales, file fields give media
        r2 = s.scalars(select(Patient).where(Patient.pseudonym == "R002")).one()
        assert (r2.sex, r2.age_at_surgery_years, r2.affected_side, r2.guerrerosantos_stage) == ("male", 24, "left", 3)
        assert [(v.date, v.kind) for v in sorted(r2.visits, key=lambda v: v.date)] == [
            (dt.date(2022, 2, 7), "preoperative"), (dt.date(2022, 8, 29), "follow-up")]
        fu = [v for v in r2.visits if v.kind == "follow-up"][0]
        assert [(c.type, c.severity) for c in fu.complications] == [("venous_congestion", "major")]
        assert [(q.scale, q.score) for q in fu.faceq_scores] == [("satisfaction_with_facial_appearance", 61.0)]
        r1 = s.scalars(select(Patient).where(Patient.pseudonym == "R001")).one()
        assert sorted((q.scale, q.score) for v in r1.visits for q in v.faceq_scores) == [
            ("psychological_function", 55.0), ("psychological_function", 70.0),
            ("satisfaction_with_facial_appearance", 38.0), ("satisfaction_with_facial_appearance", 66.0)]
        # media: path recorded and SHA-256 of the file's bytes
        for m in s.scalars(select(Media)):
            assert m.sha256 == hashlib.sha256(open(m.path, "rb").read()).hexdigest()
        kinds = sorted(m.kind for m in s.scalars(select(Media)))
        assert kinds.count("scan") == 1 and kinds.count("photo") == 12


def test_reimport_changes_nothing(study):
    study.import_files(csvs(EXAMPLE))
    before = db_bytes(study)
    summary = study.import_files(csvs(EXAMPLE))
    assert not summary.changed and not any(summary.added.values())
    assert sum(summary.unchanged.values()) == sum(EXAMPLE_COUNTS.values())
    assert db_bytes(study) == before
    assert study.counts()["audit"] == 1  # only the first import changed anything


def test_import_in_parts_then_all_again(study, example):
    study.import_files([example / "patients.csv", example / "visits.csv"])
    assert data_counts(study)["patients"] == 4 and data_counts(study)["visits"] == 9
    summary = study.import_files(csvs(example))
    assert summary.unchanged == {"patients": 4, "surgeries": 0, "injections": 0, "visits": 9, "media": 0,
                                 "complications": 0, "faceq": 0}
    assert data_counts(study) == EXAMPLE_COUNTS
    assert study.counts()["audit"] == 2


def test_audit_records_who_when_what_without_identifiers(study):
    study.import_files(csvs(EXAMPLE), user="research.nurse")
    with study.session() as s:
        (entry,) = s.scalars(select(AuditEntry)).all()
    assert entry.user == "research.nurse" and entry.action == "import"
    assert abs((dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - entry.at_utc).total_seconds()) < 60
    details = json.loads(entry.details_json)
    assert details["added"]["patients"] == 6
    assert sorted(f["file"] for f in details["files"]) == sorted(p.name for p in csvs(EXAMPLE))
    assert "P001" not in entry.details_json and str(EXAMPLE) not in entry.details_json


# One kind of problem per case: (file, edit to make, expected file, row, column, words in the message).
BAD = [
    ("patients.csv", ("P001,female,1994,,left", "P001,female,1994,,lft"), "patients.csv", 2, "affected_side", "unknown side 'lft'"),
    ("patients.csv", ("P002,male,1988", "P002,male,1798"), "patients.csv", 3, "birth_year", "outside the plausible range"),
    ("patients.csv", ("P003,female,", "P003,Woman,"), "patients.csv", 4, "sex", "unknown sex 'Woman'"),
    ("patients.csv", ("P004,male,2001,,left,2,", "P004,male,2001,,left,5,"), "patients.csv", 5, "guerrerosantos_stage", "unknown Guerrerosantos stage"),
    ("patients.csv", ("P003,female,,17", "P001,female,,17"), "patients.csv", 4, "patient_id", "duplicate patient_id P001: already given in patients.csv row 2"),
    ("patients.csv", ("P003,female,,17", "P003,female,,"), "patients.csv", 4, "birth_year", "birth year or the age at surgery"),
    ("patients.csv", ("P003,", "Anna Meier,"), "patients.csv", 4, "patient_id", "pseudonymous id"),
    ("visits.csv", ("P001,2021-08-20", "P001,20/08/2021"), "visits.csv", 3, "visit_date", "unparsable date '20/08/2021'"),
    ("visits.csv", ("P001,2021-08-20", "P001,2021-02-30"), "visits.csv", 3, "visit_date", "unparsable date"),
    ("visits.csv", ("P001,2021-08-20", "P001,2999-08-20"), "visits.csv", 3, "visit_date", "in the future"),
    ("visits.csv", ("P002,2020-05-20", "P002,1987-05-20"), "visits.csv", 4, "visit_date", "before the patient's birth year 1988"),
    ("visits.csv", ("P003,2022-04-01,preoperative", "P003,2022-04-01,postop"), "visits.csv", 6, "visit_kind", "unknown visit kind"),
    ("visits.csv", ("P004,2023-07-10", "P004,2023-09-01"), "visits.csv", 10, "visit_date", "duplicate visit of P004"),
    ("visits.csv", ("P004,2023-07-10", "P104,2023-07-10"), "visits.csv", 9, "patient_id", "unknown patient P104"),
    ("surgeries.csv", ("P004,2023-01-16,adm", "P004,2023-01-16,liposuction"), "surgeries.csv", 6, "technique", "unknown technique 'liposuction'"),
    ("surgeries.csv", ("P002,2021-03-01,fat_grafting,no", "P002,2021-03-01,fat_grafting,yes"), "surgeries.csv", 4, "is_initial", "already has an initial surgery"),
    ("surgeries.csv", ("P002,2021-03-01,fat_grafting,no", "P002,2021-03-01,fat_grafting,maybe"), "surgeries.csv", 4, "is_initial", "not yes or no"),
    ("surgeries.csv", ("P001,2021-02-15", "P001,1990-02-15"), "surgeries.csv", 2, "surgery_date", "before the patient's birth year"),
    ("media.csv", ("media/P001_2021-08-20_front.png", "media/P001_2021-08-20_frontal.png"), "media.csv", 3, "file", "missing file 'media/P001_2021-08-20_frontal.png'"),
    ("media.csv", ("P001,2021-08-20,photo", "P001,2021-08-21,photo"), "media.csv", 3, "visit_date", "no visit on 2021-08-21"),
    ("media.csv", ("P001,2021-08-20,photo", "P001,2021-08-20,video"), "media.csv", 3, "media_kind", "unknown media kind 'video'"),
    ("complications.csv", ("seroma,minor", "seroma,catastrophic"), "complications.csv", 2, "severity", "unknown severity"),
    ("complications.csv", ("seroma,minor", "Seroma!,minor"), "complications.csv", 2, "complication_type", "snake_case"),
    ("faceq.csv", ("satisfaction_with_facial_appearance,68", "satisfaction_with_facial_appearance,680"), "faceq.csv", 3, "score", "not a number from 0 to 100"),
    ("faceq.csv", ("psychological_function,71", "satisfaction_with_facial_appearance,71"), "faceq.csv", 6, None, "duplicate FACE-Q"),
    ("faceq.csv", ("score", "score,comment"), "faceq.csv", 1, "comment", "unknown column for the faceq table"),
    ("redcap_export.csv", ("R001,enrolment_arm_1,female,1990,,right", "R001,enrolment_arm_1,female,1990,,both"), "redcap_export.csv", 2, "affected_side", "unknown side 'both'"),
    ("redcap_export.csv", ("R002,followup_6m_arm_1", "R002,month_6_arm_1"), "redcap_export.csv", 9, "redcap_event_name", "cannot tell the visit kind"),
    ("redcap_export.csv", ("media/R001_2021-05-03_front.png", "media/missing.png"), "redcap_export.csv", 4, "photo_file", "missing file"),
    ("redcap_export.csv", ("R002,surgery_arm_1,,,,,,,,2022-02-21", "R002,surgery_arm_1,,,,,,,,2022-21-02"), "redcap_export.csv", 7, "surgery_date", "unparsable date"),
    ("redcap_export.csv", ("R002,preop_arm_1,,,,,,,,,,,,,2022-02-07,", "R002,preop_arm_1,,,,,,,,,,,,,,"), "redcap_export.csv", 8, "visit_date", "without a visit_date on the same row"),
    # what a surgery put in: injected fat (total, zones) and the ADM
    ("surgeries.csv", (",24.5,,,", ',"24,5",,,'), "surgeries.csv", 2, "fat_injected_ml", "write decimals with a point"),
    ("surgeries.csv", (",24.5,,,", ",2450,,,"), "surgeries.csv", 2, "fat_injected_ml", "outside the plausible range"),
    ("surgeries.csv", ("adm,yes,,,2,1.5,6.3", "adm,yes,,,2,,6.3"), "surgeries.csv", 6, "adm_thickness_mm", "adm_sheets is given without adm_thickness_mm"),
    ("injections.csv", ("malar,12", "malar,13"), "injections.csv", 2, "volume_ml", "add up to 25.5 ml (buccal 8.5, malar 13, temporal 4) but its fat_injected_ml is 24.5 ml"),
    ("injections.csv", ("2021-02-15,fat_grafting,temporal", "2021-02-16,fat_grafting,temporal"), "injections.csv", 4, "surgery_date", "has no fat_grafting surgery on 2021-02-16"),
    ("surgeries.csv", (",24.5,,,", ",,,,"), "injections.csv", 2, "volume_ml", "records no fat_injected_ml"),
]


@pytest.mark.parametrize("sheet,change,file,row,column,words", BAD, ids=[f"{b[0]}:{b[5][:30]}" for b in BAD])
def test_each_problem_reported_with_file_row_column_and_nothing_imported(study, example, sheet, change, file, row, column, words):
    edit(example / sheet, *change)
    before = db_bytes(study)
    with pytest.raises(StudyImportError) as info:
        study.import_files(csvs(example))
    hits = [p for p in info.value.problems if words in p.message]
    assert hits, str(info.value)
    assert (hits[0].file, hits[0].row, hits[0].column) == (file, row, column), str(info.value)
    assert f"{file}, row {row}" in str(info.value)
    assert db_bytes(study) == before
    assert not any(data_counts(study).values())


def test_recorded_volumes_are_never_overwritten(study, example):
    study.import_files(csvs(example))
    edit(example / "surgeries.csv", ",24.5,,,", ",25,,,")
    with pytest.raises(StudyImportError, match=r"surgeries.csv, row 2, column fat_injected_ml: the surgery of P001 on "
                       r"2021-02-15 is already in the study with fat_injected_ml=24.5; this row says fat_injected_ml=25.0"):
        study.import_files(csvs(example))
    with study.session() as s:
        p1 = s.scalars(select(Surgery).join(Patient).where(Patient.pseudonym == "P001")).one()
        assert p1.fat_injected_ml == 24.5 and sorted((i.zone, i.volume_ml) for i in p1.injections) == [
            ("buccal", 8.5), ("malar", 12.0), ("temporal", 4.0)]


def test_every_problem_is_reported_at_once(study, example):
    edit(example / "patients.csv", "P001,female,1994,,left", "P001,female,1994,,lft")
    edit(example / "visits.csv", "P001,2021-08-20", "P001,2999-08-20")
    edit(example / "surgeries.csv", "P004,2023-01-16,adm", "P004,2023-01-16,liposuction")
    edit(example / "media.csv", "media/P004_2023-09-01_front.png", "media/gone.png")
    edit(example / "faceq.csv", ",62.5", ",sixty")
    with pytest.raises(StudyImportError) as info:
        study.import_files(csvs(example))
    where = {(p.file, p.row, p.column) for p in info.value.problems}
    assert {("patients.csv", 2, "affected_side"), ("visits.csv", 3, "visit_date"), ("surgeries.csv", 6, "technique"),
            ("media.csv", 10, "file"), ("faceq.csv", 8, "score")} <= where
    assert str(info.value).startswith(f"{len(info.value.problems)} problems found; nothing was imported")


def test_a_bad_import_leaves_an_existing_study_unchanged(study, example):
    study.import_files([example / "patients.csv", example / "visits.csv"])
    counts, before = study.counts(), db_bytes(study)
    add_row(example / "visits.csv", "P001,2021-09-30,follow-up")  # a good new row ...
    add_row(example / "media.csv", "P001,2021-09-30,photo,media/nothing_here.png")  # ... and a bad one
    with pytest.raises(StudyImportError, match=r"media.csv, row 11, column file: missing file"):
        study.import_files(csvs(example))
    assert study.counts() == counts and db_bytes(study) == before


def test_changed_values_conflict_with_the_study_instead_of_overwriting(study, example):
    study.import_files(csvs(example))
    before = db_bytes(study)
    edit(example / "patients.csv", "P002,male,1988,,right", "P002,male,1988,,left")
    edit(example / "faceq.csv", ",62.5", ",63.5")
    with pytest.raises(StudyImportError) as info:
        study.import_files(csvs(example))
    messages = {(p.file, p.row, p.column): p.message for p in info.value.problems}
    assert "already in the study with affected_side=right" in messages[("patients.csv", 3, "affected_side")]
    assert "score=62.5" in messages[("faceq.csv", 8, "score")]
    assert db_bytes(study) == before


def test_a_media_file_changed_since_import_is_reported(study, example, tmp_path):
    media = tmp_path / "own_media"
    media.mkdir()
    photo = media / "p.png"
    photo.write_bytes((EXAMPLE / "media" / "P001_2021-01-10_front.png").read_bytes())
    add_row(example / "media.csv", f"P001,2021-08-20,photo,{photo}")
    study.import_files(csvs(example))
    photo.write_bytes(photo.read_bytes() + b"\0")
    with pytest.raises(StudyImportError, match=r"media.csv, row 11, column file: photo .* changed since it was imported"):
        study.import_files(csvs(example))


def test_media_inside_the_study_folder_are_recorded_relative_to_it(study, example):
    (study.path / "media").mkdir()
    target = study.path / "media" / "p.png"
    target.write_bytes((EXAMPLE / "media" / "P001_2021-01-10_front.png").read_bytes())
    add_row(example / "media.csv", f"P001,2021-08-20,photo,{target}")
    study.import_files(csvs(example))
    with study.session() as s:
        assert s.scalars(select(Media.path).where(Media.path == "media/p.png")).one() == "media/p.png"


def test_file_level_problems(study, tmp_path):
    semi = tmp_path / "visits.csv"
    semi.write_text("patient_id;visit_date;visit_kind\nP001;2021-01-01;preoperative\n")
    unknown = tmp_path / "notes.csv"
    unknown.write_text("who,what\nx,y\n")
    partial = tmp_path / "surgeries.csv"
    partial.write_text("patient_id,surgery_date\nP001,2021-01-01\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("patient_id,sex,affected_side\nP\xe9,female,left\n".encode("latin-1"))
    with pytest.raises(StudyImportError) as info:
        study.import_files([semi, unknown, partial, latin, tmp_path / "absent.csv"])
    text = str(info.value)
    assert "visits.csv, row 1: columns are separated by ';'" in text
    assert "notes.csv, row 1: cannot tell which table this is" in text
    assert "surgeries.csv, row 1: the surgeries table needs the column(s) technique, is_initial" in text
    assert "latin.csv: not UTF-8" in text
    assert "absent.csv: no such file" in text


def test_rows_with_too_many_cells_and_blank_rows(study, example):
    add_row(example / "patients.csv", "\nP005,female,1999,,left,II,12,extra")  # a blank row, then a long one
    with pytest.raises(StudyImportError, match="patients.csv, row 7: 8 cells but only 7 named columns"):
        study.import_files(csvs(example))


def test_no_files_is_an_error(study):
    with pytest.raises(StudyError, match="no files"):
        import_files(study, [])


def test_dates_are_judged_against_today(study, example):
    with pytest.raises(StudyImportError, match="in the future"):
        study.import_files(csvs(example), today=dt.date(2022, 1, 1))
    study.import_files(csvs(example), today=dt.date(2024, 1, 1))


def test_excel_byte_order_mark_is_accepted(study, example):
    path = example / "patients.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    study.import_files(csvs(example))
    assert data_counts(study) == EXAMPLE_COUNTS


def test_logs_carry_no_identifiers(study, example, caplog):
    edit(example / "patients.csv", "P001,female,1994,,left", "P001,female,1994,,lft")
    with caplog.at_level(logging.DEBUG, logger="hemiface"):
        with pytest.raises(StudyImportError):
            study.import_files(csvs(example))
        study.import_files(csvs(EXAMPLE))
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("hemiface"))
    assert logged and "P00" not in logged and "R00" not in logged and "1994" not in logged


def test_orm_relationships_reach_every_table(study):
    study.import_files(csvs(EXAMPLE))
    with study.session() as s:
        assert s.query(Surgery).count() == 7 and s.query(Visit).count() == 13
        assert s.query(Complication).count() == 3 and s.query(FaceQScore).count() == 13
        m = s.scalars(select(Media).where(Media.kind == "scan")).one()
        assert (m.visit.patient.pseudonym, m.visit.date, m.visit.kind) == ("P002", dt.date(2020, 5, 20), "preoperative")


def test_a_cell_with_line_breaks_is_one_spreadsheet_row(study, example):
    edit(example / "surgeries.csv", "P002,2020-06-03,free_flap,yes,parascapular flap",
         'P002,2020-06-03,free_flap,yes,"parascapular flap\nrevised donor site"')
    edit(example / "surgeries.csv", "P004,2023-01-16,adm", "P004,2023-01-16,liposuction")
    with pytest.raises(StudyImportError, match="surgeries.csv, row 6, column technique"):
        study.import_files(csvs(example))
    edit(example / "surgeries.csv", "P004,2023-01-16,liposuction", "P004,2023-01-16,adm")
    study.import_files(csvs(example))
    with study.session() as s:
        notes = s.scalars(select(Surgery.notes).where(Surgery.technique == "free_flap", Surgery.date == dt.date(2020, 6, 3))).one()
    assert notes == "parascapular flap\nrevised donor site"


def test_a_file_without_an_optional_column_does_not_conflict(study, example):
    study.import_files(csvs(example))
    lean = example.parent / "lean"
    lean.mkdir()
    (lean / "patients.csv").write_text("patient_id,sex,birth_year,affected_side\nP001,female,1994,left\n")
    (lean / "surgeries.csv").write_text("patient_id,surgery_date,technique,is_initial\nP002,2020-06-03,free_flap,yes\n")
    summary = study.import_files(csvs(lean))
    assert not summary.changed and summary.unchanged["patients"] == 1 and summary.unchanged["surgeries"] == 1
    (lean / "patients.csv").write_text("patient_id,sex,birth_year,affected_side,guerrerosantos_stage\nP001,female,1994,left,\n")
    with pytest.raises(StudyImportError, match="guerrerosantos_stage=2; this row says guerrerosantos_stage=None"):
        study.import_files([lean / "patients.csv"])


def test_only_one_initial_surgery_even_on_the_same_day(study, example):
    add_row(example / "surgeries.csv", "P004,2023-01-16,fat_grafting,yes,")
    with pytest.raises(StudyImportError, match=r"surgeries.csv, row 7, column is_initial: patient P004 already has "
                       r"an initial surgery \(2023-01-16 adm, in surgeries.csv row 6\)"):
        study.import_files(csvs(example))


def test_a_second_initial_surgery_conflicts_with_the_study(study, example):
    study.import_files(csvs(example))
    extra = example.parent / "extra.csv"
    extra.write_text("patient_id,surgery_date,technique,is_initial\nP001,2022-01-10,free_flap,yes\n")
    with pytest.raises(StudyImportError, match=r"extra.csv, row 2, column is_initial: .*\(2021-02-15 fat_grafting, in the study\)"):
        study.import_files([extra])


@no_database
def test_error_types():
    from hemiface import HemifaceError
    from hemiface.study import Problem

    assert issubclass(StudyImportError, HemifaceError) and issubclass(StudyImportError, ValueError)
    assert issubclass(StudyError, HemifaceError) and issubclass(StudyError, ValueError)
    err = StudyImportError([Problem("a.csv", 3, "sex", "unknown sex 'x'"), Problem("b.csv", None, None, "empty file")])
    assert str(err).splitlines() == ["2 problems found; nothing was imported",
                                     "  a.csv, row 3, column sex: unknown sex 'x'", "  b.csv: empty file"]
    assert err.problems[0].to_dict() == {"file": "a.csv", "row": 3, "column": "sex", "message": "unknown sex 'x'"}


def _workbook(example, path, edit_cell=None):
    """The example's per-table CSVs as one XLSX workbook (a sheet per table, dates and numbers typed as Excel does)."""
    import csv as _csv

    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for sheet_csv in sorted(example.glob("*.csv")):
        if sheet_csv.name == "redcap_export.csv":
            continue
        ws = book.create_sheet(sheet_csv.stem)
        for r, row in enumerate(_csv.reader(sheet_csv.open(encoding="utf-8"))):
            typed = []
            for c, cell in enumerate(row):
                if r and len(cell) == 10 and cell[4] == "-" and cell[7] == "-":
                    value = dt.datetime.fromisoformat(cell)
                elif r and cell.isdigit():
                    value = float(cell)
                elif r and cell in ("yes", "no"):
                    value = cell == "yes"
                else:
                    value = cell or None
                if edit_cell and (sheet_csv.stem, r, c) == edit_cell[0]:
                    value = edit_cell[1]
                typed.append(value)
            ws.append(typed)
    book.create_sheet("notes")  # an empty sheet is ignored
    book.save(path)
    return path


def test_an_xlsx_workbook_imports_like_the_csv_files(tmp_path, example):
    from hemiface.study import init_study

    book = _workbook(example, example / "study.xlsx")
    with init_study(tmp_path / "a") as a, init_study(tmp_path / "b") as b:
        by_book = a.import_files([book])
        by_csv = b.import_files([f for f in csvs(example) if f.name != "redcap_export.csv"])
        assert by_book.added == by_csv.added and by_book.added["patients"] == 4
        assert not a.import_files([book]).changed
        with a.session() as sa, b.session() as sb:
            assert sorted((v.patient.pseudonym, v.date, v.kind) for v in sa.scalars(select(Visit))) == \
                   sorted((v.patient.pseudonym, v.date, v.kind) for v in sb.scalars(select(Visit)))
            assert sorted(m.sha256 for m in sa.scalars(select(Media))) == sorted(m.sha256 for m in sb.scalars(select(Media)))


def test_an_xlsx_problem_names_the_sheet_row_and_column(tmp_path, example, study):
    book = _workbook(example, example / "study.xlsx", edit_cell=(("visits", 2, 2), "pre-op"))
    with pytest.raises(StudyImportError) as err:
        study.import_files([book])
    assert "study.xlsx[visits], row 3, column visit_kind" in str(err.value)
    assert study.counts()["patients"] == 0
    bad = example / "broken.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(StudyImportError, match=r"broken.xlsx: not a readable XLSX workbook"):
        study.import_files([bad])
