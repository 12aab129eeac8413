"""`hemiface app` in a real browser (headless Debian Chromium through chromedriver).

Opens the overview, filters and sorts it, starts a run, opens a patient, drags an outline point
on the photo and saves: the ratio changes on the page, the audit entry appears on the patient page.
Screenshots of each page go to the test's tmp folder (logged). Skipped, saying so, when Chromium or
chromedriver is not installed (`make setup` installs Debian's chromium and chromium-driver).
"""

import json
import logging
import sqlite3
import threading
import urllib.request

import pytest

from app_webdriver import Browser, browser_paths

log = logging.getLogger(__name__)

pytestmark = pytest.mark.skipif(
    browser_paths() is None,
    reason="browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
           "make setup installs them)")


@pytest.fixture
def served(study_dir):
    from hemiface.app import make_server

    server = make_server(study_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server
    server.close()
    thread.join(10)


@pytest.fixture
def browser():
    with Browser(*browser_paths()) as b:
        yield b


def test_overview_patient_and_a_landmark_dragged_and_saved(served, browser, study_dir, artifacts):
    base = served.address.rstrip("/")
    shots = []
    browser.get(base + "/")
    rows = browser.find_all("#patients tbody tr")
    assert len(rows) == 4
    assert "<script>" in browser.text(browser.find("header .study"))  # shown as text, not run
    # filter and sort in the page
    browser.type(browser.find("#filter-text"), "P02")
    assert browser.script("return Array.from(document.querySelectorAll('#patients tbody tr')).filter(r => !r.hidden).length") == 1
    assert "no face found" in browser.text(browser.find("#patients tbody tr:not([hidden])"))
    browser.script("document.getElementById('filter-text').value=''; document.getElementById('filter-text').dispatchEvent(new Event('input'))")
    header = browser.find("#patients thead th")
    browser.click(header)
    browser.click(header)  # descending
    first = browser.script("return document.querySelector('#patients tbody tr td').textContent.trim()")
    assert first == "P03"
    # start a run from the page (nothing is missing): it finishes and says so
    browser.click(browser.find("#run-button"))
    browser.wait(lambda: "last run" in browser.text(browser.find("#run-status")), what="the run to finish")
    shots.append(browser.screenshot(artifacts / "overview.png"))

    browser.get(base + "/patients/P01")
    browser.wait(lambda: browser.script(
        "return Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length") == 2,
        what="both overlays to load")
    shots.append(browser.screenshot(artifacts / "patient.png"))
    link = browser.script("return Array.from(document.querySelectorAll('a.button')).map(a => a.href)[1]")
    browser.get(link)  # the follow-up photo
    browser.wait(lambda: browser.script("return document.getElementById('editor').dataset.ready === '1' && "
                                        "document.getElementById('photo').getBBox().width > 0"), what="the editor")
    before = float(browser.text(browser.find("#ratio")))
    # the outline point farthest to the image's right: the patient's (affected) left cheek
    key = browser.script("""
        const pts = Array.from(document.querySelectorAll('circle.outline-point'));
        pts.sort((a, b) => b.cx.baseVal.value - a.cx.baseVal.value);
        return pts[0].dataset.key;""")
    point = browser.find(f'circle[data-key="{key}"]')
    x0 = browser.script(f"return document.querySelector('circle[data-key=\"{key}\"]').cx.baseVal.value")
    browser.drag(point, 40, 0)
    x1 = browser.script(f"return document.querySelector('circle[data-key=\"{key}\"]').cx.baseVal.value")
    assert x1 > x0 + 5
    assert "1 point moved" in browser.text(browser.find("#moved"))
    shots.append(browser.screenshot(artifacts / "correct_edited.png"))
    browser.type(browser.find("#reason"), "cheek outline inside the contour")
    browser.click(browser.find("#save"))
    status = browser.wait(lambda: (lambda t: t if t.startswith(("saved", "not saved", "correction")) else "")(
        browser.text(browser.find("#save-status"))), timeout=90, what="the save")
    assert status.startswith("saved"), status
    after = float(browser.text(browser.find("#ratio")))
    assert after > before
    shots.append(browser.screenshot(artifacts / "correct_saved.png"))
    with sqlite3.connect(study_dir / "study.sqlite") as db:
        details = json.loads(db.execute("SELECT details_json FROM audit WHERE action='correct_landmarks'").fetchone()[0])
    assert details["reason"] == "cheek outline inside the contour"
    assert details["symmetry_ratio_after_percent"] == pytest.approx(after, abs=0.01)

    # zoom and undo
    width = browser.script("return document.getElementById('canvas').viewBox.baseVal.width")
    browser.click(browser.find("#zoom-in"))
    assert browser.script("return document.getElementById('canvas').viewBox.baseVal.width") < width
    browser.click(browser.find("#zoom-reset"))
    point = browser.find(f'circle[data-key="{key}"]')
    x_saved = browser.script(f"return document.querySelector('circle[data-key=\"{key}\"]').cx.baseVal.value")
    browser.drag(point, -30, 0)
    assert browser.script(f"return document.querySelector('circle[data-key=\"{key}\"]').cx.baseVal.value") < x_saved - 5
    browser.click(browser.find("#undo"))
    assert browser.script(f"return document.querySelector('circle[data-key=\"{key}\"]').cx.baseVal.value") == x_saved

    # another tab saves a newer correction meanwhile: this tab's save is refused and says so
    media = browser.script("return document.getElementById('editor').dataset.media")
    csrf = browser.script("return document.querySelector('meta[name=\"csrf-token\"]').content")
    with urllib.request.urlopen(f"{base}/api/photos/{media}/landmarks", timeout=30) as r:
        now = json.loads(r.read())
    other = json.dumps({"points": now["points"], "outline": now["outline"], "reason": "second tab",
                        "user": "dr_b", "base_version": now["version"]}).encode()
    req = urllib.request.Request(f"{base}/api/photos/{media}/landmarks", data=other, method="POST",
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
    with urllib.request.urlopen(req, timeout=90) as r:
        assert json.loads(r.read())["version"] == 2
    browser.drag(browser.find(f'circle[data-key="{key}"]'), 20, 0)
    browser.click(browser.find("#save"))
    status = browser.wait(lambda: (lambda t: t if t.startswith("not saved") else "")(
        browser.text(browser.find("#save-status"))), timeout=60, what="the refusal")
    assert "corrected since you opened them" in status
    shots.append(browser.screenshot(artifacts / "correct_conflict.png"))
    with sqlite3.connect(study_dir / "study.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM landmark_corrections").fetchone()[0] == 2

    browser.get(base + "/patients/P01")
    audit = browser.text(browser.find("#audit"))
    assert "cheek outline inside the contour" in audit and f"{after:.2f}" in audit
    shots.append(browser.screenshot(artifacts / "patient_after.png"))
    # no script errors (the refused save's 409 is logged by the browser as a failed request: expected)
    assert not [e for e in browser.console_errors() if "409" not in e["message"]]
    log.info("browser screenshots: %s", ", ".join(str(s) for s in shots))
