"""``analyze_photo``: facial symmetry ratios from one frontal photograph."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .. import logger
from .._errors import LandmarkError
from .._provenance import provenance, sha256_file
from .._validate import check_option, check_positive
from ._errors import PhotoError
from ._geometry import (
    CONTOUR_LEVELS, Frame, Midline, contour_levels, contour_widths, fit_pose, fitted_midline,
    height_differences_px, hemiface_polygons, iris_diameter_px, pair_ratios, polygon_area, pupils_midline,
)
from ._io import Photo, read_photo
from ._landmarks import FaceLandmarks, read_landmarks

Side = Literal["left", "right"]
#: Head turn beyond these angles is flagged: it alone fakes asymmetry.
MAX_YAW_DEG = 5.0
MAX_PITCH_DEG = 10.0
#: Beyond this yaw the photo is a profile (or three-quarter) view and is refused.
PROFILE_YAW_DEG = 30.0
#: Faces narrower than this are flagged (too few pixels across the face to measure well).
MIN_FACE_WIDTH_PX = 300.0
#: How ``pose`` is measured when the landmarks come with a 3D face mesh.
POSE_METHOD = ("head axes of the 3D face mesh (left-right: normal of the midline vertices' plane; vertical: "
               "the mean face template's, fitted in 3D)")
#: Output files written by :meth:`PhotoAnalysis.save`; the last one is written last.
OUTPUT_NAMES = ("landmarks.json", "overlay.png", "measurements.json")


@dataclass(frozen=True, eq=False)
class PhotoAnalysis:
    """Result of :func:`analyze_photo`. Sides are the patient's; lengths px and mm, areas px2 and mm2.

    ``symmetry_ratio_percent`` = 100 x area of the affected hemiface / area of
    the unaffected hemiface (outline split by the chosen midline), in the photo's
    own 2D geometry: 100 is perfect symmetry, < 100 a deficient affected side,
    > 100 overcorrection. Head yaw moves it by about 2 points per degree.
    ``pose_compensated`` holds the same ratios measured on the face turned to a
    frontal view with the face mesh's 3D shape (:mod:`._frontal`;
    ``symmetry_ratio_pose_compensated_percent``): it removes most of the effect of
    a turn, but the face mesh reads part of a one-sided atrophy as a turn, so it
    also hides part of a real asymmetry; it is a secondary, experimental key.
    mm values are None when the landmarks carry no iris (no scale).
    """

    affected_side: Side
    affected_side_chosen_by: Literal["user", "auto"]
    midline_method: str
    symmetry_ratio_percent: float
    symmetry_ratio_pose_compensated_percent: float
    symmetry_ratio_percent_pupils_midline: float
    symmetry_ratio_percent_fitted_midline: float | None
    contour_ratio_percent: dict
    contour_ratio_percent_mean: float
    contour_widths_px: dict
    landmark_ratio_percent: float | None
    landmark_ratio_percent_by_pair: dict
    height_difference_px: dict
    hemiface_area_px2: dict
    face_width_px: float
    scale_mm_per_px: float | None
    iris_diameter_px: float | None
    iris_mm: float
    pose: dict
    flags: tuple
    midlines: dict
    pose_compensated: dict = field(repr=False)
    landmarks: FaceLandmarks = field(repr=False)
    frontal_landmarks: FaceLandmarks = field(repr=False)
    frame: Frame = field(repr=False)
    midline: Midline = field(repr=False)
    contour_levels_v_px: dict = field(repr=False)
    photo: Photo | None = field(repr=False, default=None)
    provenance: dict = field(default_factory=dict, repr=False)

    def _mm(self, px: float | None, power: int = 1) -> float | None:
        if px is None or self.scale_mm_per_px is None:
            return None
        return float(px) * self.scale_mm_per_px ** power

    def to_dict(self) -> dict:
        """Flat, JSON-ready measurements with pose, flags, scale, midlines and provenance."""
        aff = self.affected_side
        unaff = "left" if aff == "right" else "right"
        d = {
            "affected_side": aff,
            "affected_side_chosen_by": self.affected_side_chosen_by,
            "midline": self.midline_method,
            "symmetry_ratio_percent": self.symmetry_ratio_percent,
            "symmetry_ratio_percent_pupils_midline": self.symmetry_ratio_percent_pupils_midline,
            "symmetry_ratio_percent_fitted_midline": self.symmetry_ratio_percent_fitted_midline,
            "symmetry_ratio_pose_compensated_percent": self.symmetry_ratio_pose_compensated_percent,
        }
        comp = self.pose_compensated
        for level in CONTOUR_LEVELS:
            d[f"contour_ratio_percent_{level}"] = self.contour_ratio_percent[level]
        d["contour_ratio_percent_mean"] = self.contour_ratio_percent_mean
        for level in CONTOUR_LEVELS:
            d[f"contour_ratio_pose_compensated_percent_{level}"] = comp["contour_ratio_percent"][level]
        d["contour_ratio_pose_compensated_percent_mean"] = comp["contour_ratio_percent_mean"]
        d["landmark_ratio_percent"] = self.landmark_ratio_percent
        d["landmark_ratio_pose_compensated_percent"] = comp["landmark_ratio_percent"]
        for pair, r in self.landmark_ratio_percent_by_pair.items():
            d[f"landmark_ratio_percent_{pair}"] = r
        for pair, h in self.height_difference_px.items():
            d[f"{pair}_height_difference_px"] = h
            d[f"{pair}_height_difference_mm"] = self._mm(h)
        d["affected_hemiface_area_px2"] = self.hemiface_area_px2[aff]
        d["unaffected_hemiface_area_px2"] = self.hemiface_area_px2[unaff]
        d["affected_hemiface_area_mm2"] = self._mm(self.hemiface_area_px2[aff], 2)
        d["unaffected_hemiface_area_mm2"] = self._mm(self.hemiface_area_px2[unaff], 2)
        for level in CONTOUR_LEVELS:
            w = self.contour_widths_px[level]
            d[f"contour_{level}_affected_px"] = w[aff]
            d[f"contour_{level}_unaffected_px"] = w[unaff]
            d[f"contour_{level}_affected_mm"] = self._mm(w[aff])
            d[f"contour_{level}_unaffected_mm"] = self._mm(w[unaff])
        d["face_width_px"] = self.face_width_px
        d["face_width_mm"] = self._mm(self.face_width_px)
        d["pose"] = dict(self.pose)
        d["flags"] = list(self.flags)
        d["scale"] = {
            "mm_per_px": self.scale_mm_per_px, "iris_diameter_px": self.iris_diameter_px, "iris_mm": self.iris_mm,
            "source": "mean horizontal iris diameter" if self.scale_mm_per_px else "none (no iris landmarks)",
        }
        d["midlines"] = self.midlines
        d["landmark_source"] = self.landmarks.source
        d["pose_compensation"] = (
            "*_pose_compensated_* keys are measured on the face turned to a frontal view with the 3D face mesh "
            "(each 2D point lifted to the depth of its mesh vertex, outline points to the depth of the face oval at "
            "the same angle; experimental: the face mesh reads part of a one-sided atrophy as a head turn); all "
            "other ratios, widths, areas and heights are measured in the photo's own 2D geometry"
        )
        d["sign_conventions"] = (
            "ratios: 100 x affected / unaffected (100 = symmetric, < 100 = deficient affected side); "
            "yaw > 0: nose toward the patient's left (image right); pitch > 0: chin down; roll > 0: clockwise; "
            "height differences > 0: the affected-side point lies higher (toward the forehead); "
            "sides are the patient's (the patient's left is on the image's right)"
        )
        d["provenance"] = self.provenance
        return d

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write measurements.json, landmarks.json and overlay.png (all or nothing)."""
        from ._outputs import write_outputs

        return write_outputs(self, out_dir, overwrite=overwrite)


