"""The rating panel in a real browser (headless Debian Chromium through chromedriver): the coordinator
creates a round of three patients with two raters on the page, each rater opens their link, rates every pair with the
page's form and submits, the coordinator's page shows the agreement, and once the coordinator closes the round on
its page a rater's link says it is closed; the study report then shows the round's agreement. Screenshots go to
test-artifacts/app/ (logged). Skipped, saying so, without Chromium and chromedriver.
"""

import logging
import re
import threading

import pytest

from app_webdriver import Browser, browser_paths
from rating_helpers import make_rating_study

log = logging.getLogger(__name__)

pytestmark = pytest.mark.skipif(
    browser_paths() is None,
    reason="browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
           "make setup installs them)")


def test_a_round_with_two_raters_in_the_browser(tmp_path, artifacts):
    from hemiface.app import make_server
    from hemiface.study import open_study, rating_photo, round_results

    folder = make_rating_study(tmp_path)
    server = make_server(folder, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    shots = []
    try:
        with Browser(*browser_paths()) as browser:
            base = server.address.rstrip("/")
            browser.get(base + "/rating")
            browser.type(browser.find("#new-round input[name=name]"), "browser round")
            browser.script("document.querySelector('#new-round textarea[name=raters]').value = 'Dr A\\nDr B';"
                           "document.querySelectorAll('#new-round input[name=patients]').forEach("
                           "  c => { c.checked = ['RQ101', 'RQ102', 'RQ104'].includes(c.value); });")
            browser.click(browser.find("#new-round button[type=submit]"))
            browser.wait(lambda: browser.find_all("#links code"), what="the raters' links")
            links = [browser.text(e) for e in browser.find_all("#links code")]
            shots.append(browser.screenshot(artifacts / "rating_links.png"))
            assert len(links) == 2 and all(link.startswith(base + "/rate/") for link in links)
            opinions = {links[0]: {"RQ101": 2, "RQ102": 0, "RQ104": -1}, links[1]: {"RQ101": 2, "RQ102": 1, "RQ104": -1}}
            with open_study(folder) as study:
                for link, change in opinions.items():
                    token = link.rsplit("/rate/", 1)[1]
                    browser.get(link)
                    browser.click(browser.find("#next"))
                    for position in range(1, 4):
                        browser.wait(lambda: browser.script(
                            "return location.pathname.endsWith('/' + arguments[0]) && Array.from(document.images)"
                            ".filter(i => i.complete && i.naturalHeight === 720).length === 2", position),
                            what=f"item {position} and both photographs")
                        right = rating_photo(study, token, position, "right")[0].name
                        value = change[right.split("_")[0].upper()] * (1 if right.endswith("_post.png") else -1)
                        browser.click(browser.find(f'input[name=response][value="{value}"]'))
                        if position == 1 and link == links[0]:
                            shots.append(browser.screenshot(artifacts / "rating_item.png"))
                        browser.click(browser.find("#save"))
                    browser.wait(lambda: browser.script("return !!document.getElementById('submit-form')"),
                                 what="the rater's overview")
                    assert "3 of 3 rated" in browser.text(browser.find("#progress"))
                    browser.click(browser.find("#submit"))
                    browser.wait(lambda: browser.find_all("#submitted"), what="the submission")
                shots.append(browser.screenshot(artifacts / "rating_submitted.png"))
                expected = round_results(study, 1).agreement.set_index("form").estimate
            browser.get(base + "/rating/1")
            row = browser.text(browser.find('#agreement tr[data-form="ICC(2,1)"]'))
            assert f"{expected['ICC(2,1)']:.3f}" in row and "absolute agreement" in row
            assert "Every rater has submitted." in browser.text(browser.find("#status"))
            shots.append(browser.screenshot(artifacts / "rating_round.png"))
            assert re.search(r"quadratic", browser.text(browser.find("#agreement")))
            assert not browser.console_errors()
            # the coordinator closes the round on its page; a rater's link then says so
            browser.type(browser.find("#close-form input[name=reason]"), "all raters done")
            browser.click(browser.find("#close-form button[type=submit]"))
            browser.wait(lambda: browser.find_all("#closed"), what="the closed round's page")
            assert "all raters done" in browser.text(browser.find("#closed"))
            shots.append(browser.screenshot(artifacts / "rating_round_closed.png"))
            browser.get(links[0])
            assert browser.text(browser.find("#error-heading")) == "This rating round is closed"
            shots.append(browser.screenshot(artifacts / "rate_closed.png"))
    finally:
        server.close()
        thread.join(10)
    log.info("rating panel screenshots: %s", ", ".join(str(s) for s in shots))
    # and the study report shows the round's agreement: the same ICC(2,1) the coordinator's page showed
    from hemiface.study import build_study_report

    with open_study(folder) as study:
        report, _endpoints, _tables = build_study_report(study, with_patient_pages=False)
    html = report.to_html()
    assert "Blinded rating" in html and "agreement between the raters" in html
    assert re.search(rf"ICC\(2,1\), two-way random effects, absolute agreement, single rater</td>\s*<td[^>]*>"
                     rf"{expected['ICC(2,1)']:.2f} \(", html)  # the report prints two decimals
