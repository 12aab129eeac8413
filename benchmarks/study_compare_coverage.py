"""Validation study (issue 12): how much of ``scan compare``'s error on the atrophy patterns is the face region's.

Run (about 3 minutes on 2 cores)::

    PYTHONPATH=src .venv/bin/python benchmarks/study_compare_coverage.py
    PYTHONPATH=src .venv/bin/python benchmarks/study_compare_coverage.py --faces humface --patterns multizone

For each face and pattern, the baseline carries the carved pattern and the follow-up is exactly
:meth:`hemiface.datasets.Phantom.restored` (same mesh and pose, no noise, no smile: nothing but the
change), measured twice: with the default face region, and with a region that holds the whole carving
(``WHOLE_CARVING_REGION`` of ``tests/scan/test_compare.py``). It prints the volume gained against
the exact gain (%) both ways: the first is what the default region does not hold, the second the
method's own error. Asserts nothing; the suite holds four of the cases
(``test_clean_gain_with_the_whole_carving_in_the_region``); the README quotes the table.
"""

from __future__ import annotations

from study_compare_patterns import base_face, parse_args  # same folder; it puts tests/ on the path

FRACTIONS = (0.3, 1.0, 1.2)


def main(argv=None) -> None:
    from hemiface import datasets
    from hemiface.scan import FaceRegion, compare_scans, scan_from_arrays
    from test_compare import WHOLE_CARVING_REGION

    args = parse_args(argv, __doc__, FRACTIONS)
    regions = (FaceRegion(), FaceRegion(**WHOLE_CARVING_REGION))
    print(f"{'face':10s} {'pattern':10s} {'restored':>8s} {'truth mm3':>9s} {'default %':>9s} {'whole %':>8s}", flush=True)
    for face in args.faces:
        base = base_face(face)
        for pattern in args.patterns:
            pre = datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side="left")
            for fraction in args.fractions:
                post = pre.restored(fraction)
                errors = []
                for region in regions:
                    r = compare_scans(scan_from_arrays(pre.vertices_mm, pre.faces, source_name="pre"),
                                      scan_from_arrays(post.vertices_mm, post.faces, source_name="post"),
                                      affected="left", region=region, uncertainty=False)
                    errors.append(100 * (r.gain.volume_mm3 / post.true_gain_mm3 - 1))
                print(f"{face:10s} {pattern:10s} {100 * fraction:7.0f}% {post.true_gain_mm3:9.0f} "
                      f"{errors[0]:+9.1f} {errors[1]:+8.1f}", flush=True)


if __name__ == "__main__":
    main()
