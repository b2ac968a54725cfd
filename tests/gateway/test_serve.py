"""`gateway serve` for real: gunicorn on a free port, the same SQLite or PostgreSQL store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.gateway.auth.harness import Harness
from tests.gateway.http.test_rest import patient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port), "GATEWAY_BASE_URL": base}
    gateway = str(Path(sys.executable).parent / "gateway")
    process = subprocess.Popen([gateway, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine can take a while to fork workers
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("gateway serve did not come up: " + process.stderr.read(2000).decode())  # type: ignore[union-attr]
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stderr:
            process.stderr.close()


def test_gateway_serve_answers_fhir_over_gunicorn(served: str, app: Flask) -> None:
    metadata = requests.get(f"{served}/metadata", timeout=10)
    assert metadata.status_code == 200
    assert metadata.headers["Content-Type"].startswith("application/fhir+json")
    body = {"json": patient(), "timeout": 10}
    anonymous = requests.post(f"{served}/Patient", headers={"Content-Type": "application/fhir+json"}, **body)
    assert anonymous.status_code == 401  # SMART is on by default
    smart = Harness(served, app)  # registers in the same store the served gateway uses
    token = smart.backend_token(smart.add_backend("served-ehr"))
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}
    created = requests.post(f"{served}/Patient", headers=headers, **body)
    assert created.status_code == 201
    assert created.headers["Location"].startswith(served + "/Patient/")
    read = requests.get(created.headers["Location"], headers=headers, timeout=10)
    assert read.status_code == 200 and read.json()["name"][0]["family"] == "Rivera"
    head = requests.head(created.headers["Location"].split("/_history")[0], headers=headers, timeout=10)
    assert head.status_code == 200 and head.headers["ETag"] == 'W/"1"' and not head.content


def _raw(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_what_gunicorn_refuses_is_an_operation_outcome_too(served: str) -> None:
    """A request line or a header past gunicorn's limits never reaches the app: its answer is
    still a FHIR OperationOutcome, not gunicorn's HTML page."""
    long_line = b"GET /fhir/Patient?name=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body = _raw(served, long_line)
    assert status == 414 and headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(body)["resourceType"] == "OperationOutcome"
    big_header = b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20000 + b"\r\n\r\n"
    status, headers, body = _raw(served, big_header)
    assert status in (400, 431) and json.loads(body)["resourceType"] == "OperationOutcome"
    garbage = b"NOT A REQUEST\r\n\r\n"
    status, _, body = _raw(served, garbage)
    assert status == 400 and json.loads(body)["resourceType"] == "OperationOutcome"
