"""The rest of Part 2 over HTTP in the county world: minors and their signers (§2.14), incapacity
(§2.15(a)), deceased patients (§2.15(b)). Each scenario checks the answer, the ledger and the
audit together."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.store.schema import disclosure
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.test_scenarios import audits_since, items_in, last_seq, ledger_since, released_in
from tests.gateway.consent.world import (
    ALL_CLINICAL,
    CRISIS,
    OTP,
    TREATING,
    World,
    condition,
    consent,
    episode,
    lab,
    medication,
    person,
    subject,
)

ME_OFFICE = "Organization/county-medical-examiner"


@pytest.fixture()
def world(smart_server: LiveServer) -> World:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_app()
    return county.build(harness)


def on_scene(world: World, patient: str) -> None:
    world.push("crisis", {"resourceType": "Encounter", "id": f"{patient}-crisis-call", "status": "in-progress",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD"},
                          "subject": subject(patient), "serviceProvider": {"reference": CRISIS},
                          "period": {"start": "2026-12-01T10:00:00Z"}})  # fmt: skip


def compliance_report(world: World, name: str) -> list[dict[str, object]]:
    response = world.harness.get(f"../compliance/{name}", world.token("cora"))
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


# -- minors (§2.14) ----------------------------------------------------------------------------------------
def test_a_minors_consent_signed_without_a_parent_is_flagged_and_not_relied_on(world: World) -> None:
    """The default jurisdiction needs a parent for a minor's SUD treatment: the minor and a parent
    both sign. Theo (15 when he signed) signed alone: the consent is listed as "cannot be relied
    on" with §2.14(c)(1), and the brief carries no Part 2 data; once his mother co-signs a new one,
    it does."""
    world.push("otp", person("theo", "Grant", "Theo", "2011-02-02", "555-0909"),
               episode("theo-otp-episode", "theo", OTP, "Adolescent opioid treatment"),
               condition("theo-oud", "theo", "F11.20", "Opioid dependence"),
               consent("theo-tpo", "theo", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                       purposes=["TREAT"], classes=ALL_CLINICAL))  # fmt: skip
    on_scene(world, "theo")
    before = last_seq(world)
    alone = world.brief("ada", "theo", purpose="TREAT", confirmed="true")
    assert "Condition/theo-oud" not in items_in(alone.json()) and ledger_since(world, before) == set()
    flagged = {row["consent"]: row["problems"] for row in compliance_report(world, "consents-not-relied-on")}
    assert any(str(p).startswith("2.14(c)(1)") for p in flagged["Consent/theo-tpo"])  # type: ignore[union-attr]
    decision = audits_since(world, before)[0]["body"]["decisions"][0]
    assert {c["consent"] for c in decision["consents"]["not_relied_on"]} == {"theo-tpo"}

    world.push("otp", consent("theo-tpo-2", "theo", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                              purposes=["TREAT"], classes=ALL_CLINICAL, signed="2026-11-30T10:00:00Z",
                              signers=[("Patient/theo", "patient"), ("RelatedPerson/theo-mother", "parent")]))  # fmt: skip
    before = last_seq(world)
    both = world.brief("ada", "theo", purpose="TREAT", confirmed="true")
    assert "Condition/theo-oud" in items_in(both.json())
    assert ledger_since(world, before) == {"Condition/theo-oud", "EpisodeOfCare/theo-otp-episode", "Patient/theo"}


def test_an_adjudicated_adults_guardian_signs_and_a_program_director_only_for_payment(world: World) -> None:
    world.push("otp", person("ivan", "Petrov", "Ivan", "1961-07-07", "555-0919"),
               episode("ivan-otp-episode", "ivan", OTP, "Methadone maintenance"),
               condition("ivan-oud", "ivan", "F11.20", "Opioid dependence"),
               consent("ivan-director", "ivan", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                       purposes=["TREAT"], classes=ALL_CLINICAL,
                       signers=[("Practitioner/otp-director", "program-director")]))  # fmt: skip
    on_scene(world, "ivan")
    assert "Condition/ivan-oud" not in items_in(world.brief("ada", "ivan", purpose="TREAT", confirmed="true").json())
    flagged = {row["consent"]: row["problems"] for row in compliance_report(world, "consents-not-relied-on")}
    assert any(str(p).startswith("2.15(a)(2)") for p in flagged["Consent/ivan-director"])  # type: ignore[union-attr]
    world.push("otp", consent("ivan-guardian", "ivan", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                              purposes=["TREAT"], classes=ALL_CLINICAL,
                              signers=[("RelatedPerson/ivan-guardian", "guardian")]))  # fmt: skip
    assert "Condition/ivan-oud" in items_in(world.brief("ada", "ivan", purpose="TREAT", confirmed="true").json())


# -- deceased patients (§2.15(b)) ------------------------------------------------------------------------
def deceased_walt(world: World) -> None:
    walt = person("walt", "Ingram", "Walt", "1958-01-15", "555-0929") | {"deceasedDateTime": "2026-11-20T03:15:00Z"}
    world.push("otp", walt, episode("walt-otp-episode", "walt", OTP, "Methadone maintenance"),
               condition("walt-oud", "walt", "F11.20", "Opioid dependence"),
               medication("walt-methadone", "walt", "864706", "methadone hydrochloride 10 MG Oral Tablet"),
               lab("walt-tox", "walt"),
               consent("walt-tpo", "walt", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                       purposes=["TREAT"], classes=ALL_CLINICAL))  # fmt: skip
    on_scene(world, "walt")
    world.harness.add_user("okafor", role="medical-examiner", organization=ME_OFFICE, practitioner=None)


def test_a_deceased_patient_has_no_crisis_brief(world: World) -> None:
    deceased_walt(world)
    before = last_seq(world)
    answer = world.brief("ada", "walt", purpose="TREAT", confirmed="true")
    nobody = world.brief("ada", "nobody-here", purpose="TREAT", confirmed="true")
    assert answer.status_code == nobody.status_code
    assert answer.content.replace(b"walt", b"X") == nobody.content.replace(b"nobody-here", b"X")
    emergency = world.brief("ada", "walt", purpose="BTG", reason="unresponsive", confirmed="true")
    assert emergency.status_code == nobody.status_code  # no emergency for the dead: "nothing on file" again
    assert ledger_since(world, before) == set()
    reasons = {r for row in audits_since(world, before) for d in row["body"].get("decisions", [])
               for r in d.get("reasons", [])}  # fmt: skip
    assert "patient-deceased" in reasons


def test_the_medical_examiner_gets_the_cause_of_death_classes_with_the_2_15_b_basis(world: World) -> None:
    deceased_walt(world)
    before = last_seq(world)
    headers = {"X-Purpose-Of-Use": "cause-of-death"}
    token = world.token("okafor")
    found: set[str] = set()
    for resource_type in ("Condition", "MedicationStatement", "Observation", "EpisodeOfCare"):
        bundle = world.harness.get(resource_type, token, params={"patient": "Patient/walt"}, headers=headers).json()
        found |= items_in(bundle)
    assert found == {"Condition/walt-oud", "MedicationStatement/walt-methadone", "Observation/walt-tox"}
    assert ledger_since(world, before) == found == released_in(audits_since(world, before))
    with world.database().connect() as connection:
        rows = connection.execute(select(disclosure.c.body).where(disclosure.c.audit_seq > before)).scalars().all()
    assert rows and all(r["basis"] == "cause-of-death" and "2.15(b)(1)" in r["citation"] for r in rows)
    # The same officer of the same office, asking for another purpose or about the living, gets nothing.
    other = world.harness.get(
        "Condition", token, params={"patient": "Patient/walt"}, headers={"X-Purpose-Of-Use": "TREAT"}
    )
    assert items_in(other.json()) == set()
    living = world.harness.get("Condition", token, params={"patient": "Patient/maria"}, headers=headers)
    assert items_in(living.json()) == set()


def test_after_death_the_patients_own_consent_is_not_relied_on(world: World) -> None:
    """A clinician's ordinary read after the death: the TPO consent Walt signed in life is no longer
    relied on; the personal representative's consent is."""
    deceased_walt(world)
    token = world.token("ada")
    assert items_in(world.harness.get("Condition", token, params={"patient": "Patient/walt"}).json()) == set()
    world.push("otp", consent("walt-estate", "walt", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                              purposes=["TREAT"], classes=ALL_CLINICAL, signed="2026-11-25T09:00:00Z",
                              signers=[("RelatedPerson/walt-executor", "personal-representative")]))  # fmt: skip
    assert items_in(world.harness.get("Condition", token, params={"patient": "Patient/walt"}).json()) == {
        "Condition/walt-oud"
    }
