"""Security labels at ingest: by code (value sets from config/), by provenance, kept on update."""

from __future__ import annotations

from typing import Any

import pytest

from consent_engine.labels import (
    apply_labels,
    data_class_of,
    labels_for,
    propagation_targets,
    provenance_targets,
    sender_labels,
)
from gateway.consent.labelling import load_rules

RULES = load_rules()
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def condition(system: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": system, "code": code}]}, "encounter": {"reference": "Encounter/e1"}}  # fmt: skip


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (ICD10, "F11.20", {"SUD", "ETH", "OPIOIDUD", "R"}),
        (ICD10, "F10.239", {"SUD", "ETH", "ETHUD", "R"}),
        (ICD10, "F14.10", {"SUD", "ETH", "R"}),
        (ICD10, "F17.210", set()),  # nicotine dependence is not SUD here
        (ICD10, "F33.1", {"MH", "R"}),
        (ICD10, "F20.9", {"MH", "PSY", "R"}),
        (ICD10, "B20", {"HIV"}),
        (ICD10, "J45.909", set()),
        (SNOMED, "75544000", {"SUD", "ETH", "OPIOIDUD", "R"}),
        (SNOMED, "35489007", {"MH", "R"}),
        (SNOMED, "38341003", set()),  # hypertension
        ("http://example.org/local", "F11.20", set()),  # a code only counts in its own system
    ],
)
def test_sensitivity_by_code(system: str, code: str, expected: set[str]) -> None:
    assert labels_for(condition(system, code), RULES, part2_source=False) == expected


def test_moud_medications_are_opioid_use_disorder() -> None:
    statement = {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"},
                 "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "352364",
                                                           "display": "buprenorphine / naloxone"}]}}  # fmt: skip
    assert {"OPIOIDUD", "SUD"} <= labels_for(statement, RULES, part2_source=False)
    assert data_class_of(statement, RULES) == "MED"


def test_anything_from_a_part2_program_is_part2_and_sud() -> None:
    admission = {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"}}  # uncoded
    assert labels_for(admission, RULES, part2_source=True) == {"42CFRPart2", "R", "NORDSCLCD", "SUD"}
    assert labels_for(admission, RULES, part2_source=False) == set()


def test_anything_naming_a_part2_program_is_part2_wherever_it_comes_from() -> None:
    programs = frozenset({"Organization/eastside-otp"})
    referral = {"resourceType": "Encounter", "status": "finished", "class": {"code": "EMER"},
                "hospitalization": {"destination": {"reference": "Organization/eastside-otp"}}}  # fmt: skip
    assert "42CFRPart2" in labels_for(referral, RULES, part2_source=False, part2_programs=programs)
    elsewhere = {**referral, "hospitalization": {"destination": {"reference": "Organization/county-general"}}}
    assert "42CFRPart2" not in labels_for(elsewhere, RULES, part2_source=False, part2_programs=programs)


def test_a_provenance_from_a_part2_program_makes_its_targets_part2() -> None:
    programs = frozenset({"Organization/eastside-otp"})
    provenance = {"resourceType": "Provenance", "target": [{"reference": "MedicationStatement/copy"}],
                  "agent": [{"who": {"reference": "Practitioner/x"}, "onBehalfOf": {"reference": "Organization/eastside-otp"}}]}  # fmt: skip
    assert provenance_targets(provenance, programs) == ["MedicationStatement/copy"]
    assert provenance_targets(provenance, frozenset({"Organization/other"})) == []


@pytest.mark.parametrize(
    ("code", "display", "expected"),
    [
        ("1010604", "", {"SUD", "OPIOIDUD"}),  # buprenorphine 8 MG / naloxone 2 MG Sublingual Film
        ("1010600", "", {"SUD", "OPIOIDUD"}),
        ("1431102", "", {"SUD", "OPIOIDUD"}),  # Zubsolv (generic)
        ("1996192", "", {"SUD", "OPIOIDUD"}),  # Sublocade (generic)
        ("864706", "", {"SUD", "OPIOIDUD"}),  # methadone hydrochloride 10 MG Oral Tablet
        ("991147", "", {"SUD", "OPIOIDUD"}),  # methadone 10 MG/ML oral solution
        ("637213", "", {"SUD"}),  # naltrexone 380 MG injection
        ("835726", "", {"SUD", "ETHUD"}),  # acamprosate
        ("197623", "", {"SUD", "ETHUD"}),  # disulfiram
        ("9999999", "Lucemyra (lofexidine) 0.18 MG Oral Tablet", {"SUD", "OPIOIDUD"}),  # by name
        ("9999998", "buprenorphine 2 MG / naloxone 0.5 MG [Suboxone] new package", {"SUD", "OPIOIDUD"}),
        ("1551468", "12 HR bupropion hydrochloride 90 MG / naltrexone hydrochloride 8 MG", set()),  # Contrave
        ("315952", "fluoxetine 20 MG", set()),
    ],
)
def test_every_product_of_the_sud_ingredients(code: str, display: str, expected: set[str]) -> None:
    statement = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                 "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}]}}  # fmt: skip
    labels = labels_for(statement, RULES, part2_source=False)
    assert expected <= labels and (bool(expected) == bool(labels & {"SUD"}))


def test_icd10_descendants_and_snomed_displays() -> None:
    assert {"SUD", "OPIOIDUD"} <= labels_for(condition(ICD10, "F11.23"), RULES, part2_source=False)
    assert {"SUD"} <= labels_for(condition(ICD10, "F19.939"), RULES, part2_source=False)
    assert "SUD" not in labels_for(condition(ICD10, "F17.210"), RULES, part2_source=False)  # nicotine
    worded = {"resourceType": "Condition", "code": {"coding": [{"system": SNOMED, "code": "10000000",
                                                                "display": "Opioid use disorder, severe"}]}}  # fmt: skip
    assert "OPIOIDUD" in labels_for(worded, RULES, part2_source=False)


@pytest.mark.parametrize(
    ("document", "labels", "data_class"),
    [
        ({"category": [{"text": "Individual counseling session"}]}, {"42CFRPart2"}, "CN"),
        ({"category": [{"coding": [{"display": "Psychotherapy"}]}]}, set(), "PSYNOTE"),
        (
            {
                "securityLabel": [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}
                ]
            },
            {"42CFRPart2"},
            "CN",
        ),  # fmt: skip
        ({}, {"PSYTHPN"}, "PSYNOTE"),
        ({"category": [{"text": "Discharge summary"}]}, {"42CFRPart2"}, "DX"),
        (
            {"category": [{"coding": [{"system": "urn:ehr:doc-category", "code": "sud-counseling-note"}]}]},
            {"42CFRPart2"},
            "CN",
        ),  # a local code, no display
        (
            {"category": [{"coding": [{"system": "urn:ehr:doc-category", "code": "psychotherapy_note"}]}]},
            set(),
            "PSYNOTE",
        ),
    ],
)
def test_notes_are_recognised_as_ehrs_send_them(document: dict[str, Any], labels: set[str], data_class: str) -> None:
    note = {"resourceType": "DocumentReference", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]}, **document}  # fmt: skip
    found = labels_for(note, RULES, part2_source="42CFRPart2" in labels) | labels
    assert data_class_of(note, RULES, frozenset(found)) == data_class


