"""The compliance console over real HTTP, in the county world: officers with a second factor only,
every view of a person's data audited, who saw the record (and its CSV), emergency reviews
signed off."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from pypdf import PdfReader
from sqlalchemy import select

from gateway.store.schema import audit_event, disclosure
from tests.conftest import LiveServer
from tests.gateway.auth.harness import PASSWORD, Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.world import OTP, World


@pytest.fixture()
def world(smart_server: LiveServer) -> World:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_app()
    built = county.build(harness)
    harness.accounts.add_user(username="olive", password=PASSWORD, display_name="Olive Grant", role="compliance-officer",
                              organization=OTP, totp=True)  # fmt: skip
    return built


def signed_in(world: World, username: str = "olive") -> tuple[requests.Session, requests.Response]:
    """A browser signing in from the console's own link: the sign-in page, then back to the console."""
    browser = requests.Session()
    console = f"{world.harness.root}/console/"
    to_login = browser.get(console, allow_redirects=False, timeout=10)
    assert to_login.status_code == 303 and "/auth/login?next=/console/" in to_login.headers["Location"]
    login = browser.get(world.harness.root + to_login.headers["Location"], timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf
    user = world.harness.accounts.user(username)
    code = pyotp.TOTP(user.totp_secret).now() if user and user.totp_secret else ""
    landed = browser.post(f"{world.harness.root}/auth/login", timeout=10, data={
        "csrf_token": csrf.group(1), "next": "/console/", "username": username, "password": PASSWORD, "totp": code})  # fmt: skip
    return browser, landed


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_only_compliance_officers_with_a_second_factor_open_the_console(world: World) -> None:
    _, page = signed_in(world)
    assert page.status_code == 200 and page.url.endswith("/console/") and "Compliance dashboard" in page.text
    assert (
        page.headers["Cache-Control"] == "no-store" and "default-src 'none'" in page.headers["Content-Security-Policy"]
    )
    _, cora = signed_in(world, "cora")  # a compliance officer without a second factor
    assert cora.status_code == 403 and "second factor" in cora.text
    _, ada = signed_in(world, "ada")
    assert ada.status_code == 403 and "for compliance officers" in ada.text
    assert requests.get(f"{world.harness.root}/console/patient?patient=maria", allow_redirects=False,
                        timeout=10).status_code == 303  # fmt: skip


def test_who_saw_this_record_and_every_view_of_it_audited(world: World) -> None:
    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200
    browser, _ = signed_in(world)
    page = browser.get(f"{world.harness.root}/console/patient", params={"patient": "maria"}, timeout=10)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = page.text
    assert "Consent/maria-tpo" in text and 'class="standing-in-force">in force' in text
    disclosed = re.findall(r"<tr><td>\d{4}-\d\d-\d\d \d\d:\d\d</td><td>([^<]+)</td>", text)
    assert disclosed and set(disclosed) == {"Ada Lovelace"}  # the OTP's items went to the clinician, and only
    assert "<td>Eastside Recovery Services (OTP)</td>" in text  # organizations by name, not by reference
    spreadsheet = browser.get(f"{world.harness.root}/console/patient/disclosures.csv", params={"patient": "maria"},
                              timeout=10)  # fmt: skip
    assert spreadsheet.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(spreadsheet.text)))
    assert len(rows) == len(disclosed) and {r["recipient_user"] for r in rows} == {"ada"}
    assert {r["item"] for r in rows} >= {"Condition/maria-oud", "MedicationStatement/maria-bup"}
    letter = browser.get(f"{world.harness.root}/console/patient/disclosures.pdf", params={"patient": "maria"},
                         timeout=10)  # fmt: skip
    assert letter.headers["Content-Type"] == "application/pdf" and letter.headers["Cache-Control"] == "no-store"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.content)).pages)
    text = " ".join(text.split())
    assert "Disclosures of your substance-use treatment records" in text and "For Maria Rivera (Patient/maria)" in text
    assert "Opioid dependence" in text and "Eastside Recovery Services (OTP)" in text
    assert f"{len(rows)} disclosures in all" in text
    with world.database().connect() as connection:
        views = connection.execute(select(audit_event.c.interaction, audit_event.c.patient)
                                   .where(audit_event.c.recipient == "olive")).all()  # fmt: skip
    assert ("compliance-patient", "Patient/maria") in views
    assert ("compliance-patient_disclosures_csv", "Patient/maria") in views
    assert ("compliance-patient_disclosures_pdf", "Patient/maria") in views
    refused = browser.get(f"{world.harness.root}/console/patient", params={"patient": "../etc"}, timeout=10)
    assert refused.status_code == 400 and "Give the person" in refused.text


