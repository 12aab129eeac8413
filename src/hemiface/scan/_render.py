"""Frontal depth-map figure: an orthographic ray-cast render coloured by depth.

Ray casting (open3d's BVH) gives a true z-buffered view without any OpenGL
context, so it works on headless machines.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._defect import DEPTH_EPS_MM
from ._distance import SurfaceQuery
from ._mesh import face_normals


def render_depth(vertices, faces, depth_mm, *, pixel_mm: float = 0.25):
    """Render the patch (symmetry frame, looking along -z) into a depth image.

    Returns (depth image with NaN where nothing was hit, shade in [0, 1], extent).
    The image's column axis runs from the patient's right (x < 0) to left: as a
    viewer facing the patient sees it. ``depth_mm`` of shape (n, k) (several
    per-vertex fields on the same rays) gives a (rows, columns, k) image.
    """
    lo = vertices[:, :2].min(axis=0) - 2.0
    hi = vertices[:, :2].max(axis=0) + 2.0
    nx, ny = (np.ceil((hi - lo) / pixel_mm).astype(int) + 1)
    # A viewer facing the patient sees the patient's left (+x) on the image's right.
    xs = lo[0] + pixel_mm * np.arange(nx)
    ys = hi[1] - pixel_mm * np.arange(ny)
    gx, gy = np.meshgrid(xs, ys)
    z0 = vertices[:, 2].max() + 10.0
    origins = np.stack([gx, gy, np.full_like(gx, z0)], axis=-1).reshape(-1, 3)
    dirs = np.tile(np.array([0.0, 0.0, -1.0]), (len(origins), 1))
    hits = SurfaceQuery(vertices, faces).cast(origins, dirs)
    hit = np.isfinite(hits["t_hit"])
    ids = np.where(hit, hits["face_ids"], 0)
    u, v = hits["uv"][:, 0], hits["uv"][:, 1]
    f = faces[ids]
    values = np.asarray(depth_mm, dtype=float)
    w = np.column_stack([1 - u - v, u, v]).reshape((-1, 3) + (1,) * (values.ndim - 1))
    d = (w * values[f]).sum(axis=1)
    n = face_normals(vertices, faces)[ids]
    light = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])
    shade = np.clip(np.abs(n @ light), 0, 1)
    depth_img = np.where(hit.reshape((-1,) + (1,) * (values.ndim - 1)), d, np.nan).reshape((ny, nx) + values.shape[1:])
    shade_img = np.where(hit, shade, 1.0).reshape(ny, nx)
    extent = (lo[0], lo[0] + pixel_mm * (nx - 1), hi[1] - pixel_mm * (ny - 1), hi[1])
    return depth_img, shade_img, extent


def defect_mask_image(depth_img, x_coords, affected_side: str, floor_mm: float) -> np.ndarray:
    """Pixels of the affected side in connected depressed areas deeper than the floor somewhere."""
    side = x_coords > 0 if affected_side == "left" else x_coords < 0
    positive = np.nan_to_num(depth_img, nan=-1.0) > DEPTH_EPS_MM  # the defect's rim, as measured
    positive &= side[None, :]
    labels, n = ndimage.label(positive)
    if n == 0:
        return positive
    deep = ndimage.maximum(np.nan_to_num(depth_img, nan=-1.0), labels, index=np.arange(1, n + 1))
    keep = np.concatenate([[False], np.asarray(deep) > floor_mm])
    return keep[labels]


def deep_mask_image(depth_img, defect_mask, threshold_mm: float, unsmoothed_img=None) -> np.ndarray:
    """Pixels of the defect deeper than ``threshold_mm``: on the unsmoothed depth when given, as the area
    deeper than the threshold is counted (``Patch.deeper_than``), so the figure's line encloses that area."""
    img = depth_img if unsmoothed_img is None else unsmoothed_img
    return defect_mask & (np.nan_to_num(img, nan=-1.0) > threshold_mm)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def symmetric_limit(values: np.ndarray, at_least: float) -> float:
    """Colour-scale half-range: the 99.5th percentile of |values|, at least ``at_least``."""
    finite = np.asarray(values)[np.isfinite(values)]
    return max(float(np.percentile(np.abs(finite), 99.5)) if len(finite) else 0.0, at_least)


