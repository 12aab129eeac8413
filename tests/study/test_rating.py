"""The rating panel's library: rounds, recorded and reproducible randomization, blinding transform,
edit-until-submit, raters kept apart, results and agreement, and the schema upgrade that adds its tables.

The study (tests/rating_helpers.py) has six patients with baseline and follow-up photographs and one
without a follow-up photograph; nothing is analysed.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from databases import copy_study, database_state, study_engine
from sqlalchemy import text

from rating_helpers import NO_FOLLOWUP_PHOTO, PATIENTS, TECHNIQUES, make_rating_study


@pytest.fixture(scope="module")
def built(tmp_path_factory, backend):  # backend: made again on each database
    return make_rating_study(tmp_path_factory.mktemp("rating"))


@pytest.fixture
def study(built, tmp_path, backend):
    from hemiface.study import open_study

    copy_study(built, tmp_path / "study", backend)
    with open_study(tmp_path / "study") as s:
        yield s


def _followup_slot(study, token, position):
    """Which slot shows the follow-up photograph (its file is named *_post.png), found from the files."""
    from hemiface.study import rating_photo

    return next(slot for slot in ("left", "right") if rating_photo(study, token, position, slot)[0].name.endswith("_post.png"))


def test_candidates_and_refusals(study):
    from hemiface.study import RatingError, candidate_patients, create_round

    ok, refused = candidate_patients(study)
    assert [r["patient_id"] for r in ok] == list(PATIENTS)
    assert refused == [dict(patient_id=NO_FOLLOWUP_PHOTO, reason="no photograph at the follow-up visit")]
    with pytest.raises(RatingError, match=f"{NO_FOLLOWUP_PHOTO}: no photograph at the follow-up visit"):
        create_round(study, "r", scale="comparison_5", patients=["RQ101", NO_FOLLOWUP_PHOTO])
    with pytest.raises(RatingError, match="NOPE: no such patient"):
        create_round(study, "r", scale="comparison_5", patients=["RQ101", "NOPE"])
    with pytest.raises(RatingError, match="scale must be one of comparison_5, improvement_5"):
        create_round(study, "r", scale="vas_100")
    with pytest.raises(RatingError, match="at least 2 patients"):
        create_round(study, "r", scale="comparison_5", patients=["RQ101"])
    with pytest.raises(RatingError, match="must differ"):
        create_round(study, "r", scale="comparison_5", raters=["Dr A", "dr a"])
    create_round(study, "r", scale="comparison_5", raters=["Dr A"])
    with pytest.raises(RatingError, match="exists already"):
        create_round(study, "r", scale="comparison_5")
    assert study.counts()["rating_rounds"] == 1  # the refused ones wrote nothing


def test_randomization_is_recorded_reproducible_and_per_rater(study, built, tmp_path, backend):
    from hemiface.study import create_round, open_study, presentation, round_progress
    from hemiface.study.models import Rating, RatingItem

    done = create_round(study, "r1", scale="comparison_5", raters=["Dr A", "Dr B", "Dr C"], seed=1234)
    progress = round_progress(study, done.round_id)
    assert progress["seed"] == 1234
    seeds = [r["seed"] for r in progress["raters"]]
    assert len(set(seeds)) == 3
    with study.session() as session:
        items = [i.id for i in session.query(RatingItem).order_by(RatingItem.id)]
        orders = []
        for rater in progress["raters"]:
            stored = session.query(Rating).filter_by(rater_id=rater["rater_id"]).order_by(Rating.position).all()
            order, right = presentation(rater["seed"], len(items), pairs=True)
            assert [r.item_id for r in stored] == [items[i] for i in order]  # the order, from the recorded seed
            assert [r.followup_on_right for r in stored] == [bool(right[items.index(r.item_id)]) for r in stored]
            orders.append(tuple(r.item_id for r in stored))
    assert len(set(orders)) == 3  # each rater has an order of their own
    # the same round seed in another copy of the study: the same raters' seeds, orders and placements
    copy_study(built, tmp_path / "again", backend)
    with open_study(tmp_path / "again") as other:
        again = create_round(other, "r1", scale="comparison_5", raters=["Dr A", "Dr B", "Dr C"], seed=1234)
        assert [r["seed"] for r in round_progress(other, again.round_id)["raters"]] == seeds
        with other.session() as session:
            assert [(r.rater_id, r.item_id, r.position, r.followup_on_right) for r in session.query(Rating)] == \
                   [(r.rater_id, r.item_id, r.position, r.followup_on_right) for r in study.session().query(Rating)]


def test_blinded_comparison_is_turned_into_followup_versus_baseline(study):
    """A rater who always prefers the follow-up photograph, wherever it is shown, scores +2 on every pair."""
    from hemiface.study import create_round, rater_view, record_rating, round_results, submit_ratings

    done = create_round(study, "prefers follow-up", scale="comparison_5", raters=["Dr A"], seed=5)
    token = done.invites[0].token
    sides = []
    for item in rater_view(study, token)["items"]:
        slot = _followup_slot(study, token, item["position"])
        sides.append(slot)
        record_rating(study, token, item["position"], 2 if slot == "right" else -2)
    assert set(sides) == {"left", "right"}  # the follow-up is shown on both sides
    submit_ratings(study, token)
    res = round_results(study, done.round_id)
    assert (res.ratings.score == 2).all() and set(res.ratings.response) == {-2, 2}
    assert res.patients.mean_score.tolist() == [2.0] * 6
    assert res.patients.technique.tolist() == [TECHNIQUES[p] for p in PATIENTS]
    dist = res.distribution.set_index(["technique", "score"])
    assert dist.loc[("fat_grafting", 2), "n"] == 3 and dist.loc[("fat_grafting", 2), "percent"] == 100.0
    assert dist.loc[("free_flap", -2), "n"] == 0
    assert res.agreement.empty and "at least two raters" in res.agreement_note


def test_edit_until_submit_then_final(study):
    from hemiface.study import (RatingClosedError, RatingError, create_round, rater_view, record_rating,
                                submit_ratings)
    from hemiface.study.models import AuditEntry, Rating

    done = create_round(study, "r", scale="improvement_4", raters=["Dr A"], seed=3)
    token = done.invites[0].token
    record_rating(study, token, 1, 2)
    record_rating(study, token, 1, 4)  # changed: allowed before submission
    assert rater_view(study, token)["items"][0]["response"] == 4
    with pytest.raises(RatingError, match="one of 1, 2, 3, 4; got 5"):
        record_rating(study, token, 2, 5)
    with pytest.raises(RatingError, match="one of 1, 2, 3, 4"):
        record_rating(study, token, 2, True)
    with pytest.raises(RatingError, match="5 not rated yet: 2, 3, 4, 5, 6"):
        submit_ratings(study, token)
    for position in range(2, 7):
        record_rating(study, token, position, 3)
    assert submit_ratings(study, token)["submitted"] is True
    with pytest.raises(RatingClosedError, match="final"):
        record_rating(study, token, 1, 1)
    with pytest.raises(RatingClosedError, match="already"):
        submit_ratings(study, token)
    view = rater_view(study, token)
    assert view["submitted"] and view["items"][0]["response"] == 4 and view["n_rated"] == 6
    with study.session() as session:
        first = session.query(Rating).filter_by(position=1).one()
        assert first.edits == 1 and first.score == 4 and first.rated_utc is not None
        actions = [a.action for a in session.query(AuditEntry).order_by(AuditEntry.id)]
    assert actions.count("rate") == 7 and actions[-1] == "submit_ratings" and actions[1:3] == ["create_rating_round",
                                                                                               "invite_raters"]


def test_raters_are_kept_apart(study):
    from hemiface.study import RaterNotFoundError, create_round, rater_view, record_rating

    done = create_round(study, "r", scale="comparison_5", raters=["Dr A", "Dr B"], seed=9)
    a, b = (i.token for i in done.invites)
    for position in range(1, 7):
        record_rating(study, a, position, 1)
    view_b = rater_view(study, b)
    assert view_b["rater"] == "Dr B" and view_b["n_rated"] == 0
    assert all(i["response"] is None for i in view_b["items"])
    record_rating(study, b, 1, -2)
    assert [i["response"] for i in rater_view(study, a)["items"]] == [1] * 6
    for bad in ("", "x" * 43, a[:-1], a + "x", None):
        with pytest.raises(RaterNotFoundError):
            rater_view(study, bad)
    with pytest.raises(RaterNotFoundError, match="no item 7"):
        record_rating(study, a, 7, 1)
    with study.engine.connect() as db:  # only fingerprints of the tokens are stored
        stored = [r[0] for r in db.execute(text("SELECT token_sha256 FROM raters"))]
    dump = repr(database_state(study.path))
    assert len(stored) == 2 and a not in dump and b not in dump


def test_results_and_agreement_of_two_raters_on_the_symmetry_scale(study):
    from hemiface.stats import AGREEMENT_COLUMNS, rater_agreement
    from hemiface.study import (DISTRIBUTION_COLUMNS, PATIENT_SCORE_COLUMNS, RATING_COLUMNS, create_round,
                                rating_photo, record_rating, round_results, submit_ratings)

    done = create_round(study, "symmetry", scale="symmetry_5", raters=["Dr A", "Dr B", "Dr C"], seed=11)
    assert done.n_items == 12  # each photograph alone
    truth = {}  # (patient file stem) -> rating: follow-up rated 4, baseline 2, Dr B one point lower on follow-ups
    for invite in done.invites[:2]:
        for position in range(1, 13):
            name = rating_photo(study, invite.token, position, "photo")[0].name
            value = 4 if name.endswith("_post.png") else 2
            if invite.name == "Dr B" and value == 4 and name.startswith(("rq101", "rq104")):
                value = 3
            truth[invite.name, name] = value
            record_rating(study, invite.token, position, value)
        submit_ratings(study, invite.token)
    res = round_results(study, done.round_id)
    assert tuple(res.ratings.columns) == RATING_COLUMNS and tuple(res.distribution.columns) == DISTRIBUTION_COLUMNS
    assert tuple(res.patients.columns) == PATIENT_SCORE_COLUMNS and tuple(res.agreement.columns) == AGREEMENT_COLUMNS
    assert res.progress["n_submitted"] == 2 and not res.progress["complete"]
    assert len(res.ratings) == 36 and res.ratings.submitted.sum() == 24  # Dr C's empty ratings: not in results
    change = res.patients.set_index("patient_id").change
    assert change.to_dict() == {"RQ101": 1.5, "RQ102": 2.0, "RQ103": 2.0, "RQ104": 1.5, "RQ105": 2.0, "RQ106": 2.0}
    assert set(res.distribution.kind) == {"baseline", "followup"}
    final = res.ratings[res.ratings.submitted]
    wide = final.assign(item=final.patient_id + ":" + final.kind).pivot(index="item", columns="rater", values="score")
    expected = rater_agreement(wide[["Dr A", "Dr B"]].astype(float), categories=range(1, 6))
    pd.testing.assert_frame_equal(res.agreement, expected)
    icc21 = res.agreement.set_index("form").loc["ICC(2,1)"]
    assert 0.8 < icc21.estimate < 1 and icc21.n_subjects == 12 and icc21.n_raters == 2
    assert list(res.agreement.form[-2:]) == ["linear", "quadratic"]
    assert res.to_dict()["agreement"][1]["form"] == "ICC(2,1)"


def test_a_study_of_schema_0003_gains_the_rating_tables_by_upgrade(built, tmp_path, backend):
    """Revision 0004 adds only the rating panel's tables (and 0005 the scan settings): a study at 0003 (the
    tables of the later revisions dropped, its revision set back, as hemiface wrote it before) is refused by
    open_study, then upgraded to the head with its rows kept."""
    from hemiface.study import StudyError, create_round, head_revision, open_study, upgrade_study

    head = head_revision()
    assert head == "0006"  # a new revision adds its tables to the list dropped here (0006 adds columns to them)
    copy_study(built, tmp_path / "old", backend)
    db = study_engine(tmp_path / "old")
    with db.begin() as conn:
        for table in ("ratings", "raters", "rating_items", "rating_rounds", "scan_settings"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        conn.execute(text("UPDATE study_meta SET value = '3' WHERE key = 'schema_version'"))
    with pytest.raises(StudyError, match="upgrade"):
        open_study(tmp_path / "old")
    result = upgrade_study(tmp_path / "old", user="tester")
    assert (result.from_revision, result.to_revision) == ("0003", head)
    with open_study(tmp_path / "old") as s:
        assert s.counts()["rating_rounds"] == 0 and s.counts()["patients"] == 7
        assert create_round(s, "after upgrade", scale="symmetry_5", raters=["Dr A"], seed=1).n_items == 12
    with db.connect() as conn:
        assert conn.execute(text("SELECT value FROM study_meta WHERE key = 'schema_version'")).scalar() == str(int(head))
    db.dispose()


def test_the_command_line_creates_invites_and_reports(study):
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.study import rater_view, record_rating, submit_ratings

    runner = CliRunner()
    folder = str(study.path)
    made = runner.invoke(app, ["study", "rating", "create", folder, "--name", "cli round", "--scale", "comparison_5",
                               "--rater", "Dr A", "--rater", "Dr B", "--seed", "3"])
    assert made.exit_code == 0, made.output
    lines = made.output.strip().splitlines()
    assert lines[0] == "round 1 (cli round): 6 items on comparison_5, seed 3"
    tokens = [line.split("/rate/")[1] for line in lines[2:]]
    assert len(tokens) == 2 and rater_view(study, tokens[1])["rater"] == "Dr B"
    for token in tokens:
        for position in range(1, 7):
            record_rating(study, token, position, position % 3 - 1)
        submit_ratings(study, token)
    status = runner.invoke(app, ["study", "rating", "status", folder, "1"])
    assert status.exit_code == 0, status.output
    assert "Dr A: 6/6 rated, submitted" in status.output and "ICC(2,1)" in status.output
    assert "two-way random effects, absolute agreement" in status.output and "quadratic" in status.output
    assert "cli round" in runner.invoke(app, ["study", "rating", "status", folder]).output
    bad = runner.invoke(app, ["study", "rating", "create", folder, "--name", "x", "--scale", "vas", "--rater", "A"])
    assert bad.exit_code == 1 and "scale must be one of" in bad.output and "Traceback" not in bad.output
    assert runner.invoke(app, ["study", "rating", "invite", folder, "9", "--rater", "C"]).exit_code == 1
