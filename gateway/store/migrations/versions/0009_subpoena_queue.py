"""The compliance officers' queue of submitted subpoenas (42 CFR 2.61: a subpoena alone
authorises nothing; an officer answers each).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subpoena",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(100), nullable=False),
        sa.Column("organization", sa.String(200), nullable=True),
        sa.Column("body", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(100), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_subpoena_status", "subpoena", ["status"])


def downgrade() -> None:
    op.drop_index("ix_subpoena_status", "subpoena")
    op.drop_table("subpoena")
