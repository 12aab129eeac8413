"""The rating panel in the app: the coordinator's pages, and each rater's own pages behind their token.

Coordinator (``/rating``, ``/api/rating/...``): behind the app's access rules like every
other page; creates rounds, invites raters, closes a round and revokes a rater's link
(each with a reason, audited with who and when; see :mod:`hemiface.study._rating` for
what closing and revoking do to the results). Raters (``/rate/<token>``, ``/api/rate/<token>/...``): the personal token in
the address is the credential, so a rater needs no access token for the app and opens
nothing but their own ratings. A rater's pages have their own CSRF token (derived from
the app's secret and their token), their own page frame (no study name, no link to the
study), and show no patient id, date, technique, file name or round name; photographs
are re-encoded at one height (no file name, no camera metadata, no size that differs
between baseline and follow-up) and addressed by the rater's position and slot only.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from urllib.parse import quote

from flask import jsonify, redirect, render_template, request, send_file, url_for

from ..study import (
    RATING_SCALES,
    RaterNotFoundError,
    RaterRevokedError,
    RatingError,
    RoundClosedError,
    candidate_patients,
    close_round,
    create_round,
    invite_raters,
    list_rounds,
    rater_view,
    rating_photo,
    record_rating,
    revoke_rater,
    round_progress,
    round_results,
    submit_ratings,
)
from ._cache import JpegCache, jpeg_bytes
from ._errors import AppValidationError

#: Height, in pixels, of every photograph a rater sees (both of a pair alike).
DISPLAY_HEIGHT_PX = 720
#: Re-encoded photographs kept in memory (by file SHA-256).
RATER_PHOTO_CACHE = 16
#: Path prefixes of the raters' pages: the token after the prefix is their credential.
RATER_PREFIXES = ("/rate/", "/api/rate/")
#: Most raters and patients a round form may name.
MAX_RATERS = 50


def rater_token_of(path: str) -> str | None:
    """The rater's token in a rater page's path (``/rate/<token>/...``), else None."""
    for prefix in RATER_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):].split("/", 1)[0]
    return None


def rater_csrf(secret: str, token: str) -> str:
    """A rater's CSRF token: valid for their own pages only."""
    return hmac.new(secret.encode(), b"rater:" + token.encode(), hashlib.sha256).hexdigest()


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def _p(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _names(text) -> list[str]:
    if isinstance(text, list):
        return text
    if not isinstance(text, str):
        raise AppValidationError("raters must be a list of names (or one name per line)")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _int_or_none(value, name: str):
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise AppValidationError(f"{name} must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AppValidationError(f"{name} must be a whole number; got {value!r:.40}") from None


def register(app, study, *, csrf: str, json_body, user_of) -> None:
    """Add the rating panel's routes to ``app`` (see the module docstring)."""
    cache = JpegCache(RATER_PHOTO_CACHE)

    @app.template_filter("num")
    def num_filter(value, digits: int = 3):
        return _num(value, digits)

    @app.template_filter("pvalue")
    def p_filter(value):
        return _p(value)

    def links(invites) -> list[dict]:
        base = request.host_url.rstrip("/")
        return [dict(name=i.name, url=base + "/rate/" + quote(i.token)) for i in invites]

    def create_from(data: dict) -> dict:
        unknown = set(data) - {"name", "scale", "raters", "patients", "seed", "user"}
        if unknown:
            raise AppValidationError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                                     "allowed: name, scale, raters, patients, seed, user")
        raters = _names(data.get("raters") or [])
        patients = data.get("patients")
        if patients is not None and (not isinstance(patients, list) or len(patients) > 10_000):
            raise AppValidationError("patients must be a list of patient ids")
        if len(raters) > MAX_RATERS:
            raise AppValidationError(f"at most {MAX_RATERS} raters per round")
        done = create_round(study, data.get("name"), scale=data.get("scale"), raters=raters, patients=patients,
                            seed=_int_or_none(data.get("seed"), "seed"), user=user_of(data))
        return dict(round_id=done.round_id, name=done.name, scale=done.scale, n_items=done.n_items, seed=done.seed,
                    raters=links(done.invites))

    # ------------------------------------------------------------------ coordinator

    @app.get("/rating")
    def rating_rounds():
        ok, refused = candidate_patients(study, check_files=False)
        return render_template("rating_rounds.html", rounds=list_rounds(study), candidates=ok, refused=refused,
                               scales=RATING_SCALES.values())

    @app.post("/rating")
    def rating_create_form():
        form = request.form
        data = dict(name=form.get("name"), scale=form.get("scale"), raters=form.get("raters", ""),
                    patients=form.getlist("patients") or None, seed=form.get("seed"))
        created = create_from(data)
        return render_template("rating_links.html", created=created, round_id=created["round_id"]), 201

    @app.get("/rating/<int:round_id>")
    def rating_round(round_id):
        results = round_results(study, round_id)
        return render_template("rating_round.html", r=results, p=results.progress)

    @app.post("/rating/<int:round_id>/raters")
    def rating_invite_form(round_id):
        invites = invite_raters(study, round_id, _names(request.form.get("raters", "")), user=user_of({}))
        return render_template("rating_links.html", created=dict(raters=links(invites)), round_id=round_id), 201

    def decision(data: dict, allowed=("reason", "user")) -> tuple[str, str]:
        unknown = set(data) - set(allowed)
        if unknown:
            raise AppValidationError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                                     f"allowed: {', '.join(allowed)}")
        return data.get("reason"), user_of(data)

    @app.post("/rating/<int:round_id>/close")
    def rating_close_form(round_id):
        reason, user = decision({k: request.form.get(k) for k in ("reason", "user")})
        close_round(study, round_id, reason=reason, user=user)
        return redirect(url_for("rating_round", round_id=round_id) + "#closed", code=303)

    @app.post("/rating/<int:round_id>/raters/<int:rater_id>/revoke")
    def rating_revoke_form(round_id, rater_id):
        reason, user = decision({k: request.form.get(k) for k in ("reason", "user")})
        revoke_rater(study, round_id, rater_id, reason=reason, user=user)
        return redirect(url_for("rating_round", round_id=round_id) + "#progress", code=303)

    @app.get("/api/rating/rounds")
    def api_rating_rounds():
        return jsonify(rounds=list_rounds(study), scales=[s.to_dict() for s in RATING_SCALES.values()])

    @app.post("/api/rating/rounds")
    def api_rating_create():
        return jsonify(create_from(json_body())), 201

    @app.get("/api/rating/rounds/<int:round_id>")
    def api_rating_round(round_id):
        return app.response_class(_json(round_results(study, round_id).to_dict()), mimetype="application/json")

    @app.post("/api/rating/rounds/<int:round_id>/raters")
    def api_rating_invite(round_id):
        data = json_body()
        invites = invite_raters(study, round_id, _names(data.get("raters") or []), user=user_of(data))
        return jsonify(raters=links(invites)), 201

    @app.post("/api/rating/rounds/<int:round_id>/close")
    def api_rating_close(round_id):
        reason, user = decision(json_body())
        return jsonify(close_round(study, round_id, reason=reason, user=user))

    @app.post("/api/rating/rounds/<int:round_id>/raters/<int:rater_id>/revoke")
    def api_rating_revoke(round_id, rater_id):
        reason, user = decision(json_body())
        return jsonify(revoke_rater(study, round_id, rater_id, reason=reason, user=user))

    # ------------------------------------------------------------------ raters

    def view_of(token: str) -> dict:
        view = rater_view(study, token)
        for item in view["items"]:
            item["images"] = {slot: url_for("rater_photo", token=token, position=item["position"], slot=slot)
                              for slot in item["slots"]}
        return view

    def render_rater(template: str, token: str, **context):
        return render_template(template, token=token, rater_csrf=rater_csrf(csrf, token), **context)

    @app.get("/rate/<token>")
    def rater_home(token):
        return render_rater("rate_home.html", token, view=view_of(token))

    @app.get("/rate/<token>/<int:position>")
    def rater_item(token, position):
        view = view_of(token)
        if not 1 <= position <= view["n_items"]:
            raise RaterNotFoundError(f"no item {position} in this rating round")
        return render_rater("rate_item.html", token, view=view, item=view["items"][position - 1])

    @app.post("/rate/<token>/<int:position>")
    def rater_item_form(token, position):
        response = _int_or_none(request.form.get("response"), "the rating")
        if response is None:
            raise RatingError("choose a rating before saving")
        done = record_rating(study, token, position, response)
        view = rater_view(study, token)
        following = [i["position"] for i in view["items"] if i["response"] is None]
        after = [p for p in following if p > position] or following
        if after:
            return redirect(url_for("rater_item", token=token, position=after[0]), code=303)
        return redirect(url_for("rater_home", token=token) + f"#rated-{done['n_rated']}", code=303)

    @app.post("/rate/<token>/submit")
    def rater_submit_form(token):
        submit_ratings(study, token)
        return redirect(url_for("rater_home", token=token), code=303)

    @app.get("/rate/<token>/static/<any('app.css', 'favicon.svg'):name>")
    def rater_static(token, name):
        try:
            rater_view(study, token)  # a genuine link only
        except (RoundClosedError, RaterRevokedError):
            pass  # genuine, but its round closed or link revoked: that page keeps its style
        return app.send_static_file(name)

    @app.get("/rate/<token>/<int:position>/<slot>.jpg")
    def rater_photo(token, position, slot):
        from PIL import Image, ImageOps

        path, sha = rating_photo(study, token, position, slot)

        def encode() -> bytes:
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != sha:
                raise RatingError("this photograph changed since it was imported; tell the study coordinator")
            with Image.open(io.BytesIO(raw)) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                width = max(1, round(im.width * DISPLAY_HEIGHT_PX / im.height))
                return jpeg_bytes(im.resize((width, DISPLAY_HEIGHT_PX), Image.Resampling.LANCZOS))

        return send_file(io.BytesIO(cache.get(sha, encode)), mimetype="image/jpeg", max_age=0)

    @app.get("/api/rate/<token>")
    def api_rater_view(token):
        return jsonify(view_of(token))

    @app.post("/api/rate/<token>/items/<int:position>")
    def api_rater_rate(token, position):
        data = json_body()
        if set(data) - {"response"}:
            raise AppValidationError("send {\"response\": <a value of the scale>}")
        return jsonify(record_rating(study, token, position, data.get("response")))

    @app.post("/api/rate/<token>/submit")
    def api_rater_submit(token):
        json_body()
        return jsonify(submit_ratings(study, token))


def _json(value) -> str:
    import json

    return json.dumps(_clean(value), default=str)


def _clean(value):
    """NaN and infinity as null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
