"""`study import --deidentify`: copies without metadata and with pseudonymous names; originals untouched."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from databases import database_state
import trimesh
from PIL import Image

from hemiface import datasets
from hemiface.study import StudyImportError, init_study
from hemiface.study.models import Media

NAME = "Jane_Doe"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sheets(tmp_path) -> Path:
    folder = tmp_path / "sheets"
    (folder / "media").mkdir(parents=True)
    rgb = np.asarray(Image.open(datasets.sample_photo_path("astronaut")).convert("RGB"))[:, 64:448]  # portrait-ish
    # stored sideways with EXIF orientation 6 (display = rotate 90 deg clockwise), GPS and a name in the metadata
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, k=1)))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = f"{NAME} frontal"  # ImageDescription
    exif[0x013B] = NAME  # Artist
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 0.0)}  # GPS
    stored.save(folder / "media" / f"{NAME}_pre.jpg", exif=exif, quality=95)
    png = Image.fromarray(rgb)
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_text("Author", NAME)
    png.save(folder / "media" / f"{NAME}_post.png", pnginfo=info)
    scan = datasets.load_sample("template")
    ply = trimesh.exchange.ply.export_ply(trimesh.Trimesh(scan.vertices_mm, scan.faces, process=False), encoding="ascii")
    ply = ply.replace(b"ply\nformat ascii 1.0\n", f"ply\nformat ascii 1.0\ncomment patient {NAME}\n".encode(), 1)
    (folder / "media" / f"{NAME}_scan.ply").write_bytes(ply)
    (folder / "patients.csv").write_text("patient_id,sex,birth_year,affected_side\nP01,female,1990,left\n")
    (folder / "surgeries.csv").write_text("patient_id,surgery_date,technique,is_initial\nP01,2021-03-01,fat_grafting,yes\n")
    (folder / "visits.csv").write_text("patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\n"
                                       "P01,2021-09-15,follow-up\n")
    (folder / "media.csv").write_text(
        "patient_id,visit_date,media_kind,file\n"
        f"P01,2021-02-15,photo,media/{NAME}_pre.jpg\nP01,2021-09-15,photo,media/{NAME}_post.png\n"
        f"P01,2021-02-15,scan,media/{NAME}_scan.ply\n")
    return folder


def files(folder):
    return sorted(folder.glob("*.csv"))


def test_deidentified_copies(sheets, tmp_path):
    originals = {p.name: sha(p) for p in (sheets / "media").iterdir()}
    for original in (sheets / "media").iterdir():  # the metadata to remove is really there
        assert NAME.encode() in original.read_bytes(), original
    with Image.open(sheets / "media" / f"{NAME}_pre.jpg") as im:
        assert im.getexif()[0x0112] == 6 and 0x8825 in im.getexif()
    with init_study(tmp_path / "study") as study:
        summary = study.import_files(files(sheets), deidentify=True)
        assert summary.added["media"] == 3
        with study.session() as s:
            stored = sorted(m.path for m in s.query(Media))
        copies = sorted((study.path / "media").iterdir())
        assert [f"media/{p.name}" for p in copies] == stored
        assert all(p.name.startswith("P01_") for p in copies)
        for path in study.path.rglob("*"):
            assert NAME not in path.name
            if path.is_file() and path.suffix != ".sqlite":
                assert NAME.encode() not in path.read_bytes(), path
        assert NAME not in repr(database_state(study.path))  # SQLite: the file's bytes; PostgreSQL: every row

        jpg = next(p for p in copies if p.suffix == ".jpg")
        with Image.open(jpg) as im:
            assert len(im.getexif()) == 0 and "exif" not in im.info and "icc_profile" not in im.info
            assert im.size == (384, 512)  # upright: the EXIF rotation was applied to the pixels
            upright = np.asarray(im.convert("RGB"), float)
        with Image.open(sheets / "media" / f"{NAME}_pre.jpg") as im:
            expected = np.asarray(__import__("PIL.ImageOps", fromlist=["x"]).exif_transpose(im).convert("RGB"), float)
        assert np.abs(upright - expected).mean() < 2.0  # one JPEG re-encoding at quality 95

        png = next(p for p in copies if p.suffix == ".png" and "photo" in p.name)
        with Image.open(png) as im:
            assert not any(k for k in im.info if k not in ("dpi",)), im.info
            assert np.array_equal(np.asarray(im.convert("RGB")),
                                  np.asarray(Image.open(sheets / "media" / f"{NAME}_post.png").convert("RGB")))

        ply = next(p for p in copies if p.suffix == ".ply")
        assert b"comment" not in ply.read_bytes().split(b"end_header")[0]
        back = trimesh.load(ply, process=False)
        original = datasets.load_sample("template")
        assert np.allclose(back.vertices, original.vertices_mm, atol=1e-5)
        assert np.array_equal(back.faces, original.faces)

        again = study.import_files(files(sheets), deidentify=True)
        assert not again.changed and again.unchanged["media"] == 3
        assert sorted((study.path / "media").iterdir()) == copies
        assert not list(study.path.glob(".import-staging-*"))
    assert {p.name: sha(p) for p in (sheets / "media").iterdir()} == originals


def test_a_refused_import_leaves_no_copies(sheets, tmp_path):
    with (sheets / "visits.csv").open("a") as fh:
        fh.write("P01,2099-01-01,follow-up\n")  # in the future
    with init_study(tmp_path / "study") as study:
        with pytest.raises(StudyImportError, match="visits.csv"):
            study.import_files(files(sheets), deidentify=True)
        assert not (study.path / "media").exists()
        assert not list(study.path.glob(".import-staging-*"))
        assert study.counts()["media"] == 0


def test_an_unreadable_photo_is_a_problem_with_its_row(sheets, tmp_path):
    # a JPEG's signature, then garbage: recognised as a photo, but it cannot be decoded
    (sheets / "media" / f"{NAME}_pre.jpg").write_bytes(b"\xff\xd8\xff\xe0" + (sheets / "patients.csv").read_bytes())
    with init_study(tmp_path / "study") as study:
        with pytest.raises(StudyImportError) as err:
            study.import_files(files(sheets), deidentify=True)
        assert "media.csv, row 2, column file: cannot de-identify" in str(err.value)


def test_a_text_file_is_not_a_photo(sheets, tmp_path):
    shutil.copy(sheets / "patients.csv", sheets / "media" / f"{NAME}_pre.jpg")  # text named .jpg
    with init_study(tmp_path / "study") as study:
        with pytest.raises(StudyImportError) as err:
            study.import_files(files(sheets), deidentify=True)
        assert "media.csv, row 2, column file:" in str(err.value) and "is not an image" in str(err.value)
