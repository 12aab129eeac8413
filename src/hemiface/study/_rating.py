"""The blinded rating panel: rounds of photo ratings by raters not involved in the treatment.

A coordinator creates a round (:func:`create_round`): the patients (by default every
eligible patient with a photograph at baseline and at follow-up), a scale from
:data:`RATING_SCALES`, and named raters. Each rater gets a personal token (shown
once; the database keeps only its SHA-256) that opens their own ratings and nothing
else. Each rater sees the items in their own random order and, for pairs, with the
follow-up photograph on a random side; both come from a per-rater seed that is
recorded (:func:`presentation` reproduces them). What a rater is shown
(:func:`rater_view`) holds no patient id, date, technique, file name or round name,
and, on a blinded scale, nothing that says which photograph is the follow-up.

A rater may change any rating (:func:`record_rating`) until they submit
(:func:`submit_ratings`, only once every item is rated); after that their ratings are
final (:class:`RatingClosedError`). :func:`round_results` gives the coordinator the
ratings, their distribution per technique, each patient's mean score and the
agreement between the raters who have submitted (:func:`hemiface.stats.rater_agreement`).

The coordinator may close a round (:func:`close_round`) or revoke one rater's link
(:func:`revoke_rater`), each with a reason, audited. The rules, which the results follow:

* **Closed round**: from that moment no rating, submission or invitation is accepted,
  and every rater's link opens only a page saying the round is closed
  (:class:`RoundClosedError`). Nothing is deleted. The round counts as complete: its
  results use the raters who had submitted (ratings never submitted stay recorded, as
  ``submitted`` False, and are not analysed).
* **Revoked link**: it opens nothing from that moment (:class:`RaterRevokedError`; a
  leaked or misused link, or a rater who turns out not to be independent). The rater's
  ratings, submitted or not, stay in the database and in :attr:`RoundResults.ratings`
  (``revoked`` True), but are left out of the distribution, the patients' scores and
  the agreement, since whoever held the link may not be the rater. The round is complete
  once every rater whose link is not revoked has submitted. A revoked rater's name stays
  taken in that round: invite them again under another name for a new link.

Sign convention: ``score`` > 0 means the face looks better (more symmetric) at
follow-up than at baseline on the pair scales; on ``symmetry_5`` the score is the
photograph's symmetry (1..5, higher is more symmetric) and a patient's change is
follow-up minus baseline.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import selectinload

from .. import logger
from .._errors import HemifaceError
from .._provenance import sha256_file
from ._eligibility import eligibility
from ._errors import StudyError
from ._files import path_problem
from ._import import _login
from ._models import AuditEntry, Media, Patient, Rater, Rating, RatingItem, RatingRound, Visit
from ._run import media_file


class RatingError(StudyError):
    """A rating round cannot be created or a rating cannot be recorded as asked (bad scale, patient, value)."""


class RaterNotFoundError(HemifaceError, LookupError):
    """No rater holds this token (a wrong or revoked personal link), or no such round or item."""


class RatingClosedError(HemifaceError, PermissionError):
    """The rater has submitted: their ratings are final."""


class RoundClosedError(RatingClosedError):
    """The coordinator has closed the round: no rating, submission or invitation is accepted."""


class RaterRevokedError(RaterNotFoundError):
    """The coordinator has revoked this rater's link: it opens nothing any more."""


@dataclass(frozen=True)
class RatingScale:
    """A rating scale: what the rater is asked, the values they may choose, and what is shown.

    ``design`` is "pair" (a baseline and a follow-up photograph side by side) or "single"
    (one photograph). ``blinded`` pair scales show the two photographs in random
    left/right placement and ask which looks better (``response`` > 0: the right one);
    the score turns that into follow-up versus baseline. Unblinded pair scales show
    baseline on the left and follow-up on the right, labelled.
    """

    name: str
    design: str
    blinded: bool
    values: tuple[int, ...]
    labels: tuple[str, ...]
    question: str
    description: str

    def score(self, response: int, followup_on_right: bool | None) -> int:
        """The response in the analysis's orientation (see the module docstring's sign convention)."""
        if self.design == "pair" and self.blinded:
            return response if followup_on_right else -response
        return response

    def to_dict(self) -> dict:
        return dict(name=self.name, design=self.design, blinded=self.blinded, values=list(self.values),
                    labels=list(self.labels), question=self.question, description=self.description)


