"""The :class:`Report` object: sections of tables, figures, images and text, saved as HTML, PDF or Word.

One list of items feeds every output, so the HTML file, the PDF and the Word
document show the same content. The HTML file is self-contained (inline CSS, images as base64
PNG, no scripts, fonts or links to fetch); the PDF is drawn with reportlab and
the DejaVu Sans font that ships with matplotlib (no system libraries).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .. import __version__, logger
from .._outputs import check_writable, staged_outputs
from ._errors import ForbiddenContentError, ReportError
from ._format import Formatter, format_table, format_value

#: Forbidden strings shorter than this would match ordinary words; they are refused.
MIN_FORBIDDEN_LENGTH = 3
#: Resolution at which figures are rasterised for the HTML file (dots per inch).
FIGURE_DPI = 150
#: Resolution of the figures in the Word document (print: journals ask for 300 dpi or more).
PRINT_DPI = 300
_DATA_URI_RE = re.compile(r"data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=]*")


def write_text_parts(path: Path, parts) -> None:
    """Write the strings of ``parts`` one after another to a new UTF-8 text file (a document too large to
    hold as one string)."""
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(parts)


@dataclass
class _Item:
    kind: str  # "table", "image", "html", "text"
    title: str | None = None
    caption: str | None = None
    # table
    columns: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    numeric: list = field(default_factory=list)
    # image
    png: bytes = b""  # the encoded image (PNG, or JPEG when ``mime`` says so)
    mime: str = "image/png"
    width_px: int = 0
    height_px: int = 0
    max_height_mm: float | None = None
    # figure: a pickled copy of the matplotlib figure, drawn again on demand (vector, print resolution)
    figure: bytes = field(default=b"", repr=False)
    _renders: dict = field(default_factory=dict, repr=False)
    # html / text
    html: str = ""
    paragraphs: list = field(default_factory=list)

    def render(self, fmt: str, *, dpi: int | None = None) -> bytes:
        """A figure drawn again from its copy, as ``fmt`` ("svg", "png"...) at ``dpi``; cached.

        Images (and a figure that could not be copied) have no copy: they give their PNG or JPEG bytes.
        """
        if not self.figure:
            return self.png
        key = (fmt, dpi)
        if key not in self._renders:
            import pickle

            import matplotlib
            import matplotlib.pyplot as plt

            fig = pickle.loads(self.figure)
            buf = io.BytesIO()
            metadata = {"svg": {"Creator": None, "Date": None}, "png": {"Software": None},
                        "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}.get(fmt)
            try:  # glyphs as paths: the PDF then shows the figure's own font (svglib would substitute its own)
                with matplotlib.rc_context({"svg.fonttype": "path"}):
                    fig.savefig(buf, format=fmt, dpi=dpi or "figure", facecolor="white", metadata=metadata)
            finally:
                plt.close(fig)
            self._renders[key] = buf.getvalue()
        return self._renders[key]

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    def texts(self) -> list[str]:
        """Every string a reader could see (for the forbidden-content guard)."""
        out = [self.title or "", self.caption or "", self.html, *self.paragraphs, *map(str, self.columns), *self.labels]
        out += [cell for row in self.rows for cell in row]
        if self.html:
            out.append(_html.unescape(re.sub(r"<[^>]*>", " ", self.html)))
        return out


@dataclass
class _Section:
    title: str
    id: str
    new_page: bool = False
    items: list = field(default_factory=list)
    docx: bool = True


_URL_CREDENTIALS_RE = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/@\s]+@")


def _parameter_text(value) -> str:
    """A parameter as shown: paths by file name only (folders can carry names), URL passwords masked."""
    if isinstance(value, os.PathLike):
        return Path(value).name
    return _URL_CREDENTIALS_RE.sub(r"\1***@", format_value(value, "text"))


def _flatten(mapping: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple, set, frozenset)):
            out.append((name, ", ".join(_parameter_text(v) for v in value)))
        else:
            out.append((name, _parameter_text(value)))
    return out


def _to_pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.copy()
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = np.clip(np.nan_to_num(array.astype(float)) * (255 if array.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    path = Path(image)
    if not path.is_file():
        raise ReportError(f"image {path.name!r} does not exist or is not a file")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except OSError as exc:
        raise ReportError(f"image {path.name!r} could not be read: {exc}") from None


def drop_title_band(img):
    """Hide a figure's title (which may name a file) and trim the white margins.

    The title is the ink above the top axes line: the first row, in the top
    half, whose dark pixels span at least 30 % of the width. All ink above it
    is painted white except what lies right of the axes and continues below
    the line (a colour bar and its label). The white margins are
    then trimmed. The image is returned unchanged when no axes line is found.
    """
    from PIL import Image, ImageChops

    img = img.convert("RGB")
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    dark = gray < 160
    line = np.flatnonzero((gray[: gray.shape[0] // 2] < 80).mean(axis=1) >= 0.3)
    if not len(line):
        logger.info("report: no axes line found; image kept with its title")
        return img
    top = int(line[0])
    # the axes' right end: the end of the last long dark run on that line (a colour bar may cross it further right)
    on = np.r_[False, gray[top] < 80, False]
    starts, ends = np.flatnonzero(~on[:-1] & on[1:]), np.flatnonzero(on[:-1] & ~on[1:])
    axes_right = int(ends[(ends - starts) >= 50][-1]) if np.any((ends - starts) >= 50) else img.width
    ink = np.flatnonzero(dark[: max(top - 1, 0)].any(axis=0))
    out = img.copy()
    if len(ink):
        # group inked columns into clusters separated by more than 25 px of blank
        breaks = np.flatnonzero(np.diff(ink) > 25)
        for c0, c1 in zip(np.r_[ink[0], ink[breaks + 1]], np.r_[ink[breaks], ink[-1]]):
            c0, c1 = int(c0), int(c1)
            label = c0 > axes_right and dark[top + 2: top + 40, c0: c1 + 1].any()
            if not label:
                out.paste((255, 255, 255), (max(c0 - 3, 0), 0, min(c1 + 4, img.width), max(top - 1, 0)))
    box = ImageChops.difference(out, Image.new("RGB", out.size, (255, 255, 255))).getbbox()
    if box is None:
        return out
    pad = 6
    return out.crop((max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, out.width),
                     min(box[3] + pad, out.height)))


def _png_bytes(img, *, max_width_px: int, jpeg: bool = False) -> tuple[bytes, int, int]:
    """Re-encode as a PNG (or a JPEG, quality 85) without any metadata (no EXIF, ICC, text chunks),
    at most ``max_width_px`` wide."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[-1])
        img = flat
    else:
        img = img.convert("RGB")
    if img.width > max_width_px:
        img = img.resize((max_width_px, round(img.height * max_width_px / img.width)), Image.LANCZOS)
    img.info = {}
    buf = io.BytesIO()
    if jpeg:
        img.save(buf, format="JPEG", quality=85, optimize=False)
    else:
        img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue(), img.width, img.height


