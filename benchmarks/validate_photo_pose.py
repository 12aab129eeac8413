"""Pose validation harness (issue 13): prints the tables behind ``tests/photo/test_photo_pose.py``.

Run with ``make validate-pose`` (or ``python benchmarks/validate_photo_pose.py [--prior-width W]
[renders|london|atrophy|london_atrophy|cues|known_pose|pairs|silhouette]``; ``--prior-width`` measures the
outline refinement with another ``PRIOR_WIDTH``, as the README's ninth pass did):

* renders of the textured james and Lee Perry-Smith scans turned to face the camera and rendered at
  yaw and pitch -10 ... +10 degrees (``tests/photo/pose_renders.py``), with the uncompensated and the
  pose-compensated ratios and the largest change of each from the frontal render;
* the 30 Face Research Lab London photos against their delineated templates (SD of the ratio,
  correlation with yaw, landmark error, contour agreement at the mouth and jaw levels);
* a 10% one-sided compression of each scan, rendered frontal and turned, against its known ratio;
* ``london_atrophy``: the same 10% drawn into each London photo's left hemiface (a thin-plate-spline warp of
  the photo; the contour only, or the whole hemiface), at the photo's own head pose, against the known change;
* ``cues``: four yaw cues from the face mesh, their change over the turn and their shift by the compression;
* ``known_pose``: the compensation with each render's known rotation (the depth model alone), and with the
  exact surface depth as well (what the outline detection alone leaves);
* ``pairs``: the pose difference between two visits whose cheek changed (treated), three estimates;
* ``silhouette``: a yaw cue from the head's silhouette at eye level (``tests/photo/pose_silhouette.py``;
  measured, not adopted): its yaw against the renders' and the face mesh's, under the cheek compression, as
  the two visits' pose difference, and on the London photos.

Prints figures; asserts nothing (the tests do).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "photo"))

from pose_validation import (  # noqa: E402
    CUES, LEVELS, PAIR_ESTIMATES, SCAN_NAMES, atrophy_table, cue_table, deviation_from_frontal, format_rows,
    known_pose_table, london_atrophy_table, london_table, pose_pair_table, render_table,
)

RATIOS = ["ratio", "ratio_compensated", "landmark_ratio", "landmark_ratio_compensated"] + [
    f"contour_{lv}{s}" for lv in LEVELS for s in ("", "_compensated")]


def renders() -> None:
    for name in SCAN_NAMES:
        rows = render_table(name)
        print(f"\n== {name}: renders at known yaw / pitch (reported pose and ratios, %)")
        print(format_rows(rows, ["render_yaw_deg", "render_pitch_deg", "yaw_deg", "pitch_deg", "ratio",
                                 "ratio_compensated", "contour_mouth", "contour_mouth_compensated",
                                 "contour_jaw", "contour_jaw_compensated", "landmark_ratio",
                                 "landmark_ratio_compensated"]))
        print("largest change from the frontal render (points):")
        for key in RATIOS:
            print(f"  {key:32s} {deviation_from_frontal(rows, key):6.1f}")
        yaw_rows = [r for r in rows if r["render_pitch_deg"] == 0]
        for key in ("ratio", "ratio_compensated"):
            slope = np.polyfit([r["render_yaw_deg"] for r in yaw_rows], [r[key] for r in yaw_rows], 1)[0]
            print(f"  {key:32s} {slope:+6.2f} points per degree of yaw")


def london() -> None:
    rows = london_table()
    print("\n== London set: 30 normal adults")
    print(format_rows(rows, ["photo", "yaw_deg", "pitch_deg", "ratio", "ratio_compensated", "template_ratio",
                             "landmark_error_ipd", "contour_mouth", "template_contour_mouth", "contour_jaw",
                             "template_contour_jaw", "outline_error_ipd", "chorded_contour_jaw"]))
    yaw = np.array([r["yaw_deg"] for r in rows])
    for key in ("ratio", "ratio_compensated", "template_ratio", "template_ratio_compensated"):
        v = np.array([r[key] for r in rows])
        print(f"  {key:28s} mean {v.mean():6.1f}  SD {v.std(ddof=1):5.2f}  corr with yaw {np.corrcoef(v, yaw)[0, 1]:+.2f}")
    err = np.array([r["landmark_error_ipd"] for r in rows])
    print(f"  landmark error vs templates: mean {100 * err.mean():.2f}% IPD, max {100 * err.max():.2f}%")
    for lv in ("mouth", "jaw"):
        for s in ("", "_compensated"):
            d = np.abs([r[f"contour_{lv}{s}"] - r[f"template_contour_{lv}{s}"] for r in rows])
            print(f"  contour {lv}{s}: mean |hemiface - template| {d.mean():.2f} points (max {d.max():.2f})")
    out = np.array([r["outline_error_ipd"] for r in rows])
    print(f"  lower outline: the template's 11 points lie {100 * out.mean():.2f}% of the IPD from hemiface's outline "
          f"on average (max {100 * out.max():.2f}%)")
    for lv in ("mouth", "jaw"):
        chord = np.array([r[f"chorded_contour_{lv}"] for r in rows])
        dense, tem = (np.array([r[f"{k}contour_{lv}"] for r in rows]) for k in ("", "template_"))
        print(f"  contour {lv}, hemiface's outline at the template's points (chorded as the template is): "
              f"{np.abs(chord - tem).mean():.2f} points from the template's; the chords alone move hemiface's "
              f"ratio {np.abs(dense - chord).mean():.2f} points")


def atrophy() -> None:
    for name in SCAN_NAMES:
        rows = atrophy_table(name)
        print(f"\n== {name}: left side compressed, known ratio {rows[0]['known_ratio']:.1f} %")
        print(format_rows(rows, ["render_yaw_deg", "render_pitch_deg", "known_ratio", "unwarped_frontal_ratio",
                                 "ratio", "ratio_compensated", "yaw_deg"]))


LONDON_ATROPHY_KEYS = ["photo", "yaw_deg", "yaw_warped_deg", "known_ratio", "ratio", "known_change", "change",
                       "change_compensated"]


def london_atrophy() -> None:
    for contour_only in (True, False):
        rows = london_atrophy_table(contour_only=contour_only)
        kind = "the contour only (features held)" if contour_only else "the whole hemiface"
        print(f"\n== London set: 10% of the left hemiface drawn in, {kind}")
        print(format_rows(rows, LONDON_ATROPHY_KEYS))
        err = np.array([r["ratio"] - r["known_ratio"] for r in rows])
        comp = np.array([r["change_compensated"] - r["known_change"] for r in rows])
        shift = np.array([r["yaw_warped_deg"] - r["yaw_deg"] for r in rows])
        known = np.array([r["known_change"] for r in rows])
        print(f"  ratio - known ratio: mean {err.mean():+.2f}, mean |.| {np.abs(err).mean():.2f}, max |.| "
              f"{np.abs(err).max():.2f} points ({(np.abs(err) > 2).sum()} of {len(rows)} beyond 2)")
        print(f"  compensated change - known change ({known.mean():+.2f} on average): mean {comp.mean():+.2f}, "
              f"max |.| {np.abs(comp).max():.2f} points; the face mesh's yaw moved {shift.mean():+.2f} degrees on "
              f"average ({shift.min():+.2f} to {shift.max():+.2f})")


def cues() -> None:
    for name in SCAN_NAMES:
        rows = cue_table(name)
        print(f"\n== {name}: yaw cues (degrees): change over the turn (truth: render yaw) and shift by the compression (truth 0)")
        print(format_rows(rows, ["render_yaw_deg", "render_pitch_deg"]
                          + [f"{k}_{c}" for c in CUES for k in ("turn", "compression")]))
        print("  columns in order: " + ", ".join(f"{k}_{c}" for c in CUES for k in ("turn", "compression")))


def known_pose() -> None:
    for name in SCAN_NAMES:
        rows = known_pose_table(name)
        print(f"\n== {name}: compensation at the known pose (depth model alone; exact_surface: exact depth too)")
        print(format_rows(rows, ["case", "render_yaw_deg", "render_pitch_deg", "known_ratio", "ratio_known_pose",
                                 "ratio_exact_surface", "landmark_ratio_known_pose"]
                          + [f"contour_{lv}_{k}" for lv in LEVELS for k in ("known_pose", "exact_surface")]))
        renders = [r for r in rows if r["case"] == "render"]
        for key in ("ratio_known_pose", "ratio_exact_surface"):
            dev = deviation_from_frontal(renders, key)
            err = max(abs(r[key] - r["known_ratio"]) for r in rows if r["case"] == "atrophy")
            print(f"  {key}: largest change from frontal {dev:.1f} points; compressed scan {err:.1f} points from "
                  "its known ratio")


def pairs() -> None:
    for name in SCAN_NAMES:
        rows = pose_pair_table(name)
        print(f"\n== {name}: pose difference between two visits, baseline's cheek compressed, follow-up's restored:"
              " error of each estimate (degrees)")
        keys = [f"{e}_{a}_error" for e in PAIR_ESTIMATES for a in ("yaw", "pitch")]
        print(format_rows(rows, ["baseline_yaw_deg", "baseline_pitch_deg", "followup_yaw_deg", "followup_pitch_deg"]
                          + keys))
        for e in PAIR_ESTIMATES:
            worst = max(max(abs(r[f"{e}_yaw_error"]), abs(r[f"{e}_pitch_error"])) for r in rows)
            print(f"  {e:12s} largest error {worst:.2f} degrees")


def silhouette() -> None:
    from itertools import product

    from PIL import Image
    from pose_silhouette import silhouette_pose, silhouette_table
    from pose_validation import ATROPHY_FACTOR, LONDON, london_analysis

    for name in SCAN_NAMES:
        rows = silhouette_table(name, ATROPHY_FACTOR)
        print(f"\n== {name}: yaw from the silhouette and from the face mesh, degrees (renders {'x'.join(map(str, (860, 900)))} px; "
              f"'cheek': the left cheek compressed by {ATROPHY_FACTOR:.0%})")
        print(format_rows(rows, list(rows[0])))
        front = rows[0]
        for cue in ("silhouette", "mesh"):
            turn = max(abs(r[f"{cue}_yaw_deg"] - front[f"{cue}_yaw_deg"] - r["render_yaw_deg"]) for r in rows)
            shift = max(abs(r[f"{cue}_yaw_cheek_deg"] - r[f"{cue}_yaw_deg"]) for r in rows)
            # Visit pairs: baseline with the cheek compressed at one pose, follow-up restored at another.
            pair = max(abs((b[f"{cue}_yaw_deg"] - a[f"{cue}_yaw_cheek_deg"]) - (b["render_yaw_deg"] - a["render_yaw_deg"]))
                       for a, b in product(rows, rows) if a["render_pitch_deg"] == b["render_pitch_deg"] == 0)
            print(f"  {cue:10s}: largest error of the turn from frontal {turn:.2f}, shift by the cheek {shift:.2f}, "
                  f"error of a visit pair's yaw difference {pair:.2f} degrees")
    yaws = []
    for jpg in sorted(LONDON.glob("*.jpg")):
        a = london_analysis(jpg.name)
        s = silhouette_pose(np.asarray(Image.open(jpg).convert("RGB")), a.landmarks["pupil_right"],
                            a.landmarks["pupil_left"], name=jpg.name)
        yaws.append((a.pose["yaw_deg"], np.nan if s is None else s["yaw_deg"]))
    y = np.array(yaws)
    ok = np.isfinite(y[:, 1])
    print(f"\n== London set: the silhouette's yaw measured on {ok.sum()} of {len(y)}; correlation with the face mesh's "
          f"yaw {np.corrcoef(y[ok, 0], y[ok, 1])[0, 1]:+.2f}; SD {y[ok, 1].std(ddof=1):.2f} degrees "
          f"(the mesh's {y[ok, 0].std(ddof=1):.2f}); largest difference {np.max(np.abs(y[ok, 1] - y[ok, 0])):.2f}")


def main(argv) -> None:
    parts = {"renders": renders, "london": london, "atrophy": atrophy, "london_atrophy": london_atrophy, "cues": cues,
             "known_pose": known_pose, "pairs": pairs, "silhouette": silhouette}
    from hemiface.photo import _locate

    if argv[:1] == ["--prior-width"]:  # a measurement only: the outline refinement's prior (README)
        _locate.PRIOR_WIDTH = float(argv[1])
        argv = argv[2:]
    print(f"(outline refinement's prior: SD {_locate.PRIOR_WIDTH:g} of the search range)")
    for key in argv or list(parts):
        t = time.perf_counter()
        parts[key]()
        print(f"({key}: {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
