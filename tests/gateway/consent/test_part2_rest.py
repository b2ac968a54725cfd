"""The rest of Part 2 over HTTP in the county world: minors and their signers (§2.14), incapacity
(§2.15(a)), deceased patients (§2.15(b)). Each scenario checks the answer, the ledger and the
audit together."""

from __future__ import annotations

import base64

import pytest
import requests
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


# -- court orders and subpoenas (§§2.61-2.67) ---------------------------------------------------------------
COUNSEL_OFFICE = "Organization/county-counsel"


def officer_writes(world: World) -> dict[str, str]:
    """Cora, a compliance officer, in the compliance console (an app allowed to write Consents)."""
    world.harness.add_app("compliance-console", scope="openid fhirUser user/*.rs user/Consent.cruds")
    grant = world.harness.app_token(client_id="compliance-console", scope="openid fhirUser user/Consent.cru user/*.rs",
                                    patient=None, username="cora")  # fmt: skip
    return {"Authorization": f"Bearer {grant['access_token']}", "Content-Type": "application/fhir+json"}


def court_order(order_id: str, **changes: object) -> dict[str, object]:
    order = county.profile_example("order-2026-cv-118") | {"id": order_id, "patient": subject("maria")}
    order.update(changes)
    return order


def counsel_reads(world: World, purpose: str = "legal-proceeding") -> set[str]:
    found: set[str] = set()
    for resource_type in ("Condition", "MedicationStatement", "CareTeam"):
        bundle = world.harness.get(resource_type, world.token("kerr"), params={"patient": "Patient/maria"},
                                   headers={"X-Purpose-Of-Use": purpose}).json()  # fmt: skip
        found |= items_in(bundle)
    return found


def test_a_registered_order_releases_its_scope_to_county_counsel_with_ledger_and_alert(world: World) -> None:
    world.harness.add_user("kerr", role="legal-counsel", organization=COUNSEL_OFFICE, practitioner=None)
    assert counsel_reads(world) == set()  # nothing without an order, TPO consent or not
    headers = officer_writes(world)
    created = requests.put(f"{world.harness.base}/Consent/order-118", json=court_order("order-118"), headers=headers,
                           timeout=10)  # fmt: skip
    assert created.status_code == 201, created.text
    before = last_seq(world)
    assert counsel_reads(world) == {"Condition/maria-oud"}  # DX of the OTP only: not the CMHC's, not MED
    assert ledger_since(world, before) == {"Condition/maria-oud"} == released_in(audits_since(world, before))
    with world.database().connect() as connection:
        row = connection.execute(select(disclosure.c.body).where(disclosure.c.audit_seq > before)).scalar_one()
    assert row["basis"] == "court-order" and row["order"] == "order-118" and "2.64" in row["citation"]
    alerts = {a["alert"] for a in compliance_report(world, "alerts") if a["recipient"] == "kerr"}
    assert {"court-order-release", "legal-purpose"} <= alerts
    assert counsel_reads(world, "TREAT") == set()  # the order is for the proceeding only


def test_an_order_missing_its_findings_is_stored_flagged_alerted_and_never_relied_on(world: World) -> None:
    world.harness.add_user("kerr", role="legal-counsel", organization=COUNSEL_OFFICE, practitioner=None)
    order = court_order("order-119")
    order["extension"] = [e for e in order["extension"] if not str(e["url"]).endswith("court-order-findings")]  # type: ignore[union-attr]
    created = requests.put(f"{world.harness.base}/Consent/order-119", json=order, headers=officer_writes(world),
                           timeout=10)  # fmt: skip
    assert created.status_code == 201, created.text
    assert counsel_reads(world) == set()
    flagged = {row["consent"]: row for row in compliance_report(world, "consents-not-relied-on")}
    assert flagged["Consent/order-119"]["kind"] == "court-order"
    assert any("findings" in p for p in flagged["Consent/order-119"]["problems"])  # type: ignore[union-attr]
    assert "court-order-cannot-be-relied-on" in {a["alert"] for a in compliance_report(world, "alerts")}


def test_only_compliance_officers_register_orders(world: World) -> None:
    """An EHR (or anyone but a compliance officer) pushing a court order is refused."""
    with pytest.raises(AssertionError):
        world.push("otp", court_order("order-from-ehr"))
    engine = world.harness.app.extensions["fhir_engine"]
    with engine.store.unit_of_work(False) as (repository, _):
        assert repository.read("Consent", "order-from-ehr") is None


