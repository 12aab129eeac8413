"""A rating round can be closed and a rater's link revoked (schema version 6: `study rating close|revoke`).

Two nullable columns, nothing else changes: ``rating_rounds.closed_utc`` and ``raters.revoked_utc``
(who did it and why are in the audit table, like every other write). Existing rounds and raters
stay open (NULL). Generated with Alembic's autogenerate against revision 0005 and the models, then
checked by hand; plain ADD COLUMN (no table rebuild), which SQLite and PostgreSQL both do in place.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("rating_rounds", sa.Column("closed_utc", sa.DateTime(), nullable=True))
    op.add_column("raters", sa.Column("revoked_utc", sa.DateTime(), nullable=True))
    op.execute("UPDATE study_meta SET value = '6' WHERE key = 'schema_version'")


def downgrade() -> None:
    with op.batch_alter_table("raters") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("revoked_utc")
    with op.batch_alter_table("rating_rounds") as batch:
        batch.drop_column("closed_utc")
    op.execute("UPDATE study_meta SET value = '5' WHERE key = 'schema_version'")
