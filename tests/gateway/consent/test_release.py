"""The consent engine in the release hook, over real HTTP: what responders see, what is audited,
and that a denial looks exactly like "nothing on file"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, text, update

from gateway.store.schema import audit_event, disclosure, oauth_client
from tests.gateway.auth.harness import Harness

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PROFILE = Path(__file__).resolve().parents[3] / "docs" / "consent-profile.md"


def tpo_consent(patient: str = "Patient/pat-1") -> dict[str, Any]:
    import re

    blocks = re.findall(r"```json\n(.*?)```", PROFILE.read_text(encoding="utf-8"), re.S)
    consent = next(c for c in map(json.loads, blocks) if c["id"] == "maria-tpo-2026")
    consent["patient"] = {"reference": patient}
    consent["performer"] = [{"reference": patient}]  # the patient signed
    consent["provision"]["provision"] = []
    del consent["provision"]["provision"]
    return consent


@pytest.fixture()
def record(smart: Harness) -> Harness:
    """pat-1 is in treatment at an opioid treatment program (Part 2) and a mental-health clinic;
    the mobile crisis team is on scene (an in-progress Encounter)."""
    smart.push("eastside-otp-ehr",
         {"resourceType": "Condition", "id": "oud", "subject": {"reference": "Patient/pat-1"},
          "code": {"coding": [{"system": ICD10, "code": "F11.20", "display": "Opioid dependence"}]}},
         {"resourceType": "MedicationStatement", "id": "bup", "status": "active", "subject": {"reference": "Patient/pat-1"},
          "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "352364"}]}}, part2=True, organization="Organization/eastside-otp")  # fmt: skip
    smart.push("harbor-cmhc-ehr",
         {"resourceType": "Condition", "id": "mdd", "subject": {"reference": "Patient/pat-1"},
          "code": {"coding": [{"system": ICD10, "code": "F33.1"}]}}, part2=False, organization="Organization/harbor-cmhc")  # fmt: skip
    smart.push("county-cad",
         {"resourceType": "Encounter", "id": "crisis-call", "status": "in-progress",
          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD"},
          "subject": {"reference": "Patient/pat-1"},
          "serviceProvider": {"reference": "Organization/county-mobile-crisis"}}, part2=False, organization="Organization/county-mobile-crisis")  # fmt: skip
    smart.add_user("lee", role="police-officer", organization="Organization/metro-pd", practitioner=None)
    return smart


def token(smart: Harness, username: str = "ada") -> str:
    return str(smart.app_token(scope="openid fhirUser user/*.rs", patient=None, username=username)["access_token"])


def ids(bundle: dict[str, Any], resource_type: str = "Condition") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == resource_type}


def comparable(response: requests.Response) -> Any:
    body = response.json()
    if body.get("resourceType") == "Bundle":
        body = {k: v for k, v in body.items() if k not in ("id", "meta", "link")}
    return response.status_code, body


def test_without_consent_part2_is_withheld_and_looks_like_nothing_on_file(record: Harness) -> None:
    access = token(record)
    found = record.get("Condition", access, params={"patient": "Patient/pat-1"}).json()
    assert ids(found) == {"mdd"}  # mental health under the jurisdiction overlay; no Part 2
    assert found["total"] == 1
    assert not [e for e in found["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    withheld = record.get("Condition/oud", access)
    missing = record.get("Condition/no-such-condition", access)
    assert withheld.status_code == missing.status_code == 404
    assert withheld.content.replace(b"oud", b"X") == missing.content.replace(b"no-such-condition", b"X")


def test_with_a_tpo_consent_part2_goes_to_the_treating_team_with_the_notice(record: Harness) -> None:
    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    access = token(record)
    found = record.get("Condition", access, params={"patient": "Patient/pat-1"}).json()
    assert ids(found) == {"mdd", "oud"}
    notices = [e["resource"] for e in found["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert len(notices) == 1 and "42 CFR part 2" in notices[0]["issue"][0]["diagnostics"]
    assert "maria-tpo-2026" in notices[0]["issue"][0]["diagnostics"]  # the scope explanation
    read = record.get("Condition/oud", access).json()
    notice = next(e for e in read["meta"]["extension"] if e["url"].endswith("/redisclosure-notice"))
    assert "42 CFR part 2" in notice["valueString"]
    assert {"SUD", "OPIOIDUD"} <= {c["code"] for c in read["meta"]["security"]}  # clinicians keep labels
    with record.app.extensions["database"].connect() as connection:
        ledger = connection.execute(select(disclosure.c.item, disclosure.c.recipient)).all()
    assert ("Condition/oud", "ada") in ledger


def test_police_get_nothing_without_a_consent_naming_them(record: Harness) -> None:
    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    access = token(record, "lee")
    about = comparable(record.get("Condition", access, params={"patient": "Patient/pat-1"}))
    nobody = comparable(record.get("Condition", access, params={"patient": "Patient/nobody"}))
    assert about == nobody
    with record.app.extensions["database"].connect() as connection:
        outcomes = (
            connection.execute(select(audit_event.c.outcome).where(audit_event.c.recipient == "lee")).scalars().all()
        )
    assert outcomes == ["DENY", "DENY"]  # each request leaves its record, whether or not anyone is on file


def test_emergency_access_by_a_clinician(record: Harness) -> None:
    access = token(record)
    headers = {"X-Purpose-Of-Use": "BTG", "X-Emergency-Nature": "unresponsive, suspected opioid overdose"}
    found = record.get("Condition", access, params={"patient": "Patient/pat-1"}, headers=headers).json()
    assert "oud" in ids(found)
    no_reason = record.get(
        "Condition", access, params={"patient": "Patient/pat-1"}, headers={"X-Purpose-Of-Use": "BTG"}
    )
    assert no_reason.status_code == 400 and "nature" in no_reason.json()["issue"][0]["diagnostics"]
    with record.app.extensions["database"].connect() as connection:
        bodies = connection.execute(select(audit_event.c.body).where(audit_event.c.emergency.is_(True))).scalars().all()
    assert any(b["emergency"] and b["emergency"]["nature"].startswith("unresponsive") for b in bodies)


def test_audit_chain_verifies_and_detects_tampering(record: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import main

    access = token(record)
    for _ in range(3):
        record.get("Condition", access, params={"patient": "Patient/pat-1"})
    monkeypatch.setenv("GATEWAY_DATABASE_URL", str(record.app.extensions["database"].url.render_as_string(False)))
    intact = CliRunner().invoke(main, ["audit", "verify", "--json"])
    assert intact.exit_code == 0, intact.output
    assert all(r["intact"] for r in json.loads(intact.output))
    with record.app.extensions["database"].begin() as connection:
        second = connection.execute(
            select(audit_event.c.seq).order_by(audit_event.c.seq).offset(1).limit(1)
        ).scalar_one()
        connection.execute(update(audit_event).where(audit_event.c.seq == second).values(outcome="PERMIT_TAMPERED"))
    broken = CliRunner().invoke(main, ["audit", "verify", "--json"])
    assert broken.exit_code == 1
    report = {r["table"]: r for r in json.loads(broken.output)}
    assert report["audit_event"]["first_broken"] == second


def test_no_release_when_the_audit_cannot_be_written(record: Harness) -> None:
    access = token(record)
    database = record.app.extensions["database"]
    with database.begin() as connection:
        connection.execute(text("ALTER TABLE audit_event RENAME TO audit_event_away"))
    try:
        response = record.get("Condition", access, params={"patient": "Patient/pat-1"})
        assert response.status_code == 503
        assert "mdd" not in response.text
    finally:
        with database.begin() as connection:
            connection.execute(text("ALTER TABLE audit_event_away RENAME TO audit_event"))


def officer_token(smart: Harness) -> str:
    smart.add_user("cora", role="compliance-officer", organization="Organization/eastside-otp", practitioner=None)
    return token(smart, "cora")


def report(smart: Harness, path: str, access: str, **params: str) -> requests.Response:
    return requests.get(f"{smart.root}/compliance/{path}", params=params, timeout=10,
                        headers={"Authorization": f"Bearer {access}"})  # fmt: skip


def test_disclosure_accounting_for_compliance_officers(record: Harness) -> None:
    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    record.get("Condition/oud", token(record))
    cora = officer_token(record)
    rows = report(record, "disclosures", cora, patient="Patient/pat-1").json()["rows"]
    oud = [r for r in rows if r["item"] == "Condition/oud"]
    assert oud and oud[0]["recipient_user"] == "ada" and oud[0]["consents"] == ["maria-tpo-2026"]
    assert oud[0]["discloser"] == "Organization/eastside-otp" and oud[0]["notice_version"] == "2024"
    csv_text = report(record, "disclosures", cora, patient="Patient/pat-1", format="csv")
    assert csv_text.headers["Content-Type"].startswith("text/csv") and "Condition/oud" in csv_text.text
    assert report(record, "disclosures", token(record), patient="Patient/pat-1").status_code == 403
    assert requests.get(f"{record.root}/compliance/disclosures", timeout=10).status_code == 401
    assert report(record, "disclosures", cora).status_code == 400


def test_emergency_access_is_queued_for_review_and_reported_to_the_program(record: Harness) -> None:
    headers = {"X-Purpose-Of-Use": "BTG", "X-Emergency-Nature": "overdose, not breathing"}
    record.get("Condition", token(record), params={"patient": "Patient/pat-1"}, headers=headers)
    cora = officer_token(record)
    pending = report(record, "emergency-reviews", cora).json()["rows"]
    assert len(pending) == 1 and pending[0]["nature"] == "overdose, not breathing"
    seq = pending[0]["audit_seq"]
    reviewer = {"Authorization": f"Bearer {cora}"}
    assert requests.post(f"{record.root}/compliance/emergency-reviews/{seq}", json={"note": "bona fide overdose"},
                         headers=reviewer, timeout=10).status_code == 200  # fmt: skip
    assert requests.post(f"{record.root}/compliance/emergency-reviews/{seq}", json={"note": "again"},
                         headers=reviewer, timeout=10).status_code == 409  # fmt: skip
    assert report(record, "emergency-reviews", cora).json()["rows"] == []
    system = record.backend_token(
        record.add_backend("otp-inbox", scope="system/Communication.rs"), "system/Communication.rs"
    )
    notes = record.get("Communication", system).json()
    found = [e["resource"] for e in notes.get("entry", []) if e["resource"]["resourceType"] == "Communication"]
    texts = [n["payload"][0]["contentString"] for n in found]
    assert any("2.51(c)" in t and "overdose, not breathing" in t and "Ada Lovelace" in t for t in texts)
    assert all(n["recipient"] == [{"reference": "Organization/eastside-otp"}] for n in found)
    assert all("42CFRPart2" in {c["code"] for c in n["meta"]["security"]} for n in found)  # written through the engine


def test_alerts_and_consents_that_cannot_be_relied_on(record: Harness) -> None:
    record.get("Condition", token(record, "lee"), params={"patient": "Patient/pat-1"},
               headers={"X-Purpose-Of-Use": "law-enforcement"})  # fmt: skip
    import re

    blocks = re.findall(r"```json\n(.*?)```", PROFILE.read_text(encoding="utf-8"), re.S)
    incomplete = next(c for c in map(json.loads, blocks) if c["id"] == "incomplete")
    incomplete["patient"] = {"reference": "Patient/pat-1"}
    record.push("eastside-otp-ehr", incomplete, part2=True, organization="Organization/eastside-otp")
    cora = officer_token(record)
    alerts = report(record, "alerts", cora).json()["rows"]
    assert [a["alert"] for a in alerts if a["recipient"] == "lee"] == ["police-request", "legal-purpose"]
    flagged = report(record, "consents-not-relied-on", cora).json()["rows"]
    assert [f["consent"] for f in flagged] == ["Consent/incomplete"]
    assert any(p.startswith("2.31(a)(8)") for p in flagged[0]["problems"])


def test_compliance_officer_records_and_revokes_a_consent(record: Harness) -> None:
    record.add_app("compliance-console", scope="openid fhirUser user/*.rs user/Consent.cruds")
    officer_token(record)
    cora = str(record.app_token(client_id="compliance-console", scope="openid fhirUser user/Consent.cru user/*.rs",
                                patient=None, username="cora")["access_token"])  # fmt: skip
    headers = {"Authorization": f"Bearer {cora}", "Content-Type": "application/fhir+json"}
    consent = tpo_consent()
    created = requests.put(f"{record.base}/Consent/{consent['id']}", json=consent, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    ada = token(record)
    assert record.get("Condition/oud", ada).status_code == 200
    revoked = {**consent, "status": "inactive", "extension": [*consent["extension"], {
        "url": "https://crisis-fhir-gateway.org/fhir/StructureDefinition/consent-revoked",
        "valueDateTime": "2026-01-01T00:00:00Z"}]}  # fmt: skip
    assert (
        requests.put(f"{record.base}/Consent/{consent['id']}", json=revoked, headers=headers, timeout=10).status_code
        == 200
    )
    assert record.get("Condition/oud", ada).status_code == 404
    clinician = requests.put(f"{record.base}/Consent/{consent['id']}", json=consent, timeout=10,
                             headers={"Authorization": f"Bearer {ada}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert clinician.status_code == 403


def test_properties_over_http(record: Harness) -> None:
    """For any user, purpose and item: a withheld read is byte-for-byte a read of nothing, every
    request about patient data leaves exactly one audit row, and the 2.32 notice comes with a
    released item iff it is Part 2."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    record.push("eastside-otp-ehr", tpo_consent(), part2=True, organization="Organization/eastside-otp")
    record.add_user("sam", role="peer-specialist", organization="Organization/county-mobile-crisis", practitioner=None)
    record.add_user("dee", role="dispatcher", organization="Organization/county-911", practitioner=None)
    tokens = {name: token(record, name) for name in ("ada", "sam", "dee", "lee")}
    database = record.app.extensions["database"]

    def audit_rows() -> int:
        with database.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM audit_event")).scalar_one())

    @settings(max_examples=40, deadline=None)
    @given(
        st.sampled_from(sorted(tokens)),
        st.sampled_from(["TREAT", "ETREAT", "crisis-coordination", "law-enforcement", "HPAYMT"]),
        st.sampled_from(["Condition/oud", "Condition/mdd", "MedicationStatement/bup", "Patient/pat-1"]),
    )
    def check(user: str, purpose: str, path: str) -> None:
        before = audit_rows()
        response = record.get(path, tokens[user], headers={"X-Purpose-Of-Use": purpose})
        assert audit_rows() == before + 1
        assert response.status_code in (200, 404)
        if response.status_code == 404:
            missing = record.get(
                path.split("/")[0] + "/never-stored", tokens[user], headers={"X-Purpose-Of-Use": purpose}
            )
            assert response.content.replace(path.split("/")[1].encode(), b"X") == missing.content.replace(
                b"never-stored", b"X"
            )
            return
        body = response.json()
        labels = {c["code"] for c in body["meta"].get("security", [])}
        notice = any(e["url"].endswith("redisclosure-notice") for e in body["meta"].get("extension", []))
        assert notice == ("42CFRPart2" in labels)

    check()


