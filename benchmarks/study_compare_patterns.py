"""Validation study (issue 12): ``scan compare`` on every atrophy pattern, on the template and real faces.

Run (about 25 minutes on 2 cores; a subset is quicker)::

    PYTHONPATH=src .venv/bin/python benchmarks/study_compare_patterns.py
    PYTHONPATH=src .venv/bin/python benchmarks/study_compare_patterns.py --faces james --patterns broad

or ``make study-compare``. For each face and pattern, the baseline carries the carved pattern
(:func:`hemiface.datasets.carve_atrophy`) and the follow-up has 30, 60 and 100% of it restored and
20% overcorrected (:meth:`hemiface.datasets.Phantom.restored`), as a scanner gives it: a symmetric
smile, re-meshed, 0.1 mm of noise and moved to a random pose, with landmarks. It prints the volume
gained against the exact gain (%, target 5% on the template and 8% on real faces), the smile's
one-sided volume (a mirror-symmetric expression adds unequal volumes to the two sides of a face that
is not symmetric: exact from the known displacement; 0 on the template) and the gain against the
exact gain plus it (``gain+ %``), and
``defect_corrected_percent`` against the restored fraction (points, target 5). ``reg SD`` is
``volume_gain_registration_sd_mm3`` and ``z`` the gain's error against the exact gain in those SDs:
the registration's SD holds the registration's error only, so a ``z`` beyond 2 is the method's own
error (and the smile's one-sided volume), not the registration's. ``SD`` is
``volume_gain_uncertainty_mm3`` (the registration's and what the face region's edge may cut off, in
quadrature) and ``z all`` the error in it. On a real face the
baseline defect includes the face's own asymmetry, so ``defect_corrected_percent`` is printed
against the share of that measured defect the carving made up too. Asserts nothing; the suite's
cases are in ``tests/scan/test_compare.py``; the README quotes the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "scan"))

FACES = ("template", "humface", "james", "demoface", "simpop_03")
PATTERNS = ("multizone", "broad", "midline")
FRACTIONS = (0.3, 0.6, 1.0, 1.2)


def parse_args(argv, doc: str, fractions=FRACTIONS) -> argparse.Namespace:
    """The faces, patterns and restored fractions to run (this study's and ``study_compare_coverage.py``'s)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--faces", nargs="+", default=FACES, choices=FACES)
    parser.add_argument("--patterns", nargs="+", default=PATTERNS, choices=PATTERNS)
    parser.add_argument("--fractions", nargs="+", type=float, default=fractions)
    return parser.parse_args(argv)


def base_face(face: str):
    """The natural scan of ``face`` (the symmetric template or a real face, as the suite loads it)."""
    from hemiface import datasets
    from test_atrophy_truth import real_scan

    return datasets.load_sample("template") if face == "template" else real_scan(face)


def main(argv=None) -> None:
    from hemiface import datasets
    from hemiface.scan import analyze_scan, compare_scans, scan_from_arrays
    from helpers import expression_change
    from test_compare import expression_discrepancy_change, follow_up_scan

    args = parse_args(argv, __doc__)
    print(f"{'face':10s} {'pattern':10s} {'restored':>8s} {'gain mm3':>9s} {'truth':>8s} {'gain %':>7s} "
          f"{'smile':>6s} {'gain+ %':>7s} {'reg SD':>6s} {'z':>6s} {'SD':>5s} {'z all':>6s} {'corrected':>9s} "
          f"{'truth':>6s} {'points':>7s} "
          f"{'moved':>6s} {'s':>5s}",
          flush=True)
    for face in args.faces:
        base = base_face(face)
        natural = analyze_scan(base, affected="left", uncertainty=False)
        for pattern in args.patterns:
            pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
            for fraction in args.fractions:
                post = pre.restored(fraction)
                # The smile's one-sided part: a mirror-symmetric expression adds unequal volumes to the two sides
                # of a face that is not symmetric, and the net-of-the-other-side gain keeps the difference.
                smiled = expression_change(post.vertices_mm, post.faces, natural.symmetry_plane_point_mm,
                                           natural.symmetry_plane_normal)
                smile = -expression_discrepancy_change(post.vertices_mm, smiled, post.faces,
                                                       natural.symmetry_plane_point_mm, natural.symmetry_plane_normal)
                scan, landmarks = follow_up_scan(post, natural, seed=int(10 * fraction))
                t0 = time.perf_counter()
                r = compare_scans(scan_from_arrays(pre.vertices_mm, pre.faces, source_name="pre"), scan,
                                  affected="left", landmarks_post=landmarks)
                dt = time.perf_counter() - t0
                gain_err = 100 * (r.gain.volume_mm3 / post.true_gain_mm3 - 1)
                # On a real face the measured baseline defect holds the face's own asymmetry as well.
                truth_pct = 100 * fraction * pre.true_volume_mm3 / r.defect_volume_pre_mm3 if face != "template" \
                    else 100 * fraction
                print(f"{face:10s} {pattern:10s} {100 * fraction:7.0f}% {r.gain.volume_mm3:9.0f} "
                      f"{post.true_gain_mm3:8.0f} {gain_err:+7.1f} {smile:+6.0f} "
                      f"{100 * (r.gain.volume_mm3 / (post.true_gain_mm3 + smile) - 1):+7.1f} "
                      f"{r.volume_gain_registration_sd_mm3:6.0f} "
                      f"{(r.gain.volume_mm3 - post.true_gain_mm3) / r.volume_gain_registration_sd_mm3:+6.1f} "
                      f"{r.volume_gain_uncertainty_mm3:5.0f} "
                      f"{(r.gain.volume_mm3 - post.true_gain_mm3) / r.volume_gain_uncertainty_mm3:+6.1f} "
                      f"{r.defect_corrected_percent:9.1f} "
                      f"{truth_pct:6.1f} {r.defect_corrected_percent - truth_pct:+7.1f} "
                      f"{100 * r.provenance['parameters']['moved_share']:5.0f}% {dt:5.1f}", flush=True)


if __name__ == "__main__":
    main()
