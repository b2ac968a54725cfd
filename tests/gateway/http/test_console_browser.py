"""The compliance console in chromium at 1280 px: sign in with the one-time code, the dashboard,
one person's record, an emergency review signed off. axe-core finds nothing serious, the CSP
refuses nothing, and the screenshots in docs/screenshots/ are taken here."""

from __future__ import annotations

from pathlib import Path

import pyotp
from playwright.sync_api import Browser

from tests.gateway.auth.harness import PASSWORD
from tests.gateway.consent.world import World
from tests.gateway.http.test_console import world  # noqa: F401  (the county world with an officer)
from tests.pages import serious_violations, watch_csp

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def test_an_officer_reviews_an_emergency_and_reads_who_saw_a_record(world: World, browser: Browser) -> None:  # noqa: F811
    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200
    assert world.brief("ada", "dana", purpose="BTG", reason="unresponsive, suspected overdose",
                       confirmed="true").status_code == 200  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused = watch_csp(page)
    page.goto(f"{world.harness.root}/console/")
    page.get_by_label("Username").fill("olive")
    page.get_by_label("Password").fill(PASSWORD)
    user = world.harness.accounts.user("olive")
    assert user is not None and user.totp_secret
    page.get_by_label("One-time code").fill(pyotp.TOTP(user.totp_secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Compliance dashboard").wait_for()
    assert serious_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-dashboard-desktop.png"), full_page=True)
    page.get_by_label("Who saw this person's record? Their id").fill("Patient/maria")
    page.get_by_role("button", name="Open their record").click()
    page.get_by_role("heading", name="Patient/maria").wait_for()
    assert page.get_by_role("link", name="Download as a spreadsheet (CSV)").is_visible()
    assert serious_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "console-patient-desktop.png"), full_page=True)
    page.get_by_role("link", name="Emergency reviews").click()
    assert serious_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "console-reviews-desktop.png"), full_page=True)
    page.get_by_label("What the review found").fill("Bona fide: overdose confirmed by EMS run sheet.")
    page.get_by_role("button", name="Sign off").click()
    page.get_by_role("status").wait_for()
    assert "signed off" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Orders and requests").click()
    page.get_by_role("heading", name="Orders and requests").wait_for()
    assert serious_violations(page) == []
    page.screenshot(path=str(SCREENSHOTS / "console-requests-desktop.png"), full_page=True)
    page.goto(f"{world.harness.root}/console/patient?patient=Patient/maria")
    page.get_by_role("heading", name="Who can see this person now").wait_for()
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright: wide tables scroll in place
    for path in ("/console/", "/console/patient?patient=Patient/maria", "/console/consents/new?kind=part2-tpo"):
        page.goto(f"{world.harness.root}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        assert serious_violations(page) == []
    assert refused == []
    context.close()