def test_an_emergency_access_is_reviewed_and_signed_off(world: World) -> None:
    assert world.brief("ada", "dana", purpose="BTG", reason="unresponsive, suspected overdose",
                       confirmed="true").status_code == 200  # fmt: skip
    browser, dashboard = signed_in(world)
    assert "<strong>1</strong> emergency access awaiting review" in dashboard.text
    assert "emergency-access: 1" in dashboard.text
    reviews = browser.get(f"{world.harness.root}/console/reviews", timeout=10)
    assert "unresponsive, suspected overdose" in reviews.text and "Condition/dana-oud" in reviews.text
    action = re.search(r'action="(/console/reviews/\d+)"', reviews.text)
    assert action
    empty = browser.post(world.harness.root + action.group(1), data={"csrf_token": csrf_of(reviews.text), "note": " "},
                         timeout=10)  # fmt: skip
    assert empty.status_code == 400 and "Say what the review found" in empty.text
    forged = browser.post(world.harness.root + action.group(1), data={"csrf_token": "x", "note": "fine"}, timeout=10)
    assert "awaiting review" in forged.text and "signed off" not in forged.text
    done = browser.post(world.harness.root + action.group(1), timeout=10, data={
        "csrf_token": csrf_of(reviews.text), "note": "Bona fide: overdose confirmed by EMS run sheet."})  # fmt: skip
    assert done.status_code == 200 and "signed off" in done.text and "Nothing awaits review" in done.text
    again = browser.post(world.harness.root + action.group(1), data={"csrf_token": csrf_of(reviews.text),
                                                                      "note": "twice"}, timeout=10)  # fmt: skip
    assert again.status_code == 409
    person = browser.get(f"{world.harness.root}/console/patient", params={"patient": "Patient/dana"}, timeout=10)
    assert "reviewed by olive: Bona fide: overdose confirmed by EMS run sheet." in person.text


def test_the_audit_chains_are_verified_on_demand(world: World) -> None:
    browser, dashboard = signed_in(world)
    verified = browser.post(f"{world.harness.root}/console/audit/verify", data={"csrf_token": csrf_of(dashboard.text)},
                            timeout=10)  # fmt: skip
    assert verified.status_code == 200
    assert re.search(r"<td>audit_event</td><td>\d+</td><td>intact</td>", verified.text), verified.text[-800:]


SIGNED_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >>"
              b" endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")  # fmt: skip


def intake(browser: requests.Session, world: World, fields: list[tuple[str, str]],
           pdf: bytes | None = SIGNED_PDF) -> requests.Response:  # fmt: skip
    """The intake form as an officer fills it in and sends it (multipart, with the signed form)."""
    form = browser.get(f"{world.harness.root}/console/consents/new", params={"kind": "part2-specific"}, timeout=10)
    assert form.status_code == 200
    files = {"signed_form": ("signed-consent.pdf", pdf, "application/pdf")} if pdf is not None else None
    return browser.post(f"{world.harness.root}/console/consents/new", timeout=10, files=files,
                        data=[("csrf_token", csrf_of(form.text)), ("kind", "part2-specific"), *fields])  # fmt: skip


DANA_FOR_THE_CRISIS_TEAM = [
    ("patient", "Patient/dana"), ("disclosers", OTP), ("recipients", county.CRISIS), ("purposes", "TREAT"),
    *(("classes", c) for c in ("STATUS", "CONTACT", "DX", "MED")), ("end_of_treatment", "yes"),
    ("signed", "2026-12-01"), ("signer_role", "patient"), ("statements", "revocation"),
]  # fmt: skip


