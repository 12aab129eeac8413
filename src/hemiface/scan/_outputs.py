"""Writing a :class:`ScanAnalysis` to disk: all files appear together, or none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._outputs import staged_outputs
from ._render import (
    render_depth, save_before_after_figure, save_depth_figure, save_gain_figure, save_zones_figure, symmetric_limit,
)

OUTPUT_NAMES = ("depth_map.ply", "depth_map.png", "zones.png", "defect.stl", "measurements.json")
COMPARE_OUTPUT_NAMES = ("gain_map.ply", "gain_map.png", "before_after.png", "comparison.json")


#: depth_map.ply's per-vertex offset to the mirrored unaffected surface (the defect solid's top), scan frame, mm.
MIRROR_OFFSET_NAMES = ("mirror_dx_mm", "mirror_dy_mm", "mirror_dz_mm")
#: depth_map.ply's per-vertex unsmoothed depth (mm): what the maximum and the area deeper than the threshold are read on.
UNSMOOTHED_DEPTH_NAME = "depth_unsmoothed_mm"


def write_ply_with_scalar(path, vertices, faces, scalar, *, scalar_name: str, rgb=None, extra=None) -> None:
    """Binary little-endian PLY with one float scalar (more in ``extra``: name -> values; optional colours) per vertex."""
    n, m = len(vertices), len(faces)
    extra = dict(extra or {})
    header = ["ply", "format binary_little_endian 1.0", "comment written by hemiface", f"element vertex {n}",
              "property float x", "property float y", "property float z", f"property float {scalar_name}"]
    header += [f"property float {name}" for name in extra]
    fields = [("xyz", "<f4", 3), (scalar_name, "<f4")] + [(name, "<f4") for name in extra]
    if rgb is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        fields.append(("rgb", "u1", 3))
    header += [f"element face {m}", "property list uchar int vertex_indices", "end_header"]
    vdata = np.empty(n, dtype=fields)
    vdata["xyz"], vdata[scalar_name] = vertices, scalar
    for name, values in extra.items():
        vdata[name] = values
    if rgb is not None:
        vdata["rgb"] = rgb
    fdata = np.empty(m, dtype=[("count", "u1"), ("idx", "<i4", 3)])
    fdata["count"], fdata["idx"] = 3, faces
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(vdata.tobytes())
        fh.write(fdata.tobytes())


def _colours(values: np.ndarray, at_least: float) -> np.ndarray:
    """8-bit RGB of a diverging colour map, symmetric about 0 (as in the PNG figures)."""
    import matplotlib
    from matplotlib import colors

    limit = symmetric_limit(values, at_least)
    rgba = matplotlib.colormaps["RdBu_r"](colors.TwoSlopeNorm(vmin=-limit, vcenter=0, vmax=limit)(values))
    return (rgba[:, :3] * 255).round().astype(np.uint8)


def write_outputs(result, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the analysis outputs into ``out_dir`` (see the module docstring of the CLI for the list)."""
    import trimesh

    out_dir = Path(out_dir)
    has_defect = len(result.defect_solid_faces) > 0
    names = [n for n in OUTPUT_NAMES if has_defect or n != "defect.stl"]
    offsets = {} if result.depth_top_mm is None else \
        dict(zip(MIRROR_OFFSET_NAMES, (result.depth_top_mm - result.depth_vertices_mm).T))
    if result.depth_unsmoothed_mm is not None:
        offsets[UNSMOOTHED_DEPTH_NAME] = result.depth_unsmoothed_mm
    with staged_outputs(out_dir, names, overwrite=overwrite) as stage:
        write_ply_with_scalar(
            stage / "depth_map.ply", result.depth_vertices_mm, result.depth_faces, result.depth_values_mm,
            scalar_name="depth_mm", rgb=_colours(result.depth_values_mm, result.threshold_mm + 1.0), extra=offsets,
        )
        side = result.affected_side
        unsmoothed = result.depth_unsmoothed_mm
        if unsmoothed is None:
            frontal, unsmoothed_img = render_depth(result.render_vertices, result.depth_faces, result.depth_values_mm), None
        else:  # both fields on the same rays; the smoothed one is both figures'
            img, shade, extent = render_depth(result.render_vertices, result.depth_faces,
                                              np.column_stack([result.depth_values_mm, unsmoothed]))
            frontal, unsmoothed_img = (img[..., 0], shade, extent), img[..., 1]
        save_depth_figure(
            stage / "depth_map.png", result.render_vertices, result.depth_faces, result.depth_values_mm,
            frontal=frontal, unsmoothed_img=unsmoothed_img, affected_side=side, threshold_mm=result.threshold_mm,
            floor_mm=result.floor_mm,
            title=(f"{result.provenance['inputs']['scan']['file']}: affected side {side}\n"
                   f"defect {result.defect_volume_mm3:,.0f} mm\u00b3, max depth {result.max_depth_mm:.1f} mm, "
                   f"discrepancy {result.volumetric_discrepancy_percent:.1f} %"),
        )
        save_zones_figure(
            stage / "zones.png", result.render_vertices, result.depth_faces, result.depth_values_mm, result.zone_layout,
            result.zones, frontal=frontal, unsmoothed_img=unsmoothed_img, affected_side=side, threshold_mm=result.threshold_mm, floor_mm=result.floor_mm,
            title=(f"{result.provenance['inputs']['scan']['file']}: aesthetic zones, affected side {side}\n"
                   f"defect {result.defect_volume_mm3:,.0f} mm\u00b3, discrepancy "
                   f"{result.volumetric_discrepancy_mm3:,.0f} mm\u00b3"),
        )
        measurements = result.to_dict()
        if has_defect:
            solid = trimesh.Trimesh(result.defect_solid_vertices_mm, result.defect_solid_faces, process=False)
            solid.export(stage / "defect.stl", file_type="stl")
            measurements["defect_solid"] = {
                "file": "defect.stl", "units": "mm", "volume_mm3": float(solid.volume),
                "watertight": bool(solid.is_watertight),
            }
        else:
            measurements["defect_solid"] = None
        (stage / "measurements.json").write_text(json.dumps(measurements, indent=2) + "\n", encoding="utf-8")
    return out_dir


def write_comparison(result, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write comparison.json, gain_map.ply, gain_map.png and before_after.png into ``out_dir``."""
    out_dir = Path(out_dir)
    with staged_outputs(out_dir, COMPARE_OUTPUT_NAMES, overwrite=overwrite) as stage:
        write_ply_with_scalar(
            stage / "gain_map.ply", result.gain_vertices_mm, result.gain_faces, result.gain_values_mm,
            scalar_name="gain_mm", rgb=_colours(result.gain_values_mm, 1.0),
        )
        names = result.provenance["inputs"]
        save_gain_figure(
            stage / "gain_map.png", result.render_vertices, result.gain_faces, result.gain_values_mm,
            title=(f"{names['pre']['file']} \u2192 {names['post']['file']}: affected side {result.affected_side}\n"
                   f"gained {result.gain.volume_mm3:,.0f} mm\u00b3 (max {result.gain.max_mm:.1f} mm), "
                   f"defect corrected {result.defect_corrected_percent:.0f} %"),
        )
        save_before_after_figure(
            stage / "before_after.png", result.pre_depth, result.post_depth, threshold_mm=4.0,
            titles=(f"before: {names['pre']['file']}\ndiscrepancy {result.discrepancy_pre_mm3:,.0f} mm\u00b3",
                    f"after: {names['post']['file']}\ndiscrepancy {result.discrepancy_post_mm3:,.0f} mm\u00b3"),
        )
        (stage / "comparison.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return out_dir
