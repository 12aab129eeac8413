"""A scan's symmetry plane and painted stable area set by a technician (schema version 5: `study scan-settings`).

A new table only; nothing existing changes. Generated with Alembic's autogenerate against revision
0004 and the models, then checked by hand.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "scan_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("plane", sa.Text(), nullable=False),
        sa.Column("stable_path", sa.Text(), nullable=True),
        sa.Column("stable_sha256", sa.String(length=64), nullable=True),
        sa.Column("stable_vertices", sa.Integer(), nullable=True),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at_utc", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scan_settings_media_id", "scan_settings", ["media_id"], unique=False)
    op.execute("UPDATE study_meta SET value = '5' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_scan_settings_media_id", table_name="scan_settings")
    op.drop_table("scan_settings")
    op.execute("UPDATE study_meta SET value = '4' WHERE key = 'schema_version'")
