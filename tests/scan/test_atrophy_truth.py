"""Disease-like atrophy (multi-zone, broad-shallow, near-midline) against the phantoms' exact truth.

Truth is the closed shell between the unmodified and the carved surface
(:func:`hemiface.datasets.carve_atrophy`), never the code under test. Every case
logs its figures at INFO; the uncertainty coverage over all of them is logged as
a table by the last test of this module.

Targets (issue 12): on the exactly symmetric template, defect volume and hemiface
discrepancy within 5% of the carved volume and maximum depth within 0.3 mm, in
the canonical pose and in a random pose with landmarks, both sides; on real faces
the change of discrepancy between carved and natural scan within 10%; the true
value within the reported +/-2 SD in at least 90% of the cases.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from hemiface import datasets
from hemiface.scan import analyze_scan, load_scan, read_landmarks, scan_from_arrays
from helpers import move, random_rigid

log = logging.getLogger(__name__)
DATA = Path(__file__).parents[1] / "data"
PATTERNS = ("multizone", "broad", "midline")
#: (case, truth, measured, 1 SD) of every truth case in this module, for the coverage table.
COVERAGE: list[tuple[str, float, float, float]] = []
#: (pattern, case, true defect area, measured) of the template cases, for the defect-area tests.
AREAS: list[tuple[str, str, float, float]] = []


@pytest.fixture(scope="module")
def template():
    return datasets.load_sample("template")


def _record(case, truth, measured, sd):
    COVERAGE.append((case, float(truth), float(measured), float(sd)))


def _carve(base, pattern, side):
    return datasets.carve_atrophy(base.vertices_mm, base.faces, pattern=pattern, side=side)


@pytest.mark.parametrize("pose", ["canonical", "moved", "orient-auto"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_template_pattern_volume_and_depth(template, pattern, side, pose):
    """``orient-auto``: moved as ``moved`` but without landmarks, the frame found by ``orient="auto"``."""
    ph = _carve(template, pattern, side)
    v, lm = ph.vertices_mm, None
    if pose != "canonical":
        rot, trans = random_rigid(7 if side == "left" else 8)
        v = move(v, rot, trans)
    if pose == "moved":
        lm = {k: move(p[None], rot, trans)[0] for k, p in read_landmarks(datasets.sample_landmarks_path("template")).items()}
    auto = pose == "orient-auto"
    # orient-auto cases skip the uncertainty (they add nothing to the coverage table that "moved" does not).
    r = analyze_scan(scan_from_arrays(v, ph.faces), affected=side, landmarks=lm, orient="auto" if auto else "canonical",
                     uncertainty=not auto)
    truth = ph.true_volume_mm3
    case = f"template {pattern} {side} {pose}"
    log.info("%s: defect %.0f mm3 (truth %.0f, %+.1f %%) +/- %.0f, discrepancy %.0f (%+.1f %%) +/- %.0f, "
             "max depth %.2f mm (truth %.2f), area deeper than 4 mm %.0f mm2 (truth %.0f), plane +/- %.3f deg", case,
             r.defect_volume_mm3, truth, 100 * (r.defect_volume_mm3 / truth - 1), r.defect_volume_uncertainty_mm3,
             r.volumetric_discrepancy_mm3, 100 * (r.volumetric_discrepancy_mm3 / truth - 1),
             r.volumetric_discrepancy_uncertainty_mm3, r.max_depth_mm, ph.true_max_depth_mm,
             r.area_deeper_than_threshold_mm2, ph.true_area_deeper_than_threshold_mm2, r.plane_uncertainty_deg)
    if not auto:
        _record(case + " defect", truth, r.defect_volume_mm3, r.defect_volume_uncertainty_mm3)
        _record(case + " discrepancy", truth, r.volumetric_discrepancy_mm3, r.volumetric_discrepancy_uncertainty_mm3)
    assert r.affected_side == side
    assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.05)
    assert r.volumetric_discrepancy_mm3 == pytest.approx(truth, rel=0.05)
    assert abs(r.max_depth_mm - ph.true_max_depth_mm) < 0.3
    # Read on the unsmoothed depth: the smoothed map's 4 mm line enclosed 20% too little of the groove.
    assert r.area_deeper_than_threshold_mm2 == pytest.approx(ph.true_area_deeper_than_threshold_mm2, rel=0.05, abs=1.0)
    AREAS.append((pattern, case, ph.true_defect_area_mm2(), r.defect_area_mm2))
    assert r.provenance["parameters"]["plane"] == "mirror"
    assert np.isfinite(r.plane_uncertainty_deg) != auto
    assert r.provenance["parameters"]["orient"] == ("auto" if auto else "canonical")


def test_a_defect_cut_by_the_region_edge_is_reported(template, caplog):
    """The multi-zone pattern's temple part reaches beyond the default region (the defect reads -1.7%): a warning
    says so and how to widen the region; the midline pattern lies well inside and gets none."""
    warned = {}
    for pattern in ("multizone", "midline"):
        ph = _carve(template, pattern, "left")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hemiface"):
            r = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected="left")
        warned[pattern] = [m for m in caplog.messages if "reaches the face region's edge" in m]
        assert ("defect_reaches_region_edge" in r.flags) == bool(warned[pattern])
        assert r.to_dict()["flags"] == list(r.flags)
        log.info("%s: defect %.0f mm3 for %.0f; edge warning: %s", pattern, r.defect_volume_mm3, ph.true_volume_mm3,
                 warned[pattern])
    assert len(warned["multizone"]) == 1 and "--region-width-mm" in warned["multizone"][0]
    assert warned["midline"] == []


@pytest.mark.parametrize("noise_mm", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("pattern", ["midline", "broad"])
def test_peak_depth_with_scanner_noise(template, pattern, noise_mm):
    """The 10 mm wide groove's 6.88 mm peak, which the smoothed map reads 1.3 mm shallow, and the broad plateau.

    Scanner noise along the normals (seeded): the peak and the area deeper than
    4 mm are measured on the unsmoothed depth (``scan/_peak.py``,
    ``Patch.deeper_than``), where noise could read as depth. The broad pattern is
    2.6 mm deep at most: none of it may read deeper than 4 mm.
    """
    from hemiface.scan._mesh import vertex_normals

    ph = _carve(template, pattern, "left")
    v = ph.vertices_mm
    if noise_mm:
        v = v + noise_mm * np.random.default_rng(1).standard_normal(len(v))[:, None] * vertex_normals(v, ph.faces)
    r = analyze_scan(scan_from_arrays(v, ph.faces), affected="left", uncertainty=False)
    zone_max = max(z.max_depth_mm for z in r.zones)
    deep, deep_truth = r.area_deeper_than_threshold_mm2, ph.true_area_deeper_than_threshold_mm2
    log.info("%s, %.1f mm noise: max depth %.2f mm (truth %.2f, %+.2f); deepest zone %.2f; area deeper than 4 mm "
             "%.0f mm2 (truth %.0f)", pattern, noise_mm, r.max_depth_mm, ph.true_max_depth_mm,
             r.max_depth_mm - ph.true_max_depth_mm, zone_max, deep, deep_truth)
    assert abs(r.max_depth_mm - ph.true_max_depth_mm) < 0.3
    assert zone_max == pytest.approx(r.max_depth_mm)
    assert deep == pytest.approx(deep_truth, rel=0.05, abs=1.0)
    assert sum(z.area_deeper_than_threshold_mm2 for z in r.zones) == pytest.approx(deep)
    AREAS.append((pattern, f"template {pattern} left, {noise_mm} mm noise", ph.true_defect_area_mm2(), r.defect_area_mm2))


def _area_table(patterns) -> list[float]:
    rows = [a for a in AREAS if a[0] in patterns]
    if len(rows) < 6:
        pytest.skip("run with the whole module: the table needs the template cases")
    log.info("defect area deeper than 0.5 mm on the restored surface vs the carving's exact area:\n%s", "\n".join(
        f"{case:48s} truth {truth:6.0f} mm2  measured {measured:6.0f}  {100 * (measured / truth - 1):+6.1f} %"
        for _, case, truth, measured in rows))
    return [measured / truth - 1 for _, _, truth, measured in rows]


def test_defect_area_on_the_template():
    """``defect_area_mm2`` (deeper than 0.5 mm, on the restored surface) of the multi-zone and broad patterns
    in every pose, and of the broad one at 0, 0.1 and 0.2 mm of noise, within 5% of the exact area (the area
    out to the 1 micrometre rim read 25% more at 0.1 mm of noise on the broad pattern: the rim ran into the noise)."""
    errors = _area_table(("multizone", "broad"))
    assert max(abs(e) for e in errors) <= 0.05


def test_defect_area_of_the_groove():
    """The midline pattern's defect area (its 10 mm wide groove, lip and chin spots) in every pose and at 0,
    0.1 and 0.2 mm of noise, within 5%. Read on the smoothed map alone it was +22.5% noise-free and +27.2% at
    0.2 mm (the smoothing spreads a narrow profile outward); on the unsmoothed depth alone, +20% at 0.2 mm."""
    errors = _area_table(("midline",))
    assert max(abs(e) for e in errors) <= 0.05


def test_shallow_multizone_the_issue_case(template):
    """Multi-zone at 3 mm: the pattern that turned the plane by 0.1 degree (-16.5% / -20.5% before)."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern="multizone", side="left", depth_mm=3.0)
    r = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected="left")
    truth = ph.true_volume_mm3
    log.info("shallow multizone: defect %.0f mm3 (truth %.0f, %+.1f %%) +/- %.0f, discrepancy %.0f (%+.1f %%) +/- %.0f",
             r.defect_volume_mm3, truth, 100 * (r.defect_volume_mm3 / truth - 1), r.defect_volume_uncertainty_mm3,
             r.volumetric_discrepancy_mm3, 100 * (r.volumetric_discrepancy_mm3 / truth - 1),
             r.volumetric_discrepancy_uncertainty_mm3)
    _record("template multizone 3 mm defect", truth, r.defect_volume_mm3, r.defect_volume_uncertainty_mm3)
    _record("template multizone 3 mm discrepancy", truth, r.volumetric_discrepancy_mm3,
            r.volumetric_discrepancy_uncertainty_mm3)
    assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.08)
    assert abs(r.max_depth_mm - ph.true_max_depth_mm) < 0.3


