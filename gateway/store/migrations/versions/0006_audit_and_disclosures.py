"""The consent engine's audit trail and disclosure ledger (append-only, hash-chained), and the
purpose of use a launch carries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Document = sa.JSON().with_variant(JSONB(), "postgresql")
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", RowId, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("patient", sa.String(100), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=True),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("body", Document, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
    )
    op.create_index("ix_audit_event_patient", "audit_event", ["patient"])
    op.create_index("ix_audit_event_recipient", "audit_event", ["recipient"])
    op.create_table(
        "disclosure",
        sa.Column("seq", RowId, primary_key=True, autoincrement=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("disclosed_at", sa.DateTime(), nullable=False),
        sa.Column("patient", sa.String(100), nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("discloser", sa.String(200), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("body", Document, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_disclosure"),
    )
    op.create_index("ix_disclosure_patient", "disclosure", ["patient"])
    with op.batch_alter_table("launch_context") as batch:
        batch.add_column(sa.Column("purpose", sa.String(40), nullable=True))
    op.create_table(
        "emergency_review",
        sa.Column("audit_seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("patient", sa.String(100), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("accessed_at", sa.DateTime(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("audit_seq", name="pk_emergency_review"),
    )


def downgrade() -> None:
    op.drop_table("emergency_review")
    with op.batch_alter_table("launch_context") as batch:
        batch.drop_column("purpose")
    op.drop_table("disclosure")
    op.drop_table("audit_event")
