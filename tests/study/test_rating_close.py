"""The coordinator's decisions on a rating round: closing it and revoking one rater's link.

Rules under test (hemiface.study._rating's docstring): a closed round accepts no rating, submission or
invitation and every rater's link says so; its results use the raters who had submitted. A revoked link
opens nothing; its ratings stay recorded (``revoked``) and leave the distribution, the patients' scores
and the agreement. Both are audited with who, when and why; the write's own statement holds the check,
so a decision committed elsewhere cannot slip between check and write. Schema 0006 adds the two columns
to a study of 0005 with its rows kept. The study is tests/rating_helpers.py's (six patients, no analysis).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from databases import study_engine
from sqlalchemy import text

from rating_helpers import PATIENTS, make_rating_study
from test_rating import built, study  # noqa: F401 - the same study fixtures (a private copy per test)


def _rate_all(study, token, value=lambda position: position % 3 - 1, *, submit=True):
    from hemiface.study import record_rating, submit_ratings

    for position in range(1, len(PATIENTS) + 1):
        record_rating(study, token, position, value(position))
    if submit:
        submit_ratings(study, token)


def _audit(study, action):
    from hemiface.study.models import AuditEntry

    with study.session() as session:
        return [(a.user, a.at_utc, json.loads(a.details_json)) for a in
                session.query(AuditEntry).filter_by(action=action).order_by(AuditEntry.id)]


def test_a_closed_round_takes_nothing_more_and_its_results_use_the_submitted_raters(study):
    from hemiface.study import (RatingClosedError, RatingError, RoundClosedError, close_round, create_round,
                                invite_raters, list_rounds, rater_view, rating_analysis, rating_photo, record_rating,
                                round_progress, round_results, submit_ratings)

    done = create_round(study, "closing", scale="comparison_5", raters=["Dr A", "Dr B", "Dr C"], seed=11)
    a, b, c = (i.token for i in done.invites)
    _rate_all(study, a)
    _rate_all(study, c, lambda p: (p + 1) % 3 - 1)
    record_rating(study, b, 1, 2)
    record_rating(study, b, 2, -1)
    assert not round_progress(study, done.round_id)["complete"]  # B has not submitted
    with pytest.raises(RatingError, match="give the reason"):
        close_round(study, done.round_id, reason="  ", user="coordinator")
    closed = close_round(study, done.round_id, reason="deadline passed", user="coordinator")
    assert (closed["n_submitted"], closed["n_unsubmitted"]) == (2, 1)
    for attempt in (lambda: record_rating(study, b, 3, 0), lambda: submit_ratings(study, b),
                    lambda: rater_view(study, a), lambda: rating_photo(study, a, 1, "left")):
        with pytest.raises(RoundClosedError, match="this rating round is closed"):
            attempt()
    assert issubclass(RoundClosedError, RatingClosedError)  # callers that knew only "final" still refuse
    with pytest.raises(RoundClosedError, match="is closed; create a new round"):
        invite_raters(study, done.round_id, ["Dr D"])
    with pytest.raises(RoundClosedError, match="closed already"):
        close_round(study, done.round_id, reason="again")

    progress = round_progress(study, done.round_id)
    assert progress["closed_utc"] and progress["closed_by"] == "coordinator"
    assert progress["close_reason"] == "deadline passed" and progress["complete"] and progress["n_submitted"] == 2
    (listed,) = list_rounds(study)
    assert listed["complete"] and listed["closed_utc"] == progress["closed_utc"]
    res = round_results(study, done.round_id)
    b_rows = res.ratings[res.ratings.rater == "Dr B"]
    assert len(b_rows) == 6 and b_rows.response.notna().sum() == 2 and not b_rows.submitted.any()  # kept
    assert res.distribution.n.sum() == 12  # A's and C's six ratings each, none of B's
    assert set(res.agreement.n_raters) == {2} and res.agreement_note.startswith("2 raters, 6 items")
    (user, at, details), = _audit(study, "close_rating_round")
    assert user == "coordinator" and at is not None
    assert details == dict(round_id=done.round_id, reason="deadline passed", n_submitted=2, n_unsubmitted=1)
    analysed = rating_analysis(study)  # the report now takes the closed round, as complete
    assert [r["round_id"] for r in analysed.rounds] == [done.round_id] and analysed.rounds[0]["n_raters"] == 2


def test_a_revoked_link_opens_nothing_and_its_ratings_are_kept_out_of_the_analysis(study):
    from hemiface.stats import rater_agreement
    from hemiface.study import (RaterNotFoundError, RaterRevokedError, RatingError, create_round, rater_view,
                                revoke_rater, round_progress, round_results)

    done = create_round(study, "revoking", scale="comparison_5", raters=["Dr A", "Dr B", "Dr C"], seed=12)
    a, b, c = (i.token for i in done.invites)
    _rate_all(study, a)
    _rate_all(study, b, lambda p: (p + 1) % 3 - 1)
    _rate_all(study, c, lambda p: 2)  # e.g. not who the link was meant for
    before = round_results(study, done.round_id)
    assert set(before.agreement.n_raters) == {3}
    out = revoke_rater(study, done.round_id, "dr c", reason="link forwarded to a colleague", user="coordinator")
    assert out["name"] == "Dr C" and out["n_rated"] == 6 and out["submitted"]
    with pytest.raises(RaterRevokedError, match="withdrawn by the study coordinator"):
        rater_view(study, c)
    assert issubclass(RaterRevokedError, RaterNotFoundError)
    assert rater_view(study, a)["n_rated"] == 6  # the others' links still work

    res = round_results(study, done.round_id)
    assert len(res.ratings) == 18 and res.ratings[res.ratings.rater == "Dr C"].revoked.all()  # nothing deleted
    assert not res.ratings[res.ratings.rater != "Dr C"].revoked.any()
    kept = res.ratings[res.ratings.rater != "Dr C"]
    wide = (kept.assign(item=kept.patient_id + ":" + kept.kind)
            .pivot(index="item", columns="rater", values="score")[["Dr A", "Dr B"]].astype(float))
    pd.testing.assert_frame_equal(res.agreement, rater_agreement(wide, categories=range(-2, 3)))
    assert res.distribution.n.sum() == 12 and set(res.patients.n_raters) == {2}
    progress = round_progress(study, done.round_id)
    c_row = progress["raters"][2]
    assert c_row["revoked_utc"] and c_row["revoked_by"] == "coordinator"
    assert c_row["revoke_reason"] == "link forwarded to a colleague"
    assert progress["n_submitted"] == 2 and progress["n_revoked"] == 1 and progress["complete"]

    with pytest.raises(RaterRevokedError, match="revoked already"):
        revoke_rater(study, done.round_id, c_row["rater_id"], reason="again")
    with pytest.raises(RaterNotFoundError, match=r"no rater 'Dr Z' in rating round \d+ \(its raters: \d+ Dr A"):
        revoke_rater(study, done.round_id, "Dr Z", reason="x")
    with pytest.raises(RatingError, match="already invited to this round: Dr C"):  # the name stays taken
        from hemiface.study import invite_raters
        invite_raters(study, done.round_id, ["Dr C"])
    revoke_rater(study, done.round_id, progress["raters"][1]["rater_id"], reason="conflict of interest")
    one = round_results(study, done.round_id)
    assert one.agreement.empty and "1 has" in one.agreement_note and one.progress["complete"]
    assert [d["rater"] for *_, d in _audit(study, "revoke_rater")] == ["Dr C", "Dr B"]


@pytest.fixture
def any_database_study(tmp_path, database_url):
    """The rating study on each database (tests/study/conftest.py's ``database_url``): SQLite and PostgreSQL."""
    from hemiface.study import open_study

    with open_study(make_rating_study(tmp_path, database_url=database_url)) as s:
        yield s


def test_the_refusal_is_in_the_writing_statement_itself(any_database_study, monkeypatch):
    """A closing or a revocation committed between a rater's checks and their write still refuses the write."""
    from hemiface.study import (RaterRevokedError, RoundClosedError, close_round, create_round, record_rating,
                                revoke_rater, submit_ratings)
    from hemiface.study import _rating
    from hemiface.study.models import Rater

    study = any_database_study
    done = create_round(study, "race", scale="comparison_5", raters=["Dr A", "Dr B"], seed=13)
    a, b = (i.token for i in done.invites)
    _rate_all(study, b, submit=False)

    def stale(session, token):  # the rater as read before the other connection's decision
        return session.query(Rater).filter_by(token_sha256=_rating.token_sha256(token)).one()

    monkeypatch.setattr(_rating, "_rater", stale)
    revoke_rater(study, done.round_id, "Dr A", reason="leaked")
    with pytest.raises(RaterRevokedError):
        record_rating(study, a, 1, 1)
    close_round(study, done.round_id, reason="ended")
    with pytest.raises(RoundClosedError):
        submit_ratings(study, b)
    with pytest.raises(RoundClosedError):
        record_rating(study, b, 1, 0)
    with study.session() as session:
        assert session.query(Rater).filter_by(name="Dr B").one().submitted_utc is None


def test_the_command_line_closes_and_revokes(study):
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.study import create_round

    done = create_round(study, "cli", scale="comparison_5", raters=["Dr A", "Dr B", "7"], seed=14)
    _rate_all(study, done.invites[0].token)
    runner = CliRunner()
    folder, rid = str(study.path), str(done.round_id)
    out = runner.invoke(app, ["study", "rating", "revoke", folder, rid, "--rater", "Dr B", "--reason", "left the panel",
                              "--user", "coord"])
    assert out.exit_code == 0, out.output
    assert "Dr B's link revoked" in out.output and "0 rating(s) (not submitted) are kept" in out.output
    by_name = runner.invoke(app, ["study", "rating", "revoke", folder, rid, "--rater", "7", "--reason", "typo"])
    assert by_name.exit_code == 0 and "7's link revoked" in by_name.output  # a rater named 7, not rater number 7
    closed = runner.invoke(app, ["study", "rating", "close", folder, rid, "--reason", "enough ratings", "--user", "coord"])
    assert closed.exit_code == 0, closed.output
    assert "the ratings of 1 rater(s) who submitted count; 0 had not submitted" in closed.output
    status = runner.invoke(app, ["study", "rating", "status", folder, rid])
    assert "by coord: enough ratings" in status.output and "link revoked" in status.output
    assert "left the panel (ratings kept, not analysed)" in status.output
    listing = runner.invoke(app, ["study", "rating", "status", folder]).output
    assert "1 of 1 raters submitted, 2 link(s) revoked; closed" in listing
    again = runner.invoke(app, ["study", "rating", "close", folder, rid, "--reason", "x"])
    assert again.exit_code == 1 and again.output.count("\n") == 1 and "closed already" in again.output
    unknown = runner.invoke(app, ["study", "rating", "revoke", folder, rid, "--rater", "Dr Q", "--reason", "x"])
    assert unknown.exit_code == 1 and "no rater 'Dr Q'" in unknown.output and "Traceback" not in unknown.output
    assert runner.invoke(app, ["study", "rating", "close", folder, rid]).exit_code == 2  # --reason is required


def test_a_study_of_schema_0005_gains_the_columns_by_upgrade_with_its_ratings(study, tmp_path):
    from hemiface.study import (StudyError, close_round, create_round, open_study, record_rating, round_results,
                                upgrade_study)

    done = create_round(study, "old round", scale="comparison_5", raters=["Dr A"], seed=15)
    record_rating(study, done.invites[0].token, 1, 2)
    study.close()
    db = study_engine(study.path)
    with db.begin() as conn:  # as hemiface 0005 wrote it
        conn.execute(text("ALTER TABLE raters DROP COLUMN revoked_utc"))
        conn.execute(text("ALTER TABLE rating_rounds DROP COLUMN closed_utc"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
        conn.execute(text("UPDATE study_meta SET value = '5' WHERE key = 'schema_version'"))
    db.dispose()
    with pytest.raises(StudyError, match="upgrade"):
        open_study(study.path)
    result = upgrade_study(study.path, user="tester")
    assert (result.from_revision, result.to_revision) == ("0005", "0006")
    with open_study(study.path) as s:
        res = round_results(s, done.round_id)
        assert res.ratings.response.tolist()[:1] == [2] and not res.ratings.revoked.any()
        assert res.progress["closed_utc"] is None  # an old round is open
        assert close_round(s, done.round_id, reason="after upgrade")["n_unsubmitted"] == 1
