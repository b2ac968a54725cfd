"""Scenarios from an outside Part 2 acceptance run, over HTTP in the county world (world.py): what
the answer carries, what the ledger says and what the audit says must be one and the same."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from gateway.auth.resource import is_patient_data
from gateway.store.schema import audit_event, disclosure, emergency_review
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.world import World


@pytest.fixture()
def world(smart_server: LiveServer) -> World:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_app()
    return county.build(harness)


def items_in(document: dict[str, Any]) -> set[str]:
    """The patient-data resources an answer carries (Bundle entries, or the resource itself)."""
    resources = (
        [e["resource"] for e in document.get("entry", [])] if document["resourceType"] == "Bundle" else [document]
    )
    return {f"{r['resourceType']}/{r['id']}" for r in resources if is_patient_data(r["resourceType"])}


def ledger_since(world: World, seq: int) -> set[str]:
    with world.database().connect() as connection:
        rows = connection.execute(select(disclosure.c.item).where(disclosure.c.audit_seq > seq)).scalars().all()
    return set(rows)


def last_seq(world: World) -> int:
    with world.database().connect() as connection:
        return int(connection.execute(select(audit_event.c.seq).order_by(audit_event.c.seq.desc()).limit(1))
                   .scalar() or 0)  # fmt: skip


def audits_since(world: World, seq: int) -> list[Any]:
    with world.database().connect() as connection:
        return list(connection.execute(select(audit_event).where(audit_event.c.seq > seq).order_by(audit_event.c.seq))
                    .mappings().all())  # fmt: skip


def released_in(rows: list[Any]) -> set[str]:
    return {r["item"] for row in rows for d in row["body"].get("decisions", []) for r in d.get("released", [])}


def part2(world: World, keys: set[str]) -> set[str]:
    """Which of these stored resources carry the 42CFRPart2 label."""
    found = set()
    engine = world.harness.app.extensions["fhir_engine"]
    with engine.store.unit_of_work(False) as (repository, _):
        for key in keys:
            stored = repository.read(*key.split("/"))
            labels = {c.get("code") for c in ((stored.content or {}).get("meta") or {}).get("security", [])}
            if "42CFRPart2" in labels:
                found.add(key)
    return found


def stored_meta(world: World, key: str) -> dict[str, Any]:
    engine = world.harness.app.extensions["fhir_engine"]
    with engine.store.unit_of_work(False) as (repository, _):
        stored = repository.read(*key.split("/"))
    return dict((stored.content or {}).get("meta") or {})


def same_as_unknown(world: World, user: str, answer: requests.Response, known: str, path: str, **params: str) -> bool:
    missing = world.harness.get(path.replace(known, "nobody-here"), world.token(user), params=params or None)
    return answer.status_code == missing.status_code and answer.content.replace(known.encode(), b"X") == (
        missing.content.replace(b"nobody-here", b"X")
    )


# -- 1. the ledger records what was sent, and only that ------------------------------------------------
def test_an_emergency_brief_for_a_part2_patient_is_the_emergency_set_and_the_ledger_says_so(world: World) -> None:
    before = last_seq(world)
    answer = world.brief("ada", "dana", purpose="BTG", reason="unresponsive, suspected overdose", confirmed="true")
    assert answer.status_code == 200, answer.text
    sent = items_in(answer.json())
    assert {"Patient/dana", "Condition/dana-oud", "MedicationStatement/dana-methadone", "Observation/dana-tox",
            "DocumentReference/dana-discharge"} <= sent  # fmt: skip
    assert "DocumentReference/dana-note" not in sent  # counseling notes never under an emergency
    assert ledger_since(world, before) == part2(world, sent) == sent  # everything of dana's is Part 2
    assert released_in(audits_since(world, before)) == sent
    with world.database().connect() as connection:
        reviews = connection.execute(select(emergency_review.c.audit_seq).where(emergency_review.c.audit_seq > before))
        assert len(reviews.all()) == 1


def test_police_named_by_a_consent_get_what_it_names_and_the_ledger_says_so(world: World) -> None:
    before = last_seq(world)
    answer = world.brief("lee", "omar", purpose="crisis-coordination", confirmed="true")
    assert answer.status_code == 200, answer.text
    sent = items_in(answer.json())
    assert sent == {"Patient/omar", "EpisodeOfCare/omar-detox-episode", "Encounter/omar-detox-admission",
                    "CareTeam/omar-team"}  # fmt: skip
    assert ledger_since(world, before) == sent == released_in(audits_since(world, before))
    codes = {c["code"] for r in answer.json()["entry"][1:] for c in r["resource"].get("meta", {}).get("security", [])}
    assert "SUD" not in codes and {"42CFRPart2", "NORDSCLCD", "R"} <= codes  # police keep the refrain, not the why


def test_a_dispatcher_under_a_tpo_consent_gets_contacts_and_the_ledger_says_so(world: World) -> None:
    before = last_seq(world)
    answer = world.brief("dee", "maria", purpose="TREAT", confirmed="true")
    assert answer.status_code == 200, answer.text
    sent = items_in(answer.json())
    assert {"Patient/maria", "CareTeam/maria-otp-team", "RelatedPerson/maria-sister"} <= sent
    assert not sent & {"Condition/maria-oud", "MedicationStatement/maria-bup", "Condition/maria-mdd"}
    assert ledger_since(world, before) == part2(world, sent) == {"CareTeam/maria-otp-team"}
    assert released_in(audits_since(world, before)) == sent


def test_a_request_that_fails_after_a_release_was_decided_discloses_nothing(world: World) -> None:
    """A transaction whose first entry releases Part 2 data and whose second fails answers with an
    error: the ledger records nothing, and the audit says nothing was sent."""
    before = last_seq(world)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Condition/maria-oud"}},
        {"request": {"method": "GET", "url": "NoSuchType/1"}}]}  # fmt: skip
    answer = requests.post(world.harness.base, json=bundle, timeout=10, headers={
        "Authorization": f"Bearer {world.token('ada')}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert answer.status_code == 404 and "maria-oud" not in answer.text
    (row,) = audits_since(world, before)
    assert row["outcome"] == "REFUSED" and row["body"]["sent"] is False
    assert released_in([row]) == {"Condition/maria-oud"}  # decided, and recorded as decided ...
    assert ledger_since(world, before) == set()  # ... but never disclosed


# -- 2. the brief carries every item released -----------------------------------------------------------
def test_the_brief_carries_every_released_item(world: World) -> None:
    before = last_seq(world)
    answer = world.brief("ada", "maria", purpose="TREAT", confirmed="true")
    assert answer.status_code == 200, answer.text
    sent = items_in(answer.json())
    assert {"Encounter/maria-cmhc-visit", "CarePlan/maria-plan", "Observation/maria-tox", "Condition/maria-oud",
            "MedicationStatement/maria-bup", "Condition/maria-mdd", "Encounter/maria-crisis-call"} <= sent  # fmt: skip
    assert released_in(audits_since(world, before)) == sent
    assert ledger_since(world, before) == part2(world, sent)
    composition = answer.json()["entry"][0]["resource"]
    cited = {e["reference"] for s in composition["section"] for e in s.get("entry", [])}
    assert sent <= cited  # a document cites what it carries


# -- 3. demographics follow the decision ------------------------------------------------------------------
def test_no_demographics_when_nothing_clinical_may_be_released(world: World) -> None:
    brief = world.brief("ada", "lena", purpose="TREAT", confirmed="true")
    assert brief.status_code == 404
    assert same_as_unknown(world, "ada", brief, "lena", "Patient/lena/$responder-brief", purpose="TREAT",
                           confirmed="true")  # fmt: skip
    read = world.get("ada", "Patient/lena")
    assert read.status_code == 200  # asked for alone, a provider's registration is HIPAA treatment data
    hidden = world.get("ada", "Patient/dana")  # but a Part 2 program's needs a basis
    assert hidden.status_code == 404 and same_as_unknown(world, "ada", hidden, "dana", "Patient/dana")


# -- 4. exact instants -----------------------------------------------------------------------------------
def test_a_revocation_counts_from_its_instant_not_its_second(world: World) -> None:
    now = datetime.now(UTC)
    instant = now.replace(microsecond=0) + timedelta(seconds=1, milliseconds=700)
    revoked = county.consent("maria-tpo", "maria", "part2-tpo", disclosers=[county.OTP], recipients=[county.TREATING],
                             purposes=["TREAT", "HPAYMT", "HOPERAT"], classes=county.ALL_CLINICAL)  # fmt: skip
    revoked["status"] = "inactive"
    revoked["extension"].append({"url": f"{county.P}/StructureDefinition/consent-revoked",
                                 "valueDateTime": instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")})  # fmt: skip
    world.push("otp", revoked)
    world.token("ada")
    time.sleep(max(0.0, (instant + timedelta(milliseconds=80) - datetime.now(UTC)).total_seconds()))
    assert world.get("ada", "Condition/maria-oud").status_code == 404


# -- 5. a discloser bounds its denies ---------------------------------------------------------------------
def test_an_opt_out_recorded_by_one_program_withholds_only_that_programs_items(world: World) -> None:
    answer = world.brief("ada", "june", purpose="TREAT", confirmed="true")
    assert answer.status_code == 200, answer.text
    sent = items_in(answer.json())
    assert {"Condition/june-ptsd", "CarePlan/june-plan", "Patient/june"} <= sent
    assert not sent & {"Condition/june-oud", "MedicationStatement/june-bup"}


# -- 6. labels by value set and by source ------------------------------------------------------------------
def test_sud_products_and_part2_sources_are_labelled_sud(world: World) -> None:
    world.push("cmhc", county.medication("lena-bup-cmhc", "lena", "1010604", "buprenorphine / naloxone film"),
               county.medication("lena-methadone-ed", "lena", "864706", "methadone hydrochloride 10 MG Oral Tablet"),
               {**county.medication("lena-vivitrol", "lena", "0", ""),
                "medicationCodeableConcept": {"text": "Vivitrol (naltrexone ER) 380 mg IM monthly"}})  # fmt: skip
    for key in ("MedicationStatement/lena-bup-cmhc", "MedicationStatement/lena-methadone-ed",
                "MedicationStatement/lena-vivitrol", "Encounter/omar-detox-admission"):  # fmt: skip
        labels = {c["code"] for c in stored_meta(world, key).get("security", [])}
        assert "SUD" in labels, (key, labels)
    assert {"42CFRPart2", "NORDSCLCD", "R"} <= {c["code"] for c in stored_meta(world, "Encounter/omar-detox-admission")
                                                   ["security"]}  # fmt: skip


# -- 7. counseling notes ----------------------------------------------------------------------------------
def test_counseling_notes_as_ehrs_send_them_and_only_under_their_own_consent(world: World) -> None:
    tags = {t["code"] for t in stored_meta(world, "DocumentReference/dana-note")["tag"]}
    assert "CN" in tags
    assert world.get("ada", "DocumentReference/nora-note").status_code == 200  # the consent names the crisis team
    assert world.get("sam", "DocumentReference/nora-note").status_code == 404  # peers never receive CN
    assert world.get("ada", "DocumentReference/dana-note").status_code == 404  # no counseling-notes consent
    brief = world.brief("ada", "nora", purpose="TREAT", confirmed="true")
    assert brief.status_code == 200 and "DocumentReference/nora-note" in items_in(brief.json())


# -- 8. the audit answers a compliance officer ---------------------------------------------------------------
def test_a_denial_names_the_consent_that_decided(world: World) -> None:
    before = last_seq(world)
    assert world.get("ada", "Condition/june-oud").status_code == 404
    (row,) = audits_since(world, before)
    (decision,) = row["body"]["decisions"]
    (withheld,) = decision["withheld"]
    assert withheld["item"] == "Condition/june-oud" and withheld["consents"] == ["june-opt-out"]
    assert withheld["citation"]
    events = requests.get(f"{world.harness.root}/compliance/audit-events", params={"patient": "Patient/june"},
                          headers={"Authorization": f"Bearer {world.token('cora')}"}, timeout=10).json()  # fmt: skip
    entities = [x for e in events["entry"] for x in e["resource"].get("entity", [])]
    denied = next(x for x in entities if x["what"]["reference"] == "Condition/june-oud")
    assert {"type": "consent", "valueString": "Consent/june-opt-out"} in denied["detail"]
    assert any(x["what"]["reference"] == "Consent/june-opt-out" and "denying" in x["description"] for x in entities)


def test_refused_requests_are_audited_too(world: World) -> None:
    world.token("ada")
    before = last_seq(world)
    assert requests.get(f"{world.harness.base}/Condition", timeout=10).status_code == 401
    no_purpose = world.brief("ada", "maria", confirmed="true")
    assert no_purpose.status_code == 400  # the token's purpose is not the request's
    rows = audits_since(world, before)
    assert [r["outcome"] for r in rows] == ["REFUSED", "REFUSED"]
    assert rows[1]["recipient"] == "ada" and rows[1]["patient"] == "Patient/maria"


def test_reports_are_audited_against_their_patient_and_ledger_rows_name_tpo(world: World) -> None:
    world.get("ada", "Condition/maria-oud")
    cora = world.token("cora")
    before = last_seq(world)
    report = requests.get(f"{world.harness.root}/compliance/disclosures", params={"patient": "Patient/maria"},
                          headers={"Authorization": f"Bearer {cora}"}, timeout=10)  # fmt: skip
    assert report.status_code == 200
    (row,) = [r for r in report.json()["rows"] if r["item"] == "Condition/maria-oud"]
    assert row["basis"] == "consent" and row["consents"] == ["maria-tpo"] and row["tpo"] is True
    audited = audits_since(world, before)
    assert [(r["recipient"], r["patient"]) for r in audited] == [("cora", "Patient/maria")]


def test_police_asking_is_alerted_even_when_nothing_is_released(world: World) -> None:
    before = last_seq(world)
    answer = world.brief("lee", "dana", purpose="crisis-coordination", confirmed="true")
    assert answer.status_code == 404
    (row,) = audits_since(world, before)
    assert row["outcome"] == "DENY"
    assert [a["code"] for a in row["body"]["alerts"]] == ["police-request"]


# -- 9. the demo tells the truth ---------------------------------------------------------------------------
def test_the_demo_registers_its_part2_program_and_holds_consents_of_each_kind(tmp_path: Any) -> None:
    from gateway.demo import demo_resources, load_demo
    from gateway.settings import load_settings
    from gateway.store.database import open_database

    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", base_url="http://demo/fhir")
    load_demo(settings, patients=12)
    database = open_database(settings.database_url)
    from gateway.app import build_engine

    engine = build_engine(settings, database, operator=True)
    otp_condition = next(r for r in demo_resources(12) if r["resourceType"] == "Condition"
                         and r["code"]["coding"][0]["code"].startswith("F11"))  # fmt: skip
    with engine.store.unit_of_work(False) as (repository, _):
        stored = repository.read("Condition", otp_condition["id"])
        consents, _ = repository.search(engine._parse_search("Consent", [("_count", "100")], strict=True))
    database.dispose()
    assert stored is not None and "42CFRPart2" in {c["code"] for c in stored.content["meta"]["security"]}
    kinds = {c["code"] for s in consents for cat in s.content["category"] for c in cat["coding"]
             if c["system"].endswith("consent-kind")}  # fmt: skip
    assert {"part2-tpo", "part2-specific", "part2-intermediary", "part2-counseling-notes", "opt-out"} <= kinds


# -- properties over HTTP, in the county world ---------------------------------------------------------------
USERS = ["ada", "sam", "dee", "eve", "lee", "cora"]
PEOPLE = ["maria", "dana", "omar", "june", "nora", "lena"]


def _asked(world: World, user: str, purpose: str, how: str, person: str) -> requests.Response:
    headers = {"X-Purpose-Of-Use": purpose}
    if purpose == "BTG":
        headers["X-Emergency-Nature"] = "not breathing"
    if how == "brief":
        params = {"purpose": purpose, "confirmed": "true"} | ({"reason": "not breathing"} if purpose == "BTG" else {})
        return world.harness.get(f"Patient/{person}/$responder-brief", world.token(user), params=params)
    if how == "search":
        return world.harness.get("Condition", world.token(user), params={"patient": f"Patient/{person}"},
                                 headers=headers)  # fmt: skip
    return world.harness.get(f"Patient/{person}", world.token(user), headers=headers)


def _comparable(response: requests.Response, person: str) -> tuple[int, Any]:
    body = response.json()
    if body.get("resourceType") == "Bundle":
        body = {k: v for k, v in body.items() if k not in ("id", "meta", "link")}
    return response.status_code, json.loads(json.dumps(body).replace(person, "X").replace("nobody-here", "X"))


def test_properties_over_http(world: World) -> None:
    """For any user, purpose, person and way of asking: (d) one audit record per request; (a) the
    items in the answer are the items the record says were released, and the ledger rows are the
    Part 2 ones among them; (c) a DENY is answered exactly as for someone not on file."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    for user in USERS:
        world.token(user)

    @settings(max_examples=150, deadline=None)
    @given(st.sampled_from(USERS), st.sampled_from(["TREAT", "ETREAT", "BTG", "crisis-coordination", "law-enforcement"]),
           st.sampled_from(["brief", "search", "read"]), st.sampled_from(PEOPLE))  # fmt: skip
    def check(user: str, purpose: str, how: str, person: str) -> None:
        before = last_seq(world)
        answer = _asked(world, user, purpose, how, person)
        rows = audits_since(world, before)
        assert len(rows) == 1  # (d)
        assert answer.status_code in (200, 404), answer.text
        sent = items_in(answer.json()) if answer.status_code == 200 else set()
        assert sent == released_in(rows)  # (a)
        assert ledger_since(world, before) <= sent and ledger_since(world, before) == part2(world, sent) - {
            r["item"] for d in rows[0]["body"]["decisions"] for r in d["released"]
            if r["basis"]["kind"] not in ("consent", "emergency")
        }  # fmt: skip
        if rows[0]["outcome"] == "DENY":  # (c)
            unknown = _asked(world, user, purpose, how, "nobody-here")
            assert _comparable(answer, person) == _comparable(unknown, person)

    check()
