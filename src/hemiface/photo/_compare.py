"""``compare_photos``: change in each symmetry measure between two visits (pre and post)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import logger
from .._outputs import staged_outputs
from .._validate import check_option, check_positive
from ._analyze import PhotoAnalysis, analyze_photo

#: Files written by :meth:`PhotoComparison.save`; the last one is written last.
COMPARE_OUTPUT_NAMES = ("side_by_side.png", "comparison.json")
#: A pair whose head yaw, pitch or roll differs by more than this (degrees) is flagged: a 3 degree turn
#: moves the 2D symmetry ratio by about 5 to 7 points, as much as a treatment effect.
MAX_POSE_DIFFERENCE_DEG = 3.0
#: The pose angles compared between visits (keys of :attr:`PhotoAnalysis.pose`).
POSE_ANGLES = ("yaw_deg", "pitch_deg", "roll_deg")


def pose_agreement(pre_pose: dict, post_pose: dict, *, max_difference_deg: float = MAX_POSE_DIFFERENCE_DEG) -> dict:
    """Each visit's yaw, pitch and roll, their differences (post minus pre) and the flags.

    Returns ``{"pre": {...}, "post": {...}, "difference": {...}, "max_difference_deg": limit,
    "flags": [...], "differs": bool}``; a flag such as ``"yaw_differs_by_more_than_3_deg"`` is set for
    each angle whose absolute difference exceeds the limit.
    """
    pre = {k: float(pre_pose[k]) for k in POSE_ANGLES}
    post = {k: float(post_pose[k]) for k in POSE_ANGLES}
    diff = {k: post[k] - pre[k] for k in POSE_ANGLES}
    flags = [f"{k[:-4]}_differs_by_more_than_{max_difference_deg:g}_deg" for k in POSE_ANGLES
             if abs(diff[k]) > max_difference_deg]
    return {"pre": pre, "post": post, "difference": diff, "max_difference_deg": float(max_difference_deg),
            "flags": flags, "differs": bool(flags)}


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
    pose: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        pre, post = self.pre.to_dict(), self.post.to_dict()
        return {
            "affected_side": self.pre.affected_side,
            "midline": self.pre.midline_method,
            "change": self.change,
            "change_convention": "post minus pre; ratios in percentage points",
            "pose": self.pose,
            "pose_convention": ("degrees; yaw > 0 nose toward the patient's left, pitch > 0 chin down, roll > 0 "
                                "clockwise; difference = post minus pre; a pair whose yaw, pitch or roll differs by "
                                "more than max_difference_deg is flagged (its 2D ratios then differ by pose, too)"),
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
    max_pose_difference_deg: float = MAX_POSE_DIFFERENCE_DEG,
) -> PhotoComparison:
    """Analyse both photos with the same settings and report ``post - pre`` for every measure.

    ``affected`` must be "left" or "right": with "auto" the two visits could be
    measured against different sides. ``pose`` reports each visit's yaw, pitch and
    roll, their differences, and flags the pair when any differs by more than
    ``max_pose_difference_deg`` (see :func:`pose_agreement`).
    """
    check_option("affected", affected, ("left", "right"))
    max_pose_difference_deg = check_positive("max_pose_difference_deg", max_pose_difference_deg)
    a = analyze_photo(pre, affected=affected, landmarks=pre_landmarks, midline=midline, iris_mm=iris_mm)
    b = analyze_photo(post, affected=affected, landmarks=post_landmarks, midline=midline, iris_mm=iris_mm)
    da, db = a.to_dict(), b.to_dict()
    change = {}
    for key, va in da.items():
        vb = db.get(key)
        if key.endswith(("_percent", "_mm", "_mm2")) and isinstance(va, float) and isinstance(vb, float):
            change[key] = float(vb - va) if np.isfinite(vb - va) else None
    pose = pose_agreement(a.pose, b.pose, max_difference_deg=max_pose_difference_deg)
    for flag in pose["flags"]:
        logger.warning("%s -> %s: %s (%s)", a.photo.name if a.photo else "pre", b.photo.name if b.photo else "post",
                       flag, ", ".join(f"{k} {v:+.1f}" for k, v in pose["difference"].items()))
    return PhotoComparison(a, b, change, pose)
