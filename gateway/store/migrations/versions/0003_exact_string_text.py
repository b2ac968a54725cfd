"""The text as written beside the normalised string index value, so that :exact is exact.

Rows indexed before this migration have no text as written: their resources match :exact again
once they are written anew (any update, or re-import).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("search_string") as batch:
        batch.add_column(sa.Column("exact", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_string") as batch:
        batch.drop_column("exact")