def _frontal_axes(ax) -> None:
    """The midline, equal axes, the mm label and the patient's R and L of a frontal map."""
    ax.axvline(0.0, color="0.3", lw=0.6, ls=":")
    ax.set_aspect("equal")
    ax.set_xlabel("mm (patient's right  \u2190  midline  \u2192  patient's left)")
    ax.text(0.02, 0.98, "R", transform=ax.transAxes, va="top", fontsize=14, weight="bold")
    ax.text(0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=14, weight="bold")


def _draw_map(ax, vertices, faces, values, norm, cmap, frontal=None):
    """Frontal shaded render of per-vertex values on ``ax``; returns (image, x coords, y coords).

    ``frontal``: the :func:`render_depth` of these values, when already made.
    """
    img, shade, extent = frontal or render_depth(vertices, faces, values)
    rgba = cmap(norm(np.nan_to_num(img)))
    rgba[..., :3] *= (0.45 + 0.55 * shade)[..., None]
    rgba[~np.isfinite(img)] = (1, 1, 1, 1)
    ax.imshow(rgba, extent=extent, origin="upper", interpolation="bilinear")
    _frontal_axes(ax)
    ny, nx = img.shape
    return img, np.linspace(extent[0], extent[1], nx), np.linspace(extent[3], extent[2], ny)


def save_depth_figure(path, vertices, faces, depth_mm, *, affected_side, threshold_mm, floor_mm, title, frontal=None,
                      unsmoothed_img=None):
    """Write the frontal depth-map PNG: diverging colours, colour bar in mm, defect outline.

    ``frontal``: the :func:`render_depth` of ``depth_mm``, when already made (it is shared with ``zones.png``);
    ``unsmoothed_img``: the unsmoothed depth rendered on the same rays, for the line at ``threshold_mm``.
    """
    plt = _pyplot()
    from matplotlib import colors

    limit = symmetric_limit(depth_mm, threshold_mm + 1.0)
    norm, cmap = colors.TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit), plt.get_cmap("RdBu_r")
    fig, ax = plt.subplots(figsize=(6.4, 7.2), dpi=120)
    img, xs, ys = _draw_map(ax, vertices, faces, depth_mm, norm, cmap, frontal)
    mask = defect_mask_image(img, xs, affected_side, floor_mm)
    if mask.any():
        ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors="black", linewidths=1.2)
        deep = deep_mask_image(img, mask, threshold_mm, unsmoothed_img)
        if deep.any():
            ax.contour(xs, ys, deep.astype(float), levels=[0.5], colors="black", linewidths=0.8, linestyles="--")
    ax.set_ylabel("mm")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8)
    bar.set_label("depth (mm): > 0 affected side below mirrored unaffected side")
    fig.text(
        0.01, 0.01,
        f"solid outline: defect (deeper than {floor_mm:g} mm somewhere); dashed: deeper than {threshold_mm:g} mm"
        + (" (unsmoothed depth, as counted)" if unsmoothed_img is not None else ""),
        fontsize=7,
    )
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def save_gain_figure(path, vertices, faces, gain_mm, *, title):
    """Frontal gain map: red where tissue was gained, blue where lost, colour bar in mm."""
    plt = _pyplot()
    from matplotlib import colors

    limit = symmetric_limit(gain_mm, 1.0)
    norm, cmap = colors.TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit), plt.get_cmap("RdBu_r")
    fig, ax = plt.subplots(figsize=(6.4, 7.2), dpi=120)
    _draw_map(ax, vertices, faces, gain_mm, norm, cmap)
    ax.set_ylabel("mm")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.8)
    bar.set_label("thickness change (mm): > 0 tissue gained, < 0 lost")
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def save_before_after_figure(path, before, after, *, titles, threshold_mm):
    """Two depth maps side by side on one colour scale. ``before``/``after`` = (vertices, faces, depth)."""
    plt = _pyplot()
    from matplotlib import colors

    limit = symmetric_limit(np.concatenate([before[2], after[2]]), threshold_mm + 1.0)
    norm, cmap = colors.TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit), plt.get_cmap("RdBu_r")
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 6.4), dpi=120)
    for ax, (v, f, d), title in zip(axes, (before, after), titles):
        _draw_map(ax, v, f, d, norm, cmap)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("mm")
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8)
    bar.set_label("depth (mm): > 0 affected side below mirrored unaffected side")
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def zone_image(vertices, faces, depth_mm, layout, frontal=None):
    """Frontal render of the zones: (zone index image, -1 where nothing was hit; depth image; shade; extent).

    The zone of a pixel is that of the (x, y) it shows: zone boundaries are planes
    parallel to the view (see :mod:`._zones`). The measurement places a triangle of a
    deep defect by its mirrored counterpart instead, which can lie a few mm from it on
    the lateral face; the map shows the zones as drawn on the skin.
    """
    img, shade, extent = frontal or render_depth(vertices, faces, depth_mm)
    ny, nx = img.shape
    xs, ys = np.linspace(extent[0], extent[1], nx), np.linspace(extent[3], extent[2], ny)
    gx, gy = np.meshgrid(xs, ys)
    labels = layout.label(np.column_stack([gx.ravel(), gy.ravel()])).reshape(ny, nx)
    return np.where(np.isfinite(img), labels, -1), img, shade, extent


