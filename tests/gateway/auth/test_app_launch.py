"""SMART App Launch 2.2 over real HTTP: standalone and EHR launch, tokens, refresh, id_token,
introspection, revocation, and what the resulting tokens may see."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.gateway.auth.harness import ASSERTION_TYPE, REDIRECT, Harness, pkce_pair


def test_standalone_launch_gives_a_complete_token_response(smart: Harness) -> None:
    code, verifier = smart.code_for(requests.Session())
    response = smart.exchange(code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    token = response.json()
    assert token["token_type"].lower() == "bearer"
    assert isinstance(token["expires_in"], int) and 0 < token["expires_in"] <= 3600
    assert set(token["scope"].split()) == {"launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"}
    assert token["patient"] == "pat-1"
    assert token["need_patient_banner"] is True
    assert token["refresh_token"]
    assert "fhirContext" not in token
    style = requests.get(token["smart_style_url"], timeout=10)
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("application/json")


def test_id_token_is_rs256_signed_by_a_published_key_and_names_the_fhir_user(smart: Harness) -> None:
    token = smart.app_token()
    config = requests.get(f"{smart.base}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(config["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["kid"]
    claims = decoded.claims
    assert claims["iss"] == config["issuer"] == smart.base
    assert claims["aud"] == "responder-app"
    assert claims["sub"] == "ada"
    assert claims["fhirUser"] == f"{smart.base}/Practitioner/clinician-ada"
    assert claims["exp"] > claims["iat"]
    # The fhirUser resource is readable with the same access token (Inferno reads it).
    assert smart.get("Practitioner/clinician-ada", token["access_token"]).status_code == 200


def test_patient_token_sees_its_patient_only(smart: Harness) -> None:
    access = smart.app_token()["access_token"]
    assert smart.get("Patient/pat-1", access).status_code == 200
    other = smart.get("Patient/pat-2", access)
    missing = smart.get("Patient/no-such-patient", access)
    # The same answer whether the other patient exists or not: no existence leak.
    assert other.status_code == missing.status_code == 404
    assert smart.get("EpisodeOfCare/eoc-2", access).status_code == 404
    assert smart.get("EpisodeOfCare/eoc-1", access).status_code == 200
    found = smart.get("EpisodeOfCare", access).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["eoc-1"]
    # Asking for another patient's data explicitly still yields only the launch patient's.
    escaped = smart.get("EpisodeOfCare", access, params={"patient": "pat-2"}).json()
    assert escaped.get("entry", []) == []
    patients = smart.get("Patient", access, params={"_revinclude": "EpisodeOfCare:patient"}).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == {"pat-1", "eoc-1"}


def test_patient_token_cannot_write_without_a_write_scope(smart: Harness) -> None:
    access = smart.app_token()["access_token"]
    response = requests.put(
        f"{smart.base}/Patient/pat-1",
        json={"resourceType": "Patient", "id": "pat-1", "gender": "female"},
        headers={"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_user_token_reads_patient_data_only_through_the_consent_engine(smart: Harness) -> None:
    access = smart.app_token(scope="openid fhirUser user/*.rs", patient=None)["access_token"]
    assert smart.get("Practitioner/clinician-ada", access).status_code == 200
    # General data to a clinician at a provider, for treatment: released, and audited.
    assert smart.get("Patient/pat-1", access).status_code == 200
    from sqlalchemy import select

    from gateway.store.schema import audit_event

    with smart.app.extensions["database"].connect() as connection:
        rows = connection.execute(select(audit_event.c.recipient, audit_event.c.outcome)).all()
    assert ("ada", "PERMIT") in rows
    # No writes with user-level tokens.
    response = requests.put(f"{smart.base}/Patient/pat-1", json={"resourceType": "Patient", "id": "pat-1"},
                            headers={"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"},
                            timeout=10)  # fmt: skip
    assert response.status_code == 403


def test_refresh_twice_in_a_row_rotates_and_keeps_the_scope(smart: Harness) -> None:
    first = smart.app_token()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "responder-app"}
    second = requests.post(smart.token_url, data=data, timeout=10)
    assert second.status_code == 200, second.text
    assert second.headers["Cache-Control"] == "no-store"
    body = second.json()
    assert body["scope"] == first["scope"]
    assert body["patient"] == "pat-1"
    assert body["refresh_token"] != first["refresh_token"]
    data = {**data, "refresh_token": body["refresh_token"], "scope": first["scope"]}
    third = requests.post(smart.token_url, data=data, timeout=10)
    assert third.status_code == 200, third.text
    assert isinstance(third.json()["expires_in"], int)
    assert smart.get("Patient/pat-1", third.json()["access_token"]).status_code == 200


def test_public_client_may_refresh_without_client_id(smart: Harness) -> None:
    first = smart.app_token()
    response = requests.post(
        smart.token_url, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, timeout=10
    )
    assert response.status_code == 200, response.text


def test_reusing_a_rotated_refresh_token_revokes_the_grant(smart: Harness) -> None:
    first = smart.app_token()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "responder-app"}
    second = requests.post(smart.token_url, data=data, timeout=10).json()
    replay = requests.post(smart.token_url, data=data, timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    smart.server.tokens.forget(second["access_token"])
    assert smart.get("Patient/pat-1", second["access_token"]).status_code == 401
    data["refresh_token"] = second["refresh_token"]
    assert requests.post(smart.token_url, data=data, timeout=10).status_code == 400


def test_scope_escalation_on_refresh_is_refused(smart: Harness) -> None:
    first = smart.app_token()
    data = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": "responder-app",
        "scope": first["scope"] + " patient/*.cud",
    }
    response = requests.post(smart.token_url, data=data, timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_confidential_symmetric_client_with_basic_auth(smart: Harness) -> None:
    _, secret = smart.add_app("clinic-dashboard", kind="symmetric")
    assert secret
    code, verifier = smart.code_for(requests.Session(), client_id="clinic-dashboard")
    wrong = smart.exchange(code, verifier, client_id="clinic-dashboard", auth=("clinic-dashboard", "not-the-secret"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    code, verifier = smart.code_for(requests.Session(), client_id="clinic-dashboard")
    right = smart.exchange(code, verifier, client_id="clinic-dashboard", auth=("clinic-dashboard", secret))
    assert right.status_code == 200, right.text


def test_confidential_asymmetric_app_authenticates_with_an_assertion(smart: Harness) -> None:
    backend_keys = smart.add_backend("throwaway-keys", alg="ES384")
    jwks = {"keys": [backend_keys.key.as_dict(private=False)]}
    smart.add_app("asym-app", kind="asymmetric", jwks=jwks)
    code, verifier = smart.code_for(requests.Session(), client_id="asym-app")
    backend_keys.client_id = "asym-app"
    response = smart.exchange(
        code,
        verifier,
        client_id="asym-app",
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=smart.assertion(backend_keys),
    )
    assert response.status_code == 200, response.text


def test_ehr_launch_from_dispatch(smart: Harness) -> None:
    dispatch = smart.add_backend("county-cad", scope="system/Patient.rs", purpose="dispatch")
    cad_token = smart.backend_token(dispatch, "system/Patient.rs")
    created = requests.post(
        f"{smart.root}/launch",
        json={"client_id": "responder-app", "patient": "pat-2", "incident": "CAD-2026-1126-0042", "user": "ada"},
        headers={"Authorization": f"Bearer {cad_token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    launch = created.json()
    assert launch["iss"] == smart.base
    assert launch["launch_url"].startswith("http://127.0.0.1:9/launch?iss=")
    code, verifier = smart.code_for(
        requests.Session(), scope="launch openid fhirUser patient/*.rs", patient=None, launch=launch["launch"]
    )
    token = smart.exchange(code, verifier).json()
    assert token["patient"] == "pat-2"
    assert smart.get("Patient/pat-2", token["access_token"]).status_code == 200
    # Dispatching the team started the crisis Encounter; the app gets it as `encounter` context.
    encounter = smart.get(f"Encounter/{token['encounter']}", token["access_token"])
    assert encounter.status_code == 200, encounter.text
    assert encounter.json()["subject"]["reference"] == "Patient/pat-2"
    assert encounter.json()["identifier"][0]["value"] == "CAD-2026-1126-0042"
    introspected = requests.post(f"{smart.root}/auth/introspect", data={"token": token["access_token"]},
                                 headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)  # fmt: skip
    assert introspected.json()["encounter"] == token["encounter"]
    config = requests.get(f"{smart.base}/.well-known/smart-configuration", timeout=10).json()
    assert "context-ehr-encounter" in config["capabilities"]
    # A launch is single-use.
    again = smart.authorize(requests.Session(), scope="launch patient/*.rs", patient=None, launch=launch["launch"],
                            challenge=pkce_pair()[1])  # fmt: skip
    assert again.params.get("error") == "invalid_request"


def test_a_dispatch_launch_reads_the_persons_record_ahead_and_discloses_nothing_by_it(smart: Harness) -> None:
    """Creating the launch reads the person's record in the background (the store's caches hold
    it when the link is opened); it is a read like the brief's own, not a disclosure: no audit
    record names anyone it went to."""
    import time

    from sqlalchemy import event, func, select

    from gateway.store.schema import audit_event

    database = smart.app.extensions["database"]
    compartment_reads: list[str] = []

    def spy(_conn: object, _cursor: object, statement: str, parameters: object, *_args: object) -> None:
        if "search_reference" in statement and "patient_id" in statement and "pat-2" in str(parameters):
            compartment_reads.append(statement)

    dispatch = smart.add_backend("county-cad-2", scope="system/Patient.rs", purpose="dispatch")
    cad_token = smart.backend_token(dispatch, "system/Patient.rs")
    with database.connect() as connection:
        audited_before = connection.execute(select(func.count()).select_from(audit_event)).scalar_one()
    event.listen(database, "before_cursor_execute", spy)
    try:
        created = requests.post(f"{smart.root}/launch", json={"client_id": "responder-app", "patient": "pat-2"},
                                headers={"Authorization": f"Bearer {cad_token}"}, timeout=10)  # fmt: skip
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 5
        while not compartment_reads and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        event.remove(database, "before_cursor_execute", spy)
    assert compartment_reads, "the launch did not read the person's record ahead"
    time.sleep(0.1)  # the read-ahead's unit of work ends
    with database.connect() as connection:
        rows = connection.execute(select(audit_event.c.patient, audit_event.c.recipient, audit_event.c.outcome)
                                  .order_by(audit_event.c.seq).offset(audited_before)).all()  # fmt: skip
    assert not [row for row in rows if "pat-2" in str(row.patient)], rows  # nothing about the person went anywhere


def test_launch_needs_a_dispatch_or_ehr_backend_token(smart: Harness) -> None:
    access = smart.app_token()["access_token"]
    response = requests.post(
        f"{smart.root}/launch",
        json={"client_id": "responder-app", "patient": "pat-1"},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert response.status_code == 403
    anonymous = requests.post(
        f"{smart.root}/launch", json={"client_id": "responder-app", "patient": "pat-1"}, timeout=10
    )
    assert anonymous.status_code == 401


def test_introspection(smart: Harness) -> None:
    token = smart.app_token()
    access = token["access_token"]
    itself = requests.post(
        f"{smart.root}/auth/introspect",
        data={"token": access},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert itself.status_code == 200
    body = itself.json()
    assert body["active"] is True
    assert body["scope"] == token["scope"] and body["client_id"] == "responder-app"
    assert body["patient"] == "pat-1" and body["sub"] == "ada" and body["iss"] == smart.base
    assert body["fhirUser"].endswith("Practitioner/clinician-ada")
    assert isinstance(body["exp"], int)
    resource_server = smart.add_backend("resource-server", scope="system/Patient.rs", purpose="service")
    bearer = smart.backend_token(resource_server, "system/Patient.rs")
    inactive = requests.post(
        f"{smart.root}/auth/introspect", data={"token": "not-a-token"}, headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )  # fmt: skip
    assert inactive.status_code == 200 and inactive.json() == {"active": False}
    anonymous = requests.post(f"{smart.root}/auth/introspect", data={"token": access}, timeout=10)
    assert anonymous.status_code == 401


def test_revocation_ends_the_grant(smart: Harness) -> None:
    token = smart.app_token()
    response = requests.post(
        f"{smart.root}/auth/revoke", data={"token": token["refresh_token"], "client_id": "responder-app"}, timeout=10
    )
    assert response.status_code == 200
    assert smart.get("Patient/pat-1", token["access_token"]).status_code == 401
    refresh = requests.post(
        smart.token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "responder-app"},
        timeout=10,
    )
    assert refresh.status_code == 400
    unknown = requests.post(
        f"{smart.root}/auth/revoke", data={"token": "nothing", "client_id": "responder-app"}, timeout=10
    )
    assert unknown.status_code == 200


def test_revoking_another_clients_token_is_refused(smart: Harness) -> None:
    """RFC 7009 §2.1: the token must have been issued to the client asking; otherwise refused (it
    answered 200 {} and revoked nothing, which told the caller it had succeeded)."""
    token = smart.app_token()
    smart.add_app("other-app")
    refused = requests.post(f"{smart.root}/auth/revoke", timeout=10,
                            data={"token": token["access_token"], "client_id": "other-app"})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert smart.get("Patient/pat-1", token["access_token"]).status_code == 200  # still alive


def test_user_can_see_and_revoke_grants_on_the_management_page(smart: Harness) -> None:
    browser = requests.Session()
    code, verifier = smart.code_for(browser)
    token = smart.exchange(code, verifier).json()
    page = browser.get(f"{smart.root}/auth/manage", timeout=10)
    assert page.status_code == 200 and "Responder app" in page.text
    import lxml.html

    form = lxml.html.fromstring(page.text).xpath("//form[.//input[@name='grant']]")[0]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    revoked = browser.post(f"{smart.root}/auth/manage/revoke", data=fields, allow_redirects=False, timeout=10)
    assert revoked.status_code == 303
    assert smart.get("Patient/pat-1", token["access_token"]).status_code == 401


def test_denied_consent_redirects_with_access_denied_and_state(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], decision="deny", state="s-123")
    assert result.status == 302 and result.location.startswith(REDIRECT)
    assert result.params["error"] == "access_denied" and result.params["state"] == "s-123"


def _sign_out(smart: Harness, browser: requests.Session) -> None:
    manage = browser.get(f"{smart.root}/auth/manage", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', manage.text)
    assert manage.status_code == 200 and csrf, manage.text[:300]
    signed_out = browser.post(f"{smart.root}/auth/logout", data={"csrf_token": csrf.group(1)},
                              allow_redirects=False, timeout=10)  # fmt: skip
    assert signed_out.status_code == 303


@pytest.mark.parametrize(("access", "survives"), [("online_access", False), ("offline_access", True)])
def test_only_offline_access_outlives_the_sign_in_session(smart: Harness, access: str, survives: bool) -> None:
    """SMART 2.2: online_access lasts while the user is signed in; after sign-out its refresh fails.
    offline_access is meant to outlive the session."""
    browser = requests.Session()
    code, verifier = smart.code_for(browser, scope=f"launch/patient openid fhirUser {access} patient/*.rs")
    token = smart.exchange(code, verifier).json()
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "responder-app"}
    refreshed = requests.post(smart.token_url, data=data, timeout=10)
    assert refreshed.status_code == 200, refreshed.text  # signed in: refresh works for both
    _sign_out(smart, browser)
    data["refresh_token"] = refreshed.json()["refresh_token"]
    after = requests.post(smart.token_url, data=data, timeout=10)
    if survives:
        assert after.status_code == 200, after.text
    else:
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant", after.text


def test_online_access_ends_when_the_session_idles_out(smart: Harness) -> None:
    browser = requests.Session()
    code, verifier = smart.code_for(browser, scope="launch/patient openid online_access patient/*.rs")
    token = smart.exchange(code, verifier).json()
    from sqlalchemy import update

    from gateway.store.schema import sign_in_session

    with smart.app.extensions["database"].begin() as connection:  # the user walked away 2 hours ago
        connection.execute(
            update(sign_in_session).values(seen_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2))
        )
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "responder-app"}
    after = requests.post(smart.token_url, data=data, timeout=10)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant", after.text
