"""The synthetic study generator: a folder the study import accepts, with truth that measurements recover.

Truth is checked against independent measurement: hemiface.photo.analyze_photo
on the warped photos (landmarks found afresh on each), hemiface.scan on the
carved scans, and the study's own visit rules on the spreadsheets.
"""

import datetime as dt
import hashlib
import logging
import time

import numpy as np
import pandas as pd
import pytest

from hemiface import datasets
from hemiface._errors import OutputExistsError
from hemiface._synthetic import TRUTH_COLUMN_DOCS
from hemiface._validate import OptionError

log = logging.getLogger(__name__)
D = dt.date
N_PATIENTS, N_WITH_SCANS = 8, 3
#: The photo analysis's tolerance on simulated atrophy (tests/photo/test_photo_atrophy.py).
RATIO_TOLERANCE_POINTS = 2.0


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    started = time.perf_counter()
    study = datasets.synthetic_study(tmp_path_factory.mktemp("synth") / "study_data", n_patients=N_PATIENTS,
                                     n_with_scans=N_WITH_SCANS, seed=0)
    log.info("synthetic study of %d patients (%d with scans) generated in %.1f s",
             N_PATIENTS, N_WITH_SCANS, time.perf_counter() - started)
    return study


def digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_truth_table_columns_are_frozen(small):
    assert datasets.TRUTH_COLUMNS == (
        "patient_id", "intended_eligible", "intended_exclusion_reason", "technique", "affected_side",
        "guerrerosantos_stage", "sex", "age_at_surgery_years", "initial_surgery_date", "preop_visit_date",
        "followup_visit_date", "correction_fraction", "photo_base", "photo_base_mirrored", "base_ratio_percent",
        "atrophy_factor_baseline", "atrophy_factor_followup", "expected_ratio_baseline_percent",
        "expected_ratio_followup_percent", "expected_ratio_change_points", "baseline_photo", "followup_photo",
        "has_scans", "scan_base", "defect_centre_lateral_mm", "defect_centre_height_mm", "defect_radius_mm",
        "carved_volume_baseline_mm3", "carved_volume_followup_mm3", "volume_restored_mm3",
        "carved_max_depth_baseline_mm", "followup_scan_rotation_deg", "followup_scan_translation_mm", "baseline_scan",
        "followup_scan",
        "faceq_baseline", "faceq_followup", "expected_faceq_change", "complications",
        "retention_fraction", "fat_injected_ml", "expected_retention_percent", "planned_gain_ml",
        "expected_achieved_of_planned_percent")
    assert tuple(small.truth.columns) == datasets.TRUTH_COLUMNS
    assert tuple(TRUTH_COLUMN_DOCS) == datasets.TRUTH_COLUMNS  # every column documented, in order
    columns_md = (small.path / "truth" / "COLUMNS.md").read_text()
    assert all(f"| `{c}` |" in columns_md for c in datasets.TRUTH_COLUMNS)
    assert list(small.truth["patient_id"]) == [f"P{i:03d}" for i in range(1, N_PATIENTS + 1)]
    assert small.truth["has_scans"].sum() == N_WITH_SCANS
    assert sorted(p.name for p in small.path.iterdir()) == sorted(
        ["README.md", "media", "truth", *(p.name for p in small.spreadsheets)])


def test_the_study_import_accepts_it_and_the_rules_find_the_intended_patients(small, tmp_path):
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.study import eligibility, flow_counts, init_study, open_study

    init_study(tmp_path / "study", **small.study_settings()).close()
    # As a user would: every CSV of the folder, from the command line.
    result = CliRunner().invoke(app, ["study", "import", str(tmp_path / "study"),
                                      *sorted(str(p) for p in small.path.glob("*.csv"))])
    assert result.exit_code == 0, result.output
    truth = small.truth
    with open_study(tmp_path / "study") as study:
        counts = study.counts()
        table = eligibility(study)
    media = pd.read_csv(small.path / "media.csv")
    assert counts["patients"] == N_PATIENTS
    assert counts["media"] == len(media) == 2 * N_PATIENTS + 2 * N_WITH_SCANS

    rows = table.set_index("patient_id")
    for t in truth.itertuples():
        r = rows.loc[t.patient_id]
        assert bool(r["eligible"]) == t.intended_eligible, t.patient_id
        reason = None if t.intended_eligible else t.intended_exclusion_reason
        assert r["exclusion_reason"] == reason, t.patient_id
        assert r["technique"] == t.technique and r["initial_surgery_date"] == t.initial_surgery_date
        if t.intended_eligible:
            assert (r["baseline_date"], r["followup_date"]) == (t.preop_visit_date, t.followup_visit_date)
    reasons = truth["intended_exclusion_reason"].value_counts()
    assert set(reasons.index) == {"outside_inclusion_window", "no_baseline_visit", "no_followup_visit"}
    screened = N_PATIENTS
    in_window = screened - reasons["outside_inclusion_window"]
    with_baseline = in_window - reasons["no_baseline_visit"]
    with_followup = with_baseline - reasons["no_followup_visit"]
    assert flow_counts(table) == {"screened": screened, "with_initial_surgery": screened,
                                  "in_inclusion_window": in_window, "with_baseline": with_baseline,
                                  "with_followup": with_followup, "eligible": with_followup}
    assert with_followup == truth["intended_eligible"].sum() == N_PATIENTS - 3


