"""The version-1 schema: patients, surgeries, visits, media, complications, FACE-Q, analysis results, audit.

The baseline: the schema hemiface created before the study run (schema_version "1" in
study_meta). A database made by that hemiface has no alembic_version table; hemiface
stamps it at this revision before upgrading (see hemiface.study._migrate).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "study_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at_utc", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("age_at_surgery_years", sa.Integer(), nullable=True),
        sa.Column("affected_side", sa.String(length=8), nullable=False),
        sa.Column("guerrerosantos_stage", sa.Integer(), nullable=True),
        sa.Column("age_at_onset_years", sa.Integer(), nullable=True),
        sa.CheckConstraint("affected_side IN ('left', 'right')", name="ck_patients_side"),
        sa.CheckConstraint("sex IN ('female', 'male', 'other')", name="ck_patients_sex"),
        sa.CheckConstraint("birth_year IS NOT NULL OR age_at_surgery_years IS NOT NULL", name="ck_patients_age"),
        sa.CheckConstraint("guerrerosantos_stage IS NULL OR guerrerosantos_stage BETWEEN 1 AND 4",
                           name="ck_patients_stage"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_patients_pseudonym", "patients", ["pseudonym"], unique=True)
    op.create_table(
        "surgeries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("technique", sa.String(length=40), nullable=False),
        sa.Column("is_initial", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "date", "technique", name="uq_surgeries"),
    )
    op.create_index("ix_surgeries_patient_id", "surgeries", ["patient_id"], unique=False)
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.CheckConstraint("kind IN ('preoperative', 'follow-up')", name="ck_visits_kind"),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "date", name="uq_visits"),
    )
    op.create_index("ix_visits_patient_id", "visits", ["patient_id"], unique=False)
    op.create_table(
        "complications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.CheckConstraint("severity IN ('minor', 'major')", name="ck_complications_severity"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "type", name="uq_complications"),
    )
    op.create_index("ix_complications_visit_id", "complications", ["visit_id"], unique=False)
    op.create_table(
        "faceq_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name="ck_faceq_score"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "scale", name="uq_faceq"),
    )
    op.create_index("ix_faceq_scores_visit_id", "faceq_scores", ["visit_id"], unique=False)
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('photo', 'scan')", name="ck_media_kind"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id", "kind", "path", name="uq_media"),
    )
    op.create_index("ix_media_visit_id", "media", ["visit_id"], unique=False)
    op.create_table(
        "analysis_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("analysis", sa.String(length=32), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("parameters_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("provenance_json", sa.Text(), nullable=False),
        sa.Column("created_utc", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("analysis", "inputs_sha256", "parameters_sha256", name="uq_analysis"),
    )
    op.create_index("ix_analysis_results_media_id", "analysis_results", ["media_id"], unique=False)
    op.create_index("ix_analysis_results_visit_id", "analysis_results", ["visit_id"], unique=False)
    op.execute("INSERT INTO study_meta (key, value) VALUES ('schema_version', '1')")


def downgrade() -> None:
    for table in ("analysis_results", "media", "faceq_scores", "complications", "visits", "surgeries", "patients",
                  "audit", "study_meta"):
        op.drop_table(table)
