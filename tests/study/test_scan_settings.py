"""`study scan-settings`: a person's symmetry plane or painted stable area for one scan, and what it changes.

No analysis runs here (tests/app/test_scan3d.py runs them): the plan says which analyses a setting
changes (their identity: inputs and parameters), and that is checked against what must change by
hand: a baseline scan's setting changes its own scan_analyze and the comparison measured in its
plane, a follow-up scan's setting only its own analysis.
"""

import datetime as dt
import json
import shutil

import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from hemiface import datasets
from hemiface.cli import app as cli
from hemiface.study import (
    StaleEditError,
    StudyError,
    current_scan_settings,
    init_study,
    plan_jobs,
    set_scan_settings,
)

PRE, POST = dt.date(2021, 2, 15), dt.date(2021, 9, 15)


@pytest.fixture
def scans(tmp_path):
    """A study with one patient's scans at baseline and follow-up (the template; the follow-up's bytes differ)."""
    sheets = tmp_path / "sheets"
    (sheets / "media").mkdir(parents=True)
    template = datasets.sample_path("template")
    shutil.copy(template, sheets / "media" / "pre.obj")
    (sheets / "media" / "post.obj").write_bytes(template.read_bytes() + b"# follow-up\n")
    files = {
        "patients.csv": "patient_id,sex,birth_year,affected_side\nP01,female,1990,left\n",
        "surgeries.csv": "patient_id,surgery_date,technique,is_initial\nP01,2021-03-01,fat_grafting,yes\n",
        "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n",
        "media.csv": "patient_id,visit_date,media_kind,file\n"
                     "P01,2021-02-15,scan,media/pre.obj\nP01,2021-09-15,scan,media/post.obj\n",
    }
    for name, text in files.items():
        (sheets / name).write_text(text)
    with init_study(tmp_path / "study", inclusion_from=None, inclusion_to=None) as study:
        study.import_files([sheets / n for n in files], user="tester")
        yield study


def _jobs(study):
    return {(j.analysis, j.visit_date): j for j in plan_jobs(study)[0]}


def test_a_setting_changes_exactly_the_analyses_measured_with_it(scans):
    n = len(datasets.load_sample("template").vertices_mm)
    before = _jobs(scans)
    stable = np.arange(0, n, 3)
    done = set_scan_settings(scans, "P01", PRE, reason="broad atrophy", stable=stable, user="tech")
    assert done == {"version": 1, "plane": "mirror", "stable_vertices": stable.size,
                    "redo": ["scan_analyze", "scan_compare"]}
    after = _jobs(scans)
    changed = {k for k in before if before[k].key != after[k].key}
    assert changed == {("scan_analyze", "2021-02-15"), ("scan_compare", "2021-09-15")}
    pre, compare = after[("scan_analyze", "2021-02-15")], after[("scan_compare", "2021-09-15")]
    assert set(pre.inputs) == {"scan", "stable"} and set(compare.inputs) == {"pre", "post", "plane_stable"}
    assert pre.inputs["stable"] == compare.inputs["plane_stable"]
    path, sha = pre.inputs["stable"]
    assert np.array_equal(np.load(path), stable)  # the painted indices, exactly
    assert pre.parameters["plane"] == "mirror" and compare.parameters["plane"] == "mirror"
    media_id = pre.media_id
    now = current_scan_settings(scans, media_id)
    assert now["version"] == 1 and now["stable_sha256"] == sha and np.array_equal(now["stable"], stable)

    # the follow-up scan's plane changes its own analysis only (the comparison is measured in PRE's plane)
    set_scan_settings(scans, "P01", POST, reason="midline landmarks trusted", plane="landmarks", user="tech")
    again = _jobs(scans)
    assert {k for k in after if after[k].key != again[k].key} == {("scan_analyze", "2021-09-15")}
    assert again[("scan_analyze", "2021-09-15")].parameters["plane"] == "landmarks"
    assert "stable" not in again[("scan_analyze", "2021-09-15")].inputs

    # back to the automatic plane: the original identity again (its earlier result is reused)
    set_scan_settings(scans, "P01", PRE, reason="painting was not needed", base_version=1)
    assert _jobs(scans)[("scan_analyze", "2021-02-15")].key == before[("scan_analyze", "2021-02-15")].key
    with scans.engine.connect() as db:
        audit = [json.loads(d) for (d,) in
                 db.execute(text("SELECT details_json FROM audit WHERE action='scan_settings'"))]
        assert db.execute(text("SELECT COUNT(*) FROM scan_settings")).scalar() == 3
    assert [a["reason"] for a in audit] == ["broad atrophy", "midline landmarks trusted", "painting was not needed"]
    assert audit[0]["stable_vertices"] == stable.size and audit[0]["stable_sha256"] == sha