def _ratio(a: float, b: float) -> float:
    if b <= 0:
        raise LandmarkError("the unaffected side has zero extent; check the face outline and midline")
    return 100.0 * a / b


def _levels_of(g: dict) -> list:
    return list(g["contour"])


def _geometry(lm: FaceLandmarks, *, affected: str, midline: str, name: str) -> dict:
    """Areas, contour widths and landmark ratios of ``lm`` (image px, or a frontal view of them)."""
    frame = Frame.from_pupils(lm["pupil_right"], lm["pupil_left"])
    outline_uv = frame.uv(lm.outline)
    lines = {"pupils": pupils_midline()}
    try:
        lines["fitted"] = fitted_midline(lm, frame)
    except LandmarkError:
        if midline == "fitted":
            raise
        logger.info("%s: too few midline points for a fitted midline", name)
    line = lines[midline]

    areas = {m: {s: polygon_area(p) for s, p in hemiface_polygons(outline_uv, ln).items()} for m, ln in lines.items()}
    if affected == "auto":
        side = "left" if areas[midline]["left"] < areas[midline]["right"] else "right"
        chosen_by = "auto"
        logger.info("%s: affected side chosen automatically: %s (the smaller hemiface)", name, side)
    else:
        side, chosen_by = affected, "user"
    other = "left" if side == "right" else "right"
    ratios = {m: _ratio(a[side], a[other]) for m, a in areas.items()}

    levels = contour_levels(lm, frame)
    widths, contour = {}, {}
    for lv, v in levels.items():
        try:
            widths[lv] = contour_widths(outline_uv, line, v)
            contour[lv] = _ratio(widths[lv][side], widths[lv][other])
        except LandmarkError as exc:  # e.g. a 68-point jawline does not reach up to the eyes
            logger.warning("%s: contour level %s not measured: %s", name, lv, exc)
            widths[lv], contour[lv] = {"left": None, "right": None}, None
    measured = [r for r in contour.values() if r is not None]
    if not measured:
        raise LandmarkError(f"{name}: the face outline does not cross any contour level on both sides of the midline")
    pairs = pair_ratios(lm, frame, line, side)
    return dict(
        frame=frame, lines=lines, line=line, areas=areas, side=side, chosen_by=chosen_by, ratios=ratios,
        levels=levels, widths=widths, contour=contour, contour_mean=float(np.mean(measured)), pairs=pairs,
        landmark_ratio=float(np.mean(list(pairs.values()))) if pairs else None,
        heights=height_differences_px(lm, frame, side),
        face_width=float(outline_uv[:, 0].max() - outline_uv[:, 0].min()),
    )


