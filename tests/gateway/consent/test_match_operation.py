"""POST Patient/$responder-match over HTTP: graded candidates, identity fields only, presence
protected by the consent engine, every request audited."""

from __future__ import annotations

from datetime import date
from typing import Any

import requests
from sqlalchemy import select

from gateway.store.schema import audit_event
from mappings.matching import match_parameters, match_query_from_parameters, rank
from tests.gateway.auth.harness import Harness
from tests.gateway.conftest import patient
from tests.gateway.consent.test_release import record, token  # noqa: F401 (record is a fixture)


def match(smart: Harness, access: str, purpose: str = "TREAT", **fields: Any) -> requests.Response:
    return requests.post(f"{smart.base}/Patient/$responder-match", json=match_parameters(fields), timeout=10,
                         params={"purpose": purpose} if purpose else None,
                         headers={"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"})  # fmt: skip


def grades(bundle: dict[str, Any]) -> dict[str, str]:
    return {e["resource"]["id"]: e["search"]["extension"][0]["valueCode"] for e in bundle.get("entry", [])}


def test_clinician_finds_the_person_with_a_typo_and_a_nickname(record: Harness) -> None:  # noqa: F811
    response = match(record, token(record), given="Mari", family="Rivero", birthDate="1988-04-12")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert grades(bundle) == {"pat-1": "probable"}
    candidate = bundle["entry"][0]["resource"]
    assert set(candidate) <= {"resourceType", "id", "meta", "identifier", "name", "gender", "birthDate", "telecom",
                              "address", "photo", "communication", "extension"}  # fmt: skip
    assert 0 < bundle["entry"][0]["search"]["score"] <= 1
    certain = match(record, token(record), given="Maria", family="Rivera", birthDate="1988-04-12", phone="555-0100")
    assert grades(certain.json()) == {"pat-1": "certain"}


def test_police_learn_nothing_and_every_match_is_audited(record: Harness) -> None:  # noqa: F811
    lee = token(record, "lee")
    about = match(record, lee, "crisis-coordination", given="Maria", family="Rivera", birthDate="1988-04-12").json()
    nobody = match(record, lee, "crisis-coordination", given="Nobody", family="Atall", birthDate="1901-01-01").json()
    assert about == nobody == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    with record.app.extensions["database"].connect() as connection:
        rows = connection.execute(
            select(audit_event.c.outcome, audit_event.c.body).where(
                audit_event.c.recipient == "lee", audit_event.c.interaction == "responder-match"
            )
        ).all()
    assert [outcome for outcome, _ in rows] == ["DENY", "DENY"]
    assert all([a["code"] for a in body["alerts"]] == ["police-request"] for _, body in rows)


def test_a_match_takes_its_purpose_with_the_request(record: Harness) -> None:  # noqa: F811
    no_purpose = match(record, token(record), purpose="", given="Maria", family="Rivera")
    assert no_purpose.status_code == 400 and "purpose" in no_purpose.json()["issue"][0]["diagnostics"]
    in_parameters = requests.post(f"{record.base}/Patient/$responder-match", timeout=10,
                                  json=match_parameters({"given": "Maria", "family": "Rivera", "purpose": "TREAT"}),
                                  headers={"Authorization": f"Bearer {token(record)}",
                                           "Content-Type": "application/fhir+json"})  # fmt: skip
    assert in_parameters.status_code == 200 and grades(in_parameters.json()) == {"pat-1": "probable"}


def test_bad_match_requests_are_400(record: Harness) -> None:  # noqa: F811
    assert match(record, token(record)).status_code == 400
    response = requests.post(f"{record.base}/Patient/$responder-match", json={"resourceType": "Patient"}, timeout=10,
                             headers={"Authorization": f"Bearer {token(record)}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert response.status_code == 400


def test_malformed_match_parameters_are_4xx_never_500(record: Harness) -> None:  # noqa: F811
    ada = token(record)
    bodies = [
        {"resourceType": "Parameters", "parameter": "not a list"},
        {"resourceType": "Parameters", "parameter": [{"valueString": "no name"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient",
                                                                                        "name": ["x"]}}]},
        {"resourceType": "Parameters", "parameter": [{"name": "family", "valueString": "Riv"},
                                                     {"name": "birthDate", "valueString": "1988/04/12"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "family", "valueString": "Riv"},
                                                     {"name": "birthDate", "valueString": "1988-13-45"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "family", "valueString": "Riv"},
                                                     {"name": "age", "valueInteger": 100000}]},
        {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
            "resourceType": "Patient", "name": [{"family": "Rivera"}], "address": [{"text": None}]}}]},
    ]  # fmt: skip
    for body in bodies:
        response = requests.post(f"{record.base}/Patient/$responder-match", json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {ada}", "Content-Type": "application/fhir+json"})  # fmt: skip
        assert 400 <= response.status_code < 500 or response.status_code == 200, (body, response.text)
        assert response.json()["resourceType"] in ("OperationOutcome", "Bundle")
        if response.status_code != 200:
            assert response.json()["issue"][0]["expression"][0].startswith("Parameters")


def test_people_the_requester_may_not_know_of_change_nothing(record: Harness) -> None:  # noqa: F811
    """Part 2-only patients who fit the description better than the visible one, or as well,
    neither take the visible one's place nor cost it its grade (else their presence shows)."""
    ada = token(record)
    by_name = {"given": "Maria", "family": "Rivera"}
    by_more = {"given": "Maria", "family": "Rivera", "birthDate": "1988-04-12", "phone": "555-0142"}
    before = [match(record, ada, **fields).json() for fields in (by_name, by_more)]
    assert [grades(b) for b in before] == [{"pat-1": "probable"}, {"pat-1": "probable"}]  # unique / name+DOB
    twins = [
        {"resourceType": "Patient", "id": f"otp-twin-{n}", "name": [{"family": "Rivera", "given": ["Maria"]}],
         "birthDate": "1988-04-12", "telecom": [{"system": "phone", "value": "555-0142"}]}
        for n in range(3)
    ]  # fmt: skip
    record.push("eastside-otp-ehr", *twins, part2=True, organization="Organization/eastside-otp")
    after = [match(record, ada, **fields).json() for fields in (by_name, by_more)]
    assert after == before
    # They are on file, and they outrank pat-1 when nothing hides them (the sender reads its own).
    sender = record.backend_token(record._backends["eastside-otp-ehr"], "system/Patient.rs")
    on_file = record.get("Patient", sender, params={"_id": "otp-twin-0,otp-twin-1,otp-twin-2"}).json()
    assert on_file["total"] == 3
    everyone = [e["resource"] for e in on_file["entry"]] + [patient("pat-1", "Rivera", "Maria", "1988-04-12")]
    ranked = rank(match_query_from_parameters(match_parameters(by_more)), everyone, date.today())
    assert [c.patient["id"] for c in ranked] == ["otp-twin-0", "otp-twin-1", "otp-twin-2"]
