"""Tables of the store (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

`resource` holds the current version of each resource (one row per type/id, the hot path for
reads and searches); `resource_version` holds every version, including deletions (history,
vread). The `search_*` tables index the current version only and are rewritten with it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Document = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY (its rowid); PostgreSQL gets a bigint.
RowId = BigInteger().with_variant(Integer(), "sqlite")

resource = Table(
    "resource",
    metadata,
    Column("pk", RowId, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("fhir_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Document, nullable=True),
    Column("source", String(200), nullable=True),  # of the current version: who may change it
    UniqueConstraint("type", "fhir_id"),
    Index("ix_resource_type_last_updated", "type", "last_updated"),
    Index("ix_resource_fhir_id", "fhir_id"),  # urn:uuid references resolve by id alone
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("pk", RowId, primary_key=True, autoincrement=True),
    Column("resource_pk", RowId, ForeignKey("resource.pk"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("fhir_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(), nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH, DELETE
    Column("source", String(200), nullable=False),  # which client or import wrote it
    Column("security", Document, nullable=True),  # meta.security labels of this version
    Column("content", Document, nullable=True),  # null for a deletion
    UniqueConstraint("resource_pk", "version"),
    Index("ix_resource_version_type_last_updated", "type", "last_updated"),
    Index("ix_resource_version_last_updated", "last_updated"),
)


def _index_table(name: str, *columns: Column[object], lookup: tuple[str, ...]) -> Table:
    return Table(
        name,
        metadata,
        Column("resource_pk", RowId, ForeignKey("resource.pk"), nullable=False, index=True),
        Column("type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        Index(f"ix_{name}_lookup", "type", "param", *lookup),
    )


search_token = _index_table(
    "search_token",
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=False),
    lookup=("code", "system"),
)
# Bytewise collation, so that a prefix search is an index range (see SqlRepository._value_match);
# SQLite's default BINARY collation is bytewise already.
IndexedText = String(255).with_variant(String(255, collation="C"), "postgresql")

search_string = _index_table(
    "search_string",
    Column("value", IndexedText, nullable=False),  # normalised: lower case, no accents
    Column("exact", String(255), nullable=True),  # the text as written, for :exact
    lookup=("value",),
)
search_date = _index_table(
    "search_date",
    Column("low", DateTime(), nullable=False),
    Column("high", DateTime(), nullable=False),
    lookup=("low", "high"),
)
search_reference = _index_table(
    "search_reference",
    Column("target_type", String(64), nullable=False),
    Column("target_id", String(255), nullable=False),
    lookup=("target_id", "target_type"),
)

INDEX_TABLES = {
    "token": search_token,
    "string": search_string,
    "date": search_date,
    "reference": search_reference,
}

# -- SMART on FHIR: clients, users, codes, tokens, keys (docs/auth.md) -----------------------
# Secrets (client secrets, codes, tokens) are stored as hashes only; a database dump does not
# hand out credentials.

oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # public, symmetric, asymmetric
    Column("purpose", String(20), nullable=False),  # app, ehr, dispatch, service
    Column("secret_hash", String(200), nullable=True),
    Column("jwks_uri", String(500), nullable=True),
    Column("jwks", Document, nullable=True),
    Column("redirect_uris", Document, nullable=False),
    Column("launch_url", String(500), nullable=True),
    Column("scope", Text, nullable=False),  # the ceiling of what it may be granted
    Column("organization", String(200), nullable=True),  # EHR clients: the source Organization
    Column("part2_program", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(), nullable=False),
)

app_user = Table(
    "app_user",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("practitioner", String(100), nullable=True),  # fhirUser, e.g. Practitioner/123
    Column("practitioner_role", String(100), nullable=True),
    Column("organization", String(100), nullable=True),
    Column("totp_secret", String(64), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(), nullable=True),
    Column("created_at", DateTime(), nullable=False),
)

oauth_code = Table(
    "oauth_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("username", String(100), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("context", Document, nullable=False),  # patient, encounter, need_patient_banner, ...
    Column("auth_time", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("family", String(64), nullable=True),  # set when exchanged: reuse revokes its tokens
)

launch_context = Table(
    "launch_context",
    metadata,
    Column("launch_id", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),  # the app that may use it
    Column("created_by", String(100), nullable=False),  # the dispatch/EHR client that made it
    Column("username", String(100), nullable=True),
    Column("patient", String(64), nullable=False),
    Column("encounter", String(64), nullable=True),
    Column("incident", String(100), nullable=True),
    Column("expires_at", DateTime(), nullable=False),
    Column("used_at", DateTime(), nullable=True),
    Column("purpose", String(40), nullable=True),  # the purpose of use the dispatcher gave
)

oauth_token = Table(
    "oauth_token",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), nullable=True, unique=True),
    Column("family", String(64), nullable=False, index=True),  # one grant; reuse revokes it all
    Column("client_id", String(100), nullable=False, index=True),
    Column("username", String(100), nullable=True, index=True),
    Column("scope", Text, nullable=False),
    Column("context", Document, nullable=False),  # patient, encounter, fhirUser, ...
    Column("issued_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("refresh_expires_at", DateTime(), nullable=True),
    Column("revoked_at", DateTime(), nullable=True),
    Column("rotated_at", DateTime(), nullable=True),  # its refresh token was exchanged
)

assertion_jti = Table(
    "assertion_jti",
    metadata,
    Column("issuer", String(100), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", DateTime(), nullable=False, index=True),
)

signing_key = Table(
    "signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(10), nullable=False),
    Column("private_jwk", Document, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("retired_at", DateTime(), nullable=True),  # still published until its tokens expire
)

# -- Consent engine: the audit trail and the disclosure ledger (docs/consent.md) -----------------
# Append-only and hash-chained: each row's hash covers its content and the previous row's hash,
# so an edited or deleted row breaks the chain (`gateway audit verify`).

audit_event = Table(
    "audit_event",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=True),
    Column("recorded_at", DateTime(), nullable=False),
    Column("patient", String(100), nullable=True, index=True),
    Column("recipient", String(100), nullable=False, index=True),
    Column("outcome", String(30), nullable=False),
    Column("purpose", String(40), nullable=True),
    Column("emergency", Boolean, nullable=False, default=False),
    Column("body", Document, nullable=False),  # the whole record: items, bases, reasons, alerts, ...
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("interaction", String(40), nullable=True),  # read, search-type, responder-brief, ... (also in body)
    Index("ix_audit_event_recipient_interaction", "recipient", "interaction"),
)

# Every patient a multi-patient request decided about (a search over several people): "who saw my
# record" finds the request under each of them. Single-patient records name theirs in audit_event.
audit_event_patient = Table(
    "audit_event_patient",
    metadata,
    Column("audit_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("patient", String(100), primary_key=True),
    Index("ix_audit_event_patient_patient", "patient"),
)

disclosure = Table(
    "disclosure",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=True),
    Column("audit_seq", BigInteger, nullable=False),
    Column("disclosed_at", DateTime(), nullable=False),
    Column("patient", String(100), nullable=False, index=True),
    Column("item", String(200), nullable=False),
    Column("discloser", String(200), nullable=True),
    Column("recipient", String(100), nullable=False),
    Column("body", Document, nullable=False),  # recipient name and organization, purpose, basis, consents, notice
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# -- Pulling from EHRs that cannot push (docs/pull.md) ------------------------------------------
pull_source = Table(
    "pull_source",
    metadata,
    Column("source_id", String(64), primary_key=True),
    Column("base_url", String(500), nullable=False),
    Column("client_id", String(200), nullable=False),  # as the EHR registered the gateway
    Column("private_jwk", Text, nullable=False),  # the gateway's key for this source (ES384 or RS384)
    Column("scope", String(1000), nullable=False),
    Column("resource_types", Text, nullable=False),  # JSON list
    Column("every_minutes", Integer, nullable=False),
    Column("organization", String(200), nullable=False),  # the source Organization: it labels what it sends
    Column("part2_program", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("last_success_at", DateTime(), nullable=True),
    Column("last_error_at", DateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("refused", Text, nullable=True),  # JSON list: the resources refused on the last run, and why
    Column("failures", Integer, nullable=False, server_default="0"),  # runs failed in a row
    Column("open_until", DateTime(), nullable=True),  # the circuit breaker: no scheduled run before this
)

pull_cursor = Table(
    "pull_cursor",
    metadata,
    Column("source_id", String(64), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("last_updated", String(40), nullable=False),  # the newest meta.lastUpdated committed
    Column("advanced_at", DateTime(), nullable=False),
)

# An initial access token for Dynamic Client Registration (RFC 7591), stored as its SHA-256.
registration_invite = Table(
    "registration_invite",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("organization", String(200), nullable=False),
    Column("part2_program", Boolean, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("used_by", String(100), nullable=True),  # the client it registered: one use
)

# One worker among all the gateway's workers pulls: the one holding this lease (gateway/pull/scheduler.py).
pull_lease = Table(
    "pull_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
)

# A compliance officer's decision on a police or legal request (the audit record that raised it).
request_decision = Table(
    "request_decision",
    metadata,
    Column("audit_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("decided_at", DateTime(), nullable=False),
    Column("decided_by", String(100), nullable=False),
    Column("note", Text, nullable=False),
)

emergency_review = Table(
    "emergency_review",
    metadata,
    Column("audit_seq", BigInteger, primary_key=True, autoincrement=False),  # the emergency access
    Column("patient", String(100), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("accessed_at", DateTime(), nullable=False),
    Column("reviewed_at", DateTime(), nullable=True),
    Column("reviewer", String(100), nullable=True),
    Column("note", Text, nullable=True),
)

# Subpoenas submitted to the gateway (42 CFR 2.61: a subpoena alone authorises nothing). They wait
# for a compliance officer; nothing links one to a stored patient, so that storing it says nothing.
subpoena = Table(
    "subpoena",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("received_at", DateTime(), nullable=False),
    Column("submitted_by", String(100), nullable=False),  # the user
    Column("organization", String(200), nullable=True),
    Column("body", Document, nullable=False),  # the person described, issuer, case, due date
    Column("document", Text, nullable=False),  # the subpoena itself, base64, with its content type in body
    Column("status", String(20), nullable=False, index=True),  # pending, answered
    Column("handled_at", DateTime(), nullable=True),
    Column("handled_by", String(100), nullable=True),
    Column("note", Text, nullable=True),
)

# The sandbox clock's offset from the system clock (gateway/clock.py): one row, or none. Only a
# gateway with `sandbox = true` reads it.
sandbox_clock = Table(
    "sandbox_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("offset_us", BigInteger, nullable=False),
    Column("set_at", DateTime(), nullable=False),
    Column("set_by", String(100), nullable=False),
)

# Sign-in sessions of the authorization server: what an `online_access` refresh token lives on
# (SMART: usable for as long as the user remains online). The cookie holds only the session id.
sign_in_session = Table(
    "sign_in_session",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("started_at", DateTime(), nullable=False),
    Column("seen_at", DateTime(), nullable=False),
    Column("ended_at", DateTime(), nullable=True),
)
