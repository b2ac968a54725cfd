"""Search parameters, declared as data (R4 search.html). The indexer, the query parser and the
CapabilityStatement all read these declarations, so what we advertise is what we implement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.fhir.models import RESOURCE_TYPES

ParamType = Literal["token", "string", "date", "reference"]


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: ParamType
    paths: tuple[str, ...]  # dotted element paths from the resource root
    documentation: str
    target_types: tuple[str, ...] = ()  # reference parameters: the types they may point at
    # string parameters: indexed and compared by sound (Soundex) rather than by spelling
    phonetic: bool = False

    @property
    def definition(self) -> str:
        return f"http://hl7.org/fhir/SearchParameter/{self.name}"


def _phonetic() -> SearchParameter:
    return SearchParameter(
        "phonetic", "string", ("name.family", "name.given"),
        "A family or given name that sounds like the value (Soundex): finds Jon for John, Rivira for Rivera",
        phonetic=True,
    )  # fmt: skip


def _ref(name: str, path: str, doc: str, *targets: str) -> SearchParameter:
    return SearchParameter(name, "reference", (path,), doc, targets)


# Parameters every type has, besides _id and _lastUpdated (which live on the resource row).
_IDENTIFIER = SearchParameter("identifier", "token", ("identifier",), "A business identifier (system|value)")

# Clinical types: their patient/subject parameters, by the element that points at the patient.
_PATIENT_ELEMENT = {
    "AllergyIntolerance": "patient",
    "CarePlan": "subject",
    "CareTeam": "subject",
    "ClinicalImpression": "subject",
    "Communication": "subject",
    "Condition": "subject",
    "Consent": "patient",
    "DiagnosticReport": "subject",
    "DocumentReference": "subject",
    "Encounter": "subject",
    "EpisodeOfCare": "patient",
    "Flag": "subject",
    "Goal": "subject",
    "Immunization": "patient",
    "MedicationAdministration": "subject",
    "MedicationDispense": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Observation": "subject",
    "Procedure": "subject",
    "QuestionnaireResponse": "subject",
    "RelatedPerson": "patient",
    "RiskAssessment": "subject",
    "ServiceRequest": "subject",
    "Task": "for",
    "Claim": "patient",
    "ExplanationOfBenefit": "patient",
    "Coverage": "beneficiary",
    "ImagingStudy": "subject",
    "Provenance": "patient",
}
_SUBJECT_TYPES = ("Patient", "Group", "Practitioner", "Location", "Device", "Organization", "RelatedPerson")


def _clinical(resource_type: str) -> list[SearchParameter]:
    element = _PATIENT_ELEMENT[resource_type]
    found = [_ref("patient", element, "Who the resource is about (a Patient)", "Patient")]
    if element == "subject":
        found.append(_ref("subject", "subject", "Who or what the resource is about", *_SUBJECT_TYPES))
    if resource_type == "Provenance":
        found = [_ref("patient", "target", "Target resources of a Patient", "Patient")]
    return found


_SPECIFIC: dict[str, list[SearchParameter]] = {
    "Patient": [
        SearchParameter("name", "string", ("name",), "Any part of a name (family, given, prefix, suffix, text)"),
        SearchParameter("family", "string", ("name.family",), "A family name"),
        SearchParameter("given", "string", ("name.given",), "A given name"),
        _phonetic(),
        SearchParameter("birthdate", "date", ("birthDate",), "The date of birth"),
        SearchParameter("gender", "token", ("gender",), "Administrative gender"),
        SearchParameter("telecom", "token", ("telecom",), "Any contact point (phone, email, ...)"),
        SearchParameter("phone", "token", ("telecom",), "A phone number (digits compared)"),
        SearchParameter("address-postalcode", "string", ("address.postalCode",), "A postal code"),
        SearchParameter("address", "string", ("address",), "Any part of an address"),
        SearchParameter("active", "token", ("active",), "Whether the record is in active use"),
        _ref("general-practitioner", "generalPractitioner", "Nominated primary care provider",
             "Practitioner", "PractitionerRole", "Organization"),
        _ref("organization", "managingOrganization", "Custodian organization", "Organization"),
        _ref("link", "link.other", "Linked Patient or RelatedPerson", "Patient", "RelatedPerson"),
    ],
    "EpisodeOfCare": [
        SearchParameter("status", "token", ("status",), "The episode's status"),
        SearchParameter("type", "token", ("type",), "Type of program (e.g. level of care)"),
        SearchParameter("date", "date", ("period",), "The episode's period"),
        _ref("organization", "managingOrganization", "The organization running the episode", "Organization"),
        _ref("care-manager", "careManager", "The case manager", "Practitioner", "PractitionerRole"),
        _ref("condition", "diagnosis.condition", "Conditions of the episode", "Condition"),
    ],
    "CareTeam": [
        SearchParameter("status", "token", ("status",), "The team's status"),
        SearchParameter("category", "token", ("category",), "Type of team"),
        _ref("participant", "participant.member", "A member of the team",
             "Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Organization", "CareTeam"),
        _ref("encounter", "encounter", "Encounter the team was created in", "Encounter"),
    ],
    "Consent": [
        SearchParameter("status", "token", ("status",), "The consent's status"),
        SearchParameter("scope", "token", ("scope",), "patient-privacy, treatment, research, adr"),
        SearchParameter("category", "token", ("category",), "Classification of the consent"),
        SearchParameter("period", "date", ("provision.period",), "When the consent applies"),
        _ref("actor", "provision.actor.reference", "Who the consent applies to",
             "Practitioner", "PractitionerRole", "Organization", "CareTeam", "RelatedPerson", "Patient",
             "Device", "Group"),
        _ref("organization", "organization", "Custodian of the consent", "Organization"),
    ],
    "PractitionerRole": [
        _ref("practitioner", "practitioner", "The practitioner in this role", "Practitioner"),
        _ref("organization", "organization", "The organization where the role is held", "Organization"),
        SearchParameter("role", "token", ("code",), "The role code"),
        SearchParameter("specialty", "token", ("specialty",), "The specialty"),
        SearchParameter("telecom", "token", ("telecom",), "A contact point"),
        SearchParameter("active", "token", ("active",), "Whether the role is active"),
    ],
    "Practitioner": [
        SearchParameter("name", "string", ("name",), "Any part of a name"),
        SearchParameter("family", "string", ("name.family",), "A family name"),
        SearchParameter("given", "string", ("name.given",), "A given name"),
        _phonetic(),
        SearchParameter("telecom", "token", ("telecom",), "A contact point"),
    ],
    "Organization": [
        SearchParameter("name", "string", ("name", "alias"), "Name or alias"),
        SearchParameter("type", "token", ("type",), "Kind of organization"),
        SearchParameter("active", "token", ("active",), "Whether the organization is active"),
        _ref("partof", "partOf", "The parent organization", "Organization"),
    ],
    "Location": [
        SearchParameter("name", "string", ("name", "alias"), "Name or alias"),
        SearchParameter("address", "string", ("address",), "Any part of the address"),
        _ref("organization", "managingOrganization", "Managing organization", "Organization"),
    ],
    "Encounter": [
        SearchParameter("status", "token", ("status",), "The encounter's status"),
        SearchParameter("class", "token", ("class",), "Classification (emergency, home health, ...)"),
        SearchParameter("type", "token", ("type",), "Specific type of encounter"),
        SearchParameter("date", "date", ("period",), "When the encounter happened"),
        _ref("episode-of-care", "episodeOfCare", "Episode(s) of care", "EpisodeOfCare"),
        _ref("service-provider", "serviceProvider", "Organization responsible", "Organization"),
    ],
    "Condition": [
        SearchParameter("code", "token", ("code",), "The condition's code"),
        SearchParameter("category", "token", ("category",), "Category (problem list, SDOH, ...)"),
        SearchParameter("clinical-status", "token", ("clinicalStatus",), "active, resolved, ..."),
    ],
    "Flag": [
        SearchParameter("status", "token", ("status",), "active, inactive, entered-in-error"),
        SearchParameter("date", "date", ("period",), "When the flag is active"),
    ],
    "CarePlan": [
        SearchParameter("status", "token", ("status",), "The plan's status"),
        SearchParameter("category", "token", ("category",), "Type of plan"),
        SearchParameter("date", "date", ("period",), "When the plan applies"),
    ],
    "Observation": [
        SearchParameter("code", "token", ("code",), "The observation's code"),
        SearchParameter("category", "token", ("category",), "Classification"),
        SearchParameter("date", "date", ("effectiveDateTime", "effectivePeriod", "effectiveInstant"),
                        "When the observation applies"),
    ],
    "RelatedPerson": [
        SearchParameter("name", "string", ("name",), "Any part of a name"),
        _phonetic(),
        SearchParameter("relationship", "token", ("relationship",), "Relationship to the patient"),
    ],
}  # fmt: skip


def _build_registry() -> dict[str, dict[str, SearchParameter]]:
    registry: dict[str, dict[str, SearchParameter]] = {}
    for resource_type in RESOURCE_TYPES:
        params = [_IDENTIFIER]
        if resource_type in _PATIENT_ELEMENT:
            params.extend(_clinical(resource_type))
        params.extend(_SPECIFIC.get(resource_type, []))
        registry[resource_type] = {param.name: param for param in params}
    return registry


SEARCH_PARAMETERS: dict[str, dict[str, SearchParameter]] = _build_registry()

# Parameters on the resource row itself, valid for every type.
COMMON_PARAMETERS = {"_id": "token", "_lastUpdated": "date"}

# Result parameters (search.html#return) we understand; anything else starting with _ is unknown.
RESULT_PARAMETERS = frozenset(
    {"_count", "_offset", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements", "_format", "_pretty"}
)
