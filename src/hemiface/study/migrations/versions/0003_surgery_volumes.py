"""What a surgery put in: injected fat (total and per zone), the ADM used, the planned gain (schema version 3).

For the graft retention rate and the planned-versus-achieved volume of the endpoint table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_CHECKS = {
    "ck_surgeries_fat": "fat_injected_ml IS NULL OR fat_injected_ml > 0",
    "ck_surgeries_adm_sheets": "adm_sheets IS NULL OR adm_sheets > 0",
    "ck_surgeries_adm_thickness": "adm_thickness_mm IS NULL OR adm_thickness_mm > 0",
    "ck_surgeries_planned": "planned_gain_ml IS NULL OR planned_gain_ml > 0",
}


def upgrade() -> None:
    with op.batch_alter_table("surgeries") as batch:  # SQLite: the table is copied with its rows
        batch.add_column(sa.Column("fat_injected_ml", sa.Float(), nullable=True))
        batch.add_column(sa.Column("adm_sheets", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("adm_thickness_mm", sa.Float(), nullable=True))
        batch.add_column(sa.Column("planned_gain_ml", sa.Float(), nullable=True))
        for name, condition in _CHECKS.items():
            batch.create_check_constraint(name, condition)
    op.create_table(
        "surgery_injections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surgery_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("volume_ml", sa.Float(), nullable=False),
        sa.CheckConstraint("volume_ml > 0", name="ck_surgery_injections_volume"),
        sa.ForeignKeyConstraint(["surgery_id"], ["surgeries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("surgery_id", "zone", name="uq_surgery_injections"),
    )
    op.create_index("ix_surgery_injections_surgery_id", "surgery_injections", ["surgery_id"], unique=False)
    op.execute("UPDATE study_meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_index("ix_surgery_injections_surgery_id", table_name="surgery_injections")
    op.drop_table("surgery_injections")
    with op.batch_alter_table("surgeries") as batch:
        for name in _CHECKS:
            batch.drop_constraint(name, type_="check")
        for column in ("planned_gain_ml", "adm_thickness_mm", "adm_sheets", "fat_injected_ml"):
            batch.drop_column(column)
    op.execute("UPDATE study_meta SET value = '2' WHERE key = 'schema_version'")
