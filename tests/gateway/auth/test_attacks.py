"""The attacks issue 3 lists, each refused with the right status and never a 500."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from sqlalchemy import update

from gateway.store.schema import oauth_code
from tests.gateway.auth.harness import ASSERTION_TYPE, REDIRECT, Harness, pkce_pair

# -- PKCE ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verifier", [None, "", "x" * 50, "challenge"])
def test_bad_pkce_verifiers_are_refused(smart: Harness, verifier: str | None) -> None:
    good_verifier, challenge = pkce_pair()
    result = smart.authorize(requests.Session(), challenge=challenge)
    code = result.params["code"]
    sent = challenge if verifier == "challenge" else verifier
    response = smart.exchange(code, sent)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
    # A failed attempt spends the code: the right verifier is too late now.
    assert smart.exchange(code, good_verifier).status_code == 400


@pytest.mark.parametrize(
    ("challenge", "method"), [(None, None), ("plain-challenge-" + "a" * 40, "plain"), (None, "S256")]
)
def test_authorization_without_an_s256_challenge_gets_no_code(
    smart: Harness, challenge: str | None, method: str | None
) -> None:
    result = smart.authorize(requests.Session(), challenge=challenge, method=method, state="st-1")
    assert result.status == 302 and "code" not in result.params
    assert result.params["error"] == "invalid_request" and result.params["state"] == "st-1"


def test_challenge_without_method_is_not_taken_as_plain(smart: Harness) -> None:
    verifier, challenge = pkce_pair()
    result = smart.authorize(requests.Session(), challenge=challenge, method=None)
    assert "code" not in result.params and result.params["error"] == "invalid_request"


# -- redirect URI, aud, state, scope ------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:9/elsewhere", 'http://127.0.0.1:9/callback?x="quoted"', "http://127.0.0.1:9/callbäck", ""],
)
def test_unregistered_redirect_uri_is_never_redirected_to(smart: Harness, redirect_uri: str) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], redirect_uri=redirect_uri)
    assert result.status == 400
    assert "Location" not in result.body and result.location == ""
    assert json.loads(result.body)["error"] == "invalid_request"


def test_unknown_client_is_not_redirected(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), client_id="no-such-app", challenge=pkce_pair()[1])
    assert result.status in (400, 401) and result.location == ""


def test_wrong_aud_gets_no_code(smart: Harness) -> None:
    result = smart.authorize(
        requests.Session(), challenge=pkce_pair()[1], aud="https://inferno.healthit.gov/invalid_aud"
    )
    assert "code" not in result.params and result.params["error"] == "invalid_request"


def test_aud_is_compared_normalised(smart: Harness) -> None:
    result = smart.authorize(
        requests.Session(), challenge=pkce_pair()[1], aud=smart.base.upper().replace("/FHIR", "/fhir") + "/"
    )
    assert "code" in result.params


def test_missing_state_gets_no_code(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], state="")
    assert "code" not in result.params


def test_system_scopes_are_not_for_apps(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], scope="system/*.rs", state="s")
    assert result.params["error"] == "invalid_scope"


def test_malformed_scope_is_invalid_scope(smart: Harness) -> None:
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], scope="patient/Patient.dus", state="s")
    assert result.params["error"] == "invalid_scope"


def test_query_constrained_scope_is_refused_cleanly(smart: Harness) -> None:
    scope = "patient/EpisodeOfCare.rs?status=active"
    result = smart.authorize(requests.Session(), challenge=pkce_pair()[1], scope=scope, state="s")
    assert result.params["error"] == "invalid_scope"


# -- codes ----------------------------------------------------------------------------------------------


def test_code_reuse_is_refused_and_revokes_the_first_tokens(smart: Harness) -> None:
    code, verifier = smart.code_for(requests.Session())
    first = smart.exchange(code, verifier)
    assert first.status_code == 200
    again = smart.exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    smart.server.tokens.forget(first.json()["access_token"])
    assert smart.get("Patient/pat-1", first.json()["access_token"]).status_code == 401


def test_code_for_another_client_is_refused(smart: Harness) -> None:
    smart.add_app("other-app")
    code, verifier = smart.code_for(requests.Session())
    response = smart.exchange(code, verifier, client_id="other-app")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_expired_code_is_refused(smart: Harness) -> None:
    code, verifier = smart.code_for(requests.Session())
    with smart.app.extensions["database"].begin() as connection:
        connection.execute(update(oauth_code).values(expires_at=datetime(2000, 1, 1)))
    response = smart.exchange(code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_the_token_endpoint(smart: Harness) -> None:
    code, verifier = smart.code_for(requests.Session())
    response = smart.exchange(code, verifier, redirect_uri=REDIRECT + "/other")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# -- resource server -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic YTpi", "Bearer tökén"])
def test_missing_or_malformed_tokens_get_401_with_www_authenticate(smart: Harness, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{smart.base}/Patient/pat-1", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"


def test_expired_token_gets_401(smart: Harness) -> None:
    from gateway.store.schema import oauth_token

    access = smart.app_token()["access_token"]
    with smart.app.extensions["database"].begin() as connection:
        connection.execute(update(oauth_token).values(expires_at=datetime(2000, 1, 1)))
    smart.server.tokens.forget(access)
    response = smart.get("Patient/pat-1", access)
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_scope_that_does_not_cover_the_type_gets_403(smart: Harness) -> None:
    access = smart.app_token(scope="launch/patient patient/Patient.rs")["access_token"]
    assert smart.get("Patient/pat-1", access).status_code == 200
    response = smart.get("EpisodeOfCare", access)
    assert response.status_code == 403 and "insufficient_scope" in response.headers["WWW-Authenticate"]


def test_patient_token_cannot_write_another_patients_data(smart: Harness) -> None:
    access = smart.app_token(scope="launch/patient patient/*.cruds")["access_token"]
    headers = {"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"}
    note = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "Prefers a calm, quiet approach"},
        "subject": {"reference": "Patient/pat-2"},
    }
    assert requests.post(f"{smart.base}/Flag", json=note, headers=headers, timeout=10).status_code == 403
    note["subject"] = {"reference": "Patient/pat-1"}
    assert requests.post(f"{smart.base}/Flag", json=note, headers=headers, timeout=10).status_code == 201


def test_transaction_entries_are_authorized_one_by_one(smart: Harness) -> None:
    access = smart.app_token(scope="launch/patient patient/*.cruds")["access_token"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pat-1"}},
            {"request": {"method": "GET", "url": "Patient/pat-2"}},
        ],
    }
    response = requests.post(
        smart.base, json=bundle, headers={"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 404
    assert "Bundle.entry[1]" in response.json()["issue"][0]["expression"][0]


# -- backend services -------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256", "ES256"])
def test_backend_services_token_with_each_algorithm(smart: Harness, alg: str) -> None:
    backend = smart.add_backend(f"ehr-{alg.lower()}", alg=alg)
    response = smart.backend_token_response(backend, "system/Patient.rs system/EpisodeOfCare.cu")
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["expires_in"] <= 300 and "refresh_token" not in token
    assert set(token["scope"].split()) == {"system/Patient.rs", "system/EpisodeOfCare.cu"}
    assert smart.get("Patient/pat-2", token["access_token"]).status_code == 200


def _backend_error(smart: Harness, form: dict[str, str]) -> requests.Response:
    return requests.post(smart.token_url, data=form, timeout=10)


def test_replayed_jti_is_refused(smart: Harness) -> None:
    backend = smart.add_backend("ehr-replay")
    assertion = smart.assertion(backend)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}  # fmt: skip
    assert _backend_error(smart, form).status_code == 200
    replay = _backend_error(smart, form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_client"
    assert "jti" in replay.json()["error_description"]


def _from_now(claims: dict[str, Any]) -> dict[str, Any]:
    """Times in the parameters are offsets in seconds, taken from the moment the test runs (not
    when it was collected, which may be minutes earlier in a full run)."""
    now = int(time.time())
    return {k: now + v if k in ("exp", "iat", "nbf") else v for k, v in claims.items()}


@pytest.mark.parametrize(
    ("claims", "header", "why"),
    [
        ({"exp": +3600}, None, "five minutes"),
        ({"exp": -600}, None, "expired"),
        ({"exp": -30}, None, "expired"),  # the probe's 30-60 s late: past the 5 s leeway
        ({"iat": +30}, None, "future"),
        ({"aud": "https://elsewhere.example/token"}, None, "aud"),
        ({"sub": "someone-else"}, None, "sub"),
        ({"jti": None}, None, "jti"),
        ({}, {"jku": "https://attacker.example/jwks.json"}, "jku"),
        ({}, {"kid": "unknown-kid"}, "kid"),
    ],
)
def test_bad_assertions_are_invalid_client(
    smart: Harness, claims: dict[str, Any], header: dict[str, Any] | None, why: str
) -> None:
    backend = smart.add_backend("ehr-bad")
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": smart.assertion(backend, header, **_from_now(claims))}  # fmt: skip
    response = _backend_error(smart, form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client"
    assert why in response.json()["error_description"]


@pytest.mark.parametrize(
    "claims",
    [{"exp": -2}, {"aud": ["https://elsewhere.example/token", "{token_url}"]}],
)
def test_assertions_within_the_leeway_or_with_an_audience_list_are_accepted(
    smart: Harness, claims: dict[str, Any]
) -> None:
    """A clock 2 s behind is within the documented 5 s leeway; RFC 7523 allows aud as a list that
    contains the token URL."""
    backend = smart.add_backend("ehr-leeway")
    claims = {k: ([smart.token_url if a == "{token_url}" else a for a in v] if isinstance(v, list) else v)
              for k, v in claims.items()}  # fmt: skip
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": smart.assertion(backend, None, **_from_now(claims))}  # fmt: skip
    assert requests.post(smart.token_url, data=form, timeout=10).status_code == 200


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_and_wrong_key_are_refused(smart: Harness) -> None:
    backend = smart.add_backend("ehr-none")
    now = int(time.time())
    claims = {
        "iss": backend.client_id,
        "sub": backend.client_id,
        "aud": smart.token_url,
        "exp": now + 200,
        "jti": "n-1",
    }
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': backend.kid})}.{_b64(claims)}."
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": unsigned}  # fmt: skip
    assert _backend_error(smart, form).json()["error"] == "invalid_client"
    impostor = smart.add_backend("impostor")
    impostor.client_id, impostor.kid = backend.client_id, backend.kid  # signs as ehr-none with its own key
    form["client_assertion"] = smart.assertion(impostor)
    response = _backend_error(smart, form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


def test_wrong_grant_type_and_assertion_type_are_400(smart: Harness) -> None:
    backend = smart.add_backend("ehr-types")
    form = {"grant_type": "password", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": smart.assertion(backend)}  # fmt: skip
    response = _backend_error(smart, form)
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    form.update(
        grant_type="client_credentials", client_assertion_type="urn:wrong", client_assertion=smart.assertion(backend)
    )
    response = _backend_error(smart, form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "scope", ["", "launch fhirUser", "system/Patient.xyz", "system/UnknownResource.r", "patient/*.rs"]
)
def test_backend_scopes_outside_system_are_invalid_scope(smart: Harness, scope: str) -> None:
    backend = smart.add_backend("ehr-scope")
    response = smart.backend_token_response(backend, scope)
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_backend_is_held_to_its_ceiling(smart: Harness) -> None:
    backend = smart.add_backend("read-only", scope="system/Patient.rs")
    assert smart.backend_token_response(backend, "system/Patient.cud").json()["error"] == "invalid_scope"
    response = smart.backend_token_response(backend, "system/*.rs")
    assert response.status_code == 200 and response.json()["scope"] == "system/Patient.rs"


def test_ehr_writes_are_recorded_as_its_own_source(smart: Harness) -> None:
    backend = smart.add_backend("westside-ehr")
    token = smart.backend_token(backend)
    flag = {"resourceType": "Flag", "id": "flag-1", "status": "active", "code": {"text": "Dog in the home"},
            "subject": {"reference": "Patient/pat-1"}}  # fmt: skip
    response = requests.put(f"{smart.base}/Flag/flag-1", json=flag, timeout=10,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert response.status_code == 201
    from sqlalchemy import select

    from gateway.store.schema import resource_version

    with smart.app.extensions["database"].connect() as connection:
        source = connection.execute(
            select(resource_version.c.source).where(resource_version.c.fhir_id == "flag-1")
        ).scalar_one()
    assert source == "client:westside-ehr"
    read_only = smart.backend_token(smart.add_backend("reader", scope="system/*.rs"), "system/*.rs")
    denied = requests.put(f"{smart.base}/Flag/flag-1", json=flag, timeout=10,
                          headers={"Authorization": f"Bearer {read_only}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert denied.status_code == 403


# -- JWKS by URL --------------------------------------------------------------------------------------------


class _JwksServer:
    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_registered_jwks_url_is_fetched_cached_and_matched_by_jku(smart: Harness, jwks_server: _JwksServer) -> None:
    backend = smart.add_backend("cad-by-url", alg="ES384", purpose="dispatch", scope="system/Patient.rs",
                                jwks_uri=jwks_server.url)  # fmt: skip
    jwks_server.document = {"keys": [backend.key.as_dict(private=False)]}
    for _ in range(2):
        assert smart.backend_token_response(backend, "system/Patient.rs").status_code == 200
    assert jwks_server.hits == 1  # Cache-Control: max-age=300 honoured
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": smart.assertion(backend, {"jku": jwks_server.url})}  # fmt: skip
    assert _backend_error(smart, form).status_code == 200
    form["client_assertion"] = smart.assertion(backend, {"jku": jwks_server.url + "?evil"})
    assert _backend_error(smart, form).json()["error"] == "invalid_client"
    assert jwks_server.hits == 1  # the unregistered jku was never fetched


def test_an_ehr_changes_only_what_it_wrote(smart: Harness) -> None:
    def headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    eastside = smart.backend_token(smart.add_backend("eastside-otp-ehr"))
    westside = smart.backend_token(smart.add_backend("westside-ehr"))
    flag = {"resourceType": "Flag", "id": "flag-east", "status": "active", "code": {"text": "Prefers female staff"},
            "subject": {"reference": "Patient/pat-1"}}  # fmt: skip
    url = f"{smart.base}/Flag/flag-east"
    assert requests.put(url, json=flag, headers=headers(eastside), timeout=10).status_code == 201
    overwrite = requests.put(url, json={**flag, "status": "inactive"}, headers=headers(westside), timeout=10)
    assert overwrite.status_code == 403 and "another source" in overwrite.json()["issue"][0]["diagnostics"]
    assert requests.delete(url, headers=headers(westside), timeout=10).status_code == 403
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": {**flag, "status": "inactive"}, "request": {"method": "PUT", "url": "Flag/flag-east"}}]}  # fmt: skip
    in_bundle = requests.post(smart.base, json=bundle, headers=headers(westside), timeout=10)
    assert in_bundle.status_code == 403 and in_bundle.json()["issue"][0]["expression"][0].startswith("Bundle.entry[0]")
    assert (
        requests.put(url, json={**flag, "status": "inactive"}, headers=headers(eastside), timeout=10).status_code == 200
    )
    assert requests.delete(url, headers=headers(eastside), timeout=10).status_code == 204


def test_a_patient_token_write_whose_echo_is_withheld_is_still_a_clear_201(smart: Harness) -> None:
    """The write is authorized; the consent engine withholds its echo from this user (a peer
    specialist does not receive diagnoses): the answer is the write's (201, Location), not
    "Condition/None is not known"."""
    smart.add_user("sam", role="peer-specialist", practitioner=None)
    access = smart.app_token(scope="launch/patient patient/*.cruds", username="sam")["access_token"]
    headers = {"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"}
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/pat-1"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]}}  # fmt: skip
    created = requests.post(f"{smart.base}/Condition", json=condition, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    assert "None" not in created.text and created.headers["Location"].startswith(f"{smart.base}/Condition/")
    assert smart.get(created.headers["Location"].removeprefix(f"{smart.base}/"), access).status_code == 404
