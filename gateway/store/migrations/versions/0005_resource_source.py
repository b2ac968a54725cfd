"""The source of each resource's current version on the resource row, so that the rule "an EHR
changes only what it wrote" costs no extra query.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch:
        batch.add_column(sa.Column("source", sa.String(200), nullable=True))
    op.execute(
        "UPDATE resource SET source = (SELECT v.source FROM resource_version v"
        " WHERE v.resource_pk = resource.pk AND v.version = resource.version)"
    )


def downgrade() -> None:
    with op.batch_alter_table("resource") as batch:
        batch.drop_column("source")
