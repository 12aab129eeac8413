"""Laying the flattened pieces out on sheets: bounding boxes packed with ``rectpack`` (90 degree turns allowed).

Each piece's bounding box, grown by the cutting gap, goes into sheets of the given size less the
edge margin (MaxRects best-short-side-fit, sheets opened as needed). Lengths are packed in whole
tenths of a millimetre (rectpack is exact on integers) and rounded up, so a box never grows past its
place. A piece whose box is larger than a sheet in both orientations is not packed: it is reported
with its size and the sheet's, and gets a page of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Space kept free around each piece and along the sheet's edges (mm): room to cut, and for the scale bar.
GAP_MM = 2.0
EDGE_MARGIN_MM = 2.0
_UNITS_PER_MM = 10


@dataclass(frozen=True)
class Placement:
    """Where a piece lies: ``sheet`` (0-based; None when larger than a sheet), lower-left corner, turn."""

    piece: int
    sheet: int | None
    x_mm: float
    y_mm: float
    rotated: bool
    width_mm: float  # as placed
    height_mm: float


def _units(mm: float) -> int:
    return int(math.ceil(mm * _UNITS_PER_MM - 1e-9))


def fits(size_mm: tuple[float, float], sheet_mm: tuple[float, float]) -> bool:
    """Whether a box of ``size_mm`` fits a sheet (less its margins) in either orientation."""
    w, h = (_units(s + GAP_MM) for s in size_mm)
    bw, bh = (_units(s - 2 * EDGE_MARGIN_MM + GAP_MM) for s in sheet_mm)
    return (w <= bw and h <= bh) or (h <= bw and w <= bh)


def pack(sizes_mm: list[tuple[float, float]], sheet_mm: tuple[float, float]) -> tuple[list[Placement], int]:
    """Placements of boxes ``(width, height)`` on as few sheets as rectpack finds; returns (placements, sheets)."""
    from rectpack import newPacker

    packer = newPacker(rotation=True)
    bw, bh = (_units(s - 2 * EDGE_MARGIN_MM + GAP_MM) for s in sheet_mm)
    placements: dict[int, Placement] = {}
    for i, (w, h) in enumerate(sizes_mm):
        if fits((w, h), sheet_mm):
            packer.add_rect(_units(w + GAP_MM), _units(h + GAP_MM), i)
        else:
            placements[i] = Placement(i, None, 0.0, 0.0, False, float(w), float(h))
    packer.add_bin(bw, bh, count=float("inf"))
    packer.pack()
    sheets = 0
    for b, x, y, w, h, i in packer.rect_list():
        pw, ph = sizes_mm[i]
        rotated = w != _units(pw + GAP_MM)  # a square box is never taken as turned
        placements[i] = Placement(i, int(b), EDGE_MARGIN_MM + x / _UNITS_PER_MM, EDGE_MARGIN_MM + y / _UNITS_PER_MM,
                                  bool(rotated), float(ph if rotated else pw), float(pw if rotated else ph))
        sheets = max(sheets, int(b) + 1)
    return [placements[i] for i in range(len(sizes_mm))], sheets


def own_area(placement: Placement, page_mm: tuple[float, float]) -> tuple[float, float, float, float]:
    """The part of the page that belongs to a placed piece, (x0, y0, x1, y1) mm: its box and the cutting
    gap above and to the right of it (less half a millimetre, so nothing touches a neighbour), inside
    the edge margin. Boxes never overlap, so whatever a piece draws inside its own area stays clear of
    every other piece."""
    x0, y0 = placement.x_mm, placement.y_mm
    x1 = min(x0 + placement.width_mm + GAP_MM - 0.5, page_mm[0] - EDGE_MARGIN_MM)
    y1 = min(y0 + placement.height_mm + GAP_MM - 0.5, page_mm[1] - EDGE_MARGIN_MM)
    return x0, y0, max(x1, x0 + placement.width_mm), max(y1, y0 + placement.height_mm)


def place(points_mm: np.ndarray, placement: Placement, size_mm: tuple[float, float]) -> np.ndarray:
    """Piece coordinates (lower-left at 0) moved to their place on the sheet, turned 90 degrees
    counter-clockwise when ``placement.rotated``."""
    p = np.asarray(points_mm, dtype=float)
    if placement.rotated:
        p = np.column_stack([size_mm[1] - p[:, 1], p[:, 0]])
    return p + np.array([placement.x_mm, placement.y_mm])


def turn_direction(direction: np.ndarray, placement: Placement) -> np.ndarray:
    """A direction on the piece as it lies on the sheet."""
    d = np.asarray(direction, dtype=float)
    return np.array([-d[1], d[0]]) if placement.rotated else d
