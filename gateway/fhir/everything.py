"""A patient's record as stored: the resources in the patient's compartment and the people and
organizations they point at (like $everything, without paging). The responder brief reads it;
what may be released of it is the release hooks' decision, not this module's."""

from __future__ import annotations

from typing import Any

from gateway.fhir.indexing import split_reference
from gateway.fhir.repository import Repository, StoredResource
from gateway.fhir.search import parse_search
from gateway.fhir.search_parameters import SEARCH_PARAMETERS

# What a responder brief draws on (issue 5); other compartment types are not read.
BRIEF_TYPES = ("EpisodeOfCare", "CareTeam", "Flag", "CarePlan", "Observation", "Condition", "MedicationStatement",
               "MedicationRequest", "AllergyIntolerance", "Encounter", "RelatedPerson", "ServiceRequest",
               "DocumentReference", "Consent")  # fmt: skip
REFERENCED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "RelatedPerson"})
MAX_PER_TYPE = 500


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found.extend(_references(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_references(value))
    return found


def patient_record(repository: Repository, base_url: str, patient_id: str) -> list[StoredResource]:
    patient = repository.read("Patient", patient_id)
    if patient is None or patient.deleted:
        return []
    record = [patient]
    for resource_type in BRIEF_TYPES:
        if "patient" not in SEARCH_PARAMETERS.get(resource_type, {}):
            continue
        query = parse_search(resource_type, [("patient", f"Patient/{patient_id}"), ("_total", "none")],
                             base_url=base_url, strict=True, default_count=MAX_PER_TYPE, max_count=MAX_PER_TYPE)  # fmt: skip
        matches, _ = repository.search(query)
        record.extend(matches)
    seen = {(item.type, item.id) for item in record}
    pending = [item for item in record]
    for _ in range(2):  # CareTeam -> PractitionerRole -> Practitioner/Organization
        wanted: list[tuple[str, str]] = []
        for item in pending:
            for reference in _references(item.content):
                target = split_reference(reference, base_url)
                if target and target[0] in REFERENCED_TYPES and target not in seen:
                    seen.add(target)
                    wanted.append(target)
        pending = [found for key in wanted if (found := repository.read(*key)) is not None and not found.deleted]
        record.extend(pending)
    return record
