"""Validation study (issue 12): an automatic stable area for the default symmetry plane.

Run (about 40 minutes for every candidate on 2 shared cores; a subset is quicker)::

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/study_default_plane.py            # all candidates
    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/study_default_plane.py --candidates today b1.5 --faces james
    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/study_default_plane.py --healthy-only
    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/study_default_plane.py --candidates today \
        --faces humface james demoface simpop_03 lee_perry_smith --no-round --placements 0,0 6,0 0,8 0,-8

or ``make study-plane``; ``--detected-landmarks`` analyses each scan with ``--orient auto`` (the landmarks detected
on it) instead of as given. It prints one table: for each face and pattern the change of the
volumetric discrepancy between the carved and the natural scan against the exact carved volume
(``change %``, the target is within 10% on real faces) and how far the plane moved between the two
(degrees), for today's default and each candidate; on the symmetric template the defect volume and
the discrepancy against the truth (%, target 5%) and the plane's tilt from the true midline; the
round-dent sites of ``tests/scan/test_real_scans.py``; and the healthy faces' natural defect
volumes (left / right) under each candidate. ``--placements`` carves each pattern at several places
(shifted laterally and vertically from where the face's pronasale puts it), as issue 12 asks. The figures and the decision are in the README
(validation, "Automatic stable areas for the default plane").

Candidates (each replaces only the default ``mirror`` plane; the rest of ``analyze_scan`` is unchanged):

``today``
    the default: masked robust mirror fit, then the consensus refit (``hemiface.scan._plane``).
``a-geo`` / ``a-lm``
    a stable area derived from the face, fitted as a painted ``stable=`` area is
    (``_stable_fit``: only mirror pairs whose two ends are both within 3 mm of it): the boxes of
    :data:`STABLE_BOXES` - the nasal dorsum and lateral nasal walls below the groove's lower end, the
    medial supraorbital rims (lateral of the en-coup-de-sabre band, above the malar zone), the upper
    lip's philtrum and a strip of the forehead midline (the paramedian band 4-14 mm out, where the
    groove runs, is left out). ``a-geo`` places it from pronasale alone (the canonical frame's
    origin, boxes sized for the template: free, what the default would have without landmarks);
    ``a-lm`` from the landmarks :func:`hemiface.scan.detect_landmarks` finds on each scan (pronasale;
    the endocanthions' distance sets the scale and their height the orbital boxes') - 3-5 s per scan,
    beyond the speed budget of a default, measured to see whether better placement would help.
``bK``
    one-sided iterative exclusion: the masked fit (the default's first step), then every mirror pair whose affected-side end
    lies deeper than its mirror image by more than K x noise (at any depth), with the 5 mm margin of
    the consensus refit, is left out and the plane refitted, until the set stops changing (pairs
    disagreeing the other way are left out only beyond the consensus level ``t``, as today).
``cK``
    ``a-geo`` seeds ``bK``: the one-sided exclusion started from the stable-area plane.
``sR`` (2026-12-03)
    the consensus refit, with the disagreeing area also found on the mirror residual averaged over
    ``R`` mm (signed, oriented by side, so a pair's two ends agree and scanner noise averages out; a
    broad shallow deficit stands out above k = 3 robust spreads of that smoothed map, at least 0.15 mm).
``eS`` (2026-12-03, later)
    today's fit over a registration area enlarged ``S`` times instead of 1.3 (temples, ears' fronts, upper
    forehead and jaw angles: more lever arm outside the zones atrophy takes); ``wS`` / ``hS`` enlarge only its
    width / height ``S`` times (the other stays 1.3); ``xS``: the plane over the area enlarged ``S`` times seeds
    today's consensus refit over today's area.
``rK`` (2026-12-03)
    today's fit, then the enlarged registration region placed symmetrically about its plane (not about
    the canonical frame's axes, which a scan analysed without landmarks can hold 10 degrees off the
    midline) and the masked fit and consensus refit run again, ``K`` times.

The stable areas were drawn knowing where the phantoms' patterns lie (``hemiface._patterns``), so the
phantom figures are optimistic for them; the healthy faces' natural defects are the check that does
not depend on the patterns.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "scan"))

from hemiface import datasets  # noqa: E402
from hemiface._patterns import REFERENCE_INTERCANTHAL_MM  # noqa: E402
from hemiface._errors import HemifaceError  # noqa: E402
from hemiface.scan import _analyze, _plane, analyze_scan, scan_from_arrays  # noqa: E402
from hemiface.scan._distance import SurfaceQuery  # noqa: E402
from hemiface.scan._frame import find_pronasale  # noqa: E402
from hemiface.scan._region import FaceRegion  # noqa: E402
from hemiface.scan._symmetry import fit_symmetry_plane_masked  # noqa: E402
from test_atrophy_truth import REAL, real_scan  # noqa: E402
from test_real_scans import SITES  # noqa: E402

PATTERNS = ("multizone", "broad", "midline")
ONE_SIDED_PASSES = 8

#: Stable boxes (lateral |x| from, to; height above pronasale from, to), mm, for a face whose endocanthions
#: are 33 mm apart (the phantoms' REFERENCE_INTERCANTHAL_MM); both sides alike.
STABLE_BOXES = {
    "nasal dorsum and lateral walls": (0.0, 8.0, -6.0, 16.0),
    "medial supraorbital rims": (17.0, 23.0, 34.0, 46.0),
    "forehead midline": (0.0, 1.5, 40.0, 80.0),
    "philtrum": (0.0, 2.0, -26.0, -12.0),
}
#: Endocanthion height above pronasale of the face the boxes are written for (``a-lm`` shifts the orbital boxes by the difference).
NORM_ENDOCANTHION_HEIGHT_MM = 18.6  # the template's (its landmark file)


def stable_mask_canonical(v: np.ndarray, *, tip=np.zeros(3), scale: float = 1.0, eye_height_mm: float | None = None):
    """Vertices (canonical frame) inside the stable boxes placed from pronasale ``tip`` and ``scale``."""
    lateral = np.abs(v[:, 0] - tip[0]) / scale
    height = (v[:, 1] - tip[1]) / scale
    shift = 0.0 if eye_height_mm is None else (eye_height_mm - tip[1]) / scale - NORM_ENDOCANTHION_HEIGHT_MM
    mask = np.zeros(len(v), bool)
    for name, (x0, x1, y0, y1) in STABLE_BOXES.items():
        dy = shift if name == "medial supraorbital rims" else 0.0
        mask |= (lateral >= x0) & (lateral <= x1) & (height >= y0 + dy) & (height <= y1 + dy)
    return mask


def one_sided(query, points, normals, plane, used, robust_scale_mm, sign: float, k: float):
    """The one-sided iterative exclusion of candidate ``bK`` (module docstring). Returns (plane, used, passes)."""

    def disagrees(plane, t, noise, used):
        s = query.closest(plane.reflect(points)).signed_distance_mm
        affected_end = sign * plane.signed_distance_mm(points) > 0
        deeper = np.where(affected_end, -s, s)  # > 0: the pair's affected-side end lies below its mirror image
        return (deeper > k * noise) | (np.abs(s) > t)

    plane, used, _, passes = _plane._consensus(query, points, normals, plane, used, robust_scale_mm,
                                               disagrees=disagrees, max_passes=ONE_SIDED_PASSES)
    return plane, used, passes


def smoothed_consensus(query, points, normals, plane, used, robust_scale_mm, radius_mm: float, k: float = 3.0):
    """Candidate ``sR``: the consensus refit, with the disagreeing area found also on the mirror residual
    averaged over ``radius_mm`` (module docstring). Returns (plane, used, passes)."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    pairs = cKDTree(points).query_pairs(radius_mm, output_type="ndarray")
    n = len(points)
    adj = sparse.coo_matrix((np.ones(2 * len(pairs)), (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                            shape=(n, n)).tocsr() + sparse.identity(n, format="csr")
    mean_of = sparse.diags(1.0 / np.asarray(adj.sum(axis=1)).ravel()) @ adj

    def disagrees(plane, t, noise, used):
        s = query.closest(plane.reflect(points)).signed_distance_mm
        smooth = mean_of @ (s * np.sign(plane.signed_distance_mm(points)))  # the same for both ends of a pair
        spread = 1.4826 * float(np.median(np.abs(smooth[used] - np.median(smooth[used]))))
        return (np.abs(s) > t) | (np.abs(smooth) > max(0.15, k * spread))

    plane, used, _, passes = _plane._consensus(query, points, normals, plane, used, robust_scale_mm,
                                               disagrees=disagrees, max_passes=ONE_SIDED_PASSES)
    return plane, used, passes


class Candidate:
    """Replaces the default ``mirror`` plane of ``analyze_scan`` while active (``with candidate.active(side):``)."""

    def __init__(self, name: str):
        self.name = name
        self.side = "left"

    @contextlib.contextmanager
    def active(self, side: str):
        self.side = side
        original = _analyze.fit_plane
        if self.name != "today" and (_candidate_region(self.name) is None or self.name.startswith("x")):
            _analyze.fit_plane = self.fit
        try:
            yield
        finally:
            _analyze.fit_plane = original

    def fit(self, prepared, region, robust_scale_mm, *, method="mirror", stable_points_mm=None, landmarks=None,
            units_mm=1.0, uncertainty=True):
        if method != "mirror" or stable_points_mm is not None:
            return _plane.fit_plane(prepared, region, robust_scale_mm, method=method, stable_points_mm=stable_points_mm,
                                    landmarks=landmarks, units_mm=units_mm, uncertainty=uncertainty)
        if self.name.startswith("x"):  # the plane over the wide area seeds the consensus refit over today's area
            wide = _plane.fit_plane(prepared, region, robust_scale_mm, uncertainty=False)
            if len(prepared.vertices) > _plane.PLANE_MAX_VERTICES:
                prepared = _plane._clustered(prepared, region)
            query = SurfaceQuery(prepared.vertices, prepared.faces)
            points, normals = _plane.registration_samples(prepared, FaceRegion(), query)
            plane, used, _, passes = _plane._consensus(query, points, normals, wide.plane, np.ones(len(points), bool),
                                                       robust_scale_mm)
            return _fit_result(plane, used, self.name, passes)
        if self.name.startswith("r"):  # today's fit, then refitted with the region placed about its plane, K times
            fit = _plane.fit_plane(prepared, region, robust_scale_mm, uncertainty=False)
            if len(prepared.vertices) > _plane.PLANE_MAX_VERTICES:
                prepared = _plane._clustered(prepared, region)
            query = SurfaceQuery(prepared.vertices, prepared.faces)
            plane = fit.plane
            for _ in range(int(self.name[1:] or 1)):
                points, normals = _plane.registration_samples(prepared, region, query,
                                                              about=_plane.SymmetryFrame.from_plane(plane))
                plane, used = fit_symmetry_plane_masked(query, points, normals, robust_scale_mm=robust_scale_mm)
                plane, used, _, passes = _plane._consensus(query, points, normals, plane, used, robust_scale_mm)
            return _fit_result(plane, used, self.name, passes)
        if self.name.startswith(("a", "c")):
            seeded = self._stable_area(prepared, region, robust_scale_mm)
            if not self.name.startswith("c"):
                return seeded
            seed = seeded.plane
        else:
            seed = None
        if len(prepared.vertices) > _plane.PLANE_MAX_VERTICES:
            prepared = _plane._clustered(prepared, region)
        query = SurfaceQuery(prepared.vertices, prepared.faces)
        points, normals = _plane.registration_samples(prepared, region, query)
        if seed is None:
            plane, used = fit_symmetry_plane_masked(query, points, normals, robust_scale_mm=robust_scale_mm)
        else:
            plane, used = seed, np.ones(len(points), bool)
        if self.name.startswith("s"):
            plane, used, passes = smoothed_consensus(query, points, normals, plane, used, robust_scale_mm,
                                                     float(self.name[1:]))
            return _fit_result(plane, used, self.name, passes)
        k = float(self.name[1:])
        plane, used, passes = one_sided(query, points, normals, plane, used, robust_scale_mm,
                                        1.0 if self.side == "left" else -1.0, k)
        return _fit_result(plane, used, self.name, passes)

    def _stable_area(self, prepared, region, robust_scale_mm):
        v = prepared.vertices  # canonical frame: origin at pronasale
        if self.name == "a-lm":
            lm = {k: prepared.frame.to_canonical(np.asarray(p, float)[None])[0]
                  for k, p in datasets_landmarks(prepared).items()}
            tip = lm.get("pronasale", np.zeros(3))
            if "endocanthion_left" in lm and "endocanthion_right" in lm:  # not from the geometric fallback
                icd = float(np.linalg.norm(lm["endocanthion_left"] - lm["endocanthion_right"]))
                eye = 0.5 * (lm["endocanthion_left"][1] + lm["endocanthion_right"][1])
                mask = stable_mask_canonical(v, tip=tip, scale=icd / REFERENCE_INTERCANTHAL_MM, eye_height_mm=eye)
            else:
                mask = stable_mask_canonical(v, tip=tip)
        else:
            mask = stable_mask_canonical(v)
        stable_scan = prepared.frame.to_scan(v[mask])
        fit = _plane.fit_plane(prepared, region, robust_scale_mm, stable_points_mm=stable_scan, uncertainty=False)
        return fit


def datasets_landmarks(prepared):
    """Landmarks detected on the prepared scan (scan frame, mm), cached by the scan's identity."""
    key = id(prepared.scan)
    if key not in _DETECTED:
        from hemiface.scan import detect_landmarks

        _DETECTED.clear()
        _DETECTED[key] = detect_landmarks(prepared.scan).points_mm
    return _DETECTED[key]


_DETECTED: dict = {}


def _fit_result(plane, used, name, passes):
    sym = _plane.SymmetryFrame.from_plane(plane)
    nan = np.full((3, 3), np.nan)
    return _plane.PlaneFit(plane, sym, f"mirror ({name})", float(used.mean()), float("nan"), nan, float("nan"),
                           float("nan"), {"consensus_passes": passes})


#: With ``--detected-landmarks``: each scan is analysed with ``orient="auto"`` (frame and region from the
#: landmarks ``scan landmarks`` finds on it, or its geometric fallback), not as given.
DETECTED = {"on": False}


class _StretchedRegion(FaceRegion):
    """A region whose registration ellipse is enlarged ``across`` times in width and ``along`` times in height."""

    across: float = 1.3
    along: float = 1.3

    def ellipse_margin(self, points, *, scale=1.0):
        if scale == 1.0:
            return super().ellipse_margin(points)
        half_w = self.across * self.width_mm / 2
        half_h = self.along * (self.above_mm + self.below_mm) / 2
        centre_y = (self.above_mm - self.below_mm) / 2
        return 1.0 - (points[:, 0] / half_w) ** 2 - ((points[:, 1] - centre_y) / half_h) ** 2


def _candidate_region(name: str):
    """``eS``: the registration area enlarged S times (the default 1.3); ``wS`` / ``hS``: only its width / height."""
    if name[:1] not in ("e", "w", "h", "x") or not name[1:].replace(".", "").isdigit():
        return None
    scale = float(name[1:])
    region = _StretchedRegion(registration_scale=max(scale, 1.3))
    object.__setattr__(region, "across", scale if name[0] in "ewx" else 1.3)
    object.__setattr__(region, "along", scale if name[0] in "ehx" else 1.3)
    return region


def analyse(candidate: Candidate, v, f, side="left"):
    region = _candidate_region(candidate.name)
    with candidate.active(side):
        return analyze_scan(scan_from_arrays(v, f), affected=side, uncertainty=False, region=region,
                            orient="auto" if DETECTED["on"] else "canonical")


def tilt_deg(a, b):
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(a.symmetry_plane_normal, b.symmetry_plane_normal)))))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", nargs="+", default=["today", "a-geo", "a-lm", "b1", "b1.5", "b2", "c1.5"])
    ap.add_argument("--faces", nargs="+", default=["template", *REAL])
    ap.add_argument("--no-round", action="store_true", help="skip the round-dent sites")
    ap.add_argument("--healthy-only", action="store_true", help="only the unmodified faces' natural defects")
    ap.add_argument("--placements", nargs="+", default=["0,0"], metavar="DX,DY",
                    help="place each pattern this far (mm) laterally (away from the midline) and up from where the "
                         "face's pronasale puts it; several give several placements (e.g. 0,0 6,0 0,8 0,-8)")
    ap.add_argument("--detected-landmarks", action="store_true",
                    help="analyse every scan with --orient auto (the landmarks detected on it), not as given")
    args = ap.parse_args(argv)
    DETECTED["on"] = args.detected_landmarks
    placements = [tuple(float(x) for x in p.split(",")) for p in args.placements]
    cands = [Candidate(c) for c in args.candidates]
    rows: list[tuple[str, str, list[str]]] = []
    healthy: list[tuple[str, list[str]]] = []
    t0 = time.perf_counter()
    for face in args.faces:
        scan = datasets.load_sample("template") if face == "template" else real_scan(face)
        v, f = np.asarray(scan.vertices_mm), np.asarray(scan.faces)
        sides = ("left", "right") if face == "template" else ("left",)
        natural = {}
        cells = []
        for c in cands:
            r = analyse(c, v, f)
            natural[c.name] = r
            d = r.defect_volume_by_side_mm3
            cells.append(f"{d['left']:.0f}/{d['right']:.0f}")
        healthy.append((face, cells))
        cases = []
        tip = find_pronasale(v, f)
        for p, s, (dx, dy) in [(p, s, d) for p in PATTERNS for s in sides for d in placements]:
            if args.healthy_only:
                break
            shifted = {"pronasale": tip + np.array([dx if s == "left" else -dx, dy, 0.0])}
            label = p if (dx, dy) == (0.0, 0.0) else f"{p} {dx:+.0f},{dy:+.0f}"
            try:
                cases.append((label, s, datasets.carve_atrophy(v, f, pattern=p, side=s, landmarks=shifted)))
            except HemifaceError as exc:
                print(f"{face} {label} {s}: not placed ({exc})", flush=True)
        if not args.healthy_only and face in ("humface", "james", "demoface") and not args.no_round:
            for site in SITES:
                try:
                    ph = datasets.carve_defect(v, f, side="left", volume_mm3=5000.0, centre_offset_mm=site[:2],
                                               radius_mm=site[2])
                except HemifaceError:
                    continue
                cases.append((f"round {site[0]:.0f},{site[1]:.0f}", "left", ph))
        for pattern, side, ph in cases:
            truth = ph.true_volume_mm3
            cells = []
            for c in cands:
                try:
                    r = analyse(c, ph.vertices_mm, ph.faces, side)
                except HemifaceError as exc:
                    cells.append(f"error: {exc}"[:20])
                    continue
                if face == "template":
                    n = np.asarray(r.symmetry_plane_normal)
                    cells.append(f"{100 * (r.defect_volume_mm3 / truth - 1):+6.1f} {100 * (r.volumetric_discrepancy_mm3 / truth - 1):+6.1f} "
                                 f"{np.degrees(np.arccos(min(1.0, abs(n[0])))):.2f}")
                else:
                    base = natural[c.name] if side == "left" else None
                    change = r.volumetric_discrepancy_mm3 - base.volumetric_discrepancy_mm3
                    cells.append(f"{100 * (change / truth - 1):+6.1f} {tilt_deg(r, base):.2f}")
            rows.append((face, f"{pattern} {side}" if face == "template" else pattern, cells))
            print(f"[{time.perf_counter() - t0:6.0f} s] {face} {pattern} {side}: " + " | ".join(cells), flush=True)
    names = [c.name for c in cands]
    w = 22
    print("\nReal faces: change of discrepancy vs truth (%) and plane moved (deg); template: defect %, "
          "discrepancy %, plane tilt from x (deg)")
    print(f"{'face':16s} {'pattern':18s} " + " ".join(f"{n:>{w}s}" for n in names))
    for face, pattern, cells in rows:
        print(f"{face:16s} {pattern:18s} " + " ".join(f"{c:>{w}s}" for c in cells))
    print("\nHealthy (unmodified) faces: natural defect volume left/right (mm3)")
    print(f"{'face':35s} " + " ".join(f"{n:>{w}s}" for n in names))
    for face, cells in healthy:
        print(f"{face:35s} " + " ".join(f"{c:>{w}s}" for c in cells))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
