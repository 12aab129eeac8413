"""The ``hemiface`` command line: each command parses, calls one library function, and reports.

A library error becomes one line on stderr and exit code 1; a usage error exits with 2.
"""

from __future__ import annotations

import enum
import inspect
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from ._errors import HemifaceError
from .app import make_server
from .photo import analyze_photo, compare_photos
from .plan import adm_plan, fat_plan
from .scan import FaceRegion, analyze_scan, compare_scans
from .study._reporting import REPORT_FORMATS, write_study_report
from .study._settings import StudySettings


def _defaults(func) -> dict:
    """A library function's keyword defaults: the one home of the options' defaults below."""
    return {p.name: p.default for p in inspect.signature(func).parameters.values()}


_SCAN, _COMPARE = _defaults(analyze_scan), _defaults(compare_scans)
_PHOTO, _PHOTO_COMPARE = _defaults(analyze_photo), _defaults(compare_photos)
_REGION, _RULES = FaceRegion(), StudySettings()
_APP = _defaults(make_server)
_ADM, _FAT = _defaults(adm_plan), _defaults(fat_plan)

app = typer.Typer(
    name="hemiface",
    help="Objective outcome measures for hemifacial atrophy (3D defect volumetry, facial symmetry).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scan_app = typer.Typer(help="3D surface scans.", no_args_is_help=True)
datasets_app = typer.Typer(help="Bundled sample scans and phantoms with known truth.", no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(datasets_app, name="datasets")
photo_app = typer.Typer(help="2D frontal photographs.", no_args_is_help=True)
app.add_typer(photo_app, name="photo")
study_app = typer.Typer(help="Study cohorts: database, spreadsheet import, visit rules.", no_args_is_help=True)
app.add_typer(study_app, name="study")
plan_app = typer.Typer(help="Surgical planning from a `scan analyze` result: ADM composite, fat graft.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


#: `study report --format`: the formats the library writes, its default the library's.
ReportFormat = enum.Enum("ReportFormat", {f: f for f in REPORT_FORMATS}, type=str)
_REPORT_DEFAULT = list(_defaults(write_study_report)["formats"])


class AffectedSide(str, enum.Enum):
    left = "left"
    right = "right"
    auto = "auto"


class Side(str, enum.Enum):
    left = "left"
    right = "right"


class MidlineMethod(str, enum.Enum):
    pupils = "pupils"
    fitted = "fitted"


class Orient(str, enum.Enum):
    canonical = "canonical"
    auto = "auto"


_PLANE_HELP = ("Symmetry plane: mirror (mirror registration with a consensus refit), landmarks (through nasion, "
               "subnasale and pogonion or menton in --landmarks), or a JSON file {\"normal\": [x,y,z], \"point\": "
               "[x,y,z]} in the scan's frame and units.")
_STABLE_HELP = ("Mesh (scan's frame and units) covering areas known to be unaffected, on both sides and well clear "
                "of the atrophy: only mirror pairs with both ends on it register the symmetry plane (use it for "
                "broad atrophy, which pulls the automatic plane).")
_ORIENT_HELP = ("Without --landmarks: auto finds the face and its frame in any orientation (as `scan landmarks` "
                "does); canonical takes the scan as looking toward +z with the head up +y. --landmarks wins over both.")


class Units(str, enum.Enum):
    mm = "mm"
    cm = "cm"
    m = "m"


def _version(value: bool):
    if value:
        typer.echo(f"hemiface {__version__}")
        raise typer.Exit()


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (never a stale, closed stream)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _configure_logging(verbose: bool) -> None:
    """Only the CLI configures output: hemiface's messages go to stderr, prefixed."""
    log = logging.getLogger("hemiface")
    for handler in [h for h in log.handlers if isinstance(h, _CurrentStderrHandler)]:
        log.removeHandler(handler)
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("hemiface: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False  # the command line owns the output: no second copy through the root logger


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step."),
):
    _configure_logging(verbose)


def _fail(exc: Exception) -> None:
    typer.echo(f"hemiface: error: {_one_line(exc)}", err=True)
    raise typer.Exit(code=1)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, HemifaceError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc.__class__.__name__}"
    if isinstance(exc, ValueError) and "null" in str(exc):
        return "a path contains a NUL byte"
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


#: What study commands turn into one line (exit 1) instead of a traceback.
_STUDY_ERRORS = (HemifaceError, OSError, MemoryError)


#: The one-page chart summary that --report writes into an output folder.
REPORT_NAME = "report.pdf"


def _write_report(out: Path, *, overwrite: bool) -> None:
    from .report import patient_report

    patient_report(out, out / REPORT_NAME, overwrite=overwrite)


@scan_app.command("analyze")
def scan_analyze(
    scan: Path = typer.Argument(..., help="Face scan: OBJ, PLY, STL, OFF or GLB.", dir_okay=False),
    affected: AffectedSide = typer.Option(..., "--affected", help="Patient's affected side, or auto (larger defect)."),
    units: Units = typer.Option(Units.mm, "--units", help="Units of the scan file."),
    landmarks: Optional[Path] = typer.Option(
        None, "--landmarks", dir_okay=False,
        help="CSV name,x,y,z (scan units) with both endocanthions (or exocanthions) and pronasale; fixes the face frame.",
    ),
    orient: Orient = typer.Option(Orient.auto, "--orient", help=_ORIENT_HELP),
    plane: str = typer.Option(_SCAN["plane"], "--plane", help=_PLANE_HELP),
    stable: Optional[Path] = typer.Option(None, "--stable", dir_okay=False, help=_STABLE_HELP),
    threshold_mm: float = typer.Option(_SCAN["threshold_mm"], "--threshold-mm", help="Report the area deeper than this (mm)."),
    floor_mm: float = typer.Option(_SCAN["floor_mm"], "--floor-mm", help="A depressed area counts as a defect if deeper than this somewhere (mm)."),
    region_width_mm: float = typer.Option(_REGION.width_mm, "--region-width-mm", help="Face region: width of the frontal ellipse."),
    region_above_mm: float = typer.Option(_REGION.above_mm, "--region-above-mm", help="Face region: reach above pronasale."),
    region_below_mm: float = typer.Option(_REGION.below_mm, "--region-below-mm", help="Face region: reach below pronasale."),
    region_depth_mm: float = typer.Option(_REGION.depth_mm, "--region-depth-mm", help="Face region: reach behind pronasale."),
    region_hole_fill_mm: float = typer.Option(
        _REGION.hole_fill_radius_mm, "--region-hole-fill-mm",
        help="Close the scan's holes up to this radius (mm) before measuring; 0: leave every hole open."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<scan name>_hemiface]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    report_pdf: bool = typer.Option(False, "--report", help="Also write report.pdf: a one-page summary for the clinical chart."),
):
    """Measure the soft-tissue defect and hemiface volume discrepancy of one face scan.

    Writes measurements.json (with the defect per aesthetic zone), depth_map.ply,
    depth_map.png, zones.png and defect.stl (a closed solid, in mm, to print at
    1:1) into the output folder.
    """
    from ._outputs import check_writable
    from .scan import OUTPUT_NAMES, FaceRegion, analyze_scan

    out = out or Path.cwd() / f"{scan.stem}_hemiface"
    try:
        check_writable(out, (*OUTPUT_NAMES, REPORT_NAME) if report_pdf else OUTPUT_NAMES, overwrite=overwrite)
        region = FaceRegion(
            width_mm=region_width_mm, above_mm=region_above_mm, below_mm=region_below_mm, depth_mm=region_depth_mm,
            hole_fill_radius_mm=region_hole_fill_mm,
        )
        result = analyze_scan(
            scan, affected=affected.value, units=units.value, landmarks=landmarks,
            threshold_mm=threshold_mm, floor_mm=floor_mm, region=region, orient=orient.value,
            plane=plane, stable=stable,
        )
        result.save(out, overwrite=overwrite)
        if report_pdf:
            _write_report(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    how = " (chosen automatically: the side with the larger defect volume)" if affected == AffectedSide.auto else ""
    typer.echo(f"{scan.name}: affected side {result.affected_side}{how}")
    typer.echo(f"  defect volume            {result.defect_volume_mm3:10.0f} mm3 in {len(result.defects)} area(s)")
    typer.echo(f"  maximum depth            {result.max_depth_mm:10.2f} mm")
    typer.echo(f"  area deeper than {result.threshold_mm:g} mm   {result.area_deeper_than_threshold_mm2:10.0f} mm2")
    level = result.provenance["parameters"]["defect_area_level_mm"]
    typer.echo(f"  defect area (> {level:g} mm)".ljust(27) + f"{result.defect_area_mm2:10.0f} mm2")
    typer.echo(
        f"  volume discrepancy       {result.volumetric_discrepancy_mm3:10.0f} mm3 "
        f"({result.volumetric_discrepancy_percent:.2f} % of the unaffected hemiface)"
        f" +/- {result.volumetric_discrepancy_uncertainty_mm3:.0f} (1 SD)"
    )
    typer.echo(f"  defect volume 1 SD       {result.defect_volume_uncertainty_mm3:10.0f} mm3")
    typer.echo(f"  symmetry plane ({result.plane_method}) fit RMS {result.plane_fit_rms_mm:.2f} mm, "
               f"uncertainty {result.plane_uncertainty_deg:.3f} deg (1 SD)")
    if not result.plane_fit_converged:
        typer.echo("  warning: the symmetry plane fit did not converge; check the scan's orientation", err=True)
    typer.echo(f"results in {out}")


@scan_app.command("landmarks")
def scan_landmarks(
    scan: Path = typer.Argument(..., help="Face scan in any orientation: OBJ, PLY, STL, OFF or GLB.", dir_okay=False),
    units: Units = typer.Option(Units.mm, "--units", help="Units of the scan file."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<scan name>_landmarks]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Find the face, its landmarks and its canonical frame automatically.

    Writes landmarks.csv (name,x,y,z in the scan's frame and units; usable as
    --landmarks), frame.json (scan -> canonical rotation and translation,
    per-landmark confidence) and landmarks.png (front and profile views).
    """
    from ._outputs import check_writable
    from .scan import LANDMARK_OUTPUT_NAMES, detect_landmarks, load_scan, write_landmarks

    out = out or Path.cwd() / f"{scan.stem}_landmarks"
    try:
        check_writable(out, LANDMARK_OUTPUT_NAMES, overwrite=overwrite)
        surface = load_scan(scan, units=units.value)
        found = detect_landmarks(surface)
        write_landmarks(found, surface, out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    if found.low_confidence:
        typer.echo(f"{scan.name}: LOW CONFIDENCE: no face found in the renders; geometric fallback "
                   f"(nose-like protrusion and mirror plane): {len(found.points_mm)} landmark(s); check them", err=True)
    else:
        typer.echo(f"{scan.name}: face found (score {found.face_score:.2f}); {len(found.points_mm)} landmarks")
    for name, conf in found.confidence.items():
        typer.echo(f"  {name:20s} confidence {conf:4.2f}  (spread {found.spread_mm[name]:.2f} mm)")
    typer.echo(f"results in {out}")


@scan_app.command("compare")
def scan_compare(
    pre: Path = typer.Argument(..., help="Preoperative (baseline) scan.", dir_okay=False),
    post: Path = typer.Argument(..., help="Follow-up scan.", dir_okay=False),
    affected: AffectedSide = typer.Option(..., "--affected", help="Patient's affected side, or auto (PRE's larger defect)."),
    plan: Optional[Path] = typer.Option(None, "--plan", dir_okay=False, help="The defect.stl that `scan analyze` wrote for PRE."),
    stable: Optional[Path] = typer.Option(
        None, "--stable", dir_okay=False,
        help="Mesh (PRE's frame and units) of the areas to register on \\[default: forehead, nasal dorsum, unaffected side].",
    ),
    units: Units = typer.Option(Units.mm, "--units", help="Units of both scan files."),
    landmarks_pre: Optional[Path] = typer.Option(None, "--landmarks-pre", dir_okay=False, help="Landmark CSV for PRE."),
    landmarks_post: Optional[Path] = typer.Option(None, "--landmarks-post", dir_okay=False, help="Landmark CSV for POST."),
    orient: Orient = typer.Option(Orient.auto, "--orient", help=_ORIENT_HELP),
    plane: str = typer.Option(_COMPARE["plane"], "--plane", help="PRE's symmetry plane, shared by both visits. " + _PLANE_HELP),
    floor_mm: float = typer.Option(_COMPARE["floor_mm"], "--floor-mm", help=(
        "A depressed area counts as a defect if deeper than this somewhere (mm); gains count once they rise above "
        "the change map's noise.")),
    max_rms_mm: float = typer.Option(_COMPARE["max_registration_rms_mm"], "--max-registration-rms-mm", help="Refuse to report change above this registration RMS."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<pre>_vs_<post>_hemiface]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    report_pdf: bool = typer.Option(False, "--report", help="Also write report.pdf: a one-page summary for the clinical chart."),
):
    """Tissue gained between two visits, and the change in hemiface symmetry.

    Registers POST onto PRE on stable areas, then writes comparison.json,
    gain_map.ply, gain_map.png and before_after.png.
    """
    from ._outputs import check_writable
    from .scan import COMPARE_OUTPUT_NAMES, compare_scans

    out = out or Path.cwd() / f"{pre.stem}_vs_{post.stem}_hemiface"
    try:
        check_writable(out, (*COMPARE_OUTPUT_NAMES, REPORT_NAME) if report_pdf else COMPARE_OUTPUT_NAMES, overwrite=overwrite)
        result = compare_scans(
            pre, post, affected=affected.value, units=units.value, landmarks_pre=landmarks_pre,
            landmarks_post=landmarks_post, orient=orient.value, plan=plan, stable=stable, floor_mm=floor_mm,
            max_registration_rms_mm=max_rms_mm, plane=plane,
        )
        result.save(out, overwrite=overwrite)
        if report_pdf:
            _write_report(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    typer.echo(f"{pre.name} -> {post.name}: affected side {result.affected_side}")
    typer.echo(f"  registration RMS (stable areas)  {result.registration_rms_mm:8.2f} mm")
    typer.echo(f"  volume gained                    {result.gain.volume_mm3:8.0f} mm3 (max {result.gain.max_mm:.1f} mm; "
               f"+/- {result.volume_gain_uncertainty_mm3:.0f} mm3, 1 SD: registration "
               f"{result.volume_gain_registration_sd_mm3:.0f}, region edge {result.volume_gain_edge_sd_mm3:.0f})")
    typer.echo(f"  volume lost                      {result.loss.volume_mm3:8.0f} mm3")
    typer.echo(f"  discrepancy before / after       {result.discrepancy_pre_mm3:8.0f} / {result.discrepancy_post_mm3:.0f} mm3")
    typer.echo(f"  discrepancy change               {result.discrepancy_change_mm3:8.0f} mm3 ({result.discrepancy_change_percent:.1f} %)")
    typer.echo(f"  defect corrected                 {result.defect_corrected_percent:8.1f} %")
    typer.echo(f"  PRE's plane ({result.plane_method})         +/- {result.plane_uncertainty_deg:.3f} deg (1 SD); "
               f"discrepancy before +/- {result.discrepancy_pre_uncertainty_mm3:.0f} mm3")
    if result.plan is not None:
        typer.echo(f"  plan vs result: Dice {result.plan['plan_dice']:.2f}, mean thickness difference "
                   f"{result.plan['plan_thickness_difference_mean_mm']:.2f} mm")
    typer.echo(f"results in {out}")


@photo_app.command("analyze")
def photo_analyze(
    photo: Path = typer.Argument(..., help="Frontal photograph: JPEG, PNG or TIFF (EXIF orientation honoured).", dir_okay=False),
    affected: AffectedSide = typer.Option(..., "--affected", help="Patient's affected side, or auto (smaller hemiface)."),
    landmarks: Optional[Path] = typer.Option(
        None, "--landmarks", dir_okay=False,
        help="landmarks.json written by a previous run (edited or not) or an iBUG 68-point .pts; replaces the automatic landmarks.",
    ),
    midline: MidlineMethod = typer.Option(MidlineMethod(_PHOTO["midline"]), "--midline", help="Midline: pupils' perpendicular bisector, or fitted through midline points."),
    iris_mm: float = typer.Option(_PHOTO["iris_mm"], "--iris-mm", help="Horizontal iris diameter that sets the mm scale."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<photo name>_hemiface]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    report_pdf: bool = typer.Option(False, "--report", help="Also write report.pdf: a one-page summary for the clinical chart."),
):
    """Measure facial symmetry on one frontal photograph.

    Writes measurements.json, landmarks.json (editable; pass it back with
    --landmarks) and overlay.png into the output folder.
    """
    from ._outputs import check_writable
    from .photo import OUTPUT_NAMES, analyze_photo

    out = out or Path.cwd() / f"{photo.stem}_hemiface"
    try:
        check_writable(out, (*OUTPUT_NAMES, REPORT_NAME) if report_pdf else OUTPUT_NAMES, overwrite=overwrite)
        result = analyze_photo(
            photo, affected=affected.value, landmarks=landmarks, midline=midline.value, iris_mm=iris_mm
        )
        result.save(out, overwrite=overwrite)
        if report_pdf:
            _write_report(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    how = " (chosen automatically: the side with the smaller hemiface area)" if affected == AffectedSide.auto else ""
    typer.echo(f"{photo.name}: affected side {result.affected_side}{how}")
    fitted = result.symmetry_ratio_percent_fitted_midline
    typer.echo(
        f"  symmetry ratio           {result.symmetry_ratio_percent:8.1f} %  ({result.midline_method} midline; "
        f"pupils {result.symmetry_ratio_percent_pupils_midline:.1f} %"
        + (f", fitted {fitted:.1f} %)" if fitted is not None else ")")
    )
    if result.symmetry_ratio_pose_compensated_percent is not None:
        typer.echo(f"  pose-compensated ratio   {result.symmetry_ratio_pose_compensated_percent:8.1f} %  "
                   "(experimental: frontal view from the 3D face mesh)")
    levels = ", ".join(f"{k} {v:.1f}" if v is not None else f"{k} n/a" for k, v in result.contour_ratio_percent.items())
    typer.echo(f"  contour ratio (mean)     {result.contour_ratio_percent_mean:8.1f} %  ({levels})")
    if result.landmark_ratio_percent is not None:
        typer.echo(f"  landmark ratio           {result.landmark_ratio_percent:8.1f} %")
    pose = result.pose
    typer.echo(f"  pose                     roll {pose['roll_deg']:.1f}, yaw {pose['yaw_deg']:.1f}, pitch {pose['pitch_deg']:.1f} deg")
    if result.scale_mm_per_px is not None:
        typer.echo(f"  scale                    {result.scale_mm_per_px:8.4f} mm/px (iris {result.iris_mm:g} mm)")
    if result.flags:
        typer.echo(f"  flags                    {', '.join(result.flags)}")
    typer.echo(f"results in {out}")


@photo_app.command("compare")
def photo_compare(
    pre: Path = typer.Argument(..., help="Photo of the earlier visit.", dir_okay=False),
    post: Path = typer.Argument(..., help="Photo of the later visit.", dir_okay=False),
    affected: Side = typer.Option(..., "--affected", help="Patient's affected side (the same for both visits)."),
    pre_landmarks: Optional[Path] = typer.Option(None, "--landmarks-pre", dir_okay=False, help="Landmark file for PRE."),
    post_landmarks: Optional[Path] = typer.Option(None, "--landmarks-post", dir_okay=False, help="Landmark file for POST."),
    midline: MidlineMethod = typer.Option(MidlineMethod(_PHOTO_COMPARE["midline"]), "--midline", help="Midline for both visits."),
    iris_mm: float = typer.Option(_PHOTO_COMPARE["iris_mm"], "--iris-mm", help="Horizontal iris diameter that sets the mm scale."),
    max_pose_difference_deg: float = typer.Option(
        _PHOTO_COMPARE["max_pose_difference_deg"], "--max-pose-difference-deg",
        help="Flag the pair when head yaw, pitch or roll differs by more than this between the visits (degrees)."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<pre>_vs_<post>_hemiface]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Change in each symmetry ratio between two visits (post minus pre), and their head-pose agreement.

    Writes comparison.json (both visits' measurements and the changes) and
    side_by_side.png (both overlays) into the output folder.
    """
    from ._outputs import check_writable
    from .photo import COMPARE_OUTPUT_NAMES, compare_photos

    out = out or Path.cwd() / f"{pre.stem}_vs_{post.stem}_hemiface"
    try:
        check_writable(out, COMPARE_OUTPUT_NAMES, overwrite=overwrite)
        result = compare_photos(
            pre, post, affected=affected.value, pre_landmarks=pre_landmarks, post_landmarks=post_landmarks,
            midline=midline.value, iris_mm=iris_mm, max_pose_difference_deg=max_pose_difference_deg,
        )
        result.save(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    typer.echo(f"{pre.name} -> {post.name}: affected side {affected.value}, {midline.value} midline")
    for key in ("symmetry_ratio_percent", "symmetry_ratio_pose_compensated_percent", "contour_ratio_percent_mean",
                "landmark_ratio_percent"):
        a, b = result.pre.to_dict()[key], result.post.to_dict()[key]
        if a is not None and b is not None:
            typer.echo(f"  {key:40s} {a:7.1f} -> {b:7.1f}  ({b - a:+.1f} points)")
    pose = result.pose
    for k in ("yaw_deg", "pitch_deg", "roll_deg"):
        typer.echo(f"  pose {k:35s} {pose['pre'][k]:7.1f} -> {pose['post'][k]:7.1f}  ({pose['difference'][k]:+.1f} deg)")
    if pose["differs"]:
        typer.echo(f"  POSE DIFFERS between the visits by more than {pose['max_difference_deg']:g} deg: "
                   f"{', '.join(pose['flags'])}; the change in the 2D ratios includes the pose difference")
    typer.echo(f"results in {out}")


@datasets_app.command("list")
def datasets_list():
    """List the bundled sample scans."""
    from .datasets import SAMPLE_PHOTOS, SAMPLES, sample_path, sample_photo_path

    for name, (_, description) in SAMPLES.items():
        typer.echo(f"{name:10s} scan   {description}\n{'':17s} {sample_path(name)}")
    for name, (_, description) in SAMPLE_PHOTOS.items():
        typer.echo(f"{name:10s} photo  {description}\n{'':17s} {sample_photo_path(name)}")


class Pattern(str, enum.Enum):
    round = "round"
    multizone = "multizone"
    broad = "broad"
    midline = "midline"


@datasets_app.command("phantom")
def datasets_phantom(
    out: Path = typer.Argument(..., help="Mesh file to write (.ply, .obj or .stl); truth goes to <out>.truth.json.", dir_okay=False),
    base: str = typer.Option("template", "--base", help="Sample to carve (see `hemiface datasets list`)."),
    side: Side = typer.Option(Side.left, "--side", help="Patient's side of the defect."),
    pattern: Pattern = typer.Option(Pattern.round, "--pattern", help=(
        "round: one cheek dent (--radius-mm, --lateral-mm, --height-mm); multizone: malar, buccal, chin, temple "
        "and a paramedian forehead groove; broad: most of the hemiface, shallow; midline: paramedian groove, chin "
        "and lip.")),
    volume_mm3: Optional[float] = typer.Option(None, "--volume-mm3", help=(
        "Defect volume (default: 5000 round, 15000 multizone, 10600 broad, 2500 midline).")),
    radius_mm: float = typer.Option(30.0, "--radius-mm", help="Round defect radius."),
    lateral_mm: float = typer.Option(40.0, "--lateral-mm", help="Round defect centre: distance lateral of pronasale."),
    height_mm: float = typer.Option(-12.0, "--height-mm", help="Round defect centre: height relative to pronasale."),
    restored: Optional[float] = typer.Option(None, "--restored", help=(
        "Write the follow-up instead: this fraction of the defect restored (0.6 = 60%; 1.2 = 20% overcorrected).")),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
):
    """Carve a defect of known volume into a sample face (ground truth for validation)."""
    from .datasets import make_phantom

    try:
        if pattern is Pattern.round:
            phantom = make_phantom(base, side=side.value, volume_mm3=volume_mm3, radius_mm=radius_mm,
                                   centre_offset_mm=(lateral_mm, height_mm))
        else:
            phantom = make_phantom(base, side=side.value, volume_mm3=volume_mm3, pattern=pattern.value)
        if restored is not None:
            phantom = phantom.restored(restored)
        phantom.save(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    typer.echo(json.dumps(phantom.truth(), indent=2))
    typer.echo(f"wrote {out} and {out.name}.truth.json")


class Rounding(str, enum.Enum):
    half = "half"
    ceil = "ceil"
    floor = "floor"


def _parse_size(value: str, option: str) -> tuple[float, float]:
    try:
        w, h = (float(part) for part in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a size; write WIDTHxHEIGHT in mm, e.g. 50x60", param_hint=option) from None
    return w, h


_ANALYSIS_HELP = "Output folder of `hemiface scan analyze` (measurements.json, depth_map.ply)."


@plan_app.command("adm")
def plan_adm(
    analysis: Path = typer.Argument(..., help=_ANALYSIS_HELP),
    sheet_thickness_mm: float = typer.Option(..., "--sheet-thickness-mm", help="Thickness of one ADM sheet (mm)."),
    sheet_size_mm: str = typer.Option("x".join(f"{s:g}" for s in _ADM["sheet_size_mm"]), "--sheet-size-mm",
                                      help="Size of one sheet, WIDTHxHEIGHT in mm; each PDF page is one sheet at 1:1."),
    max_layers: Optional[int] = typer.Option(_ADM["max_layers"], "--max-layers", min=1, help="At most this many layers (the deepest part is then under-filled)."),
    rounding: Rounding = typer.Option(Rounding(_ADM["rounding"]), "--rounding", help=(
        "Layer k covers where the defect is deeper than (k-1/2)T (half: nearest), (k-1)T (ceil: never short) "
        "or kT (floor: never above).")),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<analysis>_adm]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """The stepped ADM composite: layers of the sheet thickness, flattened at 1:1 and laid out on sheets.

    Writes adm_plan.json, adm_templates.pdf and .svg (print at 100 %: the scale bar measures 50 mm),
    adm_composite.stl (the stacked layers, scan frame, to compare with defect.stl) and adm_layers.png.
    """
    from ._outputs import check_writable
    from .plan import ADM_OUTPUT_NAMES

    size = _parse_size(sheet_size_mm, "--sheet-size-mm")
    out = out or Path.cwd() / f"{analysis.name}_adm"
    try:
        check_writable(out, ADM_OUTPUT_NAMES, overwrite=overwrite)
        plan = adm_plan(analysis, sheet_thickness_mm=sheet_thickness_mm, sheet_size_mm=size, max_layers=max_layers,
                        rounding=rounding.value)
        plan.save(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    d = plan.to_dict()
    typer.echo(f"{analysis.name}: {d['layer_count']} layers of {plan.sheet_thickness_mm:g} mm ({plan.rounding}), "
               f"{d['piece_count']} pieces on {plan.sheets} sheet(s) of {size[0]:g} x {size[1]:g} mm")
    typer.echo(f"  composite volume  {plan.composite_volume_mm3:10.0f} mm3 (defect {plan.defect_volume_mm3:.0f} mm3, "
               f"{d['volume_difference_percent']:+.1f} %; bound +/- {plan.volume_bound.bound_mm3:.0f} mm3)")
    for layer in plan.layers:
        typer.echo(f"  layer {layer.k:2d}  deeper than {layer.covers_deeper_than_mm:5.2f} mm  {layer.area_mm2:8.0f} mm2  "
                   f"{', '.join(layer.piece_labels)}")
    worst = max((p.flat.distortion["length_error_mean_percent"] for p in plan.pieces), default=0.0)
    typer.echo(f"  flattening: length error up to {worst:.2f} % (mean per piece), see adm_plan.json")
    for warning in plan.warnings:
        typer.echo(f"  warning: {warning}", err=True)
    typer.echo(f"results in {out}")


@plan_app.command("fat")
def plan_fat(
    analysis: Path = typer.Argument(..., help=_ANALYSIS_HELP),
    retention: float = typer.Option(_FAT["retention"], "--retention", help="Fraction of grafted fat that survives, in (0, 1]."),
    overcorrection: float = typer.Option(_FAT["overcorrection"], "--overcorrection", help="Planned excess over the deficit (0.2 = 20 %)."),
    max_per_session_ml: Optional[float] = typer.Option(_FAT["max_per_session_ml"], "--max-per-session-ml",
                                                       help="Most fat injected in one session, all zones together (ml)."),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: ./<analysis>_fat]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """The fat-graft plan per zone: deficit x (1 + overcorrection) / retention, and the sessions it takes.

    Writes fat_plan.json and fat_plan.png (a bar chart per zone).
    """
    from ._outputs import check_writable
    from .plan import FAT_OUTPUT_NAMES

    out = out or Path.cwd() / f"{analysis.name}_fat"
    try:
        check_writable(out, FAT_OUTPUT_NAMES, overwrite=overwrite)
        plan = fat_plan(analysis, retention=retention, overcorrection=overcorrection, max_per_session_ml=max_per_session_ml)
        plan.save(out, overwrite=overwrite)
    except HemifaceError as exc:
        _fail(exc)
    typer.echo(f"{analysis.name}: retention {plan.retention:g}, overcorrection {plan.overcorrection:g}; zones from "
               f"{plan.zones_source.split(':')[0]}")
    for z in plan.zones:
        typer.echo(f"  {z.zone:20s} deficit {z.deficit_ml:7.2f} ml  inject {z.inject_ml:7.2f} ml "
                   f"({z.inject_mm3:.0f} mm3)  {z.per_session_ml:.2f} ml per session")
    typer.echo(f"  total inject {plan.total_inject_mm3 / 1000:.2f} ml in {plan.sessions} session(s)")
    typer.echo(f"results in {out}")


def _parse_day(value: Optional[str], option: str):
    import datetime as _dt

    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD", param_hint=option) from None


@study_app.command("init")
def study_init(
    folder: Path = typer.Argument(..., help="New (or empty) study folder.", file_okay=False),
    name: str = typer.Option("hemiface study", "--name", help="Short title of the study."),
    inclusion_from: Optional[str] = typer.Option(
        None, "--from", help="Include patients whose initial surgery is on or after this date (YYYY-MM-DD) (default: open)."
    ),
    inclusion_to: Optional[str] = typer.Option(
        None, "--to", help="... and on or before this date (YYYY-MM-DD) (default: open)."
    ),
    baseline_window_days: int = typer.Option(_RULES.baseline_window_days, "--baseline-window-days", min=0, help="Baseline: at most this many days before the initial surgery."),
    followup_months: int = typer.Option(_RULES.followup_months, "--followup-months", min=0, help="Follow-up: at or after this many calendar months after it."),
    technique: Optional[list[str]] = typer.Option(
        None, "--technique", help="A surgical technique spreadsheets may name; repeat for each (default: fat_grafting, free_flap, adm)."
    ),
    database_url: Optional[str] = typer.Option(
        None, "--database-url", help="SQLAlchemy URL (default: sqlite:///study.sqlite in the folder)."
    ),
):
    """Create a study: the folder, its settings (study.toml) and an empty database."""
    from .study import DEFAULT_TECHNIQUES, init_study

    start = _parse_day(inclusion_from, "--from")
    end = _parse_day(inclusion_to, "--to")
    try:
        study = init_study(
            folder, name=name, inclusion_from=start, inclusion_to=end, baseline_window_days=baseline_window_days,
            followup_months=followup_months, techniques=tuple(technique) if technique else DEFAULT_TECHNIQUES,
            database_url=database_url,
        )
        study.close()
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"created study {study.path} (settings: {study.path / 'study.toml'})")


@study_app.command("import")
def study_import(
    folder: Path = typer.Argument(..., help="Study folder (made by `hemiface study init`).", file_okay=False),
    files: list[Path] = typer.Argument(..., help="CSV files or XLSX workbooks: per-table sheets and/or REDCap exports.", dir_okay=False),
    user: Optional[str] = typer.Option(None, "--user", help="Who imports, for the audit table (default: login name)."),
    deidentify: bool = typer.Option(
        False, "--deidentify",
        help="Copy media into the study's media/ folder without metadata (EXIF, GPS, headers) and with pseudonymous names.",
    ),
):
    """Validate spreadsheets and import them, all or nothing.

    Every problem is listed with its file, row and column; if there is any,
    nothing is imported. Rows already in the study are left unchanged, so
    importing the same files again changes nothing.
    """
    from .study import open_study

    try:
        with open_study(folder) as study:
            summary = study.import_files(files, user=user, deidentify=deidentify)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"imported {summary}")


@study_app.command("upgrade")
def study_upgrade(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    user: Optional[str] = typer.Option(None, "--user", help="Who upgrades, for the audit table (default: login name)."),
    no_backup: bool = typer.Option(False, "--no-backup", help="Do not back the database up first (you have just done "
                                   "it yourself, or pg_dump is not installed); the audit table records it."),
):
    """Bring a study made by an older hemiface to this version's database schema.

    The database is backed up into backups/ in the study folder first (SQLite: a checked
    copy; PostgreSQL: pg_dump, restore with pg_restore), then upgraded in one transaction.
    The upgrade is recorded in the audit table; running it again changes nothing.
    """
    from .study import upgrade_study

    try:
        result = upgrade_study(folder, user=user, backup=not no_backup)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(str(result))


@study_app.command("status")
def study_status(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    out: Optional[Path] = typer.Option(
        None, "--out", dir_okay=False, help="Also write the per-patient table as CSV (and the rules beside it, <out>.rules.json)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
):
    """Apply the visit rules: study flow counts and every excluded patient with the reason."""
    from .study import EXCLUSION_REASONS, eligibility, flow_counts, open_study

    try:
        with open_study(folder) as study:
            table = eligibility(study)
            rules = study.settings
        if out is not None:
            from ._outputs import staged_outputs

            names = [out.name + ".rules.json", out.name]
            with staged_outputs(out.parent, names, overwrite=overwrite) as stage:
                (stage / names[0]).write_text(json.dumps(table.attrs["rules"], indent=2) + "\n")
                table.to_csv(stage / out.name, index=False)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    window = f"{rules.inclusion_from or 'open'} to {rules.inclusion_to or 'open'}"
    typer.echo(f"rules: initial surgery {window}; baseline: last preoperative visit 0-{rules.baseline_window_days} "
               f"days before it; follow-up: first follow-up visit >= {rules.followup_months} calendar months after it")
    for key, n in flow_counts(table).items():
        typer.echo(f"  {key.replace('_', ' '):22s} {n:5d}")
    excluded = table[~table["eligible"]]
    if len(excluded):
        typer.echo("excluded:")
        for row in excluded.itertuples():
            typer.echo(f"  {row.patient_id:12s} {row.exclusion_reason}: {EXCLUSION_REASONS[row.exclusion_reason]}")
    if out is not None:
        typer.echo(f"wrote {out} and {out.name}.rules.json")


@study_app.command("run")
def study_run(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", min=1,
        help="Analyses to run in parallel (processes) on this machine, whatever study.toml says "
             "[default: \\[run] jobs in study.toml, else 1]."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also redo analyses that failed before."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", metavar="ADDRESS",
        help="Run the analyses on a Dask cluster: its scheduler's address (tcp://HOST:PORT), or local:N for N "
             "worker processes on this machine. The workers need the study folder and its media at the same path "
             "(shared storage) and the same hemiface; only this process writes to the database "
             "[default: \\[run] scheduler in study.toml, else this machine]."),
):
    """Analyse every photo and scan of the eligible visits (photo analyze, scan analyze, scan compare).

    Work already done with the same inputs (by SHA-256) and parameters is skipped;
    an interrupted run can simply be started again. Results go to the database and
    to results/ in the study folder.

    Where the analyses run can be set in study.toml, \\[run] jobs = N or
    \\[run] scheduler = "tcp://HOST:PORT"; --jobs or --scheduler override it (--jobs 1
    runs in this process). Each result records the jobs and scheduler that computed it.
    """
    from .study import open_study, run_study

    try:
        with open_study(folder) as study:
            summary = run_study(study, jobs=jobs, retry_failed=retry_failed, scheduler=scheduler)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"study run: {summary}")
    for f in summary.failures:
        typer.echo(f"  failed: {f['patient_id']} {f['visit_date']} {f['analysis']}: {f['message']}")
    for f in summary.standing:
        typer.echo(f"  failed earlier: {f['patient_id']} {f['visit_date']} {f['analysis']}: {f['message']}")
    for f in summary.environment:
        typer.echo(f"  not done: {f['patient_id']} {f['visit_date']} {f['analysis']}: {f['message']}")
    if summary.failures or summary.standing:
        typer.echo("failed analyses are recorded; fix the cause, then run again with --retry-failed "
                   "(missing or changed files: restore them or import the new ones)")
    if summary.environment:
        typer.echo("stopped by the machine (nothing of it was recorded): free space or fix the folder, then run again")
    if not summary.all_done:
        raise typer.Exit(code=1)


@study_app.command("settings")
def study_settings(folder: Path = typer.Argument(..., help="Study folder.", file_okay=False)):
    """List every analysis setting the study runs with, its value and where it comes from.

    Set any of them in study.toml, for example [analysis.scan_analyze] threshold_mm = 3.0;
    changing one re-runs exactly the analyses it belongs to at the next `study run`.
    """
    from .study import open_study
    from .study._analyses import settings_table

    try:
        with open_study(folder) as study:
            rows = settings_table(study.settings.analysis)
    except HemifaceError as exc:
        _fail(exc)
    for row in rows:
        typer.echo(f"{row['analysis']:14s} {row['setting']:28s} {json.dumps(row['value']):>12s}  ({row['source']})")


@study_app.command("endpoints")
def study_endpoints(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    out: Optional[Path] = typer.Option(
        None, "--out", dir_okay=False,
        help="FILE.csv (with FILE_flow.csv, FILE_excluded.csv, FILE_rules.json beside it) or FILE.xlsx \\[default: <study>/endpoints.csv].",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
):
    """The endpoint table (one row per eligible patient) and the study flow counts."""
    from .study import endpoint_table, open_study, write_endpoints

    try:
        with open_study(folder) as study:
            table = endpoint_table(study)
            out = out or study.path / "endpoints.csv"
        written = write_endpoints(table, out, overwrite=overwrite)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    flow = table.attrs["flow"]
    typer.echo("study flow:")
    for key, n in flow.items():
        if isinstance(n, int):
            typer.echo(f"  {key.replace('_', ' '):22s} {n:5d}")
    for reason, n in flow["excluded"].items():
        typer.echo(f"  excluded: {reason.replace('_', ' '):12s} {n:5d}")
    n2d, n3d = table["symmetry_ratio_change"].notna().sum(), table["discrepancy_change_mm3"].notna().sum()
    typer.echo(f"{len(table)} eligible patients: 2D change for {n2d}, 3D change for {n3d}")
    for row in table.itertuples():
        for what, reason in (("2D", row.missing_2d_reason), ("3D", row.missing_3d_reason)):
            if isinstance(reason, str) and reason and reason != "no scans":
                typer.echo(f"  {row.patient_id}: {what} missing: {reason}")
    typer.echo("wrote " + ", ".join(str(p) for p in written))


@study_app.command("analyze")
def study_analyze(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: <study>/analysis]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """The statistical analysis plan on the endpoint table: CSV tables and one XLSX workbook.

    Within-group change (Shapiro-Wilk, then paired t or Wilcoxon), between-technique
    comparison (Welch t / Mann-Whitney U / Kruskal-Wallis, Hodges-Lehmann shift),
    ANCOVA as sensitivity analysis, complications (exact CIs, Fisher), Table 1,
    who is missing from what and why, and each completed round of the blinded rating
    panel (scores by technique, rank tests, agreement between the raters: rating_*).
    """
    from ._outputs import check_writable, staged_outputs
    from .stats import TABLE_COLUMNS, write_csv, write_workbook
    from .study import RATING_TABLES, open_study, study_analysis

    try:
        with open_study(folder) as study:
            out = out or study.path / "analysis"
            check_writable(out, [f"{n}.csv" for n in (*TABLE_COLUMNS, *RATING_TABLES)] + ["analysis.xlsx"],
                           overwrite=overwrite)
            endpoints, tables, ratings = study_analysis(study)
        names = [f"{n}.csv" for n in tables] + ["analysis.xlsx"]
        with staged_outputs(out, names, overwrite=overwrite) as stage:  # every table or none
            write_csv(tables, stage, overwrite=True)
            write_workbook(tables, stage / "analysis.xlsx", overwrite=True)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"{len(endpoints)} eligible patients; {endpoints['symmetry_ratio_change'].notna().sum()} with the 2D change, "
               f"{endpoints['discrepancy_change_mm3'].notna().sum()} with the 3D change")
    if endpoints.empty:
        typer.echo("no eligible patient yet: the tables are empty (see `hemiface study status` for who is "
                   "excluded and why, and `hemiface study import` to add patients)")
    within = tables["within_group"]
    for row in within[within["selected"].astype(bool)].itertuples():
        typer.echo(f"  {row.endpoint:34s} {row.group:14s} {row.test:9s} n={row.n:<3d} "
                   f"change {row.estimate:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]  p={row.p_value:.3g}")
    for row in tables["outcome_descriptives"].itertuples():  # graft retention, achieved share of the plan
        typer.echo(f"  {row.outcome:34s} {row.group:14s} n={row.n:<3d} mean {row.mean:.1f} % (SD {row.sd:.1f}), "
                   f"median {row.median:.1f} %")
    for round_ in ratings.rounds:
        agreement = tables["rating_agreement"]
        icc = agreement[(agreement.round_id == round_["round_id"]) & (agreement.form == "ICC(2,1)")]
        said = (f"ICC(2,1) {icc.estimate.iloc[0]:.2f} [{icc.ci_low.iloc[0]:.2f}, {icc.ci_high.iloc[0]:.2f}]"
                if len(icc) and icc.estimate.notna().iloc[0] else round_["agreement_note"])
        typer.echo(f"  rating round {round_['name']!r}: {round_['n_patients']} patients, {round_['n_raters']} raters; "
                   f"{said}")
    typer.echo(f"tables in {out} (CSV, and analysis.xlsx for a statistician)")


@study_app.command("report")
def study_report_cmd(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False, help="Output folder \\[default: <study>/report]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
    formats: Optional[list[ReportFormat]] = typer.Option(
        None, "--format", help="html, pdf or docx (Word, for the manuscript); repeat for several \\[default: html and pdf]."),
):
    """The study report: one self-contained HTML file and the same as PDF (or a Word document).

    Study flow diagram, Table 1, endpoint tables with tests and effect sizes, figures,
    complications, the blinded rating panel's results, methods written from the actual
    settings, and a page per patient (photo overlays, depth and gain maps; not in the Word
    document). Pseudonymous ids only.
    """
    from .study import open_study

    chosen = [f.value for f in formats] if formats else _REPORT_DEFAULT
    try:
        with open_study(folder) as study:
            written = write_study_report(study, out or study.path / "report", overwrite=overwrite, formats=chosen)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo("wrote " + " and ".join(str(p) for p in written))


def _visit_date(text: str):
    """A visit's date given on the command line (a library error, one line, when it is not a date)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HemifaceError(f"visit date {text!r} is not a date like 2021-03-31") from None


@study_app.command("correct")
def study_correct(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    patient: str = typer.Argument(..., help="Pseudonymous patient id."),
    visit_date: str = typer.Argument(..., help="Date of the visit the photo belongs to (YYYY-MM-DD)."),
    landmarks: Path = typer.Argument(..., help="Corrected landmarks.json (or iBUG .pts).", exists=True, dir_okay=False),
    reason: str = typer.Option(..., "--reason", help="Why the landmarks were corrected (kept in the audit table)."),
    photo: Optional[str] = typer.Option(None, "--photo", help="The photo's file name, when the visit has several."),
    user: Optional[str] = typer.Option(None, "--user", help="Who corrects \\[default: your login name]."),
):
    """Replace a photo's automatic landmarks with a person's corrected file and recompute its analysis.

    The photo is never modified; the correction and the ratio before and after are recorded in the audit table.
    """
    from .study import correct_landmarks, open_study

    try:
        when = _visit_date(visit_date)
        with open_study(folder) as study:
            done = correct_landmarks(study, patient, when, landmarks, reason=reason, photo=photo, user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    before, after = done["symmetry_ratio_before_percent"], done["symmetry_ratio_after_percent"]
    if done["status"] != "ok":
        typer.echo(f"correction recorded, but the analysis failed: {done['message']}", err=True)
        raise typer.Exit(code=1)
    was = f"{before:.1f} %" if before is not None else "not analysed before"
    typer.echo(f"{patient} {when}: symmetry ratio {was} -> {after:.1f} % (correction recorded in the audit table)")


@study_app.command("scan-settings")
def study_scan_settings(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    patient: str = typer.Argument(..., help="Pseudonymous patient id."),
    visit_date: str = typer.Argument(..., help="Date of the visit the scan belongs to (YYYY-MM-DD)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit table)."),
    plane: str = typer.Option("mirror", "--plane", help="mirror, landmarks, or a JSON file {\"normal\": [x, y, z], "
                              "\"point\": [x, y, z]} in the scan's frame and units."),
    stable: Optional[Path] = typer.Option(None, "--stable", exists=True, dir_okay=False,
                                          help="The unaffected areas of both sides, for the mirror plane: the scan's "
                                               "vertex indices (.npy of indices or a boolean mask, or a text file of "
                                               "whole numbers)."),
    scan: Optional[str] = typer.Option(None, "--scan", help="The scan's file name, when the visit has several."),
    user: Optional[str] = typer.Option(None, "--user", help="Who sets it \\[default: your login name]."),
):
    """Set a scan's symmetry plane or painted stable area (as the app's 3D check does); `study run` recomputes it.

    The scan is never modified; the setting is recorded in the audit table. `--plane mirror` without
    `--stable` returns the scan to the automatic plane.
    """
    from .study import open_study, set_scan_settings

    try:
        when = _visit_date(visit_date)
        with open_study(folder) as study:
            done = set_scan_settings(study, patient, when, reason=reason, plane=plane, stable=stable, scan=scan,
                                     user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    plane_text = done["plane"] if isinstance(done["plane"], str) else "set by hand"
    painted = f", stable area of {done['stable_vertices']:,} vertices" if done["stable_vertices"] else ""
    redo = ", ".join(done["redo"]) or "nothing (already analysed with this setting)"
    typer.echo(f"{patient} {when}: plane {plane_text}{painted} (version {done['version']}, recorded in the audit "
               f"table); `hemiface study run` recomputes: {redo}")


rating_app = typer.Typer(help="The blinded rating panel: rounds, raters' links, progress and agreement.",
                         no_args_is_help=True)
study_app.add_typer(rating_app, name="rating")


def _print_links(invites) -> None:
    typer.echo("raters' personal links (append to the address `hemiface app` prints; shown only now):")
    for invite in invites:
        typer.echo(f"  {invite.name}: {invite.path}")


@rating_app.command("create")
def rating_create(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    name: str = typer.Option(..., "--name", help="The round's name (never shown to raters)."),
    scale: str = typer.Option(..., "--scale", help="comparison_5, improvement_5, improvement_4 or symmetry_5."),
    rater: list[str] = typer.Option(..., "--rater", help="A rater's name (repeat for each rater)."),
    patient: Optional[list[str]] = typer.Option(None, "--patient", help="A patient to include (repeat) \\[default: every "
                                                "eligible patient with photos at baseline and follow-up]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="The round's seed (recorded) \\[default: random]."),
    user: Optional[str] = typer.Option(None, "--user", help="Who creates the round \\[default: your login name]."),
):
    """Create a rating round and print each rater's personal link (shown only now)."""
    from .study import create_round, open_study

    try:
        with open_study(folder) as study:
            done = create_round(study, name, scale=scale, raters=rater, patients=patient or None, seed=seed, user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"round {done.round_id} ({done.name}): {done.n_items} items on {done.scale}, seed {done.seed}")
    _print_links(done.invites)


@rating_app.command("invite")
def rating_invite(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    round_id: int = typer.Argument(..., help="The round's number (`study rating status`)."),
    rater: list[str] = typer.Option(..., "--rater", help="A rater's name (repeat for each rater)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who invites \\[default: your login name]."),
):
    """Invite more raters to a round and print their personal links (shown only now)."""
    from .study import invite_raters, open_study

    try:
        with open_study(folder) as study:
            invites = invite_raters(study, round_id, rater, user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    _print_links(invites)


@rating_app.command("close")
def rating_close(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    round_id: int = typer.Argument(..., help="The round's number (`study rating status`)."),
    reason: str = typer.Option(..., "--reason", help="Why the round ends (kept in the audit table)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who closes it \\[default: your login name]."),
):
    """Close a round: no more ratings; the raters' links say the round is closed; nothing is deleted.

    Its results use the raters who had submitted; ratings never submitted stay recorded, not analysed.
    """
    from .study import close_round, open_study

    try:
        with open_study(folder) as study:
            done = close_round(study, round_id, reason=reason, user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    typer.echo(f"round {round_id} closed {done['closed_utc']}: the ratings of {done['n_submitted']} rater(s) who "
               f"submitted count; {done['n_unsubmitted']} had not submitted (their ratings are kept, not analysed)")


@rating_app.command("revoke")
def rating_revoke(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    round_id: int = typer.Argument(..., help="The round's number (`study rating status`)."),
    rater: str = typer.Option(..., "--rater", help="The rater's name, or number (`study rating status ROUND`)."),
    reason: str = typer.Option(..., "--reason", help="Why the link is revoked (kept in the audit table)."),
    user: Optional[str] = typer.Option(None, "--user", help="Who revokes it \\[default: your login name]."),
):
    """Revoke one rater's personal link at once; their ratings stay recorded but leave the analysis."""
    from .study import open_study, revoke_rater, round_progress

    try:
        with open_study(folder) as study:  # a number is the rater's, unless a rater bears it as their name
            names = {r["name"].casefold() for r in round_progress(study, round_id)["raters"]}
            key = int(rater) if rater.isdigit() and rater.casefold() not in names else rater
            done = revoke_rater(study, round_id, key, reason=reason, user=user)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    state = "submitted" if done["submitted"] else "not submitted"
    typer.echo(f"round {round_id}: {done['name']}'s link revoked {done['revoked_utc']}; their {done['n_rated']} "
               f"rating(s) ({state}) are kept and left out of the analysis")


@rating_app.command("status")
def rating_status(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    round_id: Optional[int] = typer.Argument(None, help="A round's number: its progress, results and agreement."),
):
    """List the rounds, or show one round's progress and the agreement between the raters who submitted."""
    from .study import list_rounds, open_study, round_results

    try:
        with open_study(folder) as study:
            if round_id is None:
                rounds = list_rounds(study)
                for r in rounds:
                    revoked = f", {r['n_revoked']} link(s) revoked" if r["n_revoked"] else ""
                typer.echo(f"{r['round_id']:4d}  {r['name']}  ({r['scale']}, {r['n_items']} items): "
                           f"{r['n_submitted']} of {r['n_raters'] - r['n_revoked']} raters submitted{revoked}"
                           + (f"; closed {r['closed_utc']}" if r["closed_utc"] else ""))
                if not rounds:
                    typer.echo("no rating round yet (`hemiface study rating create`)")
                return
            res = round_results(study, round_id)
    except _STUDY_ERRORS as exc:
        _fail(exc)
    p = res.progress
    typer.echo(f"round {p['round_id']} ({p['name']}), {p['scale']['name']}: {p['n_items']} items, seed {p['seed']}")
    if p["closed_utc"]:
        typer.echo(f"closed {p['closed_utc']} by {p['closed_by']}: {p['close_reason']}")
    for r in p["raters"]:
        revoked = (f"; link revoked {r['revoked_utc']} by {r['revoked_by']}: {r['revoke_reason']} "
                   "(ratings kept, not analysed)" if r["revoked_utc"] else "")
        typer.echo(f"  {r['rater_id']} {r['name']}: {r['n_rated']}/{r['n_items']} rated, "
                   + (f"submitted {r['submitted_utc']}" if r["submitted_utc"] else "not submitted") + revoked)
    typer.echo(f"agreement: {res.agreement_note}")
    for a in res.agreement.itertuples():
        bounds = [f"{v:.3f}" if v == v else "undefined" for v in (a.ci_low, a.ci_high)]
        ci = f"95% CI {bounds[0]} to {bounds[1]}" if a.ci_low == a.ci_low or a.ci_high == a.ci_high else "no CI"
        why = "; ".join(part for part in a.method_note.split("; ") if "undefined" in part or "no interval" in part
                        or "capped" in part)
        typer.echo(f"  {a.form:10s} {a.estimate:7.3f}  {ci}  ({a.description})" + (f"  [{why}]" if why else ""))


@app.command("demo")
def demo(
    folder: Path = typer.Argument(Path("demo_output/cohort"), help="Folder for the demo study and its report.", file_okay=False),
    patients: int = typer.Option(60, "--patients", min=4, help="Patients in the synthetic cohort."),
    scans: int = typer.Option(20, "--scans", min=0, help="Patients of them with 3D scans."),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="Analyses to run in parallel."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo in FOLDER."),
):
    """The whole pipeline on a synthetic cohort made from the bundled real faces.

    Simulated atrophy and treatment of known size; builds the study, imports it, runs every
    analysis, writes the endpoint table, the statistics and the report (HTML and PDF), and
    checks the measured changes against the simulation's truth.
    """
    from ._demo import run_demo

    try:
        result = run_demo(folder, n_patients=patients, n_with_scans=scans, jobs=jobs, overwrite=overwrite,
                          step=lambda message: typer.echo(f"- {message}"))
    except HemifaceError as exc:
        _fail(exc)
    a, s = result.agreement, result.seconds
    typer.echo(f"  {result.run_summary}")
    typer.echo(f"measured vs simulated truth: 2D ratio change within {a['ratio_change_points_max']:.2f} points "
               f"(mean {a['ratio_change_points_mean']:.2f}, {a['patients_2d']} patients); 3D volume gained within "
               f"{a['volume_gain_percent_max']:.1f} % (mean {a['volume_gain_percent_mean']:.1f} %, {a['patients_3d']} patients)")
    typer.echo(f"took {s['total']:.0f} s (cohort {s['generate']:.0f} s, analyses {s['run']:.0f} s, "
               f"report {s['report']:.0f} s)")
    typer.echo(f"report:    {result.report_html}")
    typer.echo(f"           {result.report_pdf}")
    typer.echo(f"endpoints: {result.endpoints_csv}")
    typer.echo(f"analysis:  {result.analysis_dir} (CSV tables, analysis.xlsx)")
    typer.echo(f"study:     {result.study} (open it with any hemiface study command)")


@app.command("app")
def app_command(
    folder: Path = typer.Argument(..., help="Study folder.", file_okay=False),
    port: int = typer.Option(_APP["port"], "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    host: str = typer.Option(_APP["host"], "--host", help="Address to listen on. Anything but 127.0.0.1 / localhost "
                             "makes the app reachable from other computers and requires the access token printed at start."),
    open_browser: bool = typer.Option(False, "--open", help="Open the address in the default web browser."),
):
    """The study in a browser: overview, patient pages, landmark correction, `study run` with progress.

    Serves on this computer only (127.0.0.1) unless --host says otherwise; then every visitor needs the
    access token printed once at start (the address with ?token=...). Stop with Ctrl+C.
    """
    from . import app as web

    try:
        server = web.make_server(folder, host=host, port=port, token=None if web.is_loopback(host) else web.new_token())
    except HemifaceError as exc:
        _fail(exc)
    typer.echo(f"hemiface app: serving {folder} at {server.address}")
    if server.token:
        typer.echo("reachable from other computers: give this address, with its access token, only to your team:")
        typer.echo(f"  {server.url}")
    typer.echo("stop with Ctrl+C")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
