"""The web workspace on a study whose database is PostgreSQL: overview, a landmark correction, a rating round
with a submitted rating, and a 3D check, through the app's own endpoints.

The study is the session's app study (tests/app/conftest.py, analysed once on SQLite) moved into an empty
PostgreSQL database of the throwaway server of tests/study/databases.py: the schema made by the migrations,
every row copied table by table (ids kept, sequences moved past them, as pg_restore does), study.toml
pointed at it and the SQLite file deleted. A scan of the bundled template is added at P01's baseline for the
3D check. Skipped, saying why, when PostgreSQL (or psycopg) is not installed.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from app_helpers import make_client


def _databases():
    """tests/study/databases.py (its throwaway PostgreSQL server), imported by path: tests/study is no package."""
    path = Path(__file__).resolve().parents[1] / "study" / "databases.py"
    spec = importlib.util.spec_from_file_location("hemiface_test_databases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def postgres_server():
    server = _databases().start_postgres()  # pytest.skip with the reason when PostgreSQL cannot be had
    yield server
    server.stop()


def _move_to_postgres(folder: Path, url: str) -> None:
    """The study's SQLite rows into the empty PostgreSQL database ``url``; study.toml then names it."""
    from sqlalchemy import create_engine, delete, select, text

    from hemiface.study._migrate import migrate
    from hemiface.study.models import Base, StudyMeta

    source = create_engine(f"sqlite:///{folder / 'study.sqlite'}")
    target = create_engine(url)
    with source.connect() as src, target.connect() as dst, dst.begin():
        migrate(dst)
        dst.execute(delete(StudyMeta))
        for table in Base.metadata.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(table.insert(), rows)
            if "id" in table.c and rows:
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"{max(r['id'] for r in rows)})"))
    source.dispose()
    target.dispose()
    (folder / "study.sqlite").unlink()
    toml = folder / "study.toml"
    settings = toml.read_text()
    assert 'database_url = "sqlite:///study.sqlite"' in settings
    toml.write_text(settings.replace('database_url = "sqlite:///study.sqlite"', f'database_url = "{url}"'))


@pytest.fixture(scope="module")
def pg_study(built_study, postgres_server, tmp_path_factory):
    from sqlalchemy import select

    from hemiface import datasets
    from hemiface._provenance import sha256_file
    from hemiface.study import open_study
    from hemiface.study.models import Media, Patient, Visit

    folder = tmp_path_factory.mktemp("pgapp") / "study"
    shutil.copytree(built_study, folder)
    name, url = postgres_server.new_database()
    _move_to_postgres(folder, url)
    scan = folder.parent / "p01_pre_scan.obj"
    shutil.copy(datasets.sample_path("template"), scan)
    with open_study(folder) as study, study.writing() as session:
        assert study.engine.dialect.name == "postgresql"
        visit = session.scalars(select(Visit).join(Patient).where(Patient.pseudonym == "P01",
                                                                  Visit.date == dt.date(2021, 2, 15))).one()
        session.add(Media(visit_id=visit.id, kind="scan", path=str(scan), sha256=sha256_file(scan)))
    yield folder
    postgres_server.drop_database(name)


def _post(client, url, body, csrf=None):
    return client.post(url, data=json.dumps(body), content_type="application/json",
                       headers={"X-CSRF-Token": csrf or client.csrf})


