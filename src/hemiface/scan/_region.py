"""The face region: the part of the scan that enters the numbers.

How it is chosen (all lengths in mm, in the symmetry frame: x across the
symmetry plane toward the patient's left, y up, z anterior, origin at
pronasale projected onto the plane):

1. an ellipse seen from the front, ``width_mm`` wide, reaching ``above_mm``
   above and ``below_mm`` below pronasale: forehead to chin, between the
   ears; triangles are cut exactly along it, so it is symmetric about the plane;
2. at most ``depth_mm`` behind pronasale, which drops ears, hair at the sides
   and the neck behind the jaw;
3. at least ``border_margin_mm`` from any open border or hole of the scan,
   both for the point itself and for its mirror image (so a point counts only
   when its mirror partner lies on measured skin too);
4. the connected piece that holds pronasale.

Before any of this, holes in the scan no larger than ``hole_fill_radius_mm`` (the
radius of the sphere around the hole's border: nostrils, specular dropouts, a
missed patch of cheek) are closed (:mod:`hemiface.scan._holes`: triangulated on their
own border, refined to the mesh's density and faired to the biharmonic surface that
continues the skin around), so that a small hole costs only the error of that fill
instead of itself, a border margin
around it and the same again around its mirror image. Larger holes and the scan's
open border are left open (limit 3 applies to them). 0 turns this off.

Every limit is a parameter of :class:`FaceRegion` (and a ``--region-*``
option on the command line).

The symmetry plane is registered over a larger area, the ellipse enlarged by
``registration_scale`` (1.3: 169 x 201 mm by default), within the same depth
limit. Temples, upper forehead and jaw angles hold the plane's rotation about
the vertical axis: on real faces, registering only the measured region let a
masked cheek defect turn the plane by up to 0.13 degrees (17% of a 5,000 mm3
defect); with the enlarged area the same tests stay within 7%.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._validate import OptionError, check_positive


@dataclass(frozen=True)
class FaceRegion:
    width_mm: float = 130.0
    above_mm: float = 75.0
    below_mm: float = 80.0
    depth_mm: float = 80.0
    border_margin_mm: float = 3.0
    registration_scale: float = 1.3
    hole_fill_radius_mm: float = 12.5

    def __post_init__(self):
        for name in ("width_mm", "above_mm", "below_mm", "depth_mm"):
            check_positive(f"region {name}", getattr(self, name))
        check_positive("region border_margin_mm", self.border_margin_mm, allow_zero=True)
        check_positive("region hole_fill_radius_mm", self.hole_fill_radius_mm, allow_zero=True)
        if self.registration_scale < 1.0:
            raise OptionError(f"region registration_scale must be >= 1; got {self.registration_scale!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def ellipse_margin(self, points: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
        """> 0 inside the frontal ellipse (points in the symmetry frame)."""
        half_w = scale * self.width_mm / 2
        half_h = scale * (self.above_mm + self.below_mm) / 2
        centre_y = (self.above_mm - self.below_mm) / 2
        return 1.0 - (points[:, 0] / half_w) ** 2 - ((points[:, 1] - centre_y) / half_h) ** 2

    def depth_margin(self, points: np.ndarray, *, extra_mm: float = 0.0) -> np.ndarray:
        """> 0 in front of the back limit."""
        return points[:, 2] + self.depth_mm + extra_mm
