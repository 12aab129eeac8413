"""A small study for the rating panel's tests: photographs at baseline and follow-up, no analysis run.

Six eligible patients (three fat_grafting, three free_flap) with a baseline and a follow-up photograph
each, and one more (RQ107) whose follow-up visit has no photograph. Each photograph is a small PNG of
its own size and colour; nothing is analysed (the panel needs only the photographs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PATIENTS = ("RQ101", "RQ102", "RQ103", "RQ104", "RQ105", "RQ106")
TECHNIQUES = {"RQ101": "fat_grafting", "RQ102": "fat_grafting", "RQ103": "fat_grafting",
              "RQ104": "free_flap", "RQ105": "free_flap", "RQ106": "free_flap"}
NO_FOLLOWUP_PHOTO = "RQ107"
#: Every visit and surgery date in the study (none may reach a rater).
DATES = ("2022-01-10", "2022-02-14", "2022-08-22", "2022-01-11", "2022-02-15", "2022-08-23", "2022-01-12",
         "2022-02-16", "2022-08-24", "2022-01-13", "2022-02-17", "2022-08-25", "2022-01-14", "2022-02-18",
         "2022-08-26", "2022-01-15", "2022-02-19", "2022-08-27", "2022-01-16", "2022-02-20", "2022-08-28")
#: Words that would tell a rater which photograph is which, or who the patient is.
FORBIDDEN = PATIENTS + (NO_FOLLOWUP_PHOTO, "fat_grafting", "free_flap", "fat grafting", "free flap", ".png",
                        "baseline", "follow-up", "followup", "preoperative", "before", "after")


def make_rating_study(root: Path, *, name: str = "panel study", database_url: str | None = None) -> Path:
    """Write the spreadsheets and photographs under ``root`` and import them; returns the study folder.

    ``database_url``: the study's database (default its own SQLite file)."""
    from hemiface.study import init_study

    sheets = root / "sheets"
    media = sheets / "media"
    media.mkdir(parents=True)
    rng = np.random.default_rng(7)
    patients = ["patient_id,sex,birth_year,affected_side"]
    surgeries = ["patient_id,surgery_date,technique,is_initial"]
    visits = ["patient_id,visit_date,visit_kind"]
    photos = ["patient_id,visit_date,media_kind,file"]
    for k, pid in enumerate(PATIENTS + (NO_FOLLOWUP_PHOTO,)):
        pre, surgery, post = DATES[3 * k: 3 * k + 3]
        patients.append(f"{pid},{'female' if k % 2 else 'male'},{1980 + k},{'left' if k % 2 else 'right'}")
        surgeries.append(f"{pid},{surgery},{TECHNIQUES.get(pid, 'free_flap')},yes")
        visits += [f"{pid},{pre},preoperative", f"{pid},{post},follow-up"]
        for when, size in ((pre, 60 + 4 * k), (post, 90 + 6 * k)):
            if pid == NO_FOLLOWUP_PHOTO and when == post:
                continue
            file = f"{pid.lower()}_{'pre' if when == pre else 'post'}.png"
            colour = rng.integers(0, 255, 3, dtype=np.uint8)
            Image.fromarray(np.broadcast_to(colour, (size, size + 10, 3)).copy()).save(media / file)
            photos.append(f"{pid},{when},photo,media/{file}")
    files = {"patients.csv": patients, "surgeries.csv": surgeries, "visits.csv": visits, "media.csv": photos}
    for file, lines in files.items():
        (sheets / file).write_text("\n".join(lines) + "\n")
    with init_study(root / "study", name=name, inclusion_from=None, inclusion_to=None,
                    database_url=database_url) as study:
        study.import_files([sheets / f for f in files], user="tester")
    return root / "study"
