"""Importing the spreadsheets a research team keeps: validate everything, then import all or nothing.

Two layouts are read (``docs/study_import_format.md`` is the reference):

* one CSV per table (patients, surgeries, visits, media, complications,
  faceq), each recognised by its columns;
* REDCap-style exports (``record_id`` and ``redcap_event_name`` columns),
  whose fields are mapped onto the same tables.

Every row becomes a record of one table, remembering its file, row and source
column, so that each problem can be reported where a person can find it.
"""

from __future__ import annotations

import csv
import io
import datetime as _dt
import getpass
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from .. import logger
from .._provenance import sha256_file
from ._files import media_type_problem, path_problem
from ._errors import Problem, StudyError, StudyImportError
from ._models import (
    MEDIA_KINDS,
    SEVERITIES,
    SEXES,
    SIDES,
    VISIT_KINDS,
    AuditEntry,
    Complication,
    FaceQScore,
    Media,
    Patient,
    Surgery,
    SurgeryInjection,
    Visit,
)
from ._staging import make_staging, remove_abandoned

#: Per-table CSV layout: required and optional columns. A file is the table whose required columns it has.
TABLE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patients": (
        ("patient_id", "sex", "affected_side"),
        ("birth_year", "age_at_surgery_years", "guerrerosantos_stage", "age_at_onset_years"),
    ),
    "surgeries": (("patient_id", "surgery_date", "technique", "is_initial"),
                  ("notes", "fat_injected_ml", "adm_sheets", "adm_thickness_mm", "planned_gain_ml")),
    # the split of a surgery's injected fat over aesthetic zones (they add up to its fat_injected_ml)
    "injections": (("patient_id", "surgery_date", "technique", "zone", "volume_ml"), ()),
    "visits": (("patient_id", "visit_date", "visit_kind"), ()),
    "media": (("patient_id", "visit_date", "media_kind", "file"), ()),
    "complications": (("patient_id", "visit_date", "complication_type", "severity"), ()),
    "faceq": (("patient_id", "visit_date", "faceq_scale", "score"), ()),
}

_OPTIONAL_FIELDS = {c for _req, opt in TABLE_COLUMNS.values() for c in opt}

#: The order in which tables are imported (foreign keys first).
TABLE_ORDER = tuple(TABLE_COLUMNS)

# REDCap export: field name -> (table, field of that table)
REDCAP_PATIENT_FIELDS = ("sex", "birth_year", "age_at_surgery_years", "affected_side", "guerrerosantos_stage",
                         "age_at_onset_years")
REDCAP_SURGERY_FIELDS = {"surgery_date": "surgery_date", "technique": "technique", "is_initial": "is_initial",
                         "surgery_notes": "notes", "fat_injected_ml": "fat_injected_ml", "adm_sheets": "adm_sheets",
                         "adm_thickness_mm": "adm_thickness_mm", "planned_gain_ml": "planned_gain_ml"}
REDCAP_VISIT_FIELDS = ("visit_date", "visit_kind")
REDCAP_MEDIA_FIELDS = {"photo_file": "photo", "scan_file": "scan"}
REDCAP_COMPLICATION_FIELDS = {"complication_type": "complication_type", "complication_severity": "severity"}
REDCAP_FACEQ_PREFIX = "faceq_"
REDCAP_PREOP_EVENTS = ("preop", "pre_op", "baseline")
REDCAP_FOLLOWUP_EVENTS = ("followup", "follow_up", "fu_", "postop", "post_op")

#: Limits of one import (documented in the README): a spreadsheet larger than these is refused before parsing.
MAX_SHEET_BYTES = 50 * 1024**2
#: An XLSX workbook is a zip archive: the sum of its unpacked parts must stay below this.
MAX_XLSX_UNPACKED_BYTES = 200 * 1024**2
#: Data rows per CSV file or worksheet.
MAX_ROWS = 100_000
#: A cell longer than this is refused (a clinical spreadsheet cell is a few words).
MAX_CELL_CHARS = 10_000
#: Plausible ranges of what a facial surgery puts in (a larger number is a typo or the wrong unit).
MAX_FAT_ML = 500.0
MAX_ADM_SHEETS = 50
MAX_ADM_THICKNESS_MM = 10.0
#: A surgery's zone volumes must add up to its fat_injected_ml within this (ml; recorded numbers are rounded).
ZONE_SUM_TOLERANCE_ML = 0.05
#: Surgery fields an import may fill in when the study holds them empty (recorded after the surgery was imported,
#: e.g. in a study upgraded to schema 0003); a value already recorded is never overwritten.
FILLABLE_SURGERY_FIELDS = ("fat_injected_ml", "adm_sheets", "adm_thickness_mm", "planned_gain_ml")
#: Problems listed in an import's error message (all are kept in ``StudyImportError.problems``).
MAX_PROBLEMS_SHOWN = 100

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^\d+$")
_DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_STAGES = {"1": 1, "2": 2, "3": 3, "4": 4, "i": 1, "ii": 2, "iii": 3, "iv": 4}
_BOOLS = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}
_SEX_ALIASES = {"f": "female", "m": "male"}


