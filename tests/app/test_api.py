"""`hemiface app` through Flask's test client: every endpoint's status codes, escaping, files, downloads, runs.

Writes (runs, corrections) go to a private copy of the built study; see conftest.py.
"""

import io
import json
import re
import sqlite3
import time

import numpy as np
import pytest
from PIL import Image

from app_helpers import HOSTILE, HOSTILE_ID, csrf_of, make_client


def _media(client, patient, visit_date):
    detail = client.get(f"/api/patients/{patient}").get_json()
    return next(a["media_id"] for a in detail["analyses"]
                if a["analysis"] == "photo_analyze" and a["visit_date"] == visit_date)


@pytest.fixture
def writer(study_dir):
    """A test client on a private copy of the study, with its CSRF token."""
    client = make_client(study_dir)
    yield client
    client.app_.extensions["hemiface"]["runs"].wait(60)
    client.app_.extensions["hemiface"]["study"].close()


def _post(client, url, body, *, csrf=True, **kw):
    headers = {"X-CSRF-Token": client.csrf} if csrf is True else ({"X-CSRF-Token": csrf} if csrf else {})
    headers.update(kw.pop("headers", {}))
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers, **kw)


# --------------------------------------------------------------------------- pages

def test_overview_lists_every_patient_with_flow_failures_and_downloads(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    for pid in ("P01", "P02", "P03"):
        assert f'href="/patients/{pid}"' in html
    assert 'id="flow-eligible">2<' in html
    assert "the photo file: no face found" in html  # P02's failed follow-up photo: the message names the role, never the file
    assert "p02_post" not in html and ".png" not in html  # never a media file's own name
    assert 'data-state="failed"' in html and 'data-state="excluded"' in html and 'data-state="done"' in html
    assert "/download/endpoints.csv" in html and "/download/endpoints.xlsx" in html
    assert "/download/report.html" not in html  # no report written in this study
    data = client.get("/api/overview").get_json()
    rows = {p["patient_id"]: p for p in data["patients"]}
    assert rows["P01"]["analyses"]["photo_analyze"] == {"ok": 2, "failed": 0, "waiting": 0, "messages": []}
    assert rows["P02"]["analyses"]["photo_analyze"]["failed"] == 1
    assert rows["P03"]["exclusion_reason"] == "no_followup_visit" and rows["P03"]["state"] == "excluded"
    assert data["flow"]["eligible"] == 2 and data["flow"]["analysed_2d"] == 1


def test_hostile_strings_are_escaped_on_every_page(client):
    """`<script>` in the study's name and a surgery note (through the importer) and in a patient id (the
    importer refuses such ids; this one was written into the database directly) is shown as text."""
    pages = [client.get("/"), client.get("/patients/P01"), client.get("/patients/" + HOSTILE_ID),
             client.get("/patients/nobody" + HOSTILE)]
    assert [p.status_code for p in pages] == [200, 200, 200, 404]
    for page in pages:
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", html)  # only our own script files
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1].get_data(as_text=True)  # the note, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].get_data(as_text=True)  # the id, as text
    api = client.get("/api/patients/P01")  # JSON keeps the text as it is, never rendered as HTML
    assert api.mimetype == "application/json" and api.headers["X-Content-Type-Options"] == "nosniff"
    assert api.get_json()["surgeries"][0]["notes"] == HOSTILE


