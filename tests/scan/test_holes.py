"""Scans as the clinic brings them: holes (nostrils, eyes, brows, specular dropouts) and hair.

Truth is the carved closed shell (:func:`hemiface.datasets.carve_atrophy`) of the
scan before the holes were punched. Small holes are closed before measuring
(``FaceRegion.hole_fill_radius_mm``); before that, each hole cost its own area, a
3 mm border margin and the same again around its mirror image: 12 dropouts of
2-5 mm radius took 19-24% off the defect and 34-36% off a follow-up's gain.
Every case logs how far off it is, with the holes closed and, for one case per
test, without.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hemiface import datasets
from hemiface._validate import OptionError
from hemiface.scan import FaceRegion, analyze_scan, compare_scans, scan_from_arrays
from hemiface.scan._holes import close_small_holes, fill_small_holes
from hemiface.scan._mesh import boundary_edges, face_areas_mm2, hole_edges
from helpers import add_hair, punch_holes, scanner_holes, surface_point

log = logging.getLogger(__name__)
OPEN = FaceRegion(hole_fill_radius_mm=0.0)


@pytest.fixture(scope="module")
def template():
    return datasets.load_sample("template")


def test_only_small_holes_are_closed_and_the_scan_is_kept(template):
    from hemiface.scan._frame import find_pronasale

    v, f = template.vertices_mm, template.faces
    tip = find_pronasale(v, f)
    spots = [(30, 5, 5.0), (-35, -20, 3.0), (20, 50, 20.0)]  # two small holes and one of 20 mm radius
    centres = [surface_point(v, f, tip[0] + dx, tip[1] + dy) for dx, dy, _ in spots]
    holed = punch_holes(v, f, centres, [r for *_, r in spots])
    small = punch_holes(v, f, centres[:2], [5.0, 3.0])
    filled, count, area = fill_small_holes(v, holed, 12.5)
    assert count == 2
    assert np.array_equal(filled[: len(holed)], holed)  # the scan's own faces first and unchanged, no vertex added
    assert filled.max() < len(v)
    # what stays open: the scan's border and the large hole, exactly
    open_edges = {tuple(sorted(e)) for e in boundary_edges(filled)}
    big_only = punch_holes(v, f, centres[2:], [20.0])
    assert open_edges == {tuple(sorted(e)) for e in boundary_edges(big_only)}
    # consistent winding: no directed edge twice, every new triangle facing out like the skin around it
    edges = np.concatenate([filled[:, [0, 1]], filled[:, [1, 2]], filled[:, [2, 0]]])
    assert len({tuple(e) for e in edges}) == len(edges)
    removed = face_areas_mm2(v, f).sum() - face_areas_mm2(v, small).sum()
    log.info("two holes closed: %.1f mm2 of flat triangles for %.1f mm2 of removed skin", area, removed)
    assert area == pytest.approx(removed, rel=0.05)
    assert fill_small_holes(v, holed, 0.0)[1] == 0
    # refined and faired: the scan's own vertices and faces first and unchanged, the same border left open
    v2, f2, count2, area2 = close_small_holes(v, holed, 12.5)
    assert count2 == 2 and len(v2) > len(v) and np.array_equal(v2[: len(v)], v) and np.array_equal(f2[: len(holed)], holed)
    assert {tuple(sorted(e)) for e in boundary_edges(f2)} == open_edges
    assert area2 == pytest.approx(removed, rel=0.05)
    assert close_small_holes(v, holed, 0.0)[2] == 0
    with pytest.raises(OptionError, match="hole_fill_radius_mm"):
        FaceRegion(hole_fill_radius_mm=-1.0)


@pytest.mark.parametrize("pattern", ["multizone", "broad", "midline"])
def test_defect_on_a_scan_with_holes(template, pattern):
    """Nostrils, eyes, brows and 12 dropouts on both sides, some inside the atrophy: within 5% as without holes."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern=pattern, side="left")
    holed = scan_from_arrays(ph.vertices_mm, scanner_holes(ph.vertices_mm, ph.faces, seed=3))
    r = analyze_scan(holed, affected="left", uncertainty=False)
    truth = ph.true_volume_mm3
    closed = r.provenance["parameters"]["holes_closed"]
    message = (f"template {pattern} with holes ({closed['count']} closed, {closed['area_mm2']:.0f} mm2): defect "
               f"{r.defect_volume_mm3:.0f} mm3 (truth {truth:.0f}, {100 * (r.defect_volume_mm3 / truth - 1):+.1f} %), "
               f"discrepancy {r.volumetric_discrepancy_mm3:.0f} ({100 * (r.volumetric_discrepancy_mm3 / truth - 1):+.1f} %), "
               f"max depth {r.max_depth_mm:.2f} mm (truth {ph.true_max_depth_mm:.2f})")
    if pattern == "multizone":  # the same scan with every hole left open: what the holes cost before
        o = analyze_scan(holed, affected="left", region=OPEN, uncertainty=False)
        message += (f"; holes left open: defect {100 * (o.defect_volume_mm3 / truth - 1):+.1f} %, "
                    f"{o.defect_hole_border_mm:.0f} mm of hole border at the defect")
        assert o.defect_volume_mm3 < 0.9 * truth  # the holes lie in the measured region: the test can fail
        assert o.defect_hole_border_mm >= 10.0
    log.info(message)
    assert closed["count"] >= 10 and closed["area_mm2"] > 500
    assert r.defect_hole_border_mm == 0.0
    assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.05)
    assert r.volumetric_discrepancy_mm3 == pytest.approx(truth, rel=0.05)
    assert abs(r.max_depth_mm - ph.true_max_depth_mm) < 0.3