def test_plane_methods_on_the_unmodified_template(template, tmp_path):
    """Healthy symmetric face: every plane method finds (almost) no defect; their spread is logged."""
    import json

    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    plane_file = tmp_path / "plane.json"
    plane_file.write_text(json.dumps({"normal": [1.0, 0.0, 0.0], "point": [0.0, 0.0, 0.0]}))
    results = {"mirror": analyze_scan(template, affected="auto"),
               "file": analyze_scan(template, affected="auto", plane=plane_file)}
    for name, r in results.items():
        log.info("unmodified template, plane %s: defect left %.1f / right %.1f mm3, discrepancy %.1f mm3",
                 name, r.defect_volume_by_side_mm3["left"], r.defect_volume_by_side_mm3["right"],
                 r.volumetric_discrepancy_mm3)
        assert max(r.defect_volume_by_side_mm3.values()) < 50.0
        assert abs(r.volumetric_discrepancy_mm3) < 50.0
    assert results["file"].provenance["inputs"]["plane"]["file"] == "plane.json"
    assert results["file"].plane_method == "file:plane.json"
    with pytest.raises(Exception, match="nasion"):
        analyze_scan(template, affected="left", landmarks=lm, plane="landmarks")


def test_landmark_plane(template):
    """--plane landmarks: the plane through nasion, subnasale and pogonion (here the template's own midline points)."""
    from helpers import surface_point

    v, f = template.vertices_mm, template.faces
    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    lm.update({"nasion": surface_point(v, f, 0.0, 45.0), "subnasale": surface_point(v, f, 0.0, 5.0),
               "pogonion": surface_point(v, f, 0.0, -45.0)})
    ph = _carve(template, "broad", "left")
    r = analyze_scan(scan_from_arrays(ph.vertices_mm, f), affected="left", landmarks=lm, plane="landmarks")
    log.info("landmark plane: defect %.0f (truth %.0f) +/- %.0f, plane +/- %.3f deg", r.defect_volume_mm3,
             ph.true_volume_mm3, r.defect_volume_uncertainty_mm3, r.plane_uncertainty_deg)
    assert r.plane_method == "landmarks"
    assert abs(r.symmetry_plane_normal[0]) > np.cos(np.radians(0.05))
    assert r.defect_volume_mm3 == pytest.approx(ph.true_volume_mm3, rel=0.05)
    assert r.plane_uncertainty_deg > 0.3  # 1 mm per landmark over a 90 mm profile


