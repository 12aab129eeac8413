"""Drawing a :class:`~hemiface.report.Report` as a PDF with reportlab's platypus.

Figures made with matplotlib are drawn as vectors (their SVG, read by svglib), so they stay sharp
in print at any size; images (photographs, renders) are embedded as they are.
"""

from __future__ import annotations

import functools
import io
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape

from .. import __version__, logger
from ._report import _flatten

FONT, FONT_BOLD, FONT_ITALIC = "HemifaceSans", "HemifaceSans-Bold", "HemifaceSans-Oblique"
#: Figures and images are shown at this resolution at most (pixels per inch), then fitted to the frame
#: (a figure's PNG is drawn at this resolution, so a figure keeps its own size in inches).
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
        # whitespace collapses to one space, kept at either end: "Some <b>bold</b> text" keeps its spaces
        text = " ".join(data.split())
        if data[:1].isspace():
            text = " " + text
        if data[-1:].isspace() and text != " ":
            text += " "
        if text.startswith(" ") and (not self.current or self.current[-1].endswith(" ")):
            text = text[1:]
        self.current.append(escape(text))

    def close(self):
        super().close()
        self.open = []
        self._flush()


def html_blocks(fragment: str) -> list[tuple[str, str]]:
    parser = _Markup()
    parser.feed(fragment)
    parser.close()
    return parser.blocks


#: Table font sizes (points): the normal one, the smallest a table is shrunk to on a portrait page before
#: it goes on a landscape page instead, and the smallest at all.
TABLE_FONT_PT, MIN_PORTRAIT_FONT_PT, MIN_FONT_PT = 8.0, 6.5, 6.0
#: A cell's padding, and the widths (points) at which long cell text wraps: 150 normally, down to 50 (never
#: inside a word) for a table that is still too wide at the smallest font, before it is split into column groups.
_CELL_PAD_PT, _MAX_CELL_PT, _MIN_WRAP_PT = 8.0, 150.0, 50.0


