"""The app's side of SMART App Launch 2.2, as a confidential asymmetric client: discovery, the
authorization request with PKCE (S256), the code exchange and refreshes authenticated with a
signed client assertion (private_key_jwt), and revocation at sign-out. Plain Python over HTTP:
no Flask here, and nothing of the gateway's code, only its public endpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 15


class SmartError(Exception):
    """The gateway refused, or answered what a SMART server must not; the message is for people."""


@dataclass(frozen=True)
class Endpoints:
    issuer: str  # the FHIR base URL (`iss`)
    authorize: str
    token: str
    revoke: str | None


@dataclass
class Tokens:
    access_token: str
    expires_at: float
    scope: str
    refresh_token: str | None = None
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    # Who signed in, from the id_token: what the app may offer them (the gateway decides anyway).
    user_name: str | None = None
    role: str | None = None
    medical_personnel: bool = False
    treating_role: bool = False

    @classmethod
    def from_response(cls, body: dict[str, Any], previous: Tokens | None = None) -> Tokens:
        expires_in = body.get("expires_in")
        if not isinstance(body.get("access_token"), str) or not isinstance(expires_in, int):
            raise SmartError("the token response lacks an access token or its lifetime")
        claims = _id_token_claims(body.get("id_token"))
        before = previous.as_dict() if previous else {}
        return cls(
            access_token=body["access_token"],
            expires_at=time.time() + expires_in,
            scope=str(body.get("scope") or before.get("scope") or ""),
            refresh_token=body.get("refresh_token") or before.get("refresh_token"),
            patient=body.get("patient") or before.get("patient"),
            encounter=body.get("encounter") or before.get("encounter"),
            fhir_user=_text(claims.get("fhirUser")) or before.get("fhir_user"),
            context={k: v for k, v in body.items() if k in ("need_patient_banner", "smart_style_url")},
            user_name=_text(claims.get("name")) or before.get("user_name"),
            role=_text(claims.get("role")) or before.get("role"),
            medical_personnel=claims.get("medical_personnel", before.get("medical_personnel")) is True,
            treating_role=claims.get("treating_role", before.get("treating_role")) is True,
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokens:
        return cls(**data)


def _id_token_claims(id_token: Any) -> dict[str, Any]:
    """The claims of the id_token the app was just given over TLS by the token endpoint it
    authenticated to (OIDC Core 3.1.3.7: its signature need not be checked then)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def load_key(path: Path) -> RSAKey | ECKey:
    """The app's private key: a JWK (JSON) or a PEM file."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        jwk = json.loads(data)
        return ECKey.import_key(jwk) if jwk.get("kty") == "EC" else RSAKey.import_key(jwk)
    try:
        return ECKey.import_key(data)
    except (ValueError, TypeError):
        return RSAKey.import_key(data)


class SmartClient:
    def __init__(self, fhir_base_url: str, client_id: str, key_file: Path, redirect_uri: str) -> None:
        self.fhir_base_url = fhir_base_url
        self.client_id = client_id
        self.key_file = key_file
        self.redirect_uri = redirect_uri
        self._key: RSAKey | ECKey | None = None
        self._endpoints: Endpoints | None = None

    @property
    def key(self) -> RSAKey | ECKey:
        """Read at first use: the app may start before its operator (or the demo) has made it."""
        if self._key is None:
            try:
                self._key = load_key(self.key_file)
            except (OSError, ValueError) as error:
                raise SmartError(f"the app's private key cannot be read from {self.key_file}: {error}") from None
        return self._key

    @property
    def algorithm(self) -> str:
        return "ES384" if isinstance(self.key, ECKey) else "RS384"

    def endpoints(self) -> Endpoints:
        """From `.well-known/smart-configuration`, fetched once."""
        if self._endpoints is None:
            try:
                answer = requests.get(f"{self.fhir_base_url}/.well-known/smart-configuration", timeout=TIMEOUT)
                answer.raise_for_status()
                found = answer.json()
            except (requests.RequestException, ValueError) as error:
                raise SmartError(f"the gateway's SMART configuration cannot be read: {error}") from None
            if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in
                                                      ("authorization_endpoint", "token_endpoint")):  # fmt: skip
                raise SmartError("the gateway's SMART configuration names no authorization or token endpoint")
            self._endpoints = Endpoints(self.fhir_base_url, found["authorization_endpoint"],
                                        found["token_endpoint"], found.get("revocation_endpoint"))  # fmt: skip
        return self._endpoints

    def authorize_url(self, state: str, challenge: str, scope: str, launch: str | None = None) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "aud": self.fhir_base_url,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if launch:
            query["launch"] = launch
        return f"{self.endpoints().authorize}?{urlencode(query)}"

    def exchange(self, code: str, verifier: str) -> Tokens:
        body = self._token_request({"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": self.redirect_uri, "code_verifier": verifier})  # fmt: skip
        return Tokens.from_response(body)

    def refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise SmartError("the session has no refresh token: sign in again")
        body = self._token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
        return Tokens.from_response(body, tokens)

    def revoke(self, tokens: Tokens) -> None:
        """Sign-out: the refresh token's grant (the gateway revokes the whole family) and the
        access token. A failure is not the user's problem: the session ends anyway."""
        revoke = self.endpoints().revoke
        if revoke is None:
            return
        for token in (tokens.refresh_token, tokens.access_token):
            if token:
                try:
                    requests.post(revoke, data={"token": token, **self._client_authentication()}, timeout=TIMEOUT)
                except requests.RequestException:
                    pass

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            answer = requests.post(self.endpoints().token, data={**form, **self._client_authentication()},
                                   timeout=TIMEOUT)  # fmt: skip
            body = answer.json()
        except (requests.RequestException, ValueError) as error:
            raise SmartError(f"the gateway's token endpoint did not answer: {error}") from None
        if answer.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise SmartError(f"the gateway refused: {reason or answer.status_code}")
        return body

    def _client_authentication(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.endpoints().token,
                  "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}  # fmt: skip
        header = {"alg": self.algorithm, "typ": "JWT", "kid": self.key.kid or ""}
        assertion = jwt.encode(header, claims, self.key, algorithms=[self.algorithm])
        return {"client_id": self.client_id, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
