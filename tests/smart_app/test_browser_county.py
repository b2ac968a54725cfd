"""The responder's journeys in chromium, in the county world, on a 360 px phone and a desktop:
a clinician from sign-in to the recorded outcome and sign-out; a police co-responder seeing less;
a dispatch launch opening straight onto the brief; emergency access with its window; a denial
that reads as "no record found". axe-core finds nothing serious on any page, the CSP refuses
nothing, and the screenshots in docs/screenshots/ are taken here."""

from __future__ import annotations

import requests
from playwright.sync_api import Page

from tests.gateway.auth.harness import PASSWORD
from tests.gateway.consent.test_outcomes import crisis_encounter
from tests.gateway.consent.world import OTP, POLICE, consent
from tests.pages import serious_violations, watch_csp
from tests.smart_app.conftest import BRIEF_URL, shot
from tests.smart_app.test_county import County
from tests.smart_app.test_sign_in import _active, _session_tokens


def sign_in(page: Page, username: str = "ada") -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()


def find(page: Page, name: str, purpose: str | None = None) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    if purpose:
        page.get_by_label("Why you need it").select_option(purpose)
    page.get_by_role("button", name="Search").click()


def checked(page: Page) -> None:
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling


def test_a_clinicians_journey_from_sign_in_to_the_recorded_outcome(county: County, page: Page) -> None:
    world, app = county
    refused = watch_csp(page)
    page.goto(f"{app.base}/login")
    sign_in(page)
    page.wait_for_url(f"{app.base}/find")
    find(page, "Maria Rivera")
    page.get_by_role("button", name="This is the person: open the brief").click()
    page.wait_for_url(f"{app.base}/person/maria")
    assert page.get_by_role("heading", level=1).inner_text() == "Maria Rivera"
    assert page.get_by_role("link", name="555-0201").get_attribute("href") == "tel:5550201"  # the counselor
    assert page.get_by_role("note").inner_text().startswith("42 CFR Part 2 records")
    checked(page)
    page.get_by_role("link", name="Record the outcome").click()
    checked(page)
    page.get_by_label("Stayed home with a safety plan").check()
    page.get_by_label("Short note for the care team (optional)").fill("Sister is staying tonight.")
    shot(page, "outcome")
    page.get_by_role("button", name="Save the outcome").click()
    page.get_by_role("heading", name="Outcome recorded").wait_for()
    assert "Eastside Recovery Services (OTP)" in page.content()
    assert crisis_encounter(world)["status"] == "finished"
    checked(page)
    access_token = _session_tokens(app)["access_token"]
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to see a responder brief").wait_for()
    assert not _active(world.harness, access_token)  # revoked at the gateway
    assert refused == []


def test_a_police_co_responder_sees_less(county: County, page: Page) -> None:
    world, app = county
    world.push("otp", consent("maria-police", "maria", "part2-specific", disclosers=[OTP],
                              recipients=[{"reference": POLICE}], purposes=["crisis-coordination"],
                              classes=["STATUS", "CONTACT", "CRISISPLAN"]))  # fmt: skip
    page.goto(f"{app.base}/login")
    sign_in(page, "lee")
    find(page, "Maria Rivera", purpose="crisis-coordination")
    page.get_by_role("button", name="This is the person: open the brief").click()
    page.wait_for_url(BRIEF_URL)  # the confirm page names the person too: wait for the brief itself
    text = page.inner_text("main")
    assert "Opioid dependence" not in text and "buprenorphine" not in text
    assert page.get_by_role("link", name="Record the outcome").count() == 0
    assert page.get_by_role("link", name="Medical emergency: emergency access").count() == 0
    checked(page)
    shot(page, "police-brief")


def test_a_dispatch_launch_opens_straight_onto_the_brief(county: County, page: Page) -> None:
    world, app = county
    dispatch = world.harness.add_backend("county-cad-launcher", scope="system/Patient.rs", purpose="dispatch")
    created = requests.post(f"{world.harness.root}/launch", timeout=10,
                            json={"client_id": "responder-web", "patient": "maria", "user": "ada",
                                  "incident": "CAD-2026-1206-0042"},
                            headers={"Authorization": f"Bearer {world.harness.backend_token(dispatch, 'system/Patient.rs')}"})  # fmt: skip
    assert created.status_code == 201, created.text
    page.goto(created.json()["launch_url"])
    sign_in(page)
    page.wait_for_url(f"{app.base}/person/maria")
    assert page.get_by_role("heading", name="Three things to know").is_visible()
    checked(page)


def test_emergency_access_with_its_window_and_a_denial_that_reads_as_no_record(county: County, page: Page) -> None:
    world, app = county
    refused = watch_csp(page)
    page.goto(f"{app.base}/login")
    sign_in(page)
    find(page, "Dana Quinlan")
    page.get_by_role("heading", name="No record found").wait_for()  # no consent: nothing to see
    checked(page)
    page.get_by_role("link", name="Medical emergency: emergency access").click()
    assert "60 minutes" in page.inner_text("main")
    checked(page)
    shot(page, "emergency")
    page.get_by_label("What is the emergency?").fill("Unresponsive, suspected opioid overdose")
    page.get_by_role("button", name="Start emergency access").click()
    find(page, "Dana Quinlan")
    page.get_by_role("button", name="This is the person: open the brief").click()
    page.wait_for_url(BRIEF_URL)  # the confirm page names the person too: wait for the brief itself
    assert "Opioid dependence" in page.inner_text("main")
    countdown = page.locator("[data-countdown]")
    first = countdown.inner_text()
    page.wait_for_function("document.querySelector('[data-countdown]').textContent.includes(':')")
    assert first != countdown.inner_text() or ":" in first  # the script counts down: 59:58, ...
    assert countdown.inner_text().startswith(("59:", "60:"))
    checked(page)
    shot(page, "emergency-brief")
    page.get_by_role("button", name="End emergency access").click()
    find(page, "Dana Quinlan")
    page.get_by_role("heading", name="No record found").wait_for()
    assert refused == []
