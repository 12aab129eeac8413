"""Reading back what a report wrote: HTML structure and tables, PDF page counts, numbers as displayed."""

import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}
TECHNIQUES = ("fat_grafting", "free_flap", "adm")
#: A file name that plays a patient's name in the scan tests: it must never reach a report.
SCAN_PRE, SCAN_POST = "Doe_Jane_pre.ply", "Doe_Jane_post.ply"


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


def endpoint_rows(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` patients (a multiple of 3) with the endpoint table's columns, every value present."""
    rng = np.random.default_rng(seed)
    tech = np.array(TECHNIQUES * (n // 3))
    sr_b = rng.normal(86, 5, n)
    sr_f = sr_b + rng.normal(5, 3, n)
    d_b = rng.normal(9000, 3000, n)
    d_f = d_b - rng.normal(3000, 1500, n)
    unaffected = rng.normal(300000, 20000, n)
    surgery = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    interval = rng.integers(180, 500, n)
    df = pd.DataFrame({
        "patient_id": [f"HFA-{i:03d}" for i in range(n)],
        "technique": tech,
        "affected_side": rng.choice(["left", "right"], n),
        "sex": rng.choice(["female", "male"], n),
        "age_at_surgery_years": rng.uniform(14, 55, n),
        "guerrerosantos_stage": rng.choice([1, 2, 3, 4], n),
        "age_at_onset_years": rng.uniform(5, 15, n),
        "years_since_onset": rng.uniform(3, 30, n),
        "initial_surgery_date": surgery,
        "baseline_date": surgery - pd.to_timedelta(rng.integers(1, 80, n), unit="D"),
        "followup_date": surgery + pd.to_timedelta(interval, unit="D"),
        "followup_interval_days": interval,
        "symmetry_ratio_baseline_percent": sr_b,
        "symmetry_ratio_followup_percent": sr_f,
        "symmetry_ratio_change": sr_f - sr_b,
        "discrepancy_baseline_mm3": d_b,
        "discrepancy_followup_mm3": d_f,
        "discrepancy_change_mm3": d_f - d_b,
        "discrepancy_baseline_percent": 100 * d_b / unaffected,
        "discrepancy_followup_percent": 100 * d_f / unaffected,
        "discrepancy_change_percent": 100 * (d_f - d_b) / unaffected,
        "defect_volume_baseline_mm3": d_b * 0.9,
        "volume_gain_mm3": d_b - d_f,
        "complications_followup": rng.choice(["", "seroma", "fat necrosis"], n),
        "major_complication": rng.random(n) < 0.15,
        "missing_2d_reason": None,
        "missing_3d_reason": None,
        "faceq_cheeks_baseline": rng.uniform(20, 60, n),
        "faceq_cheeks_followup": rng.uniform(40, 90, n),
    })
    df["complications_followup_n"] = (df["complications_followup"] != "").astype(int)
    df["faceq_cheeks_change"] = df["faceq_cheeks_followup"] - df["faceq_cheeks_baseline"]
    return df
