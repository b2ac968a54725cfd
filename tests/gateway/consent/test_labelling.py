"""Labelling at ingest over HTTP: an EHR of a Part 2 program and one of a mental-health clinic push
their records; what is stored carries the labels and data classes, and labels propagate."""

from __future__ import annotations

from typing import Any

import requests

from tests.gateway.auth.harness import Harness

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def codes(resource: dict[str, Any], element: str = "security") -> set[str]:
    return {c["code"] for c in resource["meta"].get(element, [])}


def read(smart: Harness, path: str) -> dict[str, Any]:
    reader = smart._backends.get("reader") or smart.add_backend("reader", scope="system/*.rs")
    token = smart.backend_token(reader, "system/*.rs")
    response = smart.get(path, token)
    assert response.status_code == 200
    return dict(response.json())


def test_a_part2_programs_records_are_labelled_and_labels_propagate(smart: Harness) -> None:
    encounter = {"resourceType": "Encounter", "id": "otp-intake", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": "Patient/pat-1"}}  # fmt: skip
    diagnosis = {"resourceType": "Condition", "id": "oud", "subject": {"reference": "Patient/pat-1"},
                 "code": {"coding": [{"system": ICD10, "code": "F11.20", "display": "Opioid dependence"}]},
                 "encounter": {"reference": "Encounter/otp-intake"}}  # fmt: skip
    smart.push("eastside-otp-ehr", encounter, diagnosis, part2=True)
    stored = read(smart, "Condition/oud")
    assert {"42CFRPart2", "R", "NORDSCLCD", "SUD", "OPIOIDUD"} <= codes(stored)
    assert codes(stored, "tag") == {"DX"}
    assert {"42CFRPart2", "R", "NORDSCLCD", "SUD", "OPIOIDUD"} <= codes(read(smart, "Encounter/otp-intake"))


def test_a_clinics_depression_diagnosis_is_mental_health_not_part2(smart: Harness) -> None:
    episode_update = {**{"resourceType": "EpisodeOfCare", "id": "eoc-1", "status": "active",
                         "patient": {"reference": "Patient/pat-1"}}}  # fmt: skip
    diagnosis = {"resourceType": "Condition", "id": "mdd", "subject": {"reference": "Patient/pat-1"},
                 "code": {"coding": [{"system": ICD10, "code": "F33.1"}]}}  # fmt: skip
    smart.push("harbor-cmhc-ehr", diagnosis, part2=False)
    stored = read(smart, "Condition/mdd")
    assert codes(stored) == {"MH", "R"}
    assert episode_update["id"] == "eoc-1"


def test_labels_survive_updates_and_reimport_creates_no_version(smart: Harness) -> None:
    from sqlalchemy import update

    from gateway.store.schema import oauth_client

    diagnosis = {"resourceType": "Condition", "id": "oud-2", "subject": {"reference": "Patient/pat-1"},
                 "code": {"coding": [{"system": ICD10, "code": "F11.20"}]}}  # fmt: skip
    smart.push("otp-ehr-2", diagnosis, part2=True)
    smart.push("otp-ehr-2", diagnosis, part2=True)  # the same again: unchanged
    assert read(smart, "Condition/oud-2")["meta"]["versionId"] == "1"
    # The program's registration changes; its earlier record stays Part 2 when it updates it.
    with smart.app.extensions["database"].begin() as connection:
        connection.execute(
            update(oauth_client).where(oauth_client.c.client_id == "otp-ehr-2").values(part2_program=False)
        )
    token = smart.backend_token(smart._backends["otp-ehr-2"])
    changed = requests.put(f"{smart.base}/Condition/oud-2", json={**diagnosis, "note": [{"text": "in remission"}]},
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
                           timeout=10)  # fmt: skip
    assert changed.status_code == 200, changed.text
    stored = read(smart, "Condition/oud-2")
    assert stored["meta"]["versionId"] == "2"
    assert {"42CFRPart2", "R", "NORDSCLCD", "SUD", "OPIOIDUD"} <= codes(stored)


def test_labels_reach_encounters_stored_earlier_read_in_one_query_per_bundle(smart: Harness) -> None:
    """A source's page of diagnoses names Encounters it sent in an earlier page: the labels reach
    them, and the transaction loads them together (as many reads for two diagnoses as for one)."""
    from sqlalchemy import event

    encounters = [{"resourceType": "Encounter", "id": f"visit-{n}", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": {"reference": "Patient/pat-1"}} for n in range(4)]  # fmt: skip

    def diagnosis(n: int) -> dict[str, Any]:
        return {"resourceType": "Condition", "id": f"oud-visit-{n}", "subject": {"reference": "Patient/pat-1"},
                "code": {"coding": [{"system": ICD10, "code": "F11.20"}]},
                "encounter": {"reference": f"Encounter/visit-{n}"}}  # fmt: skip

    smart.push("otp-ehr-3", *encounters, part2=False)
    assert not {"42CFRPart2", "SUD"} & codes(read(smart, "Encounter/visit-0"))
    database = smart.app.extensions["database"]
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    smart.push("otp-ehr-3", diagnosis(0), part2=False)  # the client's token and caches, warm
    event.listen(database, "before_cursor_execute", count)
    try:
        smart.push("otp-ehr-3", diagnosis(1), part2=False)
        for_one = len(selects)
        selects.clear()
        smart.push("otp-ehr-3", diagnosis(2), diagnosis(3), part2=False)
        for_two = len(selects)
    finally:
        event.remove(database, "before_cursor_execute", count)
    for n in range(4):
        assert {"SUD", "OPIOIDUD"} <= codes(read(smart, f"Encounter/visit-{n}"))
    assert for_two == for_one
