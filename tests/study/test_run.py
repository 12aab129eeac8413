"""`study run`, the endpoint table and landmark corrections, on a small study with known truth.

P01 has phantom scans: the symmetric meshmonk template with a 5,000 mm3 defect
carved into the left cheek at baseline and 2,000 mm3 at follow-up (3,000 mm3
restored), so the endpoint table must show a discrepancy change of about
-3,000 mm3 and a volume gain of about 3,000 mm3 (the scan issues' 10 %).
P02 has a photo without a face at follow-up (a failure recorded, the cohort
carries on). P03 has no follow-up visit (excluded with its reason).
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from databases import study_engine
from PIL import Image
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hemiface import datasets
from hemiface.study import (
    ENDPOINT_COLUMNS,
    correct_landmarks,
    endpoint_table,
    init_study,
    open_study,
    run_study,
    write_endpoints,
)

log = logging.getLogger(__name__)
EXAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "examples" / "study_minimal" / "media"
RESTORED_MM3 = 3000.0
#: P01's recorded volumes (surgeries.csv): injected fat and planned gain, ml.
INJECTED_ML, PLANNED_ML = 7.5, 3.2


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for volume, name in ((5000.0, "p01_pre.ply"), (2000.0, "p01_post.ply")):
        datasets.make_phantom("template", side="left", volume_mm3=volume).save(folder / name)
    photo = datasets.sample_photo_path("astronaut")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    Image.fromarray(rgb).resize((384, 384)).save(folder / "p01_pre.png")
    Image.fromarray(rgb).save(folder / "p01_post.png")
    shutil.copy(EXAMPLE_MEDIA / "P001_2021-01-10_front.png", folder / "p02_pre.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / "p02_post.png")  # no face
    shutil.copy(EXAMPLE_MEDIA / "P004_2023-01-16_front.png", folder / "p03_pre.png")
    return folder


def write_sheets(folder: Path, media: Path) -> list[Path]:
    folder.mkdir(parents=True)
    shutil.copytree(media, folder / "media")
    sheets = {
        "patients.csv": "patient_id,sex,birth_year,affected_side,guerrerosantos_stage,age_at_onset_years\n"
                        "P01,female,1990,left,2,12\nP02,male,1985,right,3,20\nP03,female,2000,left,1,15\n",
        # P01's flap came with 7.5 ml of fat (retention 3,000 / 7,500 mm3 = 40 %) and a planned gain of 3.2 ml
        "surgeries.csv": "patient_id,surgery_date,technique,is_initial,fat_injected_ml,planned_gain_ml\n"
                         "P01,2021-03-01,free_flap,yes,7.5,3.2\nP02,2021-04-01,fat_grafting,yes,10,\n"
                         "P03,2021-05-01,fat_grafting,yes,,\n",
        "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n"
                      "P02,2021-03-20,preoperative\nP02,2021-10-20,follow-up\nP03,2021-04-20,preoperative\n",
        "media.csv": "patient_id,visit_date,media_kind,file\n"
                     "P01,2021-02-15,photo,media/p01_pre.png\nP01,2021-09-15,photo,media/p01_post.png\n"
                     "P01,2021-02-15,scan,media/p01_pre.ply\nP01,2021-09-15,scan,media/p01_post.ply\n"
                     "P02,2021-03-20,photo,media/p02_pre.png\nP02,2021-10-20,photo,media/p02_post.png\n"
                     "P03,2021-04-20,photo,media/p03_pre.png\n",
        "complications.csv": "patient_id,visit_date,complication_type,severity\n"
                             "P01,2021-09-15,partial_flap_loss,major\nP01,2021-09-15,seroma,minor\n",
        "faceq.csv": "patient_id,visit_date,faceq_scale,score\nP01,2021-02-15,satisfaction_with_facial_appearance,40\n"
                     "P01,2021-09-15,satisfaction_with_facial_appearance,65\n",
    }
    for name, text in sheets.items():
        (folder / name).write_text(text)
    return [folder / name for name in sheets]


def make_study(root: Path, media: Path):
    files = write_sheets(root / "sheets", media)
    study = init_study(root / "study", inclusion_from=None, inclusion_to=None)
    study.import_files(files, user="tester")
    return study


@pytest.fixture(scope="module")
def done(tmp_path_factory, media, backend):  # backend: made again on each database
    """The study after one complete run, with the run's summary and the endpoint table."""
    study = make_study(tmp_path_factory.mktemp("run"), media)
    summary = run_study(study, jobs=1)
    table = endpoint_table(study)
    yield study, summary, table
    study.close()