def _figure_copy(fig) -> bytes:
    """A pickled copy of a matplotlib figure (later changes to ``fig`` do not show), or b"" when it cannot be
    pickled; then the PDF and the Word document show the figure's PNG instead of redrawing it."""
    import pickle

    try:
        return pickle.dumps(fig)
    except Exception as exc:  # an artist that does not pickle (a lambda formatter...): fall back, say so
        logger.info("report: figure cannot be copied (%s); the PDF shows it as an image", type(exc).__name__)
        return b""


def _slug(text: str, taken: set) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


class Report:
    """A report: titled sections holding tables, figures, images and text; saved as HTML and PDF.

    Parameters
    ----------
    title : str
        The report's title (first heading; PDF page header).
    study_name : str, optional
        Shown under the title and in every PDF page header.
    parameters : mapping, optional
        Settings the results were computed with; listed in the footer (nested
        mappings flattened to ``a.b`` keys).
    forbidden : iterable of str
        Strings that must never appear in the report (names, raw identifiers,
        source file names). Matching ignores case. :meth:`save_html` and
        :meth:`save_pdf` raise :class:`ForbiddenContentError` if one appears in
        any title, caption, table cell, text or parameter. Text drawn inside
        images cannot be checked.
    date : datetime.date or str, optional
        Date shown in the footer [default: today (UTC)].

    Examples
    --------
    >>> import pandas as pd
    >>> report = Report("Volumes", study_name="Pilot")
    >>> report.add_table(pd.DataFrame({"n": [3], "defect_volume_mm3": [4953.4]}), "Defects", section="Results")
    <Report 'Volumes': 1 sections, 1 items>
    >>> report.sections
    ['Results']
    >>> report.save_html("volumes.html")  # doctest: +SKIP
    """

    def __init__(self, title: str = "hemiface report", *, study_name: str | None = None,
                 parameters: Mapping | None = None, forbidden: Iterable[str] = (), date=None):
        self.title = str(title)
        self.study_name = None if study_name is None else str(study_name)
        self.parameters = dict(parameters or {})
        if date is None:
            date = _dt.datetime.now(_dt.timezone.utc).date()
        self.date = date.isoformat() if isinstance(date, _dt.date) else str(date)
        self._forbidden: list[str] = []
        self._sections: list[_Section] = []
        self._ids: set = set()
        self.forbid(*forbidden)

    def __repr__(self) -> str:
        n = sum(len(s.items) for s in self._sections)
        return f"<Report {self.title!r}: {len(self._sections)} sections, {n} items>"

    # -- content ---------------------------------------------------------------------------
    @property
    def sections(self) -> list[str]:
        """Section titles, in order."""
        return [s.title for s in self._sections]

    def forbid(self, *strings: str) -> "Report":
        """Add strings that must never appear in the report (see the class docstring)."""
        for s in strings:
            s = str(s).strip()
            if len(s) < MIN_FORBIDDEN_LENGTH:
                raise ReportError(
                    f"forbidden strings must have at least {MIN_FORBIDDEN_LENGTH} characters (shorter ones match "
                    f"ordinary words); got one of {len(s)}"
                )
            self._forbidden.append(s)
        return self

    def add_section(self, title: str, *, new_page: bool = False, docx: bool = True) -> "Report":
        """Start a section; later items without ``section=`` go into it. ``new_page`` starts it on a new PDF page;
        ``docx=False`` leaves it out of the Word document (which is for a manuscript: per-patient pages, say)."""
        title = str(title)
        section = _Section(title, _slug(title, self._ids), new_page, docx=docx)
        self._sections.append(section)
        return self

    def _target(self, section: str | None, fallback: str | None) -> _Section:
        if section is None:
            if self._sections:
                return self._sections[-1]
            section = fallback or "Results"
        for s in self._sections:
            if s.title == section:
                return s
        self.add_section(section)
        return self._sections[-1]

    def add_table(self, table: pd.DataFrame, title: str | None = None, *, caption: str | None = None,
                  section: str | None = None, formats: Mapping[str, Formatter] | None = None) -> "Report":
        """Add a DataFrame as a table, numbers formatted by column name (see :mod:`hemiface.report._format`).

        A named or non-default index is shown as leading columns. ``formats``
        overrides a column's format: a kind ("p", "n", "mm3", "mm", "percent",
        "stat", "general", "text"...), a format string ("{:.2f}") or a function.
        The table is copied; later changes to ``table`` do not show.
        """
        columns, labels, rows, numeric = format_table(table, formats=formats)
        if not columns:
            raise ReportError(f"table {title or ''!r} has no columns; give at least one")
        item = _Item("table", title, caption, columns=columns, labels=labels, rows=rows, numeric=numeric)
        self._target(section, title).items.append(item)
        return self

    def add_figure(self, fig, title: str | None = None, *, caption: str | None = None, section: str | None = None,
                   dpi: int = FIGURE_DPI, max_height_mm: float | None = None) -> "Report":
        """Add a matplotlib figure: rasterised now to a PNG without metadata (the HTML file's), and copied
        (pickled), so that the PDF draws it as vectors and the Word document at :data:`PRINT_DPI`. Later
        changes to ``fig`` do not show; the figure itself is not changed."""
        from matplotlib.figure import Figure

        if not isinstance(fig, Figure):
            raise ReportError(f"add_figure takes a matplotlib Figure; got {type(fig).__name__} (use add_image for files)")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, facecolor="white",
                    pil_kwargs={"compress_level": 1})  # re-encoded below
        from PIL import Image

        buf.seek(0)
        with Image.open(buf) as im:
            png, w, h = _png_bytes(im, max_width_px=4000)
        self._target(section, title).items.append(
            _Item("image", title, caption, png=png, width_px=w, height_px=h, max_height_mm=max_height_mm,
                  figure=_figure_copy(fig)))
        return self

    def add_image(self, image, title: str | None = None, *, caption: str | None = None, section: str | None = None,
                  max_width_px: int = 1600, max_height_mm: float | None = None, crop_title: bool = False,
                  photo: bool = False) -> "Report":
        """Add an image (a path, a PIL image or an RGB array), re-encoded as PNG with no metadata.

        ``photo=True`` encodes it as JPEG (quality 85, no metadata) instead: photographs and shaded
        renders take a fifth of the space, which matters for reports with a page per patient.

        ``crop_title`` drops the band above the figure's top axes line (see
        :func:`drop_title_band`): hemiface's depth and gain maps name the scan
        file there.
        """
        img = _to_pil(image)
        if crop_title:
            img = drop_title_band(img)
        png, w, h = _png_bytes(img, max_width_px=max_width_px, jpeg=photo)
        self._target(section, title).items.append(
            _Item("image", title, caption, png=png, mime="image/jpeg" if photo else "image/png", width_px=w,
                  height_px=h, max_height_mm=max_height_mm))
        return self

    def add_html(self, html: str, title: str | None = None, *, section: str | None = None) -> "Report":
        """Add an HTML fragment (inline markup: p, b, i, sup, sub, ul/ol/li, br). The PDF keeps its text and emphasis.

        Fragments must not reference outside resources (``src=``/``href=`` to
        http(s) or files), which would break the single self-contained file.
        """
        html = str(html)
        if re.search(r"""(src|href)\s*=\s*["']?(?!#|data:)""", html, re.IGNORECASE) or re.search(r"<\s*script", html, re.I):
            raise ReportError("add_html: fragments may not load resources (src/href) or run scripts; "
                              "embed images with add_image or add_figure")
        self._target(section, title).items.append(_Item("html", title, html=html))
        return self

    def add_text(self, text: str, title: str | None = None, *, section: str | None = None) -> "Report":
        """Add plain text; blank lines separate paragraphs."""
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(text)) if p.strip()]
        self._target(section, title).items.append(_Item("text", title, paragraphs=paragraphs))
        return self

    # -- checks ------------------------------------------------------------------------------
    def _check_forbidden(self) -> None:
        if not self._forbidden:
            return
        lowered = [(i, s.lower()) for i, s in enumerate(self._forbidden, 1)]

        def hit(texts) -> int | None:
            blob = "\n".join(texts).lower()
            return next((i for i, s in lowered if s in blob), None)

        where = None
        header = [self.title, self.study_name or "", *(k + " " + v for k, v in _flatten(self.parameters))]
        if (i := hit(header)) is not None:
            where = "the title, study name or parameters"
        for k, section in enumerate(self._sections, 1):
            if where:
                break
            if (i := hit([section.title])) is not None:
                where = f"the title of section {k}"
                break
            for n, item in enumerate(section.items, 1):
                if (i := hit(item.texts())) is not None:
                    # name the section by number only: its title may hold the secret too
                    where = f"item {n} ({item.kind}) of section {k} of {len(self._sections)}"
                    break
        if where is None:  # the rendered page, in case a template adds text
            i = hit([_html.unescape(_DATA_URI_RE.sub("", self._render_html(embed_images=False)))])
            where = "the rendered report" if i is not None else None
        if where is not None:
            # The string itself is not repeated: error messages end up in logs.
            raise ForbiddenContentError(
                f"the report would show forbidden string #{i} of {len(self._forbidden)} in {where}; "
                "remove it (use the pseudonymous patient id) before saving"
            )

    # -- HTML ------------------------------------------------------------------------------
    def _html_parts(self, *, embed_images: bool = True):
        """The HTML document in pieces (jinja2's ``generate``): each image is base64-encoded only when its
        piece is made, so a writer holds one image's text at a time. Without ``embed_images`` the images'
        data URIs are empty (what the forbidden-string check reads: every visible string, no image data)."""
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("hemiface.report", "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
        )
        return env.get_template("report.html.j2").generate(
            title=self.title, study_name=self.study_name, sections=self._sections, version=__version__,
            date=self.date, parameters=_flatten(self.parameters), embed_images=embed_images,
        )

    def _render_html(self, *, embed_images: bool = True) -> str:
        return "".join(self._html_parts(embed_images=embed_images))

    def to_html(self) -> str:
        """The report as one self-contained HTML document (checked for forbidden strings)."""
        self._check_forbidden()
        return self._render_html()

    def save_html(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write one self-contained HTML file, atomically (temporary file, then rename).

        Raises :class:`~hemiface._errors.OutputExistsError` if ``path`` exists
        and ``overwrite`` is False.
        """
        path = Path(path)
        check_writable(path.parent, [path.name], overwrite=overwrite)
        self._check_forbidden()
        with staged_outputs(path.parent, [path.name], overwrite=overwrite) as stage:
            write_text_parts(stage / path.name, self._html_parts())
        return path

    # -- Word ------------------------------------------------------------------------------
    def save_docx(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the report as a Word document (.docx: A4, journal-style tables, figures at print resolution),
        atomically, without the sections added with ``docx=False``.

        Raises :class:`~hemiface._errors.OutputExistsError` if ``path`` exists and ``overwrite`` is False.
        """
        from ._docx import write_docx

        path = Path(path)
        check_writable(path.parent, [path.name], overwrite=overwrite)
        self._check_forbidden()
        with staged_outputs(path.parent, [path.name], overwrite=overwrite) as stage:
            write_docx(self, stage / path.name)
        return path

    # -- PDF -------------------------------------------------------------------------------
    def save_pdf(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the report as a PDF (A4, page header with the study name, page numbers), atomically.

        Raises :class:`~hemiface._errors.OutputExistsError` if ``path`` exists
        and ``overwrite`` is False.
        """
        from ._pdf import write_pdf

        path = Path(path)
        check_writable(path.parent, [path.name], overwrite=overwrite)
        self._check_forbidden()
        from reportlab.platypus.doctemplate import LayoutError

        with staged_outputs(path.parent, [path.name], overwrite=overwrite) as stage:
            try:
                write_pdf(self, stage / path.name)
            except LayoutError:
                raise ReportError("the PDF cannot be laid out: a title, table cell or figure is too large for "
                                  "an A4 page; nothing was written") from None
        return path
