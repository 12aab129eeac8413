"""Printable cutting templates at exactly 1:1: one PDF page per sheet (the page is the sheet) and one SVG.

Each sheet is first described once as a list of shapes in millimetres (origin at the sheet's lower
left corner, y up), then rendered by reportlab (PDF, 72/25.4 points per mm) and as SVG (mm user
units). Drawn per sheet: its edge, a scale bar (50 mm, or the longest 10 mm multiple that fits)
along an edge inside the margin, a caption; per piece: its outline and holes, the label "L<k>.<j>"
(layer k, piece j), arrows to the patient's superior (S) and medial (M) side, and short arrows from
the outline toward the nearest landmarks with their 3D distance (anchoring references).

Where a piece's marks go (:func:`draw_piece`): the label, the S/M compass and the numbered list of
references form one block centred on the point farthest inside the outline, when the block fits
inside with 0.4 mm to spare (the label shrinks from 9 to 4 pt, then the references from 3.5 to
2.5 pt); when it does not, each reference is written beside its arrow (numbered at both ends when
it has to go farther than 2 mm), and a piece too small for its label and compass has them beside
its outline. Such a piece is packed in a square with room for its marks
(:func:`marks_room_mm`; a square, so packing never turns it). Everything a piece draws stays inside
its own part of the sheet (its box and the cutting gap, :func:`hemiface.plan._layout.own_area`), so
no mark reaches a neighbour; a mark that finds no free spot there is drawn over its own piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

MM_TO_PT = 72.0 / 25.4
SCALE_BAR_MM = 50.0
_TEXT_PT = 4.5
#: Text sizes (pt): the anchoring references, and the label's range (it shrinks to fit its piece).
ANCHOR_PT = 3.5
#: Sizes tried in turn for a reference written beside its arrow (pt).
ANCHOR_PT_STEPS = (ANCHOR_PT, 3.0, 2.5)
LABEL_PT = (4.0, 9.0)
#: Marks kept this far inside an outline (mm).
_CLEAR_MM = 0.4


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

    def text_boxes(self) -> np.ndarray:
        """(n, 4) boxes x0, y0, x1, y1 (mm) of the texts: their advance width and the font size in height,
        from the baseline less a fifth of it (descenders)."""
        boxes = []
        for x, y, text, size, anchor in self.texts:
            w, h = text_width_mm(text, size), size / MM_TO_PT
            x0 = x - 0.5 * w if anchor == "middle" else x
            boxes.append((x0, y - 0.2 * h, x0 + w, y + 0.8 * h))
        return np.array(boxes).reshape(-1, 4)

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


def text_width_mm(text: str, size_pt: float) -> float:
    """Advance width of ``text`` in Helvetica (the font both renderings name), mm."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return stringWidth(text, "Helvetica", size_pt) / MM_TO_PT


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


