"""The 3D views and the 3D checks of `hemiface app`, on a study of phantom scans with known truth.

P01's baseline scan is the symmetric template with a 5,000 mm3 dent carved into the left cheek
(a round dent of known centre and radius), the follow-up the same with 2,000 mm3. Before the one
`study run`, the baseline's stable area is set (both sides, clear of the dent and of its mirror
image), as `study scan-settings` does: its analysis and the comparison are measured with it.
The media files carry a name the pages must never show.
"""

import base64
import datetime as dt
import json
import logging
import math
import shutil
import sqlite3
import threading
import time

import numpy as np
import pytest

from app_helpers import HOSTILE, make_client
from app_webdriver import Browser, browser_paths

log = logging.getLogger(__name__)
NAME = "smith_john"  # in the media files' names: never on a page
PRE, POST = dt.date(2021, 2, 15), dt.date(2021, 9, 15)


def _stable(phantom) -> np.ndarray:
    """The template's vertices farther than the dent's radius + 10 mm from its centre and from its mirror image."""
    v, c = phantom.vertices_mm, np.asarray(phantom.centre_mm)
    far = phantom.radius_mm + 10.0
    return np.flatnonzero((np.linalg.norm(v - c, axis=1) > far) & (np.linalg.norm(v - c * [-1, 1, 1], axis=1) > far))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from hemiface import datasets
    from hemiface.study import init_study, open_study, run_study, set_scan_settings

    root = tmp_path_factory.mktemp("scan3d")
    media = root / "sheets" / "media"
    media.mkdir(parents=True)
    pre = datasets.make_phantom("template", side="left", volume_mm3=5000.0)
    pre.save(media / f"{NAME}_pre.ply")
    datasets.make_phantom("template", side="left", volume_mm3=2000.0).save(media / f"{NAME}_post.ply")
    sheets = {
        "patients.csv": "patient_id,sex,birth_year,affected_side\nP01,female,1990,left\n",
        "surgeries.csv": "patient_id,surgery_date,technique,is_initial\nP01,2021-03-01,fat_grafting,yes\n",
        "visits.csv": "patient_id,visit_date,visit_kind\nP01,2021-02-15,preoperative\nP01,2021-09-15,follow-up\n",
        "media.csv": "patient_id,visit_date,media_kind,file\n"
                     f"P01,2021-02-15,scan,media/{NAME}_pre.ply\nP01,2021-09-15,scan,media/{NAME}_post.ply\n",
    }
    for name, text in sheets.items():
        (root / "sheets" / name).write_text(text)
    folder = root / "study"
    with init_study(folder, inclusion_from=None, inclusion_to=None) as study:
        study.import_files([root / "sheets" / n for n in sheets], user="tester")
    with open(folder / "study.toml", "a") as fh:  # the template looks toward +z, head up: no frame search needed
        fh.write('\n[analysis.scan_analyze]\norient = "canonical"\nuncertainty = false\n'
                 '[analysis.scan_compare]\norient = "canonical"\nuncertainty = false\n')
    stable = _stable(pre)
    with open_study(folder) as study:
        set_scan_settings(study, "P01", PRE, reason="broad atrophy: plane from the unaffected areas", stable=stable,
                          user="tech")
        summary = run_study(study)
    assert summary.succeeded == 3, summary
    return folder, pre, stable


@pytest.fixture(scope="module")
def reader(built):
    client = make_client(built[0])
    yield client
    client.app_.extensions["hemiface"]["study"].close()


@pytest.fixture
def copy(built, tmp_path):
    dest = tmp_path / "study"
    shutil.copytree(built[0], dest)
    return dest


def _decode(text, dtype):
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def _results(folder):
    with sqlite3.connect(folder / "study.sqlite") as db:
        return {(a, m): (json.loads(r), json.loads(p)) for a, m, r, p in db.execute(
            "SELECT a.analysis, v.date, a.result_json, a.provenance_json FROM analysis_results a "
            "JOIN visits v ON v.id = a.visit_id")}


def _meshes(client):
    html = client.get("/patients/P01").get_data(as_text=True)
    import re

    return re.findall(r'data-mesh="([^"]+)"', html), re.findall(r'href="/scans/(\d+)/check"', html)


def _checks(client) -> dict:
    """Each scan's 3D check data by its visit date: (media id, the check page's JSON)."""
    media = {}
    for mid in _meshes(client)[1]:
        d = client.get(f"/api/scans/{mid}/check").get_json()
        media[d["visit_date"]] = (int(mid), d)
    return media


