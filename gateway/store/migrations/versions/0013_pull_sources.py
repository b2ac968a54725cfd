"""Sources the gateway pulls from (SMART Backend Services clients of EHRs that cannot push), a
cursor per source and resource type, and the lease that makes one worker the puller.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_source",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(1000), nullable=False),
        sa.Column("resource_types", sa.Text(), nullable=False),
        sa.Column("every_minutes", sa.Integer(), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("part2_program", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("refused", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("open_until", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "pull_cursor",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("last_updated", sa.String(40), nullable=False),
        sa.Column("advanced_at", sa.DateTime(), nullable=False),
    )


    op.create_table(
        "pull_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pull_lease")
    op.drop_table("pull_cursor")
    op.drop_table("pull_source")
