"""The SQLAlchemy repository: versioned resource storage and search on one DB connection.

A repository is bound to one open transaction; the caller (the engine's unit of work) commits or
rolls back, so a transaction Bundle of any size is all or nothing.

Creates are buffered and written in bulk (one executemany or COPY per table) when the unit of work ends,
or earlier, before any query that could see them: a 500-entry Bundle costs a handful of
statements, not thousands. Reads by id look in the buffer first. Statements are built once, at
import, with bind parameters, so SQLAlchemy does not rebuild and re-key them per call.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
import psycopg
import psycopg.sql
from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine, Row
from sqlalchemy.exc import IntegrityError

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.fhir.dates import instant, utc_now
from gateway.fhir.errors import Conflict
from gateway.fhir.indexing import BLOCKING_PARAMETER, index_entries, normalise_string
from gateway.fhir.repository import StoredResource
from gateway.fhir.search import Criterion, DateValue, Include, ReferenceValue, SearchQuery, TokenValue
from gateway.store.schema import (
    INDEX_TABLES,
    resource,
    resource_version,
    search_date,
    search_reference,
    search_string,
    search_token,
)

_HIGHEST = "\U0010ffff"  # sorts after every other character under bytewise (UTF-8) collation

_RESOURCE_COLUMNS = (
    resource.c.pk,
    resource.c.type,
    resource.c.fhir_id,
    resource.c.version,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
    resource.c.source,
)
# The same, with the content as the stored JSON text: a search page measures what it loads
# (and decodes it itself) so that one page cannot load gigabytes.
_SIZED_COLUMNS = (*_RESOURCE_COLUMNS[:6], cast(resource.c.content, Text).label("content"), resource.c.source)
_FROM_ROW: Any = object()
_READ = select(*_RESOURCE_COLUMNS).where(resource.c.type == bindparam("t"), resource.c.fhir_id == bindparam("i"))
_BY_IDS = select(*_RESOURCE_COLUMNS).where(resource.c.fhir_id.in_(bindparam("ids", expanding=True)))
_PATIENTS = select(*_RESOURCE_COLUMNS).where(
    resource.c.type == "Patient",
    resource.c.fhir_id.in_(bindparam("ids", expanding=True)),
    resource.c.deleted == false(),
)
_TYPES_WITH_ID = select(resource.c.type).where(resource.c.fhir_id == bindparam("i"), resource.c.deleted == false())
_VREAD = select(resource_version).where(
    resource_version.c.type == bindparam("t"),
    resource_version.c.fhir_id == bindparam("i"),
    resource_version.c.version == bindparam("v"),
)
_COPY_THRESHOLD = 20
_COMPARTMENTS = (
    select(*_RESOURCE_COLUMNS, search_reference.c.target_id.label("patient_id"))
    .join(search_reference, search_reference.c.resource_pk == resource.c.pk)
    .where(
        search_reference.c.type.in_(bindparam("types", expanding=True)),  # the lookup index leads with type
        search_reference.c.param == "patient",
        search_reference.c.target_type == "Patient",
        search_reference.c.target_id.in_(bindparam("patients", expanding=True)),
        resource.c.deleted == false(),
    )
    .order_by(resource.c.pk)
    .limit(bindparam("limit"))
)
_BLOCKED_PATIENTS = (
    select(*_RESOURCE_COLUMNS)
    .where(
        resource.c.pk.in_(
            select(search_token.c.resource_pk).where(
                search_token.c.type == "Patient",
                search_token.c.param == BLOCKING_PARAMETER,
                search_token.c.code.in_(bindparam("keys", expanding=True)),
            )
        ),
        resource.c.deleted == false(),
    )
    .order_by(resource.c.pk)
    .limit(bindparam("limit"))
)
_MAX_PK = select(func.coalesce(func.max(resource.c.pk), 0))
_NEXT_PKS = text("SELECT nextval(pg_get_serial_sequence('resource', 'pk')) FROM generate_series(1, :n)")
_UPDATE_RESOURCE = (
    update(resource)
    .where(resource.c.pk == bindparam("b_pk"), resource.c.version == bindparam("b_version"))
    .values(
        version=bindparam("new_version"),
        last_updated=bindparam("now"),
        deleted=bindparam("is_deleted"),
        content=bindparam("new_content"),
        source=bindparam("new_source"),
    )
)
_CLEAR_INDEX = {
    kind: delete(table).where(table.c.resource_pk == bindparam("pk")) for kind, table in INDEX_TABLES.items()
}
_INDEX_VALUE_COLUMNS = {kind: [c.name for c in table.columns][3:] for kind, table in INDEX_TABLES.items()}


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


@functools.cache
def _driver_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, list[Any]]:
    """The INSERT's SQL text and each column's bind processor (JSON, DateTime, Boolean), built
    once per table and column list."""
    statement = insert(table).values({name: bindparam(name) for name in columns})
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup or list(columns)
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order]
    return str(compiled), list(zip(order, processors, strict=True))


def _driver_executemany(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """SQLite's executemany on the DBAPI cursor with values converted as SQLAlchemy would: its
    per-row parameter handling cost more than SQLite's own inserts (a Synthea Bundle writes
    ~300 index rows)."""
    sql, columns = _driver_insert(table, tuple(rows[0]), connection.dialect)
    values = [tuple(process(row[name]) if process else row[name] for name, process in columns) for row in rows]
    connection.exec_driver_sql(sql, values)


def _stored(row: Row[Any], content: Any = _FROM_ROW) -> StoredResource:
    content = row.content if content is _FROM_ROW else content
    return StoredResource(
        row.type, row.fhir_id, row.version, row.last_updated, row.deleted, content, pk=row.pk, source=row.source
    )


def _with_meta(content: dict[str, Any], version: int, last_updated: datetime) -> dict[str, Any]:
    meta = dict(content.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(last_updated)
    ordered = {"resourceType": content["resourceType"], "id": content["id"], "meta": meta}
    ordered.update((key, value) for key, value in content.items() if key not in ordered)
    return ordered


@dataclass
class _PendingCreate:
    stored: StoredResource
    method: str
    source: str


class SqlRepository:
    def __init__(self, connection: Connection, base_url: str) -> None:
        self.connection = connection
        self.base_url = base_url
        self.is_postgres = connection.dialect.name == "postgresql"
        self._pending: dict[tuple[str, str], _PendingCreate] = {}
        # Rows this unit of work has loaded or written, by (type, id); None: known to be absent.
        self._known: dict[tuple[str, str], StoredResource | None] = {}

    # -- reads ---------------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        key = (resource_type, resource_id)
        pending = self._pending.get(key)
        if pending is not None:
            return pending.stored
        if key in self._known:
            return self._known[key]
        row = self.connection.execute(_READ, {"t": resource_type, "i": resource_id}).first()
        return _stored(row) if row else None

    def types_with_id(self, resource_id: str) -> list[str]:
        """Types of the live resources with this id (to resolve a urn:uuid placeholder)."""
        self.flush()
        return list(self.connection.execute(_TYPES_WITH_ID, {"i": resource_id}).scalars())

    def existing(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (type, id) pairs are stored or buffered. Loads them all in one query per
        500 and remembers the rows, so that the reads by id that follow (a transaction's PUTs)
        cost no round trip each."""
        wanted: set[tuple[str, str]] = set()
        for key in dict.fromkeys(keys):
            if key not in self._pending and key not in self._known:
                wanted.add(key)
                self._known[key] = None
        # One `fhir_id IN (...)` over the id index for all types at once, the type checked here:
        # a Bundle names a dozen types, and a query per type cost more than the rows it found.
        # (A list of (type, id) row values was a 500-way OR that took seconds to plan on PostgreSQL.)
        ids = sorted({resource_id for _, resource_id in wanted})
        for start in range(0, len(ids), 500):
            rows = self.connection.execute(_BY_IDS, {"ids": ids[start : start + 500]}).all()
            self._known.update(
                ((row.type, row.fhir_id), _stored(row)) for row in rows if (row.type, row.fhir_id) in wanted
            )
        return {key for key in keys if key in self._pending or self._known.get(key) is not None}

    def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        if (resource_type, resource_id) in self._pending:
            self.flush()
        row = self.connection.execute(_VREAD, {"t": resource_type, "i": resource_id, "v": version}).first()
        if row is None:
            return None
        return StoredResource(
            row.type, row.fhir_id, row.version, row.last_updated, row.content is None, row.content, row.method
        )

    def history(
        self,
        resource_type: str | None,
        resource_id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
        max_bytes: int | None = None,
    ) -> tuple[list[StoredResource], int]:
        """A page of versions, newest first; past `max_bytes` of stored JSON it ends early."""
        self.flush()
        conditions: list[ColumnElement[bool]] = []
        if resource_type:
            conditions.append(resource_version.c.type == resource_type)
        if resource_id:
            conditions.append(resource_version.c.fhir_id == resource_id)
        if since:
            conditions.append(resource_version.c.last_updated >= since)
        total = self.connection.execute(
            select(func.count()).select_from(resource_version).where(*conditions)
        ).scalar_one()
        columns = [c for c in resource_version.c if c.name != "content"]
        rows = self.connection.execute(
            select(*columns, cast(resource_version.c.content, Text).label("content"))
            .where(*conditions)
            .order_by(resource_version.c.last_updated.desc(), resource_version.c.pk.desc())
            .limit(count)
            .offset(offset)
        )
        found: list[StoredResource] = []
        size = 0
        for r in rows:
            size += len(r.content or "")
            if max_bytes is not None and found and size > max_bytes:
                break  # the page links go on from here (total says there is more)
            content = orjson.loads(r.content) if r.content is not None else None
            found.append(
                StoredResource(r.type, r.fhir_id, r.version, r.last_updated, content is None, content, r.method)
            )
        return found, total

    # -- writes --------------------------------------------------------------------------------
    def lock(self, key: str) -> None:
        """Serialise writers that test-then-write on the same condition (conditional create and
        update): PostgreSQL takes a transaction-scoped advisory lock; SQLite writers already hold
        the database write lock from BEGIN IMMEDIATE."""
        if self.is_postgres:
            digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": digest})

    def write(
        self,
        content: dict[str, Any],
        *,
        current: StoredResource | None,
        method: str,
        source: str,
        now: datetime,
    ) -> StoredResource:
        """Store a new version of `content` (whose id is set). `current` is what the caller read:
        if another writer got in between, the version check turns the race into a 409."""
        resource_type, resource_id = content["resourceType"], content["id"]
        version = (current.version + 1) if current else 1
        stored = StoredResource(
            resource_type, resource_id, version, now, False, _with_meta(content, version, now), method, source=source
        )
        if current is None:
            self._pending[(resource_type, resource_id)] = _PendingCreate(stored, method, source)
            return stored
        pk = self._pk_of(current)
        self._update_row(pk, current, stored)
        self._insert_versions([(pk, stored, method, source)])
        self._insert_indexes([(pk, stored)])
        written = replace(stored, pk=pk)
        self._known[(resource_type, resource_id)] = written
        return written

    def delete(self, current: StoredResource, *, source: str, now: datetime) -> StoredResource:
        pk = self._pk_of(current)
        deleted = StoredResource(
            current.type, current.id, current.version + 1, now, True, None, "DELETE", source=source
        )
        self._update_row(pk, current, deleted)
        self._insert_versions([(pk, deleted, "DELETE", source)])
        written = replace(deleted, pk=pk)
        self._known[(current.type, current.id)] = written
        return written

    def flush(self) -> None:
        """Write the buffered creates: primary keys allocated up front, then one bulk insert per
        table (executemany, or COPY on PostgreSQL). RETURNING in parameter order would make
        SQLite insert row by row."""
        if not self._pending:
            return
        pending = list(self._pending.values())
        self._pending.clear()
        pks = self._allocate_pks(len(pending))
        try:
            self._bulk_insert(
                resource,
                [
                    {
                        "pk": pk,
                        "type": p.stored.type,
                        "fhir_id": p.stored.id,
                        "version": p.stored.version,
                        "last_updated": p.stored.last_updated,
                        "deleted": False,
                        "content": p.stored.content,
                        "source": p.source,
                    }
                    for pk, p in zip(pks, pending, strict=True)
                ],
            )
        except (IntegrityError, psycopg.errors.UniqueViolation):
            raise Conflict(
                "a resource in this request was created by another request at the same time; retry"
            ) from None
        self._insert_versions([(pk, p.stored, p.method, p.source) for pk, p in zip(pks, pending, strict=True)])
        self._insert_indexes([(pk, p.stored) for pk, p in zip(pks, pending, strict=True)])
        self._known.update(
            ((p.stored.type, p.stored.id), replace(p.stored, pk=pk)) for pk, p in zip(pks, pending, strict=True)
        )

    def _allocate_pks(self, count: int) -> list[int]:
        if self.is_postgres:
            return list(self.connection.execute(_NEXT_PKS, {"n": count}).scalars())
        # SQLite: this transaction holds the write lock (BEGIN IMMEDIATE), and resource rows are
        # never deleted (deletion is a version), so the keys above the current maximum are ours.
        highest: int = self.connection.execute(_MAX_PK).scalar_one()
        return list(range(highest + 1, highest + 1 + count))

    def _pk_of(self, current: StoredResource) -> int:
        if current.pk is not None:
            return current.pk
        self.flush()  # it was created earlier in this unit of work
        found = self.read(current.type, current.id)
        assert found is not None and found.pk is not None
        return found.pk

    def _update_row(self, pk: int, current: StoredResource, new: StoredResource) -> None:
        changed = self.connection.execute(
            _UPDATE_RESOURCE,
            {
                "b_pk": pk,
                "b_version": current.version,
                "new_version": new.version,
                "now": new.last_updated,
                "is_deleted": new.deleted,
                "new_content": new.content,
                "new_source": new.source,
            },
        ).rowcount
        if changed != 1:
            raise Conflict(f"{current.type}/{current.id} was changed by another request; read it again and retry")
        for statement in _CLEAR_INDEX.values():
            self.connection.execute(statement, {"pk": pk})

    def _insert_versions(self, rows: list[tuple[int, StoredResource, str, str]]) -> None:
        self._bulk_insert(
            resource_version,
            [
                {
                    "resource_pk": pk,
                    "type": item.type,
                    "fhir_id": item.id,
                    "version": item.version,
                    "last_updated": item.last_updated,
                    "method": method,
                    "source": source[:200],
                    "security": (item.content.get("meta") or {}).get("security") if item.content else None,
                    "content": item.content,
                }
                for pk, item, method, source in rows
            ],
        )

    def _insert_indexes(self, items: list[tuple[int, StoredResource]]) -> None:
        batches: dict[str, list[dict[str, Any]]] = {kind: [] for kind in INDEX_TABLES}
        for pk, item in items:
            assert item.content is not None
            for kind, rows in index_entries(item.content, self.base_url).items():
                columns = _INDEX_VALUE_COLUMNS[kind]
                batches[kind].extend(
                    {"resource_pk": pk, "type": item.type, "param": row[0], **dict(zip(columns, row[1:], strict=True))}
                    for row in rows
                )
        for kind, rows in batches.items():
            self._bulk_insert(INDEX_TABLES[kind], rows)

    def _bulk_insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """executemany; on PostgreSQL, COPY for more than a few rows (row-by-row INSERTs were
        most of the store's share of ingest time there)."""
        if not rows:
            return
        if not self.is_postgres:
            _driver_executemany(self.connection, table, rows)
            return
        if len(rows) < _COPY_THRESHOLD:
            self.connection.execute(insert(table), rows)
            return
        columns = list(rows[0])
        json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}
        statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
            psycopg.sql.Identifier(table.name), psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns))
        )
        driver_connection: Any = self.connection.connection.driver_connection
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        _json_text(row[column]) if column in json_columns and row[column] is not None else row[column]
                        for column in columns
                    ]
                )

    # -- search --------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> tuple[list[StoredResource], int | None]:
        self.flush()
        conditions = self._conditions(query.resource_type, query.criteria)
        count_statement = select(func.count()).select_from(resource).where(*conditions)
        if query.summary_count:
            return [], self.connection.execute(count_statement).scalar_one()
        order = []
        for column, descending in query.sort:
            target = resource.c.last_updated if column == "_lastUpdated" else resource.c.fhir_id
            order.append(target.desc() if descending else target.asc())
        order.append(resource.c.pk.asc())
        statement: Select[Any] = select(*_SIZED_COLUMNS).where(*conditions)
        found: list[StoredResource] = []
        size, cut = 0, False
        for row in self.connection.execute(statement.order_by(*order).limit(query.count).offset(query.offset)):
            size += len(row.content or "")
            if query.max_bytes is not None and found and size > query.max_bytes:
                cut = True  # the rest comes on the next page
                break
            found.append(_stored(row, orjson.loads(row.content) if row.content is not None else None))
        total: int | None = None
        if query.total != "none":
            if not cut and len(found) < query.count and (found or query.offset == 0):
                total = query.offset + len(found)  # a short page is the last one: no COUNT needed
            else:
                total = self.connection.execute(count_statement).scalar_one()
        elif cut:
            total = query.offset + len(found) + 1  # at least one more: the page links say "next"
        return found, total

    def compartment(self, patient_id: str, types: Sequence[str], limit: int = 5000) -> list[StoredResource]:
        """The live resources of these types whose `patient` parameter points at the patient, in
        one query (a brief reads a dozen types; a search each took most of its time)."""
        return self.compartments([patient_id], types, limit)[patient_id]

    def compartments(
        self, patient_ids: Sequence[str], types: Sequence[str], limit: int = 5000
    ) -> dict[str, list[StoredResource]]:
        """`compartment` for several patients in one query (the consent hook deciding about a
        search's or a match's people), each patient's resources under its id; with "Patient" in
        `types`, the Patient itself too (a second query, by id)."""
        self.flush()
        found: dict[str, list[StoredResource]] = {patient: [] for patient in patient_ids}
        if not patient_ids:
            return found
        if "Patient" in types:
            for row in self.connection.execute(_PATIENTS, {"ids": sorted(found)}):
                found[row.fhir_id].append(_stored(row))
            types = [t for t in types if t != "Patient"]
        seen: set[tuple[str, int]] = set()  # a resource naming its patient in two elements has two index rows
        parameters = {"patients": sorted(found), "types": list(types), "limit": limit * len(found)}
        for row in self.connection.execute(_COMPARTMENTS, parameters):
            if (row.patient_id, row.pk) not in seen:
                seen.add((row.patient_id, row.pk))
                found[row.patient_id].append(_stored(row))
        return found

    def blocked_patients(self, keys: Sequence[str], limit: int) -> list[StoredResource]:
        """One lookup on the token index for all of a description's matching keys."""
        if not keys:
            return []
        self.flush()
        rows = self.connection.execute(_BLOCKED_PATIENTS, {"keys": list(keys), "limit": limit}).all()
        return [_stored(row) for row in rows]

    def find(self, resource_type: str, criteria: Sequence[Criterion], limit: int = 2) -> list[StoredResource]:
        """Matches of a conditional request (If-None-Exist, conditional update/delete)."""
        self.flush()
        rows = self.connection.execute(
            select(*_RESOURCE_COLUMNS)
            .where(*self._conditions(resource_type, criteria))
            .order_by(resource.c.pk)
            .limit(limit)
        ).all()
        return [_stored(row) for row in rows]

    def _conditions(self, resource_type: str, criteria: Iterable[Criterion]) -> list[ColumnElement[bool]]:
        criteria = list(criteria)
        conditions: list[ColumnElement[bool]] = [resource.c.deleted == false()]
        # An index criterion already pins the type (index rows carry it). Stating it again on
        # `resource` makes SQLite, which has no statistics, walk every resource of the type
        # instead of looking up the few matching primary keys.
        if not any(c.kind in INDEX_TABLES and c.modifier not in ("not", "missing") for c in criteria):
            conditions.append(resource.c.type == resource_type)
        for criterion in criteria:
            conditions.append(self._criterion(resource_type, criterion))
        return conditions

    def _criterion(self, resource_type: str, criterion: Criterion) -> ColumnElement[bool]:
        if criterion.kind == "_id":
            return resource.c.fhir_id.in_(criterion.values)
        if criterion.kind == "_lastUpdated":
            return or_(*(_date_match(resource.c.last_updated, resource.c.last_updated, v) for v in criterion.values))
        table = INDEX_TABLES[criterion.kind]
        if criterion.modifier == "missing":
            base = and_(
                table.c.resource_pk == resource.c.pk, table.c.type == resource_type, table.c.param == criterion.name
            )
            present = exists().where(base)
            return not_(present) if criterion.values[0] else present
        # `pk IN (indexed lookup)`, not a correlated EXISTS: the lookup index (type, param, value)
        # finds the few matching rows instead of probing every resource of the type.
        matches = or_(*(self._value_match(criterion, value) for value in criterion.values))
        matching = select(table.c.resource_pk).where(
            table.c.type == resource_type, table.c.param == criterion.name, matches
        )
        if criterion.modifier == "not":
            return resource.c.pk.not_in(matching)
        return resource.c.pk.in_(matching)

    def _value_match(self, criterion: Criterion, value: Any) -> ColumnElement[bool]:
        if isinstance(value, TokenValue):
            parts: list[ColumnElement[bool]] = []
            if value.code is not None:
                parts.append(search_token.c.code == value.code)
            if value.system == "":
                parts.append(search_token.c.system.is_(None))
            elif value.system is not None:
                parts.append(search_token.c.system == value.system)
            return and_(true(), *parts)
        if isinstance(value, str):
            if criterion.modifier == "exact":
                # the normalised value finds candidates through the lookup index; the text as
                # written decides (case and accents count)
                return and_(search_string.c.value == normalise_string(value), search_string.c.exact == value)
            if criterion.modifier == "contains":
                escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                return search_string.c.value.like(f"%{escaped}%", escape="\\")
            # starts-with as a bytewise range: the lookup index serves it, where LIKE would scan
            return and_(search_string.c.value >= value, search_string.c.value < value + _HIGHEST)
        if isinstance(value, DateValue):
            return _date_match(search_date.c.low, search_date.c.high, value)
        if isinstance(value, ReferenceValue):
            match = search_reference.c.target_id == value.target_id
            if value.target_type:
                match = and_(match, search_reference.c.target_type == value.target_type)
            return match
        raise TypeError(value)  # pragma: no cover

    # -- _include / _revinclude ---------------------------------------------------------------
    def included(self, matches: list[StoredResource], includes: list[Include]) -> list[StoredResource]:
        if not matches or not includes:
            return []
        self.flush()
        by_type: dict[str, list[str]] = {}
        for item in matches:
            by_type.setdefault(item.type, []).append(item.id)
        found: dict[tuple[str, str], StoredResource] = {}
        for include in includes:
            ids = by_type.get(include.source_type)
            if not ids:
                continue
            source = resource.alias("source")
            targets = (
                select(search_reference.c.target_type, search_reference.c.target_id)
                .join(source, source.c.pk == search_reference.c.resource_pk)
                .where(
                    source.c.type == include.source_type,
                    source.c.fhir_id.in_(ids),
                    search_reference.c.param == include.param,
                )
            )
            if include.target_type:
                targets = targets.where(search_reference.c.target_type == include.target_type)
            pairs = self.connection.execute(targets).all()
            for target_type, target_id in pairs:
                if (target_type, target_id) in found:
                    continue
                item = self.read(target_type, target_id)
                if item is not None and not item.deleted:
                    found[(target_type, target_id)] = item
        seen = {(m.type, m.id) for m in matches}
        return [item for key, item in found.items() if key not in seen]

    def revincluded(self, matches: list[StoredResource], revincludes: list[Include]) -> list[StoredResource]:
        if not matches or not revincludes:
            return []
        self.flush()
        found: dict[tuple[str, str], StoredResource] = {}
        for include in revincludes:
            targets = [m for m in matches if include.target_type in (None, m.type)]
            if not targets:
                continue
            condition = or_(
                *(and_(search_reference.c.target_type == m.type, search_reference.c.target_id == m.id) for m in targets)
            )
            rows = self.connection.execute(
                select(*_RESOURCE_COLUMNS)
                .where(
                    resource.c.type == include.source_type,
                    resource.c.deleted == false(),
                    exists().where(
                        search_reference.c.resource_pk == resource.c.pk,
                        search_reference.c.param == include.param,
                        condition,
                    ),
                )
                .limit(1000)
            ).all()
            for row in rows:
                found.setdefault((row.type, row.fhir_id), _stored(row))
        seen = {(m.type, m.id) for m in matches}
        return [item for key, item in found.items() if key not in seen]