@pytest.mark.parametrize("pattern", ["round", "multizone"])
def test_a_hole_at_the_deepest_point_is_closed_on_the_skin(template, pattern):
    """A hole of 3, 5 and 8 mm radius punched where the carving is deepest: closed, the fill lies on the carved skin
    it replaces (a flat patch lies up to 0.4 mm above it), so the defect keeps its volume and its maximum depth."""
    import trimesh

    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern=pattern, side="left")
    deepest = ph.vertices_mm[np.argmax(ph.true_depth_mm)]
    skin = trimesh.Trimesh(ph.vertices_mm, ph.faces, process=False)
    truth = ph.true_volume_mm3
    for radius in (3.0, 5.0, 8.0):
        holed = punch_holes(ph.vertices_mm, ph.faces, [deepest], [radius])
        flat = fill_small_holes(ph.vertices_mm, holed, 12.5)[0]
        v, f, count, _ = close_small_holes(ph.vertices_mm, holed, 12.5)
        off_flat = trimesh.proximity.closest_point(skin, ph.vertices_mm[flat[len(holed):]].mean(axis=1))[1].max()
        off = trimesh.proximity.closest_point(skin, v[len(ph.vertices_mm):])[1].max()
        r = analyze_scan(scan_from_arrays(ph.vertices_mm, holed), affected="left", uncertainty=False)
        log.info("%s, %g mm hole at the deepest point: fill at most %.2f mm off the carved skin (flat patch %.2f mm; "
                 "VTK's filler left %d border edges open), defect %+.1f %%, max depth %.2f mm (truth %.2f, %+.2f)", pattern,
                 radius, off, off_flat, len(hole_edges(ph.vertices_mm, boundary_edges(flat))),
                 100 * (r.defect_volume_mm3 / truth - 1), r.max_depth_mm, ph.true_max_depth_mm,
                 r.max_depth_mm - ph.true_max_depth_mm)
        assert count == 1 and not len(hole_edges(v, boundary_edges(f)))
        assert off < 0.2 and off < 0.5 * off_flat + 0.01
        assert r.defect_hole_border_mm == 0.0
        assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.03)
        assert abs(r.max_depth_mm - ph.true_max_depth_mm) < 0.3


