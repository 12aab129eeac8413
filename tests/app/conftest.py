"""A small study for the web workspace, built and run once per session.

P01: the bundled astronaut photo at baseline (downscaled) and follow-up; both analyse.
P02: a face at baseline, a grey picture without a face at follow-up (a failure with its message).
P03: no follow-up visit (excluded). Hostile text arrives through the normal importer
(a surgery note and the study's name hold ``<script>``), and one patient id that the
importer would refuse is written into the database directly, to check that pages escape it.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_helpers import HOSTILE


def _sheets(folder: Path) -> list[Path]:
    from hemiface import datasets

    media = folder / "media"
    media.mkdir(parents=True)
    rgb = np.asarray(Image.open(datasets.sample_photo_path("astronaut")).convert("RGB"))
    Image.fromarray(rgb).resize((384, 384)).save(media / "p01_pre.png")
    Image.fromarray(rgb).save(media / "p01_post.png")
    Image.fromarray(rgb).resize((448, 448)).save(media / "p02_pre.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(media / "p02_post.png")  # no face
    Image.fromarray(rgb).resize((320, 320)).save(media / "p03_pre.png")
    sheets = {
        "patients.csv": "patient_id,sex,birth_year,affected_side,guerrerosantos_stage,age_at_onset_years\n"
                        "P01,female,1990,left,2,12\nP02,male,1985,right,3,20\nP03,female,2000,left,1,15\n",
        "surgeries.csv": "patient_id,surgery_date,technique,is_initial,notes\n"
                         f"P01,2021-03-01,free_flap,yes,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\"\n"
                         "P02,2021-04-01,fat_grafting,yes,\nP03,2021-05-01,fat_grafting,yes,\n",
        "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n"
                      "P02,2021-03-20,preoperative\nP02,2021-10-20,follow-up\nP03,2021-04-20,preoperative\n",
        "media.csv": "patient_id,visit_date,media_kind,file\n"
                     "P01,2021-02-15,photo,media/p01_pre.png\nP01,2021-09-15,photo,media/p01_post.png\n"
                     "P02,2021-03-20,photo,media/p02_pre.png\nP02,2021-10-20,photo,media/p02_post.png\n"
                     "P03,2021-04-20,photo,media/p03_pre.png\n",
        "complications.csv": "patient_id,visit_date,complication_type,severity\nP01,2021-09-15,seroma,minor\n",
        "faceq.csv": "patient_id,visit_date,faceq_scale,score\nP01,2021-02-15,satisfaction_with_facial_appearance,40\n"
                     "P01,2021-09-15,satisfaction_with_facial_appearance,65\n",
    }
    for name, text in sheets.items():
        (folder / name).write_text(text)
    return [folder / name for name in sheets]


@pytest.fixture(scope="session")
def built_study(tmp_path_factory) -> Path:
    """The study folder after one complete `study run` (do not write to it: copy it with ``study_dir``)."""
    from hemiface.study import init_study, run_study
    from hemiface.study.models import Patient

    from app_helpers import HOSTILE_ID

    root = tmp_path_factory.mktemp("appstudy")
    files = _sheets(root / "sheets")
    with init_study(root / "study", name=f"web {HOSTILE} study", inclusion_from=None, inclusion_to=None) as study:
        study.import_files(files, user="tester")
        run_study(study, jobs=1)
        with study.session() as session, session.begin():
            session.add(Patient(pseudonym=HOSTILE_ID, sex="female", birth_year=1990, affected_side="left"))
    return root / "study"


@pytest.fixture
def study_dir(built_study, tmp_path) -> Path:
    """A private copy of the built study (media stay where they are) that a test may change."""
    dest = tmp_path / "study"
    shutil.copytree(built_study, dest)
    return dest


@pytest.fixture
def client(built_study):
    """A test client on the shared study, served on 127.0.0.1 (no token). Read-only use."""
    from hemiface.app import create_app

    app = create_app(built_study)
    app.testing = True
    yield app.test_client()
    app.extensions["hemiface"]["study"].close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests keep their screenshots (test-artifacts/app/; see ``helpers.artifact_folder``)."""
    from helpers import artifact_folder

    return artifact_folder("app")