def test_stable_mask_fits_the_plane_on_the_given_area(template):
    ph = _carve(template, "broad", "left")
    v = ph.vertices_mm
    stable = (v[:, 0] < -20.0) | (np.abs(v[:, 0]) < 12.0) | (v[:, 1] > 60.0)  # right side, midline strip, brow
    stable |= (v[:, 0] > 20.0) & (v[:, 1] > 60.0)
    r = analyze_scan(scan_from_arrays(v, ph.faces), affected="left", stable=stable)
    log.info("stable vertex mask: defect %.0f (truth %.0f)", r.defect_volume_mm3, ph.true_volume_mm3)
    assert r.plane_method == "mirror (stable mask)"
    assert r.provenance["parameters"]["stable"].startswith("vertex mask")
    assert r.defect_volume_mm3 == pytest.approx(ph.true_volume_mm3, rel=0.05)
    with pytest.raises(Exception, match="one value per scan vertex"):
        analyze_scan(scan_from_arrays(v, ph.faces), affected="left", stable=stable[:-1])


REAL = ("humface", "james", "demoface", "simpop_03", "lee_perry_smith")
#: Lee Perry-Smith's head has no units. Its detected endocanthal and biocular widths (16.5 and 41.7 mm at
#: 24 mm per unit, the pose renders' scale) match adult norms (31-33 and 88-91 mm; Farkas 1994) at about
#: 46.5 and 51.8 mm per unit: their geometric mean, 49 mm per unit, converts it.
LPS_MM_PER_UNIT = 49.0


