"""patient_report and `--report`: a one-page PDF from each kind of result folder, made by the real analyses."""

import json
import shutil

import pytest
from PIL import Image
from report_helpers import SCAN_POST, SCAN_PRE, pdf_pages
from typer.testing import CliRunner

from hemiface._errors import InputFileError, OutputExistsError
from hemiface.report import ForbiddenContentError, patient_report
from hemiface.report._patient import _compare_rows, _photo_rows, _scan_rows, result_kind
from hemiface.report._report import drop_title_band


@pytest.mark.parametrize("kind", ["scan_analyze", "scan_compare", "photo_analyze"])
def test_cli_report_flag_writes_a_one_page_pdf(results, kind):
    folder = results[kind]
    assert result_kind(folder) == kind
    pdf = folder / "report.pdf"
    assert pdf_pages(pdf) == 1
    data = pdf.read_bytes()
    # no input file name (the scan files carry a patient's name here) in the PDF's plain-text parts (document
    # information, metadata); the page text itself is font-subset encoded, so the guard (below) covers that
    for name in (SCAN_PRE, SCAN_POST, "astronaut.png"):
        assert name.encode() not in data
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no staging folder left


@pytest.mark.parametrize("kind", ["scan_analyze", "scan_compare", "photo_analyze"])
def test_patient_report_is_one_page_and_refuses_to_overwrite(tmp_path, results, kind):
    path = patient_report(results[kind], tmp_path / "chart.pdf", patient_id="HFA-007")
    assert pdf_pages(path) == 1
    with pytest.raises(OutputExistsError):
        patient_report(results[kind], path)
    assert pdf_pages(patient_report(results[kind], path, overwrite=True)) == 1


def test_cli_report_refuses_an_existing_report_before_any_work(results, tmp_path):
    from hemiface import datasets
    from hemiface.cli import app

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.pdf").write_bytes(b"old")
    run = CliRunner().invoke(app, ["photo", "analyze", str(datasets.sample_photo_path("astronaut")), "--affected", "left",
                                "--out", str(out), "--report"])
    assert run.exit_code == 1 and "report.pdf" in run.output
    assert sorted(p.name for p in out.iterdir()) == ["report.pdf"] and (out / "report.pdf").read_bytes() == b"old"


def test_key_numbers_are_the_measurements(results):
    m = json.loads((results["scan_analyze"] / "measurements.json").read_text())
    rows = dict(_scan_rows(m))
    assert rows["Defect volume"].startswith(f"{m['defect_volume_mm3']:,.0f} mm\u00b3")
    assert rows["Maximum depth"] == f"{m['max_depth_mm']:.1f} mm"
    assert rows[f"Area deeper than {m['threshold_mm']:g} mm"] == f"{m['area_deeper_than_threshold_mm2']:,.0f} mm\u00b2"
    assert rows["Volumetric discrepancy"].startswith(f"{m['volumetric_discrepancy_mm3']:,.0f} mm\u00b3 (")
    # the phantom's carved defect is 5,000 mm3: the page shows about that
    assert 4500 < float(rows["Defect volume"].split()[0].replace(",", "")) < 5500
    # the dent is centred on the malar zone (22 mm radius: it reaches the neighbours): the largest zone first
    assert rows["Defect by zone (largest; % of the discrepancy)"].startswith(
        f"malar {m['zone_malar_defect_volume_mm3']:,.0f} mm\u00b3 ({100 * m['zone_malar_discrepancy_share']:.0f} %), ")
    c = json.loads((results["scan_compare"] / "comparison.json").read_text())
    rows = dict(_compare_rows(c))
    assert rows["Volume gained"].startswith(f"{c['volume_gain_mm3']:,.0f} mm\u00b3")
    assert 2500 < float(rows["Volume gained"].split()[0].replace(",", "")) < 3500  # 5,000 -> 2,000 mm3 phantoms
    assert (f"\u00b1 {c['volume_gain_uncertainty_mm3']:,.0f} mm\u00b3, 1 SD: registration "
            f"{c['volume_gain_registration_sd_mm3']:,.0f}, region edge {c['volume_gain_edge_sd_mm3']:,.0f}") \
        in rows["Volume gained"]
    old = {k: v for k, v in c.items() if k not in ("volume_gain_uncertainty_mm3", "volume_gain_edge_sd_mm3")}
    assert "; registration \u00b1 " in dict(_compare_rows(old))["Volume gained"]  # written before 2026-12-04
    assert rows["Flags"] == (", ".join(f.replace("_", " ") for f in c["flags"]) or "none")
    assert "Flags" not in dict(_compare_rows({k: v for k, v in old.items() if k != "flags"}))
    assert dict(_compare_rows(dict(c, flags=["gain_reaches_region_edge"])))["Flags"] == "gain reaches region edge"
    assert rows["Discrepancy change"].startswith(f"{c['discrepancy_change_mm3']:+,.0f} mm\u00b3")
    assert rows["Gained by zone (largest)"].startswith(f"malar {c['zone_malar_volume_gained_mm3']:,.0f} mm\u00b3")
    p = json.loads((results["photo_analyze"] / "measurements.json").read_text())
    rows = dict(_photo_rows(p))
    assert rows["Symmetry ratio"].startswith(f"{p['symmetry_ratio_percent']:.1f} %")
    assert rows["Pose and quality flags"] == (", ".join(f.replace("_", " ") for f in p["flags"]) or "none")
    p["flags"] = ["yaw_beyond_limit"]
    assert dict(_photo_rows(p))["Pose and quality flags"] == "yaw beyond limit"


