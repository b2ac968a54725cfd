"""SMART on FHIR: clients, users, authorization codes, launches, tokens, assertion jtis, keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Document = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=True),
        sa.Column("jwks_uri", sa.String(500), nullable=True),
        sa.Column("jwks", Document, nullable=True),
        sa.Column("redirect_uris", Document, nullable=False),
        sa.Column("launch_url", sa.String(500), nullable=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("organization", sa.String(200), nullable=True),
        sa.Column("part2_program", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_oauth_client"),
    )
    op.create_table(
        "app_user",
        sa.Column("username", sa.String(100), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("practitioner", sa.String(100), nullable=True),
        sa.Column("practitioner_role", sa.String(100), nullable=True),
        sa.Column("organization", sa.String(100), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_app_user"),
    )
    op.create_table(
        "oauth_code",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        sa.Column("context", Document, nullable=False),
        sa.Column("auth_time", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("family", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_oauth_code"),
    )
    op.create_table(
        "launch_context",
        sa.Column("launch_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("encounter", sa.String(64), nullable=True),
        sa.Column("incident", sa.String(100), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("launch_id", name="pk_launch_context"),
    )
    op.create_table(
        "oauth_token",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("access_hash", sa.String(64), nullable=False),
        sa.Column("refresh_hash", sa.String(64), nullable=True),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("context", Document, nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("refresh_expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("rotated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_oauth_token"),
        sa.UniqueConstraint("access_hash", name="uq_oauth_token_access_hash"),
        sa.UniqueConstraint("refresh_hash", name="uq_oauth_token_refresh_hash"),
    )
    op.create_index("ix_oauth_token_family", "oauth_token", ["family"])
    op.create_index("ix_oauth_token_client_id", "oauth_token", ["client_id"])
    op.create_index("ix_oauth_token_username", "oauth_token", ["username"])
    op.create_table(
        "assertion_jti",
        sa.Column("issuer", sa.String(100), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_assertion_jti"),
    )
    op.create_index("ix_assertion_jti_expires_at", "assertion_jti", ["expires_at"])
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(10), nullable=False),
        sa.Column("private_jwk", Document, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_key"),
    )


def downgrade() -> None:
    for table in ("signing_key", "assertion_jti", "oauth_token", "launch_context", "oauth_code", "app_user",
                  "oauth_client"):  # fmt: skip
        op.drop_table(table)