def test_maps_carry_the_analysis_geometry_values_and_outline(built, reader):
    import trimesh

    folder, phantom, _ = built
    urls, checks = _meshes(reader)
    assert len(urls) == 3 and len(checks) == 2  # two depth maps and the gain map; a check page per scan
    results = _results(folder)
    for url in urls:
        r = reader.get(url)
        assert r.status_code == 200 and r.mimetype == "application/json"
        body = r.get_data(as_text=True)
        assert NAME not in body and ".ply" not in body
        d = json.loads(body)  # strict JSON: no NaN
        analysis, result_dir = url.split("/")[3], url.split("/")[4]
        ply = folder / "results" / analysis / result_dir / ("depth_map.ply" if analysis == "scan_analyze" else "gain_map.ply")
        mesh = trimesh.load(ply, process=False)
        values = mesh.metadata["_ply_raw"]["vertex"]["data"]["depth_mm" if analysis == "scan_analyze" else "gain_mm"]
        positions, faces = _decode(d["positions"], "<f4").reshape(-1, 3), _decode(d["faces"], "<u4").reshape(-1, 3)
        assert d["vertex_count"] == d["display_vertices"] == len(mesh.vertices) == len(positions) and not d["clustered"]
        assert np.array_equal(faces, mesh.faces) and np.allclose(positions, mesh.vertices, atol=1e-4)
        assert np.array_equal(_decode(d["values"], "<f4"), values.astype("<f4"))
        assert d["value_range_mm"] == pytest.approx([values.min(), values.max()], abs=1e-6)
        outline = _decode(d["outline"], "<f4").reshape(-1, 3)
        if analysis == "scan_analyze":
            date = "2021-02-15" if d["value_range_mm"][1] > 5 else "2021-09-15"
            result = results[("scan_analyze", date)][0]
            # the map is smoothed; the maximum depth is measured on the unsmoothed depth, never below the map's
            assert d["value_range_mm"][1] - 1e-4 <= result["max_depth_mm"] < d["value_range_mm"][1] + 0.2
            assert d["colour_limit_mm"] >= result["threshold_mm"] + 1 and d["affected_side"] == "left"
        else:
            assert d["kind"] == "gain" and d["value_range_mm"][1] == pytest.approx(
                results[("scan_compare", "2021-09-15")][0]["max_gain_mm"], abs=0.05)
        # the outline is the carved dent's edge: on the left cheek, at the dent's radius from its centre
        # (a little beyond it: the depth map is smoothed with a 1.5 mm Gaussian)
        r_out = np.linalg.norm(outline - np.asarray(phantom.centre_mm), axis=1)
        assert len(outline) > 50 and outline[:, 0].min() > 0
        assert phantom.radius_mm - 3.0 < r_out.min() and r_out.max() < phantom.radius_mm + 5.0, (r_out.min(), r_out.max())
    assert reader.get(urls[0].replace("scan_analyze", "photo_analyze")).status_code == 404
    assert reader.get(urls[0].replace("/mesh", "/../../mesh")).status_code == 404
    assert reader.get("/api/results/scan_analyze/0123456789abcdef_01234567/mesh").status_code == 404


def test_patient_page_headlines_the_change_and_its_registration_sd(built, reader):
    """The comparison's headline: gain, discrepancies, share corrected and their SDs; an SD the
    run did not compute (``uncertainty = false`` here) shows as a dash, never as "nan"."""
    import re

    folder = built[0]
    compare = _results(folder)[("scan_compare", "2021-09-15")][0]
    html = reader.get("/patients/P01").get_data(as_text=True)
    rows = dict(re.findall(r'<tr><th>([^<]+)</th><td class="number">([^<]*)</td></tr>', html))
    assert rows["volume gain (mm³)"] == f"{compare['volume_gain_mm3']:.2f}"
    assert rows["defect corrected (%)"] == f"{compare['defect_corrected_percent']:.2f}"
    assert 55 < compare["defect_corrected_percent"] < 65  # 3,000 of 5,000 mm3 restored
    assert not math.isfinite(compare["volume_gain_registration_sd_mm3"])
    assert not math.isfinite(compare["volume_gain_uncertainty_mm3"])
    assert rows["volume gain, SD (mm³)"] == rows["volume gain, registration SD (mm³)"] == "–"
    assert rows["discrepancy change, SD (mm³)"] == "–"
    assert rows["defect volume, SD (mm³)"] == "–"
    assert "nan" not in "".join(rows.values()).lower()