def test_sender_labels_are_kept_and_the_retired_spelling_is_normalised() -> None:
    sent = {"resourceType": "Encounter", "meta": {"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "NORDSLCD"},
        {"system": "http://example.org/local-labels", "code": "VIP"}]}}  # fmt: skip
    labels = labels_for(sent, RULES, part2_source=False)
    assert labels == {"NORDSCLCD", "VIP"}
    labelled = apply_labels(sent, labels, "STATUS")
    security = labelled["meta"]["security"]
    assert {"system": "http://example.org/local-labels", "code": "VIP"} in security
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "NORDSCLCD"} in security
    assert not [c for c in security if c["code"] == "NORDSLCD"]
    assert labelled["meta"]["tag"] == [{"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/data-class",
                                        "code": "STATUS"}]  # fmt: skip


def test_an_update_never_drops_part2_or_sensitivity_labels() -> None:
    previous = frozenset({"42CFRPart2", "R", "NORDSCLCD", "SUD"})
    assert previous <= labels_for({"resourceType": "Encounter"}, RULES, part2_source=False, previous=previous)


@pytest.mark.parametrize(
    ("resource", "data_class"),
    [
        ({"resourceType": "Patient"}, "DEMOGRAPHICS"),
        ({"resourceType": "EpisodeOfCare"}, "STATUS"),
        ({"resourceType": "CareTeam"}, "CONTACT"),
        ({"resourceType": "Condition"}, "DX"),
        ({"resourceType": "CarePlan"}, "CRISISPLAN"),
        ({"resourceType": "Observation", "category": [{"coding": [{"code": "laboratory"}]}]}, "LAB"),
        ({"resourceType": "Observation", "category": [{"coding": [{"code": "vital-signs"}]}]}, "DX"),
        ({"resourceType": "DocumentReference", "type": {"coding": [
            {"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/note-type", "code": "sud-counseling-note"}]}},
         "CN"),
        ({"resourceType": "Basic"}, "STATUS"),
    ],
)  # fmt: skip
def test_data_classes(resource: dict[str, Any], data_class: str) -> None:
    assert data_class_of(resource, RULES) == data_class


def test_propagation_targets_are_the_encounter_episode_and_conditions() -> None:
    observation = {"resourceType": "Observation", "encounter": {"reference": "Encounter/e1"},
                   "subject": {"reference": "Patient/p1"}, "basedOn": [{"reference": "ServiceRequest/s1"}]}  # fmt: skip
    assert propagation_targets(observation) == ["Encounter/e1"]
    encounter = {"resourceType": "Encounter", "episodeOfCare": [{"reference": "EpisodeOfCare/eoc1"}],
                 "diagnosis": [{"condition": {"reference": "Condition/c1"}}]}  # fmt: skip
    assert propagation_targets(encounter) == ["EpisodeOfCare/eoc1", "Condition/c1"]
    assert sender_labels({"resourceType": "Patient"}) == set()