def draw_zones(ax, vertices, faces, depth_mm, layout, n_zones: int, frontal=None):
    """Zones in colour on a shaded frontal render, boundaries dark; returns (labels, depth image, x, y coords)."""
    import matplotlib

    labels, img, shade, extent = zone_image(vertices, faces, depth_mm, layout, frontal)
    palette = matplotlib.colormaps["tab10"](np.arange(n_zones) % 10)[:, :3]
    rgb = np.where(labels[..., None] >= 0, palette[np.maximum(labels, 0)], 1.0)
    rgb = 0.35 + 0.65 * rgb  # light fills, so the shading and the text read
    rgb *= np.where(labels >= 0, 0.55 + 0.45 * shade, 1.0)[..., None]
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    rgb[edge & (labels >= 0)] = 0.15
    ax.imshow(np.clip(rgb, 0, 1), extent=extent, origin="upper", interpolation="nearest")
    _frontal_axes(ax)
    ny, nx = labels.shape
    return labels, img, np.linspace(extent[0], extent[1], nx), np.linspace(extent[3], extent[2], ny)


def _zone_anchor(labels, xs, ys, k, side_sign, *, stride: int = 4):
    """A point well inside zone k on one side (the pixel farthest from the zone's edge, on every
    ``stride``-th pixel), or None."""
    mask = ((labels == k) & (np.sign(xs)[None, :] == side_sign))[::stride, ::stride]
    if not mask.any():
        return None
    inside = ndimage.distance_transform_edt(mask)
    i, j = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return xs[::stride][j], ys[::stride][i]


def save_zones_figure(path, vertices, faces, depth_mm, layout, measures, *, affected_side, threshold_mm, floor_mm,
                      title, frontal=None, unsmoothed_img=None):
    """Write ``zones.png``: the aesthetic zones on a frontal render, the defect's outline, each affected zone's values.

    ``frontal``: the :func:`render_depth` of ``depth_mm``, when already made; ``unsmoothed_img`` as for
    :func:`save_depth_figure`.
    """
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 7.2), dpi=120)
    labels, img, xs, ys = draw_zones(ax, vertices, faces, depth_mm, layout, len(measures), frontal)
    mask = defect_mask_image(img, xs, affected_side, floor_mm)
    if mask.any():
        ax.contour(xs, ys, mask.astype(float), levels=[0.5], colors="black", linewidths=1.0)
        deep = deep_mask_image(img, mask, threshold_mm, unsmoothed_img)
        if deep.any():
            ax.contour(xs, ys, deep.astype(float), levels=[0.5], colors="black", linewidths=0.7, linestyles="--")
    sign = 1.0 if affected_side == "left" else -1.0
    for k, m in enumerate(measures):
        for s in (sign, -sign):
            at = _zone_anchor(labels, xs, ys, k, s)
            if at is None:
                continue
            name = m.name.replace("_", " ")
            if s == sign:
                share = 100 * m.discrepancy_share if abs(m.discrepancy_share) >= 0.005 else 0.0  # no "-0 %"
                text = (f"{name}\n{m.defect_volume_mm3:,.0f} mm\u00b3\nmax {m.max_depth_mm:.1f} mm"
                        + (f"\n{share:.0f} %" if np.isfinite(m.discrepancy_share) else ""))
                ax.text(*at, text, ha="center", va="center", fontsize=6, linespacing=1.1,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.75))
            else:
                ax.text(*at, name, ha="center", va="center", fontsize=5.5, color="0.2")
    ax.set_ylabel("mm")
    ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, f"affected side ({affected_side}), per zone: defect volume, maximum depth, share of the "
                         f"hemiface discrepancy\nsolid outline: the defect (deeper than {floor_mm:g} mm somewhere); dashed: deeper than "
                         f"{threshold_mm:g} mm" + (" (unsmoothed depth, as counted)" if unsmoothed_img is not None else ""),
             fontsize=7)
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
