"""Writing detected 3D landmarks: landmarks.csv, frame.json and landmarks.png, all together or none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._outputs import staged_outputs
from .._provenance import provenance
from ._io import MM_PER_UNIT, SurfaceScan
from ._landmarks3d import FALLBACK_CONFIDENCE, DetectedLandmarks, _make_view, _Renderer

LANDMARK_OUTPUT_NAMES = ("landmarks.csv", "landmarks.png", "frame.json")


def _frame_record(found: DetectedLandmarks, scan: SurfaceScan) -> dict:
    r = found.frame.rotation
    t_mm = -r @ found.frame.origin_mm
    return {
        "convention": "canonical_mm = rotation @ (mm_per_unit * p_scan) + translation_mm; canonical frame: +z anterior, "
                      "+y up, +x patient's left, origin pronasale, mm",
        "rotation": [[round(float(c), 8) for c in row] for row in r],
        "translation_mm": [round(float(c), 4) for c in t_mm],
        "origin_in_scan": [round(float(c) / MM_PER_UNIT[scan.units], 6) for c in found.frame.origin_mm],
        "scan_units": scan.units,
        "mm_per_unit": MM_PER_UNIT[scan.units],
        "confidence_rule": (
            f"geometric fallback (no view yielded a face): every landmark {FALLBACK_CONFIDENCE}, frame and pronasale "
            "from the shape alone; check them" if found.low_confidence else
            "face_score * clip(1 - spread_mm / 4, 0, 1); spread_mm is the RMS spread of the landmark over five frontal "
            "renders turned up to 8 degrees, each rendered under three lights (and textured, when the scan has a "
            "texture)"),
        **found.to_dict(),
    }


def _figure(path, scan: SurfaceScan, found: DetectedLandmarks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    renderer = _Renderer(np.asarray(scan.vertices_mm, float), np.asarray(scan.faces), scan.texture)
    x, y, z = found.frame.rotation
    pts = np.array(list(found.points_mm.values()))
    if "exocanthion_left" in found.points_mm and "exocanthion_right" in found.points_mm:
        width = 2.6 * float(np.linalg.norm(found.points_mm["exocanthion_left"] - found.points_mm["exocanthion_right"]))
        centre = pts.mean(axis=0)
    else:  # geometric fallback: pronasale only; a typical face around it
        width = 2.6 * 90.0
        centre = found.points_mm["pronasale"] + 15.0 * y - 30.0 * z
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.8), dpi=110)
    profile = -x
    for ax, (forward, title) in zip(axes, ((-z, "front (patient's left on the right)"), (profile, "profile (patient's left side)"))):
        view = _make_view(forward, y, centre, width, 640, 2 * renderer.radius)
        ax.imshow(renderer.render(view), extent=(-width / 2, width / 2, -width / 2, width / 2))
        ax.set_xlim(-width / 2, width / 2)
        ax.set_ylim(-width / 2, width / 2)
        # The profile shows the patient's left side: the right-side points lie behind the face there.
        shown = [n for n in found.points_mm if not (forward is profile and n.endswith("_right"))]
        rel = np.array([found.points_mm[n] for n in shown]) - view.centre
        u, v = rel @ view.right, rel @ view.up
        ax.scatter(u, v, s=14, c="red")
        for name, a, b in zip(shown, u, v):
            # Front: the patient's right-side labels on the image's left. Profile (anterior on the image's
            # left): the midline labels in front of the face, the side labels on the cheek.
            sided = name.endswith(("_left", "_right"))
            to_left = name.endswith("_right") if forward is not profile else not sided
            # Clear of the outer eye corners' labels, and in front of the lips' midline labels.
            below = name.startswith("endocanthion") or (name.startswith("cheilion") and forward is not profile)
            ax.annotate(name, (a, b), xytext=(-3 if to_left else 3, -4 if below else 2), textcoords="offset points",
                        fontsize=6, color="yellow", ha="right" if to_left else "left", va="top" if below else "baseline")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"mm (scan in {scan.units}, converted)")
    title = f"{scan.source_name}: automatic landmarks (face score {found.face_score:.2f})"
    if found.low_confidence:
        title = f"{scan.source_name}: LOW CONFIDENCE, no face found; frame and pronasale from the shape alone"
    fig.suptitle(title, fontsize=10, color="red" if found.low_confidence else "black")
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def write_landmarks(found: DetectedLandmarks, scan: SurfaceScan, out_dir: str | os.PathLike, *,
                    overwrite: bool = False) -> Path:
    """Write landmarks.csv (name,x,y,z in the scan's own frame and units; readable by ``--landmarks``),
    frame.json (scan -> canonical rotation and translation, per-landmark spread and confidence,
    provenance) and landmarks.png (front and profile renders with the points named)."""
    out_dir = Path(out_dir)
    per_unit = MM_PER_UNIT[scan.units]
    with staged_outputs(out_dir, LANDMARK_OUTPUT_NAMES, overwrite=overwrite) as stage:
        lines = [f"# hemiface automatic landmarks of {scan.source_name}, in {scan.units}; confidence in frame.json"]
        if found.low_confidence:
            lines.append(f"# LOW CONFIDENCE ({found.method}): no view of the scan yielded a face; the frame and pronasale "
                         "come from the shape alone; check them")
        lines.append("name,x,y,z")
        lines += [f"{n},{p[0] / per_unit:.6g},{p[1] / per_unit:.6g},{p[2] / per_unit:.6g}" for n, p in found.points_mm.items()]
        (stage / "landmarks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        record = _frame_record(found, scan)
        record["provenance"] = provenance({"scan": {"file": scan.source_name, "sha256": scan.sha256}},
                                          {"units": scan.units})
        (stage / "frame.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _figure(stage / "landmarks.png", scan, found)
    return out_dir
