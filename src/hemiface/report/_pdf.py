"""Drawing a :class:`~hemiface.report.Report` as a PDF with reportlab's platypus."""

from __future__ import annotations

import functools
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape

from .. import __version__
from ._report import _flatten

FONT, FONT_BOLD, FONT_ITALIC = "HemifaceSans", "HemifaceSans-Bold", "HemifaceSans-Oblique"
#: Figures are shown at this resolution at most (pixels per inch), then fitted to the frame.
SHOW_DPI = 150


@functools.lru_cache(maxsize=1)
def register_fonts() -> tuple[str, str, str]:
    """Register DejaVu Sans (shipped with matplotlib: full Unicode, no system fonts needed)."""
    import matplotlib
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in ((FONT, "DejaVuSans.ttf"), (FONT_BOLD, "DejaVuSans-Bold.ttf"), (FONT_ITALIC, "DejaVuSans-Oblique.ttf")):
        pdfmetrics.registerFont(TTFont(name, str(ttf / file)))
    addMapping(FONT, 0, 0, FONT)
    addMapping(FONT, 1, 0, FONT_BOLD)
    addMapping(FONT, 0, 1, FONT_ITALIC)
    addMapping(FONT, 1, 1, FONT_BOLD)
    return FONT, FONT_BOLD, FONT_ITALIC


@functools.lru_cache(maxsize=1)
def styles():
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    register_fonts()
    base = getSampleStyleSheet()
    s = {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=FONT_BOLD, fontSize=17, leading=21, alignment=0,
                                spaceAfter=2),
        "study": ParagraphStyle("study", parent=base["Normal"], fontName=FONT, fontSize=10, textColor="#444444",
                                spaceAfter=8),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=FONT_BOLD, fontSize=13, leading=16, spaceBefore=10,
                             spaceAfter=4, keepWithNext=1),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontName=FONT_BOLD, fontSize=10, leading=12.5, spaceBefore=6,
                             spaceAfter=3, keepWithNext=1),
        "body": ParagraphStyle("body", parent=base["Normal"], fontName=FONT, fontSize=9.5, leading=12.5, spaceAfter=5),
        "note": ParagraphStyle("note", parent=base["Normal"], fontName=FONT, fontSize=8, leading=10, spaceAfter=6,
                               textColor="#333333"),
        "cell": ParagraphStyle("cell", parent=base["Normal"], fontName=FONT, fontSize=8, leading=9.6),
        "head": ParagraphStyle("head", parent=base["Normal"], fontName=FONT_BOLD, fontSize=8, leading=9.6),
    }
    s["cell_num"] = ParagraphStyle("cell_num", parent=s["cell"], alignment=TA_RIGHT)
    s["head_num"] = ParagraphStyle("head_num", parent=s["head"], alignment=TA_RIGHT)
    return s


class _Markup(HTMLParser):
    """An HTML fragment -> reportlab paragraph markup, one string per block (text and emphasis kept)."""

    INLINE = {"b": "b", "strong": "b", "i": "i", "em": "i", "sup": "super", "sub": "sub"}
    BLOCK = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "ul", "ol", "blockquote", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.current: list[str] = []
        self.kind = "body"
        self.open: list[str] = []

    def _flush(self):
        text = "".join(self.current).strip()
        # close any inline tag left open at the block's end
        for tag in reversed(self.open):
            text += f"</{tag}>"
        if re.sub(r"<[^>]*>", "", text).strip():
            self.blocks.append((self.kind, text))
        self.current, self.kind = [], "body"
        self.current += [f"<{t}>" for t in self.open]

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCK:
            self._flush()
            if tag.startswith("h"):
                self.kind = "h3"
            if tag == "li":
                self.current.append("\u2022 ")
        elif tag == "br":
            self.current.append("<br/>")
        elif tag in self.INLINE:
            self.current.append(f"<{self.INLINE[tag]}>")
            self.open.append(self.INLINE[tag])
        elif tag in ("td", "th"):
            self.current.append("  ")

    def handle_endtag(self, tag):
        if tag in self.BLOCK:
            self._flush()
        elif tag in self.INLINE and self.INLINE[tag] in self.open:
            name = self.INLINE[tag]
            self.open.remove(name)
            self.current.append(f"</{name}>")

    def handle_data(self, data):
        self.current.append(escape(" ".join(data.split()) if data.strip() else (" " if data else "")))

    def close(self):
        super().close()
        self.open = []
        self._flush()


def html_blocks(fragment: str) -> list[tuple[str, str]]:
    parser = _Markup()
    parser.feed(fragment)
    parser.close()
    return parser.blocks


