"""Security labels at ingest: by code (value sets from config/), by provenance, kept on update."""

from __future__ import annotations

from typing import Any

import pytest

from consent_engine.labels import (
    apply_labels,
    data_class_of,
    labels_for,
    propagation_targets,
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


def test_anything_from_a_part2_program_is_part2() -> None:
    organization = {"resourceType": "Organization", "name": "Eastside Recovery (OTP)"}
    assert labels_for(organization, RULES, part2_source=True) == {"42CFRPart2", "R", "NORDSCLCD"}
    assert labels_for(organization, RULES, part2_source=False) == set()


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