def measure(
    lm: FaceLandmarks, *, affected: str, midline: str = "pupils", iris_mm: float = 11.7, name: str = "photo",
    mesh: np.ndarray | None = None,
) -> dict:
    """All measurements from named landmarks (px); the keyword arguments of :class:`PhotoAnalysis`.

    ``mesh`` is the photo's (478, 3) face mesh (photo px, z in px; default
    ``lm.mesh``): it gives the head pose and the depths that turn the landmarks to
    a frontal view for the pose-compensated values (see :mod:`._frontal`). Without
    one, the pose comes from the 2D template fit and the pose-compensated values
    are None.
    """
    from ._frontal import frontal_landmarks

    mesh = lm.mesh if mesh is None else mesh
    pose_2d = fit_pose(lm)
    if mesh is None:
        logger.warning("%s: no 3D face mesh: the head pose comes from the 2D template fit and nothing is "
                       "pose-compensated", name)
        frontal = None
        pose = dict(pose_2d)
        pose["roll_deg"] = Frame.from_pupils(lm["pupil_right"], lm["pupil_left"]).roll_deg
        pose["method"] = "2D template fit (no 3D face mesh)"
    else:
        frontal, head = frontal_landmarks(lm, mesh)
        pose = dict(head.pose)
        pose["fit_rms_ipd"] = pose_2d["fit_rms_ipd"]
        pose["method"] = POSE_METHOD
    pose["yaw_deg_2d_template_fit"] = pose_2d["yaw_deg"]
    pose["pitch_deg_2d_template_fit"] = pose_2d["pitch_deg"]
    # Refuse a profile view before measuring anything: its hemifaces are degenerate (one can be empty).
    # Either estimate suffices: landmarks from a file may describe another pose than the photo's own mesh.
    turned = max(pose["yaw_deg"], pose_2d["yaw_deg"], key=abs)
    if abs(turned) > PROFILE_YAW_DEG:
        raise PhotoError(
            f"{name}: not a frontal view (head turned {turned:.0f} degrees; profile views cannot be measured)"
        )
    g = _geometry(lm, affected=affected, midline=midline, name=name)  # the photo's own 2D geometry (primary)
    side = g["side"]
    # The frontal view (pose-compensated), or nothing without a mesh.
    comp = None if frontal is None else _geometry(frontal, affected=side, midline=midline, name=name)

    # The single-photo pose flags keep their meaning: they read the 2D template fit, whose zero is the
    # template's frontal face (the face mesh's pitch has another zero: its eye-to-mouth line leans by about
    # 10 degrees on standardized frontal photos).
    flags = []
    if abs(pose_2d["yaw_deg"]) > MAX_YAW_DEG:
        flags.append("yaw_exceeds_5_deg")
    if abs(pose_2d["pitch_deg"]) > MAX_PITCH_DEG:
        flags.append("pitch_exceeds_10_deg")
    face_width = g["face_width"]
    if face_width < MIN_FACE_WIDTH_PX:
        flags.append("face_narrower_than_300_px")
    if pose["fit_rms_ipd"] > 0.15:
        flags.append("landmarks_fit_face_template_poorly")
    for flag in flags:
        logger.warning("%s: %s (2D template fit: yaw %.1f deg, pitch %.1f deg; face width %.0f px)",
                       name, flag, pose_2d["yaw_deg"], pose_2d["pitch_deg"], face_width)

    iris_px = iris_diameter_px(lm)
    scale = iris_mm / iris_px if iris_px else None
    midlines = {}
    frame = g["frame"]
    for m, ln in g["lines"].items():
        top, bottom = frame.px([ln.u_at(-200.0), -200.0]), frame.px([ln.u_at(200.0), 200.0])
        midlines[m] = {
            "symmetry_ratio_percent": g["ratios"][m],
            "symmetry_ratio_pose_compensated_percent": None if comp is None else comp["ratios"][m],
            "angle_to_pupil_perpendicular_deg": ln.angle_deg(),
            "offset_at_pupils_px": ln.a,
            "fit_rms_px": ln.rms_px,
            "points_px": [top.tolist(), bottom.tolist()],
        }
    if comp is None:
        comp = {"ratios": {midline: None}, "contour": dict.fromkeys(_levels_of(g)), "contour_mean": None,
                "landmark_ratio": None, "areas": {midline: None}, "widths": dict.fromkeys(_levels_of(g))}
    compensated = {
        "symmetry_ratio_percent": comp["ratios"][midline],
        "contour_ratio_percent": comp["contour"],
        "contour_ratio_percent_mean": comp["contour_mean"],
        "landmark_ratio_percent": comp["landmark_ratio"],
        "hemiface_area_px2": comp["areas"][midline],
        "contour_widths_px": comp["widths"],
    }
    return dict(
        affected_side=side,
        affected_side_chosen_by=g["chosen_by"],
        midline_method=midline,
        symmetry_ratio_percent=g["ratios"][midline],
        symmetry_ratio_pose_compensated_percent=comp["ratios"][midline],
        symmetry_ratio_percent_pupils_midline=g["ratios"]["pupils"],
        symmetry_ratio_percent_fitted_midline=g["ratios"].get("fitted"),
        contour_ratio_percent=g["contour"],
        contour_ratio_percent_mean=g["contour_mean"],
        contour_widths_px=g["widths"],
        landmark_ratio_percent=g["landmark_ratio"],
        landmark_ratio_percent_by_pair=g["pairs"],
        height_difference_px=g["heights"],
        hemiface_area_px2=g["areas"][midline],
        face_width_px=face_width,
        scale_mm_per_px=scale,
        iris_diameter_px=iris_px,
        iris_mm=iris_mm,
        pose=pose,
        flags=tuple(flags),
        midlines=midlines,
        pose_compensated=compensated,
        landmarks=lm,
        frontal_landmarks=frontal,
        frame=frame,
        midline=g["line"],
        contour_levels_v_px=g["levels"],
    )