def test_a_map_linked_from_outside_results_is_refused(built, copy, tmp_path):
    real = next((copy / "results" / "scan_analyze").iterdir())
    fake = copy / "results" / "scan_analyze" / "0123456789abcdef_01234567"
    fake.mkdir()
    (fake / "measurements.json").write_bytes((real / "measurements.json").read_bytes())
    outside = tmp_path / "elsewhere.ply"
    outside.write_bytes((real / "depth_map.ply").read_bytes())
    (fake / "depth_map.ply").symlink_to(outside)
    client = make_client(copy)
    try:
        assert client.get(f"/api/results/scan_analyze/{real.name}/mesh").status_code == 200
        assert client.get(f"/api/results/scan_analyze/{fake.name}/mesh").status_code == 404
    finally:
        client.app_.extensions["hemiface"]["study"].close()


def test_the_painted_plane_is_measured_and_recorded(built):
    """The run before this test: the baseline and the comparison measured with the painted stable area."""
    folder, phantom, stable = built
    results = _results(folder)
    pre, pre_prov = results[("scan_analyze", "2021-02-15")]
    post, post_prov = results[("scan_analyze", "2021-09-15")]
    compare, compare_prov = results[("scan_compare", "2021-09-15")]
    assert pre["plane_method"] == compare["plane_method"] == "mirror (stable mask)" and post["plane_method"] == "mirror"
    assert pre_prov["parameters"]["stable"] == f"vertex indices ({stable.size} vertices)"
    assert compare_prov["parameters"]["plane_stable"] == f"vertex indices ({stable.size} vertices)"
    sha = pre_prov["study_run"]["inputs"]["stable"]["sha256"]
    assert compare_prov["study_run"]["inputs"]["plane_stable"]["sha256"] == sha
    assert "stable" not in post_prov["study_run"]["inputs"]
    # truth: the template is symmetric about x = 0, the dent holds 5,000 mm3
    assert pre["symmetry_plane"]["normal"][0] > 1 - 1e-6 and abs(pre["symmetry_plane"]["point"][0]) < 0.01
    assert pre["defect_volume_mm3"] == pytest.approx(phantom.true_volume_mm3, rel=0.01)
    assert compare["volume_gain_mm3"] == pytest.approx(3000.0, rel=0.02)


def test_painting_saved_round_trips_and_the_run_recomputes_exactly_that_scan(built, copy):
    folder, phantom, stable = built
    client = make_client(copy)
    try:
        media = _checks(client)
        pre_id, pre = media["2021-02-15"]
        post_id, post = media["2021-09-15"]
        n = len(phantom.vertices_mm)
        assert pre["vertex_count"] == pre["display_vertices"] == n and not pre["clustered"]
        assert np.allclose(_decode(pre["positions"], "<f4").reshape(-1, 3), phantom.vertices_mm, atol=1e-4)
        bits = np.unpackbits(_decode(pre["painted"], np.uint8), bitorder="little")[:n]
        assert np.array_equal(np.flatnonzero(bits), stable) and pre["version"] == 1  # set before the run
        assert post["version"] == 0 and post["painted_count"] == 0 and post["plane"]["normal"][0] > 0.999

        # the technician paints the follow-up scan (another area, both sides) and saves with a reason
        painted = stable[::2]
        mask = np.zeros(n, bool)
        mask[painted] = True
        body = {"plane": "mirror", "reason": f"{HOSTILE} cheeks unaffected", "user": "tech2", "base_version": 0,
                "stable": {"display_id": post["display_id"],
                           "mask": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode()}}

        def post_json(data, headers=None):
            return client.post(f"/api/scans/{post_id}/settings", data=json.dumps(data), content_type="application/json",
                               headers={"X-CSRF-Token": client.csrf} if headers is None else headers)

        assert post_json(body, headers={}).status_code == 403  # no CSRF token
        assert post_json(body, headers={"X-CSRF-Token": client.csrf, "Origin": "http://evil.example"}).status_code == 403
        assert post_json(dict(body, stable=dict(body["stable"], display_id="0" * 16))).status_code == 409
        r = post_json(body)
        assert r.status_code == 200, r.get_json()
        done = r.get_json()
        assert done["version"] == 1 and done["stable_vertices"] == painted.size and done["redo"] == ["scan_analyze"]
        again = post_json(dict(body, reason="a second tab, opened before the save"))
        assert again.status_code == 409 and "changed since you opened them" in again.get_json()["error"]
        assert post_json(dict(body, base_version=1, plane="landmarks")).status_code == 422  # painting: mirror only
        with sqlite3.connect(copy / "study.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM scan_settings WHERE media_id = ?", (post_id,)).fetchone()[0] == 1
            path = db.execute("SELECT stable_path FROM scan_settings WHERE media_id = ?", (post_id,)).fetchone()[0]
        assert np.array_equal(np.load(copy / path), painted)  # exactly the painted vertices
        now = client.get(f"/api/scans/{post_id}/check").get_json()
        bits = np.unpackbits(_decode(now["painted"], np.uint8), bitorder="little")[:n]
        assert np.array_equal(np.flatnonzero(bits), painted) and now["version"] == 1

        # study run from the page: only the follow-up's analysis is redone, with the painted area
        r = client.post("/api/run", data="{}", content_type="application/json", headers={"X-CSRF-Token": client.csrf})
        assert r.status_code == 202
        client.app_.extensions["hemiface"]["runs"].wait(120)
        status = client.get("/api/run").get_json()
        assert status["summary"].startswith("3 analyses: 2 already done, 1 done now"), status
        result, prov = _results(copy)[("scan_analyze", "2021-09-15")]
        assert result["plane_method"] == "mirror (stable mask)"
        assert prov["parameters"]["stable"] == f"vertex indices ({painted.size} vertices)"
        assert prov["study_run"]["inputs"]["stable"]["sha256"] == json.loads(
            sqlite3.connect(copy / "study.sqlite").execute(
                "SELECT details_json FROM audit WHERE action='scan_settings' ORDER BY id DESC").fetchone()[0]
        )["stable_sha256"]

        page = client.get("/patients/P01").get_data(as_text=True)
        assert "3D checks (audit)" in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; cheeks unaffected" in page
        assert HOSTILE not in page and NAME not in page
        for url in (f"/scans/{post_id}/check", f"/api/scans/{post_id}/check", "/api/patients/P01"):
            assert NAME not in client.get(url).get_data(as_text=True)
        assert client.get("/scans/999/check").status_code == 404
    finally:
        client.app_.extensions["hemiface"]["runs"].wait(120)
        client.app_.extensions["hemiface"]["study"].close()