def test_run_records_every_analysis_and_carries_on_after_a_failure(done):
    study, summary, _ = done
    # P01: 2 photos + 2 scans + 1 compare; P02: 2 photos (one fails); P03 not eligible
    assert (summary.jobs, summary.succeeded, summary.failed, summary.skipped) == (7, 6, 1, 0)
    (failure,) = summary.failures
    assert failure["patient_id"] == "P02" and failure["analysis"] == "photo_analyze"
    assert "face" in failure["message"]
    results = study.path / "results"
    assert not list(results.glob(".staging-*"))
    for name in ("measurements.json", "overlay.png", "landmarks.json"):
        assert len(list(results.glob(f"photo_analyze/*/{name}"))) == 3
    assert len(list(results.glob("scan_compare/*/comparison.json"))) == 1
    # output folders are named by content, never by patient id or file name
    for path in results.rglob("*"):
        assert "P0" not in path.name and "p01" not in path.name


def test_endpoints_reproduce_the_known_restored_volume(done):
    _, _, table = done
    assert tuple(table.columns[: len(ENDPOINT_COLUMNS)]) == ENDPOINT_COLUMNS
    assert list(table["patient_id"]) == ["P01", "P02"]
    p01 = table.set_index("patient_id").loc["P01"]
    log.info("P01 endpoints: discrepancy %.0f -> %.0f mm3 (change %.0f, truth -%.0f), gain %.0f mm3, defect %.0f mm3",
             p01.discrepancy_baseline_mm3, p01.discrepancy_followup_mm3, p01.discrepancy_change_mm3, RESTORED_MM3,
             p01.volume_gain_mm3, p01.defect_volume_baseline_mm3)
    assert p01.discrepancy_change_mm3 == pytest.approx(-RESTORED_MM3, rel=0.10)
    assert p01.volume_gain_mm3 == pytest.approx(RESTORED_MM3, rel=0.10)
    assert p01.defect_volume_baseline_mm3 == pytest.approx(5000.0, rel=0.10)
    # scan compare's registration SDs reach the table (the phantoms' follow-up registers almost exactly)
    log.info("P01 registration SDs: gain %.2f mm3, discrepancy change %.2f mm3", p01.volume_gain_registration_sd_mm3,
             p01.discrepancy_change_registration_sd_mm3)
    assert 0.0 <= p01.volume_gain_registration_sd_mm3 < 0.05 * RESTORED_MM3
    assert 0.0 <= p01.discrepancy_change_registration_sd_mm3 < 0.05 * RESTORED_MM3
    # ... and the SDs with what the face region's edge may cut off (a round dent well inside it: little)
    assert p01.volume_gain_registration_sd_mm3 <= p01.volume_gain_uncertainty_mm3 < 0.05 * RESTORED_MM3
    assert p01.discrepancy_change_registration_sd_mm3 <= p01.discrepancy_change_uncertainty_mm3 < 0.05 * RESTORED_MM3
    assert p01.discrepancy_change_percent == pytest.approx(
        100 * p01.discrepancy_change_mm3 / p01.discrepancy_baseline_mm3 * p01.discrepancy_baseline_percent / 100, rel=1e-9)
    assert p01.discrepancy_baseline_percent > 0 and pd.isna(p01.missing_3d_reason)
    assert p01.complications_followup == "partial_flap_loss;seroma" and p01.complications_followup_n == 2
    assert bool(p01.major_complication)
    assert p01.faceq_satisfaction_with_facial_appearance_change == 25.0
    assert p01.followup_interval_days == 198 and p01.age_at_surgery_years == 31 and p01.years_since_onset == 19


def test_graft_retention_is_the_net_gain_over_the_injected_volume(done):
    """Phantom follow-up: 3,000 mm3 survive of 7.5 ml injected (40 %); planned 3.2 ml (93.75 % achieved)."""
    from hemiface.study import graft_retention_percent

    assert ENDPOINT_COLUMNS[-8:] == (
        "fat_injected_ml", "adm_sheets", "adm_thickness_mm", "net_volume_gain_mm3", "graft_retention_percent",
        "planned_gain_mm3", "achieved_of_planned_percent", "missing_retention_reason")
    assert graft_retention_percent(3000.0, 7.5) == 40.0  # by hand: 100 x 3,000 / 7,500
    _, _, table = done
    p01, p02 = (table.set_index("patient_id").loc[p] for p in ("P01", "P02"))
    # exactly the stored comparison's net gain over what was injected ...
    assert p01.net_volume_gain_mm3 == p01.discrepancy_baseline_mm3 - p01.discrepancy_followup_mm3
    assert p01.graft_retention_percent == 100.0 * p01.net_volume_gain_mm3 / (INJECTED_ML * 1000.0)
    assert p01.achieved_of_planned_percent == 100.0 * p01.net_volume_gain_mm3 / (PLANNED_ML * 1000.0)
    assert (p01.fat_injected_ml, p01.planned_gain_mm3) == (INJECTED_ML, PLANNED_ML * 1000.0)
    # ... and the known surviving volume within the scan comparison's accuracy
    log.info("P01 retention %.1f %% (truth %.1f %%), achieved %.1f %% of planned (truth %.2f %%)",
             p01.graft_retention_percent, 100 * RESTORED_MM3 / (INJECTED_ML * 1000),
             p01.achieved_of_planned_percent, 100 * RESTORED_MM3 / (PLANNED_ML * 1000))
    assert p01.graft_retention_percent == pytest.approx(100 * RESTORED_MM3 / (INJECTED_ML * 1000), rel=0.10)
    assert pd.isna(p01.missing_retention_reason) and pd.isna(p01.adm_sheets) and np.isnan(p01.adm_thickness_mm)
    # P02 injected fat but has no scans: missing, with the 3D reason
    assert p02.fat_injected_ml == 10.0 and np.isnan(p02.graft_retention_percent)
    assert p02.missing_retention_reason == "no scans" and np.isnan(p02.achieved_of_planned_percent)


