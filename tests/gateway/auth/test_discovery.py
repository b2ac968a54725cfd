"""Discovery: .well-known/smart-configuration, OpenID metadata, JWKS, CapabilityStatement
security, and CORS as app-launch.html ("Considerations for CORS") asks."""

from __future__ import annotations

import requests

from tests.gateway.auth.harness import Harness


def test_smart_configuration_is_json_whatever_accept_says(smart: Harness) -> None:
    response = requests.get(f"{smart.base}/.well-known/smart-configuration", headers={"Accept": "application/fhir+xml"},
                            timeout=10)  # fmt: skip
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    config = response.json()
    for name in ("authorization_endpoint", "token_endpoint", "introspection_endpoint", "revocation_endpoint",
                 "management_endpoint", "jwks_uri", "issuer"):  # fmt: skip
        assert config[name].startswith("http://127.0.0.1:"), name
    assert "authorization_code" in config["grant_types_supported"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    required = {"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "sso-openid-connect", "context-banner", "context-style",
                "permission-v1", "permission-v2", "permission-offline", "permission-patient", "permission-user",
                "authorize-post", "context-ehr-patient", "context-standalone-patient"}  # fmt: skip
    assert required <= set(config["capabilities"])
    assert all(isinstance(c, str) for c in config["capabilities"])


def test_capability_statement_carries_the_same_endpoints(smart: Harness) -> None:
    config = requests.get(f"{smart.base}/.well-known/smart-configuration", timeout=10).json()
    metadata = requests.get(f"{smart.base}/metadata", headers={"Accept": "application/json"}, timeout=10)
    assert metadata.status_code == 200  # public, no token
    security = metadata.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {
        "authorize": config["authorization_endpoint"],
        "token": config["token_endpoint"],
        "introspect": config["introspection_endpoint"],
        "revoke": config["revocation_endpoint"],
        "manage": config["management_endpoint"],
        "register": config["registration_endpoint"],
    }


def test_capability_statement_with_security_is_strict_r4(smart: Harness) -> None:
    from fhirclient.models.capabilitystatement import CapabilityStatement

    body = requests.get(f"{smart.base}/metadata", timeout=10).json()
    CapabilityStatement(body, strict=True)  # raises on a missing or superfluous element


def test_openid_configuration_and_jwks(smart: Harness) -> None:
    config = requests.get(f"{smart.base}/.well-known/openid-configuration", timeout=10).json()
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                 "subject_types_supported", "id_token_signing_alg_values_supported"):  # fmt: skip
        assert config[name]
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert any(k["kty"] == "RSA" and k["kid"] for k in keys)
    assert all("d" not in k for k in keys)


def test_key_rotation_keeps_the_old_key_published(smart: Harness) -> None:
    smart.server.keys.forget()  # the store was emptied between tests; the worker's cache was not
    before = {k["kid"] for k in smart.server.keys.jwks()["keys"]}
    result = smart.server.keys.rotate()
    after = {k["kid"] for k in requests.get(f"{smart.root}/auth/jwks.json", timeout=10).json()["keys"]}
    assert before < after and result["kid"] in after
    assert smart.server.keys.current().kid == result["kid"]


def test_cors(smart: Harness) -> None:
    app_origin = {"Origin": "http://127.0.0.1:9"}
    stranger = {"Origin": "https://evil.example"}
    discovery = requests.get(f"{smart.base}/.well-known/smart-configuration", headers=stranger, timeout=10)
    assert discovery.headers["Access-Control-Allow-Origin"] == "*"
    assert (
        requests.get(f"{smart.base}/metadata", headers=stranger, timeout=10).headers["Access-Control-Allow-Origin"]
        == "*"
    )
    preflight = requests.options(
        f"{smart.base}/Patient/pat-1",
        headers={
            **app_origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    token = requests.options(f"{smart.root}/auth/token", headers=app_origin, timeout=10)
    assert token.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    denied = requests.get(f"{smart.base}/Patient/pat-1", headers=stranger, timeout=10)
    assert "Access-Control-Allow-Origin" not in denied.headers