#: The scales a round may use, by name.
RATING_SCALES = {s.name: s for s in (
    RatingScale(
        "comparison_5", "pair", True, (-2, -1, 0, 1, 2),
        ("left clearly more symmetric", "left slightly more symmetric", "no difference",
         "right slightly more symmetric", "right clearly more symmetric"),
        "Which face looks more symmetric, and by how much?",
        "blinded before/after comparison, -2..+2 (score > 0: the follow-up looks more symmetric)"),
    RatingScale(
        "improvement_5", "pair", False, (-2, -1, 0, 1, 2),
        ("much worse", "worse", "no change", "better", "much better"),
        "How has the face's symmetry changed from before (left) to after (right)?",
        "improvement from before to after, -2..+2 (not blinded to which photograph is the follow-up)"),
    RatingScale(
        "improvement_4", "pair", False, (1, 2, 3, 4),
        ("no improvement", "slight improvement", "moderate improvement", "marked improvement"),
        "How much has the face's symmetry improved from before (left) to after (right)?",
        "4-point improvement scale, 1..4 (not blinded to which photograph is the follow-up)"),
    RatingScale(
        "symmetry_5", "single", True, (1, 2, 3, 4, 5),
        ("very asymmetric", "clearly asymmetric", "slightly asymmetric", "nearly symmetric", "symmetric"),
        "How symmetric does this face look?",
        "symmetry of each photograph, 1..5, baseline and follow-up photographs mixed in random order"),
)}

#: Longest round and rater name accepted.
MAX_NAME = 128
#: Columns of :attr:`RoundResults.ratings` (frozen).
RATING_COLUMNS = ("rater", "patient_id", "technique", "kind", "position", "followup_on_right", "response", "score",
                  "rated_utc", "submitted", "revoked")
