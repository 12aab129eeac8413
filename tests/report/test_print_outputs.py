"""The study report in print: the Word document, vector figures in the PDF, wide tables on landscape pages.

One study report (the synthetic endpoint table of conftest.py, its real statistics from
``analyze_endpoints``, laid out by ``report_tables`` as ``study report`` does, and one patient page) is
built once and saved once per format; the files are read back with python-docx and pypdf, and their
tables compared cell by cell with the journal tables and the tidy tables they came from.
"""

from __future__ import annotations

import io

import pytest
from report_helpers import matches

from hemiface.report import journal_tables, report_tables, study_report
from hemiface.report._report import PRINT_DPI
from hemiface.stats import analyze_endpoints

ORDER = ("fat_grafting", "free_flap", "adm")


@pytest.fixture(scope="module")
def stats_tables(endpoints):
    return analyze_endpoints(endpoints)


@pytest.fixture(scope="module")
def report(endpoints, stats_tables, flow, settings, tmp_path_factory):
    import numpy as np
    from PIL import Image

    shown, captions = report_tables(stats_tables, order=ORDER)
    photo = tmp_path_factory.mktemp("photo") / "overlay.png"
    Image.fromarray(np.full((120, 90, 3), 128, np.uint8)).save(photo)
    pages = [{"patient_id": "HFA-004", "overlay_baseline": photo}]
    # the figures of the 2D endpoint only (flow, paired, change): each figure is drawn again per format
    plotted = endpoints.drop(columns=[c for c in endpoints if c.startswith(("faceq_", "discrepancy_"))])
    return study_report(plotted, shown, flow, settings, captions=captions, patient_pages=pages, date="2026-02-03")


@pytest.fixture(scope="module")
def docx_path(report, tmp_path_factory):
    return report.save_docx(tmp_path_factory.mktemp("docx") / "report.docx")


def _docx_tables(path) -> dict:
    """Each table of the document under the title in the paragraph before it: (header, rows)."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    doc = docx.Document(str(path))
    out, title = {}, None
    for child in doc.element.body.iterchildren():
        if child.tag.endswith("}p"):
            text = Paragraph(child, doc).text.strip()
            title = text or title
        elif child.tag.endswith("}tbl"):
            rows = [[c.text for c in r.cells] for r in Table(child, doc).rows]
            out[title] = (rows[0], rows[1:])
    return out


def test_docx_tables_are_the_journal_and_tidy_tables(docx_path, stats_tables):
    tables = _docx_tables(docx_path)
    journal = journal_tables(stats_tables, order=ORDER)
    for key, title in (("table1", "Table 1. Baseline characteristics by technique"),
                       ("table2", "Table 2. Endpoints by technique: baseline, follow-up and change")):
        header, rows = tables[title]
        expected = journal[key].table
        assert header == list(expected.columns)
        assert rows == expected.astype(str).values.tolist()  # every cell, as laid out
    header, rows = tables["Table 2. Endpoints by technique: baseline, follow-up and change"]
    assert header[4] == "Change (95% CI)" and rows[1][0] == "\u2003Fat grafting"
    # an appendix table: the tidy table's own columns and numbers
    header, rows = tables["Appendix. Change within each technique (follow-up vs baseline)"]
    within = stats_tables["within_group"]
    assert len(rows) == len(within) and header[:3] == ["Endpoint", "Group", "Test"]
    p_col = header.index("p")
    for row, value in zip(rows, within["p_value"]):
        assert matches(row[p_col].replace("<", "<"), value), (row[p_col], value)
    assert not any(t.startswith("Measurements") for t in tables if t)  # no patient pages in the manuscript file


def test_docx_figures_are_at_print_resolution(docx_path, report):
    import docx
    from PIL import Image

    doc = docx.Document(str(docx_path))
    figures = [i for s in report._sections if s.docx for i in s.items if i.kind == "image"]
    shapes = doc.inline_shapes
    assert len(shapes) == len(figures) == 3
    for shape in shapes:
        blob = doc.part.related_parts[shape._inline.graphic.graphicData.pic.blipFill.blip.embed].blob
        with Image.open(io.BytesIO(blob)) as im:
            dpi = im.width / (shape.width.inches)
        assert dpi >= PRINT_DPI * 0.98, dpi
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Patient HFA-004" not in text and "Figure 1. Study flow" in text
    assert doc.core_properties.author == "hemiface"
    from hemiface._errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="already holds report.docx"):
        report.save_docx(docx_path)  # never overwritten unless asked
