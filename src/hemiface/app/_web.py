"""The Flask application: pages, JSON endpoints, and the checks every request passes.

Security model (see the README's "hemiface app" section):

* **Who may connect.** Served on this computer only (127.0.0.1) the app needs no
  login, but it answers only requests whose ``Host`` is a loopback name, so a web
  page elsewhere cannot reach it by DNS rebinding. Served on any other address it
  requires the access token printed at start: ``?token=...`` once, then an
  HttpOnly, SameSite=Strict cookie; every other request gets 401.
* **Raters.** A rater's personal link (``/rate/<token>``) is their credential: it opens
  their own ratings and nothing else, with or without the app's access token (see
  :mod:`hemiface.app._rating`); their pages carry their own CSRF token.
* **Writes.** Every POST must carry the page's CSRF token (``X-CSRF-Token`` header),
  must come from the app's own origin when the browser says where it comes from,
  and JSON endpoints accept only ``application/json``. A correction carries the
  version it was made from; a stale one is refused with 409.
* **Files.** Result images come only from the study's ``results/``, by analysis,
  content-hash folder name and a fixed list of file names; photographs only by
  their database id, re-encoded (no camera metadata), for photos the study analyses.
* **Text.** Templates escape everything (Jinja autoescaping); scripts insert text
  with ``textContent`` only; a strict Content-Security-Policy allows no inline
  script and nothing from another origin.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import io
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_file
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import __version__, logger
from .._errors import HemifaceError
from ..study import (ANALYSES, RaterNotFoundError, RaterRevokedError, RatingClosedError, RatingError, RoundClosedError,
                     StaleEditError, open_study, run_study, write_endpoints)
from ..study.models import AnalysisResult
from . import _data, _rating, _scan3d
from ._cache import JpegCache, jpeg_bytes
from ._errors import AppValidationError, ConflictError, NotFoundError

#: Host names that mean "this computer" (the only ones answered without a token).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Most analyses a run from the page may start in parallel (processes): this computer's cores.
MAX_JOBS = max(1, os.cpu_count() or 1)
#: Photos kept re-encoded in memory for the landmark editor.
PHOTO_CACHE_SIZE = 8
#: Largest request body accepted (a landmark edit is a few kB).
MAX_REQUEST_BYTES = 1_000_000
#: Files of the study folder the overview offers for download, when present (name -> path in the study).
STUDY_DOWNLOADS = {
    "report.html": "report/report.html",
    "report.pdf": "report/report.pdf",
    "analysis.xlsx": "analysis/analysis.xlsx",
}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _host_name(host: str) -> str:
    """``Host`` header -> name without port (``[::1]:8765`` -> ``::1``)."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RunManager:
    """`study run` in a background thread of the server; its progress is polled by the overview page.

    One run at a time (the app's write lock, and the study's own run lock inside
    :func:`hemiface.study.run_study`, which also keeps a command-line run out).
    """

    def __init__(self, study_path: Path, write_lock: threading.Lock):
        self.study_path = study_path
        self.write_lock = write_lock
        self._lock = threading.Lock()
        self.state = dict(running=False, started_utc=None, finished_utc=None, todo=0, summary=None,
                          failures=[], error=None)
        self.thread = None

    def start(self, study, *, retry_failed: bool, jobs: int | None) -> dict:
        if not self.write_lock.acquire(blocking=False):
            raise ConflictError("a study run or a correction is in progress; wait for it to finish")
        try:
            planned, _problems = _data.plan_jobs(study)
            with study.session() as session:
                done = {(r.analysis, r.inputs_sha256, r.parameters_sha256): r.status
                        for r in session.scalars(select(AnalysisResult))}
            todo = {j.key for j in planned
                    if done.get(j.key) != "ok" and not (done.get(j.key) == "failed" and not retry_failed)}
            now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
            with self._lock:
                self.state = dict(running=True, started_utc=now, finished_utc=None, todo=len(todo), summary=None,
                                  failures=[], error=None)
            self.thread = threading.Thread(target=self._run, args=(retry_failed, jobs), name="hemiface-study-run",
                                           daemon=True)
            self.thread.start()
        except BaseException:
            self.write_lock.release()
            raise
        return self.status(study)

    def _run(self, retry_failed: bool, jobs: int | None) -> None:
        try:
            with open_study(self.study_path) as study:
                summary = run_study(study, jobs=jobs, retry_failed=retry_failed)
            update = dict(summary=str(summary), failures=summary.failures)
        except HemifaceError as exc:
            update = dict(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - shown on the page; the server carries on
            logger.exception("study run from the app failed")
            update = dict(error=f"internal error: {exc.__class__.__name__}: {exc}")
        finally:
            self.write_lock.release()
        with self._lock:
            self.state.update(update, running=False,
                              finished_utc=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))

    def status(self, study) -> dict:
        with self._lock:
            state = dict(self.state)
        done = 0
        if state["started_utc"] is not None:
            with study.session() as session:
                done = int(session.scalar(select(func.count(AnalysisResult.id))
                                          .where(AnalysisResult.created_utc >= state["started_utc"])))
        names = _data.file_names(study)
        failures = [dict(f, message=_data.mask(f.get("message"), names)) for f in state["failures"]]
        return dict(running=state["running"], todo=state["todo"], done=min(done, state["todo"]),
                    started_utc=_iso(state["started_utc"]), finished_utc=_iso(state["finished_utc"]),
                    summary=state["summary"], failures=failures, error=_data.mask(state["error"], names))

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def _iso(value):
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def create_app(study_dir, *, token: str | None = None) -> Flask:
    """The web workspace over one study folder.

    Parameters
    ----------
    study_dir : path
        A study folder (``hemiface study init``).
    token : str, optional
        The access token every request must present (``?token=`` once, then a
        cookie). Without one, only requests addressed to a loopback host name are
        answered: the app must then be served on 127.0.0.1 only (see :func:`make_server`).

    Returns
    -------
    flask.Flask
        A WSGI application (``app.test_client()`` in tests).
    """
    study = open_study(study_dir)
    app = Flask("hemiface.app", root_path=str(Path(__file__).parent))
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, JSON_SORT_KEYS=False)
    write_lock = threading.Lock()
    csrf = secrets.token_urlsafe(32)
    cookie = "hemiface_" + (hashlib.sha256(token.encode()).hexdigest()[:10] if token else "local")
    runs = RunManager(study.path, write_lock)
    photo_cache = JpegCache(PHOTO_CACHE_SIZE)
    app.extensions["hemiface"] = dict(study=study, csrf=csrf, runs=runs, token=token)

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path.startswith("/download/")

    def fail(status: int, message: str, *, heading: str | None = None):
        if wants_json():
            return jsonify(error=message), status
        rater = _rating.rater_token_of(request.path)
        if rater is not None:  # a rater's frame: nothing of the study
            return render_template("rate_error.html", status=status, message=message, token=rater,
                                   heading=heading), status
        return render_template("error.html", status=status, message=message, name=study.settings.name), status

    @app.before_request
    def _guard():
        # a rater's personal link is their credential (their own pages only, with their stylesheet)
        rater = _rating.rater_token_of(request.path)
        if token is None:
            if _host_name(request.host) not in LOOPBACK_HOSTS:
                return fail(403, "this app answers only on this computer (127.0.0.1); "
                                 "start it with --host to serve it to others (an access token is then required)")
        elif rater is None:
            given = request.args.get("token")
            if given is not None and request.method == "GET":
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return fail(401, "wrong access token; open the address that `hemiface app` printed")
                rest = {k: v for k, v in request.args.items() if k != "token"}
                here = "/" + request.path.lstrip("/")  # never "//host": a redirect stays on this server
                response = redirect(here + ("?" + urlencode(rest) if rest else ""), code=303)
                response.set_cookie(cookie, token, httponly=True, samesite="Strict",
                                    secure=request.scheme == "https")
                return response
            held = request.cookies.get(cookie, "")
            bearer = request.headers.get("Authorization", "")
            bearer = bearer[7:] if bearer.startswith("Bearer ") else ""
            if not (hmac.compare_digest(held.encode(), token.encode())
                    or hmac.compare_digest(bearer.encode(), token.encode())):
                return fail(401, "this app needs its access token: open the address with ?token=... "
                                 "that `hemiface app` printed when it started")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin and origin != "null" and urlsplit(origin).netloc.lower() != request.host.lower():
                return fail(403, "cross-site request refused (its Origin is another site)")
            if origin == "null":
                return fail(403, "cross-site request refused (Origin: null)")
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
            expected = csrf if rater is None else _rating.rater_csrf(csrf, rater)
            if not hmac.compare_digest(sent.encode(), expected.encode()):
                return fail(403, "missing or wrong CSRF token; reload the page and try again")

    @app.after_request
    def _headers(response: Response):
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # nothing to other sites; same-origin form posts then carry their Origin (under no-referrer a browser
        # sends "Origin: null", which the guard refuses as cross-site)
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(NotFoundError)
    def _not_found(exc):
        return fail(404, str(exc))

    @app.errorhandler(AppValidationError)
    def _invalid(exc):
        return fail(400, str(exc))

    @app.errorhandler(ConflictError)
    def _conflict(exc):
        return fail(409, str(exc))

    @app.errorhandler(RaterNotFoundError)
    def _no_rater(exc):
        return fail(404, str(exc))

    @app.errorhandler(RatingError)
    def _bad_rating(exc):
        return fail(400, str(exc))

    @app.errorhandler(StaleEditError)
    def _stale(exc):
        return fail(409, str(exc))

    @app.errorhandler(RatingClosedError)
    def _closed(exc):
        return fail(409, str(exc))

    # a rater's link to a closed round, or a revoked link: 410 Gone and a page that says so (to the
    # coordinator, closing a closed round or revoking a revoked link is a conflict)
    @app.errorhandler(RoundClosedError)
    def _round_closed(exc):
        if _rating.rater_token_of(request.path) is None:
            return fail(409, str(exc))
        return fail(410, str(exc), heading="This rating round is closed")

    @app.errorhandler(RaterRevokedError)
    def _revoked(exc):
        if _rating.rater_token_of(request.path) is None:
            return fail(409, str(exc))
        return fail(410, str(exc), heading="This rating link no longer works")

    @app.errorhandler(HemifaceError)
    def _hemiface(exc):
        return fail(422, _data.mask(str(exc).splitlines()[0], _data.file_names(study)))

    @app.errorhandler(SQLAlchemyError)
    def _database(exc):
        logger.warning("app: database error: %s", exc.__class__.__name__)
        return fail(503, "the study database is busy or changed underneath (another hemiface command writing?); "
                         "try again in a moment")

    @app.errorhandler(500)
    def _internal(exc):
        return fail(500, "internal error; the server's log says more")

    for status, message in ((404, "no such page"), (405, "method not allowed here"),
                            (413, f"request too large (at most {MAX_REQUEST_BYTES} bytes)"),
                            (415, "send JSON (Content-Type: application/json)"), (400, "bad request")):
        app.register_error_handler(status, lambda exc, s=status, m=message: fail(s, m))

    @app.context_processor
    def _globals():
        return dict(name=study.settings.name, version=__version__, csrf_token=csrf, analyses=ANALYSES)

    def json_body() -> dict:
        if not request.is_json:
            abort(415)
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise AppValidationError("the request body must be a JSON object")
        return data

    def user_of(data: dict) -> str:
        """Who writes: the name given, else the login name here (served to others: who holds the token)."""
        given = _data._text(data.get("user"), "user name", _data.MAX_USER, required=False)
        return given or (_data.login_name() if token is None else "access-token holder")

    _rating.register(app, study, csrf=csrf, json_body=json_body, user_of=user_of)

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def overview():
        view = _data.overview(study)
        downloads = [n for n, rel in STUDY_DOWNLOADS.items() if (study.path / rel).is_file()]
        return render_template("overview.html", view=view, downloads=downloads, max_jobs=MAX_JOBS)

    @app.get("/patients/<path:patient_id>")
    def patient(patient_id):
        view = _data.patient_detail(study, patient_id)
        return render_template("patient.html", view=view)

    @app.get("/photos/<int:media_id>/correct")
    def correct_page(media_id):
        current = _data.photo_landmarks(study, media_id)
        # on this computer the login name is who corrects; served to others, each person gives their name
        return render_template("correct.html", current=current, default_user=_data.login_name() if token is None else "")

    @app.get("/scans/<int:media_id>/check")
    def scan_check_page(media_id):
        job = _scan3d.scan_job(study, media_id)
        return render_template("scan_check.html", job=job, media_id=media_id,
                               default_user=_data.login_name() if token is None else "")

    # ------------------------------------------------------------------ files

    @app.get("/results/<analysis>/<folder>/<name>")
    def result_image(analysis, folder, name):
        path = _data.result_file(study, analysis, folder, name)
        return send_file(path, mimetype="image/png", max_age=0)

    @app.get("/photos/<int:media_id>/image.jpg")
    def photo_image(media_id):
        from PIL import Image

        from ..photo import read_photo

        job = _data.photo_job(study, media_id)
        key = job.inputs["photo"][1]  # the photo's SHA-256, checked against the import by the plan
        # EXIF orientation applied by read_photo: the landmarks' coordinates
        data = photo_cache.get(key, lambda: jpeg_bytes(Image.fromarray(read_photo(job.inputs["photo"][0]).rgb)))
        return send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=0)

    @app.get("/download/endpoints.<fmt>")
    def download_endpoints(fmt):
        if fmt not in ("csv", "xlsx"):
            raise NotFoundError("the endpoint table downloads as endpoints.csv or endpoints.xlsx")
        table = _data.endpoint_table(study)
        with tempfile.TemporaryDirectory(prefix="hemiface-app-") as tmp:
            written = write_endpoints(table, Path(tmp) / f"endpoints.{fmt}")
            data = Path(written[-1]).read_bytes()
        mime = "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return send_file(io.BytesIO(data), mimetype=mime, as_attachment=True, download_name=f"endpoints.{fmt}")

    @app.get("/download/<name>")
    def download_file(name):
        rel = STUDY_DOWNLOADS.get(name)
        if rel is None or not (study.path / rel).is_file():
            raise NotFoundError(f"no {name} in this study (write it with `hemiface study report` / `study analyze`)")
        response = send_file(study.path / rel, as_attachment=name != "report.html", download_name=name, max_age=0)
        if name == "report.html":  # self-contained (inline style, data: images), shown sandboxed: no script, own origin
            response.headers["Content-Security-Policy"] = _REPORT_CSP
        return response

    # ------------------------------------------------------------------ JSON API

    @app.get("/api/overview")
    def api_overview():
        return jsonify(_data.overview(study))

    @app.get("/api/patients/<path:patient_id>")
    def api_patient(patient_id):
        return app.response_class(json.dumps(_data.patient_detail(study, patient_id), default=str),
                                  mimetype="application/json")

    @app.get("/api/photos/<int:media_id>/landmarks")
    def api_landmarks(media_id):
        current = _data.photo_landmarks(study, media_id)
        lm = current.pop("landmarks")
        if lm is not None:  # the browser gets the geometry, not the photo's original file name
            image = lm.get("image") or {}
            current.update(points=lm["points"], outline=lm["outline"], width_px=image.get("width_px"),
                           height_px=image.get("height_px"), source=lm.get("source"))
        response = jsonify(current)
        response.headers["ETag"] = f'"{current["version"]}"'
        return response

    @app.post("/api/photos/<int:media_id>/landmarks")
    def api_save_landmarks(media_id):
        data = json_body()
        if token is not None and not (isinstance(data.get("user"), str) and data["user"].strip()):
            raise AppValidationError("give your name: who corrected the landmarks is kept in the audit table")
        if not write_lock.acquire(timeout=1.0):
            raise ConflictError("a study run or another correction is in progress; save again when it has finished")
        try:
            done = _data.save_correction(study, media_id, data)
        finally:
            write_lock.release()
        logger.info("app: landmarks of photo %s corrected by %s", media_id, data.get("user") or "(login)")
        status = 200 if done["status"] == "ok" else 422
        return jsonify(done), status

    @app.get("/api/results/<analysis>/<folder>/mesh")
    def api_result_mesh(analysis, folder):
        return jsonify(_scan3d.result_mesh(study, analysis, folder))

    @app.get("/api/scans/<int:media_id>/check")
    def api_scan_check(media_id):
        current = _scan3d.scan_check(study, media_id)
        response = jsonify(current)
        response.headers["ETag"] = f'"{current["version"]}"'
        return response

    @app.post("/api/scans/<int:media_id>/settings")
    def api_save_scan_settings(media_id):
        data = json_body()
        if token is not None and not (isinstance(data.get("user"), str) and data["user"].strip()):
            raise AppValidationError("give your name: who set the plane or the stable area is kept in the audit table")
        if not write_lock.acquire(timeout=1.0):
            raise ConflictError("a study run or a correction is in progress; save again when it has finished")
        try:
            done = _scan3d.save_scan_settings(study, media_id, data, user_default=user_of({}))
        finally:
            write_lock.release()
        logger.info("app: 3D check of scan %s saved (version %s)", media_id, done["version"])
        return jsonify(done)

    @app.get("/api/run")
    def api_run_status():
        return jsonify(runs.status(study))

    @app.post("/api/run")
    def api_run_start():
        data = json_body()
        unknown = set(data) - {"retry_failed", "jobs"}
        if unknown:
            raise AppValidationError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; allowed: retry_failed, jobs")
        retry = data.get("retry_failed", False)
        jobs = data.get("jobs")  # None: the study's [run] settings in study.toml (its jobs or its Dask scheduler)
        if not isinstance(retry, bool):
            raise AppValidationError(f"retry_failed must be true or false; got {retry!r:.40}")
        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS):
            raise AppValidationError(f"jobs must be a whole number from 1 to {MAX_JOBS}; got {jobs!r:.40}")
        return jsonify(runs.start(study, retry_failed=retry, jobs=jobs)), 202

    return app
