"""Writing a photo analysis: measurements.json, landmarks.json, overlay.png (no EXIF in anything)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._outputs import staged_outputs
from ._geometry import CONTOUR_LEVELS
from ._landmarks import to_json_dict

#: Overlay colours (RGBA): patient's right and left hemifaces, midline, contour levels, landmarks.
RIGHT_RGBA = (40, 120, 255, 80)
LEFT_RGBA = (255, 150, 30, 80)
MIDLINE_RGB = (255, 255, 0)
LEVEL_RGB = (0, 230, 120)
POINT_RGB = (255, 40, 40)


def render_overlay(result):
    """The photo with both hemifaces shaded, the midline, contour levels, landmarks and the ratio (a PIL image)."""
    from PIL import Image, ImageDraw, ImageFont

    from ._geometry import hemiface_polygons

    rgb = result.photo.rgb if result.photo is not None else np.full((512, 512, 3), 128, np.uint8)
    base = Image.fromarray(rgb).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    frame, lm = result.frame, result.landmarks
    scale = max(1.0, result.face_width_px / 300.0)
    width = max(1, round(scale))
    polys = hemiface_polygons(frame.uv(lm.outline), result.midline)
    for side, colour in (("right", RIGHT_RGBA), ("left", LEFT_RGBA)):
        if len(polys[side]) >= 3:
            draw.polygon([tuple(p) for p in frame.px(polys[side])], fill=colour, outline=colour[:3] + (255,))
    v_all = frame.uv(lm.outline)[:, 1]
    v0, v1 = float(v_all.min()) - 10 * scale, float(v_all.max()) + 10 * scale
    draw.line([tuple(frame.px([result.midline.u_at(v0), v0])), tuple(frame.px([result.midline.u_at(v1), v1]))],
              fill=MIDLINE_RGB + (255,), width=width)
    for level in CONTOUR_LEVELS:
        v = result.contour_levels_v_px[level]
        um = float(result.midline.u_at(v))
        w = result.contour_widths_px[level]
        if w["left"] is None:
            continue
        draw.line([tuple(frame.px([um - w["right"], v])), tuple(frame.px([um + w["left"], v]))],
                  fill=LEVEL_RGB + (255,), width=width)
    r = 1.5 * scale
    for p in lm.points.values():
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=POINT_RGB + (255,))
    out = Image.alpha_composite(base, layer).convert("RGB")
    parts = [
        f"symmetry ratio {result.symmetry_ratio_percent:.1f}% (affected {result.affected_side}, "
        f"{result.midline_method} midline)",
        f"contour mean {result.contour_ratio_percent_mean:.1f}%",
    ]
    if result.flags:
        parts.append("flags: " + ", ".join(result.flags))
    size = max(12, out.width // 60)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - old Pillow
        font = ImageFont.load_default()
    d = ImageDraw.Draw(out)
    # Wrap at part boundaries so the header stays inside narrow photos.
    lines, current = [], ""
    for part in parts:
        trial = f"{current}  {part}" if current else part
        if current and d.textlength(trial, font=font) > out.width - size:
            lines.append(current)
            current = part
        else:
            current = trial
    lines.append(current)
    text = "\n".join(lines)
    box = d.multiline_textbbox((0, 0), text, font=font)
    d.rectangle([0, 0, box[2] + 2 * size // 3, box[3] + 2 * size // 3], fill=(0, 0, 0))
    d.multiline_text((size // 3, size // 3), text, fill=(255, 255, 255), font=font)
    return out


def write_outputs(result, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write all outputs together (or none): ``landmarks.json``, ``overlay.png``, ``measurements.json``."""
    from ._analyze import OUTPUT_NAMES

    out_dir = Path(out_dir)
    photo = result.photo
    image = {"file": photo.name, "sha256": photo.sha256, "width_px": photo.width_px, "height_px": photo.height_px} if photo else None
    with staged_outputs(out_dir, OUTPUT_NAMES, overwrite=overwrite) as stage:
        (stage / "landmarks.json").write_text(json.dumps(to_json_dict(result.landmarks, image=image), indent=1))
        # A fresh image carries no EXIF, ICC or text chunks: nothing from the camera is written.
        render_overlay(result).save(stage / "overlay.png", format="PNG", compress_level=3)
        (stage / "measurements.json").write_text(json.dumps(result.to_dict(), indent=2))
    return out_dir
