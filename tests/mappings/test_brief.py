"""The responder brief from crafted records (every section) and from the shared fixtures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from consent_engine import Basis, BasisKind, Notice
from gateway.fhir.validation import validate_resource
from mappings import BriefContext, build_brief
from mappings.brief import PATIENT_DATA
from tests.conftest import FIXTURES

AS_OF = datetime(2026, 11, 26, 12, 0)
BASE = "https://gateway.example/fhir"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
P = "https://crisis-fhir-gateway.org/fhir"


def meta(days_ago: int = 2) -> dict[str, Any]:
    return {"lastUpdated": (AS_OF - timedelta(days=days_ago)).isoformat() + "Z"}


RECORD: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "maria", "meta": meta(),
     "name": [{"use": "official", "family": "Rivera", "given": ["Maria", "Elena"]}, {"use": "nickname", "given": ["Mari"]}],
     "gender": "female", "birthDate": "1988-04-12",
     "telecom": [{"system": "phone", "value": "555-0100", "use": "mobile"}],
     "address": [{"use": "temp", "text": "Harbor Street shelter"}],
     "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}], "text": "Spanish"},
                        "preferred": True}]},
    {"resourceType": "Observation", "id": "fears", "meta": meta(), "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"}]},
     "subject": {"reference": "Patient/maria"}, "valueString": "Afraid of uniforms; approach without sirens"},
    {"resourceType": "Flag", "id": "dog", "meta": meta(), "status": "active", "code": {"text": "Dog in the home"},
     "subject": {"reference": "Patient/maria"}, "author": {"reference": "Practitioner/ada"},
     "period": {"start": "2026-01-01"}},
    {"resourceType": "Flag", "id": "old-flag", "meta": meta(), "status": "active", "code": {"text": "Expired alert"},
     "subject": {"reference": "Patient/maria"}, "period": {"start": "2024-01-01", "end": "2024-06-30"}},
    {"resourceType": "CarePlan", "id": "safety-plan", "meta": meta(400), "status": "active", "intent": "plan",
     "subject": {"reference": "Patient/maria"},
     "category": [{"coding": [{"system": f"{P}/CodeSystem/care-plan-category", "code": "crisis-safety-plan"}]}],
     "activity": [
         {"detail": {"status": "not-started", "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step",
                                                                    "code": "warning-signs"}]},
                     "description": "Loud voices and being touched"}},
         {"detail": {"status": "not-started", "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step",
                                                                    "code": "coping-strategies"}]},
                     "description": "Quiet room, offer water, let her sit"}},
         {"detail": {"status": "not-started", "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step",
                                                                    "code": "people-to-ask-for-help"}]},
                     "description": "Sister Ana, 555-0111"}}]},
    {"resourceType": "Practitioner", "id": "ada", "name": [{"family": "Lovelace", "given": ["Ada"]}]},
    {"resourceType": "Organization", "id": "harbor", "name": "Harbor Community Mental Health",
     "telecom": [{"system": "phone", "value": "555-0199"}]},
    {"resourceType": "PractitionerRole", "id": "ada-role", "practitioner": {"reference": "Practitioner/ada"},
     "organization": {"reference": "Organization/harbor"},
     "telecom": [{"system": "phone", "value": "555-0999", "rank": 2}, {"system": "phone", "value": "555-0123", "rank": 1}],
     "availableTime": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "allDay": True}]},
    {"resourceType": "CareTeam", "id": "team", "status": "active", "subject": {"reference": "Patient/maria"},
     "participant": [{"role": [{"text": "Case manager"}], "member": {"reference": "PractitionerRole/ada-role"}}]},
    {"resourceType": "RelatedPerson", "id": "guardian", "patient": {"reference": "Patient/maria"},
     "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD"}]}],
     "name": [{"family": "Rivera", "given": ["Ana"]}], "telecom": [{"system": "phone", "value": "555-0111"}]},
    {"resourceType": "EpisodeOfCare", "id": "cmhc", "meta": meta(), "status": "active",
     "type": [{"text": "Assertive community treatment"}], "patient": {"reference": "Patient/maria"},
     "managingOrganization": {"reference": "Organization/harbor"}, "period": {"start": "2025-02-01"},
     "careManager": {"reference": "Practitioner/ada"}},
    {"resourceType": "Encounter", "id": "visit", "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
     "subject": {"reference": "Patient/maria"}, "episodeOfCare": [{"reference": "EpisodeOfCare/cmhc"}],
     "period": {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T11:00:00Z"}},
    {"resourceType": "Encounter", "id": "ed", "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
     "subject": {"reference": "Patient/maria"}, "period": {"start": "2026-11-10T22:00:00Z"},
     "hospitalization": {"dischargeDisposition": {"text": "Home with follow-up"}}},
    {"resourceType": "Condition", "id": "mdd", "subject": {"reference": "Patient/maria"},
     "code": {"coding": [{"system": ICD10, "code": "F33.1", "display": "Major depressive disorder, recurrent, moderate"}]}},
    {"resourceType": "Condition", "id": "homeless", "subject": {"reference": "Patient/maria"},
     "code": {"coding": [{"system": ICD10, "code": "Z59.02", "display": "Unsheltered homelessness"}]}},
    {"resourceType": "ServiceRequest", "id": "housing-referral", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/maria"}, "code": {"text": "Housing navigation"}},
    {"resourceType": "MedicationStatement", "id": "sertraline", "status": "active", "subject": {"reference": "Patient/maria"},
     "medicationCodeableConcept": {"text": "Sertraline 100 mg daily"}},
    {"resourceType": "AllergyIntolerance", "id": "haloperidol", "patient": {"reference": "Patient/maria"},
     "code": {"text": "Haloperidol (dystonia)"}},
]  # fmt: skip


def context(clinical: bool = True, **changes: Any) -> BriefContext:
    treatment = Basis(BasisKind.TREATMENT, citation="45 CFR 164.506(c)")
    base = {"base_url": BASE, "as_of": AS_OF, "clinical": clinical, "bases": (treatment,)}
    return BriefContext(**{**base, **changes})


def sections(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    composition = bundle["entry"][0]["resource"]
    return {s["code"]["coding"][0]["code"]: s for s in composition["section"]}


def text(section: dict[str, Any]) -> str:
    return str(section["text"]["div"])


def test_the_brief_is_a_valid_document_with_sections_in_order() -> None:
    bundle = build_brief("maria", RECORD, context())
    validate_resource(bundle, "Bundle")
    assert bundle["type"] == "document" and bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    assert list(sections(bundle)) == ["identity", "safety", "contacts", "treatment", "history", "social", "basis"]
    cited = {r["reference"] for s in sections(bundle).values() for r in s.get("entry", [])}
    included = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:]}
    assert cited == included  # every cited resource is in the document, and nothing else
    assert all(e["fullUrl"].startswith(BASE + "/") for e in bundle["entry"])
    given = {f"{r['resourceType']}/{r['id']}" for r in RECORD if r["resourceType"] in PATIENT_DATA}
    assert given <= included  # and every released item is in it: the brief drops nothing it was given
    assert "treatment between providers" in text(sections(bundle)["basis"])


def test_identity_section() -> None:
    identity = text(sections(build_brief("maria", RECORD, context()))["identity"])
    for expected in ("Maria Elena Rivera", "goes by Mari", "38 years (born 1988-04-12)", "Spanish (preferred)",
                     "Harbor Street shelter", "555-0100"):  # fmt: skip
        assert expected in identity


def test_safety_section_three_things_flags_and_plan() -> None:
    safety = sections(build_brief("maria", RECORD, context()))["safety"]
    div = text(safety)
    assert "Three things to know: Trigger: Loud voices and being touched | What helps: Quiet room" in div
    assert "Afraid of uniforms" in div and "Dog in the home (by Ada Lovelace)" in div
    assert "Expired alert" not in div and {"reference": "Flag/old-flag"} not in safety["entry"]
    history = sections(build_brief("maria", RECORD, context()))["history"]
    assert {"reference": "Flag/old-flag"} in history["entry"] and "Past alert" in text(history)
    assert "verify with care team" in div  # the safety plan is over 180 days old
    assert "Haloperidol" in div


def test_whom_to_call_puts_the_24_7_number_first() -> None:
    div = text(sections(build_brief("maria", RECORD, context()))["contacts"])
    assert "Case manager: Ada Lovelace — 555-0123 (24/7), 555-0999" in div
    assert "Guardian or agent: Ana Rivera — 555-0111" in div


def test_treatment_history_and_social_needs() -> None:
    found = sections(build_brief("maria", RECORD, context()))
    assert "Assertive community treatment at Harbor Community Mental Health, since 2025-02-01; case manager Ada " \
           "Lovelace; last seen 3 days ago" in text(found["treatment"])  # fmt: skip
    assert "Major depressive disorder" in text(found["treatment"])
    assert "Emergency department on 2026-11-10 [last 30 days]: Home with follow-up" in text(found["history"])
    assert "Unsheltered homelessness" in text(found["social"]) and "Housing navigation" in text(found["social"])


def test_non_clinical_roles_see_a_plain_language_category() -> None:
    bundle = build_brief("maria", RECORD, context(clinical=False))
    assert "Condition: Mood condition" in text(sections(bundle)["treatment"])
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "mdd")
    assert condition["code"] == {"text": "Mood condition"}
    assert "F33" not in json.dumps(bundle)


def test_empty_sections_say_so_the_same_way_and_the_basis_carries_the_notice() -> None:
    only_patient = [r for r in RECORD if r["resourceType"] == "Patient"]
    notice = Notice("42 CFR part 2 notice text", "2024")
    brief = build_brief("maria", only_patient, context(notice=notice))
    found = sections(brief)
    for key in ("safety", "contacts", "treatment", "history", "social"):
        assert "Nothing on file for this section." in text(found[key])
        assert found[key]["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert "42 CFR part 2 notice text" in text(found["basis"])
    assert {c["code"] for c in brief["meta"]["security"]} == {"R", "42CFRPart2", "NORDSCLCD"}  # at Bundle level
    assert brief["meta"]["extension"][0]["valueString"].startswith("42 CFR part 2 notice text")


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "shift-part2").glob("*.json")))
def test_briefs_from_the_shift_part2_bundles_are_valid_documents(name: str) -> None:
    bundle = json.loads((FIXTURES / "shift-part2" / name).read_text(encoding="utf-8-sig"))
    resources = [e["resource"] for e in bundle["entry"] if "resource" in e]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert patients
    brief = build_brief(patients[0]["id"], resources, context(clinical=False))
    validate_resource(brief, "Bundle")
    assert "Name:" in text(sections(brief)["identity"])


def test_brief_from_hl7_examples() -> None:
    examples = FIXTURES / "hl7-r4-examples"
    resources = [json.loads(p.read_text(encoding="utf-8-sig")) for p in sorted(examples.glob("*.json"))]
    about_example = [r for r in resources if r.get("resourceType") in ("Patient", "Condition", "Flag", "CarePlan",
                     "EpisodeOfCare", "CareTeam", "Encounter", "AllergyIntolerance", "MedicationStatement",
                     "Practitioner", "Organization", "PractitionerRole", "RelatedPerson")]  # fmt: skip
    brief = build_brief("example", about_example, context())
    validate_resource(brief, "Bundle")
    assert "Peter James Chalmers" in text(sections(brief)["identity"])


def test_the_safety_plan_example_in_the_profiles_page() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "profiles.md").read_text(encoding="utf-8")
    plan = json.loads(re.findall(r"```json\n(.*?)```", page, re.S)[0])
    validate_resource(plan, "CarePlan")
    patient = {"resourceType": "Patient", "id": "maria-rivera", "name": [{"family": "Rivera", "given": ["Maria"]}]}
    safety = text(sections(build_brief("maria-rivera", [patient, plan], context()))["safety"])
    assert (
        "Trigger: Loud voices and being touched | What helps: Quiet room, offer water, let her sit | Call: Sister Ana"
        in safety
    )


def test_every_basis_has_words_in_the_brief() -> None:
    from consent_engine import BasisKind
    from mappings.brief import BASIS_TEXT

    assert set(BASIS_TEXT) == set(BasisKind)
