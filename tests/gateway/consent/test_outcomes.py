"""After the call, over HTTP in the county world: the responder's outcome finishes the crisis
Encounter, and the care teams the responder may see (and only those) are told."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from gateway.store.schema import audit_event
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.world import World


@pytest.fixture()
def world(smart_server: LiveServer) -> World:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_app()
    return county.build(harness)


def outcome(world: World, user: str, patient: str, **body: Any) -> requests.Response:
    return requests.post(f"{world.harness.root}/responder/outcome", timeout=10,
                         json={"patient": patient, "disposition": "stayed-home-safety-plan", **body},
                         headers={"Authorization": f"Bearer {world.token(user)}"})  # fmt: skip


def crisis_encounter(world: World) -> dict[str, Any]:
    """The crisis Encounter as the crisis team's own system reads it back."""
    token = world.harness.backend_token(world.harness._backends["county-cad"], "system/Encounter.rs")
    answer = world.harness.get("Encounter/maria-crisis-call", token)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def messages_to(world: World, client_id: str, organization: str) -> list[dict[str, Any]]:
    """What the care team's own EHR finds addressed to it, as it would ask."""
    backend = world.harness._backends[client_id]
    token = world.harness.backend_token(backend, "system/Communication.rs")
    found = world.harness.get("Communication", token, params={"recipient": organization}).json()
    return [e["resource"] for e in found.get("entry", []) if e["resource"]["resourceType"] == "Communication"]


def test_the_outcome_finishes_the_encounter_and_tells_the_care_teams_the_responder_may_see(world: World) -> None:
    answer = outcome(world, "ada", "maria", note="Calmer after talking; sister is with her.\nCheck in tomorrow.")
    assert answer.status_code == 202, answer.text
    told = answer.json()["told"]
    # Her opioid treatment program under her TPO consent; her mental-health centre under HIPAA's
    # treatment rule. The crisis team does not tell itself.
    assert sorted(told) == ["Eastside Recovery Services (OTP)", "Harbor Community Mental Health"]
    encounter = crisis_encounter(world)
    assert encounter["status"] == "finished" and encounter["period"]["end"] >= encounter["period"]["start"]
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "stayed-home-safety-plan"
    assert "Check in tomorrow." in encounter["extension"][0]["valueString"]  # one line: the form's break is a space
    sent = messages_to(world, "eastside-otp-ehr", county.OTP)
    assert len(sent) == 1
    text = sent[0]["payload"][0]["contentString"]
    assert text.startswith("Your patient was seen by the County Mobile Crisis Team at ")
    assert text.endswith("outcome: stayed home with a safety plan.")
    assert sent[0]["encounter"]["reference"] == "Encounter/maria-crisis-call"
    assert sent[0]["recipient"] == [{"reference": county.OTP}] and sent[0]["sender"]["reference"] == county.CRISIS
    # Each write has its audit record, by the responder.
    with world.database().connect() as connection:
        writes = connection.execute(select(audit_event.c.interaction).where(audit_event.c.recipient == "ada",
                                    audit_event.c.interaction.in_(("create", "update")))).scalars().all()  # fmt: skip
        assert sorted(writes) == ["create", "create", "update"]


def test_a_care_team_the_responder_may_not_see_is_not_told(world: World) -> None:
    """dana is known only to the OTP, with no consent: the crisis team may not know she is in
    treatment there, so the OTP is told nothing; the outcome is still recorded."""
    answer = outcome(world, "ada", "dana", disposition="voluntary-crisis-unit")
    assert answer.status_code == 202 and answer.json()["told"] == []
    assert messages_to(world, "eastside-otp-ehr", county.OTP) == []


def test_who_may_record_an_outcome_and_what_is_refused(world: World) -> None:
    assert outcome(world, "lee", "maria").status_code == 403  # police are not a treating role
    assert outcome(world, "ada", "maria", disposition="went-away").status_code == 400
    assert outcome(world, "ada", "maria", note="x" * 501).status_code == 400
    assert outcome(world, "ada", "maria", note="bell\x07").status_code == 400
    assert outcome(world, "ada", "../Patient").status_code == 400
    assert (
        requests.post(f"{world.harness.root}/responder/outcome", json={"patient": "maria"}, timeout=10).status_code
        == 401
    )
    # Nobody on file: the same answer, and nothing written.
    unknown = outcome(world, "ada", "never-stored")
    assert unknown.status_code == 202 and unknown.json() == {"recorded": True, "told": []}
    assert crisis_encounter(world)["status"] == "in-progress"