def _table(item, avail_w: float):
    """A booktabs-style table; wide tables shrink their font, then split into column groups."""
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Paragraph, Table, TableStyle

    st = styles()
    n_cols = len(item.labels)
    pad = 8.0

    def widths(size):
        out = []
        for j in range(n_cols):
            head = max((stringWidth(w, FONT_BOLD, size) for w in item.labels[j].split()), default=0)
            body = max((stringWidth(r[j], FONT, size) for r in item.rows), default=0)
            out.append(max(head, min(body, 150.0)) + pad)
        return out

    size = 8.0
    w = widths(size)
    while sum(w) > avail_w and size > 6.0:
        size -= 0.5
        w = widths(size)
    groups = [list(range(n_cols))]
    if sum(w) > avail_w and n_cols > 1:  # split into column groups, repeating the first column
        groups, current, used = [], [0], w[0]
        for j in range(1, n_cols):
            if used + w[j] > avail_w and len(current) > 1:
                groups.append(current)
                current, used = [0], w[0]
            current.append(j)
            used += w[j]
        groups.append(current)
    cell = ParagraphStyle("c", parent=st["cell"], fontSize=size, leading=size * 1.2)
    cell_num = ParagraphStyle("cn", parent=st["cell_num"], fontSize=size, leading=size * 1.2)
    head = ParagraphStyle("h", parent=st["head"], fontSize=size, leading=size * 1.2)
    head_num = ParagraphStyle("hn", parent=st["head_num"], fontSize=size, leading=size * 1.2)
    tables = []
    for cols in groups:
        col_w = [w[j] for j in cols]
        if sum(col_w) > avail_w:
            col_w = [c * avail_w / sum(col_w) for c in col_w]
        data = [[Paragraph(escape(item.labels[j]), head_num if item.numeric[j] else head) for j in cols]]
        data += [[Paragraph(escape(r[j]), cell_num if item.numeric[j] else cell) for j in cols] for r in item.rows]
        t = Table(data, colWidths=col_w, repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([
            ("LINEABOVE", (0, 0), (-1, 0), 1.0, "#000000"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, "#000000"),
            ("LINEBELOW", (0, -1), (-1, -1), 1.0, "#000000"),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]))
        tables.append(t)
    return tables, len(groups)


def _image(item, avail_w: float, avail_h: float):
    from reportlab.lib.units import mm
    from reportlab.platypus import Image

    w = min(avail_w, item.width_px * 72.0 / SHOW_DPI)
    h = w * item.height_px / item.width_px
    max_h = item.max_height_mm * mm if item.max_height_mm else avail_h * 0.85
    if h > max_h:
        w, h = w * max_h / h, max_h
    return Image(io.BytesIO(item.png), width=w, height=h, hAlign="LEFT")


def flowables(report, avail_w: float, avail_h: float) -> list:
    from reportlab.platypus import KeepTogether, PageBreak, Paragraph, Spacer, Table, TableStyle

    st = styles()
    story = [Paragraph(escape(report.title), st["title"])]
    if report.study_name:
        story.append(Paragraph(escape(report.study_name), st["study"]))
    for k, section in enumerate(report._sections):
        if section.new_page and k > 0:
            story.append(PageBreak())
        story.append(Paragraph(escape(section.title), st["h2"]))
        for item in section.items:
            title = [Paragraph(escape(item.title), st["h3"])] if item.title else []
            caption = [Paragraph(escape(item.caption), st["note"])] if item.caption else []
            if item.kind == "table":
                tables, n_groups = _table(item, avail_w)
                if n_groups > 1:
                    caption = caption + [Paragraph(f"(Wide table shown in {n_groups} column groups; the first column "
                                                   "is repeated.)", st["note"])]
                body = []
                for t in tables:
                    body += [t, Spacer(1, 4)]
                story += title + body + caption + [Spacer(1, 4)]
            elif item.kind == "image":
                story.append(KeepTogether(title + [_image(item, avail_w, avail_h)] + caption))
            elif item.kind == "html":
                story += title + [Paragraph(text, st[kind]) for kind, text in html_blocks(item.html)]
            elif item.kind == "text":
                story += title + [Paragraph(escape(p), st["body"]) for p in item.paragraphs]
    about = [Paragraph(f"Generated by hemiface {escape(__version__)} on {escape(report.date)}.", st["note"])]
    params = _flatten(report.parameters)
    if params:
        t = Table([[Paragraph(escape(k), st["cell"]), Paragraph(escape(v), st["cell"])] for k, v in params],
                  colWidths=[avail_w * 0.35, avail_w * 0.65], hAlign="LEFT")
        t.setStyle(TableStyle([("LINEABOVE", (0, 0), (-1, 0), 0.5, "#888888"), ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5), ("LEFTPADDING", (0, 0), (-1, -1), 2)]))
        about.append(t)
    story.append(Spacer(1, 6))
    story.append(KeepTogether(about))
    return story


def write_pdf(report, path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as _canvas
    from reportlab.platypus import SimpleDocTemplate

    register_fonts()
    header = " \u2014 ".join(x for x in (report.study_name, report.title) if x)

    class NumberedCanvas(_canvas.Canvas):
        """Defers each page until the end so every page can say 'page i of n'."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width, height = self._pagesize
                self.setFont(FONT, 7.5)
                self.setFillColor("#444444")
                self.drawString(18 * mm, height - 12 * mm, header[:120])
                self.drawRightString(width - 18 * mm, height - 12 * mm, report.date)
                self.setStrokeColor("#999999")
                self.setLineWidth(0.4)
                self.line(18 * mm, height - 13.5 * mm, width - 18 * mm, height - 13.5 * mm)
                self.drawString(18 * mm, 10 * mm, f"hemiface {__version__}")
                self.drawRightString(width - 18 * mm, 10 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    doc = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=16 * mm,
        title=report.title, author="hemiface", creator=f"hemiface {__version__}", subject=report.study_name or "",
    )
    doc.build(flowables(report, doc.width, doc.height), canvasmaker=NumberedCanvas)
