"""Atrophy patterns for phantoms: where Parry-Romberg disease removes tissue, as depth fields.

Each pattern is a sum of smooth zones placed from the face's own landmarks
(pronasale, and the eye corners when given, which set the scale), on one side of
the midline, in the face's canonical frame (face toward +z, head up +y, the
patient's left at +x). A zone is a depth field (mm) over the surface that is 1 at
its centre and falls to 0 with zero slope at its edge; the carve moves each vertex
inward along its normal by the summed depth. The truth is never computed from a
formula of these fields: :mod:`hemiface.datasets` measures the closed solid
between the two surfaces.

Positions are (lateral distance from the midline, height above pronasale) in mm
for a face whose inner eye corners are :data:`REFERENCE_INTERCANTHAL_MM` apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Inner eye-corner distance of the face the zone positions below are written for (mm).
REFERENCE_INTERCANTHAL_MM = 33.0


@dataclass(frozen=True)
class Zone:
    """One depression: a raised-cosine bump (``kind="spot"``) or a vertical groove (``kind="groove"``).

    ``spot``: centred on the surface point seen from the front at (lateral, height);
    radius ``radius_mm`` in 3D, ``plateau`` the inner share of the radius held at full
    depth. ``groove``: the band ``half_width_mm`` either side of the vertical line at
    ``lateral`` from ``height`` to ``height_top``, tapering over ``radius_mm`` at both ends
    (distances seen from the front). ``weight`` scales the zone's depth relative to the
    pattern's amplitude.
    """

    name: str
    kind: str
    lateral_mm: float
    height_mm: float
    radius_mm: float
    weight: float = 1.0
    plateau: float = 0.0
    half_width_mm: float = 0.0
    height_top_mm: float = 0.0
    aspect: float = 1.0  # spot: vertical semi-axis / lateral semi-axis

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _raised_cosine(rho: np.ndarray, plateau: float = 0.0) -> np.ndarray:
    """1 for rho <= plateau, falling with zero slope to 0 at rho = 1."""
    t = np.clip((rho - plateau) / max(1.0 - plateau, 1e-9), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


#: The patterns (positions for a face with REFERENCE_INTERCANTHAL_MM; see the module docstring).
PATTERNS: dict[str, tuple[Zone, ...]] = {
    "round": (Zone("cheek", "spot", 40.0, -12.0, 30.0),),
    # Several aesthetic zones at once, and an en-coup-de-sabre groove 9 mm from the midline.
    "multizone": (
        Zone("malar", "spot", 42.0, 2.0, 36.0, weight=1.0),
        Zone("buccal", "spot", 40.0, -32.0, 34.0, weight=0.85),
        Zone("chin", "spot", 24.0, -62.0, 24.0, weight=0.7),
        Zone("temple", "spot", 48.0, 30.0, 16.0, weight=0.6),
        Zone("forehead_groove", "groove", 9.0, 28.0, 6.0, weight=0.55, half_width_mm=5.0, height_top_mm=58.0),
    ),
    # Most of a hemiface, shallow: one broad flat-topped zone from below the eye to the jaw.
    "broad": (
        Zone("hemiface", "spot", 40.0, -16.0, 35.0, weight=1.0, plateau=0.6, aspect=1.5),
        Zone("malar_crest", "spot", 44.0, 4.0, 16.0, weight=0.2),
    ),
    # Close to the midline: the paramedian forehead groove and a paramedian chin and lip depression.
    "midline": (
        Zone("forehead_groove", "groove", 9.0, 28.0, 6.0, weight=1.0, half_width_mm=5.0, height_top_mm=58.0),
        Zone("chin", "spot", 16.0, -55.0, 13.0, weight=0.8),
        Zone("upper_lip", "spot", 13.0, -20.0, 9.0, weight=0.5),
    ),
}

#: Default total carved volume of each pattern (mm3): the round dent as before; the others near the
#: published preoperative defects (multi-zone ~15,000; broad-shallow 10,621 mm3, 3.25 mm deep at most).
DEFAULT_VOLUME_MM3 = {"round": 5000.0, "multizone": 15000.0, "broad": 10600.0, "midline": 2500.0}


def zone_shapes(vertices: np.ndarray, zones, *, tip: np.ndarray, sign: float, scale: float, surface_point):
    """Per-zone unit shape (n_zones, n_vertices) on a face in its canonical frame.

    ``tip``: pronasale; ``sign`` +1 for the patient's left, -1 for the right; ``scale``:
    positions and sizes multiply by it; ``surface_point(x, y)`` returns the surface point
    seen from the front at (x, y) or raises.
    """
    out = []
    for z in zones:
        if z.kind == "spot":
            cx, cy = tip[0] + sign * scale * z.lateral_mm, tip[1] + scale * z.height_mm
            centre = surface_point(cx, cy)
            d = vertices - centre
            r = scale * z.radius_mm
            rho = np.sqrt((d[:, 0] ** 2 + d[:, 2] ** 2) / r**2 + d[:, 1] ** 2 / (z.aspect * r) ** 2)
            out.append(z.weight * _raised_cosine(rho, z.plateau))
        elif z.kind == "groove":
            x0 = tip[0] + sign * scale * z.lateral_mm
            lo, hi = tip[1] + scale * z.height_mm, tip[1] + scale * z.height_top_mm
            across = np.abs(vertices[:, 0] - x0) / (scale * z.half_width_mm)
            beyond = np.maximum(np.maximum(lo - vertices[:, 1], vertices[:, 1] - hi), 0.0) / (scale * z.radius_mm)
            out.append(z.weight * _raised_cosine(across) * _raised_cosine(beyond))
        else:  # pragma: no cover - the table above is fixed
            raise ValueError(f"unknown zone kind {z.kind!r}")
    return np.array(out)
