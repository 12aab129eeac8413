"""The rating panel through Flask's test client: a round with two raters end to end, blinding of
everything a rater receives, CSRF, final submissions, raters kept apart, and access by personal link
when the app is served to others.

The study (tests/rating_helpers.py) has photographs only; nothing is analysed.
"""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
from PIL import Image

from app_helpers import HOSTILE, csrf_of
from rating_helpers import DATES, FORBIDDEN, PATIENTS, make_rating_study

ROUND_NAME = "fat grafting versus free flap, round 1"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_rating_study(tmp_path_factory.mktemp("ratingapp"), name="panel study 2022")


def _client(folder, token=None):
    from hemiface.app import create_app

    app = create_app(folder, token=token)
    app.testing = True
    client = app.test_client()
    client.csrf = csrf_of(app)
    client.app_ = app
    return client


@pytest.fixture
def coordinator(built, tmp_path):
    shutil.copytree(built, tmp_path / "study")
    client = _client(tmp_path / "study")
    yield client
    client.app_.extensions["hemiface"]["study"].close()


def _post(client, url, body, *, csrf):
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def _rater_csrf(client, token):
    html = client.get(f"/rate/{token}").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def _token(url: str) -> str:
    return url.rsplit("/rate/", 1)[1]


def _create(client, raters=("Dr A", "Dr B"), scale="comparison_5", **extra):
    r = _post(client, "/api/rating/rounds", dict(name=ROUND_NAME, scale=scale, raters=list(raters), seed=2026, **extra),
              csrf=client.csrf)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_round_with_two_raters_end_to_end(coordinator):
    from hemiface.stats import rater_agreement
    from hemiface.study import rating_photo, round_results

    created = _create(coordinator)
    assert created["n_items"] == 6 and created["seed"] == 2026
    assert [r["name"] for r in created["raters"]] == ["Dr A", "Dr B"]
    assert all(r["url"].startswith("http://localhost/rate/") for r in created["raters"])
    tokens = [_token(r["url"]) for r in created["raters"]]
    study = coordinator.app_.extensions["hemiface"]["study"]
    # each rater's opinion of each patient's change (follow-up versus baseline); Dr B one notch off on two.
    # They answer on the scale as shown: "right more symmetric" is +, so the sign depends on where each rater
    # was shown the follow-up (found here from the files: the test knows, the rater does not).
    opinions = {"Dr A": dict(zip(PATIENTS, [2, 1, 1, 0, -1, 2])), "Dr B": dict(zip(PATIENTS, [2, 1, 0, 0, -1, 1]))}
    raw = {}
    for (name, change), token in zip(opinions.items(), tokens):
        csrf = _rater_csrf(coordinator, token)
        view = coordinator.get(f"/api/rate/{token}").get_json()
        assert view["rater"] == name and view["n_items"] == 6 and not view["submitted"]
        for item in view["items"]:
            right = rating_photo(study, token, item["position"], "right")[0].name
            patient, followup_right = right.split("_")[0].upper(), right.endswith("_post.png")
            response = change[patient] if followup_right else -change[patient]
            raw[name, patient] = response
            r = _post(coordinator, f"/api/rate/{token}/items/{item['position']}", {"response": response}, csrf=csrf)
            assert r.status_code == 200, r.get_json()
        assert _post(coordinator, f"/api/rate/{token}/submit", {}, csrf=csrf).status_code == 200
    page = coordinator.get(f"/rating/{created['round_id']}").get_data(as_text=True)
    result = coordinator.get(f"/api/rating/rounds/{created['round_id']}").get_json()
    assert result["progress"]["complete"] and result["progress"]["n_submitted"] == 2
    forms = [a["form"] for a in result["agreement"]]
    assert forms == ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)", "linear", "quadratic"]
    # the page's and the API's agreement are the library's, on the scores (follow-up versus baseline)
    res = round_results(study, created["round_id"])
    assert {(r.rater, r.patient_id): r.score for r in res.ratings.itertuples()} == {
        (name, p): v for name, change in opinions.items() for p, v in change.items()}
    assert any(raw["Dr A", p] != raw["Dr B", p] for p in PATIENTS)  # the raters saw some pairs the other way round
    final = res.ratings.assign(item=res.ratings.patient_id)
    wide = final.pivot(index="item", columns="rater", values="score")[["Dr A", "Dr B"]].astype(float)
    expected = rater_agreement(wide, categories=range(-2, 3)).set_index("form").estimate
    for a in result["agreement"]:
        assert a["estimate"] == pytest.approx(expected[a["form"]], abs=1e-12)
    icc21 = expected["ICC(2,1)"]
    assert 0.7 < icc21 < 1  # the raters agree on the change although their raw answers differ
    assert f"{icc21:.3f}" in page and 'data-form="ICC(2,1)"' in page and "absolute agreement" in page
    assert "Every rater has submitted." in page
    for pid in PATIENTS:  # the coordinator sees the patients; the raters never do
        assert pid in page
    assert {d["technique"] for d in result["distribution"]} == {"fat_grafting", "free_flap"}
    assert sum(d["n"] for d in result["distribution"]) == 12
    listed = coordinator.get("/api/rating/rounds").get_json()["rounds"]
    assert listed[0]["n_submitted"] == 2 and listed[0]["name"] == ROUND_NAME


