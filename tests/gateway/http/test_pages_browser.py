"""The front door and the docs in a real browser, on a phone and on a desktop: readable, no
accessibility problem axe-core calls serious, and nothing the page needs refused by its CSP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import LiveServer
from tests.pages import serious_violations, watch_csp

VIEWPORTS = {"phone": {"width": 360, "height": 800}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture(params=list(VIEWPORTS))
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])  # type: ignore[arg-type]
    opened = context.new_page()
    yield opened
    context.close()


def test_home_and_docs_are_accessible_and_need_nothing_the_policy_refuses(live_server: LiveServer, page: Page) -> None:
    root = live_server.base_url.removesuffix("/fhir")
    refused = watch_csp(page)
    page.goto(root + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Crisis-response FHIR gateway"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 247)"  # CSS loaded
    assert serious_violations(page) == []
    # No sideways scrolling on a 360 px phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="Get a token and push a transaction Bundle").click()
    page.wait_for_url("**/docs/auth.md")
    assert "Authorization" in page.get_by_role("heading", level=1).inner_text()
    assert serious_violations(page) == []
    page.get_by_role("link", name="Documentation").first.click()
    page.wait_for_url("**/docs/")
    assert serious_violations(page) == []
    assert refused == []
