"""`hemiface demo`: the whole pipeline on a synthetic cohort built from the bundled real faces.

Builds the synthetic study (simulated atrophy and treatment of known size on real
photos and scans), creates a study, imports it, runs every analysis, writes the
endpoint table, the statistics and the report, and checks the endpoint table
against the simulation's truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import logger
from ._errors import OutputExistsError


@dataclass
class DemoResult:
    """Where the demo wrote what, how long each step took (s), and how the endpoints compare with the truth."""

    folder: Path
    study: Path
    report_html: Path
    report_pdf: Path
    endpoints_csv: Path
    analysis_dir: Path
    seconds: dict = field(default_factory=dict)
    agreement: dict = field(default_factory=dict)
    run_summary: str = ""


def agreement_with_truth(endpoints, truth) -> dict:
    """Largest differences between measured endpoints and the simulation's truth (eligible patients).

    ``ratio_change_points``: 2D symmetry-ratio change vs the simulated change;
    ``volume_gain_percent``: 3D volume gained vs the volume restored (percent of it);
    ``retention_percent``: graft retention vs the simulated one (percent of it).
    """
    import numpy as np

    m = endpoints.merge(truth, on="patient_id", suffixes=("", "_truth"))
    ratio = (m["symmetry_ratio_change"] - m["expected_ratio_change_points"]).abs().dropna()
    gain = (100 * (m["volume_gain_mm3"] - m["volume_restored_mm3"]) / m["volume_restored_mm3"]).abs().dropna()
    retention = (100 * (m["graft_retention_percent"] - m["expected_retention_percent"])
                 / m["expected_retention_percent"]).abs().dropna()
    return {
        "patients_2d": int(len(ratio)),
        "ratio_change_points_max": float(ratio.max()) if len(ratio) else float("nan"),
        "ratio_change_points_mean": float(ratio.mean()) if len(ratio) else float("nan"),
        "patients_3d": int(len(gain)),
        "volume_gain_percent_max": float(gain.max()) if len(gain) else float("nan"),
        "volume_gain_percent_mean": float(gain.mean()) if len(gain) else float("nan"),
        "patients_retention": int(len(retention)),
        "retention_percent_max": float(retention.max()) if len(retention) else float("nan"),
        "all_finite": bool(np.isfinite(ratio).all() and np.isfinite(gain).all()),
    }


def run_demo(folder, *, n_patients: int = 60, n_with_scans: int = 20, jobs: int = 2, seed: int = 0,
             overwrite: bool = False, step=None) -> DemoResult:
    """Run the whole pipeline into ``folder`` (see the module docstring).

    ``step`` is called with a short message before each step (the command line prints it).
    """
    import shutil

    from .datasets import read_synthetic_truth, synthetic_study
    from .stats import analyze_endpoints, write_csv, write_workbook
    from .study import endpoint_table, init_study, run_study, write_endpoints, write_study_report

    say = step or (lambda message: logger.info("%s", message))
    folder = Path(folder).absolute()
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{folder}: the folder is not empty; pass --overwrite to replace the demo in it")
        if not (folder / "study" / "study.toml").exists() and not (folder / "sheets").exists():
            raise OutputExistsError(f"{folder}: not a hemiface demo folder; refusing to delete it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seconds = {}

    t = time.perf_counter()
    say(f"building a synthetic cohort of {n_patients} patients ({n_with_scans} with 3D scans) from the bundled faces")
    import logging

    log = logging.getLogger("hemiface")
    level = log.level
    log.setLevel(logging.ERROR)  # the base photos' pose notes are not the cohort's
    try:
        synth = synthetic_study(folder / "sheets", n_patients=n_patients, n_with_scans=n_with_scans, seed=seed)
    finally:
        log.setLevel(level)
    seconds["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    say("creating the study and importing the spreadsheets")
    with init_study(folder / "study", name="hemiface demo study (synthetic)", **synth.study_settings()) as study:
        study.import_files(synth.spreadsheets, user="hemiface-demo")
        seconds["import"] = time.perf_counter() - t

        t = time.perf_counter()
        say(f"analysing every photo and scan ({jobs} in parallel)")
        summary = run_study(study, jobs=jobs)
        seconds["run"] = time.perf_counter() - t

        t = time.perf_counter()
        say("endpoint table, statistics and report")
        endpoints = endpoint_table(study)
        write_endpoints(endpoints, study.path / "endpoints.csv")
        tables = analyze_endpoints(endpoints)
        write_csv(tables, study.path / "analysis")
        write_workbook(tables, study.path / "analysis" / "analysis.xlsx")
        html, pdf = write_study_report(study, study.path / "report")
        seconds["report"] = time.perf_counter() - t
    agreement = agreement_with_truth(endpoints, read_synthetic_truth(synth.truth_path))
    seconds["total"] = sum(seconds.values())
    return DemoResult(folder=folder, study=folder / "study", report_html=html, report_pdf=pdf,
                      endpoints_csv=folder / "study" / "endpoints.csv", analysis_dir=folder / "study" / "analysis",
                      seconds=seconds, agreement=agreement, run_summary=str(summary))