def _date_match(low: Any, high: Any, value: DateValue) -> ColumnElement[bool]:
    """search.html#prefix: compare the stored range [low, high] with the parameter's range."""
    prefix, vlow, vhigh = value.prefix, value.low, value.high
    if prefix == "eq":
        # `low <= vhigh` follows from low <= high <= vhigh; said outright it bounds the index
        # range on both sides. Without it PostgreSQL judged `low >= X` and `high <= Y` separately
        # (a quarter of all rows), walked the primary key instead and took 120 ms at 100k Patients.
        return and_(low >= vlow, low <= vhigh, high <= vhigh)
    if prefix == "ne":
        return or_(low < vlow, high > vhigh)
    if prefix == "gt":
        return high > vhigh
    if prefix == "lt":
        return low < vlow
    if prefix == "ge":
        return high >= vlow
    if prefix == "le":
        return low <= vhigh
    if prefix == "sa":
        return low > vhigh
    if prefix == "eb":
        return high < vlow
    # ap: approximately, within 10% of the gap to now; we use the day around the value.
    return and_(low <= vhigh, high >= vlow)


class SqlStore:
    """Units of work on a SQLAlchemy engine. Writers begin with the write lock on SQLite."""

    def __init__(self, engine: Engine, base_url: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.base_url = base_url
        self.clock = clock  # every unit of work's `now` (gateway/clock.py)

    @contextmanager
    def unit_of_work(self, write: bool) -> Iterator[tuple[SqlRepository, datetime]]:
        with self.engine.connect() as connection:
            if not write and connection.dialect.name == "postgresql":
                # Reads are READ COMMITTED either way; autocommit spares the BEGIN and COMMIT
                # round trips (two of a read's three).
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                yield SqlRepository(connection, self.base_url), utc_now(self.clock)
                return
            if write:
                connection = connection.execution_options(write=True)
            with connection.begin():
                repository = SqlRepository(connection, self.base_url)
                yield repository, utc_now(self.clock)
                repository.flush()
