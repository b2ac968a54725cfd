"""`gateway serve` for real: gunicorn on a free port, the same SQLite or PostgreSQL store."""

from __future__ import annotations

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