def test_the_importer_refuses_a_script_as_patient_id(tmp_path):
    from hemiface.study import StudyImportError, init_study

    sheet = tmp_path / "patients.csv"
    sheet.write_text(f"patient_id,sex,birth_year,affected_side\n\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",female,1990,left\n")
    with init_study(tmp_path / "s") as study, pytest.raises(StudyImportError, match="pseudonymous id"):
        study.import_files([sheet])


def test_patient_page_shows_overlays_numbers_and_provenance(client):
    r = client.get("/patients/P01")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    images = re.findall(r'src="(/results/photo_analyze/[0-9a-f_]+/overlay\.png)"', html)
    assert len(images) == 2  # baseline and follow-up
    detail = client.get("/api/patients/P01").get_json()
    ok = [a for a in detail["analyses"] if a["status"] == "ok"]
    assert len(ok) == 2
    for a in ok:
        ratio = a["result"]["symmetry_ratio_percent"]
        assert f"{ratio:.2f}" in html
        assert a["inputs_sha256"] in html and a["parameters_sha256"] in html
        assert a["inputs"]["photo"] in html  # the photo's SHA-256
        assert a["provenance"]["hemiface_version"]
    for src in images:
        img = client.get(src)
        assert img.status_code == 200 and img.mimetype == "image/png"
        assert Image.open(io.BytesIO(img.data)).size[0] > 100
    p02 = client.get("/patients/P02").get_data(as_text=True)
    assert "no face found" in p02 and 'class="analysis failed"' in p02 and "p02_post" not in p02
    assert "p02_post" not in client.get("/api/patients/P02").get_data(as_text=True)


@pytest.mark.parametrize("url", ["/patients/NOPE", "/api/patients/NOPE", "/photos/999/correct", "/photos/999/image.jpg",
                                 "/api/photos/999/landmarks", "/no/such/page"])
def test_unknown_things_are_404(client, url):
    r = client.get(url)
    assert r.status_code == 404
    if url.startswith("/api/"):
        assert r.is_json and r.get_json()["error"]


def test_methods_not_allowed_are_405(client):
    assert client.post("/").status_code in (403, 405)  # refused before routing when no CSRF token
    app_csrf = client.application.extensions["hemiface"]["csrf"]
    assert client.post("/", headers={"X-CSRF-Token": app_csrf}).status_code == 405
    assert client.delete("/api/run", headers={"X-CSRF-Token": app_csrf}).status_code == 405
    assert client.put("/api/photos/1/landmarks", headers={"X-CSRF-Token": app_csrf}).status_code == 405


def test_security_headers(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    html = r.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing from outside
    for name in ("app.css", "overview.js", "correct.js"):
        static = client.get(f"/static/{name}")
        assert static.status_code == 200
        assert b"http://" not in static.data.replace(b"http://www.w3.org/2000/svg", b"") and b"https://" not in static.data


# --------------------------------------------------------------------------- files

@pytest.mark.parametrize("url", [
    "/results/photo_analyze/../../study.toml",
    "/results/photo_analyze/..%2F..%2Fstudy.toml/overlay.png",
    "/results/..%2f..%2fstudy.sqlite/x/overlay.png",
    "/results/photo_analyze/%2e%2e/overlay.png",
    "/results/photo_analyze/0123456789abcdef_01234567/overlay.png",  # well formed, absent
    "/results/photo_analyze/0123456789abcdef_01234567/../../../study.toml",
    "/results/study.toml/0123456789abcdef_01234567/overlay.png",
    "/results/photo_analyze//etc/passwd/overlay.png",
    "/static/../study.toml",
    "/static/..%2f_web.py",
    "/download/..%2fstudy.sqlite",
    "/download/study.sqlite",
    "/download/endpoints.txt",
    "/download/report.html",  # not written in this study
])
def test_path_traversal_and_other_files_are_refused(client, url):
    r = client.get(url)
    assert r.status_code in (404, 400), (url, r.status_code)
    assert b"[study]" not in r.data and b"SQLite format" not in r.data


def test_results_serve_only_listed_images_even_inside_results(client, built_study):
    folder = next((built_study / "results" / "photo_analyze").iterdir())
    assert (folder / "landmarks.json").is_file() and (folder / "measurements.json").is_file()
    for name in ("landmarks.json", "measurements.json", "overlay.png"):
        r = client.get(f"/results/photo_analyze/{folder.name}/{name}")
        assert r.status_code == (200 if name == "overlay.png" else 404)
    assert client.get(f"/results/scan_analyze/{folder.name}/overlay.png").status_code == 404


def test_a_symlink_out_of_results_is_refused(writer, study_dir, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    link = study_dir / "results" / "photo_analyze" / "0123456789abcdef_01234567"
    link.mkdir()
    (link / "overlay.png").symlink_to(secret)
    r = writer.get(f"/results/photo_analyze/{link.name}/overlay.png")
    assert r.status_code == 404 and b"secret" not in r.data


def test_depth_and_gain_maps_are_served_from_their_result_folders(writer, study_dir):
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    for analysis, name in (("scan_analyze", "depth_map.png"), ("scan_compare", "gain_map.png"),
                           ("scan_compare", "before_after.png")):
        folder = study_dir / "results" / analysis / "fedcba9876543210_76543210"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(png.getvalue())
        r = writer.get(f"/results/{analysis}/{folder.name}/{name}")
        assert r.status_code == 200 and r.mimetype == "image/png" and r.data == png.getvalue()
        assert writer.get(f"/results/{analysis}/{folder.name}/overlay.png").status_code == 404


def test_photos_are_served_by_id_reencoded_only_when_the_study_analyses_them(client):
    media = _media(client, "P01", "2021-09-15")
    r = client.get(f"/photos/{media}/image.jpg")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    img = Image.open(io.BytesIO(r.data))
    assert not img.getexif()  # a fresh file: no camera metadata
    lm = client.get(f"/api/photos/{media}/landmarks").get_json()
    assert img.size == (lm["width_px"], lm["height_px"])
    assert "p01_post" not in json.dumps(lm)  # never the photo's file name
    # P03 is excluded: its photo is not analysed and not served
    overview = client.get("/api/overview").get_json()
    assert overview  # ids of P03's media are not exposed; try every id beyond the analysed ones
    analysed = {a["media_id"] for pid in ("P01", "P02") for a in client.get(f"/api/patients/{pid}").get_json()["analyses"]}
    for other in set(range(1, 8)) - analysed:
        assert client.get(f"/photos/{other}/image.jpg").status_code == 404


def test_downloads_of_the_endpoint_table_and_report(writer, study_dir):
    csv = writer.get("/download/endpoints.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("patient_id,technique,") and len(lines) == 3  # header + two eligible patients
    xlsx = writer.get("/download/endpoints.xlsx")
    assert xlsx.status_code == 200
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert book.sheetnames == ["endpoints", "flow", "excluded", "rules"]
    (study_dir / "report").mkdir()
    (study_dir / "report" / "report.html").write_text("<p>report</p>")
    assert "/download/report.html" in writer.get("/").get_data(as_text=True)
    r = writer.get("/download/report.html")
    assert r.status_code == 200 and r.data == b"<p>report</p>"
    assert r.headers["Content-Security-Policy"].endswith("sandbox")  # shown with its inline style, never scripts
    assert writer.get("/download/report.pdf").status_code == 404


# --------------------------------------------------------------------------- who may connect

def test_host_names_and_file_name_masking():
    from hemiface.app._data import mask, scrub
    from hemiface.app._web import _host_name

    assert [_host_name(h) for h in ("127.0.0.1:8765", "localhost", "[::1]:80", "::1", "Evil.Example:1")] == [
        "127.0.0.1", "localhost", "::1", "::1", "evil.example"]
    names = ["P001 Smith.jpg", "a.png"]
    assert mask("P001 Smith.jpg: no face found", names) == "[file]: no face found"
    assert scrub({"x": ["a.png", 1], "y": None}, names) == {"x": ["[file]", 1], "y": None}


def test_a_busy_port_is_one_clear_error(built_study):
    from hemiface.app import AppError, make_server

    first = make_server(built_study, host="127.0.0.1", port=0)
    try:
        with pytest.raises(AppError, match="cannot serve on 127.0.0.1"):
            make_server(built_study, host="127.0.0.1", port=first.port)
    finally:
        first.close()


def test_localhost_mode_answers_only_loopback_host_names(client):
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200
    for host in ("evil.example", "evil.example:8765", "192.168.1.20:8765", "127.0.0.1.evil.example"):
        r = client.get("/api/overview", headers={"Host": host})
        assert r.status_code == 403, host
        assert "P01" not in r.get_data(as_text=True)


def test_token_mode_requires_the_token_then_a_cookie(built_study):
    from hemiface.app import create_app

    app = create_app(built_study, token="s3cret-token")
    try:
        client = app.test_client()
        for url in ("/", "/patients/P01", "/api/overview", "/api/run", "/download/endpoints.csv", "/static/app.css",
                    "/photos/1/image.jpg"):
            r = client.get(url, headers={"Host": "10.0.0.5:8765"})
            assert r.status_code == 401, url
            assert b"P01" not in r.data
        assert client.get("/?token=wrong", headers={"Host": "10.0.0.5:8765"}).status_code == 401
        r = client.get("/patients/P01?token=s3cret-token", headers={"Host": "10.0.0.5:8765"})
        assert r.status_code == 303 and r.headers["Location"].endswith("/patients/P01")  # the token leaves the URL
        r2 = client.get("/", headers={"Host": "10.0.0.5:8765"},
                        environ_overrides={"PATH_INFO": "//evil.example/x", "QUERY_STRING": "token=s3cret-token"})
        assert r2.status_code == 303 and r2.headers["Location"] == "/evil.example/x"  # never off to another host
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert client.get("/patients/P01", headers={"Host": "10.0.0.5:8765"}).status_code == 200  # the cookie now
        other = app.test_client()
        assert other.get("/api/overview", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert other.get("/api/overview", headers={"Authorization": "Bearer nope"}).status_code == 401
        # a write still needs the CSRF token besides the cookie
        assert client.post("/api/run", json={}, headers={"Host": "10.0.0.5:8765"}).status_code == 403
    finally:
        app.extensions["hemiface"]["study"].close()


def test_a_public_address_without_a_token_is_refused():
    from hemiface.app import AppError, is_loopback, make_server

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("example.org")
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(AppError, match="requires an access token"):
            make_server("/nonexistent", host=host, port=0)


def test_server_binds_loopback_and_answers(built_study):
    import threading
    import urllib.request

    from hemiface.app import make_server

    server = make_server(built_study, host="127.0.0.1", port=0)
    errors = []

    def serve():
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever ended serving
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert server.url == server.address and server.address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.address + "api/run", timeout=20) as r:
            assert r.status == 200 and json.loads(r.read())["running"] is False
    finally:
        server.close()
        thread.join(10)
    # close() ends serving cleanly: the thread stops and nothing escapes it (the poll's EBADF once did).
    assert not thread.is_alive() and errors == []


# --------------------------------------------------------------------------- writes: CSRF and validation

def test_writes_without_the_csrf_token_or_from_another_origin_are_refused(writer):
    media = _media(writer, "P01", "2021-09-15")
    for url in ("/api/run", f"/api/photos/{media}/landmarks"):
        assert _post(writer, url, {}, csrf=False).status_code == 403
        assert _post(writer, url, {}, csrf="forged").status_code == 403
        r = _post(writer, url, {}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.get_json()["error"]
        assert _post(writer, url, {}, headers={"Origin": "null"}).status_code == 403
        # a plain HTML form post (what a cross-site page can send without scripts) is not accepted either
        assert writer.post(url, data={"x": "1"}).status_code == 403
        assert writer.post(url, data={"csrf_token": writer.csrf}).status_code == 415
    with sqlite3.connect(writer.app_.extensions["hemiface"]["study"].path / "study.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM landmark_corrections").fetchone()[0] == 0


@pytest.mark.parametrize("body, message", [
    ({"jobs": "two"}, "jobs"), ({"jobs": 0}, "jobs"), ({"jobs": 10_000}, "jobs"), ({"jobs": True}, "jobs"), ({"retry_failed": "yes"}, "retry_failed"),
    ({"bogus": 1}, "unknown field"),
])
def test_run_validation(writer, body, message):
    r = _post(writer, "/api/run", body)
    assert r.status_code == 400 and message in r.get_json()["error"]


def test_run_from_the_page_with_progress_and_one_run_at_a_time(writer):
    runs = writer.app_.extensions["hemiface"]["runs"]
    assert runs.write_lock.acquire(blocking=False)  # as if a correction or a run were in progress
    try:
        r = _post(writer, "/api/run", {})
        assert r.status_code == 409 and "in progress" in r.get_json()["error"]
    finally:
        runs.write_lock.release()
    r = _post(writer, "/api/run", {"retry_failed": True})  # redo P02's failed follow-up photo
    assert r.status_code == 202
    assert r.get_json()["todo"] == 1
    deadline = time.monotonic() + 90
    while (status := writer.get("/api/run").get_json())["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status["error"] is None and status["done"] == 1
    assert "1 failed" in status["summary"]
    assert status["failures"][0]["patient_id"] == "P02" and "no face" in status["failures"][0]["message"]
    # no "jobs" in the request: the run follows the study's [run] settings in study.toml, and records them
    study = writer.app_.extensions["hemiface"]["study"]
    with sqlite3.connect(study.path / "study.sqlite") as db:
        (prov,) = db.execute("SELECT provenance_json FROM analysis_results ORDER BY id DESC LIMIT 1").fetchone()
    assert json.loads(prov)["study_run"]["run"] == study.settings.run.to_dict()
    assert "p02_post" not in json.dumps(status)


# --------------------------------------------------------------------------- landmark corrections

def _edited(lm, factor=1.05):
    """The patient's left cheek outline (image right) moved outward by ``factor``, as a person would."""
    outline = np.asarray(lm["outline"], float)
    mid_x = float(np.mean([lm["points"]["pupil_right"][0], lm["points"]["pupil_left"][0]]))
    right = outline[:, 0] > mid_x
    outline[right, 0] = mid_x + factor * (outline[right, 0] - mid_x)
    return outline.tolist()


def test_correction_in_the_browser_is_study_correct(writer, study_dir):
    from hemiface.photo import read_landmarks

    from hemiface._provenance import sha256_file

    media = _media(writer, "P01", "2021-09-15")
    photo = next(p for p in (study_dir.parent.parent).rglob("p01_post.png"))
    before_sha = sha256_file(photo)
    page = writer.get(f"/photos/{media}/correct")
    assert page.status_code == 200 and 'id="canvas"' in page.get_data(as_text=True)
    first = writer.get(f"/api/photos/{media}/landmarks")
    lm = first.get_json()
    assert first.headers["ETag"] == '"0"' and lm["version"] == 0 and lm["status"] == "ok"
    reason = "cheek outline on the hair <img src=x onerror=alert(1)>"
    body = {"points": lm["points"], "outline": _edited(lm), "reason": reason, "user": "dr_a", "base_version": 0}
    r = _post(writer, f"/api/photos/{media}/landmarks", body)
    assert r.status_code == 200, r.get_json()
    done = r.get_json()
    assert done["status"] == "ok" and done["version"] == 1
    assert done["symmetry_ratio_before_percent"] == pytest.approx(lm["symmetry_ratio_percent"])
    assert done["symmetry_ratio_after_percent"] > done["symmetry_ratio_before_percent"] + 2
    # the same file format, folder and audit entry as `hemiface study correct`
    with sqlite3.connect(study_dir / "study.sqlite") as db:
        (path, user, why), = db.execute("SELECT path, user, reason FROM landmark_corrections").fetchall()
        actor, details = db.execute("SELECT user, details_json FROM audit WHERE action='correct_landmarks'").fetchone()
    assert path.startswith("corrections/") and user == "dr_a" and why == reason and actor == "dr_a"
    stored = json.loads((study_dir / path).read_text())
    assert stored["format"] == "hemiface-landmarks-1" and np.allclose(stored["outline"], body["outline"])
    assert read_landmarks(study_dir / path).points.keys() == lm["points"].keys()
    details = json.loads(details)
    assert details["reason"] == reason and details["symmetry_ratio_after_percent"] == pytest.approx(
        done["symmetry_ratio_after_percent"])
    # the page shows the new ratio and the audit entry (escaped); the endpoints use it
    now = writer.get(f"/api/photos/{media}/landmarks").get_json()
    assert now["version"] == 1 and now["symmetry_ratio_percent"] == pytest.approx(done["symmetry_ratio_after_percent"])
    assert np.allclose(now["outline"], body["outline"])
    html = writer.get("/patients/P01").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert f"{done['symmetry_ratio_after_percent']:.2f}" in html
    csv = writer.get("/download/endpoints.csv").get_data(as_text=True)
    assert f"{done['symmetry_ratio_after_percent']:.6f}"[:8] in csv

    # a second tab that opened version 0 is told, and nothing is written
    stale = _post(writer, f"/api/photos/{media}/landmarks", dict(body, outline=lm["outline"], reason="other tab"))
    assert stale.status_code == 409 and "reload" in stale.get_json()["error"]
    with sqlite3.connect(study_dir / "study.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM landmark_corrections").fetchone()[0] == 1
    # the photo itself is never touched
    assert sha256_file(photo) == before_sha


def test_a_save_waits_for_another_process_saving_then_is_refused(writer, study_dir, monkeypatch):
    import fcntl

    from hemiface.app import _data

    media = _media(writer, "P01", "2021-09-15")
    lm = writer.get(f"/api/photos/{media}/landmarks").get_json()
    body = {"points": lm["points"], "outline": lm["outline"], "reason": "r", "user": "u", "base_version": 0}
    monkeypatch.setattr(_data, "EDIT_LOCK_TIMEOUT_S", 0.3)
    (study_dir / "corrections").mkdir(exist_ok=True)
    with open(study_dir / "corrections" / ".app-edit.lock", "w") as other:  # as another app server would hold it
        fcntl.flock(other, fcntl.LOCK_EX)
        r = _post(writer, f"/api/photos/{media}/landmarks", body)
        assert r.status_code == 409 and "being saved" in r.get_json()["error"]
    with sqlite3.connect(study_dir / "study.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM landmark_corrections").fetchone()[0] == 0


def _bad(lm):
    pts = lm["points"]
    first = sorted(pts)[0]
    return [
        ({"reason": ""}, 400, "reason"),
        ({"reason": "x" * 2001}, 400, "at most"),
        ({"reason": "ok\x00"}, 400, "control"),
        ({"base_version": -1}, 400, "base_version"),
        ({"base_version": "0"}, 400, "base_version"),
        ({"base_version": True}, 400, "base_version"),
        ({"points": {k: v for k, v in pts.items() if k != first}}, 400, "named landmarks"),
        ({"points": dict(pts, extra=[1, 2])}, 400, "named landmarks"),
        ({"points": dict(pts, **{first: [1]})}, 400, "two finite numbers"),
        ({"points": dict(pts, **{first: ["1", 2]})}, 400, "two finite numbers"),
        ({"points": dict(pts, **{first: [1e9, 2]})}, 400, "outside the photo"),
        ({"outline": lm["outline"][:-1]}, 400, "outline must be a list"),
        ({"outline": "none"}, 400, "outline must be a list"),
        ({"user": "x" * 129}, 400, "at most"),
        ({"extra": 1}, 400, "unknown field"),
    ]


def test_correction_validation(writer):
    media = _media(writer, "P01", "2021-09-15")
    lm = writer.get(f"/api/photos/{media}/landmarks").get_json()
    good = {"points": lm["points"], "outline": lm["outline"], "reason": "r", "user": "u", "base_version": 0}
    for change, status, message in _bad(lm):
        r = _post(writer, f"/api/photos/{media}/landmarks", dict(good, **change))
        assert r.status_code == status, (change, r.get_json())
        assert message in r.get_json()["error"], (change, r.get_json())
    # NaN is not JSON, but Python's parser reads it: refused as not finite
    text = json.dumps(good).replace(json.dumps(lm["outline"][0][0]), "NaN", 1)
    r = writer.post(f"/api/photos/{media}/landmarks", data=text, content_type="application/json",
                    headers={"X-CSRF-Token": writer.csrf})
    assert r.status_code == 400 and "finite" in r.get_json()["error"]
    for data in ("[1, 2]", "not json"):
        r = writer.post(f"/api/photos/{media}/landmarks", data=data, content_type="application/json",
                        headers={"X-CSRF-Token": writer.csrf})
        assert r.status_code == 400
    assert writer.post(f"/api/photos/{media}/landmarks", data=json.dumps(good), content_type="text/plain",
                       headers={"X-CSRF-Token": writer.csrf}).status_code == 415
    big = dict(good, reason="x" * 1_100_000)
    assert _post(writer, f"/api/photos/{media}/landmarks", big).status_code == 413
    assert _post(writer, "/api/photos/999/landmarks", good).status_code == 404
    failed = _media(writer, "P02", "2021-10-20")  # its analysis failed: no landmarks to move
    r = _post(writer, f"/api/photos/{failed}/landmarks", good)
    assert r.status_code == 409 and "no landmarks" in r.get_json()["error"]
    assert "no landmarks to edit" in writer.get(f"/photos/{failed}/correct").get_data(as_text=True)
    with sqlite3.connect(writer.app_.extensions["hemiface"]["study"].path / "study.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM landmark_corrections").fetchone()[0] == 0


def test_served_to_others_a_correction_needs_a_name(study_dir):
    from hemiface.app import create_app

    app = create_app(study_dir, token="t0ken")
    try:
        client = app.test_client()
        auth = {"Authorization": "Bearer t0ken", "X-CSRF-Token": csrf_of(app)}
        detail = client.get("/api/patients/P01", headers=auth).get_json()
        media = next(a["media_id"] for a in detail["analyses"] if a["analysis"] == "photo_analyze")
        lm = client.get(f"/api/photos/{media}/landmarks", headers=auth).get_json()
        body = {"points": lm["points"], "outline": lm["outline"], "reason": "r", "base_version": 0}
        r = client.post(f"/api/photos/{media}/landmarks", json=body, headers=auth)
        assert r.status_code == 400 and "your name" in r.get_json()["error"]
    finally:
        app.extensions["hemiface"]["study"].close()