class _Inside:
    """Point-in-piece and clearance to the rim for placed outlines (outer first, then holes)."""

    def __init__(self, outlines: list[np.ndarray]):
        from matplotlib.path import Path
        from scipy.spatial import cKDTree

        rims, paths = [], []
        for o in outlines:
            ring = np.vstack([o, o[:1]])
            seg = np.linalg.norm(np.diff(ring, axis=0), axis=1)
            # The rim every 0.2 mm at least, so that distances to it are distances to the outline ...
            n = np.maximum(np.ceil(seg / 0.2).astype(np.int64), 1)
            start = np.repeat(ring[:-1], n, axis=0)
            t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n)
            rims.append(start + t[:, None] * np.repeat(np.diff(ring, axis=0), n, axis=0))
            # ... and a lighter polygon (a vertex every 0.4 mm) for inside-or-out, which only matters away from it.
            along = np.concatenate([[0.0], np.cumsum(seg)])[:-1]
            keep = np.flatnonzero(np.diff(np.floor(along / 0.4), prepend=-1.0) > 0)
            paths.append(Path(o[keep] if len(keep) >= 3 else o))
        self._outer, self._holes = paths[0], paths[1:]
        self._rim = cKDTree(np.concatenate(rims))

    def rim_distance(self, points: np.ndarray) -> np.ndarray:
        return self._rim.query(np.atleast_2d(points))[0]

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Distance to the rim (mm) of points inside the piece, -1 outside it."""
        points = np.atleast_2d(points)
        inside = self._outer.contains_points(points)
        for hole in self._holes:
            inside &= ~hole.contains_points(points)
        return np.where(inside, self._rim.query(points)[0], -1.0)

    def pole(self, box) -> tuple[np.ndarray, float]:
        """The point of the piece farthest from its rim (on a grid of at most 80 steps a side) and that distance."""
        x0, y0, x1, y1 = box
        step = max(0.2, max(x1 - x0, y1 - y0) / 80.0)
        gx, gy = np.meshgrid(np.arange(x0, x1, step) + step / 2, np.arange(y0, y1, step) + step / 2)
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        d = self.clearance(grid)
        i = int(np.argmax(d))
        return grid[i], float(max(d[i], 0.0))


def _rect_points(rects) -> np.ndarray:
    """Points along the edges of rectangles (x0, y0, x1, y1): (16, 2) for one, (n, 16, 2) for n."""
    r = np.asarray(rects, dtype=float)
    x0, y0, x1, y1 = (r[..., k, None] for k in range(4))
    tx, ty = np.linspace(0.0, 1.0, 5), np.linspace(0.0, 1.0, 3)
    xs, ys = x0 + tx * (x1 - x0), y0 + ty * (y1 - y0)
    one = np.ones_like(tx)
    edges_x = np.concatenate([xs, xs, x0 * np.ones_like(ty), x1 * np.ones_like(ty)], axis=-1)
    edges_y = np.concatenate([y0 * one, y1 * one, ys, ys], axis=-1)
    return np.stack([edges_x, edges_y], axis=-1)


def _text_rect(x: float, y: float, text: str, size_pt: float) -> tuple[float, float, float, float]:
    """The box of a middle-anchored text with its baseline at ``y`` (as :meth:`Sheet.text_boxes`)."""
    w, h = text_width_mm(text, size_pt), size_pt / MM_TO_PT
    return x - 0.5 * w, y - 0.2 * h, x + 0.5 * w, y + 0.8 * h


def _gap(rect, point) -> float:
    """Distance from a point to a rectangle (0 inside it)."""
    dx = max(rect[0] - point[0], 0.0, point[0] - rect[2])
    dy = max(rect[1] - point[1], 0.0, point[1] - rect[3])
    return float(np.hypot(dx, dy))


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _block(label: str, label_pt: float, superior, medial, refs: list[str], arrow_mm: float, refs_pt: float = ANCHOR_PT):
    """The label, S/M compass and references laid out around (0, 0): (texts, arrows, rectangles).

    The compass sits on the label's medial side, so the M arrow points away from the label; the
    references are listed under both."""
    h = label_pt / MM_TO_PT
    texts = [(0.0, -0.35 * h, label, label_pt)]
    rects = [_text_rect(0.0, -0.35 * h, label, label_pt)]
    half = 0.5 * np.array([rects[0][2] - rects[0][0], h])
    for extra in np.arange(0.6, 6.0, 0.3):  # out along the medial direction until no letter is over the label
        origin = medial * (float(np.abs(medial) @ half) + extra)
        arrows = [(origin, superior, arrow_mm, "S"), (origin, medial, arrow_mm, "M")]
        points, letters = [origin], []
        for _, d, length, letter in arrows:  # Sheet.arrow writes the letter 1.2 mm past the tip, 0.5 mm lower
            tip = origin + (length + 1.2) * d
            letters.append(_text_rect(tip[0], tip[1] - 0.5, letter, _TEXT_PT))
            points += [origin + length * d, np.array(letters[-1]).reshape(2, 2)]
        if not any(_overlaps(r, rects[0]) for r in letters):
            break
    compass = np.vstack(points)
    rects.append((*compass.min(axis=0), *compass.max(axis=0)))
    line = 1.25 * refs_pt / MM_TO_PT
    y = min(r[1] for r in rects) - 0.8 * line
    for ref in refs:
        texts.append((0.0, y, ref, refs_pt))
        rects.append(_text_rect(0.0, y, ref, refs_pt))
        y -= line
    return texts, arrows, rects


def _arrow_in_box(start, direction, length_mm: float, box) -> float:
    """The longest arrow up to ``length_mm`` from ``start`` along ``direction`` that stays in ``box``."""
    x0, y0, x1, y1 = box
    for t in np.linspace(length_mm, 0.5, 8):
        end = start + t * direction
        if x0 <= end[0] <= x1 and y0 <= end[1] <= y1:
            return float(t)
    return 0.0


def _bounds(rects) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rects, dtype=float).reshape(-1, 4)
    return r[:, :2].min(axis=0), r[:, 2:].max(axis=0)


def _spot(rects, near: np.ndarray, inward: np.ndarray, box, inside: _Inside, taken: list) -> np.ndarray | None:
    """The shift that puts marks ``rects`` (relative boxes) nearest ``near`` inside ``box``, clear of the marks
    already ``taken`` and not crossing the outline (each wholly inside or wholly outside it, 0.3 mm from the
    rim); spots on the inner side of ``near`` are a little preferred. None when there is none."""
    rects = np.asarray(rects, dtype=float).reshape(-1, 4)
    lo, hi = _bounds(rects)
    x0, y0, x1, y1 = box
    if x1 - x0 < hi[0] - lo[0] or y1 - y0 < hi[1] - lo[1]:
        return None
    gx, gy = np.meshgrid(np.arange(x0 - lo[0], x1 - hi[0] + 1e-9, 0.5), np.arange(y0 - lo[1], y1 - hi[1] + 1e-9, 0.5))
    shifts = np.column_stack([gx.ravel(), gy.ravel()])
    offset = shifts + 0.5 * (lo + hi) - near
    cost = np.linalg.norm(offset, axis=1) - 0.5 * np.clip(offset @ inward, 0.0, None)
    placed = rects[None, :, :] + np.tile(shifts, 2)[:, None, :]  # (spots, rects, 4)
    free = np.ones(len(shifts), bool)
    for t in taken:
        hit = (placed[..., 0] < t[2]) & (t[0] < placed[..., 2]) & (placed[..., 1] < t[3]) & (t[1] < placed[..., 3])
        free &= ~hit.any(axis=1)
    order = np.flatnonzero(free)[np.argsort(cost[free])]
    for chunk in np.array_split(order, max(1, len(order) // 48)):  # nearest spots first, a few dozen at a time
        if not len(chunk):
            continue
        points = _rect_points(placed[chunk])  # (chunk, rects, 16, 2)
        flat = points.reshape(-1, 2)
        c = inside.clearance(flat).reshape(points.shape[:-1])
        rim = inside.rim_distance(flat).reshape(points.shape[:-1])
        clear = ((c >= 0.3).all(axis=-1) | ((c < 0).all(axis=-1) & (rim >= 0.3).all(axis=-1))).all(axis=-1)
        ok = np.flatnonzero(clear)
        if len(ok):
            return shifts[chunk[ok[0]]]
    return None


def _place_text(text: str, near: np.ndarray, inward: np.ndarray, box, inside: _Inside, taken: list):
    """Where to write ``text`` near a point of the outline: (x, baseline y, size in pt), by :func:`_spot`, in the
    largest of :data:`ANCHOR_PT_STEPS` that finds a spot; failing all, the spot nearest ``near`` in the box,
    in the smallest size."""
    for size in ANCHOR_PT_STEPS:
        shift = _spot([_text_rect(0.0, 0.0, text, size)], near, inward, box, inside, taken)
        if shift is not None:
            return float(shift[0]), float(shift[1]), size
    size = ANCHOR_PT_STEPS[-1]
    h, w = size / MM_TO_PT, text_width_mm(text, size)
    x0, y0, x1, y1 = box
    x = min(max(near[0], x0 + 0.5 * w), x1 - 0.5 * w) if x1 - x0 >= w else 0.5 * (x0 + x1)
    y = min(max(near[1] - 0.35 * h, y0 + 0.2 * h), y1 - 0.8 * h) if y1 - y0 >= h else y0 + 0.2 * h
    return float(x), float(y), size


def _inner_block(inside: _Inside, centre: np.ndarray, room: float, label: str, superior, medial, refs: list[str]):
    """The block that fits inside the outline around ``centre``: the references (if given) in the largest of
    :data:`ANCHOR_PT_STEPS`, then the largest label."""
    arrow_mm = float(np.clip(0.25 * room, 1.5, 3.0))
    for refs_pt in ANCHOR_PT_STEPS if refs else (ANCHOR_PT,):
        for label_pt in np.linspace(LABEL_PT[1], LABEL_PT[0], 6):
            texts, arrows, rects = _block(label, float(label_pt), superior, medial, refs, arrow_mm, refs_pt)
            lo, hi = _bounds(rects)
            shift = centre - 0.5 * (lo + hi)
            if (inside.clearance(_rect_points(rects).reshape(-1, 2) + shift) >= _CLEAR_MM).all():
                return texts, arrows, rects, shift
    return None


def marks_fit_inside(outlines: list[np.ndarray], *, label: str, superior: np.ndarray, medial: np.ndarray,
                     refs: list[str]) -> bool:
    """Whether a piece's label, S/M compass and references all fit inside its outline (in the smallest sizes at least)."""
    inside = _Inside(outlines)
    lo, hi = _bounds([(*o.min(axis=0), *o.max(axis=0)) for o in outlines])
    centre, room = inside.pole((*lo, *hi))
    return _inner_block(inside, centre, room, label, superior, medial, refs) is not None


