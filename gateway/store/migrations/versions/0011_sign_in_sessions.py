"""Sign-in sessions kept server-side, so that an online_access refresh token ends with the
session that granted it (sign-out, or idle past the limit).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_session",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_sign_in_session_username", "sign_in_session", ["username"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_session_username", "sign_in_session")
    op.drop_table("sign_in_session")
