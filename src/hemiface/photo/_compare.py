"""``compare_photos``: change in each symmetry measure between two visits (pre and post)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._outputs import staged_outputs
from .._validate import check_option
from ._analyze import PhotoAnalysis, analyze_photo

#: Files written by :meth:`PhotoComparison.save`; the last one is written last.
COMPARE_OUTPUT_NAMES = ("side_by_side.png", "comparison.json")


@dataclass(frozen=True, eq=False)
class PhotoComparison:
    """Two analyses of the same patient with the same affected side and midline.

    ``change`` maps each numeric measure to ``post - pre`` (percentage points for
    ratios, mm for lengths and mm2 for areas): > 0 on a ratio means the affected
    side moved toward (or beyond) the unaffected side.
    """

    pre: PhotoAnalysis = field(repr=False)
    post: PhotoAnalysis = field(repr=False)
    change: dict

    def to_dict(self) -> dict:
        pre, post = self.pre.to_dict(), self.post.to_dict()
        return {
            "affected_side": self.pre.affected_side,
            "midline": self.pre.midline_method,
            "change": self.change,
            "change_convention": "post minus pre; ratios in percentage points",
            "pre": pre,
            "post": post,
        }

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write comparison.json and side_by_side.png (both overlays, pre on the left)."""
        from PIL import Image

        from ._outputs import render_overlay

        out_dir = Path(out_dir)
        with staged_outputs(out_dir, COMPARE_OUTPUT_NAMES, overwrite=overwrite) as stage:
            a, b = render_overlay(self.pre), render_overlay(self.post)
            h = max(a.height, b.height)
            # Same face height on both sides: scale each overlay to the taller image's height.
            a = a.resize((round(a.width * h / a.height), h))
            b = b.resize((round(b.width * h / b.height), h))
            canvas = Image.new("RGB", (a.width + b.width, h), (0, 0, 0))
            canvas.paste(a, (0, 0))
            canvas.paste(b, (a.width, 0))
            canvas.save(stage / "side_by_side.png", format="PNG", compress_level=3)
            (stage / "comparison.json").write_text(json.dumps(self.to_dict(), indent=2))
        return out_dir


def compare_photos(
    pre, post, *, affected: str, pre_landmarks=None, post_landmarks=None, midline: str = "pupils", iris_mm: float = 11.7,
) -> PhotoComparison:
    """Analyse both photos with the same settings and report ``post - pre`` for every measure.

    ``affected`` must be "left" or "right": with "auto" the two visits could be
    measured against different sides.
    """
    check_option("affected", affected, ("left", "right"))
    a = analyze_photo(pre, affected=affected, landmarks=pre_landmarks, midline=midline, iris_mm=iris_mm)
    b = analyze_photo(post, affected=affected, landmarks=post_landmarks, midline=midline, iris_mm=iris_mm)
    da, db = a.to_dict(), b.to_dict()
    change = {}
    for key, va in da.items():
        vb = db.get(key)
        if key.endswith(("_percent", "_mm", "_mm2")) and isinstance(va, float) and isinstance(vb, float):
            change[key] = float(vb - va) if np.isfinite(vb - va) else None
    return PhotoComparison(a, b, change)