#: Longest reason accepted for closing a round or revoking a link.
MAX_REASON = 2000
#: Audit actions of the coordinator's decisions on a round (their entries give who, when and why).
CLOSE_ACTION, REVOKE_ACTION = "close_rating_round", "revoke_rater"
#: Columns of :attr:`RoundResults.distribution` (frozen): counts of each score per technique.
DISTRIBUTION_COLUMNS = ("technique", "kind", "score", "label", "n", "percent")
#: Columns of :attr:`RoundResults.patients` (frozen): each patient's score, averaged over the submitted raters.
PATIENT_SCORE_COLUMNS = ("patient_id", "technique", "n_raters", "mean_score", "baseline_mean", "followup_mean",
                         "change")


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _name(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RatingError(f"give the {what}")
    value = " ".join(value.split())
    if len(value) > MAX_NAME:
        raise RatingError(f"the {what} is {len(value)} characters long; at most {MAX_NAME}")
    if any(ord(c) < 32 for c in value):
        raise RatingError(f"the {what} holds control characters")
    return value


def scale_of(name: str) -> RatingScale:
    if name not in RATING_SCALES:
        raise RatingError(f"scale must be one of {', '.join(RATING_SCALES)}; got {name!r:.60}")
    return RATING_SCALES[name]


def presentation(seed: int, n_items: int, *, pairs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """A rater's order and placement from their recorded seed.

    Returns ``order`` (``order[p]`` is the index, in the round's item order, of the item
    shown at position p + 1) and, for pairs, ``followup_on_right`` per item index.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_items)
    right = rng.integers(0, 2, n_items).astype(bool) if pairs else None
    return order, right


@dataclass(frozen=True)
class RaterInvite:
    """A rater's personal link token (shown once: the database keeps only its SHA-256)."""

    rater_id: int
    name: str
    token: str

    @property
    def path(self) -> str:
        """The rater's page in `hemiface app` (append to the app's address)."""
        return f"/rate/{self.token}"


@dataclass(frozen=True)
class RoundCreated:
    round_id: int
    name: str
    scale: str
    n_items: int
    seed: int
    invites: tuple[RaterInvite, ...]


def candidate_patients(study, *, check_files: bool = True) -> tuple[list[dict], list[dict]]:
    """The patients a round can include, and those it cannot (with the reason).

    Returns ``(ok, refused)``: ``ok`` rows have ``patient_id``, ``technique``,
    ``baseline_media_id`` and ``followup_media_id`` (the first photograph of each visit by
    file path, the order ``study run`` uses); ``refused`` rows ``patient_id`` and ``reason``.
    ``check_files`` also refuses photographs that are missing or changed since the import
    (reads every file: :func:`create_round` does; a page listing the choices need not).
    """
    table = eligibility(study)
    ok, refused = [], []
    with study.session() as session:
        patients = {p.pseudonym: p for p in session.scalars(
            select(Patient).options(selectinload(Patient.visits).selectinload(Visit.media)))}
        for row in table.itertuples():
            if not row.eligible:
                refused.append(dict(patient_id=row.patient_id, reason=f"not eligible ({row.exclusion_reason})"))
                continue
            visits = {v.date: v for v in patients[row.patient_id].visits}
            found, why = {}, None
            for kind, when in (("baseline", row.baseline_date), ("followup", row.followup_date)):
                photos = sorted((m for m in visits[when].media if m.kind == "photo"), key=lambda m: m.path)
                if not photos:
                    why = f"no photograph at the {kind.replace('followup', 'follow-up')} visit"
                    break
                media = photos[0]
                file = media_file(study, media)
                problem = path_problem(file) if check_files else None
                if problem is None and check_files and sha256_file(file) != media.sha256:
                    problem = "changed since it was imported"
                if problem is not None:
                    why = f"the {kind.replace('followup', 'follow-up')} photograph {problem}"
                    break
                found[kind] = media.id
            if why:
                refused.append(dict(patient_id=row.patient_id, reason=why))
            else:
                ok.append(dict(patient_id=row.patient_id, technique=row.technique,
                               baseline_media_id=found["baseline"], followup_media_id=found["followup"]))
    return ok, refused


def _audit(session, user: str, action: str, **details) -> None:
    session.add(AuditEntry(at_utc=_now(), user=user, action=action, details_json=json.dumps(details, default=str)))


def create_round(study, name: str, *, scale: str, raters=(), patients=None, seed: int | None = None,
                 user: str | None = None) -> RoundCreated:
    """Create a rating round and invite its raters.

    Parameters
    ----------
    study : Study
    name : str
        The round's name (shown to the coordinator only, never to a rater).
    scale : str
        One of :data:`RATING_SCALES`.
    raters : sequence of str
        Raters' names (distinct); more can be invited later (:func:`invite_raters`).
    patients : sequence of str, optional
        Pseudonymous ids; default every patient :func:`candidate_patients` accepts. A
        named patient that cannot be rated is an error naming the reason.
    seed : int, optional
        The round's seed (recorded); default a random one. Rater k's presentation seed
        is derived from it and recorded on the rater.
    user : str, optional
        Who creates the round (the audit table); the login name by default.

    Returns
    -------
    RoundCreated
        With each rater's token: give each rater their own link; it is not shown again.
    """
    name = _name(name, "round name")
    sc = scale_of(scale)
    names = _rater_names(raters, allow_none=True)
    user = user or _login()
    ok, refused = candidate_patients(study)
    if patients is not None:
        wanted = [str(p) for p in patients]
        if len(set(wanted)) != len(wanted):
            raise RatingError("patients lists a patient more than once")
        by_id = {r["patient_id"]: r for r in ok}
        why = {r["patient_id"]: r["reason"] for r in refused}
        bad = [f"{p}: {why.get(p, 'no such patient')}" for p in wanted if p not in by_id]
        if bad:
            raise RatingError("these patients cannot be rated: " + "; ".join(bad))
        ok = [by_id[p] for p in wanted]
    if len(ok) < 2:
        raise RatingError(f"a round needs at least 2 patients whose baseline and follow-up photographs can be shown; "
                          f"{len(ok)} can ({len(refused)} cannot: see candidate_patients)")
    seed = int(secrets.randbits(31)) if seed is None else int(seed)
    if not 0 <= seed < 2 ** 31:
        raise RatingError(f"seed must be a whole number from 0 to {2 ** 31 - 1}; got {seed}")
    with study.writing() as session:
        if session.scalar(select(func.count(RatingRound.id)).where(RatingRound.name == name)):
            raise RatingError(f"a rating round named {name!r} exists already; choose another name")
        rnd = RatingRound(name=name, scale=sc.name, seed=seed, created_utc=_now(), created_by=user)
        session.add(rnd)
        pid = dict(session.execute(select(Patient.pseudonym, Patient.id)).all())
        kinds = ("pair",) if sc.design == "pair" else ("baseline", "followup")
        for row in ok:
            for kind in kinds:
                rnd.items.append(RatingItem(patient_id=pid[row["patient_id"]], kind=kind,
                                            baseline_media_id=row["baseline_media_id"] if kind != "followup" else None,
                                            followup_media_id=row["followup_media_id"] if kind != "baseline" else None))
        session.flush()
        _audit(session, user, "create_rating_round", round_id=rnd.id, name=name, scale=sc.name, seed=seed,
               n_items=len(rnd.items), patients=[r["patient_id"] for r in ok])
        invites = _invite(session, rnd, names, user=user) if names else ()
        round_id, n_items = rnd.id, len(rnd.items)
    logger.info("rating round %d created: %d items, %d raters", round_id, n_items, len(invites))
    return RoundCreated(round_id, name, sc.name, n_items, seed, tuple(invites))


def _rater_names(names, *, allow_none: bool = False) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = [_name(n, "rater's name") for n in names]
    if not names and not allow_none:
        raise RatingError("give at least one rater's name")
    if len({n.casefold() for n in names}) != len(names):
        raise RatingError("the raters' names must differ")
    return names


def invite_raters(study, round_id: int, names, *, user: str | None = None) -> tuple[RaterInvite, ...]:
    """Invite raters to a round: each gets a token, a recorded seed, and their items in their own order."""
    names = _rater_names(names)
    user = user or _login()
    with study.writing() as session:
        rnd = session.get(RatingRound, round_id, options=[selectinload(RatingRound.items),
                                                           selectinload(RatingRound.raters)])
        if rnd is None:
            raise RaterNotFoundError(f"no rating round {round_id}")
        if rnd.closed_utc is not None:
            raise RoundClosedError(f"rating round {round_id} is closed; create a new round to invite raters")
        return _invite(session, rnd, names, user=user)


def _invite(session, rnd: RatingRound, names: list[str], *, user: str) -> tuple[RaterInvite, ...]:
    taken = {r.name.casefold() for r in rnd.raters}
    clash = [n for n in names if n.casefold() in taken]
    if clash:
        raise RatingError(f"already invited to this round: {', '.join(clash)}")
    items = sorted(rnd.items, key=lambda i: i.id)
    sc = scale_of(rnd.scale)
    invites = []
    for k, name in enumerate(names, start=len(rnd.raters)):
        # the rater's seed: derived from the round's seed and the rater's number, recorded
        seed = int(np.random.SeedSequence([rnd.seed, k]).generate_state(1)[0] & 0x7FFFFFFF)
        token = secrets.token_urlsafe(32)
        rater = Rater(name=name, token_sha256=token_sha256(token), seed=seed, invited_utc=_now())
        rnd.raters.append(rater)
        order, right = presentation(seed, len(items), pairs=sc.design == "pair")
        for position, index in enumerate(order, start=1):
            rater.ratings.append(Rating(item_id=items[index].id, position=position, edits=0,
                                        followup_on_right=None if right is None else bool(right[index])))
        session.flush()
        invites.append(RaterInvite(rater.id, name, token))
    _audit(session, user, "invite_raters", round_id=rnd.id, raters=names)
    return tuple(invites)


#: What a rater is told when their link was revoked, or their round closed (nothing of the study in them).
REVOKED_MESSAGE = ("this rating link has been withdrawn by the study coordinator and opens nothing any more; "
                   "ask them if you think this is a mistake")
CLOSED_MESSAGE = ("this rating round is closed: the study coordinator has ended it and no more ratings are "
                  "accepted. Thank you for your ratings")


def _rater(session, token: str) -> Rater:
    """The rater holding this token, in an open round and not revoked (else the matching error)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        raise RaterNotFoundError("no such rating link")
    rater = session.scalars(select(Rater).where(Rater.token_sha256 == token_sha256(token))).first()
    if rater is None:
        raise RaterNotFoundError("no such rating link")
    if rater.revoked_utc is not None:
        raise RaterRevokedError(REVOKED_MESSAGE)
    if rater.round.closed_utc is not None:
        raise RoundClosedError(CLOSED_MESSAGE)
    return rater


def _may_rate():
    """SQL: the rater of the row being written has not submitted, is not revoked, and their round is open.

    Part of the write's own statement, so that a submission, a revocation or a closing committed by
    another connection cannot slip between a check and the write.
    """
    return exists().where(and_(Rater.id == Rating.rater_id, Rater.submitted_utc.is_(None), Rater.revoked_utc.is_(None),
                               RatingRound.id == Rater.round_id, RatingRound.closed_utc.is_(None)))


def _refusal(session, rater_id: int) -> Exception:
    """Why a write of this rater's was refused, read afresh (another connection may have just committed it)."""
    submitted, revoked, closed = session.execute(
        select(Rater.submitted_utc, Rater.revoked_utc, RatingRound.closed_utc).join(Rater.round)
        .where(Rater.id == rater_id).execution_options(populate_existing=True)).one()
    if revoked is not None:
        return RaterRevokedError(REVOKED_MESSAGE)
    if closed is not None:
        return RoundClosedError(CLOSED_MESSAGE)
    return RatingClosedError("these ratings were submitted and are final; they can no longer be changed")


def _rating_at(session, rater: Rater, position) -> Rating:
    """The rater's rating at ``position`` of their order (one row read, not all of theirs)."""
    rating = None
    if isinstance(position, int) and not isinstance(position, bool):
        rating = session.scalars(select(Rating).where(Rating.rater_id == rater.id, Rating.position == position)).first()
    if rating is None:
        raise RaterNotFoundError(f"no item {position} in this rating round")
    return rating


def rater_view(study, token: str) -> dict:
    """What the rater with this token sees: the scale, and their items in their order, with their ratings.

    Blinded: no patient id, date, technique, file name, round name or media id; items are
    known by their position in this rater's order. On a blinded pair scale nothing tells
    which photograph is the follow-up (slots are "left" and "right").
    """
    with study.session() as session:
        rater = _rater(session, token)
        sc = scale_of(rater.round.scale)
        ratings = sorted(rater.ratings, key=lambda r: r.position)
        items = [dict(position=r.position, response=r.response,
                      slots=["left", "right"] if sc.design == "pair" else ["photo"]) for r in ratings]
        shown = dict(name=sc.name, design=sc.design, values=list(sc.values), labels=list(sc.labels),
                     question=sc.question)  # not the description: it is written for the coordinator
        return dict(rater=rater.name, scale=shown, submitted=rater.submitted_utc is not None,
                    submitted_utc=_iso(rater.submitted_utc), n_items=len(items),
                    n_rated=sum(i["response"] is not None for i in items), items=items,
                    labels=(["before", "after"] if sc.design == "pair" and not sc.blinded else None))


def _iso(value):
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def rating_photo(study, token: str, position: int, slot: str) -> tuple[Path, str]:
    """The photograph file (and its recorded SHA-256) the rater sees at ``position`` in ``slot``.

    ``slot`` is "left" or "right" for pairs, "photo" for single photographs. The caller
    must re-encode the image (no file name, no camera metadata) before sending it.
    """
    with study.session() as session:
        rater = _rater(session, token)
        sc = scale_of(rater.round.scale)
        rating = _rating_at(session, rater, position)
        item = rating.item
        if sc.design == "pair":
            if slot not in ("left", "right"):
                raise RaterNotFoundError("a pair has a left and a right photograph")
            followup = (slot == "right") == bool(rating.followup_on_right) if sc.blinded else slot == "right"
            media_id = item.followup_media_id if followup else item.baseline_media_id
        else:
            if slot != "photo":
                raise RaterNotFoundError("this round shows one photograph per item")
            media_id = item.baseline_media_id if item.kind == "baseline" else item.followup_media_id
        media = session.get(Media, media_id)
        return media_file(study, media), media.sha256


def record_rating(study, token: str, position: int, response: int) -> dict:
    """Record (or change) the rater's rating of the item at ``position``; refused once they have submitted.

    Returns ``position``, ``response``, ``n_rated`` and ``n_items``. Raises
    :class:`RatingError` for a value not on the scale, :class:`RaterNotFoundError` for
    an unknown token or position, :class:`RatingClosedError` after submission (the
    check and the write are one statement, so a submission in another tab cannot slip
    between them).
    """
    with study.writing() as session:
        rater = _rater(session, token)
        sc = scale_of(rater.round.scale)
        if isinstance(response, bool) or not isinstance(response, int) or response not in sc.values:
            raise RatingError(f"the rating must be one of {', '.join(map(str, sc.values))}; got {response!r:.40}")
        rating = _rating_at(session, rater, position)
        previous = rating.response
        done = session.execute(
            update(Rating)
            .where(Rating.id == rating.id, _may_rate())
            .values(response=response, score=sc.score(response, rating.followup_on_right), rated_utc=_now(),
                    edits=Rating.edits + (0 if previous is None else 1))
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            raise _refusal(session, rater.id)
        _audit(session, rater.name, "rate", round_id=rater.round_id, rater_id=rater.id, item_id=rating.item_id,
               position=position, response=response, previous=previous)
        n_items, n_rated = session.execute(select(func.count(Rating.id), func.count(Rating.response))
                                           .where(Rating.rater_id == rater.id)).one()
        return dict(position=position, response=response, n_rated=int(n_rated), n_items=int(n_items))


def submit_ratings(study, token: str) -> dict:
    """Submit the rater's ratings: every item must be rated; afterwards they are final.

    :class:`RatingClosedError` when already submitted; :class:`RatingError` naming the
    positions still unrated.
    """
    with study.writing() as session:
        rater = _rater(session, token)
        if rater.submitted_utc is not None:
            raise RatingClosedError("these ratings were submitted already and are final")
        unrated = sorted(r.position for r in rater.ratings if r.response is None)
        if unrated:
            shown = ", ".join(map(str, unrated[:20])) + (" ..." if len(unrated) > 20 else "")
            raise RatingError(f"rate every item before submitting; {len(unrated)} not rated yet: {shown}")
        now = _now()
        done = session.execute(
            update(Rater).where(Rater.id == rater.id, Rater.submitted_utc.is_(None), Rater.revoked_utc.is_(None),
                                exists().where(and_(RatingRound.id == Rater.round_id, RatingRound.closed_utc.is_(None))),
                                ~exists().where(and_(Rating.rater_id == Rater.id, Rating.response.is_(None))))
            .values(submitted_utc=now).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            error = _refusal(session, rater.id)
            if type(error) is RatingClosedError:
                error = RatingClosedError("these ratings were submitted already (in another window)")
            raise error
        _audit(session, rater.name, "submit_ratings", round_id=rater.round_id, rater_id=rater.id,
               n_ratings=len(rater.ratings))
        return dict(submitted=True, submitted_utc=_iso(now), n_items=len(rater.ratings))


def _reason(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RatingError("give the reason (it is kept in the audit table)")
    value = value.strip()
    if len(value) > MAX_REASON:
        raise RatingError(f"the reason is {len(value)} characters long; at most {MAX_REASON}")
    return value


@contextmanager
def _decision(study, round_id: int, reason, user):
    """A coordinator's decision on a round: (session, round, reason, user, now) in one write transaction."""
    reason = _reason(reason)
    user = user or _login()
    with study.writing() as session:
        rnd = session.get(RatingRound, round_id, options=[selectinload(RatingRound.raters)])
        if rnd is None:
            raise RaterNotFoundError(f"no rating round {round_id}")
        yield session, rnd, reason, user, _now()


def close_round(study, round_id: int, *, reason: str, user: str | None = None) -> dict:
    """Close a round: from now on it accepts no rating, submission or invitation (see the module's rules).

    Nothing is deleted; the raters' links open a page saying the round is closed. Audited
    (who, when, why). :class:`RoundClosedError` when it is closed already.

    Returns ``round_id``, ``closed_utc``, ``n_submitted`` (raters whose ratings count) and
    ``n_unsubmitted`` (raters, links not revoked, who had not submitted: their ratings are kept
    but not analysed).
    """
    with _decision(study, round_id, reason, user) as (session, rnd, reason, user, now):
        done = session.execute(update(RatingRound).where(RatingRound.id == round_id, RatingRound.closed_utc.is_(None))
                               .values(closed_utc=now).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            raise RoundClosedError(f"rating round {round_id} is closed already")
        active = [r for r in rnd.raters if r.revoked_utc is None]
        n_submitted = sum(r.submitted_utc is not None for r in active)
        _audit(session, user, CLOSE_ACTION, round_id=round_id, reason=reason, n_submitted=n_submitted,
               n_unsubmitted=len(active) - n_submitted)
    logger.info("rating round %d closed: %d raters submitted, %d had not", round_id, n_submitted,
                len(active) - n_submitted)
    return dict(round_id=round_id, closed_utc=_iso(now), n_submitted=n_submitted,
                n_unsubmitted=len(active) - n_submitted)


def revoke_rater(study, round_id: int, rater, *, reason: str, user: str | None = None) -> dict:
    """Revoke one rater's personal link: it opens nothing from now on (see the module's rules).

    ``rater`` is the rater's id (:func:`round_progress`) or name in that round. Their ratings
    stay recorded (``revoked`` in :attr:`RoundResults.ratings`) and leave the analysis.
    Audited (who, when, why). Allowed on a closed round too (it then takes the rater's
    ratings out of the results). :class:`RaterRevokedError` when revoked already.

    Returns ``round_id``, ``rater_id``, ``name``, ``revoked_utc``, ``n_rated`` and ``submitted``.
    """
    with _decision(study, round_id, reason, user) as (session, rnd, reason, user, now):
        by_key = next((r for r in rnd.raters if (r.id == rater if isinstance(rater, int) and not isinstance(rater, bool)
                                                 else isinstance(rater, str) and r.name.casefold() == rater.casefold())),
                      None)
        if by_key is None:
            names = ", ".join(f"{r.id} {r.name}" for r in sorted(rnd.raters, key=lambda r: r.id)) or "none"
            raise RaterNotFoundError(f"no rater {rater!r:.60} in rating round {round_id} (its raters: {names})")
        done = session.execute(update(Rater).where(Rater.id == by_key.id, Rater.revoked_utc.is_(None))
                               .values(revoked_utc=now).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            raise RaterRevokedError(f"{by_key.name}'s link in rating round {round_id} is revoked already")
        n_rated = int(session.scalar(select(func.count(Rating.id)).where(Rating.rater_id == by_key.id,
                                                                          Rating.response.is_not(None))))
        out = dict(round_id=round_id, rater_id=by_key.id, name=by_key.name, revoked_utc=_iso(now), n_rated=n_rated,
                   submitted=by_key.submitted_utc is not None)
        _audit(session, user, REVOKE_ACTION, round_id=round_id, rater_id=by_key.id, rater=by_key.name, reason=reason,
               n_rated=n_rated, submitted=out["submitted"])
    logger.info("rating round %d: a rater's link revoked (%d ratings kept, out of the analysis)", round_id, n_rated)
    return out


def _complete(closed: bool, raters) -> bool:
    """A round's results are final: a rater whose link stands has submitted, and all of them have or the round is closed."""
    active = [r for r in raters if r.revoked_utc is None]
    n_submitted = sum(r.submitted_utc is not None for r in active)
    return n_submitted > 0 and (closed or n_submitted == len(active))


def list_rounds(study) -> list[dict]:
    """Every round with its progress: id, name, scale, created, closed, items, raters, revoked, submitted, complete.

    ``n_submitted`` counts the raters whose ratings count (submitted, link not revoked);
    ``complete`` is True once the results are final (see the module's rules).
    """
    with study.session() as session:
        rounds = session.scalars(select(RatingRound).order_by(RatingRound.id)
                                 .options(selectinload(RatingRound.items), selectinload(RatingRound.raters))).all()
        return [dict(round_id=r.id, name=r.name, scale=r.scale, created_utc=_iso(r.created_utc),
                     created_by=r.created_by, closed_utc=_iso(r.closed_utc), n_items=len(r.items),
                     n_raters=len(r.raters), n_revoked=sum(x.revoked_utc is not None for x in r.raters),
                     n_submitted=sum(x.submitted_utc is not None and x.revoked_utc is None for x in r.raters),
                     complete=_complete(r.closed_utc is not None, r.raters)) for r in rounds]


def _decisions(session, round_id: int) -> tuple[dict | None, dict]:
    """The audit entries of the round's closing and of each revocation: (closing, {rater_id: revocation})."""
    closing, revoked = None, {}
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.action.in_((CLOSE_ACTION, REVOKE_ACTION)))
                                 .order_by(AuditEntry.id)):
        details = json.loads(entry.details_json or "{}")
        if details.get("round_id") != round_id:
            continue
        said = dict(by=entry.user, at_utc=_iso(entry.at_utc), reason=details.get("reason"))
        if entry.action == CLOSE_ACTION:
            closing = said
        else:
            revoked[details.get("rater_id")] = said
    return closing, revoked


def round_progress(study, round_id: int) -> dict:
    """A round's scale, seed, whether (when, by whom, why) it is closed, and each rater's progress.

    Raters: name, seed, rated, submitted, and ``revoked_utc`` / ``revoked_by`` /
    ``revoke_reason`` when their link was revoked. ``n_submitted`` counts the raters whose
    ratings count; ``complete`` as in :func:`list_rounds`.
    """
    with study.session() as session:
        rnd = session.get(RatingRound, round_id, options=[selectinload(RatingRound.raters)])
        if rnd is None:
            raise RaterNotFoundError(f"no rating round {round_id}")
        closing, revocations = _decisions(session, round_id)
        n_items = int(session.scalar(select(func.count(RatingItem.id)).where(RatingItem.round_id == round_id)))
        counts = {rater: (int(items), int(rated)) for rater, items, rated in session.execute(  # counted, not loaded
            select(Rating.rater_id, func.count(Rating.id), func.count(Rating.response)).join(Rating.rater)
            .where(Rater.round_id == round_id).group_by(Rating.rater_id))}
        raters = []
        for r in sorted(rnd.raters, key=lambda r: r.id):
            why = revocations.get(r.id) or {}
            raters.append(dict(rater_id=r.id, name=r.name, seed=r.seed, invited_utc=_iso(r.invited_utc),
                               submitted_utc=_iso(r.submitted_utc),
                               n_rated=counts.get(r.id, (0, 0))[1], n_items=counts.get(r.id, (0, 0))[0],
                               revoked_utc=_iso(r.revoked_utc), revoked_by=why.get("by"),
                               revoke_reason=why.get("reason")))
        closed = rnd.closed_utc is not None
        return dict(round_id=rnd.id, name=rnd.name, scale=scale_of(rnd.scale).to_dict(), seed=rnd.seed,
                    created_utc=_iso(rnd.created_utc), created_by=rnd.created_by, n_items=n_items,
                    closed_utc=_iso(rnd.closed_utc), closed_by=(closing or {}).get("by") if closed else None,
                    close_reason=(closing or {}).get("reason") if closed else None, raters=raters,
                    n_revoked=sum(r["revoked_utc"] is not None for r in raters),
                    n_submitted=sum(r["submitted_utc"] is not None and r["revoked_utc"] is None for r in raters),
                    complete=_complete(closed, rnd.raters))


@dataclass(frozen=True)
class RoundResults:
    """A round's results for the coordinator (patient ids included: never show these to a rater).

    ``ratings`` (:data:`RATING_COLUMNS`): every recorded rating, submitted or not, from a
    revoked link or not. ``distribution`` (:data:`DISTRIBUTION_COLUMNS`), ``patients``
    (:data:`PATIENT_SCORE_COLUMNS`) and ``agreement``
    (:data:`hemiface.stats.AGREEMENT_COLUMNS`) use the submitted raters whose link is not
    revoked; agreement needs two of them (else it is an empty table and ``agreement_note``
    says why).
    """

    progress: dict
    ratings: pd.DataFrame
    distribution: pd.DataFrame
    patients: pd.DataFrame
    agreement: pd.DataFrame
    agreement_note: str

    def to_dict(self) -> dict:
        """Plain values (NaN as None, times as ISO text), ready for JSON."""
        def plain(v):
            if v is None or v is pd.NaT or (isinstance(v, float) and not np.isfinite(v)):
                return None
            if hasattr(v, "isoformat"):
                return v.isoformat()
            return v.item() if isinstance(v, np.generic) else v

        def records(df):
            return [{k: plain(v) for k, v in rec.items()} for rec in df.to_dict(orient="records")]

        return dict(progress=self.progress, distribution=records(self.distribution),
                    patients=records(self.patients), agreement=records(self.agreement),
                    agreement_note=self.agreement_note)


def round_results(study, round_id: int) -> RoundResults:
    """The round's ratings, their distribution per technique, per-patient scores and the raters' agreement.

    Agreement (:func:`hemiface.stats.rater_agreement`, on the submitted raters' scores,
    one row per item, one column per rater, categories = the scale's values): the six ICC
    forms (report ICC(2,1), two-way random, absolute agreement, for a panel), weighted
    kappa for two raters, Fleiss' kappa for more.
    """
    from ..stats import AGREEMENT_COLUMNS, rater_agreement

    progress = round_progress(study, round_id)
    sc = scale_of(progress["scale"]["name"])
    technique = dict(eligibility(study)[["patient_id", "technique"]].itertuples(index=False))
    with study.session() as session:
        rows = session.execute(
            select(Rater.name, Patient.pseudonym, RatingItem.kind, Rating.position, Rating.followup_on_right,
                   Rating.response, Rating.score, Rating.rated_utc, Rater.submitted_utc, Rater.revoked_utc)
            .join(Rating.rater).join(Rating.item).join(RatingItem.patient)
            .where(Rater.round_id == round_id).order_by(Rater.id, Rating.position)).all()
    ratings = pd.DataFrame([dict(rater=r[0], patient_id=r[1], technique=technique.get(r[1]), kind=r[2],
                                 position=r[3], followup_on_right=r[4], response=r[5], score=r[6],
                                 rated_utc=r[7], submitted=r[8] is not None, revoked=r[9] is not None) for r in rows],
                           columns=list(RATING_COLUMNS))
    final = ratings[ratings.submitted & ~ratings.revoked & ratings.score.notna()]
    labels = dict(zip(sc.values, sc.labels))
    dist = []
    for (tech, kind), part in final.groupby(["technique", "kind"], sort=True):
        for value in sc.values:
            n = int((part.score == value).sum())
            label = labels[value] if not (sc.design == "pair" and sc.blinded) else _comparison_label(value)
            dist.append(dict(technique=tech, kind=kind, score=value, label=label, n=n,
                             percent=100.0 * n / len(part)))
    distribution = pd.DataFrame(dist, columns=list(DISTRIBUTION_COLUMNS))
    scores = final.assign(score=final.score.astype(float))
    by_patient = scores.groupby("patient_id", sort=True)  # one row per patient, computed per column (not per group)
    patients = pd.DataFrame({"n_raters": by_patient.rater.nunique().astype(int)})
    if sc.design == "pair":
        patients["mean_score"] = by_patient.score.mean()
    else:
        means = scores.pivot_table(index="patient_id", columns="kind", values="score", aggfunc="mean")
        patients["baseline_mean"] = means.get("baseline")
        patients["followup_mean"] = means.get("followup")
        patients["change"] = patients.followup_mean - patients.baseline_mean
    patients = patients.rename_axis("patient_id").reset_index()
    patients["technique"] = patients.patient_id.map(technique)
    patients = patients.reindex(columns=list(PATIENT_SCORE_COLUMNS)).astype(
        {c: float for c in ("mean_score", "baseline_mean", "followup_mean", "change")})
    submitted = [r["name"] for r in progress["raters"] if r["submitted_utc"] is not None and r["revoked_utc"] is None]
    if len(submitted) < 2:
        agreement = pd.DataFrame(columns=list(AGREEMENT_COLUMNS))
        note = f"agreement needs at least two raters who have submitted; {len(submitted)} ha{'s' if len(submitted) == 1 else 've'}"
    else:
        wide = (final.assign(item=final.patient_id + ":" + final.kind)
                .pivot(index="item", columns="rater", values="score")[submitted].astype(float))
        agreement = rater_agreement(wide, categories=sc.values)
        note = (f"{len(submitted)} raters, {len(wide)} items; {sc.name} scores"
                + (" (follow-up versus baseline, whatever side each rater saw)" if sc.blinded and sc.design == "pair"
                   else ""))
    return RoundResults(progress, ratings, distribution, patients, agreement, note)


def _comparison_label(score: int) -> str:
    """A blinded comparison's score in words, follow-up versus baseline."""
    return {-2: "follow-up clearly less symmetric", -1: "follow-up slightly less symmetric", 0: "no difference",
            1: "follow-up slightly more symmetric", 2: "follow-up clearly more symmetric"}[score]
