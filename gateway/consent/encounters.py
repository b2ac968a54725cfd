"""The crisis Encounter: an in-progress field encounter of the responder's organization with the
person. It is the treating relationship TPO and intermediary consents need (issue 4's rule),
started when dispatch launches a team or when a responder records being on scene."""

from __future__ import annotations

import uuid
from typing import Any

from consent_engine.labels import apply_labels
from gateway.auth.accounts import utcnow
from gateway.fhir.repository import Store

INCIDENT_SYSTEM = "urn:crisis-gateway:cad-incident"


def patient_exists(store: Store, patient_id: str) -> bool:
    """A live Patient with this id is stored (callers keep the answer to themselves: presence is
    protected)."""
    with store.unit_of_work(False) as (repository, _):
        found = repository.read("Patient", patient_id)
    return found is not None and not found.deleted


def start_crisis_encounter(store: Store, patient: str, organization: str, incident: str | None, source: str) -> str:
    """Store a new in-progress crisis Encounter; returns its id. The caller has checked that the
    patient exists and that the organization is the responder's."""
    encounter_id = str(uuid.uuid4())
    content: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD", "display": "field"},
        "type": [{"text": "Mobile crisis response"}],
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": organization},
        "period": {"start": utcnow().isoformat() + "Z"},
    }
    if incident:
        content["identifier"] = [{"system": INCIDENT_SYSTEM, "value": incident}]
    content = apply_labels(content, frozenset(), "STATUS")  # nothing sensitive; its data class
    with store.unit_of_work(True) as (repository, now):
        repository.write(content, current=None, method="POST", source=source, now=now)
    return encounter_id