def test_endpoint_ratios_are_the_photo_analyses(done, media):
    from hemiface.photo import analyze_photo

    _, _, table = done
    p01 = table.set_index("patient_id").loc["P01"]
    pre = analyze_photo(media / "p01_pre.png", affected="left").symmetry_ratio_percent
    post = analyze_photo(media / "p01_post.png", affected="left").symmetry_ratio_percent
    assert p01.symmetry_ratio_baseline_percent == pytest.approx(pre, abs=1e-9)
    assert p01.symmetry_ratio_change == pytest.approx(post - pre, abs=1e-9)


def test_missing_values_say_why_and_exclusions_are_counted(done):
    _, _, table = done
    p02 = table.set_index("patient_id").loc["P02"]
    assert np.isnan(p02.symmetry_ratio_followup_percent) and np.isnan(p02.symmetry_ratio_change)
    assert "follow-up photo analysis failed" in p02.missing_2d_reason
    assert p02.missing_3d_reason == "no scans"
    flow = table.attrs["flow"]
    assert flow["screened"] == 3 and flow["eligible"] == 2 and flow["analysed_2d"] == 1 and flow["analysed_3d"] == 1
    assert flow["excluded"] == {"no_followup_visit": 1}
    assert flow["excluded_patients"][0]["patient_id"] == "P03"


def test_rerun_without_change_redoes_nothing(done):
    study, _, _ = done
    with study.session() as s:
        before = s.execute(__import__("sqlalchemy").text("SELECT id, created_utc FROM analysis_results")).all()
    again = run_study(study, jobs=1)
    assert (again.succeeded, again.failed, again.skipped) == (0, 0, 7)
    with study.session() as s:
        assert s.execute(__import__("sqlalchemy").text("SELECT id, created_utc FROM analysis_results")).all() == before


def test_write_endpoints_csv_and_xlsx(done, tmp_path):
    _, _, table = done
    written = write_endpoints(table, tmp_path / "endpoints.csv")
    assert [p.name for p in written] == ["endpoints_flow.csv", "endpoints_excluded.csv", "endpoints_rules.json",
                                         "endpoints.csv"]
    back = pd.read_csv(tmp_path / "endpoints.csv")
    assert list(back.columns) == list(table.columns)
    assert back["volume_gain_mm3"].iloc[0] == pytest.approx(table["volume_gain_mm3"].iloc[0])
    write_endpoints(table, tmp_path / "endpoints.xlsx")
    sheets = pd.read_excel(tmp_path / "endpoints.xlsx", sheet_name=None)
    assert set(sheets) == {"endpoints", "flow", "excluded", "rules"}
    assert sheets["endpoints"]["patient_id"].tolist() == ["P01", "P02"]
    assert dict(zip(sheets["flow"]["step"], sheets["flow"]["patients"]))["excluded: no_followup_visit"] == 1
    with pytest.raises(Exception, match="already holds"):
        write_endpoints(table, tmp_path / "endpoints.xlsx")


