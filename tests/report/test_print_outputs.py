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
    # two figures (the flow diagram, the change in symmetry): each figure is drawn again per format
    plotted = endpoints.drop(columns=[c for c in endpoints if c.startswith(("faceq_", "discrepancy_"))
                                      or c in ("symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent")])
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
    assert len(shapes) == len(figures) == 2
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


#: Tables that fit a portrait page (at 6.5 pt at least) and those that do not (laid out on landscape pages):
#: in the body only the complication tests; the complete tables are in the appendix.
PORTRAIT = ("Study flow counts", "Table 1. Baseline characteristics by technique",
            "Table 2. Endpoints by technique: baseline, follow-up and change",
            "Table 3. Follow-up adjusted for baseline (ANCOVA)", "Complications at follow-up", "Missing endpoints")
LANDSCAPE = ("Complication rates compared between techniques", "Appendix. Endpoint definitions",
             "Appendix. Table 1. Baseline characteristics by technique",
             "Appendix. Endpoints by technique and visit (patients with both visits)",
             "Appendix. Change within each technique (follow-up vs baseline)",
             "Appendix. Comparison of change between techniques",
             "Appendix. Follow-up adjusted for baseline (ANCOVA): the complete models",
             "Appendix. ANCOVA assumption checks")


def _drawing(page) -> tuple[int, int]:
    """Path-construction operators and image XObjects on a PDF page."""
    from pypdf.generic import ContentStream

    ops = [op for _, op in ContentStream(page.get_contents(), page.pdf).operations]
    images = sum(x.get_object().get("/Subtype") == "/Image" for x in (page["/Resources"].get("/XObject") or {}).values())
    return sum(op in (b"m", b"l", b"c", b"v", b"y", b"re") for op in ops), images


@pytest.fixture(scope="module")
def pdf_pages(report, tmp_path_factory):
    """Each page's text, orientation and the page itself."""
    from pypdf import PdfReader

    reader = PdfReader(report.save_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf"))
    return [{"text": " ".join(page.extract_text().split()), "landscape": page.mediabox.width > page.mediabox.height,
             "page": page} for page in reader.pages]


def _page_of(pages, title: str) -> int:
    """The first page showing ``title`` ("Table 1. ..." is also in "Appendix. Table 1. ...", which comes later)."""
    return next(k for k, f in enumerate(pages) if title in f["text"])


def test_pdf_figures_are_vector_drawings(pdf_pages, report):
    figures = [i.title for s in report._sections for i in s.items if i.kind == "image" and i.figure]
    assert len(figures) == 2
    for title in figures:
        paths, images = _drawing(pdf_pages[_page_of(pdf_pages, title)]["page"])
        # drawn as paths (boxes, lines, markers and every glyph of the labels), not as a picture
        assert images == 0 and paths > 500, (title, paths, images)
    assert _drawing(pdf_pages[_page_of(pdf_pages, "Baseline photograph")]["page"])[1] == 1  # a photo stays an image


def test_pdf_embeds_a_photo_as_its_jpeg_and_leaves_no_spool(report, tmp_path):
    """Photos reach the PDF from files spooled next to it (reportlab then keeps nothing decoded: 9,937 -> 1,176
    MB for 600 pages of three photos, benchmarks/bench_report.py), embedded as the report's own JPEG bytes; the
    spool is gone afterwards."""
    from pypdf import PdfReader

    photos = [i for s in report._sections for i in s.items if i.kind == "image" and i.mime == "image/jpeg"]
    assert len(photos) == 1
    path = report.save_pdf(tmp_path / "report.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]
    embedded = [x.get_object() for page in PdfReader(path).pages
                for x in (page["/Resources"].get("/XObject") or {}).values()]
    jpegs = [x for x in embedded if x.get("/Subtype") == "/Image" and "/DCTDecode" in x.get("/Filter", ())]
    assert [x.get_data() for x in jpegs] == [photos[0].png]


def test_wide_tables_are_on_landscape_pages(pdf_pages, docx_path):
    import docx
    from docx.text.paragraph import Paragraph

    for title in PORTRAIT:
        assert not pdf_pages[_page_of(pdf_pages, title)]["landscape"], title
    for title in LANDSCAPE:
        k = _page_of(pdf_pages, title)
        assert pdf_pages[k]["landscape"], title
    # no table is split into column groups, in the body or the appendix (the tidy tables' widest, 20 and 21
    # columns, needed 803 and 825 pt at 6 pt for a 728 pt frame before the appendix merged their name columns)
    assert not any("column groups" in f["text"] for f in pdf_pages)
    assert pdf_pages[_page_of(pdf_pages, "Appendix: complete tables")]["landscape"]  # the heading goes with them
    assert not pdf_pages[-1]["landscape"]  # the patient page after the appendix is portrait again
    # the Word document turns the same tables: each table's section has the PDF page's orientation
    doc = docx.Document(str(docx_path))
    orientation, k, titles = {}, 0, [*PORTRAIT, *LANDSCAPE]
    sections = list(doc.sections)
    for child in doc.element.body.iterchildren():
        if not child.tag.endswith("}p"):
            continue
        if Paragraph(child, doc).text in titles:
            orientation[Paragraph(child, doc).text] = int(sections[k].orientation)
        k += child.find(".//{*}sectPr") is not None  # a section ends with the paragraph holding its properties
    assert orientation == {**dict.fromkeys(PORTRAIT, 0), **dict.fromkeys(LANDSCAPE, 1)}
    assert {round(s.page_width.mm) for s in sections} == {210, 297}


def test_inline_markup_keeps_its_spaces_in_pdf_and_word(tmp_path):
    import docx

    from hemiface.report import Report
    from hemiface.report._pdf import html_blocks

    fragment = "<p>Mirrored <b>unaffected</b> side; x<sup>2</sup> &amp; more</p><ul><li> one </li></ul>"
    assert html_blocks(fragment) == [("body", "Mirrored <b>unaffected</b> side; x<super>2</super> &amp; more"),
                                     ("body", "\u2022 one")]
    report = Report("Markup")
    report.add_html(fragment, section="Text")
    doc = docx.Document(str(report.save_docx(tmp_path / "m.docx")))
    (para,) = [p for p in doc.paragraphs if p.text.startswith("Mirrored")]
    assert para.text == "Mirrored unaffected side; x2 & more"
    assert [(r.text, bool(r.bold), bool(r.font.superscript)) for r in para.runs] == [
        ("Mirrored ", False, False), ("unaffected", True, False), (" side; x", False, False), ("2", False, True),
        (" & more", False, False)]