def test_a_consent_taken_in_at_a_desk_releases_and_its_revocation_stops_it(world: World) -> None:
    assert world.brief("ada", "dana", purpose="TREAT", confirmed="true").status_code == 404  # no consent yet
    browser, _ = signed_in(world)
    saved = intake(browser, world, DANA_FOR_THE_CRISIS_TEAM)
    assert saved.status_code == 200 and "saved." in saved.text, saved.text[-1500:]
    consent_id = re.search(r"Consent/([0-9a-f-]{36}) saved", saved.text)
    assert consent_id and "in force" in saved.text
    stored = world.harness.app.extensions["fhir_engine"].store
    with stored.unit_of_work(False) as (repository, _):
        content = repository.read("Consent", consent_id.group(1)).content
    assert content["sourceAttachment"]["contentType"] == "application/pdf"
    assert content["sourceAttachment"]["title"] == "signed-consent.pdf" and content["sourceAttachment"]["size"] == len(
        SIGNED_PDF
    )
    brief = world.brief("ada", "dana", purpose="TREAT", confirmed="true")
    assert brief.status_code == 200 and "Opioid dependence" in brief.text
    revoke = browser.post(f"{world.harness.root}/console/consents/{consent_id.group(1)}/revoke", timeout=10,
                          data={"csrf_token": csrf_of(saved.text), "effective": ""})  # fmt: skip
    assert revoke.status_code == 200 and "revoked." in revoke.text and ">revoked<" in revoke.text
    assert world.brief("ada", "dana", purpose="TREAT", confirmed="true").status_code == 404
    with world.database().connect() as connection:
        writes = connection.execute(select(audit_event.c.interaction).where(audit_event.c.recipient == "olive",
                                    audit_event.c.interaction.in_(("create", "update")))).scalars().all()  # fmt: skip
    assert writes == ["update", "update"]  # saved (a PUT that creates) and revoked, through the router, each audited


def test_an_invalid_consent_names_each_missing_element_and_nothing_is_saved(world: World) -> None:
    browser, _ = signed_in(world)
    incomplete = [(k, v) for k, v in DANA_FOR_THE_CRISIS_TEAM if k not in ("signed", "statements", "purposes")]
    refused = intake(browser, world, incomplete, pdf=None)
    assert refused.status_code == 400 and "cannot be saved yet" in refused.text
    for element in ("2.31(a)(9): the date signed", "2.31(a)(8): the signed form", "2.31(a)(5): the purpose",
                    "2.31(a)(6): the statement of the right to revoke"):  # fmt: skip
        assert element in refused.text
    assert 'value="Patient/dana"' in refused.text  # what was typed stays
    not_a_pdf = intake(browser, world, DANA_FOR_THE_CRISIS_TEAM, pdf=b"MZ\x90\x00 an executable")
    assert not_a_pdf.status_code == 400 and "must be a PDF" in not_a_pdf.text
    too_big = intake(browser, world, DANA_FOR_THE_CRISIS_TEAM, pdf=b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024) + b"%%EOF")
    assert too_big.status_code == 400 and "larger than 5 MB" in too_big.text
    nobody = intake(browser, world, [("patient", "Patient/nobody"), *DANA_FOR_THE_CRISIS_TEAM[1:]])
    assert nobody.status_code == 400 and "No person Patient/nobody is on file" in nobody.text
    stored = world.harness.app.extensions["fhir_engine"].store
    with stored.unit_of_work(False) as (repository, _):
        assert not [c for c in repository.compartment("dana", ["Consent"])]


