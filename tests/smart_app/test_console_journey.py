"""A consent's whole life in two browsers (chromium): a compliance officer at a desk (1280 px)
takes in a signed consent, with its PDF, after the form has named what was missing; a crisis
clinician on a phone (360 px, the responder app) then sees the released sections; the officer
revokes it; the clinician no longer does; the disclosure report lists the disclosures the consent
allowed, in CSV and in the PDF letter. axe-core on every console page; screenshots taken here."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyotp
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from tests.gateway.auth.harness import PASSWORD
from tests.gateway.consent.world import OTP
from tests.gateway.http.test_console import SIGNED_PDF
from tests.pages import serious_violations, watch_csp
from tests.smart_app.conftest import BRIEF_URL
from tests.smart_app.test_browser_county import find, sign_in
from tests.smart_app.test_county import County

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def officer_signs_in(page: Page, root: str, secret: str) -> None:
    page.goto(f"{root}/console/")
    page.get_by_label("Username").fill("olive")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Compliance dashboard").wait_for()


def responder_looks_for_dana(page: Page) -> str:
    """The clinician's search for Dana, confirmed when found: the text of what opens."""
    page.goto(page.url.split("/person/")[0].split("/find")[0] + "/find")
    find(page, "Dana Quinlan")
    confirm = page.get_by_role("button", name="This is the person: open the brief")
    if confirm.count():
        confirm.click()
        page.wait_for_url(BRIEF_URL)  # the confirm page names Dana too: wait for the brief itself
    return page.inner_text("main")


def test_a_consent_from_intake_to_revocation_seen_from_both_sides(county: County, browser: Browser) -> None:
    world, app = county
    officer = world.harness.accounts.add_user(username="olive", password=PASSWORD, display_name="Olive Grant",
                                              role="compliance-officer", organization=OTP, totp=True)  # fmt: skip
    assert officer.totp_secret
    desk = browser.new_context(viewport={"width": 1280, "height": 800})
    phone = browser.new_context(viewport={"width": 360, "height": 800})
    console, responder = desk.new_page(), phone.new_page()
    refused = watch_csp(console)
    root = world.harness.root
    # Before: no consent, nothing to see.
    responder.goto(f"{app.base}/login")
    sign_in(responder)
    assert "No record found" in responder_looks_for_dana(responder)

    officer_signs_in(console, root, officer.totp_secret)
    console.goto(f"{root}/console/consents/new?patient=Patient/dana")
    assert serious_violations(console) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console.screenshot(path=str(SCREENSHOTS / "console-consent-kinds-desktop.png"), full_page=True)
    console.get_by_role("link", name="Specific Part 2 consent").click()
    recipients = console.get_by_role("group", name="Who may receive them")
    recipients.get_by_label("County Mobile Crisis Team").check()
    console.get_by_role("group", name="For which purposes").get_by_label("Treatment", exact=True).check()
    information = console.get_by_role("group", name="Which information")
    for label in ("Diagnoses", "Medications"):
        information.get_by_label(label).check()
    console.get_by_role("button", name="Check and save the consent").click()  # no date, statement or signed form
    alert = console.get_by_role("alert")
    for missing in ("2.31(a)(9)", "2.31(a)(8): the signed form", "2.31(a)(6)"):
        assert missing in alert.inner_text()
    assert serious_violations(console) == []
    console.screenshot(path=str(SCREENSHOTS / "console-consent-form-desktop.png"), full_page=True)
    console.get_by_label("Date signed").fill("2026-12-01")
    console.get_by_role("group", name="The signed form includes").get_by_label(
        "the right to revoke", exact=False
    ).check()
    console.get_by_label("The signed form (PDF, at most 5 MB)").set_input_files(
        files=[{"name": "dana-consent.pdf", "mimeType": "application/pdf", "buffer": SIGNED_PDF}])  # fmt: skip
    console.get_by_role("button", name="Check and save the consent").click()
    console.get_by_role("status").filter(has_text="saved").wait_for()
    saved = console.get_by_role("status").inner_text().split()[0]  # Consent/<id>
    assert "in force" in console.inner_text("main")

    # The clinician now sees what the consent releases.
    seen = responder_looks_for_dana(responder)
    assert "Opioid dependence" in seen and "42 CFR Part 2 records" in seen

    console.get_by_role("button", name=f"Revoke {saved}").click()
    console.get_by_role("status").filter(has_text="revoked").wait_for()
    assert "No record found" in responder_looks_for_dana(responder)

    # The report: every disclosure went to the clinician, on this consent, in the CSV and the letter.
    with console.expect_download() as spreadsheet:
        console.get_by_role("link", name="Download as a spreadsheet (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(spreadsheet.value.path()).read_text(encoding="utf-8"))))
    assert rows and {r["recipient_user"] for r in rows} == {"ada"}
    assert {r["consents"] for r in rows} == {str([saved.removeprefix("Consent/")])}
    assert "Condition/dana-oud" in {r["item"] for r in rows}
    with console.expect_download() as letter:
        console.get_by_role("link", name="Download as a letter to the person (PDF)").click()
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(letter.value.path()).pages)
    assert "For Dana Quinlan (Patient/dana)" in text and f"{len(rows)} disclosure" in text
    assert "Opioid dependence" in text
    assert refused == []
    desk.close()
    phone.close()
