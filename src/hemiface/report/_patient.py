"""``patient_report``: a one-page PDF for the clinical chart from one analysis output folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from .._errors import InputFileError
from ._report import Report, _to_pil, drop_title_band

#: Characters of an input's SHA-256 shown (enough to match a file, short enough to read aloud).
SHA_PREFIX = 12
#: The kinds of result folder, told apart by the files they hold.
KINDS = {
    "scan_compare": ("comparison.json", ("before_after.png", "gain_map.png")),
    "scan_analyze": ("measurements.json", ("depth_map.png",)),
    "photo_analyze": ("measurements.json", ("overlay.png",)),
}
_TITLES = {
    "scan_analyze": "Soft-tissue defect (3D surface scan)",
    "scan_compare": "Change after surgery (3D surface scans)",
    "photo_analyze": "Facial symmetry (2D frontal photograph)",
}


def result_kind(result_dir: Path) -> str:
    """Which command wrote ``result_dir``: "scan_analyze", "scan_compare" or "photo_analyze"."""
    for kind, (data, images) in KINDS.items():
        if (result_dir / data).is_file() and all((result_dir / i).is_file() for i in images):
            return kind
    raise InputFileError(
        f"{result_dir}: not a hemiface result folder; expected the outputs of `scan analyze` (measurements.json, "
        "depth_map.png), `scan compare` (comparison.json, gain_map.png, before_after.png) or `photo analyze` "
        "(measurements.json, overlay.png)"
    )


def _num(value, spec: str, unit: str = "") -> str:
    if value is None or value != value:
        return "not available"
    text = format(float(value), spec)
    return f"{text} {unit}".rstrip()


#: Zones named on the page: the few holding the most volume (all zones are in the JSON and in zones.png).
TOP_ZONES = 3


def _largest_zones(d: dict, quantity: str, share: str | None = None) -> str | None:
    """"malar 3,248 mm³ (19 %), ..." for the TOP_ZONES zones with the most ``zone_<name>_<quantity>``, or None."""
    pattern = re.compile(rf"^zone_(.+)_{quantity}$")
    volumes = {m.group(1): d[k] for k in d if (m := pattern.match(k)) and isinstance(d[k], (int, float))}
    top = sorted(((v, n) for n, v in volumes.items() if v > 0.5), reverse=True)[:TOP_ZONES]
    if not top:
        return None

    def one(v, n):
        frac = d.get(f"zone_{n}_{share}") if share else None
        extra = f" ({_num(100 * frac, '.0f', '%')})" if isinstance(frac, (int, float)) and frac == frac else ""
        return n.replace("_", " ") + " " + _num(v, ",.0f", "mm\u00b3") + extra

    return ", ".join(one(v, n) for v, n in top)


def _scan_rows(m: dict) -> list[tuple[str, str]]:
    threshold = m.get("threshold_mm", 4.0)
    level = ((m.get("provenance") or {}).get("parameters") or {}).get("defect_area_level_mm")
    count = m.get("defect_count", 0)
    rows = [
        ("Affected side (patient's)", f"{m['affected_side']}" + (" (chosen automatically)" if m.get("affected_side_chosen_by") == "auto" else "")),
        ("Defect volume", _num(m["defect_volume_mm3"], ",.0f", "mm\u00b3") + f" in {count} area{'s' if count != 1 else ''}"),
        ("Maximum depth", _num(m["max_depth_mm"], ".1f", "mm")),
        (f"Area deeper than {threshold:g} mm", _num(m["area_deeper_than_threshold_mm2"], ",.0f", "mm\u00b2")),
        ("Defect area" + (f" (deeper than {level:g} mm)" if isinstance(level, (int, float)) else ""),
         _num(m["defect_area_mm2"], ",.0f", "mm\u00b2")),
        ("Volumetric discrepancy", _num(m["volumetric_discrepancy_mm3"], ",.0f", "mm\u00b3")
         + f" ({_num(m['volumetric_discrepancy_percent'], '.1f', '%')} of the unaffected hemiface)"),
        ("Symmetry plane fit", f"RMS {_num(m['plane_fit_rms_mm'], '.2f', 'mm')}, "
         + ("converged" if m.get("plane_fit_converged") else "DID NOT CONVERGE: check the scan's orientation")),
    ]
    zones = _largest_zones(m, "defect_volume_mm3", "discrepancy_share")
    if zones:
        rows.insert(-1, ("Defect by zone (largest; % of the discrepancy)", zones))
    rows.extend(_flag_rows(m))
    return rows


def _flag_text(flags) -> str:
    return ", ".join(str(f).replace("_", " ") for f in flags) if flags else "none"


def _flag_rows(result: dict) -> list[tuple[str, str]]:
    """A scan result's flags (results written before 2026-12-04 have none: no row)."""
    return [("Flags", _flag_text(result["flags"]))] if "flags" in result else []