def test_correction_recomputes_and_is_audited(tmp_path, media):
    from hemiface.photo import analyze_photo

    with make_study(tmp_path, media) as study:
        run_study(study, jobs=1)
        auto = json.loads(next((study.path / "results" / "photo_analyze").glob("*/landmarks.json")).read_text())
        # a person moves the affected (left) cheek outline 5 % wider: the ratio must rise
        src = next(p for p in (study.path / "results" / "photo_analyze").glob("*/measurements.json")
                   if json.loads(p.read_text())["provenance"]["inputs"]["photo"]["sha256"]
                   == __import__("hemiface")._provenance.sha256_file(media / "p01_post.png"))
        edited = json.loads((src.parent / "landmarks.json").read_text())
        assert edited.keys() == auto.keys()
        direct_before = analyze_photo(media / "p01_post.png", affected="left", landmarks=src.parent / "landmarks.json")
        outline = np.asarray(edited["outline"], float)
        mid_x = float(np.mean([edited["points"]["pupil_right"][0], edited["points"]["pupil_left"][0]]))
        right_of_image = outline[:, 0] > mid_x  # the patient's left
        outline[right_of_image, 0] = mid_x + 1.05 * (outline[right_of_image, 0] - mid_x)
        edited["outline"] = outline.tolist()
        corrected = tmp_path / "corrected_landmarks.json"
        corrected.write_text(json.dumps(edited))
        photo_bytes = (study.path.parent / "sheets" / "media" / "p01_post.png").read_bytes()

        done = correct_landmarks(study, "P01", __import__("datetime").date(2021, 9, 15), corrected,
                                 reason="cheek outline placed on the hair", user="dr_a")
        assert done["status"] == "ok"
        assert done["symmetry_ratio_before_percent"] == pytest.approx(direct_before.symmetry_ratio_percent, abs=1e-6)
        assert done["symmetry_ratio_after_percent"] > done["symmetry_ratio_before_percent"] + 2
        assert (study.path.parent / "sheets" / "media" / "p01_post.png").read_bytes() == photo_bytes
        table = endpoint_table(study)
        p01 = table.set_index("patient_id").loc["P01"]
        assert p01.symmetry_ratio_followup_percent == pytest.approx(done["symmetry_ratio_after_percent"])
        again = run_study(study, jobs=1)
        assert again.succeeded == 0  # the correction's analysis is already done
        with study.engine.connect() as db:  # "user", quoted: a bare user is PostgreSQL's current user
            user, action, details = db.execute(text(
                """SELECT "user", action, details_json FROM audit WHERE action='correct_landmarks'""")).one()
        details = json.loads(details)
        assert user == "dr_a" and details["reason"] == "cheek outline placed on the hair"
        assert details["symmetry_ratio_after_percent"] == pytest.approx(done["symmetry_ratio_after_percent"])


def test_correction_refuses_a_bad_landmark_file(tmp_path, media):
    from hemiface.study import StudyError

    with make_study(tmp_path, media) as study:
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        with pytest.raises(StudyError, match="bad.json"):
            correct_landmarks(study, "P01", __import__("datetime").date(2021, 9, 15), bad, reason="x")
        assert not (study.path / "corrections").exists()


def test_changed_or_missing_media_fail_with_a_message(tmp_path, media):
    with make_study(tmp_path, media) as study:
        sheets_media = study.path.parent / "sheets" / "media"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(sheets_media / "p02_pre.png")  # changed after import
        (sheets_media / "p02_post.png").unlink()
        summary = run_study(study, jobs=1)
        messages = {f["visit_date"]: f["message"] for f in summary.failures if f["patient_id"] == "P02"}
        assert "changed since it was imported" in messages["2021-03-20"]
        assert "missing" in messages["2021-10-20"]
        p02 = endpoint_table(study).set_index("patient_id").loc["P02"]
        assert "changed since it was imported" in p02.missing_2d_reason


def _ok_rows(folder: Path) -> list:
    """The study's stored results, looked at from outside (while a run may hold the write lock)."""
    engine = study_engine(folder)
    try:
        with engine.connect() as con:
            return con.execute(text("SELECT id, created_utc, analysis FROM analysis_results WHERE status='ok' "
                                    "ORDER BY id")).all()
    except OperationalError:
        return []
    finally:
        engine.dispose()


def kill_after_first_result(path: Path, options: list[str], *, env=None, timeout_s: float, poll_s: float):
    """Start `hemiface study run` on ``path`` in a process, SIGKILL it once a result is recorded.

    Returns (the results recorded by then, the process's stderr).
    """
    proc = subprocess.Popen([sys.executable, "-m", "hemiface.cli", "study", "run", str(path), *options],
                            env=dict(os.environ, HEMIFACE_PROGRESS="0", **(env or {})), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _ok_rows(path) and proc.poll() is None:
        time.sleep(poll_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return _ok_rows(path), proc.stderr.read()


def test_killed_run_loses_nothing_and_redoes_nothing(tmp_path, media):
    with make_study(tmp_path, media) as study:
        path = study.path
    finished, _ = kill_after_first_result(path, ["--jobs", "1"], timeout_s=240, poll_s=0.05)
    assert 1 <= len(finished) < 6, "the run must be killed part-way"
    with open_study(path) as study:
        summary = run_study(study, jobs=1)
        assert summary.skipped == len(finished)
        assert summary.succeeded == 6 - len(finished)
        assert _ok_rows(path)[: len(finished)] == finished
        assert not list((path / "results").glob(".staging-*"))
        assert len(list((path / "results").glob("*/*/measurements.json"))) == 5
        assert len(list((path / "results").glob("*/*/comparison.json"))) == 1
