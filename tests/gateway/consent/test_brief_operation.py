"""GET Patient/{id}/$responder-brief over HTTP, through the consent engine."""

from __future__ import annotations

from typing import Any

import requests

from gateway.fhir.validation import validate_resource
from tests.gateway.auth.harness import Harness
from tests.gateway.consent.test_release import ICD10, record, token, tpo_consent  # noqa: F401 (record is a fixture)


def brief(smart: Harness, access: str, patient: str = "pat-1", **params: str) -> requests.Response:
    return requests.get(f"{smart.base}/Patient/{patient}/$responder-brief", params=params, timeout=10,
                        headers={"Authorization": f"Bearer {access}"})  # fmt: skip


def section_text(document: dict[str, Any], key: str) -> str:
    composition = document["entry"][0]["resource"]
    return next(str(s["text"]["div"]) for s in composition["section"] if s["code"]["coding"][0]["code"] == key)


def test_clinician_gets_the_brief_with_part2_under_a_tpo_consent(record: Harness) -> None:  # noqa: F811
    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    response = brief(record, token(record), purpose="TREAT", confirmed="true")
    assert response.status_code == 200, response.text
    document = response.json()
    validate_resource(document, "Bundle")
    assert document["type"] == "document"
    assert "Opioid dependence" in section_text(document, "treatment")  # clinicians see the diagnosis text
    basis = section_text(document, "basis")
    assert "maria-tpo-2026" in basis and "42 CFR part 2" in basis


def test_without_confirmation_only_identity(record: Harness) -> None:  # noqa: F811
    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    document = brief(record, token(record), purpose="TREAT").json()
    kinds = {e["resource"]["resourceType"] for e in document["entry"][1:]}
    assert kinds == {"Patient"}
    assert "Nothing on file for this section." in section_text(document, "treatment")


def test_police_and_unknown_patients_get_the_same_answer(record: Harness) -> None:  # noqa: F811
    lee = token(record, "lee")
    withheld = brief(record, lee, purpose="crisis-coordination", confirmed="true")
    missing = brief(record, lee, patient="nobody", purpose="crisis-coordination", confirmed="true")
    assert withheld.status_code == missing.status_code == 404
    assert withheld.content.replace(b"pat-1", b"X") == missing.content.replace(b"nobody", b"X")


def test_emergency_brief_by_a_clinician_is_limited_to_the_emergency_set(record: Harness) -> None:  # noqa: F811
    document = brief(record, token(record), purpose="BTG", reason="unresponsive, suspected overdose",
                     confirmed="true").json()  # fmt: skip
    treatment = section_text(document, "treatment")
    assert "Opioid dependence" in treatment
    assert "a medical emergency (42 CFR 2.51)" in section_text(document, "basis")
    narrowed = brief(record, token(record), purpose="TREAT", confirmed="true", **{"class": "DX"}).json()
    assert {e["resource"]["resourceType"] for e in narrowed["entry"][1:]} == {"Patient", "Condition"}
    nothing = brief(record, token(record), purpose="TREAT", confirmed="true", **{"class": "CONTACT"})
    unknown = brief(record, token(record), patient="nobody", purpose="TREAT", confirmed="true", **{"class": "CONTACT"})
    assert nothing.status_code == unknown.status_code == 404  # demographics never go alone
    assert nothing.content.replace(b"pat-1", b"X") == unknown.content.replace(b"nobody", b"X")


def test_a_certain_match_confirms_identity_for_the_brief(record: Harness) -> None:  # noqa: F811
    from tests.gateway.consent.test_match_operation import grades, match

    ada = token(record)
    probable = match(record, ada, given="Mari", family="Rivero", birthDate="1988-04-12").json()
    assert grades(probable) == {"pat-1": "probable"}
    unconfirmed = brief(record, ada, purpose="TREAT").json()
    assert {e["resource"]["resourceType"] for e in unconfirmed["entry"][1:]} == {"Patient"}
    certain = match(record, ada, given="Maria", family="Rivera", birthDate="1988-04-12", phone="555-0100").json()
    assert grades(certain) == {"pat-1": "certain"}
    after_match = brief(record, ada, purpose="TREAT").json()
    assert "Condition: Mood condition" in section_text(after_match, "treatment")  # clinical sections now in
    # Another user's certain match confirms nothing for this one.
    record.add_user("cyd", role="crisis-clinician", organization="Organization/county-mobile-crisis", practitioner=None)
    cyd = brief(record, token(record, "cyd"), purpose="TREAT").json()
    assert {e["resource"]["resourceType"] for e in cyd["entry"][1:]} == {"Patient"}


def test_nobody_sees_a_part2_only_patient_without_a_basis(record: Harness) -> None:  # noqa: F811
    from tests.gateway.consent.test_match_operation import match

    record.push("eastside-otp-ehr",
                {"resourceType": "Patient", "id": "otp-only", "name": [{"family": "Quinlan", "given": ["Dana"]}],
                 "birthDate": "1979-08-30", "telecom": [{"system": "phone", "value": "555-0777"}]},
                {"resourceType": "Condition", "id": "otp-only-oud", "subject": {"reference": "Patient/otp-only"},
                 "code": {"coding": [{"system": ICD10, "code": "F11.20"}]}},
                part2=True, organization="Organization/eastside-otp")  # fmt: skip
    ada = token(record)
    hidden = brief(record, ada, patient="otp-only", purpose="TREAT", confirmed="true")
    missing = brief(record, ada, patient="nobody", purpose="TREAT", confirmed="true")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content.replace(b"otp-only", b"X") == missing.content.replace(b"nobody", b"X")
    found = match(record, ada, given="Dana", family="Quinlan", birthDate="1979-08-30", phone="555-0777").json()
    assert found == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    emergency = brief(record, ada, patient="otp-only", purpose="BTG", reason="overdose", confirmed="true")
    assert emergency.status_code == 200  # an emergency releases the emergency set, and who it is about goes with it
    assert {e["resource"]["resourceType"] for e in emergency.json()["entry"][1:]} == {"Patient", "Condition"}
