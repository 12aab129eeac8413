"""Aesthetic zones of the hemiface, placed from the face's landmarks, and the defect split by zone.

The zones follow the facial fat compartments (Rohrich RJ, Pessa JE. The fat
compartments of the face: anatomy and clinical implications for cosmetic surgery.
Plast Reconstr Surg 2007;119:2219-27) where these are what a fat graft fills, and
the aesthetic units of the face (Gonzalez-Ulloa M. Restoration of the face covering
by means of selected skin in regional aesthetic units. Br J Plast Surg 1956;9:212-21)
where the compartments do not separate what a surgeon treats apart (nose, lips, chin):

================  =========================================================================
zone              what it covers (compartment / unit)
================  =========================================================================
forehead          above the brow line, medial of the lateral orbital line; the glabella and
                  nasal root above nasion (central and middle forehead compartments)
temple            lateral of the lateral orbital line, above the canthal line (temporal part
                  of the lateral temporal-cheek compartment)
nose              medial of the nasofacial line, above the nasal base, below nasion (nasal unit)
orbit             brow to the lid-cheek junction, between the nose and the lateral orbital line
                  (superior, inferior and lateral orbital compartments; eyelid unit)
upper_lip         medial of the nasolabial line, above the mouth line (upper-lip unit)
chin              medial of the nasolabial line (its continuation, the labiomandibular line),
                  below the mouth line: lower lip and chin (lower-lip and mental units)
preauricular      lateral of the lateral orbital line, below the canthal line: the lateral
                  cheek in front of the ear down to the jaw angle (cheek part of the lateral
                  temporal-cheek compartment)
infraorbital      below the lid-cheek junction, above the alar level, medial of the mid-pupil
                  line (medial cheek compartment, deep medial cheek fat, tear trough)
malar             the same band lateral of the mid-pupil line: over the zygoma (middle cheek
                  compartment, SOOF)
buccal            lateral of the nasolabial line, below the alar level: the lower cheek and
                  jowl (buccal fat, jowl compartment)
================  =========================================================================

Geometry. Every boundary is a plane parallel to the anterior axis (z) of the
symmetry frame (x across the symmetry plane toward the patient's left, y up,
origin at pronasale on the plane, mm), so on the skin it is the curve where that
plane cuts the surface; seen from the front it is a straight line. Lines are
written in (u, y) with ``u = |x|``, the distance from the symmetry plane, so the
zones of the two sides are exact mirror images across the plane. Levels and lines:

- canthal line ``y_eye``: mean height of endocanthion and exocanthion;
  fissure width ``w`` = u(exocanthion) - u(endocanthion);
- brow line ``y_brow``: height of glabella;
- lid-cheek junction ``y_eye - INFRAORBITAL_DROP * w`` (the infraorbital rim);
- alar level: height of alar base (alar curvature point); mouth line: height of cheilion;
- mid-pupil line ``u`` = mean u of endocanthion and exocanthion;
- lateral orbital line ``u(exocanthion) + LATERAL_RIM * w`` (lateral orbital rim, temporal crest);
- nasofacial line through endocanthion and alar base; nasal base line through subnasale
  and alar base; nasolabial line through alar base and cheilion, continued below the
  commissure as the labiomandibular line.

Each point belongs to the first zone of :data:`ZONE_NAMES` whose rule it meets
(:meth:`ZoneLayout.label`); the last zone (buccal) takes every point left, so the
zones of a hemiface tile it: every triangle lies in exactly one zone. Measurements split the defect the analysis measured (its triangles and their
swept volumes, :mod:`._defect`) by zone, so the zone volumes add up exactly to the
defect volume and to the hemiface discrepancy. A triangle of the affected skin is
placed by its counterpart on the mirrored unaffected skin (:func:`face_zones`).

Landmarks. The pair landmarks of both sides are averaged after mirroring (u and y;
either side alone is used as it is), the midline ones give their height. Landmarks
missing come from :data:`REFERENCE_LANDMARKS` (an average face) fitted to those
given by one lateral and one vertical scale (least squares through pronasale); with
no landmarks at all the reference face is used as it is. Which landmarks were given
and the resulting lines are recorded (:meth:`ZoneLayout.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .._errors import LandmarkError
from ._defect import Patch
from ._mesh import face_areas_mm2, swept_volumes_mm3

#: The zones, in the order their rules are tried (see the module docstring). Names are stable:
#: measurement keys are ``zone_<name>_...``.
ZONE_NAMES = ("forehead", "temple", "nose", "orbit", "upper_lip", "chin", "preauricular", "infraorbital", "malar",
              "buccal")

#: Landmarks of an average face in the symmetry frame, (u, y) in mm: the meshmonk template (the bundled
#: ``template`` sample, an average face) as :func:`hemiface.scan.detect_landmarks` places them, rounded
#: to 0.5 mm. u is the distance from the symmetry plane (0 for the midline), y the height above pronasale.
REFERENCE_LANDMARKS: dict[str, tuple[float, float]] = {
    "endocanthion": (16.5, 31.5),
    "exocanthion": (41.0, 32.5),
    "alar_base": (18.0, -6.0),
    "cheilion": (23.0, -31.5),
    "glabella": (0.0, 45.5),
    "nasion": (0.0, 32.5),
    "subnasale": (0.0, -11.0),
}
PAIRED = ("endocanthion", "exocanthion", "alar_base", "cheilion")
MIDLINE = ("glabella", "nasion", "subnasale")
#: The lid-cheek junction lies this many fissure widths below the canthal line (12 mm on the reference face).
INFRAORBITAL_DROP = 0.5
#: The lateral orbital line lies this many fissure widths lateral of exocanthion (6 mm on the reference face).
LATERAL_RIM = 0.25


def _line_u(p, q, y):
    """u of the line through p and q (each (u, y)) at height y (the line is not horizontal)."""
    return p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1])


def _line_y(p, q, u):
    """y of the line through p and q at lateral distance u (the line is not vertical)."""
    return p[1] + (q[1] - p[1]) * (u - p[0]) / (q[0] - p[0])


@dataclass(frozen=True)
class ZoneLayout:
    """Zone boundaries of one face in its symmetry frame (mm; see the module docstring).

    Points ``(u, y)``: u the distance from the symmetry plane, y the height above pronasale.
    ``sources`` says for each landmark whether it was ``"given"`` or taken from the
    ``"reference"`` face (scaled by ``scale_lateral`` and ``scale_vertical``).
    """

    endocanthion: tuple[float, float]
    exocanthion: tuple[float, float]
    alar_base: tuple[float, float]
    cheilion: tuple[float, float]
    glabella_y: float
    nasion_y: float
    subnasale_y: float
    sources: Mapping[str, str]
    scale_lateral: float
    scale_vertical: float

    @property
    def eye_y(self) -> float:
        return 0.5 * (self.endocanthion[1] + self.exocanthion[1])

    @property
    def fissure_mm(self) -> float:
        return self.exocanthion[0] - self.endocanthion[0]

    @property
    def infraorbital_y(self) -> float:
        return self.eye_y - INFRAORBITAL_DROP * self.fissure_mm

    @property
    def midpupil_u(self) -> float:
        return 0.5 * (self.endocanthion[0] + self.exocanthion[0])

    @property
    def lateral_u(self) -> float:
        return self.exocanthion[0] + LATERAL_RIM * self.fissure_mm

    def label(self, points: np.ndarray) -> np.ndarray:
        """Index into :data:`ZONE_NAMES` of each point (symmetry frame, (k, 2+) array, x and y used).

        Depends on |x| only, so a point and its mirror image across the plane get the same zone.
        """
        points = np.asarray(points, dtype=float)
        u, y = np.abs(points[:, 0]), points[:, 1]
        medial_of_nasofacial = u < _line_u(self.endocanthion, self.alar_base, y)
        above_nasal_base = y > _line_y((0.0, self.subnasale_y), self.alar_base, np.minimum(u, self.alar_base[0]))
        medial_of_nasolabial = u < _line_u(self.alar_base, self.cheilion, y)
        lateral = u >= self.lateral_u
        rules = {
            "forehead": ((y >= self.glabella_y) & ~lateral) | ((y >= self.nasion_y) & medial_of_nasofacial),
            "temple": lateral & (y >= self.eye_y),
            "nose": medial_of_nasofacial & above_nasal_base,
            "orbit": (y >= self.infraorbital_y) & ~lateral,
            "upper_lip": medial_of_nasolabial & (y >= self.cheilion[1]),
            "chin": medial_of_nasolabial,
            "preauricular": lateral,
            "infraorbital": (u < self.midpupil_u) & (y >= self.alar_base[1]),
            "malar": y >= self.alar_base[1],
        }
        out = np.full(len(u), ZONE_NAMES.index("buccal"), dtype=np.int64)
        for name in reversed(ZONE_NAMES[:-1]):  # the first rule met wins: apply the last first
            out[rules[name]] = ZONE_NAMES.index(name)
        return out

    def to_dict(self) -> dict:
        r = lambda p: [round(float(c), 3) for c in p]  # noqa: E731
        return {
            "names": list(ZONE_NAMES),
            "coordinates": "symmetry frame, mm: u = distance from the symmetry plane, y = height above pronasale",
            "landmarks_uy_mm": {"endocanthion": r(self.endocanthion), "exocanthion": r(self.exocanthion),
                                "alar_base": r(self.alar_base), "cheilion": r(self.cheilion),
                                "glabella": r((0.0, self.glabella_y)), "nasion": r((0.0, self.nasion_y)),
                                "subnasale": r((0.0, self.subnasale_y))},
            "landmark_sources": dict(self.sources),
            "reference_scale": {"lateral": round(self.scale_lateral, 4), "vertical": round(self.scale_vertical, 4)},
            "lines_mm": {"brow_y": round(self.glabella_y, 3), "canthal_y": round(self.eye_y, 3),
                         "lid_cheek_y": round(self.infraorbital_y, 3), "alar_y": round(self.alar_base[1], 3),
                         "mouth_y": round(self.cheilion[1], 3), "midpupil_u": round(self.midpupil_u, 3),
                         "lateral_orbital_u": round(self.lateral_u, 3)},
            "infraorbital_drop_fissures": INFRAORBITAL_DROP,
            "lateral_rim_fissures": LATERAL_RIM,
        }


def _given_uy(landmarks_sym: Mapping[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """(u, y) of each reference landmark given: pairs mirrored and averaged, midline points at u = 0."""
    out = {}
    for name in PAIRED:
        sides = [np.asarray(landmarks_sym[f"{name}_{s}"], float) for s in ("left", "right")
                 if f"{name}_{s}" in landmarks_sym]
        if sides:
            out[name] = (float(np.mean([abs(p[0]) for p in sides])), float(np.mean([p[1] for p in sides])))
    for name in MIDLINE:
        if name in landmarks_sym:
            out[name] = (0.0, float(np.asarray(landmarks_sym[name], float)[1]))
    return out


def zone_layout(landmarks_sym: Mapping[str, np.ndarray] | None = None) -> ZoneLayout:
    """Zone boundaries from landmarks already in the symmetry frame (mm); missing ones from the reference face.

    Raises :class:`LandmarkError` when the landmarks put the zone lines out of their
    anatomical order (for example the mouth above the alar base: left and right, or up
    and down, confused).
    """
    given = _given_uy(landmarks_sym or {})
    ref = REFERENCE_LANDMARKS
    lateral = [(given[n][0], ref[n][0]) for n in PAIRED if n in given]
    vertical = [(given[n][1], ref[n][1]) for n in given]
    s_u = sum(g * r for g, r in lateral) / sum(r * r for _, r in lateral) if lateral else None
    s_y = sum(g * r for g, r in vertical) / sum(r * r for _, r in vertical) if vertical else None
    s_u = s_u if s_u is not None else (s_y if s_y is not None else 1.0)
    s_y = s_y if s_y is not None else s_u
    p = {n: given.get(n, (s_u * ref[n][0], s_y * ref[n][1])) for n in ref}
    layout = ZoneLayout(
        endocanthion=p["endocanthion"], exocanthion=p["exocanthion"], alar_base=p["alar_base"],
        cheilion=p["cheilion"], glabella_y=p["glabella"][1], nasion_y=p["nasion"][1], subnasale_y=p["subnasale"][1],
        sources={n: ("given" if n in given else "reference") for n in ref}, scale_lateral=float(s_u),
        scale_vertical=float(s_y),
    )
    checks = (
        (layout.fissure_mm > 0, "exocanthion must lie lateral of endocanthion"),
        (layout.alar_base[0] > 0 and layout.cheilion[0] > 0, "alar base and cheilion must lie off the midline"),
        (layout.glabella_y > layout.eye_y > layout.infraorbital_y > layout.alar_base[1] > layout.cheilion[1],
         "brow, canthal line, lid-cheek junction, alar base and mouth must lie one below the other"),
        (layout.nasion_y > layout.subnasale_y, "nasion must lie above subnasale"),
    )
    for ok, what in checks:
        if not ok:
            lines = layout.to_dict()["lines_mm"]
            raise LandmarkError(f"aesthetic zones: {what} (lines in mm: {lines}); check the landmarks' names and sides")
    return layout


@dataclass(frozen=True)
class ZoneMeasure:
    """The affected side's measurements in one zone (mm, mm2, mm3).

    ``discrepancy_mm3`` is the zone's part of the hemiface volumetric discrepancy (signed:
    < 0 where the affected side is fuller than its mirror image); ``discrepancy_share`` is
    it divided by the hemiface discrepancy, a fraction (not a percentage): the shares of all
    zones add up to 1, a zone fuller than its mirror image has a negative share. NaN when the
    hemiface discrepancy is not positive (no deficit to share out).
    """

    name: str
    area_mm2: float
    defect_volume_mm3: float
    max_depth_mm: float
    area_deeper_than_threshold_mm2: float
    discrepancy_mm3: float
    discrepancy_share: float


def face_zones(layout: ZoneLayout, patch: Patch, *, reference: Patch | None = None) -> np.ndarray:
    """Zone index (into :data:`ZONE_NAMES`) of each triangle of ``patch``.

    A triangle belongs to the zone where its counterpart on the mirrored unaffected
    skin lies (the barycentre of its ``top`` triangle): the zone of the face as it
    would be without the atrophy. The affected skin itself has sunk inward, along
    normals that point sideways on the lateral face, and would carry a deep lateral
    defect into the zones medial of it. With ``reference`` (a depth patch on whose skin
    ``patch`` lies, as a gain map lies on the preoperative skin): the reference's
    ``top`` at the triangle's barycentre.
    """
    if not len(patch.faces):
        return np.empty(0, np.int64)
    if reference is None:
        return layout.label(patch.top[patch.faces].mean(axis=1))
    return layout.label(reference.interpolate(patch.vertices[patch.faces].mean(axis=1), reference.top))


def _by_zone(layout: ZoneLayout, patch: Patch, per_face, reference: Patch | None = None) -> dict[str, float]:
    """Sum of a per-triangle quantity (a function of the patch) over each zone."""
    if not len(patch.faces):
        return dict.fromkeys(ZONE_NAMES, 0.0)
    sums = np.bincount(face_zones(layout, patch, reference=reference), weights=per_face(patch),
                       minlength=len(ZONE_NAMES))
    return {n: float(v) for n, v in zip(ZONE_NAMES, sums)}


def zone_volumes_mm3(layout: ZoneLayout, patch: Patch, *, reference: Patch | None = None) -> dict[str, float]:
    """The swept volume of ``patch`` (what :meth:`Patch.volume_mm3` sums) split by zone (see :func:`face_zones`)."""
    return _by_zone(layout, patch, lambda p: swept_volumes_mm3(p.vertices, p.top, p.faces), reference)


def zone_areas_mm2(layout: ZoneLayout, patch: Patch) -> dict[str, float]:
    """The area of ``patch`` split by zone (see :func:`face_zones`)."""
    return _by_zone(layout, patch, lambda p: face_areas_mm2(p.vertices, p.faces))


def measure_zones(layout: ZoneLayout, hemiface: Patch, defect: Patch, *, threshold_mm: float) -> tuple[ZoneMeasure, ...]:
    """Split the affected hemiface and its defect (the patches the analysis measured) by zone.

    ``hemiface``: the affected half of the depth patch (its volume is the discrepancy);
    ``defect``: the merged defect patches (its volume is the defect volume). The
    maximum depth of a zone is the deepest defect vertex of its triangles, or a deeper peak
    measured on the unsmoothed depth (``defect.peaks``, placed by its mirrored skin); the area
    deeper than ``threshold_mm`` is that of the defect's part deeper than it (``Patch.deeper_than``: on the
    unsmoothed depth when the defect carries it), as in :func:`hemiface.scan._defect.find_defects`.
    """
    area = zone_areas_mm2(layout, hemiface)
    discrepancy = zone_volumes_mm3(layout, hemiface)
    defect_volume = zone_volumes_mm3(layout, defect)
    deep_area = zone_areas_mm2(layout, defect.deeper_than(threshold_mm) if len(defect.faces) else defect)
    max_depth = np.zeros(len(ZONE_NAMES))
    if len(defect.faces):
        np.maximum.at(max_depth, face_zones(layout, defect), defect.depth_mm[defect.faces].max(axis=1))
    if defect.peaks is not None and len(defect.peaks.depth_mm):  # each refined peak in the zone of its mirrored skin
        np.maximum.at(max_depth, layout.label(defect.peaks.top), defect.peaks.depth_mm)
    total = sum(discrepancy.values())
    return tuple(
        ZoneMeasure(
            name=n, area_mm2=area[n], defect_volume_mm3=defect_volume[n], max_depth_mm=float(max_depth[k]),
            area_deeper_than_threshold_mm2=deep_area[n], discrepancy_mm3=discrepancy[n],
            discrepancy_share=discrepancy[n] / total if total > 0 else float("nan"),
        )
        for k, n in enumerate(ZONE_NAMES)
    )


#: Per-zone measurement keys of ``measurements.json``: ``zone_<name>_<quantity>``.
ZONE_QUANTITIES = ("defect_volume_mm3", "max_depth_mm", "area_deeper_than_threshold_mm2", "discrepancy_mm3",
                   "discrepancy_share", "area_mm2")


def zone_keys(measures: tuple[ZoneMeasure, ...]) -> dict[str, float]:
    """Flat keys ``zone_<name>_<quantity>`` (see :data:`ZONE_QUANTITIES`)."""
    return {f"zone_{m.name}_{q}": float(getattr(m, q)) for m in measures for q in ZONE_QUANTITIES}


def layout_for_visit(landmarks_scan: Mapping[str, np.ndarray] | None, frame, sym) -> ZoneLayout:
    """The zones of a visit from its landmarks (scan frame, mm; None: the reference face), via its frames."""
    if not landmarks_scan:
        return zone_layout(None)
    names = list(landmarks_scan)
    points = sym.forward(frame.to_canonical(np.array([landmarks_scan[n] for n in names], float)))
    return zone_layout(dict(zip(names, points)))