@pytest.mark.parametrize("scale", ["comparison_5", "symmetry_5"])
def test_nothing_a_rater_receives_names_the_patient_technique_dates_or_which_photo_is_which(coordinator, scale):
    created = _create(coordinator, raters=["Dr A"], scale=scale)
    token = _token(created["raters"][0]["url"])
    view = coordinator.get(f"/api/rate/{token}")
    pages = [coordinator.get(f"/rate/{token}"), view]
    pages += [coordinator.get(f"/rate/{token}/{i['position']}") for i in view.get_json()["items"]]
    pages.append(coordinator.get(f"/rate/{token}/99"))  # an error, in the rater's frame
    assert [p.status_code for p in pages[:-1]] == [200] * (len(pages) - 1) and pages[-1].status_code == 404
    assert all(p.headers["Referrer-Policy"] == "same-origin" for p in pages)  # the link never leaves in a Referer
    study = coordinator.app_.extensions["hemiface"]["study"]
    words = FORBIDDEN + DATES + ("2022", study.settings.name, ROUND_NAME, "technique", "patient",
                                 "/patients/", 'href="/"', "rating panel")
    for page in pages:
        text = page.get_data(as_text=True)
        lowered = text.lower()
        for word in words:
            assert word.lower() not in lowered, (page.request.path, word)
        for src in re.findall(r'src="([^"]+)"', text):  # images only by the rater's position and slot
            assert re.fullmatch(rf"/rate/{re.escape(token)}/\d+/(left|right|photo)\.jpg", src), src
        for href in re.findall(r'href="([^"]+)"', text):  # and every link stays inside the rater's pages
            assert href.startswith(f"/rate/{token}"), href
    images = [coordinator.get(url) for item in view.get_json()["items"] for url in item["images"].values()]
    sizes = set()
    for img in images:
        assert img.status_code == 200 and img.mimetype == "image/jpeg"
        assert "filename" not in img.headers.get("Content-Disposition", "")
        with Image.open(io.BytesIO(img.data)) as im:
            assert not im.getexif() and "exif" not in im.info
            sizes.add(im.height)
    assert sizes == {720}  # every photograph at one height: no size tells baseline from follow-up