def test_same_seed_same_study_other_seed_other_study(small, tmp_path):
    again = datasets.synthetic_study(tmp_path / "again", n_patients=N_PATIENTS, n_with_scans=N_WITH_SCANS, seed=0)
    other = datasets.synthetic_study(tmp_path / "other", n_patients=N_PATIENTS, n_with_scans=N_WITH_SCANS, seed=1)
    first, second, third = digests(small.path), digests(again.path), digests(other.path)
    assert first == second
    assert len(first) == 6 + 4 + 2 * N_PATIENTS + 2 * N_WITH_SCANS  # sheets, README and truth (3), media
    media = {k: v for k, v in first.items() if k.startswith("media/")}
    assert not set(media.values()) & set(third.values())  # no image or scan is repeated
    for sheet in ("patients.csv", "visits.csv", "media.csv", "truth/truth.csv"):
        assert first[sheet] != third[sheet]
    pd.testing.assert_frame_equal(small.truth, again.truth)
    pd.testing.assert_frame_equal(datasets.read_synthetic_truth(small.truth_path), small.truth)


def test_photos_measure_the_simulated_ratios(small):
    """analyze_photo finds the landmarks afresh on each warped photo; truth comes from the warp's control points."""
    from hemiface.photo import analyze_photo

    truth = small.truth
    # The most severe atrophy on each base face, both visits.
    chosen = truth.sort_values("atrophy_factor_baseline", ascending=False).groupby("photo_base").head(1)
    assert len(chosen) == 2
    for t in chosen.itertuples():
        measured = {}
        for visit in ("baseline", "followup"):
            r = analyze_photo(small.path / getattr(t, f"{visit}_photo"), affected=t.affected_side)
            measured[visit] = r.symmetry_ratio_percent
            expected = getattr(t, f"expected_ratio_{visit}_percent")
            log.info("%s %s (%s, factor %.3f): ratio %.2f %%, truth %.2f %% (%+.2f points)", t.patient_id, visit,
                     t.photo_base, getattr(t, f"atrophy_factor_{visit}"), measured[visit], expected,
                     measured[visit] - expected)
            assert measured[visit] == pytest.approx(expected, abs=RATIO_TOLERANCE_POINTS)
        change = measured["followup"] - measured["baseline"]
        assert change == pytest.approx(t.expected_ratio_change_points, abs=RATIO_TOLERANCE_POINTS)
        assert change > 0  # the treatment is visible
    # The truth's own order: narrowed at baseline, less so at follow-up, never wider than the base face.
    for t in truth.itertuples():
        assert t.expected_ratio_baseline_percent < t.expected_ratio_followup_percent < t.base_ratio_percent


def test_scans_measure_the_carved_volumes(small):
    """The symmetric template: the defect volume is the carved one; every face: the gain is the volume restored."""
    from hemiface.scan import analyze_scan, compare_scans

    truth = small.truth.set_index("scan_base")
    t = truth.loc["template"]
    pre = analyze_scan(small.path / t["baseline_scan"], affected=t["affected_side"])
    log.info("template baseline: defect %.0f mm3, carved %.0f mm3", pre.defect_volume_mm3,
             t["carved_volume_baseline_mm3"])
    assert pre.affected_side == t["affected_side"]
    assert pre.defect_volume_mm3 == pytest.approx(t["carved_volume_baseline_mm3"], rel=0.03)
    assert pre.max_depth_mm == pytest.approx(t["carved_max_depth_baseline_mm"], rel=0.1)
    t = truth.loc["james"]  # a real head scan: its natural asymmetry cancels in the change
    change = compare_scans(small.path / t["baseline_scan"], small.path / t["followup_scan"],
                           affected=t["affected_side"])
    log.info("james: gain %.0f mm3, volume restored %.0f mm3; follow-up moved %.1f deg, %.1f mm (registration RMS "
             "%.2f mm)", change.gain.volume_mm3, t["volume_restored_mm3"], t["followup_scan_rotation_deg"],
             t["followup_scan_translation_mm"], change.registration_rms_mm)
    assert change.gain.volume_mm3 == pytest.approx(t["volume_restored_mm3"], rel=0.03)  # as in scan/test_compare.py


