"""Discovery documents: `.well-known/smart-configuration` (conformance.html), OpenID provider
metadata, and the CapabilityStatement's `oauth-uris` extension (kept for fhirclient-py and
Inferno's STU1 checks; its URLs equal the `.well-known` ones)."""

from __future__ import annotations

from typing import Any

from gateway.auth.assertions import ALGORITHMS

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
SCOPES_SUPPORTED = [
    "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access",
    "patient/*.rs", "patient/*.read", "user/*.rs", "user/*.read", "patient/Patient.rs", "patient/EpisodeOfCare.rs",
    "patient/CareTeam.rs", "patient/Consent.rs", "system/*.rs", "system/*.cud", "system/*.cruds",
]  # fmt: skip


def endpoints(root: str) -> dict[str, str]:
    return {
        "authorize": f"{root}/auth/authorize",
        "token": f"{root}/auth/token",
        "introspect": f"{root}/auth/introspect",
        "revoke": f"{root}/auth/revoke",
        "manage": f"{root}/auth/manage",
        "register": f"{root}/auth/register",
    }


def smart_configuration(issuer: str, root: str) -> dict[str, Any]:
    urls = endpoints(root)
    return {
        "issuer": issuer,
        "jwks_uri": f"{root}/auth/jwks.json",
        "authorization_endpoint": urls["authorize"],
        "token_endpoint": urls["token"],
        "introspection_endpoint": urls["introspect"],
        "revocation_endpoint": urls["revoke"],
        "management_endpoint": urls["manage"],
        "registration_endpoint": urls["register"],  # RFC 7591, with an operator's initial access token
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": CAPABILITIES,
    }


def openid_configuration(issuer: str, root: str) -> dict[str, Any]:
    urls = endpoints(root)
    return {
        "issuer": issuer,
        "authorization_endpoint": urls["authorize"],
        "token_endpoint": urls["token"],
        "jwks_uri": f"{root}/auth/jwks.json",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "name", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


def capability_security(root: str) -> dict[str, Any]:
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": name, "valueUri": url} for name, url in endpoints(root).items()],
            }
        ],
    }