def marks_room_mm(*, label: str, refs: list[str]) -> tuple[float, float]:
    """Width and height (mm) of a piece's label, compass and references written outside a small outline."""
    _, _, rects = _block(label, LABEL_PT[0], np.array([0.0, 1.0]), np.array([1.0, 0.0]), [], 1.5)
    lo, hi = _bounds(rects)
    widths = [text_width_mm(r, ANCHOR_PT) for r in refs]
    line = 1.25 * ANCHOR_PT / MM_TO_PT
    return float(max([hi[0] - lo[0], *widths])), float(hi[1] - lo[1] + line * len(refs) + 1.0)


def draw_piece(sheet: Sheet, outlines: list[np.ndarray], box, *, label: str, superior: np.ndarray,
               medial: np.ndarray, anchors: list[tuple[np.ndarray, np.ndarray, str]]) -> bool:
    """Draw a placed piece: ``outlines`` (sheet mm, outer first), its label, S/M compass and anchoring
    references (outline point, unit direction toward the landmark, text), all inside ``box``
    (x0, y0, x1, y1). See the module docstring for where each mark goes. Returns whether the label and
    compass went inside the outline."""
    for outline in outlines:
        sheet.line(outline, closed=True, width_mm=0.25)
    inside = _Inside(outlines)
    centre, room = inside.pole(box)
    numbered = [f"{i + 1} {text}" for i, (_, _, text) in enumerate(anchors)]
    refs = numbered
    chosen = _inner_block(inside, centre, room, label, superior, medial, refs)
    if chosen is None:  # the references beside their arrows
        refs = []
        chosen = _inner_block(inside, centre, room, label, superior, medial, refs)
    fits = chosen is not None
    if not fits:  # too small: label and compass beside the outline, or over it when there is no room
        texts, arrows, rects = _block(label, LABEL_PT[0], superior, medial, [], 1.5)
        lo, hi = _bounds(rects)
        shift = _spot(rects, centre, np.zeros(2), box, inside, [])
        if shift is None:
            shift = centre - 0.5 * (lo + hi)
            for a in range(2):  # slid into the piece's own area (centred there when it is narrower)
                low, high = box[a] - lo[a], box[a + 2] - hi[a]
                shift[a] = min(max(shift[a], low), high) if low <= high else 0.5 * (low + high)
        chosen = texts, arrows, rects, shift
    texts, arrows, rects, shift = chosen
    for x, y, text, size in texts:
        sheet.text(x + shift[0], y + shift[1], text, size_pt=size, anchor="middle")
    for origin, direction, length, letter in arrows:
        sheet.arrow(origin + shift, direction, length, letter)
    taken = [tuple(np.asarray(r) + np.tile(shift, 2)) for r in rects]
    ends = []
    for point, direction, _ in anchors:  # the arrows first, so that no reference is written over one
        length = _arrow_in_box(point, direction, 2.5, box)
        ends.append(point + length * direction)
        if length > 0:
            sheet.arrow(point, direction, length, None, width_mm=0.15)
            taken.append((*np.minimum(point, ends[-1]), *np.maximum(point, ends[-1])))
    for (point, direction, text), tag, end in zip(anchors, numbered, ends):
        inward = (centre - point) / max(float(np.linalg.norm(centre - point)), 1e-9)
        number = tag.split(" ", 1)[0]
        words = [number] if refs else [text]
        x, y, size = _place_text(words[0], end, inward, box, inside, taken)
        if not refs and _gap(_text_rect(x, y, text, size), end) > 2.0:  # written away from its arrow: number both
            words = [tag, number]
            x, y, size = _place_text(tag, end, inward, box, inside, taken)
        placed = [(x, y, size)]
        taken.append(_text_rect(x, y, words[0], size))
        if len(words) == 2:
            placed.append(_place_text(number, end, inward, box, inside, taken))
            taken.append(_text_rect(*placed[1][:2], number, placed[1][2]))
        for word, (x, y, size) in zip(words, placed):
            sheet.text(x, y, word, size_pt=size, anchor="middle")
    return fits
