"""The responder's path in a real browser (Debian chromium), on a 360 px phone and a desktop:
sign in at the gateway, find the person, confirm, read the brief. axe-core finds nothing serious,
the CSP refuses nothing the pages need, and the screenshots in docs/screenshots/ are taken here."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from tests.gateway.auth.harness import PASSWORD, Harness
from tests.pages import serious_violations, watch_csp
from tests.smart_app.conftest import BRIEF_URL, VIEWPORTS, ResponderApp, shot
from tests.smart_app.test_sign_in import CARE


def test_a_clinician_signs_in_finds_confirms_and_reads_the_brief(
    smart: Harness, responder_app: ResponderApp, page: Page
) -> None:
    smart.seed(*CARE)  # a care team with a 24/7 line and a safety plan
    refused = watch_csp(page)
    page.goto(f"{responder_app.base}/")
    assert serious_violations(page) == []
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{responder_app.base}/find")
    assert serious_violations(page) == []
    page.get_by_label("Name", exact=True).fill("Maria Rivera")
    page.get_by_label("About how old").fill("38")
    page.get_by_label("Phone that called").fill("555-0100")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("Probable match: confirm identity").wait_for()
    assert serious_violations(page) == []
    shot(page, "find")
    page.get_by_role("button", name="This is the person: open the brief").click()
    page.wait_for_url(f"{responder_app.base}/person/pat-1")
    assert page.get_by_role("heading", level=1).inner_text() == "Maria Rivera"
    assert page.get_by_role("heading", name="Three things to know").is_visible()
    assert page.get_by_role("link", name="(555) 010-9988").get_attribute("href") == "tel:5550109988"
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    shot(page, "brief")
    assert refused == []


def test_the_core_path_works_without_javascript(smart: Harness, responder_app: ResponderApp, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=VIEWPORTS["phone"])  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{responder_app.base}/login")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.get_by_label("Name", exact=True).fill("Maria Rivera")
    page.get_by_label("About how old").fill("38")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="This is the person: open the brief").click()
    page.wait_for_url(BRIEF_URL)
    assert page.get_by_role("heading", level=1).inner_text() == "Maria Rivera"
    context.close()