def test_refusals_leave_nothing_written(scans):
    n = len(datasets.load_sample("template").vertices_mm)
    set_scan_settings(scans, "P01", PRE, reason="first", stable=[1, 2, 3])
    cases = [
        (dict(stable=[0, n]), f"0..{n - 1}"),  # an index beyond the scan
        (dict(stable=np.zeros(n, bool)), "no vertex is painted"),
        (dict(stable=np.ones(n - 1, bool)), f"one value per scan vertex ({n})"),
        (dict(stable=[1, 2], plane="landmarks"), "\"mirror\" plane only"),
        (dict(plane={"normal": [0, 0, 0], "point": [0, 0, 0]}), "must not be zero"),
        (dict(plane={"normal": [1, 0, 0]}), "exactly"),
        (dict(plane="auto"), "give \"mirror\""),
        (dict(reason=" "), "give the reason"),
    ]
    for kwargs, message in cases:
        with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)")):
            set_scan_settings(scans, "P01", PRE, **{"reason": "x", **kwargs})
    with pytest.raises(StaleEditError, match="version 0, now 1"):
        set_scan_settings(scans, "P01", PRE, reason="from a stale tab", stable=[4, 5], base_version=0)
    with pytest.raises(StudyError, match="no visit on 2021-02-16"):
        set_scan_settings(scans, "P01", dt.date(2021, 2, 16), reason="x")
    with scans.engine.connect() as db:
        assert db.execute(text("SELECT COUNT(*) FROM scan_settings")).scalar() == 1
        assert db.execute(text("SELECT COUNT(*) FROM audit WHERE action='scan_settings'")).scalar() == 1


def test_cli_sets_a_hand_plane_and_a_painted_file(scans, tmp_path):
    runner = CliRunner()
    plane = tmp_path / "plane.json"
    plane.write_text(json.dumps({"normal": [2, 0, 0], "point": [0.5, 10, 50]}))
    folder = str(scans.path)
    r = runner.invoke(cli, ["study", "scan-settings", folder, "P01", "2021-09-15", "--plane", str(plane),
                            "--reason", "plane set by the lab", "--user", "tech"])
    assert r.exit_code == 0, r.output
    assert "plane set by hand" in r.output and "recomputes: scan_analyze" in r.output
    job = _jobs(scans)[("scan_analyze", "2021-09-15")]
    assert job.parameters["plane"] == {"normal": [1.0, 0.0, 0.0], "point": [0.5, 10.0, 50.0]}  # normalised, as given

    painted = tmp_path / "painted.txt"
    painted.write_text("5 3\n3, 9\n")
    r = runner.invoke(cli, ["study", "scan-settings", folder, "P01", "2021-02-15", "--stable", str(painted),
                            "--reason", "cheeks unaffected"])
    assert r.exit_code == 0, r.output
    assert "stable area of 3 vertices" in r.output and "scan_analyze, scan_compare" in r.output
    assert np.array_equal(np.load(_jobs(scans)[("scan_analyze", "2021-02-15")].inputs["stable"][0]), [3, 5, 9])

    r = runner.invoke(cli, ["study", "scan-settings", folder, "P01", "2021-02-15", "--stable", str(painted),
                            "--plane", "landmarks", "--reason", "x"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "mirror" in r.output
