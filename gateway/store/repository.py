"""The SQLAlchemy repository: versioned resource storage and search on one DB connection.

A repository is bound to one open transaction; the caller (the engine's unit of work) commits or
rolls back, so a transaction Bundle of any size is all-or-nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
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
from sqlalchemy.engine import Connection, Engine, Row

from gateway.fhir.dates import instant, utc_now
from gateway.fhir.errors import Conflict
from gateway.fhir.indexing import index_entries
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

_RESOURCE_COLUMNS = (
    resource.c.pk,
    resource.c.type,
    resource.c.fhir_id,
    resource.c.version,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
)


def _stored(row: Row[Any]) -> StoredResource:
    return StoredResource(row.type, row.fhir_id, row.version, row.last_updated, row.deleted, row.content)


def _with_meta(content: dict[str, Any], version: int, last_updated: datetime) -> dict[str, Any]:
    meta = dict(content.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant(last_updated)
    ordered = {"resourceType": content["resourceType"], "id": content["id"], "meta": meta}
    ordered.update((key, value) for key, value in content.items() if key not in ordered)
    return ordered


class SqlRepository:
    def __init__(self, connection: Connection, base_url: str) -> None:
        self.connection = connection
        self.base_url = base_url
        self.is_postgres = connection.dialect.name == "postgresql"

    # -- reads ---------------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = self.connection.execute(
            select(*_RESOURCE_COLUMNS).where(resource.c.type == resource_type, resource.c.fhir_id == resource_id)
        ).first()
        return _stored(row) if row else None

    def types_with_id(self, resource_id: str) -> list[str]:
        """Types of the live resources with this id (to resolve a urn:uuid placeholder)."""
        return list(
            self.connection.execute(
                select(resource.c.type).where(resource.c.fhir_id == resource_id, resource.c.deleted == false())
            ).scalars()
        )

    def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        row = self.connection.execute(
            select(resource_version).where(
                resource_version.c.type == resource_type,
                resource_version.c.fhir_id == resource_id,
                resource_version.c.version == version,
            )
        ).first()
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
    ) -> tuple[list[StoredResource], int]:
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
        rows = self.connection.execute(
            select(resource_version)
            .where(*conditions)
            .order_by(resource_version.c.last_updated.desc(), resource_version.c.pk.desc())
            .limit(count)
            .offset(offset)
        ).all()
        return [
            StoredResource(r.type, r.fhir_id, r.version, r.last_updated, r.content is None, r.content, r.method)
            for r in rows
        ], total

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
        stored_content = _with_meta(content, version, now)
        if current is None:
            try:
                with self.connection.begin_nested():
                    pk = self.connection.execute(
                        insert(resource)
                        .values(
                            type=resource_type,
                            fhir_id=resource_id,
                            version=version,
                            last_updated=now,
                            deleted=False,
                            content=stored_content,
                        )
                        .returning(resource.c.pk)
                    ).scalar_one()
            except Exception as error:
                if "unique" in str(error).lower() or "duplicate" in str(error).lower():
                    raise Conflict(
                        f"{resource_type}/{resource_id} was created by another request at the same time"
                    ) from None
                raise
        else:
            pk = self._pk(resource_type, resource_id)
            changed = self.connection.execute(
                update(resource)
                .where(resource.c.pk == pk, resource.c.version == current.version)
                .values(version=version, last_updated=now, deleted=False, content=stored_content)
            ).rowcount
            if changed != 1:
                raise Conflict(f"{resource_type}/{resource_id} was changed by another request; read it again and retry")
            self._clear_index(pk)
        self._insert_version(pk, stored_content, version, now, method, source)
        self._insert_index(pk, stored_content)
        return StoredResource(resource_type, resource_id, version, now, False, stored_content, method)

    def delete(self, current: StoredResource, *, source: str, now: datetime) -> StoredResource:
        pk = self._pk(current.type, current.id)
        version = current.version + 1
        changed = self.connection.execute(
            update(resource)
            .where(resource.c.pk == pk, resource.c.version == current.version)
            .values(version=version, last_updated=now, deleted=True, content=None)
        ).rowcount
        if changed != 1:
            raise Conflict(f"{current.type}/{current.id} was changed by another request; retry the delete")
        self._clear_index(pk)
        self.connection.execute(
            insert(resource_version).values(
                resource_pk=pk,
                type=current.type,
                fhir_id=current.id,
                version=version,
                last_updated=now,
                method="DELETE",
                source=source,
                security=None,
                content=None,
            )
        )
        return StoredResource(current.type, current.id, version, now, True, None, "DELETE")

    def _pk(self, resource_type: str, resource_id: str) -> int:
        pk: int = self.connection.execute(
            select(resource.c.pk).where(resource.c.type == resource_type, resource.c.fhir_id == resource_id)
        ).scalar_one()
        return pk

    def _insert_version(
        self, pk: int, content: dict[str, Any], version: int, now: datetime, method: str, source: str
    ) -> None:
        self.connection.execute(
            insert(resource_version).values(
                resource_pk=pk,
                type=content["resourceType"],
                fhir_id=content["id"],
                version=version,
                last_updated=now,
                method=method,
                source=source[:200],
                security=(content.get("meta") or {}).get("security"),
                content=content,
            )
        )

    def _clear_index(self, pk: int) -> None:
        for table in INDEX_TABLES.values():
            self.connection.execute(delete(table).where(table.c.resource_pk == pk))

    def _insert_index(self, pk: int, content: dict[str, Any]) -> None:
        resource_type = content["resourceType"]
        for kind, rows in index_entries(content, self.base_url).items():
            if not rows:
                continue
            table = INDEX_TABLES[kind]
            value_columns = [c.name for c in table.columns][3:]
            self.connection.execute(
                insert(table),
                [
                    {
                        "resource_pk": pk,
                        "type": resource_type,
                        "param": row[0],
                        **dict(zip(value_columns, row[1:], strict=True)),
                    }
                    for row in rows
                ],
            )

    # -- search --------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> tuple[list[StoredResource], int | None]:
        conditions = self._conditions(query.resource_type, query.criteria)
        total: int | None = None
        if query.total != "none" or query.summary_count:
            total = self.connection.execute(select(func.count()).select_from(resource).where(*conditions)).scalar_one()
        if query.summary_count:
            return [], total
        statement: Select[Any] = select(*_RESOURCE_COLUMNS).where(*conditions)
        order = []
        for column, descending in query.sort:
            target = resource.c.last_updated if column == "_lastUpdated" else resource.c.fhir_id
            order.append(target.desc() if descending else target.asc())
        order.append(resource.c.pk.asc())
        rows = self.connection.execute(statement.order_by(*order).limit(query.count).offset(query.offset)).all()
        return [_stored(row) for row in rows], total

    def find(self, resource_type: str, criteria: Sequence[Criterion], limit: int = 2) -> list[StoredResource]:
        """Matches of a conditional request (If-None-Exist, conditional update/delete)."""
        rows = self.connection.execute(
            select(*_RESOURCE_COLUMNS)
            .where(*self._conditions(resource_type, criteria))
            .order_by(resource.c.pk)
            .limit(limit)
        ).all()
        return [_stored(row) for row in rows]

    def _conditions(self, resource_type: str, criteria: Iterable[Criterion]) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [resource.c.type == resource_type, resource.c.deleted == false()]
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
                return search_string.c.value == value
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%" if criterion.modifier == "contains" else f"{escaped}%"
            return search_string.c.value.like(pattern, escape="\\")
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
        return and_(low >= vlow, high <= vhigh)
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

    def __init__(self, engine: Engine, base_url: str) -> None:
        self.engine = engine
        self.base_url = base_url

    @contextmanager
    def unit_of_work(self, write: bool) -> Iterator[tuple[SqlRepository, datetime]]:
        with self.engine.connect() as connection:
            if write:
                connection = connection.execution_options(write=True)
            with connection.begin():
                yield SqlRepository(connection, self.base_url), utc_now()
