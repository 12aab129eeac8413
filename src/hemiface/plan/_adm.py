"""``adm_plan``: the stepped acellular-dermal-matrix composite for a measured defect.

From a ``scan analyze`` result (its folder, or the :class:`hemiface.scan.ScanAnalysis`): the defect
is cut into layers of the sheet thickness (:mod:`hemiface.plan._layers`: the rule, the volumes and
the bound), each layer's connected parts are flattened to the plane at 1:1
(:mod:`hemiface.plan._flatten`), laid out on sheets (:mod:`hemiface.plan._layout`) and drawn as
printable templates (:mod:`hemiface.plan._templates`). The stacked layers are also written as a
solid in the scan's frame, to set beside ``defect.stl``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import logger
from .._errors import HemifaceError
from .._outputs import staged_outputs
from .._provenance import provenance
from .._validate import OptionError, check_option, check_positive
from ..scan import Patch, SavedAnalysis, defect_solid, display_mesh, read_analysis
from . import _layout
from ._flatten import ARAP_ITERATIONS, COARSE_EDGE_MM, MIN_COARSE_TRIANGLES, FlatPiece, flatten_piece
from ._layers import ROUNDING, SLICES_PER_LAYER, VolumeBound, _with_heights, layer_regions, offset_surface, volume_bound
from ._templates import Sheet, draw_piece, marks_fit_inside, marks_room_mm, pdf_bytes, sheet_frame, svg_text

#: Files ``AdmPlan.save`` writes; the JSON last (its presence marks a complete set).
ADM_OUTPUT_NAMES = ("adm_templates.pdf", "adm_templates.svg", "adm_composite.stl", "adm_layers.png", "adm_plan.json")
#: Layer parts smaller than this are not cut (a scrap under a square millimetre); their area is reported.
MIN_PIECE_AREA_MM2 = 1.0
#: How many landmarks each template names as anchoring references.
ANCHORS_PER_PIECE = 2
#: The layer map draws the depth map clustered to at most this many vertices (about two pixels apart).
LAYER_MAP_VERTICES = 60_000


class PlanError(HemifaceError, ValueError):
    """A plan cannot be made from this input (no defect, nothing to cut)."""


@dataclass(frozen=True, eq=False)
class AdmPiece:
    """One piece to cut: a connected part of layer ``layer`` (mm, mm2)."""

    layer: int
    index: int
    curved_area_mm2: float
    flat: FlatPiece = field(repr=False)
    size_mm: tuple[float, float]  # flat bounding box, superior up
    extent_3d_mm: float  # longest chord of the curved outline
    placement: _layout.Placement
    anchors: tuple[dict, ...]

    @property
    def label(self) -> str:
        return f"L{self.layer}.{self.index}"

    def to_dict(self) -> dict:
        p = self.placement
        return {
            "label": self.label, "layer": self.layer, "piece": self.index,
            "curved_area_mm2": self.curved_area_mm2, "flat_area_mm2": self.flat.flat_area_mm2,
            "width_mm": self.size_mm[0], "height_mm": self.size_mm[1], "extent_3d_mm": self.extent_3d_mm,
            "holes": len(self.flat.outlines) - 1, "distortion": self.flat.distortion,
            "triangles": len(self.flat.faces), "solved_on_triangles": self.flat.solved_triangles,
            "sheet": None if p.sheet is None else p.sheet + 1, "fits_on_sheet": p.sheet is not None,
            "position_on_sheet_mm": None if p.sheet is None else [p.x_mm, p.y_mm],
            "rotated_90_deg": p.rotated, "anchors": list(self.anchors),
        }


@dataclass(frozen=True, eq=False)
class AdmLayer:
    """Layer ``k``: where it covers, its area on its mid-surface and its pieces."""

    k: int
    covers_deeper_than_mm: float
    area_mm2: float
    piece_labels: tuple[str, ...]
    uncut_area_mm2: float
    extent_3d_mm: float

    def to_dict(self) -> dict:
        return {"layer": self.k, "covers_deeper_than_mm": self.covers_deeper_than_mm, "area_mm2": self.area_mm2,
                "pieces": list(self.piece_labels), "uncut_area_mm2": self.uncut_area_mm2,
                "extent_3d_mm": self.extent_3d_mm}


@dataclass(frozen=True, eq=False)
class AdmPlan:
    """Result of :func:`adm_plan`. Volumes mm3, areas mm2, lengths mm; coordinates in the scan's frame.

    ``composite_volume_mm3`` is ``sum(layer area) * thickness``; ``volume_bound`` bounds its distance
    from ``defect_volume_mm3`` (see :mod:`hemiface.plan._layers`).
    """

    sheet_thickness_mm: float
    sheet_size_mm: tuple[float, float]
    rounding: str
    layers: tuple[AdmLayer, ...]
    layers_needed: int
    pieces: tuple[AdmPiece, ...]
    sheets: int
    defect_volume_mm3: float
    composite_volume_mm3: float
    composite_solid_volume_mm3: float
    volume_bound: VolumeBound
    warnings: tuple[str, ...]
    provenance: dict
    source: str
    composite_vertices_mm: np.ndarray = field(repr=False)
    composite_faces: np.ndarray = field(repr=False)
    analysis: SavedAnalysis = field(repr=False)
    layer_regions: tuple[Patch, ...] = field(repr=False)

    @property
    def volume_difference_mm3(self) -> float:
        return self.composite_volume_mm3 - self.defect_volume_mm3

    def to_dict(self) -> dict:
        return {
            "sheet_thickness_mm": self.sheet_thickness_mm,
            "sheet_size_mm": list(self.sheet_size_mm),
            "rounding": self.rounding,
            "rounding_rule": _RULE_TEXT[self.rounding],
            "layer_count": len(self.layers),
            "layers_needed": self.layers_needed,
            "sheet_count": self.sheets,
            "piece_count": len(self.pieces),
            "defect_volume_mm3": self.defect_volume_mm3,
            "composite_volume_mm3": self.composite_volume_mm3,
            "composite_solid_volume_mm3": self.composite_solid_volume_mm3,
            "volume_difference_mm3": self.volume_difference_mm3,
            "volume_difference_percent": 100.0 * self.volume_difference_mm3 / self.defect_volume_mm3,
            "volume_bound": self.volume_bound.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "pieces": [p.to_dict() for p in self.pieces],
            "sheets": [{"sheet": s + 1, "pieces": [p.label for p in self.pieces if p.placement.sheet == s]}
                       for s in range(self.sheets)],
            "oversize_pieces": [p.label for p in self.pieces if p.placement.sheet is None],
            "warnings": list(self.warnings),
            "templates": "adm_templates.pdf (one page per sheet, each page the sheet's size at 1:1) and "
                         "adm_templates.svg (the sheets side by side, 1 user unit = 1 mm); pieces seen from outside "
                         "the face, superior up unless turned 90 degrees to fit (see the S and M arrows)",
            "coordinates": "adm_composite.stl: the stacked layers in the scan's own frame, mm (one closed shell "
                           "per piece and layer, stacked as the sheets are)",
            "provenance": self.provenance,
        }

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write adm_plan.json, adm_templates.pdf/.svg, adm_composite.stl and adm_layers.png, all or none."""
        return write_adm_outputs(self, out_dir, overwrite=overwrite)