def test_a_consent_replaced_by_a_new_one_is_revoked_and_says_by_which(world: World) -> None:
    browser, _ = signed_in(world)
    first = intake(browser, world, DANA_FOR_THE_CRISIS_TEAM)
    old = re.search(r"Consent/([0-9a-f-]{36}) saved", first.text)
    assert old
    second = intake(browser, world, [*DANA_FOR_THE_CRISIS_TEAM, ("supersedes", f"Consent/{old.group(1)}"),
                                     ("classes", "LAB")])  # fmt: skip
    new = re.search(r"Consent/([0-9a-f-]{36}) saved", second.text)
    assert new and new.group(1) != old.group(1)
    stored = world.harness.app.extensions["fhir_engine"].store
    with stored.unit_of_work(False) as (repository, _):
        content = repository.read("Consent", old.group(1)).content
    assert content["status"] == "inactive"
    assert {"url": "https://crisis-fhir-gateway.org/fhir/StructureDefinition/consent-superseded-by",
            "valueReference": {"reference": f"Consent/{new.group(1)}"}} in content["extension"]  # fmt: skip


def preview_rows(page: str) -> dict[str, str]:
    """The preview table: each role's name and what it would see (tags stripped)."""
    table = page[page.index('<table class="preview">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<th scope="row">(.*?)<br>.*?</th>\s*<td>(.*?)</td>', table, re.S)
    return {name: re.sub(r"<[^>]+>", " ", seen) for name, seen in rows}


def test_who_can_see_this_person_now_by_role(world: World) -> None:
    browser, _ = signed_in(world)
    page = browser.get(f"{world.harness.root}/console/patient", params={"patient": "maria"}, timeout=10)
    seen = preview_rows(page.text)
    assert "Diagnoses: " in seen["Crisis clinician"] and "Medications: " in seen["Crisis clinician"]
    assert "Diagnoses" not in seen["Peer support specialist"]  # minimum necessary: the role's classes
    assert "Nothing" in seen["Police officer"]  # no consent names the police
    omar = preview_rows(browser.get(f"{world.harness.root}/console/patient", params={"patient": "omar"},
                                    timeout=10).text)  # fmt: skip
    assert "Whether and where the person is in treatment" in omar["Police officer"]  # a consent names them
    assert "Diagnoses" not in omar["Police officer"]
    with world.database().connect() as connection:  # a simulation discloses nothing: no ledger rows for it
        ledger = connection.execute(select(disclosure.c.recipient)).scalars().all()
    assert not [r for r in ledger if r.startswith("preview:")]


def test_try_this_consent_before_saving_it(world: World) -> None:
    browser, _ = signed_in(world)
    form = browser.get(f"{world.harness.root}/console/consents/new", params={"kind": "part2-specific"}, timeout=10)
    fields = [("patient", "Patient/dana"), ("disclosers", OTP), ("recipients", county.CRISIS), ("purposes", "TREAT"),
              ("classes", "DX"), ("classes", "MED"), ("action", "preview")]  # fmt: skip
    tried = browser.post(f"{world.harness.root}/console/consents/new", timeout=10,
                         data=[("csrf_token", csrf_of(form.text)), ("kind", "part2-specific"), *fields])  # fmt: skip
    assert tried.status_code == 200 and "With this consent, each role would see" in tried.text
    seen = preview_rows(tried.text)
    assert "Diagnoses: " in seen["Crisis clinician"] and "Medications: " in seen["Crisis clinician"]
    assert "Lab results" not in seen["Crisis clinician"]  # not among the classes it names
    assert "Nothing" in seen["Police officer"]
    assert "2.31(a)(9)" in tried.text  # and what is still missing before it can be saved
    stored = world.harness.app.extensions["fhir_engine"].store
    with stored.unit_of_work(False) as (repository, _):
        assert not list(repository.compartment("dana", ["Consent"]))  # nothing saved
    assert world.brief("ada", "dana", purpose="TREAT", confirmed="true").status_code == 404
    with world.database().connect() as connection:  # the preview is a view of dana's record: audited
        assert connection.execute(select(audit_event.c.seq).where(audit_event.c.recipient == "olive",
                                  audit_event.c.patient == "Patient/dana")).first() is not None  # fmt: skip


def test_an_audit_package_verifies_offline_and_shows_tampering(world: World, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import main

    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200
    assert world.brief("ada", "june", purpose="TREAT", confirmed="true").status_code in (200, 404)  # someone else
    browser, _ = signed_in(world)
    answer = browser.get(f"{world.harness.root}/console/audit/package", params={"patient": "maria"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    package = answer.json()
    events = package["chains"]["audit_event"]["rows"]
    # Each names maria: alone, or among the people a request was about (an officer's dashboard).
    assert events and all(e["content"]["patient"] == "Patient/maria" or "Patient/maria" in
                          e["content"]["body"].get("patients", []) for e in events)  # fmt: skip
    ledger = package["chains"]["disclosure"]["rows"]
    assert ledger and {r["content"]["patient"] for r in ledger} == {"Patient/maria"}
    skeleton = package["chains"]["audit_event"]["skeleton"]
    assert len(skeleton) > len(events)  # the stretch of chain between, without other people's content
    path = tmp_path / "package.json"

    def verify(content: dict[str, Any]) -> Any:
        path.write_text(json.dumps(content))
        return CliRunner().invoke(main, ["audit", "verify", "--file", str(path)])

    good = verify(package)
    assert good.exit_code == 0 and "selected records verify; the chain is unbroken" in good.output, good.output
    changed = json.loads(json.dumps(package))
    changed["chains"]["disclosure"]["rows"][0]["content"]["recipient"] = "someone-else"
    assert verify(changed).exit_code == 1 and "does not match its hash" in verify(changed).output
    removed = json.loads(json.dumps(package))
    del removed["chains"]["audit_event"]["skeleton"][1]
    assert verify(removed).exit_code == 1 and "the chain breaks" in verify(removed).output
    assert browser.get(f"{world.harness.root}/console/audit/package", timeout=10).status_code == 400
    with world.database().connect() as connection:
        shown = connection.execute(select(audit_event.c.interaction).where(audit_event.c.recipient == "olive",
                                   audit_event.c.patient == "Patient/maria")).scalars().all()  # fmt: skip
    assert "compliance-audit_package" in shown  # the package's release is itself audited


def test_the_dashboard_watches_patterns_and_consent_coverage(world: World) -> None:
    token = world.token("ada")
    for _ in range(3):  # the same unconfirmed look-up, again and again
        found = requests.post(f"{world.harness.base}/Patient/$responder-match", params={"purpose": "TREAT"}, timeout=10,
                              json={"resourceType": "Parameters", "parameter": [
                                  {"name": "given", "valueString": "Maria"}, {"name": "family", "valueString": "Rivera"}]},
                              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})  # fmt: skip
        assert found.status_code == 200 and "probable" in found.text, found.text[:300]
    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200  # the team is on scene
    assert (
        world.brief("ada", "dana", purpose="BTG", reason="overdose", confirmed="true").status_code == 200
    )  # no dispatch
    _, dashboard = signed_in(world)
    text = dashboard.text
    probable = text[text.index("Repeated probable-match views") : text.index("Look-ups with no dispatch")]
    assert re.search(r"<td>ada</td><td>3</td><td>1</td>", probable), probable
    undispatched = text[text.index("Look-ups with no dispatch") : text.index("Consent coverage per Part 2 program")]
    assert "Patient/dana" in undispatched and "Patient/maria" not in undispatched
    coverage = re.search(r"<td>Eastside Recovery Services \(OTP\)</td><td>(\d+)</td><td>(\d+)</td>", text)
    assert coverage, text[text.index("Consent coverage") :][:1500]
    people, covered = int(coverage.group(1)), int(coverage.group(2))
    assert 1 <= covered < people  # maria's TPO consent covers her; dana has none


def test_the_hipaa_accounting_lists_what_went_out_on_a_court_order(world: World) -> None:
    from gateway.fhir.context import FhirRequest, Requester
    from tests.gateway.consent.test_part2_rest import COUNSEL_OFFICE, court_order

    world.harness.add_user("kerr", role="legal-counsel", organization=COUNSEL_OFFICE, practitioner=None)
    officer = Requester(source="user:olive", username="olive", role="compliance-officer", scopes=("user/Consent.cru",))
    engine = world.harness.app.extensions["fhir_engine"]
    engine.handle(
        FhirRequest(
            "PUT",
            "Consent/order-118",
            body=court_order("order-118"),
            requester=officer,
            headers={"prefer": "return=minimal"},
        )
    )
    read = world.harness.get("Condition", world.token("kerr"), params={"patient": "Patient/maria"},
                             headers={"X-Purpose-Of-Use": "legal-proceeding"})  # fmt: skip
    assert "maria-oud" in read.text
    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200  # treatment: not listed
    browser, _ = signed_in(world)
    page = browser.get(f"{world.harness.root}/console/patient", params={"patient": "maria"}, timeout=10).text
    accounting = page[page.index("HIPAA accounting") : page.index("Through an intermediary")]
    assert "court-order (Consent/order-118)" in accounting and "Condition: Opioid dependence" in accounting
    assert accounting.count("<tr><td>") == 1  # the one item on the order; the clinician's brief is treatment


def test_subpoenas_are_answered_and_police_requests_listed(world: World) -> None:
    import base64

    document = b"%PDF-1.4 subpoena duces tecum %%EOF"
    submitted = requests.post(f"{world.harness.root}/legal/subpoenas", timeout=10, json={
        "document": {"contentType": "application/pdf", "data": base64.b64encode(document).decode()},
        "person": {"name": "Maria Rivera", "birthDate": "1988-04-12"}, "issuer": "Superior Court of Bay County",
        "case": "CV-2026-0042", "due": "2026-12-20"}, headers={"Authorization": f"Bearer {world.token('lee')}"})  # fmt: skip
    assert submitted.status_code == 202, submitted.text
    receipt = submitted.json()["receipt"]
    world.brief("lee", "maria", purpose="crisis-coordination", confirmed="true")  # a police request, alerted
    browser, _ = signed_in(world)
    queue = browser.get(f"{world.harness.root}/console/requests", timeout=10)
    assert queue.status_code == 200 and "Superior Court of Bay County, case CV-2026-0042" in queue.text
    assert "police-request" in queue.text and "Patient/maria" in queue.text
    opened = browser.get(f"{world.harness.root}/console/subpoenas/{receipt}/document", timeout=10)
    assert opened.content == document and opened.headers["Content-Type"] == "application/pdf"
    answered = browser.post(f"{world.harness.root}/console/subpoenas/{receipt}", timeout=10, data={
        "csrf_token": csrf_of(queue.text), "note": "Objected: a subpoena alone cannot compel Part 2 records."})  # fmt: skip
    assert answered.status_code == 200 and "answered." in answered.text and "No subpoena awaits" in answered.text
    again = browser.post(f"{world.harness.root}/console/subpoenas/{receipt}", timeout=10,
                         data={"csrf_token": csrf_of(queue.text), "note": "again"})  # fmt: skip
    assert again.status_code == 409
    dashboard = browser.get(f"{world.harness.root}/console/", timeout=10).text
    assert re.search(r"<strong>1</strong> police and legal request awaiting a decision", dashboard)
    decide = re.search(r'action="(/console/requests/\d+)"', queue.text)
    assert decide
    decided = browser.post(world.harness.root + decide.group(1), timeout=10, data={
        "csrf_token": csrf_of(queue.text), "note": "No action: the police were told nothing; no consent names them."})  # fmt: skip
    assert decided.status_code == 200 and "olive: No action" in decided.text
    assert browser.post(world.harness.root + decide.group(1), data={"csrf_token": csrf_of(queue.text), "note": "x"},
                        timeout=10).status_code == 409  # fmt: skip
    assert "<strong>0</strong> police and legal requests awaiting" in browser.get(f"{world.harness.root}/console/",
                                                                                   timeout=10).text  # fmt: skip


def test_a_court_order_registered_on_a_page_releases_its_scope_to_its_recipient(world: World) -> None:
    from tests.gateway.consent.test_part2_rest import COUNSEL_OFFICE

    world.push("crisis", county.organization(COUNSEL_OFFICE, "Office of the County Counsel", provider=False))
    world.harness.add_user("kerr", role="legal-counsel", organization=COUNSEL_OFFICE, practitioner=None)

    def counsel_reads() -> str:
        return world.harness.get("Condition", world.token("kerr"), params={"patient": "Patient/maria"},
                                 headers={"X-Purpose-Of-Use": "legal-proceeding"}).text  # fmt: skip

    assert "maria-oud" not in counsel_reads()
    browser, _ = signed_in(world)
    form = browser.get(f"{world.harness.root}/console/orders/new", params={"patient": "Patient/maria"}, timeout=10)
    fields = [("csrf_token", csrf_of(form.text)), ("patient", "Patient/maria"),
              ("court", "Superior Court of Bay County, case 26-CV-118"), ("section", "2.64"), ("holders", OTP),
              ("recipients", COUNSEL_OFFICE), ("purposes", "legal-proceeding"), ("classes", "DX"),
              ("issued", "2026-11-01"), ("expires", "2027-02-01")]  # fmt: skip
    lacking = browser.post(f"{world.harness.root}/console/orders/new", data=fields, timeout=10)
    assert lacking.status_code == 400
    for missing in ("the required findings are not recorded", "no notice and opportunity", "the signed order"):
        assert missing in lacking.text
    saved = browser.post(f"{world.harness.root}/console/orders/new", timeout=10,
                         data=[*fields, ("findings", "yes"), ("notice", "yes")],
                         files={"signed_form": ("order.pdf", SIGNED_PDF, "application/pdf")})  # fmt: skip
    assert saved.status_code == 200 and "saved." in saved.text and "court-order" in saved.text
    released = counsel_reads()
    assert "maria-oud" in released and "maria-bup" not in released  # exactly its scope: the OTP's diagnoses


def test_a_one_off_recipient_is_registered_and_offered_to_consents(world: World) -> None:
    browser, _ = signed_in(world)
    form = browser.get(f"{world.harness.root}/console/recipients/new", timeout=10)
    bad = browser.post(f"{world.harness.root}/console/recipients/new", timeout=10,
                       data={"csrf_token": csrf_of(form.text), "name": "Dr. Osei's family practice", "npi": "12345"})  # fmt: skip
    assert bad.status_code == 400 and "10 digits" in bad.text
    made = browser.post(f"{world.harness.root}/console/recipients/new", timeout=10, data={
        "csrf_token": csrf_of(form.text), "name": "Dr. Osei's family practice", "npi": "1234567893",
        "provider": "yes", "phone": "555-0777"})  # fmt: skip
    assert made.status_code == 201 and "is registered as Organization/" in made.text
    consent_form = browser.get(
        f"{world.harness.root}/console/consents/new", params={"kind": "part2-specific"}, timeout=10
    )
    assert "Dr. Osei&#39;s family practice" in consent_form.text


def test_a_consent_may_name_a_person_and_a_persons_alerts_are_on_their_record(world: World) -> None:
    world.push(
        "crisis", {"resourceType": "Practitioner", "id": "ada", "name": [{"family": "Lovelace", "given": ["Ada"]}]}
    )
    browser, _ = signed_in(world)
    form = browser.get(f"{world.harness.root}/console/consents/new", params={"kind": "part2-specific"}, timeout=10)
    assert 'value="Practitioner/ada"' in form.text and "Or people by name" in form.text
    named = [(k, v) for k, v in DANA_FOR_THE_CRISIS_TEAM if k != "recipients"] + [("recipients", "Practitioner/ada")]
    saved = intake(browser, world, named)
    assert saved.status_code == 200 and "saved." in saved.text, saved.text[-1200:]
    assert world.brief("ada", "dana", purpose="TREAT", confirmed="true").status_code == 200  # named: Ada herself
    assert world.brief("eve", "dana", purpose="TREAT", confirmed="true").status_code == 404  # another clinician
    world.brief("lee", "dana", purpose="crisis-coordination", confirmed="true")
    page = browser.get(f"{world.harness.root}/console/patient", params={"patient": "dana"}, timeout=10).text
    alerts = page[page.index("Alerts about this person") :]
    assert "police-request" in alerts and "lee" in alerts