def test_a_large_hole_in_the_defect_is_reported(template, caplog):
    """A hole past the closing limit over the deepest part of the round dent: the volume there is not measured,
    and the result says so (a warning, ``defect_hole_border_mm``) instead of a plausible, far too small number."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern="round", side="left")
    deepest = ph.vertices_mm[np.argmax(ph.true_depth_mm)]
    truth = ph.true_volume_mm3
    for radius, reported in ((3.0, False), (14.0, True)):
        scan = scan_from_arrays(ph.vertices_mm, punch_holes(ph.vertices_mm, ph.faces, [deepest], [radius]))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hemiface"):
            r = analyze_scan(scan, affected="left", uncertainty=False)
        warned = any("open hole" in m for m in caplog.messages)
        log.info("round dent, %g mm hole at its deepest point: defect %.0f mm3 (truth %.0f, %+.1f %%), %.0f mm of open "
                 "hole border at the defect, warned: %s", radius, r.defect_volume_mm3, truth,
                 100 * (r.defect_volume_mm3 / truth - 1), r.defect_hole_border_mm, warned)
        assert warned == reported
        assert (r.defect_hole_border_mm >= 10.0) == reported
        if not reported:  # closed on the skin around it
            assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.02)


def test_defect_under_hair(template):
    """Hair lifting the scalp and the sideburns by 1-6 mm, differently on each side, beside a temple depression."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern="multizone", side="left")
    r = analyze_scan(scan_from_arrays(add_hair(ph.vertices_mm, ph.faces, seed=5), ph.faces), affected="left",
                     uncertainty=False)
    truth = ph.true_volume_mm3
    log.info("template multizone under hair: defect %.0f mm3 (truth %.0f, %+.1f %%), discrepancy %.0f (%+.1f %%)",
             r.defect_volume_mm3, truth, 100 * (r.defect_volume_mm3 / truth - 1), r.volumetric_discrepancy_mm3,
             100 * (r.volumetric_discrepancy_mm3 / truth - 1))
    assert r.defect_volume_mm3 == pytest.approx(truth, rel=0.05)
    assert r.volumetric_discrepancy_mm3 == pytest.approx(truth, rel=0.05)


def test_compare_with_holes_in_both_visits(template):
    """Baseline and follow-up (60% restored) each with their own holes: the gain within 5%, the correction within 5 points."""
    ph = datasets.carve_atrophy(template.vertices_mm, template.faces, pattern="multizone", side="left")
    fu = ph.restored(0.6)
    pre = scan_from_arrays(ph.vertices_mm, scanner_holes(ph.vertices_mm, ph.faces, seed=1))
    post = scan_from_arrays(fu.vertices_mm, scanner_holes(fu.vertices_mm, fu.faces, seed=2))
    c = compare_scans(pre, post, affected="left", uncertainty=False)
    o = compare_scans(pre, post, affected="left", region=OPEN, uncertainty=False)
    truth = fu.true_gain_mm3
    log.info("compare, multizone 60%% restored, holes in both visits: gain %.0f mm3 (truth %.0f, %+.1f %%), corrected "
             "%.1f %% (truth 60); holes left open: gain %+.1f %%", c.gain.volume_mm3, truth,
             100 * (c.gain.volume_mm3 / truth - 1), c.defect_corrected_percent, 100 * (o.gain.volume_mm3 / truth - 1))
    assert o.gain.volume_mm3 < 0.9 * truth
    assert c.gain.volume_mm3 == pytest.approx(truth, rel=0.05)
    assert abs(c.defect_corrected_percent - 60.0) < 5.0
    assert c.provenance["parameters"]["holes_closed"]["post"]["count"] >= 10


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the holes trip the default plane on this real face: +27.1% (target 10%; +3.3% without holes; +23.6% with the flat "
    "fill used until 2026-12-03); the two 3 mm nostril holes alone turn the carved scan's plane by 0.46-0.51 deg (+32 "
    "to +35%), filled or left open, while the "
    "eye and brow holes move it by 0.01-0.03 deg: the consensus refit's known instability on real faces (README)"))
def test_real_face_change_with_holes():
    """james, natural and carved (multi-zone) scans each with their own holes: the change within 10% (+3.3% without holes)."""
    james = datasets.load_sample("james")
    ph = datasets.carve_atrophy(james.vertices_mm, james.faces, pattern="multizone", side="left")
    before = analyze_scan(scan_from_arrays(james.vertices_mm, scanner_holes(james.vertices_mm, james.faces, seed=11)),
                          affected="left", uncertainty=False)
    after = analyze_scan(scan_from_arrays(ph.vertices_mm, scanner_holes(ph.vertices_mm, ph.faces, seed=12)),
                         affected="left", uncertainty=False)
    change, truth = after.volumetric_discrepancy_mm3 - before.volumetric_discrepancy_mm3, ph.true_volume_mm3
    log.info("james multizone, holes in both scans: discrepancy change %.0f mm3 (truth %.0f, %+.1f %%)", change, truth,
             100 * (change / truth - 1))
    assert change == pytest.approx(truth, rel=0.10)