def test_csrf_protects_every_rater_and_coordinator_write(coordinator):
    created = _create(coordinator)
    a, b = (_token(r["url"]) for r in created["raters"])
    csrf_a = _rater_csrf(coordinator, a)
    url = f"/api/rate/{a}/items/1"
    assert _post(coordinator, url, {"response": 1}, csrf=None).status_code == 403
    assert _post(coordinator, url, {"response": 1}, csrf=coordinator.csrf).status_code == 403  # the app's own token
    assert _post(coordinator, url, {"response": 1}, csrf=_rater_csrf(coordinator, b)).status_code == 403  # B's
    assert coordinator.post(f"/rate/{a}/1", data={"response": "1"}).status_code == 403  # form without its token
    cross = coordinator.post(url, data=json.dumps({"response": 1}), content_type="application/json",
                             headers={"X-CSRF-Token": csrf_a, "Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert _post(coordinator, "/api/rating/rounds", dict(name="x", scale="comparison_5"), csrf=None).status_code == 403
    assert _post(coordinator, "/api/rating/rounds", dict(name="x", scale="comparison_5"), csrf=csrf_a).status_code == 403
    assert coordinator.get(f"/api/rate/{a}").get_json()["n_rated"] == 0  # nothing was written
    assert _post(coordinator, url, {"response": 1}, csrf=csrf_a).status_code == 200


def test_edit_until_submit_with_the_page_forms_then_final(coordinator):
    created = _create(coordinator, raters=["Dr A"])
    token = _token(created["raters"][0]["url"])
    csrf = _rater_csrf(coordinator, token)
    r = coordinator.post(f"/rate/{token}/1", data={"response": "2", "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/rate/{token}/2")
    r = coordinator.post(f"/rate/{token}/1", data={"response": "-1", "csrf_token": csrf})  # changed before submitting
    assert r.status_code == 303
    assert coordinator.get(f"/api/rate/{token}").get_json()["items"][0]["response"] == -1
    item = coordinator.get(f"/rate/{token}/1").get_data(as_text=True)
    assert re.search(r'value="-1" checked', item)
    early = coordinator.post(f"/rate/{token}/submit", data={"csrf_token": csrf})
    assert early.status_code == 400 and "5 not rated yet" in early.get_data(as_text=True)
    assert coordinator.post(f"/rate/{token}/2", data={"csrf_token": csrf}).status_code == 400  # no choice made
    for position in range(2, 7):
        coordinator.post(f"/rate/{token}/{position}", data={"response": "0", "csrf_token": csrf})
    home = coordinator.get(f"/rate/{token}").get_data(as_text=True)
    assert 'id="submit" >' in home or 'id="submit">' in home  # enabled now
    assert coordinator.post(f"/rate/{token}/submit", data={"csrf_token": csrf}).status_code == 303
    home = coordinator.get(f"/rate/{token}").get_data(as_text=True)
    assert 'id="submitted"' in home and 'id="submit-form"' not in home
    assert "<fieldset class=\"scale\" disabled>" in coordinator.get(f"/rate/{token}/1").get_data(as_text=True)
    again = coordinator.post(f"/rate/{token}/1", data={"response": "2", "csrf_token": csrf})
    assert again.status_code == 409 and "final" in again.get_data(as_text=True)
    assert _post(coordinator, f"/api/rate/{token}/items/1", {"response": 2}, csrf=csrf).status_code == 409
    assert _post(coordinator, f"/api/rate/{token}/submit", {}, csrf=csrf).status_code == 409
    assert coordinator.get(f"/api/rate/{token}").get_json()["items"][0]["response"] == -1


def test_a_second_rater_cannot_see_or_change_the_first_ones_ratings(coordinator):
    created = _create(coordinator)
    a, b = (_token(r["url"]) for r in created["raters"])
    csrf_a, csrf_b = _rater_csrf(coordinator, a), _rater_csrf(coordinator, b)
    for position in range(1, 7):
        _post(coordinator, f"/api/rate/{a}/items/{position}", {"response": 2}, csrf=csrf_a)
    view_b = coordinator.get(f"/api/rate/{b}").get_json()
    assert view_b["rater"] == "Dr B" and view_b["n_rated"] == 0
    assert "checked" not in coordinator.get(f"/rate/{b}/1").get_data(as_text=True)
    # B's CSRF token with A's link is refused; B's own writes touch only B's ratings
    assert _post(coordinator, f"/api/rate/{a}/items/1", {"response": -2}, csrf=csrf_b).status_code == 403
    assert _post(coordinator, f"/api/rate/{b}/items/1", {"response": -2}, csrf=csrf_b).status_code == 200
    assert [i["response"] for i in coordinator.get(f"/api/rate/{a}").get_json()["items"]] == [2] * 6
    # a wrong or truncated link opens nothing
    for bad in (a[:-1], a + "x", "nobody"):
        assert coordinator.get(f"/api/rate/{bad}").status_code == 404
        page = coordinator.get(f"/rate/{bad}")
        assert page.status_code == 404 and "panel study" not in page.get_data(as_text=True)


def test_bad_input_is_refused_with_a_clear_message(coordinator):
    created = _create(coordinator, raters=["Dr A"])
    token = _token(created["raters"][0]["url"])
    csrf = _rater_csrf(coordinator, token)
    for body, status, message in (({"response": 7}, 400, "one of -2, -1, 0, 1, 2"),
                                  ({"response": "2"}, 400, "one of"), ({"response": 1, "x": 1}, 400, "send"),
                                  ({}, 400, "one of")):
        r = _post(coordinator, f"/api/rate/{token}/items/1", body, csrf=csrf)
        assert r.status_code == status and message in r.get_json()["error"], r.get_json()
    assert _post(coordinator, f"/api/rate/{token}/items/99", {"response": 1}, csrf=csrf).status_code == 404
    bad_round = _post(coordinator, "/api/rating/rounds", dict(name="y", scale="likert", raters=["A"]),
                      csrf=coordinator.csrf)
    assert bad_round.status_code == 400 and "scale must be one of" in bad_round.get_json()["error"]
    unknown = _post(coordinator, "/api/rating/rounds", dict(name="y", scale="comparison_5", colour="red"),
                    csrf=coordinator.csrf)
    assert unknown.status_code == 400 and "unknown field" in unknown.get_json()["error"]
    assert coordinator.get("/api/rating/rounds/99").status_code == 404


def test_hostile_names_are_shown_as_text(coordinator):
    created = _post(coordinator, "/api/rating/rounds", dict(name=HOSTILE, scale="comparison_5", raters=[HOSTILE]),
                    csrf=coordinator.csrf).get_json()
    token = _token(created["raters"][0]["url"])
    pages = [coordinator.get("/rating"), coordinator.get(f"/rating/{created['round_id']}"),
             coordinator.get(f"/rate/{token}"), coordinator.get(f"/rate/{token}/1")]
    for page in pages:
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_coordinator_pages_create_a_round_from_the_form(coordinator):
    page = coordinator.get("/rating").get_data(as_text=True)
    assert page.count('name="patients"') == 6 and "RQ107 (no photograph at the follow-up visit)" in page
    r = coordinator.post("/rating", data={"csrf_token": coordinator.csrf, "name": "form round", "scale": "improvement_4",
                                          "raters": "Dr A\nDr B\n", "patients": ["RQ101", "RQ104", "RQ105"],
                                          "seed": "7"})
    assert r.status_code == 201
    html = r.get_data(as_text=True)
    urls = re.findall(r"<code>(http://localhost/rate/[^<]+)</code>", html)
    assert len(urls) == 2 and "not shown again" in html
    listed = coordinator.get("/api/rating/rounds").get_json()["rounds"]
    assert listed[0]["n_items"] == 3 and listed[0]["scale"] == "improvement_4"
    more = coordinator.post(f"/rating/{listed[0]['round_id']}/raters", data={"csrf_token": coordinator.csrf,
                                                                             "raters": "Dr C"})
    assert more.status_code == 201 and len(re.findall(r"<code>http://localhost/rate/", more.get_data(as_text=True))) == 1
    # an unblinded improvement scale labels the photographs before and after
    item = coordinator.get("/rate/" + urls[0].rsplit("/rate/", 1)[1] + "/1").get_data(as_text=True)
    assert "<figcaption>before</figcaption>" in item and "<figcaption>after</figcaption>" in item


def _round_of_two(client):
    """A new round with raters A and B: (round id, A's token, B's token)."""
    created = _create(client)
    return (created["round_id"], *(_token(r["url"]) for r in created["raters"]))


def test_the_coordinator_closes_a_round_and_every_rater_link_then_says_so(coordinator):
    rid, a, b = _round_of_two(coordinator)
    csrf_a = _rater_csrf(coordinator, a)
    assert _post(coordinator, f"/api/rate/{a}/items/1", {"response": 1}, csrf=csrf_a).status_code == 200
    close = f"/api/rating/rounds/{rid}/close"
    assert _post(coordinator, close, {"reason": "x"}, csrf=None).status_code == 403
    assert _post(coordinator, close, {"reason": "x"}, csrf=csrf_a).status_code == 403  # a rater cannot close it
    assert coordinator.post(f"/rating/{rid}/close", data={"reason": "x"}).status_code == 403  # form without its token
    missing = _post(coordinator, close, {"user": "coordinator"}, csrf=coordinator.csrf)
    assert missing.status_code == 400 and "give the reason" in missing.get_json()["error"]
    assert _post(coordinator, close, {"reason": "x", "force": True}, csrf=coordinator.csrf).status_code == 400
    assert coordinator.get(f"/api/rate/{a}").status_code == 200  # nothing refused has closed it
    done = _post(coordinator, close, {"reason": HOSTILE, "user": "coordinator"}, csrf=coordinator.csrf)
    assert done.status_code == 200 and done.get_json()["n_unsubmitted"] == 2
    for token in (a, b):
        page = coordinator.get(f"/rate/{token}")
        html = page.get_data(as_text=True)
        assert page.status_code == 410 and "This rating round is closed" in html and "no more ratings" in html
        assert "Back to your ratings" not in html and ROUND_NAME not in html and "panel study" not in html
        assert coordinator.get(f"/rate/{token}/1").status_code == 410
        assert coordinator.get(f"/rate/{token}/1/left.jpg").status_code == 410  # no photograph either
        assert coordinator.get(f"/rate/{token}/static/app.css").status_code == 200  # the page keeps its style
    refused = _post(coordinator, f"/api/rate/{a}/items/2", {"response": 1}, csrf=csrf_a)
    assert refused.status_code == 410 and "closed" in refused.get_json()["error"]
    assert coordinator.post(f"/rate/{a}/submit", data={"csrf_token": csrf_a}).status_code == 410
    assert _post(coordinator, close, {"reason": "again"}, csrf=coordinator.csrf).status_code == 409
    again = _post(coordinator, f"/api/rating/rounds/{rid}/raters", {"raters": ["Dr C"]}, csrf=coordinator.csrf)
    assert again.status_code == 409 and "closed" in again.get_json()["error"]
    html = coordinator.get(f"/rating/{rid}").get_data(as_text=True)
    assert 'id="closed"' in html and "by coordinator: &lt;script&gt;" in html and "<script>alert" not in html
    assert 'id="close-form"' not in html and "Invite more raters" not in html
    study = coordinator.app_.extensions["hemiface"]["study"]
    from hemiface.study.models import AuditEntry

    with study.session() as session:
        (entry,) = session.query(AuditEntry).filter_by(action="close_rating_round").all()
        assert entry.user == "coordinator" and json.loads(entry.details_json)["reason"] == HOSTILE


def test_the_coordinator_revokes_one_link_from_the_round_page(coordinator):
    rid, a, b = _round_of_two(coordinator)
    csrf_b = _rater_csrf(coordinator, b)
    assert _post(coordinator, f"/api/rate/{b}/items/1", {"response": 2}, csrf=csrf_b).status_code == 200
    page = coordinator.get(f"/rating/{rid}").get_data(as_text=True)
    forms = re.findall(r'<form class="inline revoke" method="post" action="(/rating/\d+/raters/(\d+)/revoke)"', page)
    assert len(forms) == 2 and 'id="close-form"' in page
    url, rater_b = forms[1]
    assert coordinator.post(url, data={"reason": "leaked"}).status_code == 403  # without the page's CSRF token
    done = coordinator.post(url, data={"csrf_token": coordinator.csrf, "reason": "link leaked", "user": "coord"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/rating/{rid}#progress")
    gone = coordinator.get(f"/rate/{b}")
    assert gone.status_code == 410 and "This rating link no longer works" in gone.get_data(as_text=True)
    assert _post(coordinator, f"/api/rate/{b}/items/2", {"response": 1}, csrf=csrf_b).status_code == 410
    assert coordinator.get(f"/rate/{a}").status_code == 200  # the other rater carries on
    page = coordinator.get(f"/rating/{rid}").get_data(as_text=True)
    assert f'data-revoked="yes" data-rater="{rater_b}"><td>Dr B' in page
    assert "revoked" in page and "by coord: link leaked" in page and "ratings kept, not analysed" in page
    again = _post(coordinator, f"/api/rating/rounds/{rid}/raters/{rater_b}/revoke", {"reason": "x"},
                  csrf=coordinator.csrf)
    assert again.status_code == 409 and "revoked already" in again.get_json()["error"]
    assert _post(coordinator, f"/api/rating/rounds/{rid}/raters/999/revoke", {"reason": "x"},
                 csrf=coordinator.csrf).status_code == 404
    result = coordinator.get(f"/api/rating/rounds/{rid}").get_json()["progress"]
    assert [r["revoked_by"] for r in result["raters"]] == [None, "coord"] and result["n_revoked"] == 1


def test_served_to_others_a_rater_needs_only_their_link(built, tmp_path):
    shutil.copytree(built, tmp_path / "study")
    client = _client(tmp_path / "study", token="access-secret")
    try:
        headers = {"Authorization": "Bearer access-secret"}
        r = client.post("/api/rating/rounds", data=json.dumps(dict(name="remote", scale="comparison_5", raters=["Dr A"])),
                        content_type="application/json", headers={**headers, "X-CSRF-Token": client.csrf})
        assert r.status_code == 201
        token = _token(r.get_json()["raters"][0]["url"])
        anonymous = client.application.test_client()
        assert anonymous.get("/").status_code == 401 and anonymous.get("/rating").status_code == 401
        assert anonymous.get("/api/rating/rounds").status_code == 401
        assert anonymous.get(f"/rate/{token}").status_code == 200
        assert anonymous.get("/static/app.css").status_code == 401  # the app's files stay behind its token
        assert anonymous.get(f"/rate/{token}/static/app.css").status_code == 200  # the rater's stylesheet
        assert anonymous.get("/rate/not-a-token/static/app.css").status_code == 404
        csrf = _rater_csrf(anonymous, token)
        assert _post(anonymous, f"/api/rate/{token}/items/1", {"response": 1}, csrf=csrf).status_code == 200
        assert anonymous.get(f"/rate/{token}/1/left.jpg").status_code == 200
        assert anonymous.get("/rate/not-a-token").status_code == 404
    finally:
        client.app_.extensions["hemiface"]["study"].close()