def _gain_sd(c: dict) -> str:
    """"; ± SD (registration …, region edge …), 1 SD" for the volume gained, or the registration's alone
    (comparisons written before 2026-12-04), or nothing."""
    if c.get("volume_gain_uncertainty_mm3") is not None:
        return ("; \u00b1 " + _num(c["volume_gain_uncertainty_mm3"], ",.0f", "mm\u00b3") + ", 1 SD: registration "
                + _num(c["volume_gain_registration_sd_mm3"], ",.0f") + ", region edge "
                + _num(c["volume_gain_edge_sd_mm3"], ",.0f"))
    if c.get("volume_gain_registration_sd_mm3") is not None:
        return "; registration \u00b1 " + _num(c["volume_gain_registration_sd_mm3"], ",.0f", "mm\u00b3") + ", 1 SD"
    return ""


def _compare_rows(c: dict) -> list[tuple[str, str]]:
    rows = [
        ("Affected side (patient's)", str(c["affected_side"])),
        ("Volume gained", _num(c["volume_gain_mm3"], ",.0f", "mm\u00b3") + f" (maximum {_num(c['max_gain_mm'], '.1f', 'mm')}"
         + _gain_sd(c) + ")"),
        ("Volume lost", _num(c["volume_loss_mm3"], ",.0f", "mm\u00b3")),
        ("Discrepancy before \u2192 after", f"{_num(c['discrepancy_pre_mm3'], ',.0f')} \u2192 "
         + _num(c["discrepancy_post_mm3"], ",.0f", "mm\u00b3")),
        ("Discrepancy change", _num(c["discrepancy_change_mm3"], "+,.0f", "mm\u00b3")
         + f" ({_num(c['discrepancy_change_percent'], '+.1f', '%')})"),
        ("Preoperative defect corrected", _num(c["defect_corrected_percent"], ".0f", "%")),
        ("Registration (stable areas)", f"RMS {_num(c['registration_rms_mm'], '.2f', 'mm')}, "
         + ("converged" if c.get("registration_converged") else "DID NOT CONVERGE")),
    ]
    zones = _largest_zones(c, "volume_gained_mm3")
    if zones:
        rows.insert(2, ("Gained by zone (largest)", zones))
    if "plan_dice" in c:
        rows.append(("Plan vs result", f"Dice {_num(c['plan_dice'], '.2f')}, mean thickness difference "
                                       f"{_num(c.get('plan_thickness_difference_mean_mm'), '.2f', 'mm')}"))
    rows.extend(_flag_rows(c))
    return rows


def _photo_rows(m: dict) -> list[tuple[str, str]]:
    fitted = m.get("symmetry_ratio_percent_fitted_midline")
    levels = ", ".join(f"{lvl} {_num(m.get(f'contour_ratio_percent_{lvl}'), '.1f', '%')}"
                       for lvl in ("eyes", "cheekbones", "mouth", "jaw") if f"contour_ratio_percent_{lvl}" in m)
    pose = m.get("pose", {})
    flags = m.get("flags") or []
    rows = [
        ("Affected side (patient's)", f"{m['affected_side']}" + (" (chosen automatically)" if m.get("affected_side_chosen_by") == "auto" else "")),
        ("Symmetry ratio", _num(m["symmetry_ratio_percent"], ".1f", "%") + f" ({m.get('midline', 'pupils')} midline"
         + (f"; fitted midline {_num(fitted, '.1f', '%')})" if fitted is not None else ")")),
        ("Contour ratio (mean)", _num(m.get("contour_ratio_percent_mean"), ".1f", "%") + (f" ({levels})" if levels else "")),
        ("Landmark ratio", _num(m.get("landmark_ratio_percent"), ".1f", "%")),
        ("Head pose", f"roll {_num(pose.get('roll_deg'), '.1f')}\u00b0, yaw {_num(pose.get('yaw_deg'), '.1f')}\u00b0, "
                      f"pitch {_num(pose.get('pitch_deg'), '.1f')}\u00b0"),
        ("Pose and quality flags", _flag_text(flags)),
    ]
    scale = (m.get("scale") or {}).get("mm_per_px")
    if scale:
        rows.append(("Scale", f"{scale:.4f} mm/px (iris {m['scale'].get('iris_mm', 11.7):g} mm)"))
    return rows


_NOTES = {
    "scan_analyze": "Depth > 0: the affected surface lies below the mirrored unaffected surface. Discrepancy > 0: "
                    "the affected hemiface has less volume than the unaffected one.",
    "scan_compare": "Changes are follow-up minus baseline. Gain is net of the mirror-image change on the unaffected "
                    "side. A negative discrepancy change means the affected side became fuller.",
    "photo_analyze": "Ratios are 100 \u00d7 affected / unaffected: 100 % is symmetric, below 100 % a deficient "
                     "affected side. Head turn beyond 5\u00b0 (yaw) or tilt beyond 10\u00b0 (pitch) alone fakes "
                     "asymmetry: flagged photographs should be retaken.",
}


