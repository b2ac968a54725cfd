"""The compliance console over real HTTP, in the county world: officers with a second factor only,
every view of a person's data audited, who saw the record (and its CSV), emergency reviews
signed off."""

from __future__ import annotations

import csv
import io
import re

import pyotp
import pytest
import requests
from sqlalchemy import select

from gateway.store.schema import audit_event
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
    with world.database().connect() as connection:
        views = connection.execute(select(audit_event.c.interaction, audit_event.c.patient)
                                   .where(audit_event.c.recipient == "olive")).all()  # fmt: skip
    assert ("compliance-patient", "Patient/maria") in views
    assert ("compliance-patient_disclosures_csv", "Patient/maria") in views
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
