"""Bytewise collation for the string search index on PostgreSQL (prefix search as an index range).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("search_string", "value", type_=sa.String(255, collation="C"), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("search_string", "value", type_=sa.String(255), existing_nullable=False)