def real_scan(name):
    if name == "humface":
        return load_scan(DATA / "humface.ply")
    if name == "simpop_03":
        return load_scan(DATA / "simpop_03.obj")
    if name == "lee_perry_smith":
        lps = load_scan(DATA / "scans" / "lee_perry_smith" / "LeePerrySmith.obj", face_sized=False)
        return scan_from_arrays(np.asarray(lps.vertices_mm) * LPS_MM_PER_UNIT, lps.faces)
    return datasets.load_sample(name)


@pytest.fixture(scope="module")
def natural():
    cache = {}

    def get(name):
        if name not in cache:
            scan = real_scan(name)
            cache[name] = (scan, analyze_scan(scan, affected="left"))
        return cache[name]

    return get


#: Cases that miss the 10% target with the default plane: measured figures (kept honest; see the README).
REAL_OFF_TARGET = {
    ("humface", "broad"): "plane turned 1.18 deg toward the atrophy: change -114% (the broad pattern covers most of "
                          "this small face-only scan's left hemiface)",
    ("humface", "multizone"): "plane turned 0.29 deg: change -26%",
    ("james", "broad"): "plane turned 0.35 deg: change +22%",
    ("demoface", "broad"): "plane turned 0.11 deg: change -13%",
    ("lee_perry_smith", "midline"): "plane turned 1.20 deg: change -84% (a coarse 9,000-vertex head: the 10 mm "
                                    "groove spans two or three of its triangles)",
}
REAL_CASES = [
    pytest.param(name, pattern, marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                                                          reason=REAL_OFF_TARGET[(name, pattern)]))
    if (name, pattern) in REAL_OFF_TARGET else (name, pattern)
    for name in REAL for pattern in PATTERNS
]