def test_dispatch_launch_starts_the_treating_relationship(smart: Harness) -> None:
    smart.push("eastside-otp-ehr",
         {"resourceType": "Condition", "id": "oud", "subject": {"reference": "Patient/pat-2"},
          "code": {"coding": [{"system": ICD10, "code": "F11.20"}]}}, part2=True, organization="Organization/eastside-otp")  # fmt: skip
    consent = tpo_consent("Patient/pat-2")
    smart.push("eastside-otp-ehr", consent, part2=True, organization="Organization/eastside-otp")
    ada = token(smart)
    assert smart.get("Condition/oud", ada).status_code == 404  # no treating relationship yet
    cad = smart.backend_token(smart.add_backend("county-cad", scope="system/Patient.rs", purpose="dispatch"),
                              "system/Patient.rs")  # fmt: skip
    launched = requests.post(f"{smart.root}/launch", headers={"Authorization": f"Bearer {cad}"}, timeout=10,
                             json={"client_id": "responder-app", "patient": "pat-2", "user": "ada",
                                   "incident": "CAD-0042", "purpose": "ETREAT"})  # fmt: skip
    assert launched.status_code == 201
    assert smart.get("Condition/oud", ada).status_code == 200


def test_the_audit_trail_as_fhir_audit_events(record: Harness) -> None:
    from gateway.fhir.validation import validate_resource

    record.get("Condition", token(record), params={"patient": "Patient/pat-1"})
    record.get("Condition", token(record, "lee"), params={"patient": "Patient/pat-1"})
    bundle = report(record, "audit-events", officer_token(record), patient="Patient/pat-1").json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 2
    events = [e["resource"] for e in bundle["entry"]]
    for event in events:
        validate_resource(event, "AuditEvent")
    by_user = {e["agent"][0]["who"]["identifier"]["value"]: e for e in events}
    assert by_user["lee"]["outcome"] == "4" and by_user["ada"]["outcome"] == "0"
    withheld = [x for x in by_user["ada"]["entity"] if x.get("description") == "withheld"]
    assert any(x["what"]["reference"] == "Condition/oud" for x in withheld)
    assert all({"reason", "rule"} <= {d["type"] for d in x["detail"]} for x in withheld)


