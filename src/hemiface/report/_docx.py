"""Writing a :class:`~hemiface.report.Report` as a Word document (python-docx), for the manuscript.

The same sections, tables (every cell as the HTML and PDF show it), figures and text as the other
outputs. Tables are journal style: a rule above and below the header and below the last row, no
grid, the header repeated on each page, numbers right-aligned. Figures are redrawn at
:data:`~hemiface.report._report.PRINT_DPI` (Word documents hold raster figures; the PDF has them as
vectors); photographs and images keep their own pixels. Text is Arial, which every manuscript system
has (the PDF and the figures use DejaVu Sans, shipped with matplotlib).
"""

from __future__ import annotations

import html as _html
import io
import re
from xml.sax.saxutils import escape

from .. import __version__
from ._pdf import MARGINS_MM, fitted_widths, html_blocks, landscape_items
from ._report import FIGURE_DPI, PRINT_DPI

FONT = "Arial"
#: A4 (mm); the margins are the PDF's.
PAGE_MM = (210.0, 297.0)
_TAG_RE = re.compile(r"<(/?)(b|i|super|sub|br/)>")


def _table(doc, item, avail_w_mm: float) -> None:
    """A journal-style table, written as WordprocessingML in one piece (python-docx's cell-by-cell API
    takes seconds for the appendix tables): rules above and below the header and below the last row,
    the header repeated on each page, numeric columns right-aligned."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    size_pt, widths = fitted_widths(item, avail_w_mm * 72 / 25.4)  # the PDF's font and widths (points)
    if sum(widths) > avail_w_mm * 72 / 25.4:  # Word wraps what the PDF would split into column groups
        widths = [w * avail_w_mm * 72 / 25.4 / sum(widths) for w in widths]
    twips = [round(w * 20) for w in widths]
    half_points = round(2 * size_pt)
    rule = '<w:{0} w:val="single" w:sz="{1}" w:space="0" w:color="000000"/>'

    def row(cells, *, head: bool, last: bool) -> str:
        out = ["<w:tr>", '<w:trPr><w:tblHeader/></w:trPr>' if head else ""]
        for j, text in enumerate(cells):
            borders = (rule.format("bottom", 6) if head else "") + (rule.format("bottom", 8) if last else "")
            out.append(
                f'<w:tc><w:tcPr><w:tcW w:w="{twips[j]}" w:type="dxa"/>'
                + (f"<w:tcBorders>{borders}</w:tcBorders>" if borders else "") + "</w:tcPr>"
                + '<w:p><w:pPr><w:spacing w:before="0" w:after="0"/>'
                + ('<w:jc w:val="right"/>' if item.numeric[j] else "") + "</w:pPr>"
                + f'<w:r><w:rPr>{"<w:b/>" if head else ""}<w:sz w:val="{half_points}"/></w:rPr>'
                + f'<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p></w:tc>')
        out.append("</w:tr>")
        return "".join(out)

    rows = [row(item.labels, head=True, last=not item.rows)]
    rows += [row(r, head=False, last=k == len(item.rows) - 1) for k, r in enumerate(item.rows)]
    xml = (f"<w:tbl {nsdecls('w')}><w:tblPr><w:tblW w:w=\"{sum(twips)}\" w:type=\"dxa\"/>"
           f"<w:tblBorders>{rule.format('top', 8)}</w:tblBorders><w:tblLayout w:type=\"fixed\"/>"
           '<w:tblCellMar><w:left w:w="57" w:type="dxa"/><w:right w:w="57" w:type="dxa"/></w:tblCellMar>'
           "</w:tblPr><w:tblGrid>" + "".join(f'<w:gridCol w:w="{t}"/>' for t in twips) + "</w:tblGrid>"
           + "".join(rows) + "</w:tbl>")
    body = doc.element.body
    body.insert(len(body) - 1, parse_xml(xml))  # before the final section properties


def _markup_runs(para, markup: str) -> None:
    """Reportlab paragraph markup (from :func:`html_blocks`) as runs: bold, italic, super- and subscript kept."""
    state = {"b": False, "i": False, "super": False, "sub": False}
    pos = 0
    for m in [*_TAG_RE.finditer(markup), None]:
        end = m.start() if m else len(markup)
        text = _html.unescape(markup[pos:end])
        if text:
            run = para.add_run(text)
            run.bold, run.italic = state["b"], state["i"]
            run.font.superscript, run.font.subscript = state["super"], state["sub"]
        if m is None:
            break
        if m[2] == "br/":
            para.add_run().add_break()
        else:
            state[m[2]] = m[1] != "/"
        pos = m.end()


def _picture(doc, item, avail_w_mm: float, avail_h_mm: float) -> None:
    from docx.shared import Mm

    width_mm = min(avail_w_mm, item.width_px / FIGURE_DPI * 25.4)  # the figure's own size, as in the PDF
    height_mm = width_mm * item.height_px / item.width_px
    max_h = item.max_height_mm or avail_h_mm * 0.85
    if height_mm > max_h:
        width_mm, height_mm = width_mm * max_h / height_mm, max_h
    data = item.render("png", dpi=PRINT_DPI) if item.figure else item.png
    doc.add_picture(io.BytesIO(data), width=Mm(width_mm))
    doc.paragraphs[-1].paragraph_format.keep_with_next = bool(item.caption)


def _page(section, *, landscape: bool) -> tuple[float, float]:
    """Set a Word section to A4 portrait or landscape with the PDF's margins; returns its frame (mm)."""
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm

    width, height = (PAGE_MM[1], PAGE_MM[0]) if landscape else PAGE_MM
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(width), Mm(height)
    left, right, top, bottom = MARGINS_MM
    section.left_margin, section.right_margin, section.top_margin, section.bottom_margin = (
        Mm(left), Mm(right), Mm(top), Mm(bottom))
    return width - left - right, height - top - bottom