@pytest.mark.parametrize("name,pattern", REAL_CASES)
def test_real_face_discrepancy_change(natural, name, pattern):
    scan, before = natural(name)
    ph = _carve(scan, pattern, "left")
    after = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected="left")
    change = after.volumetric_discrepancy_mm3 - before.volumetric_discrepancy_mm3
    sd = float(np.hypot(after.volumetric_discrepancy_uncertainty_mm3, before.volumetric_discrepancy_uncertainty_mm3))
    tilt = np.degrees(np.arccos(min(1.0, abs(np.dot(after.symmetry_plane_normal, before.symmetry_plane_normal)))))
    truth = ph.true_volume_mm3
    log.info("%s %s: discrepancy change %.0f mm3 (truth %.0f, %+.1f %%) +/- %.0f; plane moved %.3f deg (+/- %.3f)",
             name, pattern, change, truth, 100 * (change / truth - 1), sd, tilt, after.plane_uncertainty_deg)
    _record(f"{name} {pattern} change", truth, change, sd)
    assert change == pytest.approx(truth, rel=0.10)


#: Painted-stable-area cases: the default plane's worst real-face misses (REAL_OFF_TARGET) and what they become.
PAINTED_CASES = {"humface": ("multizone", "broad"), "james": ("broad",), "demoface": ("broad",)}
#: The painting keeps this clear of the carved area, as a clinician paints only what is surely unaffected.
PAINT_CLEARANCE_MM = 10.0


@pytest.mark.parametrize("name", sorted(PAINTED_CASES))
def test_real_face_change_with_painted_stable_area(name):
    """``stable=``: both sides' unaffected areas painted 10 mm clear of the atrophy fix the plane on real faces.

    One painting per face (clear of every pattern tested on it), used for the
    natural and the carved scan alike, as for one patient's scan.
    """
    from scipy.spatial import cKDTree

    scan = real_scan(name)
    carved = {p: _carve(scan, p, "left") for p in PAINTED_CASES[name]}
    touched = np.any([ph.true_depth_mm > 1e-6 for ph in carved.values()], axis=0)
    stable = cKDTree(scan.vertices_mm[touched]).query(
        scan.vertices_mm, distance_upper_bound=PAINT_CLEARANCE_MM)[0] > PAINT_CLEARANCE_MM
    before = analyze_scan(scan, affected="left", stable=stable, uncertainty=False)
    for pattern, ph in carved.items():
        after = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected="left", stable=stable,
                             uncertainty=False)
        change = after.volumetric_discrepancy_mm3 - before.volumetric_discrepancy_mm3
        tilt = np.degrees(np.arccos(min(1.0, abs(np.dot(after.symmetry_plane_normal, before.symmetry_plane_normal)))))
        log.info("%s %s, stable area painted (%.0f%% of the scan): discrepancy change %.0f mm3 (truth %.0f, %+.1f %%); "
                 "plane moved %.3f deg", name, pattern, 100 * stable.mean(), change, ph.true_volume_mm3,
                 100 * (change / ph.true_volume_mm3 - 1), tilt)
        assert after.plane_method == "mirror (stable mask)"
        assert change == pytest.approx(ph.true_volume_mm3, rel=0.10)


def test_healthy_real_faces_natural_defect(natural):
    """No carve: the natural 'defect' of healthy faces, logged (today's figures in the README)."""
    for name in REAL:
        _, r = natural(name)
        log.info("%s natural: defect left %.0f / right %.0f mm3, discrepancy %.0f +/- %.0f mm3, plane +/- %.3f deg",
                 name, r.defect_volume_by_side_mm3["left"], r.defect_volume_by_side_mm3["right"],
                 r.volumetric_discrepancy_mm3, r.volumetric_discrepancy_uncertainty_mm3, r.plane_uncertainty_deg)
        assert abs(r.volumetric_discrepancy_percent) < 3.0