def test_a_responder_on_scene_starts_the_treating_relationship(record: Harness) -> None:
    consent = tpo_consent("Patient/pat-2")
    record.push("eastside-otp-ehr",
         {"resourceType": "Condition", "id": "oud-2", "subject": {"reference": "Patient/pat-2"},
          "code": {"coding": [{"system": ICD10, "code": "F11.20"}]}},
         {**consent, "id": "tpo-pat-2"}, part2=True, organization="Organization/eastside-otp")  # fmt: skip
    ada = token(record)
    assert record.get("Condition/oud-2", ada).status_code == 404

    def on_scene(access: str, patient: str) -> requests.Response:
        return requests.post(f"{record.root}/responder/on-scene", json={"patient": patient, "incident": "CAD-7"},
                             headers={"Authorization": f"Bearer {access}"}, timeout=10)  # fmt: skip

    known, unknown = on_scene(ada, "pat-2"), on_scene(ada, "nobody-here")
    assert known.status_code == unknown.status_code == 202 and known.content == unknown.content
    assert record.get("Condition/oud-2", ada).status_code == 200
    assert on_scene(token(record, "lee"), "pat-2").status_code == 403  # police never treat
    assert requests.post(f"{record.root}/responder/on-scene", json={"patient": "pat-2"}, timeout=10).status_code == 401


