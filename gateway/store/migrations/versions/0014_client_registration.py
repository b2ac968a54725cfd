"""Invitations to register (OAuth 2.0 Dynamic Client Registration, RFC 7591): an initial access
token an operator hands an EHR integrator, for one organization.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_invite",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("part2_program", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_by", sa.String(100), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("registration_invite")