def test_input_file_names_are_guarded(results, tmp_path):
    """A file name that slipped into a shown field stops the report (the names are forbidden automatically)."""
    folder = tmp_path / "photo"
    shutil.copytree(results["photo_analyze"], folder, ignore=shutil.ignore_patterns("report.pdf"))
    m = json.loads((folder / "measurements.json").read_text())
    m["midline"] = m["provenance"]["inputs"]["photo"]["file"]
    (folder / "measurements.json").write_text(json.dumps(m))
    with pytest.raises(ForbiddenContentError):
        patient_report(folder, tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_not_a_result_folder(tmp_path, results):
    with pytest.raises(InputFileError, match="not a hemiface result folder"):
        patient_report(tmp_path, tmp_path / "r.pdf")
    with pytest.raises(InputFileError, match="not a folder"):
        patient_report(tmp_path / "missing", tmp_path / "r.pdf")
    folder = tmp_path / "broken"
    shutil.copytree(results["scan_analyze"], folder)
    (folder / "measurements.json").write_text("{}")
    with pytest.raises(InputFileError, match="incomplete"):
        patient_report(folder, tmp_path / "r.pdf")


def _axes_line(gray):
    """Row of the top axes line, and the left and right ends of its long dark runs."""
    import numpy as np

    top = int(np.flatnonzero((gray[: gray.shape[0] // 2] < 80).mean(axis=1) >= 0.3)[0])
    on = np.r_[False, gray[top] < 80, False]
    starts, ends = np.flatnonzero(~on[:-1] & on[1:]), np.flatnonzero(on[:-1] & ~on[1:])
    long = (ends - starts) >= 50
    return top, int(starts[long][0]), int(ends[long][-1])


@pytest.mark.parametrize("name", ["depth_map.png", "before_after.png", "gain_map.png"])
def test_title_naming_the_scan_is_hidden(results, name):
    import numpy as np

    folder = results["scan_compare" if name != "depth_map.png" else "scan_analyze"]
    full = Image.open(folder / name).convert("RGB")
    hidden = drop_title_band(full)
    g0, g1 = np.asarray(full.convert("L")), np.asarray(hidden.convert("L"))
    top0, left0, right0 = _axes_line(g0)
    top1, left1, right1 = _axes_line(g1)
    assert (g0[:top0 - 1, left0:right0] < 160).any()  # the original has a title over the axes...
    assert not (g1[:max(top1 - 1, 0), : right1 + 1] < 160).any()  # ...which is gone
    # the figure itself is kept: the same axes, and the colour bar with its whole label (same ink beside the axes)
    last0, last1 = np.flatnonzero((g0 < 160).any(axis=1))[-1], np.flatnonzero((g1 < 160).any(axis=1))[-1]
    assert right1 - left1 == right0 - left0 and last1 - top1 == last0 - top0
    assert (g1[:, right1 + 20:] < 160).sum() == (g0[:, right0 + 20:] < 160).sum()
    blank = Image.new("RGB", (50, 40), (255, 255, 255))
    assert drop_title_band(blank).size == (50, 40)


def test_long_flag_lists_stay_on_one_page(results, tmp_path):
    folder = tmp_path / "photo"
    shutil.copytree(results["photo_analyze"], folder, ignore=shutil.ignore_patterns("report.pdf"))
    m = json.loads((folder / "measurements.json").read_text())
    m["flags"] = ["yaw_beyond_5_deg", "pitch_beyond_10_deg", "face_narrower_than_300_px", "eyes_closed",
                  "landmarks_edited_by_hand", "iris_not_found_no_mm_scale"]
    (folder / "measurements.json").write_text(json.dumps(m))
    assert pdf_pages(patient_report(folder, tmp_path / "r.pdf")) == 1
