"""The stepped ADM composite against constructed truth.

A round dent of known volume (2,500 mm3, radius 20 mm: its layers fit a 50 x 60 mm sheet) is carved
into the symmetric template's left cheek and analysed once per module. Truth the planner did not
produce: the phantom's exact volume (through the analysis), the rounding bound derived in
:mod:`hemiface.plan._layers`, unrolled cylinders whose flat shape is known exactly, the PDF's own
page boxes and drawing commands, and the sheet's size.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import trimesh

from hemiface import datasets
from hemiface.plan import ADM_OUTPUT_NAMES, AdmPlan, adm_plan
from hemiface.plan._flatten import flatten_piece
from hemiface.scan import read_analysis
from hemiface.plan._templates import MM_TO_PT, SCALE_BAR_MM
from hemiface.scan import analyze_scan, read_landmarks, scan_from_arrays

log = logging.getLogger(__name__)
THICKNESSES = (2.0, 1.0, 0.5, 0.25)


@pytest.fixture(scope="module")
def phantom():
    return datasets.make_phantom("template", side="left", volume_mm3=2500.0, radius_mm=20.0)


@pytest.fixture(scope="module")
def analysis(phantom):
    lm = read_landmarks(datasets.sample_landmarks_path("template"))
    return analyze_scan(scan_from_arrays(phantom.vertices_mm, phantom.faces), affected="left", landmarks=lm,
                        uncertainty=False)


@pytest.fixture(scope="module")
def analysis_dir(analysis, tmp_path_factory):
    return analysis.save(tmp_path_factory.mktemp("analysis") / "patient_a")


@pytest.fixture(scope="module")
def plans(analysis_dir) -> dict[float, AdmPlan]:
    return {t: adm_plan(analysis_dir, sheet_thickness_mm=t) for t in THICKNESSES}


@pytest.fixture(scope="module")
def written(plans, tmp_path_factory):
    return plans[1.0].save(tmp_path_factory.mktemp("plan") / "adm")


def test_composite_volume_converges_within_the_bound(phantom, analysis, plans, analysis_dir):
    defect = analysis.defect_volume_mm3
    assert defect == pytest.approx(phantom.true_volume_mm3, rel=0.02)  # the analysis itself, against the carving
    errors = []
    for t, plan in plans.items():
        err = plan.composite_volume_mm3 - defect
        errors.append(abs(err))
        log.info("T = %.2f mm: %d layers, composite %.0f mm3 vs defect %.0f (truth %.0f): %+.0f mm3 (%+.2f %%); "
                 "bound first order %.0f, second order %.0f; solid %.0f mm3", t, len(plan.layers),
                 plan.composite_volume_mm3, defect, phantom.true_volume_mm3, err, 100 * err / defect,
                 plan.volume_bound.first_order_mm3, plan.volume_bound.second_order_mm3, plan.composite_solid_volume_mm3)
        assert abs(err) <= plan.volume_bound.first_order_mm3
        assert abs(err) <= plan.volume_bound.second_order_mm3
        # The stacked shells hold the composite's volume (their prisms follow the analysis' smoothed columns).
        assert plan.composite_solid_volume_mm3 == pytest.approx(plan.composite_volume_mm3, rel=0.01)
    assert all(a > b for a, b in zip(errors, errors[1:])), errors  # shrinks with T
    half = plans[0.5]
    assert abs(half.composite_volume_mm3 - defect) <= half.volume_bound.bound_mm3
    assert half.volume_bound.first_order_mm3 == pytest.approx(0.25 * half.volume_bound.slices_total_variation_mm2)
    # Slices shrink with depth here, so the first-order bound is (T/2) x the area of the restored surface over
    # the whole defect (the slice at depth 0, out to the rim; the reported defect area stops at 0.5 mm).
    assert half.volume_bound.slices_monotone
    assert half.volume_bound.slices_total_variation_mm2 == pytest.approx(half.volume_bound.slice_areas_mm2[0])
    rim = read_analysis(analysis_dir).defect().restored_area_mm2(level_mm=0.0)
    assert half.volume_bound.slices_total_variation_mm2 == pytest.approx(rim, rel=0.01)
    assert analysis.defect_area_mm2 < rim


def test_layer_rule_levels_and_counts(analysis, plans):
    plan = plans[0.5]
    levels = [layer.covers_deeper_than_mm for layer in plan.layers]
    assert levels == pytest.approx([(k - 0.5) * 0.5 for k in range(1, len(levels) + 1)])
    top = max(float(np.linalg.norm(analysis.depth_top_mm - analysis.depth_vertices_mm, axis=1).max()), 0)
    assert len(plan.layers) == plan.layers_needed == int(np.floor(top / 0.5 + 0.5))
    areas = [layer.area_mm2 for layer in plan.layers]
    assert all(a > b for a, b in zip(areas, areas[1:]))  # each layer inside the one above it
    assert sum(p.curved_area_mm2 for p in plan.pieces) + sum(l.uncut_area_mm2 for l in plan.layers) == \
        pytest.approx(sum(areas), rel=1e-9)


def test_ceil_overfills_floor_underfills(analysis_dir, analysis):
    defect = analysis.defect_volume_mm3
    ceil = adm_plan(analysis_dir, sheet_thickness_mm=1.0, rounding="ceil")
    floor = adm_plan(analysis_dir, sheet_thickness_mm=1.0, rounding="floor")
    log.info("T = 1 mm: ceil %.0f, floor %.0f mm3 vs defect %.0f (bound %.0f each)", ceil.composite_volume_mm3,
             floor.composite_volume_mm3, defect, ceil.volume_bound.bound_mm3)
    assert defect < ceil.composite_volume_mm3 <= defect + ceil.volume_bound.bound_mm3
    assert defect - floor.volume_bound.bound_mm3 <= floor.composite_volume_mm3 < defect
    assert len(ceil.layers) == len(floor.layers) + 1


def test_flattened_areas_match_curved_areas(plans):
    for piece in plans[0.5].pieces:
        flat = piece.flat
        outer, *holes = flat.outlines
        polygon = abs(_shoelace(outer)) - sum(abs(_shoelace(h)) for h in holes)
        d = flat.distortion
        assert abs(polygon / piece.curved_area_mm2 - 1) * 100 <= abs(d["area_error_percent"]) + 0.05
        assert abs(d["area_error_percent"]) < 0.5 and d["length_error_mean_percent"] < 1.5
        assert d["flipped_triangles"] == 0
    worst = max(p.flat.distortion["length_error_mean_percent"] for p in plans[0.5].pieces)
    log.info("T = 0.5 mm: worst mean length error %.2f %%, worst area error %.3f %%", worst,
             max(abs(p.flat.distortion["area_error_percent"]) for p in plans[0.5].pieces))


def _cylinder(radius, angle, height, hole=None, n=(60, 40)):
    """A grid over a cylinder's side: arc ``angle`` (rad) by ``height`` (mm); optionally a square hole."""
    a, z = np.meshgrid(np.linspace(0, angle, n[0]), np.linspace(0, height, n[1]), indexing="ij")
    v = np.column_stack([radius * np.sin(a.ravel()), z.ravel(), radius * np.cos(a.ravel())])
    idx = np.arange(v.shape[0]).reshape(n)
    quads = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], axis=-1).reshape(-1, 4)
    if hole is not None:
        i, j = np.meshgrid(np.arange(n[0] - 1), np.arange(n[1] - 1), indexing="ij")
        keep = ~((abs(i - n[0] / 2) < hole) & (abs(j - n[1] / 2) < hole)).ravel()
        quads = quads[keep]
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return v, faces