def write_docx(report, path) -> None:
    """Write ``report`` to ``path`` as .docx, without its sections added with ``docx=False``; wide tables
    on landscape pages, as in the PDF (:func:`~hemiface.report._pdf.landscape_items`)."""
    import docx
    from docx.enum.section import WD_SECTION
    from docx.enum.text import WD_BREAK
    from docx.shared import Pt, RGBColor

    doc = docx.Document()
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(10)
    for name in ("Title", "Heading 1", "Heading 2"):
        doc.styles[name].font.name = FONT
        doc.styles[name].font.color.rgb = RGBColor(0, 0, 0)
    frame = {False: _page(doc.sections[0], landscape=False)}
    props = doc.core_properties
    props.title, props.author, props.last_modified_by = report.title, "hemiface", "hemiface"
    props.subject, props.comments = report.study_name or "", f"hemiface {__version__}, {report.date}"

    doc.add_heading(report.title, level=0)
    if report.study_name:
        doc.add_paragraph(report.study_name)
    wide = landscape_items(report)
    state = {"landscape": False}

    def orient(landscape: bool) -> None:
        if landscape != state["landscape"]:
            frame[landscape] = _page(doc.add_section(WD_SECTION.NEW_PAGE), landscape=landscape)
            state["landscape"] = landscape

    first = True
    for section in report._sections:
        if not section.docx:
            continue
        starts_wide = bool(section.items) and id(section.items[0]) in wide
        if state["landscape"] and not starts_wide:
            orient(False)
        elif section.new_page and not first and not (starts_wide and not state["landscape"]):
            doc.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)
        first = False
        orient(starts_wide or state["landscape"])
        doc.add_heading(section.title, level=1)
        for item in section.items:
            orient(id(item) in wide)
            avail_w, avail_h = frame[state["landscape"]]
            if item.title:
                heading = doc.add_paragraph()
                heading.add_run(item.title).bold = True
                heading.paragraph_format.keep_with_next = True
            if item.kind == "table":
                _table(doc, item, avail_w)
            elif item.kind == "image":
                _picture(doc, item, avail_w, avail_h)
            elif item.kind == "html":
                for _kind, markup in html_blocks(item.html):
                    _markup_runs(doc.add_paragraph(), markup)
            elif item.kind == "text":
                for text in item.paragraphs:
                    doc.add_paragraph(text)
            if item.caption:
                note = doc.add_paragraph()
                note.add_run(item.caption).font.size = Pt(8)
            elif item.kind == "table":
                doc.add_paragraph()  # Word joins two tables that touch
    orient(False)
    doc.add_paragraph().add_run(f"Generated by hemiface {__version__} on {report.date}.").font.size = Pt(8)
    doc.save(str(path))
