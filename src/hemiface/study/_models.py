"""The study database: SQLAlchemy 2.0 ORM models.

Only portable column types are used, so the same schema works in SQLite (the
default, one file in the study folder) and PostgreSQL (a URL in ``study.toml``).
A change here needs a migration in ``migrations/versions`` (``tests/study/test_migrations.py``
fails until the two agree). Patients are known only by their pseudonymous id; the database holds no names,
no dates of birth (a birth year at most) and media paths, never media content.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SEXES = ("female", "male", "other")
SIDES = ("left", "right")
VISIT_KINDS = ("preoperative", "follow-up")
MEDIA_KINDS = ("photo", "scan")
SEVERITIES = ("minor", "major")
#: What a rating item shows: a baseline/follow-up pair, or one photograph (baseline or follow-up).
RATING_ITEM_KINDS = ("pair", "baseline", "followup")
GUERREROSANTOS_STAGES = (1, 2, 3, 4)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class StudyMeta(Base):
    """Key/value facts about the database itself: ``schema_version`` (kept by the migrations) and ``study_id``."""

    __tablename__ = "study_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint(_in("sex", SEXES), name="ck_patients_sex"),
        CheckConstraint(_in("affected_side", SIDES), name="ck_patients_side"),
        CheckConstraint(
            "guerrerosantos_stage IS NULL OR guerrerosantos_stage BETWEEN 1 AND 4", name="ck_patients_stage"
        ),
        CheckConstraint("birth_year IS NOT NULL OR age_at_surgery_years IS NOT NULL", name="ck_patients_age"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    sex: Mapped[str] = mapped_column(String(8))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    age_at_surgery_years: Mapped[int | None] = mapped_column(Integer)
    affected_side: Mapped[str] = mapped_column(String(8))
    guerrerosantos_stage: Mapped[int | None] = mapped_column(Integer)
    age_at_onset_years: Mapped[int | None] = mapped_column(Integer)

    surgeries: Mapped[list["Surgery"]] = relationship(back_populates="patient", cascade="all, delete-orphan")
    visits: Mapped[list["Visit"]] = relationship(back_populates="patient", cascade="all, delete-orphan")


class Surgery(Base):
    """A surgery; what it put in (injected fat, ADM) is recorded for the graft retention and plan-vs-result endpoints.

    ``fat_injected_ml`` is the total fat volume injected (ml); its split over aesthetic
    zones, when recorded, is in :class:`SurgeryInjection` (the zones add up to the total).
    ``adm_sheets`` / ``adm_thickness_mm`` describe the acellular dermal matrix used.
    ``planned_gain_ml`` is the volume the surgery was planned to restore (for example the
    ADM composite's volume from ``hemiface plan adm``), compared with the measured gain.
    """

    __tablename__ = "surgeries"
    __table_args__ = (
        UniqueConstraint("patient_id", "date", "technique", name="uq_surgeries"),
        CheckConstraint("fat_injected_ml IS NULL OR fat_injected_ml > 0", name="ck_surgeries_fat"),
        CheckConstraint("adm_sheets IS NULL OR adm_sheets > 0", name="ck_surgeries_adm_sheets"),
        CheckConstraint("adm_thickness_mm IS NULL OR adm_thickness_mm > 0", name="ck_surgeries_adm_thickness"),
        CheckConstraint("planned_gain_ml IS NULL OR planned_gain_ml > 0", name="ck_surgeries_planned"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    date: Mapped[_dt.date] = mapped_column(Date)
    technique: Mapped[str] = mapped_column(String(40))
    is_initial: Mapped[bool] = mapped_column(Boolean)
    notes: Mapped[str | None] = mapped_column(Text)
    fat_injected_ml: Mapped[float | None] = mapped_column(Float)
    adm_sheets: Mapped[int | None] = mapped_column(Integer)
    adm_thickness_mm: Mapped[float | None] = mapped_column(Float)
    planned_gain_ml: Mapped[float | None] = mapped_column(Float)

    patient: Mapped[Patient] = relationship(back_populates="surgeries")
    injections: Mapped[list["SurgeryInjection"]] = relationship(back_populates="surgery", cascade="all, delete-orphan")


class SurgeryInjection(Base):
    """The fat injected into one aesthetic zone at a surgery (ml); a surgery's zones add up to its total.

    A child table rather than a JSON column: one row per zone can be constrained (positive
    volume, each zone once per surgery), queried by zone in SQL, and reads the same in
    SQLite and PostgreSQL.
    """

    __tablename__ = "surgery_injections"
    __table_args__ = (
        UniqueConstraint("surgery_id", "zone", name="uq_surgery_injections"),
        CheckConstraint("volume_ml > 0", name="ck_surgery_injections_volume"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    surgery_id: Mapped[int] = mapped_column(ForeignKey("surgeries.id"), index=True)
    zone: Mapped[str] = mapped_column(String(64))
    volume_ml: Mapped[float] = mapped_column(Float)

    surgery: Mapped[Surgery] = relationship(back_populates="injections")


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("patient_id", "date", name="uq_visits"),
        CheckConstraint(_in("kind", VISIT_KINDS), name="ck_visits_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    date: Mapped[_dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))

    patient: Mapped[Patient] = relationship(back_populates="visits")
    media: Mapped[list["Media"]] = relationship(back_populates="visit", cascade="all, delete-orphan")
    complications: Mapped[list["Complication"]] = relationship(back_populates="visit", cascade="all, delete-orphan")
    faceq_scores: Mapped[list["FaceQScore"]] = relationship(back_populates="visit", cascade="all, delete-orphan")


class Media(Base):
    """A photo or scan taken at a visit. ``path`` is relative to the study folder when inside it, else absolute."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("visit_id", "kind", "path", name="uq_media"),
        CheckConstraint(_in("kind", MEDIA_KINDS), name="ck_media_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))

    visit: Mapped[Visit] = relationship(back_populates="media")


class Complication(Base):
    __tablename__ = "complications"
    __table_args__ = (
        UniqueConstraint("visit_id", "type", name="uq_complications"),
        CheckConstraint(_in("severity", SEVERITIES), name="ck_complications_severity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))

    visit: Mapped[Visit] = relationship(back_populates="complications")


class FaceQScore(Base):
    """A FACE-Q scale score, already converted to 0-100 (the conversion tables are licensed, not shipped)."""

    __tablename__ = "faceq_scores"
    __table_args__ = (
        UniqueConstraint("visit_id", "scale", name="uq_faceq"),
        CheckConstraint("score BETWEEN 0 AND 100", name="ck_faceq_score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    scale: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)

    visit: Mapped[Visit] = relationship(back_populates="faceq_scores")


class AnalysisResult(Base):
    """One analysis (photo analyze, scan analyze, scan compare) of a visit's media, with its provenance."""

    __tablename__ = "analysis_results"
    __table_args__ = (UniqueConstraint("analysis", "inputs_sha256", "parameters_sha256", name="uq_analysis"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    analysis: Mapped[str] = mapped_column(String(32))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id"), index=True)
    inputs_sha256: Mapped[str] = mapped_column(String(64))
    parameters_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    result_json: Mapped[str | None] = mapped_column(Text)
    provenance_json: Mapped[str] = mapped_column(Text)
    created_utc: Mapped[_dt.datetime] = mapped_column(DateTime)


class LandmarkCorrection(Base):
    """A person's corrected landmark file for a photo; the latest one replaces the automatic landmarks.

    ``path`` is relative to the study folder (the file is copied into ``corrections/``);
    the original photo is never modified.
    """

    __tablename__ = "landmark_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at_utc: Mapped[_dt.datetime] = mapped_column(DateTime)


class ScanSetting(Base):
    """A technician's symmetry plane and/or painted stable area for one scan; the latest one is used.

    ``plane`` is JSON: ``"mirror"``, ``"landmarks"`` or ``{"normal": [...], "point": [...]}`` (the
    scan's own frame and units). ``stable_path`` (relative to the study folder, in ``corrections/``)
    holds the painted area as the sorted indices of the scan's vertices (``.npy``, int64), None when
    nothing is painted. The scan itself is never modified.
    """

    __tablename__ = "scan_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id"), index=True)
    plane: Mapped[str] = mapped_column(Text)
    stable_path: Mapped[str | None] = mapped_column(Text)
    stable_sha256: Mapped[str | None] = mapped_column(String(64))
    stable_vertices: Mapped[int | None] = mapped_column(Integer)
    user: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at_utc: Mapped[_dt.datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who changed the study, when, and what (details as JSON; never identifiers beyond pseudonyms)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at_utc: Mapped[_dt.datetime] = mapped_column(DateTime)
    user: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    details_json: Mapped[str] = mapped_column(Text)


class RatingRound(Base):
    """A round of the blinded rating panel: which scale, which items (``rating_items``), which raters.

    ``seed`` is the round's seed, from which each rater's presentation seed is derived
    (recorded on the rater, so that any rater's order can be reproduced).
    """

    __tablename__ = "rating_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scale: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int] = mapped_column(Integer)
    created_utc: Mapped[_dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    #: When the coordinator closed the round (no rating accepted after it); who and why are in the audit table.
    closed_utc: Mapped[_dt.datetime | None] = mapped_column(DateTime)

    items: Mapped[list["RatingItem"]] = relationship(back_populates="round", cascade="all, delete-orphan")
    raters: Mapped[list["Rater"]] = relationship(back_populates="round", cascade="all, delete-orphan")


class RatingItem(Base):
    """One thing a rater rates: a patient's baseline/follow-up photo pair, or one of the photos alone."""

    __tablename__ = "rating_items"
    __table_args__ = (
        UniqueConstraint("round_id", "patient_id", "kind", name="uq_rating_items"),
        CheckConstraint(_in("kind", RATING_ITEM_KINDS), name="ck_rating_items_kind"),
        CheckConstraint("(kind = 'followup' OR baseline_media_id IS NOT NULL) AND "
                        "(kind = 'baseline' OR followup_media_id IS NOT NULL)", name="ck_rating_items_media"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rating_rounds.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    baseline_media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id"))
    followup_media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id"))

    round: Mapped[RatingRound] = relationship(back_populates="items")
    patient: Mapped[Patient] = relationship()


class Rater(Base):
    """A named rater invited to a round. Only the SHA-256 of the personal link's token is kept."""

    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("round_id", "name", name="uq_raters"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rating_rounds.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    seed: Mapped[int] = mapped_column(Integer)
    invited_utc: Mapped[_dt.datetime] = mapped_column(DateTime)
    submitted_utc: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    #: When the coordinator revoked this rater's link (it opens nothing after it); who and why are in the audit table.
    revoked_utc: Mapped[_dt.datetime | None] = mapped_column(DateTime)

    round: Mapped[RatingRound] = relationship(back_populates="raters")
    ratings: Mapped[list["Rating"]] = relationship(back_populates="rater", cascade="all, delete-orphan")


class Rating(Base):
    """A rater's rating of an item, created (empty) at the invitation with the item's place in their order.

    ``position`` is the item's place (1, 2, ...) in this rater's order; ``followup_on_right``
    whether the follow-up photo of a pair is shown on the right (None for single photos).
    ``response`` is what the rater chose on the scale as shown; ``score`` the same in the
    analysis's orientation (for a blinded comparison: > 0 means the follow-up looks better).
    """

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("rater_id", "item_id", name="uq_ratings"),
        UniqueConstraint("rater_id", "position", name="uq_ratings_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("rating_items.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    followup_on_right: Mapped[bool | None] = mapped_column(Boolean)
    response: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[int | None] = mapped_column(Integer)
    rated_utc: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    edits: Mapped[int] = mapped_column(Integer, default=0)

    rater: Mapped[Rater] = relationship(back_populates="ratings")
    item: Mapped[RatingItem] = relationship()


#: Table name -> model, in an order that respects foreign keys.
TABLES = {
    m.__tablename__: m
    for m in (StudyMeta, Patient, Surgery, SurgeryInjection, Visit, Media, Complication, FaceQScore, AnalysisResult,
              LandmarkCorrection, AuditEntry, RatingRound, RatingItem, Rater, Rating, ScanSetting)
}