_RULE_TEXT = {
    "half": "layer k covers where the defect is deeper than (k - 1/2) T: each point gets round(depth / T) sheets",
    "ceil": "layer k covers where the defect is deeper than (k - 1) T: ceil(depth / T) sheets (never short)",
    "floor": "layer k covers where the defect is deeper than k T: floor(depth / T) sheets (never above)",
}


def _check_inputs(sheet_thickness_mm, sheet_size_mm, max_layers, rounding):
    thickness = check_positive("sheet_thickness_mm", sheet_thickness_mm)
    if not np.isfinite(thickness):
        raise OptionError(f"sheet_thickness_mm must be finite; got {sheet_thickness_mm!r}")
    try:
        size = tuple(float(s) for s in sheet_size_mm)
    except (TypeError, ValueError):
        raise OptionError(f"sheet_size_mm must be two lengths (width, height) in mm; got {sheet_size_mm!r}") from None
    if len(size) != 2 or not all(np.isfinite(s) and s > 0 for s in size):
        raise OptionError(f"sheet_size_mm must be two positive lengths (width, height) in mm; got {sheet_size_mm!r}")
    if max_layers is not None and (isinstance(max_layers, bool) or int(max_layers) != max_layers or max_layers < 1):
        raise OptionError(f"max_layers must be a whole number >= 1 or None; got {max_layers!r}")
    check_option("rounding", rounding, tuple(ROUNDING))
    return thickness, size, None if max_layers is None else int(max_layers)


