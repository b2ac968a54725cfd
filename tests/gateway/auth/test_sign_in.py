"""The sign-in and consent pages: CSRF, lockout over HTTP, idle sessions, no open redirects."""

from __future__ import annotations

import re
import time

import requests
from flask import Flask

from tests.gateway.auth.harness import PASSWORD, Harness, _form, pkce_pair


def test_login_without_csrf_token_is_refused(smart: Harness) -> None:
    response = requests.post(f"{smart.root}/auth/login", data={"username": "ada", "password": PASSWORD}, timeout=10,
                             allow_redirects=False)  # fmt: skip
    assert response.status_code == 400 and "expired" in response.text


def test_consent_without_csrf_token_is_refused(smart: Harness) -> None:
    browser = requests.Session()
    page = browser.get(f"{smart.root}/auth/login", timeout=10)
    form = [*_form(page.text), ("username", "ada"), ("password", PASSWORD)]
    assert browser.post(f"{smart.root}/auth/login", data=form, allow_redirects=False, timeout=10).status_code == 303
    forged = browser.post(f"{smart.root}/auth/authorize/consent", data={"decision": "approve"}, timeout=10)
    assert forged.status_code == 400


def test_wrong_password_over_http_and_lockout(smart: Harness) -> None:
    browser = requests.Session()
    for _ in range(6):
        page = browser.get(f"{smart.root}/auth/login", timeout=10)
        form = [*_form(page.text), ("username", "ada"), ("password", "not the password")]
        response = browser.post(f"{smart.root}/auth/login", data=form, allow_redirects=False, timeout=10)
        assert response.status_code == 401
    assert "too many failed attempts" in response.text


def test_login_next_is_never_an_open_redirect(smart: Harness) -> None:
    browser = requests.Session()
    page = browser.get(f"{smart.root}/auth/login", params={"next": "https://evil.example/"}, timeout=10)
    form = dict(_form(page.text))
    assert form["next"] == "/auth/manage"


def test_authorize_signs_in_then_shows_consent(smart: Harness) -> None:
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    result = smart.authorize(browser, challenge=challenge)
    assert "code" in result.params
    # Signed in now: a second authorization goes straight to consent.
    params = {"response_type": "code", "client_id": "responder-app", "redirect_uri": "http://127.0.0.1:9/callback",
              "scope": "patient/*.rs launch/patient", "state": "x", "aud": smart.base, "code_challenge": challenge,
              "code_challenge_method": "S256"}  # fmt: skip
    page = browser.get(f"{smart.root}/auth/authorize", params=params, allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text and page.headers["X-Frame-Options"] == "DENY"
    posted = browser.post(f"{smart.root}/auth/authorize", data=params, allow_redirects=False, timeout=10)
    assert posted.status_code == 200 and "Allow" in posted.text  # authorize-post


def test_unknown_patient_in_the_picker_is_asked_again(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], patient="pat-999")
    assert result.status == 400 and "No patient with that id" in result.body


def test_the_picker_does_not_tell_a_user_that_a_hidden_patient_exists(smart: Harness) -> None:
    """A patient known only to a Part 2 program, whom the user has no basis to know of, gets the
    same answer as an id that was never stored; one the user may know of is accepted."""
    smart.push("eastside-otp-ehr",
               {"resourceType": "Patient", "id": "otp-only", "name": [{"family": "Quinlan", "given": ["Dana"]}]},
               part2=True, organization="Organization/eastside-otp")  # fmt: skip
    hidden = smart.authorize(requests.Session(), challenge=pkce_pair()[1], patient="otp-only")
    missing = smart.authorize(requests.Session(), challenge=pkce_pair()[1], patient="never-stored")
    assert hidden.status == missing.status == 400
    assert "No patient with that id" in hidden.body

    def page(body: str, patient: str) -> str:  # the form's per-session values (CSRF token, state) aside
        return re.sub(r'value="[^"]*"', 'value=""', body.replace(patient, "X"))

    assert page(hidden.body, "otp-only") == page(missing.body, "never-stored")
    known = smart.authorize(requests.Session(), challenge=pkce_pair()[1], patient="pat-1")
    assert known.status == 302 and "code=" in known.location


def test_sessions_end_after_idle_time(smart_server: object, smart: Harness) -> None:
    app: Flask = smart.app
    accounts = app.extensions["smart_server"].accounts
    client = app.test_client()
    with client.session_transaction() as session:
        session["user"] = "ada"
        session["sid"] = accounts.start_session("ada")
        session["seen"] = time.time() - 31 * 60
    assert client.get("/auth/manage").status_code == 303  # back to sign-in
    with client.session_transaction() as session:
        session["user"] = "ada"
        session["sid"] = sid = accounts.start_session("ada")
        session["seen"] = time.time() - 60
    assert client.get("/auth/manage").status_code == 200
    # The session lives on the server too: ended there (sign-out elsewhere), the cookie is worthless.
    accounts.end_session(sid)
    assert client.get("/auth/manage").status_code == 303


def test_a_forged_cookie_without_a_server_session_is_not_signed_in(smart_server: object, smart: Harness) -> None:
    client = smart.app.test_client()
    with client.session_transaction() as session:
        session["user"] = "ada"
        session["sid"] = "made-up"
        session["seen"] = time.time()
    assert client.get("/auth/manage").status_code == 303