def _image(kind: str, result_dir: Path):
    from PIL import Image

    if kind == "scan_analyze":
        return drop_title_band(_to_pil(result_dir / "depth_map.png")), \
            "Depth map (mm), frontal view: red = affected side below the mirrored unaffected side; " \
            "solid outline = defect, dashed = deeper than the threshold."
    if kind == "photo_analyze":
        return _to_pil(result_dir / "overlay.png"), \
            "Hemifaces (blue: patient's right, orange: patient's left), midline (yellow), contour levels (green)."
    gain = drop_title_band(_to_pil(result_dir / "gain_map.png"))
    both = drop_title_band(_to_pil(result_dir / "before_after.png"))
    h = min(gain.height, both.height)
    gain = gain.resize((round(gain.width * h / gain.height), h))
    both = both.resize((round(both.width * h / both.height), h))
    return _labelled([(gain, "Tissue gained (red) or lost (blue)"), (both, "Before (left) and after (right)")]), \
        "Left: thickness change, mm (> 0 tissue gained). Right: depth maps before and after on one colour scale, mm."


def _labelled(panels):
    """Panels side by side under a band of labels (the scans' own titles, which name files, are hidden)."""
    from PIL import Image, ImageDraw, ImageFont

    h = max(p.height for p, _ in panels)
    size = max(14, h // 22)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - old Pillow
        font = ImageFont.load_default()
    band = int(size * 1.8)
    canvas = Image.new("RGB", (sum(p.width for p, _ in panels), h + band), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, label in panels:
        canvas.paste(panel.convert("RGB"), (x, band))
        width = draw.textlength(label, font=font)
        draw.text((x + (panel.width - width) / 2, size * 0.4), label, fill=(0, 0, 0), font=font)
        x += panel.width
    return canvas


def patient_report(result_dir: str | os.PathLike, path: str | os.PathLike, *, patient_id: str | None = None,
                   overwrite: bool = False, forbidden: Iterable[str] = (), date=None) -> Path:
    """Write a one-page PDF for the clinical chart from a ``scan analyze``, ``scan compare`` or ``photo analyze`` folder.

    The page gives the key numbers in clinical units (defect volume mm³, maximum depth mm, area deeper than
    the threshold mm², volumetric discrepancy; or volume gained and discrepancy change; or the symmetry ratio
    with pose flags), the folder's figure (its title band, which names the input file, is cropped), and the
    provenance: each input's SHA-256 prefix, the hemiface version and the dates. Input file names are not
    shown; they are added to ``forbidden`` so that the guard refuses to write them.

    Parameters
    ----------
    result_dir : path
        The output folder of one analysis.
    path : path
        The PDF to write (atomically; an existing file is replaced only with ``overwrite=True``).
    patient_id : str, optional
        The pseudonymous id printed in the header.
    forbidden : iterable of str
        Further strings the page must not show (see :class:`Report`).

    Returns
    -------
    Path of the PDF.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise InputFileError(f"{result_dir}: is not a folder (give the output folder of a hemiface analysis)")
    kind = result_kind(result_dir)
    data_name = KINDS[kind][0]
    try:
        data = json.loads((result_dir / data_name).read_text(encoding="utf-8"))
        rows = {"scan_analyze": _scan_rows, "scan_compare": _compare_rows, "photo_analyze": _photo_rows}[kind](data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(f"{result_dir / data_name}: unreadable or incomplete ({type(exc).__name__}: {exc})") from None
    prov = data.get("provenance") or {}
    inputs = prov.get("inputs") or {}
    names = [str(v.get("file")) for v in inputs.values() if isinstance(v, dict) and v.get("file")]
    guard = [n for n in names if "." in n and len(n) >= 3] + list(forbidden)

    report = Report(_TITLES[kind], study_name=f"Patient {patient_id}" if patient_id else None, forbidden=guard, date=date)
    report.add_section("Key results")
    report.add_table(pd.DataFrame(rows, columns=["measure", "value"]), caption=_NOTES[kind],
                     formats={"value": "text"})
    image, caption = _image(kind, result_dir)
    report.add_image(image, caption=caption, max_height_mm=78)  # leaves room for long flag lists on one page
    prov_rows = []
    for role, info in inputs.items():
        sha = (info or {}).get("sha256") or ""
        prov_rows.append((f"Input ({role}) SHA-256", f"{sha[:SHA_PREFIX]}\u2026" if sha else "not recorded"))
    params = prov.get("parameters") or {}
    shown = {k: params[k] for k in ("units", "threshold_mm", "floor_mm", "orient", "midline", "iris_mm",
                                    "max_registration_rms_mm", "landmark_model") if k in params}
    if shown:
        prov_rows.append(("Parameters", "; ".join(f"{k} = {v}" for k, v in shown.items())))
    prov_rows.append(("Analysed with", f"hemiface {prov.get('hemiface_version', 'unknown version')}"
                                       f" on {str(prov.get('timestamp_utc', 'an unknown date'))[:10]}"))
    report.add_table(pd.DataFrame(prov_rows, columns=["provenance", "value"]), section="Provenance",
                     formats={"value": "text"})
    return report.save_pdf(path, overwrite=overwrite)
