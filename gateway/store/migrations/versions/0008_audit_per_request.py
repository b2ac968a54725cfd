"""One audit record per request: the interaction it was (for the queries the consent engine and
the compliance reports make) and, for requests about several patients, an index of them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("interaction", sa.String(40), nullable=True))
    op.create_index("ix_audit_event_recipient_interaction", "audit_event", ["recipient", "interaction"])
    op.create_table(
        "audit_event_patient",
        sa.Column("audit_seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("patient", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("audit_seq", "patient", name="pk_audit_event_patient"),
    )
    op.create_index("ix_audit_event_patient_patient", "audit_event_patient", ["patient"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_patient_patient", "audit_event_patient")
    op.drop_table("audit_event_patient")
    op.drop_index("ix_audit_event_recipient_interaction", "audit_event")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("interaction")