@pytest.mark.parametrize("hole", [None, 6])
def test_unrolled_cylinder_is_exact(hole):
    """A cylinder is developable: its template is the rectangle arc x height, holes kept as holes."""
    radius, angle, height = 40.0, 1.2, 30.0
    v, f = _cylinder(radius, angle, height, hole=hole)
    flat = flatten_piece(v, f, superior=np.array([0.0, 1.0, 0.0]), medial=np.array([-1.0, 0.0, 0.0]))
    w, h = flat.size_mm
    assert w == pytest.approx(2 * radius * np.sin(angle / (2 * 59)) * 59, rel=1e-3)  # the chord polygon's length
    assert h == pytest.approx(height, rel=1e-3)
    assert flat.distortion["length_error_p95_percent"] < 0.1
    assert len(flat.outlines) == (1 if hole is None else 2)
    assert flat.superior_2d == pytest.approx([0.0, 1.0], abs=1e-3)  # superior turned up the page
    assert flat.medial_2d == pytest.approx([-1.0, 0.0], abs=0.05)  # seen from outside: -x stays to the left


def test_outputs_written_together(written, plans):
    assert sorted(p.name for p in written.iterdir()) == sorted(ADM_OUTPUT_NAMES)
    d = json.loads((written / "adm_plan.json").read_text())
    prov = d["provenance"]
    assert set(prov["inputs"]) == {"measurements", "depth_map"}
    assert all(len(i["sha256"]) == 64 for i in prov["inputs"].values())
    assert prov["parameters"]["sheet_thickness_mm"] == 1.0 and prov["parameters"]["rounding"] == "half"
    assert d["sheet_count"] == plans[1.0].sheets == len(d["sheets"])
    stl = trimesh.load(written / "adm_composite.stl")
    assert stl.volume == pytest.approx(plans[1.0].composite_solid_volume_mm3, rel=1e-3)
    # One closed shell per piece: every edge met once in each direction (shells touch, so not merged here).
    f = plans[1.0].composite_faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    forward = {tuple(e) for e in edges.tolist()}
    assert len(forward) == len(edges) and all((b, a) in forward for a, b in forward)