def auto_landmarks(photo: Photo) -> FaceLandmarks:
    """Automatic, mirror-consistent landmarks with the image-refined outline (see :mod:`._locate`)."""
    from ._landmarks import from_mesh
    from ._locate import locate
    from .._face_mesh import MODEL_NAME, model_version

    auto = locate(photo.rgb, name=photo.name)
    return from_mesh(auto.mesh, auto.outline, model=MODEL_NAME, model_version=model_version())


def _complete_ibug_outline(lm: FaceLandmarks, photo: Photo) -> FaceLandmarks:
    """An iBUG jawline completed above the ears by the automatic outline (see ``complete_jaw_outline``).

    When the automatic model cannot place landmarks on the photo, the jawline
    stays closed by the straight line between its ends, and the landmark source
    says so (the ratio then covers the face below that line only).
    """
    from ._landmarks import complete_jaw_outline

    try:
        auto = auto_landmarks(photo)
        done = complete_jaw_outline(lm, auto.outline, model=auto.model, model_version=auto.model_version)
        return FaceLandmarks(done.points, done.outline, done.source, done.model, done.model_version, mesh=auto.mesh)
    except (PhotoError, LandmarkError) as exc:
        logger.warning("%s: the 68-point jawline is closed by a straight line between its ends: %s", photo.name, exc)
        return FaceLandmarks(dict(lm.points), lm.outline,
                             f"{lm.source}; outline closed by a straight line between the jaw's ends (no automatic "
                             f"outline: {exc})")