def test_uncertainty_coverage_table():
    """The true value lies within the reported +/-2 SD in at least 90% of this module's truth cases."""
    if len(COVERAGE) < 10:
        pytest.skip("run with the whole module: the table needs its truth cases")
    lines = [f"{'case':52s} {'truth':>8s} {'measured':>9s} {'error %':>8s} {'SD':>7s} {'|err|/SD':>8s} within"]
    inside = 0
    for case, truth, measured, sd in COVERAGE:
        err = measured - truth
        ok = np.isfinite(sd) and abs(err) <= 2 * sd
        inside += ok
        lines.append(f"{case:52s} {truth:8.0f} {measured:9.0f} {100 * err / truth:+8.1f} {sd:7.0f} "
                     f"{abs(err) / sd if sd > 0 else float('inf'):8.2f} {'yes' if ok else 'NO'}")
    share = inside / len(COVERAGE)
    lines.append(f"coverage: {inside} of {len(COVERAGE)} ({100 * share:.0f} %) within +/-2 SD")
    log.info("uncertainty coverage\n%s", "\n".join(lines))
    assert share >= 0.90


def test_depth_map_line_encloses_the_counted_area(template, tmp_path):
    """The dashed 4 mm line of depth_map.png and zones.png against the carving's exact area, seen from the front.

    Truth: the carved surface where the carved depth exceeds 4 mm, projected on the view (the figure's
    frontal plane). The midline pattern's groove is the hard case: the smoothed map's 4 mm line enclosed
    about a fifth too little of it, which is what the figure drew until the area was read on the
    unsmoothed depth; now the line is drawn where the area is counted.
    """
    import trimesh

    from hemiface.scan._mesh import clip_by_scalar
    from hemiface.scan._render import deep_mask_image, defect_mask_image, render_depth

    ph = _carve(template, "midline", "left")
    r = analyze_scan(scan_from_arrays(ph.vertices_mm, ph.faces), affected="left", uncertainty=False)
    img, _, extent = render_depth(r.render_vertices, r.depth_faces,
                                  np.column_stack([r.depth_values_mm, r.depth_unsmoothed_mm]))
    xs = np.linspace(extent[0], extent[1], img.shape[1])
    mask = defect_mask_image(img[..., 0], xs, "left", r.floor_mm)
    pixel_mm2 = ((extent[1] - extent[0]) / (img.shape[1] - 1)) ** 2
    drawn = deep_mask_image(img[..., 0], mask, r.threshold_mm, img[..., 1]).sum() * pixel_mm2
    smoothed = deep_mask_image(img[..., 0], mask, r.threshold_mm).sum() * pixel_mm2
    # The template is exactly symmetric and analysed in its canonical frame: the view is along its z axis.
    v, f, _, _ = clip_by_scalar(ph.vertices_mm, ph.faces, ph.true_depth_mm, level=r.threshold_mm)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    truth = 0.5 * float(np.abs(n[:, 2]).sum())
    log.info("dashed 4 mm line, frontal area: drawn %.0f mm2, truth %.0f (%+.1f %%); on the smoothed map it "
             "would be %.0f (%+.1f %%)", drawn, truth, 100 * (drawn / truth - 1), smoothed, 100 * (smoothed / truth - 1))
    assert drawn == pytest.approx(truth, rel=0.05)  # the area's own target; -2.8% measured (pixels of 0.25 mm)
    r.save(tmp_path / "out")
    ply = trimesh.load(tmp_path / "out" / "depth_map.ply", process=False)
    stored = ply.metadata["_ply_raw"]["vertex"]["data"]["depth_unsmoothed_mm"]
    assert np.allclose(stored, r.depth_unsmoothed_mm, atol=1e-5)
