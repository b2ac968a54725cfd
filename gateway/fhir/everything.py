"""A patient's record as stored: the resources in the patient's compartment and the people and
organizations they point at (like $everything, without paging). The responder brief reads it;
what may be released of it is the release hooks' decision, not this module's."""

from __future__ import annotations

from datetime import date
from typing import Any

from gateway.fhir.indexing import split_reference
from gateway.fhir.repository import Repository, StoredResource
from gateway.fhir.search import parse_search
from gateway.fhir.search_parameters import SEARCH_PARAMETERS
from gateway.fhir.validation import find_references
from mappings.matching import query_blocking_keys

# What a responder brief draws on (issue 5); other compartment types are not read.
BRIEF_TYPES = ("EpisodeOfCare", "CareTeam", "Flag", "CarePlan", "Observation", "Condition", "MedicationStatement",
               "MedicationRequest", "AllergyIntolerance", "Encounter", "RelatedPerson", "ServiceRequest",
               "DocumentReference", "Consent")  # fmt: skip
# What a release decision reads: consents, treating relationships, programs' episodes, and the
# Patient (age and death decide who may sign, and whether a brief exists at all).
DECISION_INPUTS = frozenset({"Consent", "Encounter", "EpisodeOfCare", "Patient"})
REFERENCED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "RelatedPerson"})
MAX_PER_TYPE = 500


def patient_record(repository: Repository, base_url: str, patient_id: str) -> list[StoredResource]:
    patient = repository.read("Patient", patient_id)
    if patient is None or patient.deleted:
        return []
    types = [t for t in BRIEF_TYPES if "patient" in SEARCH_PARAMETERS.get(t, {})]
    record = [patient, *repository.compartment(patient_id, types)]
    seen = {(item.type, item.id) for item in record}
    pending = [item for item in record]
    for _ in range(2):  # CareTeam -> PractitionerRole -> Practitioner/Organization
        wanted: list[tuple[str, str]] = []
        for item in pending:
            for reference in find_references(item.content):
                target = split_reference(reference["reference"], base_url)
                if target and target[0] in REFERENCED_TYPES and target not in seen:
                    seen.add(target)
                    wanted.append(target)
        repository.existing(wanted)  # one query loads them all; the reads below find them loaded
        pending = [found for key in wanted if (found := repository.read(*key)) is not None and not found.deleted]
        record.extend(pending)
    return record


IDENTITY_ELEMENTS = ("resourceType", "id", "meta", "identifier", "name", "gender", "birthDate", "telecom", "address",
                     "photo", "communication", "extension")  # fmt: skip
CANDIDATES_PER_KEY = 200
CANDIDATES_PER_NAME_KEYS = 1000  # all name keys together; each holds tens of people at 100k


def identity_view(patient: dict[str, Any]) -> dict[str, Any]:
    """Only what confirms identity (issue 5: a match returns nothing clinical)."""
    return {key: value for key, value in patient.items() if key in IDENTITY_ELEMENTS}


def find_candidates(repository: Repository, base_url: str, query: Any, today: date) -> list[StoredResource]:
    """Blocking: the Patients that share at least one cheap, indexed key with the description:
    the identifier, the phone number, the birth date or its day/month swap, or a matching key
    of the names (`mappings.matching.blocking_keys`: prefixes, Soundex, initials; all of them in
    one index lookup). Only when a name is missing, the other name with the birth years an
    approximate age allows (a range over many people: the slowest key)."""
    keys: list[list[tuple[str, str]]] = []
    if query.identifier:
        keys.append([("identifier", query.identifier)])
    if query.phone:
        keys.append([("phone", query.phone)])
    if query.birth_date and len(query.birth_date) == 10:
        keys.append([("birthdate", query.birth_date)])
        year, month, day = query.birth_date.split("-")
        if int(day) <= 12:
            keys.append([("birthdate", f"{year}-{day}-{month}")])
    family, given = query.family.strip(), (query.given or query.nickname).strip()
    if query.approximate_age is not None and bool(family) != bool(given) and len(family or given) >= 2:
        keys.append([("family" if family else "given", (family or given)[:3]),
                     ("birthdate", f"ge{today.year - query.approximate_age - 4}-01-01"),
                     ("birthdate", f"le{today.year - query.approximate_age + 4}-12-31")])  # fmt: skip
    found: dict[str, StoredResource] = {}
    for item in repository.blocked_patients(sorted(query_blocking_keys(query)), CANDIDATES_PER_NAME_KEYS):
        found.setdefault(item.id, item)
    for params in keys:
        search = parse_search("Patient", [*params, ("_total", "none")], base_url=base_url, strict=False,
                              default_count=CANDIDATES_PER_KEY, max_count=CANDIDATES_PER_KEY)  # fmt: skip
        matches, _ = repository.search(search)
        for item in matches:
            found.setdefault(item.id, item)
    return list(found.values())
