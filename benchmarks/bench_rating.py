"""Rating panel page times in `hemiface app` for a 600-pair round (two raters) on 2 cores.

Builds a study of HEMIFACE_BENCH_PAIRS (default 600) patients, each with a small baseline and
follow-up photograph (nothing analysed: the panel needs only the photographs), creates a
blinded comparison round with two raters, then times through the WSGI application, as a
browser requests them: a rater's pair page (first load and median of the next loads), the
pair's two photographs (first load re-encodes, then from the cache), accepting a rating
(the page's form post with its redirect, and the JSON endpoint), the rater's overview of
all pairs, submitting, and the coordinator's round page with the agreement once both raters
have submitted. Target: every page under 1 s after the first load. Asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _study(root: Path, n: int) -> Path:
    from hemiface.study import init_study

    sheets = root / "sheets"
    (sheets / "media").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = {"patients.csv": ["patient_id,sex,birth_year,affected_side"],
            "surgeries.csv": ["patient_id,surgery_date,technique,is_initial"],
            "visits.csv": ["patient_id,visit_date,visit_kind"],
            "media.csv": ["patient_id,visit_date,media_kind,file"]}
    start = dt.date(2020, 1, 6)
    for k in range(n):
        pid = f"R{k + 1:04d}"
        pre = start + dt.timedelta(days=k % 700)
        surgery, post = pre + dt.timedelta(days=20), pre + dt.timedelta(days=220)
        rows["patients.csv"].append(f"{pid},{'female' if k % 2 else 'male'},{1970 + k % 40},"
                                    f"{'left' if k % 3 else 'right'}")
        rows["surgeries.csv"].append(f"{pid},{surgery},{('fat_grafting', 'free_flap')[k % 2]},yes")
        for when, kind, tag in ((pre, "preoperative", "pre"), (post, "follow-up", "post")):
            rows["visits.csv"].append(f"{pid},{when},{kind}")
            file = f"media/{pid.lower()}_{tag}.png"
            Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)).save(sheets / file)
            rows["media.csv"].append(f"{pid},{when},photo,{file}")
    for name, lines in rows.items():
        (sheets / name).write_text("\n".join(lines) + "\n")
    with init_study(root / "study", name="rating bench", inclusion_from=None, inclusion_to=None) as study:
        study.import_files([sheets / name for name in rows], user="bench")
    return root / "study"


def _times(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def _line(what: str, times: list[float], first: bool = True) -> None:
    rest = times[1:] if first and len(times) > 1 else times
    head = f"first {times[0]:6.3f} s   then " if first else ""
    print(f"  {what:44s} {head}median {statistics.median(rest):6.3f} s  max {max(rest):6.3f} s   (target < 1 s)")


def main() -> None:
    from hemiface.app import create_app
    from hemiface.study import create_round

    n = int(os.environ.get("HEMIFACE_BENCH_PAIRS", 600))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = _study(Path(tmp), n)
        built = time.perf_counter() - t0
        app = create_app(folder)
        study = app.extensions["hemiface"]["study"]
        t0 = time.perf_counter()
        done = create_round(study, "bench round", scale="comparison_5", raters=["Dr A", "Dr B"], seed=1, user="bench")
        created = time.perf_counter() - t0
        client = app.test_client()
        print(f"hemiface rating panel: a round of {done.n_items} pairs, 2 raters, os.cpu_count()={os.cpu_count()} "
              f"(study built and imported in {built:.1f} s; round created in {created:.2f} s)")
        tokens = [i.token for i in done.invites]
        home = client.get(f"/rate/{tokens[0]}").get_data(as_text=True)
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home).group(1)

        _line("rater's pair page /rate/<token>/<position>",
              _times(lambda: client.get(f"/rate/{tokens[0]}/{n // 2}"), 8))
        _line("the pair's photograph (re-encoded, cached)",
              _times(lambda: client.get(f"/rate/{tokens[0]}/{n // 2}/left.jpg"), 8))
        positions = iter(range(1, n + 1))
        form = _times(lambda: client.post(f"/rate/{tokens[0]}/{next(positions)}",
                                          data={"response": "1", "csrf_token": csrf}), 20)
        _line("accept a rating: page form + redirect", form, first=False)
        api = _times(lambda: client.post(f"/api/rate/{tokens[0]}/items/{next(positions)}", data=json.dumps(
            {"response": -1}), content_type="application/json", headers={"X-CSRF-Token": csrf}), 20)
        _line("accept a rating: JSON endpoint", api, first=False)
        _line(f"rater's overview of all {n} pairs /rate/<token>", _times(lambda: client.get(f"/rate/{tokens[0]}"), 6))

        from hemiface.study import record_rating, submit_ratings

        rng = np.random.default_rng(2)
        t0 = time.perf_counter()
        for token in tokens:
            for position in range(1, n + 1):
                record_rating(study, token, position, int(rng.integers(-2, 3)))
        per = (time.perf_counter() - t0) / (2 * n)
        print(f"  {'record_rating (library, every pair of both)':44s} mean {per:6.3f} s per rating")
        t0 = time.perf_counter()
        status = client.post(f"/rate/{tokens[0]}/submit", data={"csrf_token": csrf}).status_code
        print(f"  {'submit all ' + str(n) + ' ratings (form)':44s} {time.perf_counter() - t0:6.3f} s  (HTTP {status})")
        submit_ratings(study, tokens[1])
        _line("coordinator's round page with the agreement", _times(lambda: client.get("/rating/1"), 4))
        study.close()


if __name__ == "__main__":
    main()