def test_pdf_page_is_the_sheet_and_the_scale_bar_is_50_mm(written, plans):
    import pypdf

    reader = pypdf.PdfReader(written / "adm_templates.pdf")
    assert len(reader.pages) == plans[1.0].sheets
    for page in reader.pages:
        box = page.mediabox
        assert float(box.width) == pytest.approx(50 * 72 / 25.4, abs=1e-3)
        assert float(box.height) == pytest.approx(60 * 72 / 25.4, abs=1e-3)
        content = page.get_contents().get_data().decode("latin-1")
        # Straight segments "<width> w n x0 y0 m x1 y1 l S"; the scale bar is the only one 0.3 mm wide.
        segments = [tuple(map(float, m)) for m in re.findall(
            r"([\d.]+) w\s+n ([\d.]+) ([\d.]+) m ([\d.]+) ([\d.]+) l\s+S", content)]
        bars = [s for s in segments if s[0] == pytest.approx(0.3 * MM_TO_PT, abs=1e-4)]
        assert len(bars) == 1, content[:400]
        _, x0, y0, x1, y1 = bars[0]
        assert np.hypot(x1 - x0, y1 - y0) == pytest.approx(SCALE_BAR_MM * 72 / 25.4, abs=0.01)
        text = "".join(page.extract_text() or "")
        assert "1:1" in text and "S" in text and "M" in text
    svg = (written / "adm_templates.svg").read_text()
    assert 'height="60mm"' in svg and f'width="{50 * plans[1.0].sheets + 10 * (plans[1.0].sheets - 1):g}mm"' in svg


def test_every_piece_fits_on_its_sheet(plans):
    for plan in plans.values():
        placed = {}
        for piece in plan.pieces:
            p = piece.placement
            assert p.sheet is not None and 0 <= p.sheet < plan.sheets
            from hemiface.plan._layout import place

            pts = np.concatenate([place(o, p, piece.size_mm) for o in piece.flat.outlines])
            assert pts.min() >= 0 and pts[:, 0].max() <= 50.0 and pts[:, 1].max() <= 60.0
            placed.setdefault(p.sheet, []).append((pts.min(axis=0), pts.max(axis=0)))
        for boxes in placed.values():  # no two pieces' boxes overlap
            for i, (lo1, hi1) in enumerate(boxes):
                for lo2, hi2 in boxes[i + 1:]:
                    assert np.any(hi1 <= lo2 + 1e-6) or np.any(hi2 <= lo1 + 1e-6)


def test_anchors_and_orientation(plans, analysis):
    names = set(analysis.to_dict()["face_frame"]["landmarks_mm"])
    for piece in plans[1.0].pieces:
        assert 1 <= len(piece.anchors) <= 2 and {a["landmark"] for a in piece.anchors} <= names
        assert piece.anchors[0]["distance_mm"] <= piece.anchors[-1]["distance_mm"]
        # A left-cheek piece: superior up the page, the midline to the left (seen from the front).
        assert piece.flat.superior_2d[1] > 0.99 and piece.flat.medial_2d[0] < -0.9


def test_in_memory_analysis_gives_the_same_plan(analysis, plans):
    again = adm_plan(analysis, sheet_thickness_mm=1.0)
    assert again.composite_volume_mm3 == pytest.approx(plans[1.0].composite_volume_mm3, rel=1e-4)
    assert [l.area_mm2 for l in again.layers] == pytest.approx([l.area_mm2 for l in plans[1.0].layers], rel=1e-4)


def test_oversize_piece_and_max_layers_are_reported(analysis_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="hemiface"):
        plan = adm_plan(analysis_dir, sheet_thickness_mm=1.0, sheet_size_mm=(20, 25), max_layers=3)
    big = [p for p in plan.pieces if p.placement.sheet is None]
    assert big and all(max(p.size_mm) > 20 for p in big)
    label = big[0].label
    message = next(w for w in plan.warnings if label in w)
    assert "20 x 25 mm sheet" in message and f"{big[0].size_mm[0]:.1f} x {big[0].size_mm[1]:.1f} mm" in message
    assert len(plan.layers) == 3 < plan.layers_needed
    assert any("max_layers 3" in w for w in plan.warnings)
    assert plan.to_dict()["oversize_pieces"] == [p.label for p in big]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"sheet_thickness_mm": 0}, "sheet_thickness_mm must be > 0"),
    ({"sheet_thickness_mm": 1, "sheet_size_mm": (50,)}, "sheet_size_mm must be two positive lengths"),
    ({"sheet_thickness_mm": 1, "max_layers": 0}, "max_layers must be a whole number >= 1"),
    ({"sheet_thickness_mm": 1, "rounding": "nearest"}, "rounding must be one of"),
])
def test_bad_options_say_which(analysis_dir, kwargs, fragment):
    from hemiface import HemifaceError

    with pytest.raises(HemifaceError, match=re.escape(fragment)):
        adm_plan(analysis_dir, **kwargs)


