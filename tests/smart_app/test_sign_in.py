"""The responder app as a real SMART client over HTTP: standalone and dispatch launches with PKCE
and private_key_jwt, tokens kept server-side, refresh before expiry, sign-out that revokes."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from tests.gateway.auth.harness import Harness
from tests.smart_app.conftest import ResponderApp


def _sign_in(
    smart: Harness, app: ResponderApp, start: str, patient: str | None = None, username: str = "ada"
) -> requests.Session:
    """A browser: the app's sign-in link, the gateway's sign-in and consent pages, back to the app
    (which opens the search after a standalone launch, the brief after a dispatch launch)."""
    browser = requests.Session()
    to_gateway = browser.get(start, allow_redirects=False, timeout=10)
    assert to_gateway.status_code == 303, to_gateway.text[:300]
    authorize = browser.get(to_gateway.headers["Location"], allow_redirects=False, timeout=10)
    landed = smart.walk(browser, authorize, patient=patient, username=username)
    assert landed.status == 302 and landed.location.startswith(f"{app.base}/callback?"), landed
    landing = browser.get(landed.location, timeout=10)  # the app exchanges the code and moves on
    assert landing.status_code in (200, 404), landing.text[:500]
    browser.landing = landing  # type: ignore[attr-defined]
    return browser


def _session_tokens(app: ResponderApp) -> dict[str, Any]:
    with app.store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT data FROM app_session").all()
    found = [__import__("json").loads(row[0]) for row in rows]
    signed_in = [data["tokens"] for data in found if data.get("tokens")]
    assert len(signed_in) == 1
    return dict(signed_in[0])


def _active(smart: Harness, token: str) -> bool:
    answer = requests.post(f"{smart.root}/auth/introspect", data={"token": token},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
    return bool(answer.json().get("active"))


def test_standalone_launch_signs_in_keeps_tokens_server_side_and_signs_out_with_revocation(
    smart: Harness, responder_app: ResponderApp
) -> None:
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login")
    assert "Find the person" in browser.landing.text  # type: ignore[attr-defined]
    tokens = _session_tokens(responder_app)
    assert "patient" not in tokens or tokens["patient"] is None  # responders search in the app
    assert tokens["fhir_user"].endswith("/Practitioner/clinician-ada")
    assert _active(smart, tokens["access_token"])
    assert smart.get("Patient/pat-1", tokens["access_token"]).status_code == 200
    # The app's one cookie names the server-side session; no token is in any cookie or page.
    cookies = {c.name: c.value for c in browser.cookies}
    assert "responder_session" in cookies
    home = browser.get(f"{responder_app.base}/", timeout=10)
    assert "You are signed in" in home.text
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert all(secret not in value for value in cookies.values()) and secret not in home.text
    assert (
        home.headers["Cache-Control"] == "no-store" and "default-src 'none'" in home.headers["Content-Security-Policy"]
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert csrf
    signed_out = browser.post(f"{responder_app.base}/logout", data={"csrf": csrf.group(1)}, timeout=10)
    assert "Sign in to see a responder brief" in signed_out.text
    assert not _active(smart, tokens["access_token"])  # revoked at the gateway, not only forgotten
    refreshed = requests.post(smart.token_url, timeout=10, data={"grant_type": "refresh_token",
                              "refresh_token": tokens["refresh_token"], "client_id": "responder-web"})  # fmt: skip
    assert refreshed.status_code in (400, 401)


def test_a_sign_out_without_the_forms_token_does_nothing(smart: Harness, responder_app: ResponderApp) -> None:
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login")
    browser.post(f"{responder_app.base}/logout", data={"csrf": "forged"}, timeout=10)
    assert _active(smart, _session_tokens(responder_app)["access_token"])


def test_the_access_token_is_refreshed_before_it_expires(smart: Harness, responder_app: ResponderApp) -> None:
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login")
    first = _session_tokens(responder_app)
    with responder_app.store.engine.begin() as connection:  # as if 59 minutes had passed
        row = connection.exec_driver_sql("SELECT session_id, data FROM app_session").one()
        data = __import__("json").loads(row[1])
        data["tokens"]["expires_at"] = time.time() + 10
        connection.exec_driver_sql("UPDATE app_session SET data = ? WHERE session_id = ?",
                                   (__import__("json").dumps(data), row[0]))  # fmt: skip
    assert "You are signed in" in browser.get(f"{responder_app.base}/", timeout=10).text
    second = _session_tokens(responder_app)
    assert second["access_token"] != first["access_token"] and second["expires_at"] > time.time() + 600
    assert _active(smart, second["access_token"])


def test_a_dispatch_launch_opens_onto_the_dispatched_person(smart: Harness, responder_app: ResponderApp) -> None:
    dispatch = smart.add_backend("county-cad", scope="system/Patient.rs", purpose="dispatch")
    created = requests.post(f"{smart.root}/launch", timeout=10,
                            json={"client_id": "responder-web", "patient": "pat-2", "user": "ada",
                                  "incident": "CAD-2026-1206-0007"},
                            headers={"Authorization": f"Bearer {smart.backend_token(dispatch, 'system/Patient.rs')}"})  # fmt: skip
    assert created.status_code == 201, created.text
    launch_url = created.json()["launch_url"]
    assert launch_url.startswith(f"{responder_app.base}/launch?")
    browser = _sign_in(smart, responder_app, launch_url)
    tokens = _session_tokens(responder_app)
    assert tokens["patient"] == "pat-2" and tokens["encounter"]
    assert browser.landing.url == f"{responder_app.base}/person/pat-2"  # type: ignore[attr-defined]
    home = browser.get(f"{responder_app.base}/", timeout=10).text
    assert "pat-2" in home and tokens["encounter"] in home


def test_callbacks_and_launches_that_did_not_start_here_are_refused(responder_app: ResponderApp) -> None:
    browser = requests.Session()
    forged = browser.get(f"{responder_app.base}/callback", params={"state": "x", "code": "y"}, timeout=10)
    assert forged.status_code == 400 and "did not start here" in forged.text
    elsewhere = browser.get(f"{responder_app.base}/launch", params={"iss": "https://evil.example/fhir", "launch": "l"},
                            timeout=10)  # fmt: skip
    assert elsewhere.status_code == 400


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def test_find_the_person_confirm_and_read_the_brief(smart: Harness, responder_app: ResponderApp) -> None:
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login", patient=None)
    search = browser.get(f"{responder_app.base}/find", timeout=10)
    assert search.status_code == 200 and "Find the person" in search.text
    found = browser.post(f"{responder_app.base}/find", timeout=10, data={
        "csrf": _csrf(search.text), "name": "Maria Rivera", "age": "38", "phone": "555-0100", "purpose": "TREAT"})  # fmt: skip
    assert found.status_code == 200, found.text[:500]
    assert "Maria Rivera" in found.text and "confirm identity" in found.text
    # Not confirmed yet: the brief does not open.
    early = browser.get(f"{responder_app.base}/person/pat-1", timeout=10)
    assert early.status_code == 400 and "Confirm who this is" in early.text
    brief = browser.post(f"{responder_app.base}/person/pat-1/confirm", data={"csrf": _csrf(found.text)}, timeout=10)
    assert brief.status_code == 200 and brief.url.endswith("/person/pat-1")
    assert brief.headers["Cache-Control"] == "no-store"
    titles = re.findall(r"<h2>([^<]+)</h2>", brief.text)
    assert titles[:4] == ["Is this the right person?", "Safety and de-escalation", "Whom to call", "Treatment"]
    assert "Outpatient mental-health treatment at Eastside Community Mental Health" in brief.text
    # Scripts only from the app's own static files (none inline, none from the narrative).
    assert all(tag.startswith('<script src="/static/') for tag in re.findall(r"<script[^>]*>", brief.text))
    assert "xmlns" not in brief.text


def test_nothing_you_may_see_reads_exactly_as_no_record(smart: Harness, responder_app: ResponderApp) -> None:
    """A police officer with no consent naming police: the person is not found, and the page for a
    person on file that they may not see is the page for a person never on file."""
    smart.add_user("officer", role="police-officer", practitioner="Practitioner/officer-1",
                   organization="Organization/metro-pd")  # fmt: skip
    browser = requests.Session()
    to_gateway = browser.get(f"{responder_app.base}/login", allow_redirects=False, timeout=10)
    authorize = browser.get(to_gateway.headers["Location"], allow_redirects=False, timeout=10)
    landed = smart.walk(browser, authorize, patient=None, username="officer")
    search = browser.get(landed.location, timeout=10)
    found = browser.post(f"{responder_app.base}/find", timeout=10, data={
        "csrf": _csrf(search.text), "name": "Maria Rivera", "age": "38", "purpose": "TREAT"})  # fmt: skip
    assert "No record found" in found.text and "pat-1" not in found.text
    pages = []
    for patient_id in ("pat-1", "never-stored"):
        browser.post(f"{responder_app.base}/person/{patient_id}/confirm", data={"csrf": _csrf(search.text)},
                     timeout=10)  # fmt: skip
        answer = browser.get(f"{responder_app.base}/person/{patient_id}", timeout=10)
        pages.append((answer.status_code, answer.text))
    assert pages[0] == pages[1] and pages[0][0] == 404 and "No record found" in pages[0][1]


P = "https://crisis-fhir-gateway.org/fhir"
CARE = [
    {"resourceType": "Practitioner", "id": "case-manager-li", "name": [{"family": "Li", "given": ["Wen"]}]},
    {"resourceType": "PractitionerRole", "id": "role-li", "practitioner": {"reference": "Practitioner/case-manager-li"},
     "organization": {"reference": "Organization/eastside-clinic"},
     "telecom": [{"system": "phone", "value": "555-0142", "use": "work", "rank": 2},
                 {"system": "phone", "value": "(555) 010-9988", "use": "mobile", "rank": 1}],
     "availableTime": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "allDay": True}]},
    {"resourceType": "CareTeam", "id": "team-1", "status": "active", "subject": {"reference": "Patient/pat-1"},
     "participant": [{"role": [{"text": "Case manager"}], "member": {"reference": "PractitionerRole/role-li"}}]},
    {"resourceType": "CarePlan", "id": "safety-1", "status": "active", "intent": "plan",
     "subject": {"reference": "Patient/pat-1"},
     "category": [{"coding": [{"system": f"{P}/CodeSystem/care-plan-category", "code": "crisis-safety-plan"}]}],
     "activity": [{"detail": {"status": "not-started", "description": description,
                              "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step", "code": step}]}}}
                  for step, description in (("warning-signs", "Sirens & uniforms"),
                                            ("coping-strategies", "Music, a quiet room"),
                                            ("professionals-to-contact", "Wen Li, case manager"))]},
]  # fmt: skip


def test_the_brief_leads_with_three_things_and_offers_tap_to_call(smart: Harness, responder_app: ResponderApp) -> None:
    smart.seed(*CARE)
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login")
    search = browser.landing  # type: ignore[attr-defined]
    found = browser.post(f"{responder_app.base}/find", timeout=10, data={
        "csrf": _csrf(search.text), "name": "Maria Rivera", "age": "38", "phone": "555-0100", "purpose": "TREAT"})  # fmt: skip
    brief = browser.post(f"{responder_app.base}/person/pat-1/confirm", data={"csrf": _csrf(found.text)}, timeout=10)
    assert brief.status_code == 200, brief.text[:500]
    text = brief.text
    three = text.index("Three things to know")
    assert three < text.index("Is this the right person?")  # at the top
    for thing in ("Trigger: Sirens &amp; uniforms", "What helps: Music, a quiet room", "Call: Wen Li, case manager"):
        assert thing in text[three:]
    # The 24/7 line first, and every number a tap-to-call link.
    assert text.index('href="tel:5550109988"') < text.index('href="tel:5550142"')
    assert ">(555) 010-9988</a> (24/7)" in text
    assert 'href="tel:19880412"' not in text  # a birth date is not a phone number
    # Each card says where it came from and how fresh it is.
    assert text.count('<p class="source">') >= 3 and "updated today" in text
    assert text.count("Trigger: Sirens") == 1  # it heads the brief, and is not repeated below


def test_odd_ids_and_searches_the_gateway_refuses_get_a_clear_answer(
    smart: Harness, responder_app: ResponderApp
) -> None:
    browser = _sign_in(smart, responder_app, f"{responder_app.base}/login")
    search = browser.landing  # type: ignore[attr-defined]
    for odd in ("pat-1%3Fx%3D1", "a%20b", "x" * 65):  # never spliced into the gateway's URL
        answer = browser.get(f"{responder_app.base}/person/{odd}", timeout=10)
        assert answer.status_code == 404 and "No record found" in answer.text
    refused = browser.post(f"{responder_app.base}/find", timeout=10, data={
        "csrf": _csrf(search.text), "name": "Maria Rivera", "birth_date": "1988-13-45", "purpose": "TREAT"})  # fmt: skip
    assert refused.status_code == 400 and "Check the search" in refused.text and 'value="Maria Rivera"' in refused.text