def test_a_subpoena_goes_to_the_queue_and_its_receipt_does_not_say_who_is_a_patient(world: World) -> None:
    world.harness.add_user("ruiz", role="police-officer", organization="Organization/district-attorney",
                           practitioner=None)  # fmt: skip
    token = world.token("ruiz")
    pdf = base64.b64encode(b"%PDF-1.4 subpoena duces tecum").decode()

    def submit(name: str, birth: str) -> requests.Response:
        return requests.post(f"{world.harness.root}/legal/subpoenas", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"document": {"contentType": "application/pdf", "data": pdf},
                                   "person": {"name": name, "birthDate": birth}, "issuer": "Bay County Grand Jury",
                                   "case": "GJ-2026-44", "due": "2026-12-20"})  # fmt: skip

    known, unknown = submit("Maria Rivera", "1988-04-12"), submit("Nobody Here", "1950-01-01")
    assert known.status_code == unknown.status_code == 202
    strip = lambda r: {k: v for k, v in r.json().items() if k != "receipt"}  # noqa: E731
    assert strip(known) == strip(unknown) and "42 CFR 2.61" in known.json()["message"]
    queue = compliance_report(world, "subpoenas")
    assert {row["receipt"] for row in queue} == {known.json()["receipt"], unknown.json()["receipt"]}
    assert {row["person"]["name"] for row in queue} == {"Maria Rivera", "Nobody Here"}  # type: ignore[index]
    assert "subpoena-received" in {a["alert"] for a in compliance_report(world, "alerts")}
    # Nothing was released to the submitter, and the officer records the answer.
    assert items_in(world.harness.get("Condition", token, params={"patient": "Patient/maria"},
                                      headers={"X-Purpose-Of-Use": "legal-proceeding"}).json()) == set()  # fmt: skip
    answered = requests.post(f"{world.harness.root}/compliance/subpoenas/{known.json()['receipt']}", timeout=10,
                             headers={"Authorization": f"Bearer {world.token('cora')}"},
                             json={"note": "Objected: 42 CFR 2.61 requires a court order; told the DA's office."})  # fmt: skip
    assert answered.status_code == 200
    assert [row["receipt"] for row in compliance_report(world, "subpoenas")] == [unknown.json()["receipt"]]
    bad = requests.post(f"{world.harness.root}/legal/subpoenas", json={"person": {"name": "x"}}, timeout=10,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert bad.status_code == 400


# -- public health (§2.54) -------------------------------------------------------------------------------
def test_an_epidemiologist_gets_safe_harbor_counts_and_never_a_line_list(world: World) -> None:
    """Twelve more OTP patients in ZIP 941xx and three in 036xx (an area of 20,000 people or fewer),
    one of them 95: the counts show 941 and 000, the 000 cell suppressed (under 11), ages over 89
    as 90+; a request for names is refused, and a FHIR read by the epidemiologist finds nothing."""
    people = []
    for n in range(15):
        zip_code = "94107" if n < 12 else "03601"
        born = "1931-01-01" if n == 14 else "1980-05-05"
        patient = person(f"ph-{n}", f"Doe{n}", "Pat", born, f"555-1{n:03d}")
        patient["address"] = [{"postalCode": zip_code, "city": "Bayview"}]
        people += [patient, episode(f"ph-episode-{n}", f"ph-{n}", OTP, "Methadone maintenance")]
    world.push("otp", *people)
    world.harness.add_user("ines", role="epidemiologist", organization="Organization/county-public-health",
                           practitioner=None)  # fmt: skip
    token = world.token("ines")
    before = last_seq(world)

    def counts(**params: str) -> requests.Response:
        return requests.get(f"{world.harness.root}/public-health/counts", params={"purpose": "PUBHLTH", **params},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip

    by_zip = counts(**{"group-by": "zip3,program"}).json()
    cells = {(c["zip3"], c["program"]): c["count"] for c in by_zip["cells"]}
    # 12 here and the county world's 3 Part 2 episodes (maria, dana, omar), all in 941xx
    assert cells[("941", "sud")] == 15 and cells[("000", "sud")] is None  # 3 people: suppressed
    assert not any(z not in ("941", "000") for z, _ in cells)
    assert by_zip["suppressed_cells"] >= 1 and by_zip["method"]["zip3_census"] == "2000"
    ages = {c["age-group"] for c in counts(**{"group-by": "age-group"}).json()["cells"]}
    assert "90+" in ages and not any(a.isdigit() for a in ages)
    line_list = counts(**{"group-by": "name,birthDate"})
    assert line_list.status_code == 403 and "line-list-not-de-identified" in line_list.text
    assert counts(**{"group-by": "year", "purpose": "TREAT"}).status_code == 403
    clinician = requests.get(f"{world.harness.root}/public-health/counts", timeout=10,
                             params={"purpose": "PUBHLTH"}, headers={"Authorization": f"Bearer {world.token('ada')}"})  # fmt: skip
    assert clinician.status_code == 403
    rows = audits_since(world, before)
    assert [r["body"]["status"] for r in rows if r["interaction"] == "public-health-counts"] == [
        200,
        200,
        403,
        403,
        403,
    ]
    assert "line-list-refused" in {a["alert"] for a in compliance_report(world, "alerts")}
    read = world.harness.get("Patient/ph-0", token, headers={"X-Purpose-Of-Use": "PUBHLTH"})
    assert read.status_code == 404  # records are never released to public health, only counts