def test_painting_on_a_thinned_display_saves_every_scan_vertex_under_it(built, copy, monkeypatch):
    """A scan larger than the display limit is shown clustered: painting display vertices saves exactly the scan
    vertices each of them stands for (the display's own labels), and the page shows the saving back as painted."""
    import hemiface.scan
    from hemiface.app import _scan3d
    from hemiface.scan import display_mesh, load_scan

    folder, phantom, _ = built
    n = len(phantom.vertices_mm)
    monkeypatch.setattr(hemiface.scan, "display_mesh", lambda v, f: display_mesh(v, f, max_vertices=n // 4))
    monkeypatch.setattr(_scan3d, "_cache", {})  # the unthinned displays of the other tests
    client = make_client(copy)
    try:
        media = _checks(client)
        post_id, post = media["2021-09-15"]
        m = post["display_vertices"]
        assert post["clustered"] and post["vertex_count"] == n and m <= n // 4
        shown = _decode(post["positions"], "<f4").reshape(-1, 3)
        painted = np.flatnonzero(np.abs(shown[:, 0]) > 30.0)  # both cheeks, well off the midline
        mask = np.zeros(m, bool)
        mask[painted] = True
        body = {"plane": "mirror", "reason": "cheeks unaffected", "user": "tech", "base_version": 0,
                "stable": {"display_id": post["display_id"],
                           "mask": base64.b64encode(np.packbits(mask, bitorder="little").tobytes()).decode()}}
        r = client.post(f"/api/scans/{post_id}/settings", data=json.dumps(body), content_type="application/json",
                        headers={"X-CSRF-Token": client.csrf})
        assert r.status_code == 200, r.get_json()
        with sqlite3.connect(copy / "study.sqlite") as db:
            path = db.execute("SELECT stable_path FROM scan_settings WHERE media_id = ?", (post_id,)).fetchone()[0]
        saved = np.load(copy / path)
        scan = load_scan(next((folder.parent / "sheets" / "media").glob("*_post.ply")))  # the follow-up scan itself
        labels = display_mesh(scan.vertices_mm, scan.faces, max_vertices=n // 4).labels
        assert np.array_equal(saved, np.flatnonzero(mask[labels]))  # every scan vertex of a painted display vertex
        assert len(saved) > len(painted) and np.all(np.abs(scan.vertices_mm[saved, 0]) > 20.0)
        now = client.get(f"/api/scans/{post_id}/check").get_json()
        bits = np.unpackbits(_decode(now["painted"], np.uint8), bitorder="little")[:m]
        assert np.array_equal(np.flatnonzero(bits), painted)  # shown back as painted, display vertex for vertex
    finally:
        client.app_.extensions["hemiface"]["study"].close()


def test_the_shipped_three_js_is_r111_with_its_licence(reader):
    r = reader.get("/static/vendor/three/three.min.js")
    assert r.status_code == 200 and b'REVISION="111"' in r.data
    assert reader.get("/static/vendor/three/OrbitControls.js").status_code == 200
    from importlib import resources

    vendor = resources.files("hemiface.app") / "static" / "vendor" / "three"
    assert "MIT License" in (vendor / "LICENSE").read_text() and "libjs-three" in (vendor / "SOURCES.md").read_text()
    page = reader.get("/patients/P01").get_data(as_text=True)
    assert "//" not in "".join(s.split('src="')[1].split('"')[0] for s in page.split("<script")[1:])  # no CDN


# --------------------------------------------------------------------------- in a real browser (WebGL)

@pytest.mark.skipif(browser_paths() is None, reason="browser tests need Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; make setup installs them)")
def test_the_3d_views_and_a_painting_in_the_browser(built, copy, artifacts):
    from hemiface.app import make_server

    server = make_server(copy, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = server.address.rstrip("/")
    shots = []
    try:
        with Browser(*browser_paths()) as browser:
            if not browser.script("return !!document.createElement('canvas').getContext('webgl')"):
                pytest.skip("no WebGL in this headless Chromium (the API tests above cover the data)")
            browser.get(base + "/patients/P01")
            browser.click(browser.find(".view3d button.open3d"))
            browser.wait(lambda: browser.script("return document.querySelector('.view3d').dataset.ready === '1'"),
                         what="the depth map in 3D")
            time.sleep(0.5)
            # the map is drawn: the canvas holds the colours of the scale, not only its background
            drawn = browser.script("""
                const c = document.querySelector('.view3d canvas'), t = document.createElement('canvas');
                t.width = c.width; t.height = c.height; const g = t.getContext('2d'); g.drawImage(c, 0, 0);
                const d = g.getImageData(0, 0, t.width, t.height).data; let red = 0, other = 0;
                for (let i = 0; i < d.length; i += 16) { if (d[i] > 150 && d[i + 2] < 120) red++;
                  if (Math.abs(d[i] - 0x20) + Math.abs(d[i + 1] - 0x24) + Math.abs(d[i + 2] - 0x2c) > 30) other++; }
                return [red, other];""")
            assert drawn[0] > 50 and drawn[1] > 1000, drawn  # the red dent and the face
            canvas = browser.find(".view3d canvas")
            browser.move_to(canvas)  # the middle of the view: the face, looked at from the front
            browser.wait(lambda: "here:" in browser.text(browser.find(".view3d-readout")), what="the value under the cursor")
            assert "depth here:" in browser.text(browser.find(".view3d-readout"))
            assert "defect (depth > 0 mm" in browser.text(browser.find(".view3d-status"))
            shots.append(browser.screenshot(artifacts / "patient_3d.png"))

            post_id = browser.script("return Array.from(document.querySelectorAll('a.button')).map(a => a.href)"
                                     ".filter(h => h.includes('/scans/'))[1].split('/')[4]")
            browser.get(f"{base}/scans/{post_id}/check")
            browser.wait(lambda: browser.script("return document.getElementById('check').dataset.ready === '1'"),
                         what="the 3D checks page")
            browser.click(browser.find('input[name="tool"][value="paint"]'))
            canvas = browser.find("#check-view canvas")
            browser.drag(canvas, 60, 0, start=(-120, -40))  # the patient's right forehead / temple, clear of the dent
            one_side = int(browser.text(browser.find("#painted-count")))
            assert one_side > 20
            browser.click(browser.find("#mirror-paint"))
            browser.wait(lambda: int(browser.text(browser.find("#painted-count"))) > 1.6 * one_side, what="the mirror painting")
            both = int(browser.text(browser.find("#painted-count")))
            shots.append(browser.screenshot(artifacts / "scan_check_painted.png"))
            browser.type(browser.find("#reason"), "forehead and temples unaffected")
            browser.click(browser.find("#save-check"))
            status = browser.wait(lambda: (lambda t: t if t.startswith(("saved", "not saved")) else "")(
                browser.text(browser.find("#save-status"))), what="the save")
            assert status.startswith("saved (version 1)"), status
            assert not [e for e in browser.console_errors()]
        with sqlite3.connect(copy / "study.sqlite") as db:
            count, reason = db.execute("SELECT stable_vertices, reason FROM scan_settings WHERE media_id = ?",
                                       (int(post_id),)).fetchone()
        assert count == both and reason == "forehead and temples unaffected"
        log.info("3D screenshots: %s; painted %d vertices on one side, %d with the mirror image", ", ".join(map(str, shots)),
                 one_side, both)
    finally:
        server.close()
        thread.join(10)
