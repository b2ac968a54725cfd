"""A faulty network between the gateway and its source: a real HTTP proxy in front of the EHR that
answers some searches with a fault instead (429 storms, 500s, a malformed page, a connection cut
mid-page, a token the EHR no longer accepts). Everything else it forwards, with the EHR's links
rewritten to go through it, as a real reverse proxy would."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import requests
from werkzeug.serving import make_server


class FaultyProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")  # the EHR's FHIR base URL
        self.plan: list[str] = []  # one fault per search, in order; "ok" forwards
        self.searches = 0
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self.base = f"http://127.0.0.1:{port}/fhir"
        self.server = make_server("127.0.0.1", port, self, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"].removeprefix("/fhir")
        query = environ.get("QUERY_STRING", "")
        search = not path.startswith("/.well-known") and environ["REQUEST_METHOD"] == "GET"
        fault = "ok"
        if search:
            self.searches += 1
            fault = self.plan.pop(0) if self.plan else "ok"
        if fault == "429":
            start_response("429 Too Many Requests", [("Retry-After", "0"), ("Content-Type", "application/json")])
            return [b'{"resourceType": "OperationOutcome"}']
        if fault == "500":
            start_response("500 Internal Server Error", [("Content-Type", "application/json")])
            return [b'{"resourceType": "OperationOutcome"}']
        if fault == "pending":  # a Bulk export's status: still running
            start_response("202 Accepted", [("Retry-After", "7"), ("X-Progress", "in progress")])
            return [b""]
        if fault == "401":
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
            return [b""]
        headers = {
            k: environ[f"HTTP_{k.upper()}"]
            for k in ("Authorization", "Accept", "Prefer")
            if f"HTTP_{k.upper()}" in environ
        }
        answer = requests.get(f"{self.target}{path}", params=query or None, headers=headers, timeout=30)
        body = answer.content.replace(self.target.encode(), self.base.encode())
        if fault == "malformed":
            body = body[: len(body) // 2]  # a page that is not JSON, delivered whole
        if fault == "invalid":  # a well-formed page with one resource no FHIR server should hold
            page = json.loads(body)
            first = page["entry"][0]["resource"]
            first["gender"] = "Martian (told the nurse on 2026-12-01)"
            body = json.dumps(page).encode()
        if fault == "cut":
            start_response("200 OK", [("Content-Type", "application/fhir+json"), ("Content-Length", str(len(body)))])
            return self._cut(body)
        passed = [("Content-Type", answer.headers.get("Content-Type", "application/fhir+json"))]
        for name in ("Content-Location", "Retry-After"):
            if name in answer.headers:
                passed.append((name, answer.headers[name].replace(self.target, self.base)))
        start_response(f"{answer.status_code} {answer.reason}", passed)
        return [body]

    @staticmethod
    def _cut(body: bytes) -> Iterator[bytes]:
        """Half the page, then the connection drops (the source killed mid-page)."""
        yield body[: len(body) // 2]
        raise ConnectionAbortedError("the source went away mid-page")