def test_backend_clients_read_back_only_their_own_organizations_records(record: Harness) -> None:
    westside = record.add_backend("westside-ehr")
    with record.app.extensions["database"].begin() as connection:
        connection.execute(update(oauth_client).where(oauth_client.c.client_id == "westside-ehr")
                           .values(organization="Organization/westside-clinic"))  # fmt: skip
    theirs = record.backend_token(westside)
    assert record.get("Condition/oud", theirs).status_code == 404
    assert record.get("Condition", theirs, params={"patient": "Patient/pat-1"}).json()["total"] == 0
    eastside = record.backend_token(record._backends["eastside-otp-ehr"])
    assert record.get("Condition/oud", eastside).status_code == 200
    with record.app.extensions["database"].connect() as connection:
        rows = connection.execute(select(audit_event.c.recipient, audit_event.c.outcome)).all()
    assert ("client:westside-ehr", "DENY") in rows


def test_deciding_about_many_patients_reads_their_consents_in_one_query(record: Harness) -> None:
    """A search that returns several people's data: one query for all their consents and
    encounters, not one per person (the same number of reads for one patient as for two)."""
    from sqlalchemy import event

    access = token(record)
    database = record.app.extensions["database"]
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    record.get("Patient", access, params={"_id": "pat-1,pat-2"})  # warm the per-user caches
    event.listen(database, "before_cursor_execute", count)
    try:
        one = record.get("Patient", access, params={"_id": "pat-1"}).json()
        reads_for_one = len(selects)
        selects.clear()
        two = record.get("Patient", access, params={"_id": "pat-1,pat-2"}).json()
        reads_for_two = len(selects)
    finally:
        event.remove(database, "before_cursor_execute", count)
    assert ids(one, "Patient") == {"pat-1"} and ids(two, "Patient") == {"pat-1", "pat-2"}
    assert reads_for_two == reads_for_one


