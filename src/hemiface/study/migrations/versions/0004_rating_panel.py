"""The blinded rating panel: rating rounds, their items, the invited raters and their ratings (schema version 4).

New tables only; nothing existing changes. Generated with Alembic's autogenerate against revision
0003 and the models, then checked by hand.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "rating_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scale", sa.String(length=32), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("created_utc", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "raters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("invited_utc", sa.DateTime(), nullable=False),
        sa.Column("submitted_utc", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["round_id"], ["rating_rounds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "name", name="uq_raters"),
    )
    op.create_index("ix_raters_round_id", "raters", ["round_id"], unique=False)
    op.create_index("ix_raters_token_sha256", "raters", ["token_sha256"], unique=True)
    op.create_table(
        "rating_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("baseline_media_id", sa.Integer(), nullable=True),
        sa.Column("followup_media_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("(kind = 'followup' OR baseline_media_id IS NOT NULL) AND "
                           "(kind = 'baseline' OR followup_media_id IS NOT NULL)", name="ck_rating_items_media"),
        sa.CheckConstraint("kind IN ('pair', 'baseline', 'followup')", name="ck_rating_items_kind"),
        sa.ForeignKeyConstraint(["baseline_media_id"], ["media.id"]),
        sa.ForeignKeyConstraint(["followup_media_id"], ["media.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.ForeignKeyConstraint(["round_id"], ["rating_rounds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "patient_id", "kind", name="uq_rating_items"),
    )
    op.create_index("ix_rating_items_patient_id", "rating_items", ["patient_id"], unique=False)
    op.create_index("ix_rating_items_round_id", "rating_items", ["round_id"], unique=False)
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("followup_on_right", sa.Boolean(), nullable=True),
        sa.Column("response", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("rated_utc", sa.DateTime(), nullable=True),
        sa.Column("edits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["rating_items.id"]),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rater_id", "item_id", name="uq_ratings"),
        sa.UniqueConstraint("rater_id", "position", name="uq_ratings_position"),
    )
    op.create_index("ix_ratings_item_id", "ratings", ["item_id"], unique=False)
    op.create_index("ix_ratings_rater_id", "ratings", ["rater_id"], unique=False)
    op.execute("UPDATE study_meta SET value = '4' WHERE key = 'schema_version'")


def downgrade() -> None:
    for table, indexes in (("ratings", ("ix_ratings_rater_id", "ix_ratings_item_id")),
                           ("rating_items", ("ix_rating_items_round_id", "ix_rating_items_patient_id")),
                           ("raters", ("ix_raters_token_sha256", "ix_raters_round_id")),
                           ("rating_rounds", ())):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
    op.execute("UPDATE study_meta SET value = '3' WHERE key = 'schema_version'")
