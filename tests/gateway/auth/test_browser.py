"""The sign-in and consent pages in a real browser (Debian chromium driven by Playwright): what a
responder on a phone does when an app sends them to the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.gateway.auth.harness import PASSWORD, REDIRECT, Harness, pkce_pair
from tests.pages import serious_violations, watch_csp


@pytest.fixture()
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def _app_callback(page: Page) -> list[str]:
    """Stand in for the app at its redirect URI: record where the gateway sent the browser."""
    landed: list[str] = []

    def fulfil(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>app</p>")

    page.route(REDIRECT + "**", fulfil)
    return landed


def _authorize_url(smart: Harness, challenge: str, state: str) -> str:
    query = {"response_type": "code", "client_id": "responder-app", "redirect_uri": REDIRECT, "state": state,
             "scope": "launch/patient openid fhirUser patient/*.rs", "aud": smart.base,
             "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    return f"{smart.root}/auth/authorize?{urlencode(query)}"


def test_responder_signs_in_picks_the_patient_and_allows(smart: Harness, phone: Page) -> None:
    landed = _app_callback(phone)
    refused = watch_csp(phone)
    verifier, challenge = pkce_pair()
    phone.goto(_authorize_url(smart, challenge, "browser-state"))
    assert serious_violations(phone) == []  # the sign-in page
    phone.get_by_label("Username").fill("ada")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url("**/auth/authorize?**")
    assert "Responder app" in phone.get_by_role("heading").inner_text()
    assert serious_violations(phone) == []  # the consent page
    assert refused == []
    for scope in ("launch/patient", "openid", "fhirUser", "patient/*.rs"):
        assert phone.get_by_label(scope).is_checked()
    phone.get_by_label("Patient id").fill("pat-1")
    phone.get_by_role("button", name="Allow").click()
    phone.wait_for_url(REDIRECT + "**")
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
    assert params["state"] == "browser-state"
    token = smart.exchange(params["code"], verifier).json()
    assert token["patient"] == "pat-1"
    assert smart.get("Patient/pat-1", token["access_token"]).status_code == 200


def test_unticked_scopes_are_not_granted_and_deny_sends_access_denied(smart: Harness, phone: Page) -> None:
    landed = _app_callback(phone)
    verifier, challenge = pkce_pair()
    phone.goto(_authorize_url(smart, challenge, "s1"))
    phone.get_by_label("Username").fill("ada")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url("**/auth/authorize?**")
    phone.get_by_label("openid").uncheck()
    phone.get_by_label("fhirUser").uncheck()
    phone.get_by_label("Patient id").fill("pat-1")
    phone.get_by_role("button", name="Allow").click()
    phone.wait_for_url(REDIRECT + "**")
    code = parse_qs(urlsplit(landed[-1]).query)["code"][0]
    token = smart.exchange(code, verifier).json()
    assert set(token["scope"].split()) == {"launch/patient", "patient/*.rs"} and "id_token" not in token
    # Signed in already: the next request goes straight to consent; deny it.
    phone.goto(_authorize_url(smart, pkce_pair()[1], "s2"))
    phone.get_by_role("button", name="Deny").click()
    phone.wait_for_url(REDIRECT + "**")
    denied = parse_qs(urlsplit(landed[-1]).query)
    assert denied["error"] == ["access_denied"] and denied["state"] == ["s2"]


def test_wrong_password_shows_an_error_on_the_page(smart: Harness, phone: Page) -> None:
    phone.goto(f"{smart.root}/auth/login")
    phone.get_by_label("Username").fill("ada")
    phone.get_by_label("Password").fill("not the password")
    phone.get_by_role("button", name="Sign in").click()
    assert "wrong username, password or one-time code" in phone.get_by_role("alert").inner_text()