def _boundary_points(patch: Patch, vertices: np.ndarray) -> np.ndarray:
    import igl

    loops = igl.boundary_loop_all(np.ascontiguousarray(patch.faces))
    idx = np.unique(np.concatenate([np.asarray(loop, dtype=np.int64) for loop in loops])) if loops else np.arange(0)
    return vertices[idx]


def _anchors(outline_3d: np.ndarray, flat: FlatPiece, outline_ids: np.ndarray, landmarks: dict) -> tuple[dict, ...]:
    """The landmarks nearest the piece's outline: name, 3D distance, where on the outline, and which way."""
    if not landmarks or not len(outline_3d):
        return ()
    found = []
    for name, p in landmarks.items():
        d = np.linalg.norm(outline_3d - p, axis=1)
        i = int(np.argmin(d))
        found.append((float(d[i]), name, i, p))
    found.sort()
    anchors = []
    for dist, name, i, p in found[:ANCHORS_PER_PIECE]:
        start = flat.uv_mm[outline_ids[i]]
        direction = flat.to_flat(p[None])[0] - flat.to_flat(outline_3d[i][None])[0]
        anchors.append({"landmark": name, "distance_mm": dist, "outline_point_mm": [float(c) for c in start],
                        "direction_on_template": [float(c) for c in direction / max(np.linalg.norm(direction), 1e-12)]})
    return tuple(anchors)


