"""Issue 14: integrity under attack and accident.

Every case is built here (hostile files, device nodes in a temporary folder, a mocked
full disk, a killed parent); nothing in the database, the outputs or the originals may
change on a refused operation. Most study runs use a stand-in analysis (``fake``: it
reads the photo's bytes, hashes them and derives a ratio from them), so that these
tests check the run's bookkeeping in milliseconds; the file-name test runs the real
photo analysis.
"""

import errno
import hashlib
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from databases import database_state
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

import hemiface.study._run as run_module
from hemiface._errors import HemifaceError, InputFileError
from hemiface.cli import app
from hemiface.report import _report
from hemiface.study import (
    StudyError,
    StudyImportError,
    endpoint_table,
    init_study,
    open_study,
    run_study,
    write_endpoints,
)

runner = CliRunner()
ROOT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "study_minimal"
SRC = str(Path(run_module.__file__).resolve().parents[2])  # the hemiface under test, for subprocesses


# --------------------------------------------------------------------------- helpers


def png(path: Path, seed: int = 0, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


SHEETS = {
    "patients.csv": "patient_id,sex,birth_year,affected_side\nP01,female,1990,left\n",
    "surgeries.csv": "patient_id,surgery_date,technique,is_initial\nP01,2021-03-01,fat_grafting,yes\n",
    "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n",
}


def write_sheets(folder: Path, pre="pre.png", post="post.png", media_dir="media") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / media_dir).mkdir(exist_ok=True)
    for i, name in enumerate((pre, post)):
        if not (folder / media_dir / name).exists():
            png(folder / media_dir / name, seed=i)
    sheets = dict(SHEETS)
    sheets["media.csv"] = ("patient_id,visit_date,media_kind,file\n"
                           f"P01,2021-02-15,photo,{media_dir}/{pre}\nP01,2021-09-15,photo,{media_dir}/{post}\n")
    for name, body in sheets.items():
        (folder / name).write_text(body)
    return [folder / n for n in sheets]


def small_study(tmp_path: Path, **kw):
    files = write_sheets(tmp_path / "sheets", **kw)
    study = init_study(tmp_path / "study")
    study.import_files(files, user="tester")
    return study


class FakeResult:
    """What an analysis returns, from the bytes it read: a ratio and the SHA-256 of those bytes."""

    def __init__(self, role, path, data):
        self.values = {"symmetry_ratio_percent": 80.0 + data[-1] % 20,
                       "provenance": {"inputs": {role: {"file": Path(path).name,
                                                        "sha256": hashlib.sha256(data).hexdigest()}}}}

    def to_dict(self):
        return json.loads(json.dumps(self.values))

    def save(self, out, *, overwrite=False):
        (Path(out) / "measurements.json").write_text(json.dumps(self.values))


def fake(job):
    role = next(iter(job.inputs))
    path = job.inputs[role][0]
    return FakeResult(role, path, Path(path).read_bytes())


@pytest.fixture
def fake_analysis(monkeypatch):
    monkeypatch.setattr(run_module, "_analyse", fake)


def rows(study):
    with study.engine.connect() as conn:
        return conn.execute(text("SELECT analysis, inputs_sha256, status, message, result_json "
                                 "FROM analysis_results ORDER BY id")).all()


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (folders as None): to compare before and after."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("hemiface: error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# --------------------------------------------------------------------------- 1. integrity


def test_media_edited_in_place_with_its_mtime_restored_is_refused(tmp_path, fake_analysis):
    with small_study(tmp_path) as study:
        first = run_study(study)
        assert (first.succeeded, first.failed) == (2, 0)
        before = rows(study)
        photo = tmp_path / "sheets" / "media" / "pre.png"
        st = photo.stat()
        data = bytearray(photo.read_bytes())
        data[-20] ^= 0xFF  # same size, other content
        photo.write_bytes(bytes(data))
        os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))  # the modification time put back
        assert photo.stat().st_size == st.st_size and photo.stat().st_mtime_ns == st.st_mtime_ns

        again = run_study(study)
        assert again.skipped == 1 and again.failed == 1 and not again.all_done
        assert "changed since it was imported" in again.failures[0]["message"]
        table = endpoint_table(study)
        assert np.isnan(table["symmetry_ratio_baseline_percent"].iloc[0])  # never the old ratio as current
        assert "changed since it was imported" in table["missing_2d_reason"].iloc[0]

        # its result folder deleted: the re-run must not analyse the altered photo under the original SHA-256
        for folder in (study.path / "results" / "photo_analyze").iterdir():
            recorded = json.loads((folder / "measurements.json").read_text())["provenance"]["inputs"]["photo"]
            if recorded["file"] == "pre.png":
                (folder / "measurements.json").unlink()
                folder.rmdir()
        third = run_study(study)
        assert third.succeeded == 0 and third.failed == 1
        assert rows(study) == before


