"""Reading back what a report wrote: HTML structure and tables, PDF page counts, numbers as displayed."""

import math
import re
from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}


class Html(HTMLParser):
    """Checks nesting (every element closed, in order) and collects headings, tables and attributes."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.h2, self.h3, self.attrs, self.tables, self.text = [], [], [], [], []
        self._heading = None
        self._table = None
        self._cell = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)
        if tag in ("h2", "h3"):
            self._heading = (tag, [])
        if tag == "table" and ("class", "data") in attrs:
            self._table = {"columns": [], "rows": []}
        if self._table is not None and tag == "th":
            self._table["columns"].append(dict(attrs).get("data-column"))
        if self._table is not None and tag == "tr":
            self._row = []
        if self._table is not None and tag in ("td", "th", "caption"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()
        if tag in ("h2", "h3") and self._heading:
            getattr(self, tag).append("".join(self._heading[1]).strip())
            self._heading = None
        if self._table is not None:
            if tag == "caption":
                self._table["caption"] = "".join(self._cell).strip()
                self._cell = None
            elif tag == "td":
                self._row.append("".join(self._cell).strip())
                self._cell = None
            elif tag == "th":
                self._cell = None
            elif tag == "tr" and self._row:
                self._table["rows"].append(self._row)
            elif tag == "table":
                self.tables.append(self._table)
                self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self._heading[1].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, caption: str) -> dict:
        found = [t for t in self.tables if t.get("caption") == caption]
        assert len(found) == 1, f"{caption!r}: {[t.get('caption') for t in self.tables]}"
        return found[0]


def pdf_pages(path) -> int:
    data = open(path, "rb").read()
    assert data.startswith(b"%PDF-"), data[:20]
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def decimals(text: str) -> int:
    m = re.search(r"\.(\d+)", text)
    return len(m.group(1)) if m else 0


def matches(cell: str, value) -> bool:
    """Whether a displayed cell shows ``value`` to the precision it displays (or as missing, yes/no, <0.001)."""
    if isinstance(value, (list, tuple)):
        return cell == ", ".join(map(str, value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return cell == "\u2013"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return cell == ("yes" if value else "no")
    if isinstance(value, str):
        return cell == value
    if cell.startswith("<"):
        return float(value) < float(cell[1:])
    shown = float(cell.replace(",", ""))
    if "e" in cell.lower():
        return math.isclose(shown, float(value), rel_tol=0.05)
    return abs(shown - float(value)) <= 0.5 * 10 ** (-decimals(cell)) * (1 + 1e-9)