def _slab(region: Patch, k: int, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed shell of layer k over ``region``: between depths k T and (k-1) T below the restored surface."""
    bottom, top = offset_surface(region, k * thickness), offset_surface(region, (k - 1) * thickness)
    return defect_solid(Patch(bottom, region.faces, np.full(len(bottom), thickness), top))


def adm_plan(
    analysis: str | os.PathLike | object,
    *,
    sheet_thickness_mm: float,
    sheet_size_mm: tuple[float, float] = (50.0, 60.0),
    max_layers: int | None = None,
    rounding: str = "half",
) -> AdmPlan:
    """Plan the stepped ADM composite that fills the measured defect.

    Parameters
    ----------
    analysis : a ``scan analyze`` output folder, or a :class:`hemiface.scan.ScanAnalysis`.
    sheet_thickness_mm : thickness T of one sheet (mm).
    sheet_size_mm : (width, height) of one sheet (mm); the PDF pages have this size.
    max_layers : at most this many layers; deeper parts are then left under-filled (and said so).
    rounding : "half" (layer k where deeper than (k - 1/2) T), "ceil" ((k - 1) T) or "floor" (k T).

    Returns
    -------
    AdmPlan
    """
    thickness, size, max_layers = _check_inputs(sheet_thickness_mm, sheet_size_mm, max_layers, rounding)
    saved = read_analysis(analysis)
    defect = _with_heights(saved.defect())
    if not len(defect.faces):
        raise PlanError(f"{saved.source}: the analysis found no defect on the {saved.affected_side} side; nothing to plan")
    warnings: list[str] = []
    layers, needed = layer_regions(defect, thickness_mm=thickness, rounding=rounding, max_layers=max_layers)
    if not layers:
        raise PlanError(f"{saved.source}: the defect is at most {defect.depth_mm.max():.2f} mm deep, too shallow for "
                        f"one {thickness:g} mm sheet under rounding {rounding!r}")
    if needed > len(layers):
        lost = ROUNDING[rounding](len(layers) + 1, thickness)
        warnings.append(f"the defect needs {needed} layers of {thickness:g} mm; max_layers {len(layers)} leaves the part "
                        f"deeper than {lost:.2f} mm under-filled (a sheet of {defect.depth_mm.max() / len(layers):.2f} mm "
                        f"would need {len(layers)})")
    superior = saved.superior_direction if saved.superior_direction is not None else np.array([0.0, 1.0, 0.0])
    medial = saved.medial_direction
    pieces_in: list[tuple[int, int, Patch, np.ndarray]] = []
    layer_info = []
    for layer in layers:
        labels, uncut = [], 0.0
        parts = sorted(layer.region.components(), key=lambda c: -c.area_mm2())
        for part in parts:
            mid = offset_surface(part, (layer.k - 0.5) * thickness)
            area = float(_area(mid, part.faces))
            if area < MIN_PIECE_AREA_MM2:
                uncut += area
                continue
            pieces_in.append((layer.k, len(labels) + 1, part, mid))
            labels.append(f"L{layer.k}.{len(labels) + 1}")
        extent = _extent(_boundary_points(layer.region, layer.mid_vertices))
        layer_info.append(AdmLayer(layer.k, layer.level_mm, layer.area_mm2, tuple(labels), uncut, extent))
    flats = []
    for k, j, part, mid in pieces_in:
        flat = flatten_piece(mid, part.faces, superior=superior, medial=medial)
        flats.append(flat)
        logger.info("L%d.%d: %.0f mm2 curved, %d triangles (solved on %d); flat area error %+.2f %%, length error "
                    "%.2f %% (p95 %.2f %%)", k, j, flat.curved_area_mm2, len(flat.faces), flat.solved_triangles,
                    flat.distortion["area_error_percent"], flat.distortion["length_error_mean_percent"],
                    flat.distortion["length_error_p95_percent"])
    sizes = [f.size_mm for f in flats]
    anchors = []
    for (k, j, part, mid), flat in zip(pieces_in, flats):
        ids = np.concatenate(flat.outline_ids)
        anchors.append(_anchors(mid[ids], flat, ids, saved.landmarks_mm))
    boxes = [_box_with_marks(f"L{k}.{j}", flat, a, sz, size)
             for (k, j, _, _), flat, a, sz in zip(pieces_in, flats, anchors, sizes)]
    placements, sheets = _layout.pack(boxes, size)
    pieces = []
    for (k, j, part, mid), flat, sz, placement, a in zip(pieces_in, flats, sizes, placements, anchors):
        if placement.sheet is None:
            warnings.append(f"piece L{k}.{j} measures {sz[0]:.1f} x {sz[1]:.1f} mm, larger than a {size[0]:g} x "
                            f"{size[1]:g} mm sheet less its {_layout.EDGE_MARGIN_MM:g} mm margins: join sheets or "
                            "give a larger --sheet-size-mm (it has a page of its own)")
        ids = np.concatenate(flat.outline_ids)
        pieces.append(AdmPiece(k, j, flat.curved_area_mm2, flat, sz, _extent(mid[ids]), placement, a))
    for w in warnings:
        logger.warning("%s", w)
    shells = [_slab(part, k, thickness) for k, _, part, _ in pieces_in]
    offsets = np.cumsum([0] + [len(v) for v, _ in shells[:-1]])
    comp_v = np.concatenate([v for v, _ in shells])
    comp_f = np.concatenate([f + o for (_, f), o in zip(shells, offsets)])
    solid_volume = _enclosed_volume_mm3(comp_v, comp_f)
    composite = float(sum(layer.area_mm2 for layer in layers) * thickness)
    bound = volume_bound(defect, thickness_mm=thickness, rounding=rounding)
    recomputed = defect.volume_mm3()
    if abs(recomputed - saved.defect_volume_mm3) > 0.01 * max(saved.defect_volume_mm3, 1.0):
        warnings.append(f"the depth map's defect holds {recomputed:.0f} mm3 but measurements.json says "
                        f"{saved.defect_volume_mm3:.0f} mm3: were the files of two analyses mixed?")
        logger.warning("%s", warnings[-1])
    params = {"sheet_thickness_mm": thickness, "sheet_size_mm": list(size), "max_layers": max_layers,
              "rounding": rounding, "gap_mm": _layout.GAP_MM, "edge_margin_mm": _layout.EDGE_MARGIN_MM,
              "min_piece_area_mm2": MIN_PIECE_AREA_MM2, "arap_iterations": ARAP_ITERATIONS,
              "coarse_edge_mm": COARSE_EDGE_MM, "min_coarse_triangles": MIN_COARSE_TRIANGLES,
              "slices_per_layer": SLICES_PER_LAYER, "affected_side": saved.affected_side,
              "floor_mm": saved.floor_mm, "superior_from": "face frame" if saved.superior_direction is not None
              else "scan's +y (no face frame recorded)"}
    logger.info("ADM plan: %d layers of %g mm, %d pieces on %d sheet(s); composite %.0f mm3 vs defect %.0f mm3 "
                "(bound %.0f)", len(layers), thickness, len(pieces), sheets, composite, saved.defect_volume_mm3,
                bound.bound_mm3)
    return AdmPlan(
        sheet_thickness_mm=thickness, sheet_size_mm=size, rounding=rounding, layers=tuple(layer_info),
        layers_needed=needed, pieces=tuple(pieces), sheets=sheets, defect_volume_mm3=saved.defect_volume_mm3,
        composite_volume_mm3=composite, composite_solid_volume_mm3=solid_volume, volume_bound=bound,
        warnings=tuple(warnings), provenance=provenance(saved.inputs, params), source=saved.source,
        composite_vertices_mm=comp_v, composite_faces=comp_f, analysis=saved,
        layer_regions=tuple(layer.region for layer in layers),
    )


def _area(vertices, faces) -> float:
    from ._layers import area_mm2

    return area_mm2(vertices, faces)


def _enclosed_volume_mm3(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume inside closed, outward-oriented shells: the sum of the signed tetrahedra (origin, triangle)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)


def _extent(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    try:
        points = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        pass
    return float(pdist(points).max())


def _sheet_drawings(plan: AdmPlan) -> list[Sheet]:
    margin = _layout.EDGE_MARGIN_MM
    pages: list[Sheet] = []
    for s in range(plan.sheets):
        sheet = Sheet(*plan.sheet_size_mm)
        sheet_frame(sheet, f"hemiface ADM sheet {s + 1}/{plan.sheets}, T {plan.sheet_thickness_mm:g} mm, 1:1",
                    margin)
        pages.append(sheet)
    for piece in plan.pieces:
        p = piece.placement
        if p.sheet is None:
            w, h = piece.size_mm[0] + 2 * margin, piece.size_mm[1] + 2 * margin + 3.0
            sheet = Sheet(max(w, plan.sheet_size_mm[0]), max(h, plan.sheet_size_mm[1]))
            sheet_frame(sheet, f"{piece.label} LARGER THAN A SHEET ({piece.size_mm[0]:.0f} x {piece.size_mm[1]:.0f} mm)",
                        margin)
            sheet.line([[margin, margin], [margin + plan.sheet_size_mm[0], margin],
                        [margin + plan.sheet_size_mm[0], margin + plan.sheet_size_mm[1]],
                        [margin, margin + plan.sheet_size_mm[1]]], closed=True, width_mm=0.15, grey=0.75)
            p = _layout.Placement(p.piece, None, margin, margin, False, *piece.size_mm)
            pages.append(sheet)
        else:
            sheet = pages[p.sheet]
        _draw_piece(sheet, piece, p)
    return pages


def _anchor_text(anchor: dict) -> str:
    name = anchor["landmark"].replace("_left", " L").replace("_right", " R")
    return f"{name} {anchor['distance_mm']:.0f} mm"


def _box_with_marks(label: str, flat: FlatPiece, anchors, size_mm, sheet_mm) -> tuple[float, float]:
    """The box a piece is packed in: its own, or, when its label, compass and references do not all fit
    inside its outline, a square with room beside the outline for them (a square, so never turned)."""
    refs = [f"{i + 1} {_anchor_text(a)}" for i, a in enumerate(anchors)]
    if marks_fit_inside(list(flat.outlines), label=label, superior=flat.superior_2d, medial=flat.medial_2d, refs=refs):
        return size_mm
    w, h = marks_room_mm(label=label, refs=refs)
    side = max(max(size_mm) + h, w)
    return (side, side) if _layout.fits((side, side), sheet_mm) else size_mm


def _draw_piece(sheet: Sheet, piece: AdmPiece, p: _layout.Placement) -> None:
    """The piece as placed: its outlines, and its marks inside its own part of the sheet (see :func:`draw_piece`)."""
    flat = piece.flat
    anchors = []
    for anchor in piece.anchors:
        start = _layout.place(np.array([anchor["outline_point_mm"]]), p, piece.size_mm)[0]
        direction = _layout.turn_direction(np.array(anchor["direction_on_template"]), p)
        anchors.append((start, direction, _anchor_text(anchor)))
    draw_piece(sheet, [_layout.place(o, p, piece.size_mm) for o in flat.outlines],
               _layout.own_area(p, (sheet.width_mm, sheet.height_mm)), label=piece.label,
               superior=_layout.turn_direction(flat.superior_2d, p), medial=_layout.turn_direction(flat.medial_2d, p),
               anchors=anchors)


def _layer_figure(path, plan: AdmPlan) -> None:
    """The layers' outlines over the depth map, seen from the front (patient's left on the right)."""
    import matplotlib
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure  # not pyplot: no global state, and a second less to import

    saved = plan.analysis
    sup = saved.superior_direction if saved.superior_direction is not None else np.array([0.0, 1.0, 0.0])
    right = saved.plane_normal  # toward the patient's left: the image's right in a frontal view

    def project(p):
        q = np.asarray(p) - saved.plane_point_mm
        return np.column_stack([q @ right, q @ sup])

    depth = saved.depth
    xy = project(depth.vertices)
    fig = Figure(figsize=(7.5, 7.0), dpi=120)
    ax = fig.subplots()
    limit = max(float(np.nanmax(np.abs(depth.depth_mm))), 1.0)
    # Gouraud shading draws all triangles in one call (flat shading makes one path per triangle: 13 s at 800k),
    # on the depth map clustered for display (785k triangles: 1.0 s of drawing; 110k: 0.3 s, no visible change).
    shown = display_mesh(depth.vertices, depth.faces, max_vertices=LAYER_MAP_VERTICES)
    shown_xy = project(shown.vertices)
    tpc = ax.tripcolor(shown_xy[:, 0], shown_xy[:, 1], shown.faces, shown.mean(depth.depth_mm), cmap="RdBu_r",
                       vmin=-limit, vmax=limit, shading="gouraud", rasterized=True)
    fig.colorbar(tpc, ax=ax, shrink=0.8, label="depth below the mirrored side (mm)")
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, max(len(plan.layer_regions), 2)))
    import igl

    for (layer, region), colour in zip(zip(plan.layers, plan.layer_regions), colours):
        segments = []
        for loop in igl.boundary_loop_all(np.ascontiguousarray(region.faces)):
            pts = project(region.vertices[np.append(loop, loop[0])])
            segments.append(pts)
        ax.add_collection(LineCollection(segments, colors=[colour], linewidths=1.0, label=f"layer {layer.k}"))
    ax.set_aspect("equal")
    ax.set_xlabel("mm (patient's left to the right)")
    ax.set_ylabel("mm (superior up)")
    if len(plan.layers) <= 12:
        ax.legend(loc="lower left", fontsize=7, ncol=2)
    ax.set_title(f"{plan.source}: {len(plan.layers)} layers of {plan.sheet_thickness_mm:g} mm ({plan.rounding}), "
                 f"{len(plan.pieces)} pieces on {plan.sheets} sheet(s)\ncomposite {plan.composite_volume_mm3:,.0f} mm\u00b3 "
                 f"vs defect {plan.defect_volume_mm3:,.0f} mm\u00b3 (bound \u00b1{plan.volume_bound.bound_mm3:,.0f})",
                 fontsize=9)
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.07, top=0.92)  # fixed: tight_layout costs 0.6 s of text layout
    fig.savefig(path)


def write_adm_outputs(plan: AdmPlan, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write :data:`ADM_OUTPUT_NAMES` into ``out_dir`` (all or none)."""
    import trimesh

    out_dir = Path(out_dir)
    title = f"hemiface ADM templates: {plan.source}"
    with staged_outputs(out_dir, ADM_OUTPUT_NAMES, overwrite=overwrite) as stage:
        pages = _sheet_drawings(plan)
        (stage / "adm_templates.pdf").write_bytes(pdf_bytes(pages, title=title))
        (stage / "adm_templates.svg").write_text(svg_text(pages, title=title), encoding="utf-8")
        trimesh.Trimesh(plan.composite_vertices_mm, plan.composite_faces, process=False).export(
            stage / "adm_composite.stl", file_type="stl")
        _layer_figure(stage / "adm_layers.png", plan)
        (stage / "adm_plan.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n", encoding="utf-8")
    return out_dir
