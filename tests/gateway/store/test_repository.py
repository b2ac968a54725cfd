"""The SQL repository on its own (SQLite or PostgreSQL, as the suite runs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from gateway.fhir.errors import Conflict
from gateway.fhir.search import parse_search
from gateway.store.repository import SqlStore


@pytest.fixture()
def store(app: Flask) -> Iterator[SqlStore]:
    yield SqlStore(app.extensions["database"], "http://127.0.0.1:8080/fhir")


def patient(resource_id: str, family: str = "Rivera") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id, "name": [{"family": family}], "gender": "female"}


def test_a_write_based_on_a_stale_read_is_a_conflict(store: SqlStore) -> None:
    with store.unit_of_work(True) as (repository, now):
        repository.write(patient("p1"), current=None, method="PUT", source="test", now=now)
    with store.unit_of_work(False) as (repository, _):
        stale = repository.read("Patient", "p1")
    assert stale is not None and stale.version == 1
    with store.unit_of_work(True) as (repository, now):
        repository.write(patient("p1", "Nguyen"), current=stale, method="PUT", source="other writer", now=now)
    with pytest.raises(Conflict), store.unit_of_work(True) as (repository, now):
        repository.write(patient("p1", "Okafor"), current=stale, method="PUT", source="late writer", now=now)
    with store.unit_of_work(False) as (repository, _):
        current = repository.read("Patient", "p1")
    assert current is not None and current.version == 2
    assert current.content is not None and current.content["name"][0]["family"] == "Nguyen"


def test_buffered_creates_are_visible_to_reads_and_searches_in_the_same_unit(store: SqlStore) -> None:
    with store.unit_of_work(True) as (repository, now):
        for n in range(5):
            repository.write(patient(f"p{n}"), current=None, method="POST", source="test", now=now)
        assert repository.read("Patient", "p3") is not None  # from the buffer
        query = parse_search(
            "Patient", [("family", "riv")], base_url=repository.base_url, strict=True, default_count=50, max_count=100
        )
        matches, total = repository.search(query)  # flushes first
        assert total == 5 and sorted(m.id for m in matches) == [f"p{n}" for n in range(5)]
        assert repository.existing([("Patient", "p1"), ("Patient", "nope"), ("Flag", "p1")]) == {("Patient", "p1")}


def test_a_failed_unit_of_work_leaves_nothing(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work(True) as (repository, now):
        repository.write(patient("gone"), current=None, method="POST", source="test", now=now)
        repository.flush()
        raise RuntimeError("crash mid-transaction")
    with store.unit_of_work(False) as (repository, _):
        assert repository.read("Patient", "gone") is None
        assert repository.history("Patient", "gone", None, 10, 0) == ([], 0)


def test_history_keeps_every_version_with_its_source_and_labels(store: SqlStore) -> None:
    labelled = {**patient("p1"), "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                          "code": "42CFRPart2"}]}}  # fmt: skip
    with store.unit_of_work(True) as (repository, now):
        first = repository.write(labelled, current=None, method="PUT", source="client:ehr-1", now=now)
    with store.unit_of_work(True) as (repository, now):
        repository.delete(repository.read("Patient", "p1") or first, source="client:ehr-1", now=now)
    with store.unit_of_work(False) as (repository, _):
        versions, total = repository.history("Patient", "p1", None, 10, 0)
        assert total == 2 and [v.deleted for v in versions] == [True, False]
        row = repository.connection.exec_driver_sql(
            "SELECT source, security FROM resource_version WHERE fhir_id = 'p1' AND version = 1"
        ).one()
    assert row[0] == "client:ehr-1"
    security = row[1] if isinstance(row[1], list) else __import__("json").loads(row[1])
    assert security[0]["code"] == "42CFRPart2"


def test_rows_loaded_in_bulk_stay_current_through_writes(store: SqlStore) -> None:
    with store.unit_of_work(True) as (repository, now):
        repository.write(patient("p1"), current=None, method="PUT", source="test", now=now)
    with store.unit_of_work(True) as (repository, now):
        assert repository.existing([("Patient", "p1"), ("Patient", "p2")]) == {("Patient", "p1")}
        current = repository.read("Patient", "p1")
        assert current is not None and current.version == 1
        updated = repository.write(patient("p1", "Nguyen"), current=current, method="PUT", source="test", now=now)
        assert repository.read("Patient", "p1") == updated
        assert repository.read("Patient", "p2") is None  # known absent, no query
        created = repository.write(patient("p2"), current=None, method="PUT", source="test", now=now)
        repository.flush()
        reread = repository.read("Patient", "p2")
        assert reread is not None and reread.version == created.version and reread.pk is not None
        repository.delete(updated, source="test", now=now)
        gone = repository.read("Patient", "p1")
        assert gone is not None and gone.deleted and gone.version == 3
