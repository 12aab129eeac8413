"""`hemiface demo` end to end on a small synthetic cohort, and the study report it writes.

The cohort's truth comes from the simulation (known atrophy and treatment); the
report is checked against the endpoint table it was made from.
"""

import logging
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.report import column_kind, format_value

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from hemiface._demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "cohort", n_patients=6, n_with_scans=2, jobs=2)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.headings, self.cells, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        self.parts.append(data)
        if self._in in ("h1", "h2", "h3"):
            self.headings.append(data.strip())
        if self._in in ("td", "th"):
            self.cells.append(data.strip())


def test_demo_recovers_the_simulated_changes(demo):
    a = demo.agreement
    log.info("demo (6 patients, 2 with scans): %s; %s; seconds %s", demo.run_summary, a,
             {k: round(v, 1) for k, v in demo.seconds.items()})
    assert a["patients_2d"] >= 3 and a["patients_3d"] >= 1 and a["all_finite"]
    assert a["ratio_change_points_max"] < 2.0  # the photo issue's tolerance
    assert a["volume_gain_percent_max"] < 10.0  # the scan compare issue's tolerance
    assert a["patients_retention"] >= 1 and a["retention_percent_max"] < 10.0  # the same, through the injected ml
    assert "0 failed" in demo.run_summary


def test_report_html_has_every_section_and_the_endpoint_numbers(demo):
    html = demo.report_html.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.parts)
    headings = " | ".join(parser.headings).lower()
    for section in ("study flow", "table 1", "endpoint", "figure", "complication", "methods",
                    "appendix: complete tables", "patient"):
        assert section in headings, (section, headings)
    assert "Table 2. Endpoints by technique" in text and "Change (95% CI)" in text
    endpoints = pd.read_csv(demo.endpoints_csv)
    for pid in endpoints["patient_id"]:
        assert f"Patient {pid}" in text
    # the within-group changes in the report are the endpoint table's (same rounding as shown)
    cells = set(parser.cells)
    for technique, group in endpoints.groupby("technique"):
        change = group["symmetry_ratio_change"].dropna()
        if len(change):
            mean = format_value(change.mean(), column_kind("mean"))
            assert mean in cells, (technique, mean)
    # graft retention by technique, from the injected volumes the cohort records
    assert "Graft retention and achieved share of the planned volume at follow-up, by technique" in text
    fat = endpoints.loc[endpoints["technique"] == "fat_grafting", "graft_retention_percent"].dropna()
    assert len(fat) and format_value(fat.mean(), column_kind("mean")) in cells
    # methods are written from the settings actually used
    assert "6 calendar months" in text or "6 months" in text
    assert "Shapiro-Wilk" in text


def test_report_pdf_pages(demo):
    data = demo.report_pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    n_patients = len(pd.read_csv(demo.endpoints_csv))
    assert pages >= 6 + n_patients  # body pages, then one page per analysed patient


def test_demo_command_line_refuses_a_used_folder(demo, tmp_path):
    result = CliRunner().invoke(app, ["demo", str(demo.folder), "--patients", "4", "--scans", "0"])
    assert result.exit_code == 1
    assert "not empty; pass --overwrite" in result.output
    (tmp_path / "mine.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["demo", str(tmp_path), "--patients", "4", "--scans", "0", "--overwrite"])
    assert result.exit_code == 1 and "not a hemiface demo folder" in result.output
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_study_analyze_and_report_commands(demo, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["study", "analyze", str(demo.study), "--out", str(tmp_path / "analysis")])
    assert result.exit_code == 0, result.output
    within = pd.read_csv(tmp_path / "analysis" / "within_group.csv")
    demo_within = pd.read_csv(demo.analysis_dir / "within_group.csv")
    pd.testing.assert_frame_equal(within, demo_within)
    result = runner.invoke(app, ["study", "report", str(demo.study), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert runner.invoke(app, ["study", "report", str(demo.study), "--out", str(tmp_path / "report")]).exit_code == 1
    assert np.isfinite(within["n"]).all()


def test_patient_page_images_are_compact_and_carry_no_metadata(demo):
    import base64
    import io

    from PIL import Image

    html = demo.report_html.read_text(encoding="utf-8")
    jpegs = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", html)
    n_patients = len(pd.read_csv(demo.endpoints_csv))
    assert len(jpegs) >= 2 * n_patients  # both photo overlays of every patient, plus scan maps
    for b64 in jpegs[:5]:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "JPEG" and len(im.getexif()) == 0 and "icc_profile" not in im.info
            assert max(im.size) <= 1000
