"""`private_key_jwt` client authentication (RFC 7523, SMART Backend Services and
client-confidential-asymmetric.html), stricter than Authlib's JWTBearerClientAssertion:

- only RS384, ES384, RS256, ES256 (never `none`, never HMAC);
- header `typ: JWT` and a `kid` that picks exactly one key of the right type;
- `iss` = `sub` = client_id, and equal to any `client_id` form parameter;
- `aud` = our token URL; `exp` at most five minutes ahead;
- `jti` never seen before for this issuer (the replay store is a table, shared by workers);
- `jku` only when it equals the registered JWKS URL: an arbitrary URL is never fetched.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.auth.accounts import Client, utcnow
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.database import writing
from gateway.store.schema import assertion_jti

log = logging.getLogger("gateway.auth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384", "RS256", "ES256"]
MAX_LIFETIME = 300  # seconds: SMART's limit on exp - now
DEFAULT_LEEWAY = 5  # seconds of clock difference tolerated between the client and us
MAX_JWKS_BYTES = 256 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")


class AssertionRefused(Exception):
    """The assertion does not authenticate the client; the message says why (for the log and
    the `invalid_client` error_description)."""


class JwksFetcher:
    """Registered JWKS URLs, fetched with requests and cached as their Cache-Control allows."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, *, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            hit = self._cache.get(url)
            if hit and not fresh and hit[0] > time.monotonic():
                return hit[1]
        try:
            response = requests.get(url, headers={"Accept": "application/json"}, timeout=self.timeout, stream=True)
            body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise AssertionRefused(f"the registered JWKS URL could not be fetched ({type(error).__name__})") from None
        if response.status_code != 200 or len(body) > MAX_JWKS_BYTES:
            raise AssertionRefused(f"the registered JWKS URL answered {response.status_code}")
        try:
            document = json.loads(body)
        except ValueError:
            raise AssertionRefused("the registered JWKS URL did not return JSON") from None
        cache_control = response.headers.get("Cache-Control", "")
        max_age = _MAX_AGE.search(cache_control)
        if max_age and "no-store" not in cache_control and "no-cache" not in cache_control:
            with self._lock:
                self._cache[url] = (time.monotonic() + min(int(max_age.group(1)), 86400), document)
        return dict(document) if isinstance(document, dict) else {}


class AssertionVerifier:
    def __init__(
        self,
        database: Engine,
        token_url: str,
        find_client: Callable[[str], Client | None],
        fetcher: JwksFetcher | None = None,
        clock: Clock = SYSTEM_CLOCK,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        self.database = database
        self.leeway = leeway
        self.clock = clock
        self.token_url = token_url
        self.find_client = find_client
        self.fetcher = fetcher or JwksFetcher()

    def verify(self, assertion: str, client_id_param: str | None, now: datetime | None = None) -> Client:
        now = now or utcnow(self.clock)
        try:
            compact = jws.extract_compact(assertion.encode())
        except (JoseError, ValueError, UnicodeError):
            raise AssertionRefused("the client_assertion is not a compact JWS") from None
        header = compact.protected
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AssertionRefused(f"alg {alg!r} is not accepted; use RS384 or ES384")
        if header.get("typ") not in ("JWT", None) and str(header.get("typ")).upper() != "JWT":
            raise AssertionRefused("the assertion's typ must be JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AssertionRefused("the assertion's header needs a kid")
        try:
            unverified = json.loads(compact.payload)
        except ValueError:
            raise AssertionRefused("the assertion's payload is not JSON") from None
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        if not isinstance(issuer, str) or not issuer:
            raise AssertionRefused("the assertion needs iss (the client_id)")
        if client_id_param and client_id_param != issuer:
            raise AssertionRefused("client_id does not match the assertion's iss")
        client = self.find_client(issuer)
        if client is None or client.disabled or client.kind != "asymmetric":
            raise AssertionRefused("no enabled asymmetric client with that client_id")
        key = self._key(client, header, kid, alg)
        try:
            token = jwt.decode(assertion, key, algorithms=[alg])
        except (JoseError, ValueError) as error:
            raise AssertionRefused(f"the signature does not verify ({type(error).__name__})") from None
        self._check_claims(token.claims, client, now)
        return client

    def _key(self, client: Client, header: dict[str, Any], kid: str, alg: str) -> RSAKey | ECKey:
        jku = header.get("jku")
        if jku is not None and jku != client.jwks_uri:
            raise AssertionRefused("jku is not the JWKS URL registered for this client")
        wanted = "RSA" if alg.startswith("RS") else "EC"

        def pick(document: dict[str, Any]) -> list[dict[str, Any]]:
            keys = document.get("keys") if isinstance(document, dict) else None
            return [k for k in keys or [] if isinstance(k, dict) and k.get("kid") == kid and k.get("kty") == wanted]

        if client.jwks_uri:
            candidates = pick(self.fetcher.get(client.jwks_uri))
            if not candidates:  # a rotated key: the cached set may be stale
                candidates = pick(self.fetcher.get(client.jwks_uri, fresh=True))
        else:
            candidates = pick(client.jwks or {})
        if len(candidates) != 1:
            raise AssertionRefused(f"the client's JWKS has {len(candidates)} {wanted} keys with kid {kid!r}; need 1")
        try:
            key = KeySet.import_key_set({"keys": candidates}).keys[0]
        except (JoseError, ValueError) as error:
            raise AssertionRefused(f"the registered key {kid!r} cannot be used ({type(error).__name__})") from None
        if not isinstance(key, RSAKey | ECKey):
            raise AssertionRefused("only RSA and EC keys are accepted")
        return key

    def _check_claims(self, claims: dict[str, Any], client: Client, now: datetime) -> None:
        if claims.get("sub") != client.client_id or claims.get("iss") != client.client_id:
            raise AssertionRefused("iss and sub must both be the client_id")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.token_url not in audiences:
            raise AssertionRefused(f"aud must be the token URL {self.token_url}")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise AssertionRefused("exp is required (a number)")
        epoch = (now - datetime(1970, 1, 1)).total_seconds()
        if exp < epoch - self.leeway:
            raise AssertionRefused(f"the assertion has expired (clock leeway {self.leeway} s)")
        if exp > epoch + MAX_LIFETIME + self.leeway:
            raise AssertionRefused("exp is more than five minutes ahead")
        for early in ("nbf", "iat"):
            value = claims.get(early)
            if isinstance(value, int | float) and value > epoch + self.leeway:
                raise AssertionRefused(f"{early} is in the future (clock leeway {self.leeway} s)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise AssertionRefused("jti is required (a string of at most 255 characters)")
        self._remember(client.client_id, jti, datetime(1970, 1, 1) + timedelta(seconds=exp + self.leeway), now)

    def _remember(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> None:
        """Record the jti; a second use within its lifetime is a replay. The primary key makes
        check-and-record one atomic step across workers."""
        try:
            with writing(self.database) as connection:
                connection.execute(delete(assertion_jti).where(assertion_jti.c.expires_at < now))
                connection.execute(insert(assertion_jti).values(issuer=issuer, jti=jti, expires_at=expires_at))
        except IntegrityError:
            raise AssertionRefused("this jti has been used before (replay)") from None