def test_a_file_that_changes_while_it_is_analysed_is_not_stored(tmp_path, monkeypatch):
    def changing(job):
        role = next(iter(job.inputs))
        path = Path(job.inputs[role][0])
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # someone saves over it mid-analysis
        return FakeResult(role, path, path.read_bytes())

    monkeypatch.setattr(run_module, "_analyse", changing)
    with small_study(tmp_path) as study:
        summary = run_study(study)
        assert summary.succeeded == 0 and summary.failed == 2
        assert all("changed since it was imported" in f["message"] for f in summary.failures)
        assert rows(study) == []
        assert not list((study.path / "results").glob("photo_analyze/*"))


@pytest.mark.sqlite_only("SQLite's own file: its integrity check finds a damaged page")
def test_a_page_of_random_bytes_in_the_database_is_refused(tmp_path):
    with small_study(tmp_path) as study:
        db = study.path / "study.sqlite"
        folder = study.path
    con = sqlite3.connect(db)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE type='index' AND tbl_name='media' "
                          "ORDER BY name LIMIT 1").fetchone()
    con.close()
    raw = bytearray(db.read_bytes())
    raw[(root - 1) * page_size: root * page_size] = np.random.default_rng(1).bytes(page_size)
    db.write_bytes(bytes(raw))
    before = db.read_bytes()
    with pytest.raises(StudyError, match="damaged"):
        open_study(folder)
    for command in (["study", "run", str(folder)], ["study", "endpoints", str(folder), "--out", str(tmp_path / "e.csv")]):
        assert "damaged" in one_line_error(runner.invoke(app, command))
    assert db.read_bytes() == before
    assert not (tmp_path / "e.csv").exists()


def test_formula_cells_without_a_cached_value_are_refused(tmp_path, study):
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = "patients"
    ws.append(["patient_id", "sex", "birth_year", "affected_side"])
    ws.append(["P01", "female", "=1980+10", "left"])  # openpyxl writes no computed value
    path = tmp_path / "book.xlsx"
    book.save(path)
    before = database_state(study.path)
    with pytest.raises(StudyImportError) as err:
        study.import_files([path])
    assert "book.xlsx[patients], row 2, column birth_year: a formula without a computed value" in str(err.value)
    assert database_state(study.path) == before


def test_a_database_belongs_to_one_study(tmp_path):
    with init_study(tmp_path / "a") as a:
        a_url = a.settings.database_url.replace("sqlite:///study.sqlite", f"sqlite:///{a.path / 'study.sqlite'}")
    with init_study(tmp_path / "b") as b:
        b_url = b.settings.database_url
    settings = tmp_path / "b" / "study.toml"
    settings.write_text(settings.read_text().replace(f'"{b_url}"', f'"{a_url}"'))
    before = database_state(tmp_path / "a")
    with pytest.raises(StudyError, match="belongs to another study"):
        open_study(tmp_path / "b")
    assert "belongs to another study" in one_line_error(runner.invoke(app, ["study", "run", str(tmp_path / "b")]))
    assert database_state(tmp_path / "a") == before
    # a study.toml without its identity does not adopt an identified database either
    settings.write_text("\n".join(ln for ln in settings.read_text().splitlines() if not ln.startswith("study_id")))
    with pytest.raises(StudyError, match="records no study_id"):
        open_study(tmp_path / "b")