@dataclass
class _Record:
    """One row of one table, raw cells as text, with where each field came from."""

    table: str
    file: str
    row: int
    base_dir: Path
    values: dict[str, str]
    columns: dict[str, str]  # field -> the spreadsheet column it came from

    def where(self, fld: str | None = None) -> tuple[str, int, str | None]:
        return self.file, self.row, (self.columns.get(fld, fld) if fld else None)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: rows added and rows already present (unchanged), per table."""

    files: tuple[str, ...]
    added: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    #: Rows already in the study whose empty fields the import filled in (see :data:`FILLABLE_SURGERY_FIELDS`).
    completed: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.added.values()) or any(self.completed.values())

    def to_dict(self) -> dict:
        return {"files": list(self.files), "added": dict(self.added), "unchanged": dict(self.unchanged),
                "completed": dict(self.completed)}

    def __str__(self) -> str:
        added = ", ".join(f"{n} {t}" for t, n in self.added.items() if n) or "nothing"
        completed = ", ".join(f"{n} {t}" for t, n in self.completed.items() if n)
        unchanged = sum(self.unchanged.values())
        return (f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}: added {added}; "
                + (f"filled in empty fields of {completed}; " if completed else "")
                + f"{unchanged} row{'s' if unchanged != 1 else ''} already in the study, unchanged")


class _Problems:
    def __init__(self):
        self.items: list[Problem] = []

    def add(self, file, row, column, message) -> None:
        self.items.append(Problem(file, row, column, message))

    def at(self, rec: _Record, fld: str | None, message: str) -> None:
        self.add(*rec.where(fld), message)


# --------------------------------------------------------------------------- reading


def _sheet_file_problem(path: Path) -> str | None:
    """Why a spreadsheet file cannot be read at all (missing, a FIFO, a device, too large), or None."""
    from ._files import path_problem

    what = path_problem(path)
    if what == "is missing":
        return f"no such file: {path}"
    if what is not None:
        return what
    size = path.stat().st_size
    if size > MAX_SHEET_BYTES:
        return (f"is {size / 1024**2:.0f} MB, more than the {MAX_SHEET_BYTES // 1024**2} MB a study spreadsheet "
                "may have; split it")
    return None


def _read_csv(path: Path, problems: _Problems) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.add(name, None, None, f"no such file: {path}")
        return None
    except UnicodeDecodeError:
        problems.add(name, None, None, "not UTF-8 text; save the spreadsheet as 'CSV UTF-8'")
        return None
    except OSError as exc:
        problems.add(name, None, None, f"cannot read: {exc.strerror or exc}")
        return None
    reader = csv.reader(io.StringIO(text, newline=""))  # a quoted cell may hold line breaks
    rows = []
    try:
        for cells in reader:
            rows.append(cells)
            if len(rows) > MAX_ROWS + 1:
                problems.add(name, reader.line_num, None, f"more than {MAX_ROWS:,} rows; split the spreadsheet")
                return None
    except csv.Error as exc:
        why = (f"a cell is longer than {csv.field_size_limit():,} characters" if "field larger" in str(exc)
               else f"not a readable CSV file ({exc})")
        problems.add(name, reader.line_num, None, why)
        return None
    return _parse_rows(name, rows, problems)


def _parse_rows(name: str, rows: list[list[str]], problems: _Problems):
    """Header and non-blank body rows (1-based spreadsheet row numbers) of one table, or None."""
    if not rows or not any(cell.strip() for cell in rows[0]):
        problems.add(name, None, None, "empty file: the first row must name the columns")
        return None
    header = [c.strip() for c in rows[0]]
    if len(header) == 1 and ";" in header[0]:
        problems.add(name, 1, None, "columns are separated by ';'; save the spreadsheet with commas as separators")
        return None
    bad = [c for c in header if not c]
    if bad:
        problems.add(name, 1, None, "a column has no name; name every column or delete the empty ones")
    dupes = [c for c, n in Counter(header).items() if n > 1 and c]
    for c in dupes:
        problems.add(name, 1, c, "the column appears more than once")
    if bad or dupes:
        return None
    body = []
    for i, cells in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue  # blank spreadsheet row
        long = [j for j, c in enumerate(cells) if len(c) > MAX_CELL_CHARS]
        if long:
            col = header[long[0]] if long[0] < len(header) else None
            problems.add(name, i, col, f"the cell holds {len(cells[long[0]]):,} characters, more than the "
                         f"{MAX_CELL_CHARS:,} a study cell may have")
            continue
        nul = [j for j, c in enumerate(cells) if "\x00" in c]
        if nul:
            col = header[nul[0]] if nul[0] < len(header) else None
            problems.add(name, i, col, "the cell contains a NUL character")
            continue
        if len(cells) > len(header) and any(cells[len(header):]):
            problems.add(name, i, None, f"{len(cells)} cells but only {len(header)} named columns")
            continue
        body.append((i, cells + [""] * (len(header) - len(cells))))
    return header, body


def _identify(path: Path, header: list[str], problems: _Problems) -> str | None:
    """Which table a per-table CSV holds: the one whose required columns it has."""
    present = set(header)
    matches = [t for t, (req, _opt) in TABLE_COLUMNS.items() if set(req) <= present]
    if len(matches) == 1:
        table = matches[0]
        allowed = set(TABLE_COLUMNS[table][0]) | set(TABLE_COLUMNS[table][1])
        for c in header:
            if c not in allowed:
                problems.add(path.name, 1, c, f"unknown column for the {table} table; "
                             f"allowed: {', '.join(sorted(allowed))}")
        return table
    if len(matches) > 1:
        problems.add(path.name, 1, None, f"the columns fit several tables ({', '.join(matches)}); "
                     "put each table in its own file")
        return None
    guess = path.stem.lower()
    if guess in TABLE_COLUMNS:
        missing = [c for c in TABLE_COLUMNS[guess][0] if c not in present]
        problems.add(path.name, 1, None, f"the {guess} table needs the column(s) {', '.join(missing)}")
    else:
        layouts = "; ".join(f"{t}: {', '.join(req)}" for t, (req, _o) in TABLE_COLUMNS.items())
        problems.add(path.name, 1, None, "cannot tell which table this is: it lacks the required columns of "
                     f"every table ({layouts}), and it is not a REDCap export (record_id, redcap_event_name)")
    return None


def _records_from_table(path: Path, table: str, header, body) -> list[_Record]:
    return [
        _Record(table, path.name, row, path.parent, dict(zip(header, cells)), {c: c for c in header})
        for row, cells in body
    ]


def _redcap_visit_kind(event: str) -> str | None:
    e = event.lower()
    if e.startswith(REDCAP_PREOP_EVENTS):
        return "preoperative"
    if e.startswith(REDCAP_FOLLOWUP_EVENTS):
        return "follow-up"
    return None


def _records_from_redcap(path: Path, header, body, problems: _Problems) -> list[_Record]:
    known = (set(REDCAP_PATIENT_FIELDS) | set(REDCAP_SURGERY_FIELDS) | set(REDCAP_VISIT_FIELDS)
             | set(REDCAP_MEDIA_FIELDS) | set(REDCAP_COMPLICATION_FIELDS) | {"record_id"})
    faceq_cols = [c for c in header if c.startswith(REDCAP_FACEQ_PREFIX) and len(c) > len(REDCAP_FACEQ_PREFIX)]
    for c in header:
        if c in known or c in faceq_cols or c.startswith("redcap_") or c.endswith("_complete"):
            continue
        problems.add(path.name, 1, c, "unknown REDCap field; see docs/study_import_format.md for the field names")
    out: list[_Record] = []
    for row, cells in body:
        v = dict(zip(header, cells))
        pid, event = v.get("record_id", ""), v.get("redcap_event_name", "")

        def rec(table, fields: dict[str, str]):
            values = {"patient_id": pid, **{f: v.get(c, "") for f, c in fields.items()}}
            columns = {"patient_id": "record_id", **fields}
            return _Record(table, path.name, row, path.parent, values, columns)

        if any(v.get(f) for f in REDCAP_PATIENT_FIELDS):
            out.append(rec("patients", {f: f for f in REDCAP_PATIENT_FIELDS if f in v}))
        if any(v.get(c) for c in REDCAP_SURGERY_FIELDS):
            out.append(rec("surgeries", {f: c for c, f in REDCAP_SURGERY_FIELDS.items() if c in v}))
        visit_data = ([c for c in REDCAP_MEDIA_FIELDS if v.get(c)] + [c for c in REDCAP_COMPLICATION_FIELDS if v.get(c)]
                      + [c for c in faceq_cols if v.get(c)])
        if v.get("visit_date") or v.get("visit_kind"):
            visit = rec("visits", {"visit_date": "visit_date"})
            if v.get("visit_kind"):
                visit.values["visit_kind"], visit.columns["visit_kind"] = v["visit_kind"], "visit_kind"
            else:
                kind = _redcap_visit_kind(event)
                if kind is None:
                    problems.add(path.name, row, "redcap_event_name",
                                 f"cannot tell the visit kind from the event {event!r}: name events preop_... or "
                                 "followup_..., or add a visit_kind field")
                visit.values["visit_kind"], visit.columns["visit_kind"] = kind or "", "redcap_event_name"
            out.append(visit)
        elif visit_data:
            problems.add(path.name, row, "visit_date",
                         f"{', '.join(visit_data)} given without a visit_date on the same row")
            continue
        for c, kind in REDCAP_MEDIA_FIELDS.items():
            if v.get(c):
                r = rec("media", {"visit_date": "visit_date", "file": c})
                r.values["media_kind"], r.columns["media_kind"] = kind, c
                out.append(r)
        if any(v.get(c) for c in REDCAP_COMPLICATION_FIELDS):
            out.append(rec("complications", {"visit_date": "visit_date", **{f: c for c, f in REDCAP_COMPLICATION_FIELDS.items()}}))
        for c in faceq_cols:
            if v.get(c):
                r = rec("faceq", {"visit_date": "visit_date", "score": c})
                r.values["faceq_scale"], r.columns["faceq_scale"] = c[len(REDCAP_FACEQ_PREFIX):], c
                out.append(r)
    return out


@dataclass(frozen=True)
class _Sheet:
    """One worksheet of an XLSX workbook, named like a file in problem reports: ``book.xlsx[patients]``."""

    name: str
    stem: str
    parent: Path


def _xlsx_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _xlsx_unpacked_problem(path: Path) -> str | None:
    """Refuse a workbook whose parts unpack to more than :data:`MAX_XLSX_UNPACKED_BYTES` (a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a zip at all: openpyxl says so below
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        return (f"the workbook unpacks to {unpacked / 1024**2:,.0f} MB, more than the "
                f"{MAX_XLSX_UNPACKED_BYTES // 1024**2} MB limit; save the tables as CSV or split the workbook")
    return None


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _is_formula(value) -> bool:
    if isinstance(value, str):
        return value.startswith("=")
    return type(value).__name__ in ("ArrayFormula", "DataTableFormula")


def _read_xlsx(path: Path, problems: _Problems) -> list[tuple[_Sheet, list[str], list]]:
    """Each non-empty worksheet as (sheet, header, body), the same shape as a CSV file.

    Cells are read as the values Excel last computed; a formula cell without such a
    cached value (as written by a program, never opened in Excel) is refused with
    its sheet, row and column, never read as empty.
    """
    from itertools import zip_longest

    from openpyxl import load_workbook

    why = _xlsx_unpacked_problem(path)
    if why is not None:
        problems.add(path.name, None, None, why)
        return []
    try:
        book = load_workbook(path, read_only=True, data_only=True)
        formulas = load_workbook(path, read_only=True, data_only=False)
    except FileNotFoundError:
        problems.add(path.name, None, None, f"no such file: {path}")
        return []
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for files it cannot read
        problems.add(path.name, None, None, f"not a readable XLSX workbook ({exc.__class__.__name__}); "
                     "save it from Excel as .xlsx, or as 'CSV UTF-8'")
        return []
    out = []
    try:
        for ws, wf in zip(book.worksheets, formulas.worksheets):
            sheet = _Sheet(f"{path.name}[{ws.title}]", ws.title, path.parent)
            rows, uncached, header = [], 0, []
            for i, (row, frow) in enumerate(zip_longest(ws.iter_rows(values_only=True),
                                                        wf.iter_rows(values_only=True), fillvalue=()), start=1):
                if i > MAX_ROWS + 1:
                    problems.add(sheet.name, i, None, f"more than {MAX_ROWS:,} rows; split the sheet")
                    rows = []
                    break
                cells = [_xlsx_cell(v) for v in row]
                for j, (value, formula) in enumerate(zip_longest(row, frow)):
                    if value is None and _is_formula(formula):
                        uncached += 1
                        if uncached <= MAX_PROBLEMS_SHOWN:
                            col = header[j] if j < len(header) and header[j] else _column_letter(j)
                            problems.add(sheet.name, i, col, "a formula without a computed value (the workbook "
                                         "was written by a program and never recalculated); open and save it in "
                                         "Excel, or type the value")
                if i == 1:
                    header = [c.strip() for c in cells]
                rows.append(cells)
            if uncached:
                continue
            while rows and not any(rows[-1]):
                rows.pop()
            if not rows:
                continue  # an empty sheet is not a table
            parsed = _parse_rows(sheet.name, rows, problems)
            if parsed is not None:
                out.append((sheet, *parsed))
    finally:
        book.close()
        formulas.close()
    return out


def read_records(files: Iterable[str | Path], problems: _Problems) -> list[_Record]:
    records: list[_Record] = []
    names = Counter()
    for f in files:
        path = Path(f)
        names[path.name] += 1
        if names[path.name] == 2:
            problems.add(path.name, None, None, "two files of this name were given; file names must be unique "
                         "so that problems can be reported unambiguously")
        why = _sheet_file_problem(path)
        if why is not None:
            problems.add(path.name, None, None, why)
            tables = []
        elif path.suffix.lower() in (".xlsx", ".xlsm"):
            tables = _read_xlsx(path, problems)
        else:
            parsed = _read_csv(path, problems)
            tables = [] if parsed is None else [(path, *parsed)]
        for source, header, body in tables:
            if "record_id" in header and "redcap_event_name" in header:
                records += _records_from_redcap(source, header, body, problems)
            else:
                table = _identify(source, header, problems)
                if table is not None:
                    records += _records_from_table(source, table, header, body)
    return records


# --------------------------------------------------------------------------- parsing cells


def _required(rec, fld, problems) -> str | None:
    value = rec.values.get(fld, "")
    if not value:
        problems.at(rec, fld, "empty; this column is required")
        return None
    return value


def _date(rec, fld, problems, today) -> _dt.date | None:
    raw = _required(rec, fld, problems)
    if raw is None:
        return None
    try:
        if not _DATE_RE.match(raw):
            raise ValueError
        d = _dt.date.fromisoformat(raw)
    except ValueError:
        problems.at(rec, fld, f"unparsable date {raw!r}; write dates as YYYY-MM-DD")
        return None
    if d > today:
        problems.at(rec, fld, f"date {raw} is in the future (today is {today.isoformat()})")
        return None
    return d


def _int(rec, fld, problems, lo, hi, *, required=False) -> int | None:
    raw = rec.values.get(fld, "")
    if not raw:
        if required:
            problems.at(rec, fld, "empty; this column is required")
        return None
    if not _INT_RE.match(raw):
        problems.at(rec, fld, f"{raw!r} is not a whole number")
        return None
    value = int(raw)
    if not lo <= value <= hi:
        problems.at(rec, fld, f"{value} is outside the plausible range {lo} to {hi}")
        return None
    return value


def _decimal(rec, fld, problems, hi, unit, *, required=False) -> float | None:
    """A positive decimal number (a point, not a comma) up to ``hi``, or None when empty."""
    raw = rec.values.get(fld, "")
    if not raw:
        if required:
            problems.at(rec, fld, "empty; this column is required")
        return None
    if not _DECIMAL_RE.match(raw):
        hint = "; write decimals with a point (12.5)" if re.match(r"^\d+,\d+$", raw) else ""
        problems.at(rec, fld, f"{raw!r} is not a positive number of {unit}{hint}")
        return None
    value = float(raw)
    if not 0.0 < value <= hi:
        problems.at(rec, fld, f"{raw} {unit} is outside the plausible range (more than 0, at most {hi:g} {unit})")
        return None
    return value


def _choice(rec, fld, problems, allowed, what, aliases=None) -> str | None:
    raw = _required(rec, fld, problems)
    if raw is None:
        return None
    value = raw.lower()
    value = (aliases or {}).get(value, value)
    if value not in allowed:
        problems.at(rec, fld, f"unknown {what} {raw!r}; use {' or '.join(allowed)}")
        return None
    return value


def _name(rec, fld, problems, what) -> str | None:
    raw = _required(rec, fld, problems)
    if raw is None:
        return None
    if not _NAME_RE.match(raw):
        problems.at(rec, fld, f"{what} {raw!r} must be a lower-case snake_case name like 'volume_loss'")
        return None
    return raw


def _pid(rec, problems) -> str | None:
    raw = _required(rec, "patient_id", problems)
    if raw is None:
        return None
    if not _ID_RE.match(raw):
        problems.at(rec, "patient_id", "a pseudonymous id is 1-32 letters, digits, '_' or '-' (e.g. P007); "
                    "never a name or hospital number")
        return None
    return raw


# --------------------------------------------------------------------------- the import


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _media_path(base_dir: Path, raw: str) -> tuple[Path | None, str | None]:
    """The absolute path a media cell names, and what is wrong with it (see :func:`path_problem`) or None."""
    if "\x00" in raw:
        return None, "contains a NUL byte; a file name cannot"
    try:
        path = (base_dir / raw).resolve()
    except (OSError, RuntimeError) as exc:
        return None, f"cannot be resolved ({getattr(exc, 'strerror', None) or exc})"
    return path, path_problem(path)


def _stored_path(study_dir: Path, file: Path) -> str:
    try:
        return file.relative_to(study_dir).as_posix()
    except ValueError:
        return file.as_posix()


class _Import:
    """One import: what the study holds, what the files add, and every problem found on the way.

    Tables are checked in foreign-key order (patients, surgeries, visits, then what
    hangs off visits), each method adding the rows that are new to ``self.new`` and
    every problem to ``self.problems``. A row is compared with the database only
    when the row itself has no problem, and a patient or visit whose row has a
    problem still counts as known, so that one mistake gives one message, not a
    cascade of "unknown patient".
    """

    def __init__(self, study, session, problems: _Problems, today: _dt.date, staging: Path | None = None):
        self.study, self.session, self.problems, self.today = study, session, problems, today
        self.staging = staging  # a folder for de-identified copies, or None to keep media where they are
        self.staged: dict[str, Path] = {}
        self.patients = {p.pseudonym: p for p in session.scalars(select(Patient))}
        self.visits = {(v.patient.pseudonym, v.date): v for v in session.scalars(select(Visit))}
        self.surgeries = {(s.patient.pseudonym, s.date, s.technique): s for s in session.scalars(select(Surgery))}
        self.media = {(m.visit.patient.pseudonym, m.visit.date, m.kind, m.path): m for m in session.scalars(select(Media))}
        self.complications = {(c.visit.patient.pseudonym, c.visit.date, c.type): c
                              for c in session.scalars(select(Complication))}
        self.faceq = {(q.visit.patient.pseudonym, q.visit.date, q.scale): q for q in session.scalars(select(FaceQScore))}
        self.injections = {(*self._surgery_key(i.surgery), i.zone): i for i in session.scalars(select(SurgeryInjection))}
        self.known_surgeries = set(self.surgeries)
        self.fat_total = {k: s.fat_injected_ml for k, s in self.surgeries.items()}  # as it will be after the import
        self.fill: list[tuple[Surgery, dict]] = []  # empty fields of surgeries in the study, filled in
        self.initial = {s.patient.pseudonym: ("the study", s.date, s.technique)
                        for s in self.surgeries.values() if s.is_initial}
        self.birth_year = {pid: p.birth_year for pid, p in self.patients.items()}
        self.age_at_surgery = {pid: p.age_at_surgery_years for pid, p in self.patients.items()}
        self.known_patients = set(self.patients)
        self.known_visits = set(self.visits)
        self.new: dict[str, list] = defaultdict(list)
        self.unchanged = {t: 0 for t in TABLE_ORDER}
        self._seen: dict[tuple, _Record] = {}

    # helpers ------------------------------------------------------------------

    @staticmethod
    def _surgery_key(s: Surgery) -> tuple[str, _dt.date, str]:
        return s.patient.pseudonym, s.date, s.technique

    def _once(self, key, rec, what, fld=None) -> bool:
        """False (and a problem) when the import already had a row with this key."""
        if key in self._seen:
            first = self._seen[key]
            self.problems.at(rec, fld, f"duplicate {what}: already given in {first.file} row {first.row}")
            return False
        self._seen[key] = rec
        return True

    def _is_new(self, existing, values: dict, rec, what, start: int) -> bool:
        """True for a valid row the study does not hold yet; an identical row is counted unchanged."""
        if len(self.problems.items) > start:
            return False  # compare with the database only rows that are valid
        if existing is None:
            return True
        # an optional column the file does not have says nothing about what the study holds
        values = {k: v for k, v in values.items() if k not in _OPTIONAL_FIELDS or k in rec.columns}
        diff = {k: v for k, v in values.items() if getattr(existing, k) != v}
        fill = {k: v for k, v in diff.items()
                if rec.table == "surgeries" and k in FILLABLE_SURGERY_FIELDS and getattr(existing, k) is None}
        if fill and len(fill) == len(diff):
            self.fill.append((existing, fill))
        elif diff and rec.table == "media":
            self.problems.at(rec, "file", f"{what}: the file changed since it was imported (its SHA-256 "
                             "differs); hemiface never overwrites: give the new file a new name")
        elif diff:
            was = {k: getattr(existing, k) for k in diff}
            self.problems.at(rec, next(iter(diff)) if len(diff) == 1 else None,
                             f"{what} is already in the study with {_describe(was)}; this row says "
                             f"{_describe(diff)} (hemiface never overwrites: correct the spreadsheet)")
        else:
            self.unchanged[rec.table] += 1
        return False

    def _patient_ref(self, rec) -> str | None:
        pid = _pid(rec, self.problems)
        if pid is not None and pid not in self.known_patients:
            self.problems.at(rec, "patient_id", f"unknown patient {pid}: not in the patients table nor the study")
            return None
        return pid

    def _visit_ref(self, rec) -> tuple[str, _dt.date] | None:
        pid = self._patient_ref(rec)
        d = _date(rec, "visit_date", self.problems, self.today)
        if pid is None or d is None:
            return None
        if (pid, d) not in self.known_visits:
            self.problems.at(rec, "visit_date", f"patient {pid} has no visit on {d.isoformat()}; "
                             "add it to the visits table")
            return None
        return pid, d

    def _after_birth(self, rec, fld, pid, d) -> None:
        by = self.birth_year.get(pid)
        if d is not None and by is not None and d.year < by:
            self.problems.at(rec, fld, f"{d.isoformat()} is before the patient's birth year {by}")

    # tables -------------------------------------------------------------------

    def check_patients(self, records) -> None:
        problems, today = self.problems, self.today
        for rec in records:
            start = len(problems.items)
            pid = _pid(rec, problems)
            values = dict(
                sex=_choice(rec, "sex", problems, SEXES, "sex", _SEX_ALIASES),
                birth_year=_int(rec, "birth_year", problems, 1900, today.year),
                age_at_surgery_years=_int(rec, "age_at_surgery_years", problems, 0, 120),
                affected_side=_choice(rec, "affected_side", problems, SIDES, "side"),
                guerrerosantos_stage=None,
                age_at_onset_years=_int(rec, "age_at_onset_years", problems, 0, 120),
            )
            raw_stage = rec.values.get("guerrerosantos_stage", "")
            if raw_stage:
                stage = _STAGES.get(raw_stage.lower())
                if stage is None:
                    problems.at(rec, "guerrerosantos_stage",
                                f"unknown Guerrerosantos stage {raw_stage!r}; use I, II, III or IV (or 1-4)")
                values["guerrerosantos_stage"] = stage
            if not rec.values.get("birth_year") and not rec.values.get("age_at_surgery_years"):
                problems.at(rec, "birth_year", "give the birth year or the age at surgery (age_at_surgery_years)")
            by, onset = values["birth_year"], values["age_at_onset_years"]
            if by is not None and onset is not None and by + onset > today.year:
                problems.at(rec, "age_at_onset_years", f"onset at {onset} years of age is after this year for "
                            f"birth year {by}")
            if pid is None:
                continue
            self.known_patients.add(pid)
            if not self._once(("patients", pid), rec, f"patient_id {pid}", "patient_id"):
                continue
            self.birth_year[pid], self.age_at_surgery[pid] = by, values["age_at_surgery_years"]
            if self._is_new(self.patients.get(pid), values, rec, f"patient {pid}", start):
                self.new["patients"].append((pid, values))

    def check_surgeries(self, records) -> None:
        problems, techniques = self.problems, self.study.settings.techniques
        for rec in records:
            start = len(problems.items)
            pid = self._patient_ref(rec)
            d = _date(rec, "surgery_date", problems, self.today)
            technique = _required(rec, "technique", problems)
            if technique is not None and technique not in techniques:
                problems.at(rec, "technique", f"unknown technique {technique!r}; this study's techniques "
                            f"(study.toml) are {', '.join(techniques)}")
                technique = None
            raw_init = _required(rec, "is_initial", problems)
            is_initial = None if raw_init is None else _BOOLS.get(raw_init.lower())
            if raw_init is not None and is_initial is None:
                problems.at(rec, "is_initial", f"{raw_init!r} is not yes or no")
            volumes = dict(
                fat_injected_ml=_decimal(rec, "fat_injected_ml", problems, MAX_FAT_ML, "ml"),
                adm_sheets=_int(rec, "adm_sheets", problems, 1, MAX_ADM_SHEETS),
                adm_thickness_mm=_decimal(rec, "adm_thickness_mm", problems, MAX_ADM_THICKNESS_MM, "mm"),
                planned_gain_ml=_decimal(rec, "planned_gain_ml", problems, MAX_FAT_ML, "ml"),
            )
            if bool(rec.values.get("adm_sheets")) != bool(rec.values.get("adm_thickness_mm")):
                given, other = ("adm_sheets", "adm_thickness_mm") if rec.values.get("adm_sheets") else \
                    ("adm_thickness_mm", "adm_sheets")
                problems.at(rec, other, f"{given} is given without {other}; record the ADM as both "
                            "(number of sheets and their thickness in mm)")
            if pid is None:
                continue
            self._after_birth(rec, "surgery_date", pid, d)
            if d is None or technique is None or is_initial is None:
                continue
            if is_initial:
                if pid in self.initial and self.initial[pid][1:] != (d, technique):
                    src, first_date, first_technique = self.initial[pid]
                    problems.at(rec, "is_initial", f"patient {pid} already has an initial surgery "
                                f"({first_date.isoformat()} {first_technique}, in {src}); only one surgery can "
                                "be the initial one")
                else:
                    self.initial[pid] = (f"{rec.file} row {rec.row}", d, technique)
                age, by = self.age_at_surgery.get(pid), self.birth_year.get(pid)
                if age is not None and by is not None and abs((d.year - by) - age) > 1:
                    problems.at(rec, "surgery_date", f"patient {pid}: birth year {by} and age at surgery {age} "
                                f"do not agree with an initial surgery in {d.year}")
            if not self._once(("surgeries", pid, d, technique), rec, f"surgery of {pid} on {d} ({technique})"):
                continue
            self.known_surgeries.add((pid, d, technique))
            values = dict(is_initial=is_initial, notes=rec.values.get("notes") or None, **volumes)
            if self._is_new(self.surgeries.get((pid, d, technique)), values, rec, f"the surgery of {pid} on {d}", start):
                self.new["surgeries"].append((pid, dict(date=d, technique=technique, **values)))
            if len(problems.items) == start and volumes["fat_injected_ml"] is not None:
                self.fat_total[(pid, d, technique)] = volumes["fat_injected_ml"]

    def check_injections(self, records) -> None:
        problems = self.problems
        zones: dict[tuple, dict[str, float]] = defaultdict(dict)  # surgery -> zone -> ml, the study's and the import's
        for (*key, zone), inj in self.injections.items():
            zones[tuple(key)][zone] = inj.volume_ml
        first: dict[tuple, _Record] = {}
        for rec in records:
            start = len(problems.items)
            pid = self._patient_ref(rec)
            d = _date(rec, "surgery_date", problems, self.today)
            technique = _required(rec, "technique", problems)
            zone = _name(rec, "zone", problems, "zone")
            volume = _decimal(rec, "volume_ml", problems, MAX_FAT_ML, "ml", required=True)
            if pid is None or d is None or technique is None:
                continue
            key = (pid, d, technique)
            if key not in self.known_surgeries:
                problems.at(rec, "surgery_date", f"patient {pid} has no {technique} surgery on {d.isoformat()}; "
                            "add it to the surgeries table")
                continue
            if zone is None or volume is None:
                continue
            if not self._once(("injections", *key, zone), rec, f"zone {zone} of the surgery of {pid} on {d}", "zone"):
                continue
            first.setdefault(key, rec)
            if self._is_new(self.injections.get((*key, zone)), dict(volume_ml=volume), rec,
                            f"the {zone} injection of {pid} on {d}", start):
                zones[key][zone] = volume
                self.new["injections"].append((key, dict(zone=zone, volume_ml=volume)))
        for key, rec in first.items():  # the zones of each surgery this import touches add up to its total
            total, summed = self.fat_total.get(key), sum(zones[key].values())
            if total is None:
                problems.at(rec, "volume_ml", f"the surgery of {key[0]} on {key[1].isoformat()} records no "
                            "fat_injected_ml; give the total in the surgeries table (the zones split it)")
            elif abs(summed - total) > ZONE_SUM_TOLERANCE_ML:
                listed = ", ".join(f"{z} {v:g}" for z, v in sorted(zones[key].items()))
                problems.at(rec, "volume_ml", f"the zones of the surgery of {key[0]} on {key[1].isoformat()} add up "
                            f"to {summed:g} ml ({listed}) but its fat_injected_ml is {total:g} ml; give every zone "
                            "of the surgery, or correct the total")

    def check_visits(self, records) -> None:
        problems = self.problems
        for rec in records:
            start = len(problems.items)
            pid = self._patient_ref(rec)
            d = _date(rec, "visit_date", problems, self.today)
            kind = _choice(rec, "visit_kind", problems, VISIT_KINDS, "visit kind",
                           {"preop": "preoperative", "followup": "follow-up", "follow_up": "follow-up"})
            if pid is None or d is None:
                continue
            self.known_visits.add((pid, d))
            self._after_birth(rec, "visit_date", pid, d)
            if kind is None or not self._once(("visits", pid, d), rec, f"visit of {pid} on {d}", "visit_date"):
                continue
            if self._is_new(self.visits.get((pid, d)), dict(kind=kind), rec, f"the visit of {pid} on {d}", start):
                self.new["visits"].append((pid, dict(date=d, kind=kind)))

    def check_media(self, records) -> None:
        problems = self.problems
        for rec in records:
            start = len(problems.items)
            key = self._visit_ref(rec)
            kind = _choice(rec, "media_kind", problems, MEDIA_KINDS, "media kind")
            raw = _required(rec, "file", problems)
            sha = stored = None
            if raw is not None:
                path, what = _media_path(rec.base_dir, raw)
                if what == "is missing":
                    problems.at(rec, "file", f"missing file {raw!r} (looked for {path})")
                elif what is not None:
                    problems.at(rec, "file", f"{raw!r} {what}")
                elif kind is not None and (what := media_type_problem(path, kind)) is not None:
                    problems.at(rec, "file", f"{raw!r} {what}")
                else:
                    try:
                        sha = sha256_file(path)
                    except OSError as exc:
                        problems.at(rec, "file", f"cannot read {raw!r}: {exc.strerror or exc}")
                    stored = _stored_path(self.study.path, path)
            if key is None or kind is None or sha is None:
                continue
            if self.staging is not None:
                stored, sha = self._deidentify(rec, path, raw, key, kind)
                if stored is None:
                    continue
            if not self._once(("media", *key, kind, stored), rec, f"{kind} {raw!r} of {key[0]} on {key[1]}"):
                continue
            if self._is_new(self.media.get((*key, kind, stored)), dict(sha256=sha), rec, f"{kind} {raw!r}", start):
                self.new["media"].append((key, dict(kind=kind, path=stored, sha256=sha)))

    def _deidentify(self, rec, path: Path, raw: str, key, kind: str) -> tuple[str | None, str | None]:
        """Stage a de-identified copy; return its path in the study and its SHA-256."""
        import hashlib

        from .._errors import HemifaceError
        from ._deidentify import MEDIA_DIR, copy_name, deidentified_bytes

        try:
            content, ext = deidentified_bytes(path, kind)
        except HemifaceError as exc:
            self.problems.at(rec, "file", f"cannot de-identify {raw!r}: {exc}")
            return None, None
        sha = hashlib.sha256(content).hexdigest()
        name = copy_name(key[0], key[1].isoformat(), kind, sha, ext)
        staged = self.staging / name
        staged.write_bytes(content)
        stored = f"{MEDIA_DIR}/{name}"
        self.staged[stored] = staged
        return stored, sha

    def place_staged(self) -> list[Path]:
        """Move the de-identified copies into the study's media folder; returns those that were not there."""
        placed = []
        for stored, staged in self.staged.items():
            target = self.study.path / stored
            if target.exists():
                continue  # same name = same content (the name carries its hash)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            placed.append(target)
        return placed

    def check_complications(self, records) -> None:
        problems = self.problems
        for rec in records:
            start = len(problems.items)
            key = self._visit_ref(rec)
            ctype = _name(rec, "complication_type", problems, "complication type")
            severity = _choice(rec, "severity", problems, SEVERITIES, "severity")
            if key is None or ctype is None or severity is None:
                continue
            if not self._once(("complications", *key, ctype), rec, f"complication {ctype} of {key[0]} on {key[1]}"):
                continue
            if self._is_new(self.complications.get((*key, ctype)), dict(severity=severity), rec,
                            f"complication {ctype}", start):
                self.new["complications"].append((key, dict(type=ctype, severity=severity)))

    def check_faceq(self, records) -> None:
        problems = self.problems
        for rec in records:
            start = len(problems.items)
            key = self._visit_ref(rec)
            scale = _name(rec, "faceq_scale", problems, "FACE-Q scale")
            raw = _required(rec, "score", problems)
            score = None
            if raw is not None:
                try:
                    score = float(raw)
                    if not 0.0 <= score <= 100.0:  # also refuses nan
                        raise ValueError
                except ValueError:
                    problems.at(rec, "score", f"FACE-Q score {raw!r} is not a number from 0 to 100 "
                                "(give the converted 0-100 score, not raw answers)")
                    score = None
            if key is None or scale is None or score is None:
                continue
            if not self._once(("faceq", *key, scale), rec, f"FACE-Q {scale} of {key[0]} on {key[1]}"):
                continue
            if self._is_new(self.faceq.get((*key, scale)), dict(score=score), rec, f"FACE-Q {scale}", start):
                self.new["faceq"].append((key, dict(scale=scale, score=score)))

    def write(self) -> dict[str, int]:
        """Add the new rows to the session; returns how many per table."""
        session, patients, visits = self.session, self.patients, self.visits
        for pid, values in self.new["patients"]:
            patients[pid] = Patient(pseudonym=pid, **values)
            session.add(patients[pid])
        surgeries = dict(self.surgeries)
        for pid, values in self.new["surgeries"]:
            surgeries[(pid, values["date"], values["technique"])] = Surgery(patient=patients[pid], **values)
            session.add(surgeries[(pid, values["date"], values["technique"])])
        for surgery, values in self.fill:
            for k, v in values.items():
                setattr(surgery, k, v)
        for key, values in self.new["injections"]:
            session.add(SurgeryInjection(surgery=surgeries[key], **values))
        for pid, values in self.new["visits"]:
            visits[(pid, values["date"])] = Visit(patient=patients[pid], **values)
            session.add(visits[(pid, values["date"])])
        for table, model in (("media", Media), ("complications", Complication), ("faceq", FaceQScore)):
            for key, values in self.new[table]:
                session.add(model(visit=visits[key], **values))
        return {t: len(self.new[t]) for t in TABLE_ORDER}


def import_files(study, files, *, user: str | None = None, today: _dt.date | None = None,
                 deidentify: bool = False) -> ImportSummary:
    """Validate spreadsheets and import them into ``study`` in one transaction.

    Parameters
    ----------
    study : Study
        An open study (see :func:`open_study`).
    files : iterable of path
        CSV files: per-table files and/or REDCap exports (docs/study_import_format.md).
    user : str, optional
        Who imports, for the audit table [default: the login name].
    today : datetime.date, optional
        The date against which "in the future" is judged [default: today].
    deidentify : bool
        Copy every media file into the study's ``media/`` folder with its metadata
        removed and a pseudonymous name (see :mod:`hemiface.study._deidentify`); the
        study then refers to the copies only. Originals are never modified.

    Returns
    -------
    ImportSummary
        Rows added and rows already present, per table. Rows already in the study
        with the same values are left as they are, so re-importing changes nothing.

    Raises
    ------
    StudyImportError
        Listing every problem (file, row, column, what is wrong); the database is unchanged.
    """
    files = [Path(f) for f in files]
    if not files:
        raise StudyError("no files to import; name one or more CSV files")
    today = today or _dt.date.today()
    problems = _Problems()
    by_table: dict[str, list[_Record]] = defaultdict(list)
    for rec in read_records(files, problems):
        by_table[rec.table].append(rec)
    removed = remove_abandoned(study.path, _IMPORT_STAGING)
    if removed:
        logger.info("removed %d staging folder(s) of interrupted imports", removed)
    held = staging = None
    if deidentify:
        try:
            held = make_staging(study.path, _IMPORT_STAGING)  # ours until released (_staging)
            staging = held.path
        except OSError as exc:
            raise StudyError(f"cannot prepare the de-identified copies in the study folder: "
                             f"{exc.strerror or exc}; nothing was imported") from None
    placed: list[Path] = []
    try:
        with study.writing() as session:
            run = _Import(study, session, problems, today, staging)
            for table in TABLE_ORDER:  # foreign keys first
                getattr(run, f"check_{table}")(by_table[table])
            if problems.items:
                order = {f.name: i for i, f in enumerate(files)}
                items = sorted(problems.items, key=lambda p: (order.get(p.file.split('[')[0], len(order)), p.row or 0))
                raise StudyImportError(items)  # rolls the transaction back; nothing was written
            added = run.write()
            placed = run.place_staged()  # before the commit; removed again if the commit fails
            completed = {"surgeries": len(run.fill)} if run.fill else {}
            summary = ImportSummary(files=tuple(f.name for f in files), added=added, unchanged=run.unchanged,
                                    completed=completed)
            if summary.changed:
                session.add(AuditEntry(
                    at_utc=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None),
                    user=user or _login(),
                    action="import",
                    details_json=json.dumps({
                        "files": [{"file": f.name, "sha256": sha256_file(f)} for f in files],
                        "added": added,
                        "completed": completed,
                        "deidentified": deidentify,
                    }, sort_keys=True),
                ))
    except SQLAlchemyError as exc:
        _remove(placed)
        raise StudyError(f"the study database refused the import (nothing was imported): {exc}") from None
    except BaseException:
        _remove(placed)
        raise
    finally:
        if held is not None:
            held.release()
    logger.info("import: %s", summary)
    return summary


_IMPORT_STAGING = ".import-staging-"


def _remove(paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
