"""The Consent profile: the examples in docs/consent-profile.md are valid R4, read as documented,
and decide as the scenarios expect."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from consent_engine import DEFAULT_POLICY, ConsentKind, PatientFacts, SignerRole, consent_alerts
from consent_engine.fhir import (
    consent_from_fhir,
    episode_from_resource,
    item_from_resource,
    parse_datetime,
    patient_facts,
)
from consent_engine.signers import signer_problems
from gateway.fhir.validation import validate_resource
from tests.consent_engine.people import AS_OF, OFFICER, RECORD, decide, request

PROFILE = Path(__file__).resolve().parents[2] / "docs" / "consent-profile.md"


def examples() -> dict[str, dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", PROFILE.read_text(encoding="utf-8"), re.S)
    found = [json.loads(block) for block in blocks]
    return {example["id"]: example for example in found}


def test_every_example_is_valid_r4() -> None:
    found = examples()
    assert set(found) == {"maria-tpo-2026", "maria-metro-pd-2026", "maria-opt-out", "incomplete", "theo-tpo-2026",
                          "order-2026-cv-118"}  # fmt: skip
    for example in found.values():
        validate_resource(example, "Consent")


def test_tpo_example_reads_as_documented() -> None:
    consent = consent_from_fhir(examples()["maria-tpo-2026"])
    assert consent.problems == ()
    assert consent.kind == ConsentKind.PART2_TPO
    assert consent.patient == "Patient/maria-rivera"
    assert consent.disclosers == {"Organization/eastside-otp"}
    assert consent.signed_at == datetime(2026, 3, 1, 10, 0)
    assert consent.expiry_event == "end-of-treatment" and consent.expires_at is None
    assert consent.provision.recipient_classes == {"treating-providers"}
    assert consent.provision.purposes == {"TREAT", "HPAYMT", "HOPERAT"}
    assert consent.provision.data_classes == {"STATUS", "CONTACT", "MED", "DX", "CRISISPLAN"}
    assert consent.provision.provisions[0].type == "deny"


def test_police_example_has_an_inclusive_end_and_a_zoned_signature_time() -> None:
    consent = consent_from_fhir(examples()["maria-metro-pd-2026"])
    assert consent.problems == ()
    assert consent.signed_at == datetime(2026, 6, 2, 14, 30)  # -05:00 read as UTC
    assert consent.expires_at == datetime(2026, 12, 31, 23, 59, 59, 999999)
    assert consent.provision.recipients == {"Organization/metro-pd"}


def test_incomplete_example_lists_what_is_missing_and_is_never_relied_on() -> None:
    consent = consent_from_fhir(examples()["incomplete"])
    codes = [problem.split(":")[0] for problem in consent.problems]
    assert codes == ["2.31(a)(8)", "2.31(a)(8)", "2.31(a)(7)", "2.31(b)", "2.31(a)(6)"]
    assert not consent.reliable
    assert [a.code for a in consent_alerts(consent)] == ["counseling-notes-combined"]
    assert "Condition/opioid-use-disorder" not in decide(request(), RECORD, [consent]).released_keys


def test_examples_decide_as_the_scenarios_expect() -> None:
    found = {key: consent_from_fhir(value) for key, value in examples().items()}
    clinician = decide(request(), RECORD, [found["maria-tpo-2026"]])
    got = set(clinician.released_keys)
    assert "Condition/opioid-use-disorder" in got and "Observation/urine-toxicology" not in got  # nested deny LAB
    police = decide(request(OFFICER, "crisis-coordination"), RECORD, [found["maria-metro-pd-2026"]])
    assert set(police.released_keys) == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "Patient/maria-rivera"}
    after_expiry = decide(request(OFFICER, "crisis-coordination"), RECORD, [found["maria-metro-pd-2026"]],
                          as_of=datetime(2027, 1, 1))  # fmt: skip
    assert after_expiry.released == ()
    opted_out = decide(request(), RECORD, [found["maria-tpo-2026"], found["maria-opt-out"]])
    assert not [r for r in opted_out.released if r.item.part2]
    assert AS_OF.year == 2026


def test_revocation_extension_and_missing_kind() -> None:
    example = examples()["maria-tpo-2026"]
    revoked = {**example, "status": "inactive", "extension": [*example["extension"], {
        "url": "https://crisis-fhir-gateway.org/fhir/StructureDefinition/consent-revoked",
        "valueDateTime": "2026-11-20T08:00:00Z"}]}  # fmt: skip
    consent = consent_from_fhir(revoked)
    assert consent.revoked_at == datetime(2026, 11, 20, 8, 0)
    assert not [r for r in decide(request(), RECORD, [consent]).released if r.item.part2]
    kindless = consent_from_fhir({**example, "category": []})
    assert "category: the consent kind is missing" in kindless.problems


@pytest.mark.parametrize(
    ("value", "end", "expected"),
    [
        ("2026", False, datetime(2026, 1, 1)),
        ("2026", True, datetime(2026, 12, 31, 23, 59, 59, 999999)),
        ("2026-02", True, datetime(2026, 2, 28, 23, 59, 59, 999999)),
        ("2026-12", True, datetime(2026, 12, 31, 23, 59, 59, 999999)),
        ("2026-12-31", True, datetime(2026, 12, 31, 23, 59, 59, 999999)),
        ("2026-12-31T23:59:59.250Z", True, datetime(2026, 12, 31, 23, 59, 59, 250000)),
        ("2026-12-31T10:00:00+02:00", False, datetime(2026, 12, 31, 8, 0)),
        ("not a date", False, None),
        (None, False, None),
    ],
)
def test_fhir_dates(value: object, end: bool, expected: datetime | None) -> None:
    assert parse_datetime(value, end=end) == expected


def test_items_and_episodes_read_as_the_engine_needs_them() -> None:
    labelled = {"resourceType": "Condition", "id": "oud", "subject": {"reference": "Patient/p"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20",
                                     "display": "Opioid dependence"}]},
                "meta": {"security": [{"code": "42CFRPart2"}, {"code": "NORDSLCD"}],
                         "tag": [{"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/data-class", "code": "DX"}],
                         "extension": [{"url": "https://crisis-fhir-gateway.org/fhir/StructureDefinition/source-organization",
                                        "valueReference": {"reference": "Organization/eastside-otp"}}]}}  # fmt: skip
    item = item_from_resource(labelled)
    assert (item.key, item.data_class, item.source, item.part2) == (
        "Condition/oud",
        "DX",
        "Organization/eastside-otp",
        True,
    )
    assert "NORDSCLCD" in item.labels and item.description == "Condition: Opioid dependence"
    episode = episode_from_resource({"resourceType": "EpisodeOfCare", "id": "e", "status": "finished",
                                     "managingOrganization": {"reference": "Organization/eastside-otp"},
                                     "period": {"start": "2026-01-01", "end": "2026-10-31"}})  # fmt: skip
    assert episode is not None and episode.end == datetime(2026, 10, 31, 23, 59, 59, 999999)


def test_references_by_identifier_read_as_identifier_tokens() -> None:
    consent = examples()["maria-metro-pd-2026"]
    consent["organization"] = [{"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}}]
    consent["provision"]["actor"][0]["reference"] = {
        "reference": "Organization/metro-pd",
        "identifier": {"system": "https://health.state.example/facility-id", "value": "PD-0042"},
    }
    read = consent_from_fhir(consent)
    assert read.disclosers == {"identifier:http://hl7.org/fhir/sid/us-npi|1234567893"}
    assert read.provision.recipients == {
        "Organization/metro-pd",
        "identifier:https://health.state.example/facility-id|PD-0042",
    }
    by_identifier = replace(OFFICER, organization="Organization/pd-7",
                            aliases=frozenset({"identifier:https://health.state.example/facility-id|PD-0042"}))  # fmt: skip
    assert by_identifier.named_by(read.provision.recipients)
    assert not replace(OFFICER, organization="Organization/pd-7", aliases=frozenset()).named_by(
        read.provision.recipients
    )


def test_the_minors_example_reads_its_signers_and_needs_both_of_them() -> None:
    consent = consent_from_fhir(examples()["theo-tpo-2026"])
    assert consent.problems == ()
    assert [(s.role, s.reference) for s in consent.signers] == [
        (SignerRole.PATIENT, "Patient/theo-grant"),
        (SignerRole.PARENT, "RelatedPerson/theo-mother"),
    ]
    fifteen = PatientFacts(birth_date=date(2011, 2, 2))
    assert signer_problems(consent, fifteen, DEFAULT_POLICY, AS_OF) == ()
    alone = replace(consent, signers=consent.signers[:1])
    assert signer_problems(alone, fifteen, DEFAULT_POLICY, AS_OF)[0].startswith("2.14(c)(1)")
    minor_alone = replace(DEFAULT_POLICY, minor_sud_consent="minor-alone")
    assert signer_problems(consent, fifteen, minor_alone, AS_OF)[0].startswith("2.14(b)")


def test_patient_facts_read_birth_and_death() -> None:
    assert patient_facts({"resourceType": "Patient", "birthDate": "2011-02-02", "deceasedBoolean": True}) == (
        PatientFacts(birth_date=date(2011, 2, 2), deceased=True)
    )
    died = patient_facts({"resourceType": "Patient", "deceasedDateTime": "2026-11-20T03:15:00-05:00"})
    assert died.deceased and died.deceased_at == datetime(2026, 11, 20, 8, 15)
    assert not died.dead_at(datetime(2026, 11, 20, 8, 0)) and died.dead_at(datetime(2026, 11, 20, 8, 15))
    assert patient_facts(None) == PatientFacts()
