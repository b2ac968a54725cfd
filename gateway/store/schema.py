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
