"""The gateway as a SMART Backend Services client of one source: discovery, a signed client
assertion (exp within 5 minutes, a fresh jti), the token cached until shortly before it expires,
and GETs with timeouts and retries (429 and 5xx, honouring Retry-After, exponential back-off
with jitter). Plain Python over HTTP."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import requests
from joserfc import jwt

from gateway.pull.sources import Source

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 30
RETRIES = 4
ASSERTION_SECONDS = 300  # SMART Backend Services: no more than five minutes


class PullError(Exception):
    """The source refused or answered what it must not; the message is for the operator."""


class SourceClient:
    def __init__(self, source: Source, session: requests.Session | None = None, sleep: Any = time.sleep) -> None:
        self.source = source
        self.session = session or requests.Session()
        self.sleep = sleep
        self._token: tuple[str, float] | None = None
        self._token_url: str | None = None

    def token_url(self) -> str:
        if self._token_url is None:
            found = self._json("GET", f"{self.source.base_url}/.well-known/smart-configuration", auth=False)
            url = found.get("token_endpoint")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise PullError("the source's SMART configuration names no token endpoint")
            self._token_url = url
        return self._token_url

    def token(self) -> str:
        if self._token is not None and self._token[1] - time.time() > 60:
            return self._token[0]
        now = int(time.time())
        claims = {"iss": self.source.client_id, "sub": self.source.client_id, "aud": self.token_url(),
                  "iat": now, "exp": now + ASSERTION_SECONDS, "jti": uuid.uuid4().hex}  # fmt: skip
        header = {"alg": self.source.algorithm, "typ": "JWT", "kid": self.source.key.kid or ""}
        assertion = jwt.encode(header, claims, self.source.key, algorithms=[self.source.algorithm])
        form = {"grant_type": "client_credentials", "scope": self.source.scope,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}  # fmt: skip
        found = self._json("POST", self.token_url(), auth=False, data=form)
        token, expires_in = found.get("access_token"), found.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise PullError("the source's token response has no access token or lifetime")
        self._token = (token, time.time() + expires_in)
        return token

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._json("GET", url, auth=True, params=params)

    # -- Bulk Data ($export): kick-off, status, files ----------------------------------------------
    def kick_off(self, params: dict[str, str]) -> str:
        """Start a system-level export; the status URL to poll."""
        url = f"{self.source.base_url}/$export"
        answer = self._send("GET", url, params=params, headers={"Prefer": "respond-async"})
        location = answer.headers.get("Content-Location")
        if answer.status_code != 202 or not location:
            raise PullError(f"{url}: the export was not accepted ({answer.status_code} {answer.text[:200]})")
        return location

    def manifest(self, status_url: str, deadline_seconds: float = 3600) -> dict[str, Any]:
        """Poll the export's status, waiting as long as the server's Retry-After asks (within reason)."""
        waited = 0.0
        while waited < deadline_seconds:
            answer = self._send("GET", status_url)
            if answer.status_code == 200:
                found = _object(answer, status_url)
                if not isinstance(found.get("output"), list):
                    raise PullError(f"{status_url}: the export's manifest has no output list")
                return found
            if answer.status_code != 202:
                raise PullError(f"{status_url}: {answer.status_code} {answer.text[:200]}")
            retry = answer.headers.get("Retry-After", "")
            pause = min(120.0, float(retry)) if retry.strip().isdigit() else 5.0
            self.sleep(pause)
            waited += pause
        raise PullError(f"{status_url}: the export did not finish in time")

    def lines(self, url: str) -> Iterator[bytes]:
        """An NDJSON file, line by line as it arrives: never the whole file in memory."""
        answer = self._send("GET", url, stream=True)
        if answer.status_code != 200:
            raise PullError(f"{url}: {answer.status_code}")
        try:
            for line in answer.iter_lines():
                if line.strip():
                    yield line
        except requests.RequestException as error:
            raise PullError(f"{url}: the file broke off ({type(error).__name__})") from None

    def _json(self, method: str, url: str, auth: bool, **kwargs: Any) -> dict[str, Any]:
        answer = self._send(method, url, auth=auth, **kwargs)
        if answer.status_code >= 400:
            raise PullError(f"{url}: {answer.status_code} {answer.text[:300]}")
        return _object(answer, url)

    def _send(self, method: str, url: str, auth: bool = True, **kwargs: Any) -> requests.Response:
        """One request, retried on what a source may answer in passing: no answer, 429 and 5xx
        (back-off with jitter, honouring Retry-After), and, when authorised, one 401 (a token
        expired or revoked mid-sync gets one new token). The answer, whatever its status."""
        extra = kwargs.pop("headers", {})
        refreshed = False
        for attempt in range(RETRIES + 1):
            headers = {"Accept": "application/fhir+json", **extra}
            if auth:
                headers["Authorization"] = f"Bearer {self.token()}"
            try:
                answer = self.session.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
            except requests.RequestException as error:
                if attempt == RETRIES:
                    raise PullError(f"{url}: no answer ({type(error).__name__})") from None
                self._back_off(attempt, None)
                continue
            if answer.status_code == 401 and auth and not refreshed:
                self._token, refreshed = None, True
                continue
            if answer.status_code == 429 or answer.status_code >= 500:
                if attempt == RETRIES:
                    raise PullError(f"{url}: {answer.status_code} after {RETRIES + 1} tries")
                self._back_off(attempt, answer.headers.get("Retry-After"))
                continue
            return answer
        raise PullError(f"{url}: no answer")

    def _back_off(self, attempt: int, retry_after: str | None) -> None:
        wait = min(60.0, 0.5 * 2**attempt) * (0.5 + random.random())  # jitter: sources recover unherded
        if retry_after and retry_after.strip().isdigit():
            wait = max(wait, min(300.0, float(retry_after)))
        self.sleep(wait)


def _object(answer: requests.Response, url: str) -> dict[str, Any]:
    """The answer's JSON object, or a PullError that says what came instead."""
    try:
        found = orjson.loads(answer.content)  # pages are large: the fast parser
    except orjson.JSONDecodeError:
        raise PullError(f"{url}: the answer is not JSON") from None
    if not isinstance(found, dict):
        raise PullError(f"{url}: the answer is not a JSON object")
    return found
