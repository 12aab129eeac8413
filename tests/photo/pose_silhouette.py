"""A yaw cue that was measured and not adopted (issue 13, seventh pass): the head's silhouette at eye level.

Kept in the validation harness so that its figures can be rerun
(``python benchmarks/validate_photo_pose.py silhouette``); nothing in hemiface uses it.

Turning the head moves its silhouette at eye level (temples, ears and hair,
about 1.7 interpupillary distances behind the pupils) sideways against the
pupils, far more than anything on the face moves: the midpoint of the
silhouette's left and right edges lies ``D sin(yaw)`` from the pupils' midpoint.
And it is out of reach of a soft-tissue atrophy of the cheek, jaw or chin,
which the face mesh's pose reads as a turn (a 10% compression of one cheek
moves the mesh's yaw by 0.2-1.0 degrees on the validation renders, the
silhouette's by 0.1-0.5).

How: the background's colour is taken from a strip along the photo's left and
right edges at the lines' height (each side its own: a backdrop is often lit unevenly), each
pixel's distance from it in robust spreads of the strip, and the head is the
connected area farther than BACKGROUND_SPREADS from it that holds the point
between the pupils. On SILHOUETTE_ROWS lines parallel to the interpupillary
line, from 0.4 IPD above the pupils down to them, the head's outermost edge on
each side is found (to a fraction of a pixel, where the distance crosses the
level); the offset is the median over the lines of the edges' midpoint from the
pupils' midpoint, in IPD (> 0 toward the patient's left), and
``yaw = -asin(offset / SILHOUETTE_DEPTH_IPD)`` (yaw > 0: nose toward the
patient's left, as ``fit_pose``).

What it reads is the pose of the whole head, hair included: a head's own
asymmetry (a parting, an ear that stands out) gives it an offset at a frontal
pose (up to 8% of the IPD, about 3 degrees, on the London set), which cancels
from the difference between two visits as long as the hair is the same. A
haircut does not cancel, nor does a shadow on the backdrop next to the head.
``SILHOUETTE_DEPTH_IPD`` is calibrated on the james render (2.9% of the IPD
per degree) and held out on Lee Perry-Smith's (within 0.5 degrees over
yaw -10 ... +10, tests/photo/test_photo_pose.py).

None, with the reason logged, when the background is not plain (more than
MAX_BUSY_SHARE of the edge strips stands out from their own colour), the
head reaches the photo's left or right edge at eye level, or too few lines
cross the head on both sides.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hemiface import logger

#: The silhouette at eye level lies this far behind the pupils (IPD): the james render's 2.9% of the IPD per degree.
SILHOUETTE_DEPTH_IPD = 1.66
#: A pixel is the head's when its colour is farther than this many robust spreads from the background's, and
#: farther than MIN_CONTRAST grey levels.
BACKGROUND_SPREADS = 8.0
MIN_CONTRAST = 30.0
#: The background strips: this share of the photo's width along each side edge (at least 4 px).
STRIP_SHARE = 0.02
#: A background is not plain when more than this share of a strip stands out from the strip's own colour.
MAX_BUSY_SHARE = 0.05
#: Lines parallel to the interpupillary line, from 0.4 IPD above the pupils down to them.
SILHOUETTE_ROWS = np.linspace(-0.4, 0.0, 9)
MIN_ROWS = 5
#: Sampling step along a line (px).
STEP_PX = 0.25


def silhouette_pose(rgb: np.ndarray, pupil_right, pupil_left, *, name: str = "photo") -> dict | None:
    """``{"yaw_deg", "offset_ipd", "rows"}`` from the head's silhouette (module docstring), or None.

    ``rgb``: (h, w, 3) uint8 photo; pupils in photo px (continuous: pixel (i, j)'s centre at (i + 0.5, j + 0.5)).
    """
    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    right, left = np.asarray(pupil_right, float), np.asarray(pupil_left, float)
    ipd = float(np.hypot(*(left - right)))
    if ipd < 1.0:
        return None
    eu = (left - right) / ipd
    ev = np.array([-eu[1], eu[0]])
    mid = 0.5 * (right + left)
    # The band of rows the lines run through (with a margin for the opening), full width.
    ends = [mid + v * ipd * ev for v in (SILHOUETTE_ROWS[0], SILHOUETTE_ROWS[-1])]
    reach = 0.5 * w * abs(eu[1]) + 4
    top = int(max(0, np.floor(min(e[1] for e in ends) - reach - 4)))
    bottom = int(min(h, np.ceil(max(e[1] for e in ends) + reach + 4)))
    if bottom - top < 3:
        return None
    band = rgb[top:bottom].astype(np.float64)
    strip = max(4, int(round(STRIP_SHARE * w)))
    # Each half of the photo against its own edge's background (the middle column of an odd width: both, averaged).
    x = np.arange(w) + 0.5
    side_weight = {"left": np.where(x < w / 2, 1.0, np.where(x > w / 2, 0.0, 0.5))}
    side_weight["right"] = 1.0 - side_weight["left"]
    distance = np.zeros(band.shape[:2])
    for side, edge in (("left", slice(0, strip)), ("right", slice(w - strip, w))):
        ref = band[:, edge].reshape(-1, 3)
        colour = np.median(ref, axis=0)
        spread = np.maximum(1.4826 * np.median(np.abs(ref - colour), axis=0), 1.0)
        if np.mean(np.max(np.abs(ref - colour) / spread, axis=1) > BACKGROUND_SPREADS) > MAX_BUSY_SHARE:
            logger.info("%s: head pose from the silhouette not measured: the background is not plain", name)
            return None
        # In units of the level: BACKGROUND_SPREADS spreads, and at least MIN_CONTRAST grey levels (a backdrop's
        # vignetting brightens it by 10-15 levels toward the head, 8 of its JPEG spreads).
        level = np.maximum(spread, MIN_CONTRAST / BACKGROUND_SPREADS)
        distance += side_weight[side] * np.max(np.abs(band - colour) / level, axis=2)
    head = ndimage.binary_opening(distance > BACKGROUND_SPREADS, iterations=2)
    labels, _ = ndimage.label(head, structure=np.ones((3, 3)))
    # The head: the area most of the line between the pupils lies on (a bright nasal bridge can be near a light
    # backdrop's colour, so not the single point between them).
    t = np.linspace(0.0, 1.0, 64)
    on_line = right + t[:, None] * (left - right)
    cells = labels[np.clip(np.floor(on_line[:, 1]).astype(int) - top, 0, bottom - top - 1),
                   np.clip(np.floor(on_line[:, 0]).astype(int), 0, w - 1)]
    cells = cells[cells > 0]
    seed = int(np.bincount(cells).argmax()) if len(cells) else 0
    if seed == 0:
        logger.info("%s: head pose from the silhouette not measured: no head between the pupils", name)
        return None
    head = labels == seed
    if head[:, :2].any() or head[:, -2:].any():
        logger.info("%s: head pose from the silhouette not measured: the head reaches the photo's edge", name)
        return None
    offsets = []
    for v in SILHOUETTE_ROWS:
        origin = mid + v * ipd * ev
        sides = [_edge_u(distance, head, origin, eu * sign, top) for sign in (-1.0, 1.0)]
        if None not in sides:
            offsets.append(0.5 * (sides[1] - sides[0]) / ipd)
    if len(offsets) < MIN_ROWS:
        logger.info("%s: head pose from the silhouette not measured: %d lines cross the head on both sides",
                    name, len(offsets))
        return None
    offset = float(np.median(offsets))
    yaw = -float(np.degrees(np.arcsin(np.clip(offset / SILHOUETTE_DEPTH_IPD, -1.0, 1.0))))
    return {"yaw_deg": yaw, "offset_ipd": offset, "rows": len(offsets)}


def _edge_u(distance: np.ndarray, head: np.ndarray, origin: np.ndarray, direction: np.ndarray, top: int):
    """How far from ``origin`` along ``direction`` (px) the head's outermost edge lies on this line, or None."""
    h, w = head.shape
    t = np.arange(0.0, 2.0 * (h + w), STEP_PX)
    xy = origin + t[:, None] * direction
    col, row = xy[:, 0] - 0.5, xy[:, 1] - 0.5 - top  # continuous px -> array index
    inside = (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)
    t, col, row = t[inside], col[inside], row[inside]
    on_head = ndimage.map_coordinates(head.astype(np.float64), [row, col], order=0) > 0.5
    if not on_head.any():
        return None
    last = int(np.flatnonzero(on_head)[-1])
    if last + 1 >= len(t):
        return None
    d = ndimage.map_coordinates(distance, [row[last:last + 2], col[last:last + 2]], order=1)
    if d[0] <= BACKGROUND_SPREADS or d[1] >= d[0]:
        return float(t[last])
    return float(t[last] + STEP_PX * (d[0] - BACKGROUND_SPREADS) / (d[0] - d[1]))


#: Renders for the cue: wider than the harness' (860 px for 720) so that the hair stays clear of the edges at
#: yaw +-10 (at 720 px james' touches the frame at -10 degrees and the cue rightly refuses it).
WIDE_PX = (860, 900)
SILHOUETTE_POSES = ((0, 0), (-10, 0), (-5, 0), (5, 0), (10, 0), (0, -10), (0, 10))


def silhouette_table(name: str, cheek: float) -> list[dict]:
    """Per render pose: the silhouette's and the face mesh's yaw, without and with the cheek compressed."""
    from pose_renders import cheek_compression, render

    from hemiface.photo import analyze_photo, photo_from_array

    rows = []
    for yaw, pitch in SILHOUETTE_POSES:
        row = {"render_yaw_deg": yaw, "render_pitch_deg": pitch}
        for tag, warp in (("", None), ("_cheek", cheek_compression(name, cheek))):
            img = render(name, yaw, pitch, size_px=WIDE_PX, warp=warp)
            a = analyze_photo(photo_from_array(img, name=f"{name}{tag}_y{yaw}_p{pitch}"), affected="left")
            s = silhouette_pose(img, a.landmarks["pupil_right"], a.landmarks["pupil_left"])
            row[f"silhouette_yaw{tag}_deg"] = np.nan if s is None else s["yaw_deg"]
            row[f"mesh_yaw{tag}_deg"] = a.pose["yaw_deg"]
        rows.append(row)
    return rows