def test_overview_correction_rating_and_3d_check_on_postgresql(pg_study):
    from sqlalchemy import select

    from hemiface.study import open_study
    from hemiface.study.models import AuditEntry, LandmarkCorrection, Rating, ScanSetting

    client = make_client(pg_study)
    try:
        assert client.app_.extensions["hemiface"]["study"].engine.dialect.name == "postgresql"
        page = client.get("/")
        assert page.status_code == 200 and "P01" in page.get_data(as_text=True)
        overview = client.get("/api/overview").get_json()
        assert {"P01", "P02", "P03"} <= {p["patient_id"] for p in overview["patients"]}

        # a landmark correction: the cheek outline moved outward, the ratio recomputed and audited
        detail = client.get("/api/patients/P01").get_json()
        photo = next(a["media_id"] for a in detail["analyses"]
                     if a["analysis"] == "photo_analyze" and a["visit_date"] == "2021-09-15")
        lm = client.get(f"/api/photos/{photo}/landmarks").get_json()
        assert lm["status"] == "ok" and lm["version"] == 0
        outline = np.asarray(lm["outline"], float)
        mid_x = float(np.mean([lm["points"]["pupil_right"][0], lm["points"]["pupil_left"][0]]))
        right = outline[:, 0] > mid_x
        outline[right, 0] = mid_x + 1.05 * (outline[right, 0] - mid_x)
        body = {"points": lm["points"], "outline": outline.tolist(), "reason": "outline on the hair", "user": "dr_pg",
                "base_version": 0}
        done = _post(client, f"/api/photos/{photo}/landmarks", body)
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["version"] == 1
        assert done.get_json()["symmetry_ratio_after_percent"] > lm["symmetry_ratio_percent"] + 2
        stale = _post(client, f"/api/photos/{photo}/landmarks", body)  # the same edit from an older tab
        assert stale.status_code == 409

        # a rating round: a rater rates both pairs and submits; the coordinator sees the progress
        created = _post(client, "/api/rating/rounds", {"name": "pg round", "scale": "comparison_5",
                                                       "raters": ["Dr A", "Dr B"], "seed": 5})
        assert created.status_code == 201, created.get_json()
        created = created.get_json()
        token = created["raters"][0]["url"].rsplit("/rate/", 1)[1]
        html = client.get(f"/rate/{token}").get_data(as_text=True)
        rater_csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
        for position in (1, 2):
            r = _post(client, f"/api/rate/{token}/items/{position}", {"response": 1}, csrf=rater_csrf)
            assert r.status_code == 200, r.get_json()
        assert _post(client, f"/api/rate/{token}/submit", {}, csrf=rater_csrf).status_code == 200
        assert _post(client, f"/api/rate/{token}/items/1", {"response": 2}, csrf=rater_csrf).status_code == 409
        rid = created["round_id"]
        revoke = _post(client, f"/api/rating/rounds/{rid}/raters/"
                               f"{client.get(f'/api/rating/rounds/{rid}').get_json()['progress']['raters'][1]['rater_id']}"
                               "/revoke", {"reason": "not needed"})
        assert revoke.status_code == 200, revoke.get_json()
        progress = client.get(f"/api/rating/rounds/{rid}").get_json()["progress"]
        assert progress["n_submitted"] == 1 and progress["complete"] and progress["n_revoked"] == 1
        assert _post(client, f"/api/rating/rounds/{rid}/close", {"reason": "done"}).status_code == 200
        assert client.get(f"/rate/{token}").status_code == 410

        # a 3D check: the technician paints half of the scan as its stable area
        scan_id = next(a["media_id"] for a in client.get("/api/patients/P01").get_json()["analyses"]
                       if a["analysis"] == "scan_analyze")
        check = client.get(f"/api/scans/{scan_id}/check").get_json()
        n = check["display_vertices"]
        mask = np.zeros(n, bool)
        mask[::2] = True
        saved = _post(client, f"/api/scans/{scan_id}/settings", {
            "plane": "mirror", "reason": "cheeks unaffected", "user": "tech_pg", "base_version": check["version"],
            "stable": {"display_id": check["display_id"],
                       "mask": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode()}})
        assert saved.status_code == 200, saved.get_json()
        assert saved.get_json()["version"] == check["version"] + 1 and saved.get_json()["stable_vertices"] > 0
    finally:
        client.app_.extensions["hemiface"]["runs"].wait(60)
        client.app_.extensions["hemiface"]["study"].close()

    with open_study(pg_study) as study, study.session() as session:  # all of it in PostgreSQL
        assert session.scalars(select(LandmarkCorrection.user)).all() == ["dr_pg"]
        assert session.scalars(select(ScanSetting.user)).all() == ["tech_pg"]
        assert sorted(session.scalars(select(Rating.response).where(Rating.response.is_not(None)))) == [1, 1]
        actions = set(session.scalars(select(AuditEntry.action)))
        assert {"correct_landmarks", "create_rating_round", "rate", "submit_ratings", "revoke_rater",
                "close_rating_round", "scan_settings"} <= actions
