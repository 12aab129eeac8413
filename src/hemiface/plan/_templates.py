"""Printable cutting templates at exactly 1:1: one PDF page per sheet (the page is the sheet) and one SVG.

Each sheet is first described once as a list of shapes in millimetres (origin at the sheet's lower
left corner, y up), then rendered by reportlab (PDF, 72/25.4 points per mm) and as SVG (mm user
units). Drawn per sheet: its edge, a scale bar (50 mm, or the longest 10 mm multiple that fits)
along an edge inside the margin, a caption; per piece: its outline and holes, the label "L<k>.<j>"
(layer k, piece j), arrows to the patient's superior (S) and medial (M) side, and short arrows from
the outline toward the nearest landmarks with their 3D distance (anchoring references).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

MM_TO_PT = 72.0 / 25.4
SCALE_BAR_MM = 50.0
_TEXT_PT = 4.5


@dataclass
class Sheet:
    """The shapes of one sheet (mm)."""

    width_mm: float
    height_mm: float
    lines: list = field(default_factory=list)  # (points (n, 2), closed, width_mm, grey 0..1)
    texts: list = field(default_factory=list)  # (x, y, text, size_pt, anchor "start"|"middle")

    def line(self, points, *, closed=False, width_mm=0.25, grey=0.0):
        self.lines.append((np.asarray(points, dtype=float), closed, width_mm, grey))

    def text(self, x, y, text, *, size_pt=_TEXT_PT, anchor="start"):
        self.texts.append((float(x), float(y), str(text), size_pt, anchor))

    def arrow(self, start, direction, length_mm, label, *, width_mm=0.2):
        start, d = np.asarray(start, float), np.asarray(direction, float)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        end = start + length_mm * d
        side = np.array([-d[1], d[0]])
        head = 0.25 * length_mm if length_mm < 6 else 1.5
        self.line([start, end], width_mm=width_mm)
        self.line([end - head * d + 0.5 * head * side, end, end - head * d - 0.5 * head * side], width_mm=width_mm)
        if label:
            tip = end + 1.2 * d
            self.text(tip[0], tip[1] - 0.5, label, anchor="middle")


def scale_bar_length_mm(width_mm: float, height_mm: float) -> tuple[float, bool]:
    """The scale bar's length and whether it runs along the bottom (else the left) edge."""
    if width_mm >= SCALE_BAR_MM:
        return SCALE_BAR_MM, True
    if height_mm >= SCALE_BAR_MM:
        return SCALE_BAR_MM, False
    return float(max(10.0, 10.0 * np.floor(max(width_mm, height_mm) / 10.0))), width_mm >= height_mm


def sheet_frame(sheet: Sheet, caption: str, margin_mm: float) -> float:
    """Edge, scale bar and caption of a sheet; returns the bar's length (mm)."""
    w, h = sheet.width_mm, sheet.height_mm
    sheet.line([[0, 0], [w, 0], [w, h], [0, h]], closed=True, width_mm=0.15, grey=0.6)
    length, bottom = scale_bar_length_mm(w, h)
    y = 0.5 * margin_mm
    tick = 0.4 * margin_mm
    if bottom:
        x0 = 0.5 * (w - length)
        sheet.line([[x0, y], [x0 + length, y]], width_mm=0.3)
        for x in np.arange(0.0, length + 1e-9, 10.0):
            sheet.line([[x0 + x, y - tick], [x0 + x, y + tick]], width_mm=0.15)
    else:
        y0 = 0.5 * (h - length)
        sheet.line([[y, y0], [y, y0 + length]], width_mm=0.3)
        for t in np.arange(0.0, length + 1e-9, 10.0):
            sheet.line([[y - tick, y0 + t], [y + tick, y0 + t]], width_mm=0.15)
    sheet.text(1.0, h - 0.5 * margin_mm - 0.6, f"{caption}  bar {length:g} mm, ticks 10 mm")
    return length


def pdf_bytes(sheets: list[Sheet], *, title: str) -> bytes:
    """One page per sheet, each exactly the sheet's size (reportlab)."""
    import io

    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(sheets[0].width_mm * MM_TO_PT, sheets[0].height_mm * MM_TO_PT),
                      invariant=1, pageCompression=0)
    c.setTitle(title)
    c.setCreator("hemiface")
    for sheet in sheets:
        c.setPageSize((sheet.width_mm * MM_TO_PT, sheet.height_mm * MM_TO_PT))
        c.setLineCap(0)
        c.setLineJoin(1)
        for points, closed, width, grey in sheet.lines:
            c.setStrokeGray(grey)
            c.setLineWidth(width * MM_TO_PT)
            path = c.beginPath()
            path.moveTo(*(points[0] * MM_TO_PT))
            for p in points[1:]:
                path.lineTo(*(p * MM_TO_PT))
            if closed:
                path.close()
            c.drawPath(path, stroke=1, fill=0)
        c.setFillGray(0.0)
        for x, y, text, size, anchor in sheet.texts:
            c.setFont("Helvetica", size)
            draw = c.drawCentredString if anchor == "middle" else c.drawString
            draw(x * MM_TO_PT, y * MM_TO_PT, text)
        c.showPage()
    c.save()
    return buf.getvalue()


def svg_text(sheets: list[Sheet], *, title: str, gap_mm: float = 10.0) -> str:
    """All sheets side by side in one SVG whose user unit is the millimetre (width and height in mm)."""
    total_w = sum(s.width_mm for s in sheets) + gap_mm * (len(sheets) - 1)
    total_h = max(s.height_mm for s in sheets)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:g}mm" height="{total_h:g}mm" '
           f'viewBox="0 0 {total_w:g} {total_h:g}">', f"<title>{escape(title)}</title>"]
    x0 = 0.0
    for i, sheet in enumerate(sheets):
        # Sheet coordinates have y up: flip into SVG's y-down user space, 1 unit = 1 mm.
        out.append(f'<g id="sheet{i + 1}" transform="translate({x0:g} {total_h:g}) scale(1 -1)">')
        for points, closed, width, grey in sheet.lines:
            tag = "polygon" if closed else "polyline"
            pts = " ".join(f"{x:.3f},{y:.3f}" for x, y in points)
            g = int(round(255 * grey))
            out.append(f'<{tag} points="{pts}" fill="none" stroke="rgb({g},{g},{g})" stroke-width="{width:g}"/>')
        for x, y, text, size, anchor in sheet.texts:
            out.append(f'<text transform="translate({x:.3f} {y:.3f}) scale(1 -1)" font-family="Helvetica, Arial, sans-serif" '
                       f'font-size="{size / MM_TO_PT:.3f}" text-anchor="{anchor}">{escape(text)}</text>')
        out.append("</g>")
        x0 += sheet.width_mm + gap_mm
    out.append("</svg>")
    return "\n".join(out) + "\n"