def test_empty_settings_and_absurd_windows_are_refused(tmp_path):
    with init_study(tmp_path / "s") as s:
        toml = s.path / "study.toml"
    original = toml.read_text()
    toml.write_text("# nothing\n")
    with pytest.raises(StudyError, match="empty"):
        open_study(tmp_path / "s")
    toml.write_text(original.replace("followup_months = 6", "followup_months = 99999999999"))
    assert "implausible" in one_line_error(runner.invoke(app, ["study", "status", str(tmp_path / "s")]))
    result = runner.invoke(app, ["study", "init", str(tmp_path / "t"), "--followup-months", "99999999999"])
    assert "implausible" in one_line_error(result) and not (tmp_path / "t").exists()
    assert "name must be" in one_line_error(runner.invoke(app, ["study", "init", str(tmp_path / "u"), "--name", "x" * 5000]))


# --------------------------------------------------------------------------- 2. outputs and files


def _specials(folder: Path) -> dict:
    folder.mkdir()
    made = {}
    try:
        os.mknod(folder / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
        made["null"] = stat.S_ISCHR
    except PermissionError:
        pass  # not root: the FIFO, socket and folder cases still run
    os.mkfifo(folder / "fifo")
    made["fifo"] = stat.S_ISFIFO
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock"))
    sock.close()
    made["sock"] = stat.S_ISSOCK
    (folder / "dir").mkdir()
    made["dir"] = stat.S_ISDIR
    return made


def test_overwrite_replaces_regular_files_only(tmp_path):
    init_study(tmp_path / "s").close()
    out = tmp_path / "out"
    for name, is_kind in _specials(out).items():
        result = runner.invoke(app, ["study", "status", str(tmp_path / "s"), "--out", str(out / name), "--overwrite"])
        if name == "dir":  # the option itself refuses a folder (usage error)
            assert result.exit_code == 2
            with pytest.raises(HemifaceError, match="is a folder; hemiface replaces regular files only"):
                from hemiface._outputs import check_writable
                check_writable(out, ["dir"], overwrite=True)
        else:
            assert "regular files only" in one_line_error(result)
        assert is_kind(os.lstat(out / name).st_mode), name
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (out / "link.csv").symlink_to(outside)
    result = runner.invoke(app, ["study", "status", str(tmp_path / "s"), "--out", str(out / "link.csv"), "--overwrite"])
    assert "symbolic link" in one_line_error(result)
    assert outside.read_text() == "keep me" and (out / "link.csv").is_symlink()
    for system in ("/proc", "/sys", "/dev"):
        result = runner.invoke(app, ["study", "status", str(tmp_path / "s"), "--out", f"{system}/hemiface.csv"])
        assert "system" in one_line_error(result)
    assert not Path("/dev/hemiface.csv").exists()
    # a regular file is replaced as before
    (out / "status.csv").write_text("old")
    result = runner.invoke(app, ["study", "status", str(tmp_path / "s"), "--out", str(out / "status.csv"), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "status.csv").read_text() != "old"


def test_report_html_and_pdf_are_replaced_together(tmp_path, monkeypatch):
    from reportlab.platypus.doctemplate import LayoutError

    import hemiface.report._pdf as pdf

    init_study(tmp_path / "s").close()
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("previous html")
    (out / "report.pdf").write_bytes(b"previous pdf")

    def too_large(*args, **kwargs):
        raise LayoutError("Flowable <Paragraph> too large on page 1")

    monkeypatch.setattr(pdf, "write_pdf", too_large)
    result = runner.invoke(app, ["study", "report", str(tmp_path / "s"), "--out", str(out), "--overwrite"])
    assert "cannot be laid out" in one_line_error(result)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]
    assert (out / "report.html").read_text() == "previous html" and (out / "report.pdf").read_bytes() == b"previous pdf"


def test_path_problems_in_spreadsheets_are_one_line_each(tmp_path, study):
    sheets = tmp_path / "sheets"
    files = write_sheets(sheets)
    media = sheets / "media.csv"
    media.write_text(media.read_text()
                     + "P01,2021-02-15,photo,media/" + "n" * 300 + ".png\n"
                     + 'P01,2021-09-15,photo,"media/a\x00b.png"\n')
    big = sheets / "complications.csv"
    big.write_text("patient_id,visit_date,complication_type,severity\nP01,2021-09-15," + "x" * 200_000 + ",minor\n")
    before = database_state(study.path)
    with pytest.raises(StudyImportError) as err:
        study.import_files(files + [big])
    message = str(err.value)
    assert "media.csv, row 4, column file:" in message and "too long" in message
    assert "media.csv, row 5, column file:" in message and "NUL" in message
    assert "complications.csv, row 2:" in message and "longer than" in message
    assert database_state(study.path) == before
    result = runner.invoke(app, ["study", "import", str(study.path), str(sheets / ("z" * 300 + ".csv"))])
    one_line_error(result)
    assert "has a name too long" in result.output
    os.mkfifo(sheets / "visits_pipe.csv")  # a spreadsheet that is a FIFO is never opened
    with pytest.raises(StudyImportError, match=r"visits_pipe.csv: is a FIFO \(named pipe\), not a regular file"):
        study.import_files([sheets / "visits_pipe.csv"])
    assert database_state(study.path) == before


def test_a_full_disk_during_endpoints_analyze_and_report_is_one_line_and_leaves_nothing(tmp_path, monkeypatch,
                                                                                         fake_analysis):
    with small_study(tmp_path) as study:
        run_study(study)
        folder = study.path
    before = tree(folder)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_after_a_while(path, parts):  # the HTML report is streamed: the disk fills up part of the way through
        with open(path, "w", encoding="utf-8") as out:
            out.write(next(iter(parts)))
        full()

    for command, patch in ((["endpoints", str(folder)], (pd.DataFrame, "to_csv", full)),
                           (["analyze", str(folder)], (pd.DataFrame, "to_csv", full)),
                           (["report", str(folder), "--out", str(tmp_path / "r" / "deep")],
                            (_report, "write_text_parts", full_after_a_while))):
        with monkeypatch.context() as m:
            m.setattr(*patch)
            assert "No space left on device" in one_line_error(runner.invoke(app, ["study", *command]))
        assert tree(folder) == before, command  # no .cache-* file, no empty folder, nothing replaced
    assert not (tmp_path / "r").exists()


def test_a_hash_cache_that_cannot_be_saved_leaves_no_temporary_file(tmp_path, monkeypatch, fake_analysis):
    with small_study(tmp_path) as study:
        run_study(study)
        (study.path / "results" / ".sha256-cache.json").unlink()

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(json, "dump", full)
        table = endpoint_table(study)  # the cache only saves time: the table is still made
        assert table["symmetry_ratio_change"].notna().all()
        assert sorted(p.name for p in (study.path / "results").iterdir() if p.name.startswith(".")) == [".run.lock"]


def test_stale_import_staging_folders_are_cleaned(tmp_path):
    files = write_sheets(tmp_path / "sheets")
    with init_study(tmp_path / "study") as study:
        stale = study.path / ".import-staging-killed"
        stale.mkdir()
        (stale / "P01_2021-02-15_photo_abc.png").write_bytes(b"half a copy")
        study.import_files(files, deidentify=True)
        assert not stale.exists()
        assert not list(study.path.glob(".import-staging-*"))


@pytest.mark.sqlite_only("a read-only folder is SQLite's matter (its database file and journal live there); a "
                         "PostgreSQL study's database is elsewhere, and the folder's own files are the same on both")
def test_read_only_commands_work_on_a_read_only_study(tmp_path, fake_analysis):
    """Any write under the study folder fails (an audit hook, so that it holds for root too)."""
    with small_study(tmp_path) as study:
        run_study(study)
        folder = study.path
    (folder / "results" / ".sha256-cache.json").unlink()  # a read-only command would want to write it again
    before = tree(folder)
    script = textwrap.dedent(f"""
        import os, sys
        STUDY = {str(folder)!r}
        def deny(event, args):
            if event not in ("open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree"):
                return
            path = args[0]
            if not isinstance(path, (str, bytes, os.PathLike)) or not os.fsdecode(path).startswith(STUDY):
                return
            if event == "open":
                mode, flags = args[1], args[2]
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                if not writes:
                    return
            raise PermissionError(30, "Read-only file system", os.fsdecode(path))
        sys.addaudithook(deny)
        from typer.testing import CliRunner
        from hemiface.cli import app
        r = CliRunner()
        out = {str(tmp_path / "out")!r}
        for cmd in (["study", "status", STUDY], ["study", "endpoints", STUDY, "--out", out + "/e.csv"],
                    ["study", "analyze", STUDY, "--out", out + "/a"], ["study", "report", STUDY, "--out", out + "/r"]):
            res = r.invoke(app, cmd)
            print(cmd[1], res.exit_code, res.output.strip().splitlines()[-1:] if res.exit_code else "")
    """)
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    codes = dict(line.split(" ", 2)[:2] for line in done.stdout.splitlines() if line.split(" ")[0] in
                 ("status", "endpoints", "analyze", "report"))
    assert codes == {"status": "0", "endpoints": "0", "analyze": "0", "report": "0"}, done.stdout
    assert tree(folder) == before


def test_an_empty_study_is_valid_for_analyze_and_report(tmp_path):
    init_study(tmp_path / "s").close()
    result = runner.invoke(app, ["study", "analyze", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "no eligible patient" in result.output
    result = runner.invoke(app, ["study", "report", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "report" / "report.pdf").is_file()


def test_failure_messages_never_contain_file_names_or_folders(tmp_path):
    from hemiface.study import build_study_report

    sheets = tmp_path / "sheets"
    (sheets / "Dr_Jones_clinic").mkdir(parents=True)
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(sheets / "Dr_Jones_clinic" / "Smith_John_pre.png")
    Image.fromarray(np.full((200, 200, 3), 100, np.uint8)).save(sheets / "Dr_Jones_clinic" / "Smith_John_post.png")
    files = write_sheets(sheets, pre="Smith_John_pre.png", post="Smith_John_post.png", media_dir="Dr_Jones_clinic")
    with init_study(tmp_path / "study") as study:
        study.import_files(files)
        summary = run_study(study)
        assert summary.failed == 2
        (sheets / "Dr_Jones_clinic" / "Smith_John_post.png").unlink()  # and one goes missing
        table = endpoint_table(study)
        shown = " ".join(str(f["message"]) for f in summary.failures) + " ".join(
            str(v) for v in table[["missing_2d_reason", "missing_3d_reason"]].to_numpy().ravel())
        stored = " ".join(str(r.message) for r in rows(study))
        cache = (study.path / "results" / ".sha256-cache.json").read_text()
        for text_ in (shown, stored, cache):
            assert "Smith" not in text_ and "Jones" not in text_ and str(tmp_path) not in text_
        assert "the photo file is missing" in table["missing_2d_reason"].iloc[0]
        build_study_report(study)  # the report's guard against file names has nothing to refuse


def test_database_url_credentials_are_masked_in_every_output(tmp_path, fake_analysis):
    import dataclasses

    with small_study(tmp_path) as study:
        study.settings = dataclasses.replace(study.settings, database_url="postgresql://ana:s3cret@db.example/st")
        table = endpoint_table(study)
        write_endpoints(table, tmp_path / "e.csv")
        write_endpoints(table, tmp_path / "e.xlsx")
    assert "s3cret" not in (tmp_path / "e_rules.json").read_text()
    assert "***" in (tmp_path / "e_rules.json").read_text()
    with zipfile.ZipFile(tmp_path / "e.xlsx") as book:
        assert not any(b"s3cret" in book.read(n) for n in book.namelist())


# --------------------------------------------------------------------------- 3. resources


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG header that claims width x height pixels, with a few bytes of image data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [30000, 13000])
def test_photos_above_the_pixel_limit_are_refused_in_one_line(tmp_path, side):
    from hemiface.photo import read_photo

    photo = bomb_png(tmp_path / "bomb.png", side, side)
    with pytest.raises(InputFileError, match="megapixel limit"):
        read_photo(photo)
    result = runner.invoke(app, ["photo", "analyze", str(photo), "--affected", "left", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "megapixel limit" in result.output and "Traceback" not in result.output
    files = write_sheets(tmp_path / "sheets")
    (tmp_path / "sheets" / "media" / "pre.png").write_bytes(photo.read_bytes())
    with init_study(tmp_path / "study") as study:
        with pytest.raises(StudyImportError, match="megapixel limit"):
            study.import_files(files, deidentify=True)


def test_xlsx_zip_bombs_are_refused_before_parsing(tmp_path, study, monkeypatch):
    import hemiface.study._import as imp
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "patients"
    book.active.append(["patient_id", "sex", "birth_year", "affected_side"])
    path = tmp_path / "bomb.xlsx"
    book.save(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/padding.xml", b"\0" * (3 * 1024**2))  # 3 MB that pack to a few kilobytes
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(imp, "MAX_XLSX_UNPACKED_BYTES", 2 * 1024**2)
    with pytest.raises(StudyImportError, match="unpacks to 3 MB, more than the 2 MB limit"):
        study.import_files([path])


def test_rows_and_printed_problems_are_capped(tmp_path, study, monkeypatch):
    import hemiface.study._import as imp

    sheet = tmp_path / "patients.csv"
    sheet.write_text("patient_id,sex,birth_year,affected_side\n" + "".join(f"P{i},female,1990,up\n" for i in range(300)))
    with pytest.raises(StudyImportError) as err:
        study.import_files([sheet])
    assert len(err.value.problems) == 300
    lines = str(err.value).splitlines()
    assert len(lines) == 1 + 100 + 1 and "200 more problems" in lines[-1]
    monkeypatch.setattr(imp, "MAX_ROWS", 50)
    with pytest.raises(StudyImportError, match="more than 50 rows"):
        study.import_files([sheet])


def test_deidentify_applies_the_mesh_limits(tmp_path):
    files = write_sheets(tmp_path / "sheets")
    obj = tmp_path / "sheets" / "media" / "flat.obj"
    obj.write_text("v 0 0 0\nv 1 1 1\nv 2 2 2\n" + "f 1 2 3\n" * 2000)  # every face degenerate (collinear)
    media = tmp_path / "sheets" / "media.csv"
    media.write_text(media.read_text() + "P01,2021-02-15,scan,media/flat.obj\n")
    with init_study(tmp_path / "study") as study:
        with pytest.raises(StudyImportError, match="media.csv, row 4, column file: cannot de-identify.*non-degenerate"):
            study.import_files(files, deidentify=True)
        assert not (study.path / "media").exists()


def test_media_types_are_checked_at_import(tmp_path, study):
    files = write_sheets(tmp_path / "sheets")
    media_dir = tmp_path / "sheets" / "media"
    (media_dir / "passwd.png").symlink_to("/etc/passwd")
    os.mkfifo(media_dir / "pipe.png")
    (media_dir / "folder.png").mkdir()
    extra = {"/etc/passwd": "is not an image", "media/passwd.png": "is not an image",
             "/proc/self/environ": "is not an image", "media/pipe.png": "is a FIFO",
             "media/folder.png": "is a folder"}
    try:
        os.mknod(media_dir / "zero.png", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # a private /dev/zero
        extra["media/zero.png"] = "is a character device"
    except PermissionError:
        pass
    media = tmp_path / "sheets" / "media.csv"
    media.write_text(media.read_text() + "".join(f"P01,2021-02-15,photo,{f}\n" for f in extra))
    before = database_state(study.path)
    t0 = time.monotonic()
    with pytest.raises(StudyImportError) as err:
        study.import_files(files)
    assert time.monotonic() - t0 < 30  # the FIFO was never opened
    message = str(err.value)
    for row, (cell, what) in enumerate(extra.items(), start=4):
        assert f"media.csv, row {row}, column file: {cell!r} {what}" in message, (cell, message)
    assert database_state(study.path) == before


def test_a_media_file_replaced_by_a_fifo_after_import_is_named_as_such(tmp_path, fake_analysis):
    with small_study(tmp_path) as study:
        photo = tmp_path / "sheets" / "media" / "post.png"
        photo.unlink()
        os.mkfifo(photo)
        summary = run_study(study)
        assert summary.succeeded == 1
        assert summary.failures[0]["message"] == "the photo file is a FIFO (named pipe), not a regular file"


# --------------------------------------------------------------------------- 4. processes and summaries


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.sqlite_only("about the worker processes, which never touch the database (the killed run's database "
                         "on both: test_run.py's test_killed_run_loses_nothing_and_redoes_nothing)")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_workers_end_when_study_run_is_killed(tmp_path, sig):
    import signal

    with small_study(tmp_path) as study:
        folder = study.path
    env = dict(os.environ, PYTHONPATH=SRC)
    parent = subprocess.Popen([sys.executable, "-m", "hemiface.cli", "study", "run", str(folder), "--jobs", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(_children(parent.pid)) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)
        children = _children(parent.pid)
        assert len(children) >= 2 and parent.poll() is None  # the two workers (and the resource tracker)
        parent.send_signal(getattr(signal, sig))  # to the parent only, as `kill PID` or `timeout` do
        parent.wait(timeout=30)
        # A liveness bound, not a speed target: a worker spawned just before the kill still has to import
        # hemiface before its initializer sees the parent gone, which took over 15 s on a loaded 2-core machine.
        deadline = time.monotonic() + 60
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)]
    finally:
        parent.kill()
        parent.wait()
        for c in children if "children" in locals() else []:  # only the workers this test started
            if _alive(c) and "python" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace"):
                os.kill(c, signal.SIGKILL)


def test_environmental_errors_are_not_results_and_failures_keep_standing(tmp_path, monkeypatch):
    calls = {"n": 0}

    def disk_full_once(job):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        if "post" in job.inputs["photo"][0]:
            raise InputFileError("no face found in post.png")
        return fake(job)

    monkeypatch.setattr(run_module, "_analyse", disk_full_once)
    with small_study(tmp_path) as study:
        result = runner.invoke(app, ["study", "run", str(study.path)])
        assert result.exit_code == 1, result.output
        assert "not done" in result.output and "No space left on device" in result.output
        assert rows(study) == []  # nothing recorded: not an analysis result
        result = runner.invoke(app, ["study", "run", str(study.path)])  # space freed
        assert result.exit_code == 1 and "1 done now, 1 failed" in result.output
        assert "post.png" not in result.output  # the failure's message names no file
        result = runner.invoke(app, ["study", "run", str(study.path)])  # a plain re-run: the failure still stands
        assert result.exit_code == 1, result.output
        assert "2 already done" in result.output and "1 failed earlier and still stand" in result.output
        assert "--retry-failed" in result.output
        monkeypatch.setattr(run_module, "_analyse", fake)
        result = runner.invoke(app, ["study", "run", str(study.path), "--retry-failed"])
        assert result.exit_code == 0, result.output
        assert [r.status for r in rows(study)] == ["ok", "ok"]


def test_a_full_disk_while_a_real_result_is_saved_stops_the_run_and_records_nothing(tmp_path, monkeypatch):
    import shutil as _shutil

    import hemiface.photo._outputs as photo_outputs

    example = ROOT_EXAMPLE / "media"
    sheets = tmp_path / "sheets"
    (sheets / "media").mkdir(parents=True)
    _shutil.copy(example / "P001_2021-01-10_front.png", sheets / "media" / "pre.png")
    _shutil.copy(example / "P001_2021-08-20_front.png", sheets / "media" / "post.png")
    with small_study(tmp_path) as study:
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(photo_outputs, "render_overlay", full)
        summary = run_study(study)
        assert summary.environment and summary.succeeded == 0 and summary.failed == 0
        assert summary.environment[0]["message"].startswith("No space left on device")
        assert rows(study) == []
        assert not [p for p in (study.path / "results").rglob("*") if p.name.startswith((".staging-", ".hemiface-"))]
        monkeypatch.undo()
        again = run_study(study)  # space freed: a plain re-run does the work; nothing was hidden as "failed"
        assert again.succeeded == 1 and again.duplicates == 1 and again.all_done  # the example's photos are one file


def test_out_of_memory_is_not_recorded(tmp_path, monkeypatch):
    def no_memory(job):
        raise MemoryError()

    monkeypatch.setattr(run_module, "_analyse", no_memory)
    with small_study(tmp_path) as study:
        summary = run_study(study)
        assert not summary.all_done and summary.environment and summary.environment[0]["message"].startswith("out of memory")
        assert rows(study) == []
    from hemiface._errors import OutputError

    # a full disk while the result is saved arrives as the output helper's one-line error, errno kept
    assert run_module._environmental(OutputError("cannot write the outputs", errno.ENOSPC)) == os.strerror(errno.ENOSPC)
    assert run_module._environmental(InputFileError("no face")) is None
