"""The crisis Encounter: an in-progress field encounter of the responder's organization with the
person. It is the treating relationship TPO and intermediary consents need, started when dispatch
launches a team or when a responder records being on scene. It is written through the engine
(labels, index, versions, audit) as the responder's organization's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.fhir.context import Requester
from gateway.fhir.dates import instant
from gateway.fhir.engine import Engine

INCIDENT_SYSTEM = "urn:crisis-gateway:cad-incident"


def crisis_encounter(patient: str, organization: str, incident: str | None, start: datetime) -> dict[str, Any]:
    content: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD", "display": "field"},
        "type": [{"text": "Mobile crisis response"}],
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": organization},
        "period": {"start": instant(start)},
    }
    if incident:
        content["identifier"] = [{"system": INCIDENT_SYSTEM, "value": incident}]
    return content


def start_crisis_encounter(
    engine: Engine, requester: Requester, patient: str, organization: str, incident: str | None
) -> str | None:
    """Store a new in-progress crisis Encounter of `organization` with the patient, as written by
    `requester` on the organization's behalf; its id, or None when the patient is not stored."""
    writer = Requester(source=requester.source, client_id=requester.client_id, username=requester.username,
                       role=requester.role, organization=organization, scopes=("system/Encounter.c",))  # fmt: skip
    return engine.create_about_patient(
        writer, patient, lambda now: crisis_encounter(patient, organization, incident, now)
    )
