"""A SMART harness for tests over real HTTP: registers clients and users in the live gateway's
store, walks the sign-in and consent pages like a browser would, and makes backend assertions."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lxml.html
import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.auth.accounts import Accounts, Client
from gateway.auth.server import SmartServer

REDIRECT = "http://127.0.0.1:9/callback"  # nothing listens there: redirects are read, not followed
PASSWORD = "correct horse battery staple"
APP_SCOPE = "launch launch/patient openid fhirUser profile offline_access online_access patient/*.cruds user/*.rs"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Backend:
    client_id: str
    key: RSAKey | ECKey
    alg: str
    kid: str


@dataclass
class Authorization:
    """What the app saw at its redirect URI."""

    status: int
    location: str = ""
    params: dict[str, str] = field(default_factory=dict)
    body: str = ""


class Harness:
    def __init__(self, base_url: str, app: Flask) -> None:
        self.base = base_url
        self.root = base_url.removesuffix("/fhir")
        self.token_url = f"{self.root}/auth/token"
        self.app = app
        self.server: SmartServer = app.extensions["smart_server"]
        self.accounts: Accounts = self.server.accounts
        self._backends: dict[str, Backend] = {}

    # -- registration ------------------------------------------------------------------------
    def add_app(
        self, client_id: str = "responder-app", kind: str = "public", scope: str = APP_SCOPE, **extra: Any
    ) -> tuple[Client, str | None]:
        extra.setdefault("redirect_uris", [REDIRECT])
        extra.setdefault("launch_url", "http://127.0.0.1:9/launch")
        return self.accounts.add_client(
            client_id=client_id, name="Responder app", kind=kind, purpose="app", scope=scope, **extra
        )

    def add_user(self, username: str = "ada", role: str = "crisis-clinician", **extra: Any) -> None:
        extra.setdefault("practitioner", "Practitioner/clinician-ada")
        extra.setdefault("organization", "Organization/county-mobile-crisis")
        extra.setdefault("display_name", "Ada Lovelace" if username == "ada" else f"{username.title()} ({role})")
        self.accounts.add_user(username=username, password=PASSWORD, role=role, **extra)

    def add_backend(
        self,
        client_id: str = "eastside-ehr",
        alg: str = "RS384",
        scope: str = "system/*.cruds",
        purpose: str = "ehr",
        jwks_uri: str | None = None,
    ) -> Backend:
        kid = uuid.uuid4().hex[:16]
        key: RSAKey | ECKey
        if alg.startswith("RS"):
            key = RSAKey.generate_key(2048, parameters={"kid": kid})
        else:
            key = ECKey.generate_key("P-384" if alg == "ES384" else "P-256", parameters={"kid": kid})
        public = {"keys": [key.as_dict(private=False)]}
        self.accounts.add_client(
            client_id=client_id,
            name=f"{client_id} backend",
            kind="asymmetric",
            purpose=purpose,
            scope=scope,
            jwks=None if jwks_uri else public,
            jwks_uri=jwks_uri,
            organization="Organization/eastside-otp" if purpose == "ehr" else None,
        )
        backend = self._backends[client_id] = Backend(client_id, key, alg, kid)
        return backend

    # -- backend services --------------------------------------------------------------------
    def assertion(self, backend: Backend, header: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": backend.client_id,
            "sub": backend.client_id,
            "aud": self.token_url,
            "exp": now + 240,
            "iat": now,
            "jti": secrets.token_hex(32),
        }
        body.update(claims)
        head = {"alg": backend.alg, "kid": backend.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(head, {k: v for k, v in body.items() if v is not None}, backend.key, algorithms=[backend.alg])

    def backend_token_response(self, backend: Backend, scope: str = "system/*.cruds", **form: str) -> requests.Response:
        data = {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(backend),
            **form,
        }
        return requests.post(self.token_url, data=data, timeout=10)

    def backend_token(self, backend: Backend, scope: str = "system/*.cruds") -> str:
        response = self.backend_token_response(backend, scope)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def push(self, client_id: str, *resources: dict[str, Any], part2: bool = False,
             organization: str = "Organization/eastside-otp") -> None:  # fmt: skip
        """PUT resources in a transaction as EHR `client_id` (registered on first use), whose
        organization and Part 2 registration are set as given."""
        from sqlalchemy import update

        from gateway.store.schema import oauth_client

        backend = self._backends.get(client_id) or self.add_backend(client_id)
        with self.app.extensions["database"].begin() as connection:
            connection.execute(update(oauth_client).where(oauth_client.c.client_id == client_id)
                               .values(part2_program=part2, organization=organization))  # fmt: skip
        self._post_transaction(self.backend_token(backend), resources)

    def _post_transaction(self, token: str, resources: tuple[dict[str, Any], ...]) -> None:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources
            ],
        }
        response = requests.post(
            self.base, json=bundle, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
            timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text

    def seed(self, *resources: dict[str, Any]) -> None:
        """Store resources through the API, as an EHR pushing a transaction Bundle."""
        self.push("seeding-ehr", *resources)

    # -- app launch ---------------------------------------------------------------------------
    def authorize(
        self,
        browser: requests.Session,
        client_id: str = "responder-app",
        scope: str = "launch/patient openid fhirUser offline_access patient/*.rs",
        patient: str | None = "pat-1",
        challenge: str | None = None,
        method: str | None = "S256",
        username: str = "ada",
        decision: str = "approve",
        **params: str,
    ) -> Authorization:
        """Walk authorize -> sign in -> consent like a browser; returns where the app was sent."""
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": secrets.token_urlsafe(16),
            "aud": self.base,
        }
        if challenge is not None:
            query["code_challenge"] = challenge
        if method is not None:
            query["code_challenge_method"] = method
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        response = browser.get(f"{self.root}/auth/authorize", params=query, allow_redirects=False, timeout=10)
        return self.walk(browser, response, patient, username, decision)

    def walk(
        self,
        browser: requests.Session,
        response: requests.Response,
        patient: str | None = "pat-1",
        username: str = "ada",
        decision: str = "approve",
    ) -> Authorization:
        """From the authorize endpoint's answer through sign-in and consent to the app's redirect."""
        if response.status_code == 303 and "/auth/login" in response.headers["Location"]:
            login_page = browser.get(
                self.root + response.headers["Location"]
                if response.headers["Location"].startswith("/")
                else response.headers["Location"],
                timeout=10,
            )
            form = [*_form(login_page.text), ("username", username), ("password", PASSWORD)]
            response = browser.post(f"{self.root}/auth/login", data=form, allow_redirects=False, timeout=10)
            if response.status_code != 303:
                return Authorization(response.status_code, body=response.text)
            response = browser.get(self.root + response.headers["Location"], allow_redirects=False, timeout=10)
        if response.status_code != 200:
            return _redirected(response)
        form = [*_form(response.text), ("decision", decision)]
        if patient is not None:
            form.append(("patient", patient))
        response = browser.post(f"{self.root}/auth/authorize/consent", data=form, allow_redirects=False, timeout=10)
        return _redirected(response)

    def code_for(self, browser: requests.Session, **kwargs: Any) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        result = self.authorize(browser, challenge=challenge, **kwargs)
        assert "code" in result.params, (result.status, result.params, result.body[:500])
        return result.params["code"], verifier

    def exchange(
        self, code: str, verifier: str | None, client_id: str = "responder-app", **extra: Any
    ) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id}
        if verifier is not None:
            data["code_verifier"] = verifier
        auth = extra.pop("auth", None)
        data.update(extra)
        return requests.post(self.token_url, data=data, auth=auth, timeout=10)

    def app_token(self, **kwargs: Any) -> dict[str, Any]:
        code, verifier = self.code_for(requests.Session(), **kwargs)
        response = self.exchange(code, verifier, client_id=kwargs.get("client_id", "responder-app"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def get(self, path: str, token: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        return requests.get(f"{self.base}/{path}", headers=headers, timeout=10, **kwargs)


def _form(html: str) -> list[tuple[str, str]]:
    """What a browser would submit of the page's first form: hidden fields and checked boxes."""
    document = lxml.html.fromstring(html)
    fields = document.xpath("(//form)[1]//input[@type='hidden' or (@type='checkbox' and @checked)]")
    found = [(str(field.get("name")), str(field.get("value") or "")) for field in fields]
    for select in document.xpath("(//form)[1]//select"):
        options = select.xpath("./option[@selected]") or select.xpath("./option")
        if options:
            found.append((str(select.get("name")), str(options[0].get("value"))))
    return found


def _redirected(response: requests.Response) -> Authorization:
    location = response.headers.get("Location", "")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()} if location else {}
    return Authorization(response.status_code, location, params, response.text)