def test_written_media_carry_no_metadata(small):
    from PIL import Image

    photos = sorted(small.media_dir.glob("*.jpg"))
    scans = sorted(small.media_dir.glob("*.ply"))
    assert len(photos) == 2 * N_PATIENTS and len(scans) == 2 * N_WITH_SCANS
    for path in photos:
        with Image.open(path) as image:
            assert image.format == "JPEG" and max(image.size) <= 800
            assert len(image.getexif()) == 0
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
        data = path.read_bytes()
        assert b"Exif" not in data and b"\xff\xe1" not in data[:4096]  # no APP1 segment
    for path in scans:
        header = path.read_bytes()[:400].split(b"end_header")[0].decode("ascii")
        comments = [line for line in header.splitlines() if line.startswith(("comment", "obj_info"))]
        assert comments == ["comment hemiface synthetic scan, millimetres"]


def test_the_plan_is_realistic():
    """A large cohort's plan (no media): ranges, visit windows, and the techniques' different effects."""
    from hemiface._synthetic import TECHNIQUE_EFFECTS, _plan_patients
    from hemiface.study import add_calendar_months

    window = (D(2020, 1, 1), D(2023, 12, 31))
    plan = _plan_patients(np.random.default_rng(5), n_patients=300, n_with_scans=100,
                          techniques=("fat_grafting", "free_flap"), effects=TECHNIQUE_EFFECTS, inclusion=window,
                          include_ineligible=True, baseline_window_days=90, followup_months=6)
    table = pd.DataFrame(plan)
    assert table["age_at_surgery"].between(10, 45).all()
    assert set(table["affected_side"]) == {"left", "right"} and set(table["sex"]) == {"female", "male"}
    assert set(table["stage"]) == {"I", "II", "III", "IV"}
    assert table["reason"].value_counts().to_dict() == {
        "outside_inclusion_window": 10, "no_baseline_visit": 10, "no_followup_visit": 10}
    ok = table[table["reason"].isna()]
    assert ok["surgery"].between(*window).all()
    assert ((ok["surgery"] - ok["preop"]).map(lambda d: d.days)).between(1, 90).all()
    for p in ok.itertuples():
        assert add_calendar_months(p.surgery, 6) <= p.followup <= add_calendar_months(p.surgery, 14)
    restored = table["volume_baseline_mm3"] * table["correction"]
    by_technique = restored.groupby(table["technique"]).mean()
    log.info("mean volume restored by technique (mm3): %s", by_technique.round().to_dict())
    assert by_technique["free_flap"] > 1.3 * by_technique["fat_grafting"]
    assert table.loc[table["scan_base"].notna(), "reason"].isna().all()  # scans go to eligible patients first


def test_refuses_a_non_empty_destination_and_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    from hemiface import _synthetic

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not an empty folder"):
        datasets.synthetic_study(occupied, n_patients=2, n_with_scans=0)
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    made = datasets.synthetic_study(empty, n_patients=1, n_with_scans=0, seed=3)
    assert made.path == empty and len(made.truth) == 1 and (empty / "patients.csv").is_file()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_synthetic, "_make_scans", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        datasets.synthetic_study(tmp_path / "never", n_patients=2, n_with_scans=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "occupied"]  # no partial folder left


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_with_scans=5, n_patients=4), "n_with_scans must be at most n_patients"),
    (dict(n_patients=0), "n_patients must be a whole number >= 1"),
    (dict(techniques=("fat_grafting", "laser")), "technique must be one of"),
    (dict(inclusion=(D(2023, 1, 1), D(2022, 1, 1))), "inclusion starts"),
    (dict(inclusion=("2020-01-01", D(2022, 1, 1))), r"inclusion\[0\] must be a datetime.date"),
])
def test_bad_parameters_name_themselves(tmp_path, kwargs, match):
    with pytest.raises(OptionError, match=match):
        datasets.synthetic_study(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_dates_beyond_today_are_refused(tmp_path):
    from hemiface._errors import HemifaceError

    recent = D.today() - dt.timedelta(days=30)
    with pytest.raises(HemifaceError, match="after today"):
        datasets.synthetic_study(tmp_path / "s", n_patients=3, n_with_scans=0,
                                 inclusion=(recent - dt.timedelta(days=300), recent))
    assert not (tmp_path / "s").exists()