def _shoelace(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _moved(analysis, rotation, shift):
    """The same analysed face in another pose: every point and direction of the analysis moved rigidly."""
    from dataclasses import replace

    def point(p):
        return np.asarray(p, float) @ rotation.T + shift

    frame = analysis.face_frame
    moved_frame = replace(frame, rotation=frame.rotation @ rotation.T, origin_mm=point(frame.origin_mm),
                          landmarks_mm={k: point(p) for k, p in frame.landmarks_mm.items()})
    return replace(analysis, depth_vertices_mm=point(analysis.depth_vertices_mm), depth_top_mm=point(analysis.depth_top_mm),
                   symmetry_plane_normal=tuple(np.asarray(analysis.symmetry_plane_normal) @ rotation.T),
                   symmetry_plane_point_mm=tuple(point(analysis.symmetry_plane_point_mm)), face_frame=moved_frame)


def test_the_same_face_moved_gives_the_same_plan(analysis, plans):
    """Rigid-motion invariance: layers, pieces, templates and sheets do not depend on the scan's pose."""
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_euler("zyx", [110.0, -50.0, 30.0], degrees=True).as_matrix()
    moved = adm_plan(_moved(analysis, rotation, np.array([120.0, -40.0, 300.0])), sheet_thickness_mm=1.0)
    plan = plans[1.0]
    assert [l.area_mm2 for l in moved.layers] == pytest.approx([l.area_mm2 for l in plan.layers], rel=1e-6)
    assert moved.composite_volume_mm3 == pytest.approx(plan.composite_volume_mm3, rel=1e-6)
    assert moved.composite_solid_volume_mm3 == pytest.approx(plan.composite_solid_volume_mm3, rel=1e-6)
    assert moved.sheets == plan.sheets and [p.label for p in moved.pieces] == [p.label for p in plan.pieces]
    for a, b in zip(moved.pieces, plan.pieces):
        assert a.size_mm == pytest.approx(b.size_mm, abs=1e-3)  # superior still up: the template is the same
        assert a.flat.distortion["length_error_mean_percent"] == pytest.approx(
            b.flat.distortion["length_error_mean_percent"], abs=1e-3)
        assert [x["landmark"] for x in a.anchors] == [x["landmark"] for x in b.anchors]
        assert [x["distance_mm"] for x in a.anchors] == pytest.approx([x["distance_mm"] for x in b.anchors], abs=1e-6)
        assert (a.placement.sheet, a.placement.rotated) == (b.placement.sheet, b.placement.rotated)
    # The composite solid moves with the face.
    assert moved.composite_vertices_mm == pytest.approx(plan.composite_vertices_mm @ rotation.T + [120.0, -40.0, 300.0],
                                                       abs=1e-4)


def test_template_marks_stay_on_their_own_piece(plans):
    """Labels, compasses and references: inside the sheet, each within one piece's own part of it (so never
    over a neighbour), and no two texts over each other."""
    from hemiface.plan._adm import _sheet_drawings
    from hemiface.plan._layout import EDGE_MARGIN_MM, own_area

    for t, plan in plans.items():
        pages = _sheet_drawings(plan)
        for s, sheet in enumerate(pages[:plan.sheets]):
            areas = np.array([own_area(p.placement, plan.sheet_size_mm) for p in plan.pieces if p.placement.sheet == s])
            boxes = sheet.text_boxes()[1:]  # the first is the sheet's caption, in the margin
            assert len(boxes) >= 3 * len(areas)  # a label, S, M and the references at least, per piece
            owners = [np.flatnonzero((areas[:, :2] <= b[:2] + 1e-6).all(axis=1) & (areas[:, 2:] >= b[2:] - 1e-6).all(axis=1))
                      for b in boxes]
            assert all(len(o) == 1 for o in owners), (t, s, [b for b, o in zip(boxes, owners) if len(o) != 1])
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    overlap = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
                    assert min(overlap) <= 1e-6, (t, s, a, b)
            # Every line off the sheet's margin (outlines, arrows) lies in one piece's own area too.
            w, h = plan.sheet_size_mm
            for points, *_ in sheet.lines:
                inner = points[((points > EDGE_MARGIN_MM) & (points < [w - EDGE_MARGIN_MM, h - EDGE_MARGIN_MM])).all(axis=1)]
                if len(inner):
                    lo, hi = inner.min(axis=0), inner.max(axis=0)
                    assert ((areas[:, :2] <= lo + 1e-6).all(axis=1) & (areas[:, 2:] >= hi - 1e-6).all(axis=1)).sum() == 1
