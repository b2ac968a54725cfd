from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness


def patient(patient_id: str, family: str, given: str, birth: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": f"999-{patient_id[-2:]}-0001"}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": "555-0100", "use": "mobile"}],
    }


def episode(episode_id: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "id": episode_id,
        "status": "active",
        "type": [{"text": "Outpatient mental-health treatment"}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {"reference": "Organization/eastside-clinic"},
        "period": {"start": "2026-03-01"},
    }


PEOPLE = [
    {
        "resourceType": "Organization",
        "id": "county-mobile-crisis",
        "name": "County Mobile Crisis Team",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
        "telecom": [{"system": "phone", "value": "555-0988", "use": "work"}],
    },
    {
        "resourceType": "Organization",
        "id": "eastside-clinic",
        "name": "Eastside Community Mental Health",
        "telecom": [{"system": "phone", "value": "555-0199", "use": "work"}],
    },
    {
        "resourceType": "Practitioner",
        "id": "clinician-ada",
        "name": [{"family": "Lovelace", "given": ["Ada"], "prefix": ["Dr."]}],
    },
    patient("pat-1", "Rivera", "Maria", "1988-04-12"),
    patient("pat-2", "Okafor", "James", "1975-11-30"),
    episode("eoc-1", "pat-1"),
    episode("eoc-2", "pat-2"),
]


@pytest.fixture()
def smart(smart_server: LiveServer) -> Harness:
    """A live gateway behind SMART with two patients, an app, a clinician user."""
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.seed(*PEOPLE)
    harness.add_app()
    harness.add_user()
    return harness