def analyze_photo(
    path: str | os.PathLike | Photo,
    *,
    affected: str,
    landmarks: str | os.PathLike | FaceLandmarks | None = None,
    midline: str = "pupils",
    iris_mm: float = 11.7,
) -> PhotoAnalysis:
    """Facial symmetry of one frontal photograph.

    Parameters
    ----------
    path : path or Photo
        JPEG, PNG or TIFF (EXIF orientation honoured), or a :class:`Photo`.
    affected : {"left", "right", "auto"}
        The patient's affected side; "auto" takes the side with the smaller hemiface area.
    landmarks : path or FaceLandmarks, optional
        hemiface ``landmarks.json`` (for example a corrected one) or an iBUG 68-point
        ``.pts``; replaces the automatic landmarks. A ``.pts`` outline is only the
        jawline from ear to ear: above the line joining its ends the outline is
        completed from the automatic model's outline of the same photo (or, when
        the model finds no face, closed by that straight line; the landmark source
        says which).
    midline : {"pupils", "fitted"}
        Perpendicular bisector of the pupils, or a line fitted through the midline
        landmarks. Both ratios are always reported.
    iris_mm : float
        Horizontal iris diameter that sets the mm scale.

    Returns
    -------
    PhotoAnalysis

    Raises
    ------
    InputFileError, PhotoError, LandmarkError
        Unreadable file; no face, several faces or a profile view; bad landmarks.
    """
    check_option("affected", affected, ("left", "right", "auto"))
    check_option("midline", midline, ("pupils", "fitted"))
    iris_mm = check_positive("iris_mm", iris_mm)
    photo = path if isinstance(path, Photo) else read_photo(path)
    inputs = {"photo": {"file": photo.name, "sha256": photo.sha256}}
    if landmarks is None:
        lm = auto_landmarks(photo)
    elif isinstance(landmarks, FaceLandmarks):
        lm = landmarks
    else:
        lm = read_landmarks(landmarks)
        inputs["landmarks"] = {"file": Path(landmarks).name, "sha256": sha256_file(landmarks)}
        if Path(landmarks).suffix.lower() == ".pts":
            lm = _complete_ibug_outline(lm, photo)
    mesh, mesh_source = lm.mesh, "the landmarks' own face mesh"
    if mesh is None:
        # Landmarks from a file carry no depth: the automatic face mesh of the same photo gives the head's
        # 3D shape and pose for the pose compensation (the file's points are kept as they are).
        try:
            mesh, mesh_source = auto_landmarks(photo).mesh, "the automatic face mesh of the same photo"
        except (PhotoError, LandmarkError) as exc:
            mesh, mesh_source = None, f"none (no automatic face mesh: {exc})"
    values = measure(lm, affected=affected, midline=midline, iris_mm=iris_mm, name=photo.name, mesh=mesh)
    parameters = {
        "affected": affected, "midline": midline, "iris_mm": iris_mm,
        "landmark_source": lm.source, "landmark_model": lm.model, "landmark_model_version": lm.model_version,
        "pose_compensation": {"method": "frontal view from the 3D face mesh (hemiface.photo._frontal)",
                              "mesh_source": mesh_source},
    }
    prov = provenance(inputs, parameters)
    prov["versions"]["mediapipe"] = _version("mediapipe")
    prov["versions"]["opencv"] = _version("opencv-contrib-python")
    prov["versions"]["pillow"] = _version("pillow")
    return PhotoAnalysis(**values, photo=photo, provenance=prov)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