def column_widths(item, size: float, wrap: float = _MAX_CELL_PT) -> list[float]:
    """Each column's width (points) at font ``size``: its longest cell, wrapped at ``wrap`` points but never
    inside a word, or the header's longest word, whichever is wider; plus padding."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    register_fonts()
    out = []
    for j, label in enumerate(item.labels):
        head = max((stringWidth(w, FONT_BOLD, size) for w in label.split()), default=0)
        cells = [r[j] for r in item.rows]
        body = max((stringWidth(c, FONT, size) for c in cells), default=0)
        word = max((stringWidth(w, FONT, size) for c in cells for w in c.split()), default=0)
        out.append(max(head, word, min(body, wrap)) + _CELL_PAD_PT)
    return out


def is_wide(item, avail_w: float) -> bool:
    """Whether a table goes on a landscape page: it does not fit ``avail_w`` (points) at
    :data:`MIN_PORTRAIT_FONT_PT`, so a portrait page would squeeze it or split it into column groups."""
    return item.kind == "table" and sum(column_widths(item, MIN_PORTRAIT_FONT_PT)) > avail_w


def fitted_widths(item, avail_w: float) -> tuple[float, list[float]]:
    """The font size and column widths (points) a table is laid out with in ``avail_w``: the normal font,
    shrunk to :data:`MIN_FONT_PT` if need be, then long text wrapped more narrowly; the widths may still
    exceed ``avail_w`` (then the table is split into column groups)."""
    size, wrap = TABLE_FONT_PT, _MAX_CELL_PT
    w = column_widths(item, size, wrap)
    while sum(w) > avail_w and size > MIN_FONT_PT:
        size -= 0.5
        w = column_widths(item, size, wrap)
    while sum(w) > avail_w and wrap > _MIN_WRAP_PT:
        wrap -= 10.0
        w = column_widths(item, size, wrap)
    return size, w


def _table(item, avail_w: float):
    """A booktabs-style table; wide tables shrink their font, then split into column groups."""
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, Table, TableStyle

    st = styles()
    n_cols = len(item.labels)
    size, w = fitted_widths(item, avail_w)
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


def _image(item, avail_w: float, avail_h: float, spool: Path):
    """An image, read by the PDF from a file in ``spool``. Given the bytes themselves, reportlab decodes each
    image to RGB to name it and keeps that until the document is saved (about 5 MB per 1000 x 750 photo: 9.9 GB
    for 600 pages of three, `benchmarks/bench_report.py`); given a file it names it by path, embeds a JPEG as
    it is and keeps nothing decoded."""
    import hashlib

    from reportlab.platypus import Image

    w, h = _fit(item, avail_w, avail_h)
    path = spool / (hashlib.sha256(item.png).hexdigest()[:32] + (".jpg" if item.mime == "image/jpeg" else ".png"))
    if not path.exists():
        path.write_bytes(item.png)
    return Image(str(path), width=w, height=h, hAlign="LEFT", lazy=2)


def _fit(item, avail_w: float, avail_h: float) -> tuple[float, float]:
    """The size (points) a figure or image is shown at: its own size at :data:`SHOW_DPI`, fitted to the frame."""
    from reportlab.lib.units import mm

    w = min(avail_w, item.width_px * 72.0 / SHOW_DPI)
    h = w * item.height_px / item.width_px
    max_h = item.max_height_mm * mm if item.max_height_mm else avail_h * 0.85
    if h > max_h:
        w, h = w * max_h / h, max_h
    return w, h


def _figure(item, avail_w: float, avail_h: float, spool: Path):
    """A matplotlib figure as vector drawing: its SVG (text drawn as paths, so the fonts are the figure's)
    read by svglib into reportlab graphics, scaled to the size the image would have."""
    from svglib.svglib import svg2rlg

    drawing = svg2rlg(io.BytesIO(item.render("svg")))
    if drawing is None or not drawing.width or not drawing.height:
        logger.info("report: a figure's SVG could not be read; the PDF shows its PNG")
        return _image(item, avail_w, avail_h, spool)
    w, h = _fit(item, avail_w, avail_h)
    sx, sy = w / drawing.width, h / drawing.height
    drawing.scale(sx, sy)
    drawing.width, drawing.height = w, h
    drawing.hAlign = "LEFT"
    return drawing


#: Page margins (left, right, top, bottom; mm) of every page, portrait or landscape, and the frame's padding (pt).
MARGINS_MM, FRAME_PADDING_PT = (18.0, 18.0, 18.0, 16.0), 6.0


def frame_size(pagesize) -> tuple[float, float]:
    """The width and height (points) that flowables get on a page of ``pagesize`` (points)."""
    from reportlab.lib.units import mm

    left, right, top, bottom = (m * mm for m in MARGINS_MM)
    return (pagesize[0] - left - right - 2 * FRAME_PADDING_PT, pagesize[1] - top - bottom - 2 * FRAME_PADDING_PT)


def landscape_items(report, portrait_w: float | None = None) -> set:
    """The ids of the items that go on landscape pages: the wide tables (:func:`is_wide` on an A4 portrait
    frame, or ``portrait_w`` points); consecutive ones share their pages. The PDF and the Word document
    both follow it."""
    from reportlab.lib.pagesizes import A4

    portrait_w = frame_size(A4)[0] if portrait_w is None else portrait_w
    return {id(item) for section in report._sections for item in section.items if is_wide(item, portrait_w)}


def flowables(report, avail_w: float, avail_h: float, spool: Path, *, landscape_w: float | None = None,
              landscape_h: float | None = None) -> list:
    """The story; its images are files in ``spool`` (see :func:`_image`), which must outlive the build.
    With ``landscape_w`` (the frame of the "landscape" page template), wide tables are laid out on
    landscape pages (see :func:`_landscape_items`); without, every table shares the portrait frame."""
    from reportlab.platypus import KeepTogether, NextPageTemplate, PageBreak, Paragraph, Spacer, Table, TableStyle

    st = styles()
    story = [Paragraph(escape(report.title), st["title"])]
    if report.study_name:
        story.append(Paragraph(escape(report.study_name), st["study"]))
    wide = landscape_items(report, avail_w) if landscape_w else set()
    state = {"landscape": False}

    def orient(landscape: bool) -> None:
        if landscape != state["landscape"]:
            while story and isinstance(story[-1], Spacer):  # a spacer before the switch made reportlab add a blank page
                story.pop()
            story.extend([NextPageTemplate("landscape" if landscape else "portrait"), PageBreak()])
            state["landscape"] = landscape

    for k, section in enumerate(report._sections):
        starts_wide = bool(section.items) and id(section.items[0]) in wide
        if state["landscape"] and not starts_wide:
            orient(False)
        elif section.new_page and k > 0 and not (starts_wide and not state["landscape"]):
            story.append(PageBreak())
        if starts_wide:
            orient(True)  # the section's heading goes with its table
        story.append(Paragraph(escape(section.title), st["h2"]))
        for item in section.items:
            orient(id(item) in wide)
            frame_w = landscape_w if state["landscape"] else avail_w
            frame_h = landscape_h if state["landscape"] else avail_h
            title = [Paragraph(escape(item.title), st["h3"])] if item.title else []
            caption = [Paragraph(escape(item.caption), st["note"])] if item.caption else []
            if item.kind == "table":
                tables, n_groups = _table(item, frame_w)
                if n_groups > 1:  # said before the table, where a reader starts (and never alone on a page)
                    title = title + [Paragraph(f"(Wide table shown in {n_groups} column groups; the first column "
                                               "is repeated.)", st["note"])]
                    title[-1].keepWithNext = 1
                body = []
                for t in tables:
                    body += [t, Spacer(1, 4)]
                story += title + body + caption + [Spacer(1, 4)]
            elif item.kind == "image":
                shown = (_figure if item.figure else _image)(item, frame_w, frame_h, spool)
                story.append(KeepTogether(title + [shown] + caption))
            elif item.kind == "html":
                story += title + [Paragraph(text, st[kind]) for kind, text in html_blocks(item.html)]
            elif item.kind == "text":
                story += title + [Paragraph(escape(p), st["body"]) for p in item.paragraphs]
    orient(False)
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
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as _canvas
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate

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

    margins = dict(zip(("leftMargin", "rightMargin", "topMargin", "bottomMargin"), (m * mm for m in MARGINS_MM)))
    doc = BaseDocTemplate(
        str(path), pagesize=A4, **margins,
        title=report.title, author="hemiface", creator=f"hemiface {__version__}", subject=report.study_name or "",
    )
    templates = []
    for name, size in (("portrait", A4), ("landscape", landscape(A4))):
        frame = Frame(margins["leftMargin"], margins["bottomMargin"],
                      size[0] - margins["leftMargin"] - margins["rightMargin"],
                      size[1] - margins["topMargin"] - margins["bottomMargin"], id=name,
                      **{f"{side}Padding": FRAME_PADDING_PT for side in ("left", "right", "top", "bottom")})
        templates.append(PageTemplate(id=name, frames=[frame], pagesize=size))
    doc.addPageTemplates(templates)
    (pw, ph), (lw, lh) = frame_size(A4), frame_size(landscape(A4))
    # the images are spooled next to the output (patient data stays where the user writes it), then removed
    with tempfile.TemporaryDirectory(prefix=".hemiface-pdf-images-", dir=Path(path).parent) as spool:
        story = flowables(report, pw, ph, Path(spool), landscape_w=lw, landscape_h=lh)
        doc.build(story, canvasmaker=NumberedCanvas)
