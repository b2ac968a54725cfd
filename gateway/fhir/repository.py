"""What the engine needs from storage. The SQLAlchemy store implements it (gateway.store)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.clock import Clock
from gateway.fhir.search import Criterion, Include, SearchQuery


@dataclass(frozen=True)
class StoredResource:
    type: str
    id: str
    version: int
    last_updated: datetime
    deleted: bool
    content: dict[str, Any] | None
    method: str = ""
    pk: int | None = None  # the store's row id, when the store knows it (saves a lookup on update)
    source: str | None = None  # who wrote the current version (client:<id>, import:<file>, demo)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


class Repository(Protocol):
    base_url: str
    connection: Any  # the unit of work's database connection (the audit log writes on it)

    def flush(self) -> None:
        """Write buffered creates now (before a query that must see them)."""
        ...

    def read(self, resource_type: str, resource_id: str) -> StoredResource | None: ...

    def types_with_id(self, resource_id: str) -> list[str]: ...

    def existing(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (type, id) pairs are stored (live or deleted), in one query."""
        ...

    def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None: ...

    def history(
        self,
        resource_type: str | None,
        resource_id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
        max_bytes: int | None = None,
    ) -> tuple[list[StoredResource], int]: ...

    def lock(self, key: str) -> None: ...

    def write(
        self, content: dict[str, Any], *, current: StoredResource | None, method: str, source: str, now: datetime
    ) -> StoredResource: ...

    def delete(self, current: StoredResource, *, source: str, now: datetime) -> StoredResource: ...

    def search(self, query: SearchQuery) -> tuple[list[StoredResource], int | None]: ...

    def find(self, resource_type: str, criteria: Sequence[Criterion], limit: int = 2) -> list[StoredResource]: ...

    def compartment(self, patient_id: str, types: Sequence[str], limit: int = 5000) -> list[StoredResource]:
        """Live resources of these types whose `patient` search parameter points at the patient."""
        ...

    def compartments(
        self, patient_ids: Sequence[str], types: Sequence[str], limit: int = 5000
    ) -> dict[str, list[StoredResource]]:
        """`compartment` for several patients in one query, by patient id (each id a key)."""
        ...

    def blocked_patients(self, keys: Sequence[str], limit: int) -> list[StoredResource]:
        """Live Patients filed under any of these matching keys (`indexing.BLOCKING_PARAMETER`)."""
        ...

    def included(self, matches: list[StoredResource], includes: list[Include]) -> list[StoredResource]: ...

    def revincluded(self, matches: list[StoredResource], revincludes: list[Include]) -> list[StoredResource]: ...


class Store(Protocol):
    """Opens units of work: one database transaction each, committed when the block succeeds,
    each at its `now` on the store's clock."""

    clock: Clock

    def unit_of_work(self, write: bool) -> AbstractContextManager[tuple[Repository, datetime]]: ...