STATE_FACILITY_ID = "https://health.state.example/facility-id"
NPI = "http://hl7.org/fhir/sid/us-npi"


def test_a_consent_may_name_recipient_and_discloser_by_their_identifiers(record: Harness) -> None:
    """A consent names the police department by its state facility id and the program by its NPI,
    not by the gateway's resource ids: it reaches the officer of that department, bounded by the
    program's records, as if it had named them by reference."""
    record.push("eastside-otp-ehr",
         {"resourceType": "Organization", "id": "eastside-otp", "name": "Eastside Opioid Treatment Program",
          "identifier": [{"system": NPI, "value": "1234567893"}]},
         {"resourceType": "EpisodeOfCare", "id": "otp-episode", "status": "active",
          "patient": {"reference": "Patient/pat-1"}, "managingOrganization": {"reference": "Organization/eastside-otp"},
          "type": [{"text": "Opioid treatment program"}]}, part2=True, organization="Organization/eastside-otp")  # fmt: skip
    record.push("county-registry",
         {"resourceType": "Organization", "id": "metro-pd", "name": "Metro Police Department",
          "identifier": [{"system": STATE_FACILITY_ID, "value": "PD-0042"}]}, organization="Organization/county")  # fmt: skip
    consent = tpo_consent()
    consent.update(id="naming-by-identifier", category=[{"coding": [
        {"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/consent-kind", "code": "part2-specific"}]}])  # fmt: skip
    consent["organization"] = [{"identifier": {"system": NPI, "value": "1234567893"}}]
    consent["provision"]["actor"][0]["reference"] = {"identifier": {"system": STATE_FACILITY_ID, "value": "PD-0042"}}
    consent["provision"]["purpose"] = [
        {"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/purpose-of-use", "code": "crisis-coordination"}
    ]
    consent["provision"]["code"] = [{"coding": [
        {"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/data-class", "code": "STATUS"}]}]  # fmt: skip
    consent["extension"] = [e for e in consent["extension"] if "tpo" not in e["url"] and "redisclosure" not in e["url"]]
    consent["extension"].append(
        {
            "url": "https://crisis-fhir-gateway.org/fhir/StructureDefinition/consent-expiry-event",
            "valueCode": "end-of-treatment",
        }
    )
    record.push("eastside-otp-ehr", consent, part2=True, organization="Organization/eastside-otp")
    officer = token(record, "lee")
    headers = {"X-Purpose-Of-Use": "crisis-coordination"}
    found = record.get("EpisodeOfCare", officer, params={"patient": "Patient/pat-1"}, headers=headers).json()
    assert "otp-episode" in ids(found, "EpisodeOfCare")
    # Another department, without that identifier, gets the answer for "nothing on file".
    record.add_user("kay", role="police-officer", organization="Organization/other-pd", practitioner=None)
    other = record.get("EpisodeOfCare", token(record, "kay"), params={"patient": "Patient/pat-1"}, headers=headers)
    assert ids(other.json(), "EpisodeOfCare") == set()
