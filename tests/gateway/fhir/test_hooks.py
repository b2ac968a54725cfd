"""Every interaction passes the authorization hook before the store and the release hook after,
top-level requests and Bundle entries alike (the doors the SMART and consent work fill in)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gateway.fhir.context import FhirRequest, FhirResponse, Interaction
from gateway.fhir.engine import Engine
from gateway.fhir.errors import NotFound


class Recorder:
    def __init__(self) -> None:
        self.authorized: list[tuple[str, str | None]] = []
        self.released: list[tuple[str, int]] = []
        self.deny: str | None = None

    def authorize(self, request: FhirRequest, interaction: Interaction) -> None:
        self.authorized.append((interaction.name, interaction.resource_type))
        if interaction.name == self.deny:
            raise NotFound("not for you")

    def release(
        self, request: FhirRequest, interaction: Interaction, response: FhirResponse, repository: Any, now: Any
    ) -> FhirResponse:
        assert repository is not None and now is not None  # the decision reads through the unit of work
        self.released.append((interaction.name, response.status))
        return response

    def may_know(self, request: FhirRequest, patients: list[dict[str, Any]], repository: Any, now: Any) -> list[Any]:
        return patients


@pytest.fixture()
def engine(app: Flask) -> Any:
    real: Engine = app.extensions["fhir_engine"]
    recorder = Recorder()
    hooked = Engine(real.store, real.config, authorization=recorder, release=recorder)
    return hooked, recorder


def patient(resource_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id, "gender": "female"}


def test_top_level_interactions_pass_both_hooks(engine: Any) -> None:
    hooked, recorder = engine
    hooked.handle(FhirRequest("PUT", "Patient/p1", body=patient("p1")))
    hooked.handle(FhirRequest("GET", "Patient/p1"))
    hooked.handle(FhirRequest("GET", "Patient", params=[("_id", "p1")]))
    hooked.handle(FhirRequest("GET", "metadata"))
    assert recorder.authorized == [("update", "Patient"), ("read", "Patient"), ("search-type", "Patient"),
                                   ("capabilities", None)]  # fmt: skip
    assert [name for name, _ in recorder.released] == ["update", "read", "search-type", "capabilities"]


def test_each_bundle_entry_passes_both_hooks(engine: Any) -> None:
    hooked, recorder = engine
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("p1"), "request": {"method": "PUT", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient?_id=p1"}}]}  # fmt: skip
    hooked.handle(FhirRequest("POST", "", body=bundle))
    assert recorder.authorized == [("transaction", None), ("update", "Patient"), ("search-type", "Patient")]
    assert [name for name, _ in recorder.released] == ["update", "search-type"]  # what leaves is the entries' answers


def test_a_refusal_stops_the_interaction_before_the_store(engine: Any) -> None:
    hooked, recorder = engine
    recorder.deny = "update"
    with pytest.raises(NotFound):
        hooked.handle(FhirRequest("PUT", "Patient/p1", body=patient("p1")))
    recorder.deny = None
    with pytest.raises(NotFound):
        hooked.handle(FhirRequest("GET", "Patient/p1"))  # nothing was written
