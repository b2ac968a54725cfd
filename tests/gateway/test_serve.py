"""`gateway serve` for real: gunicorn on a free port, the same SQLite or PostgreSQL store."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from tests.gateway.auth.harness import Harness
from tests.gateway.http.test_rest import patient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _gateway_serve(env: dict[str, str], *args: str, probe: str, verify: str | bool = True) -> Iterator[None]:
    """`gateway serve` in a child process, up once `probe` (its /healthz) answers."""
    gateway = str(Path(sys.executable).parent / "gateway")
    process = subprocess.Popen([gateway, "serve", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine can take a while to fork workers
        while time.monotonic() < deadline:
            try:
                if requests.get(probe, timeout=5, verify=verify).status_code == 200:
                    break
            except requests.RequestException:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            process.terminate()
        if process.poll() is not None:
            raise RuntimeError("gateway serve did not come up: " + process.stderr.read(2000).decode())  # type: ignore[union-attr]
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stderr:
            process.stderr.close()


@pytest.fixture()
def served(database_url: str) -> Iterator[str]:
    port = _free_port()
    # GATEWAY_PORT alone: the base URL (Location headers, links) follows it.
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port)}
    env.pop("GATEWAY_BASE_URL", None)
    with _gateway_serve(env, probe=f"http://127.0.0.1:{port}/healthz"):
        yield f"http://127.0.0.1:{port}/fhir"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, as an operator would make with openssl."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_gateway_serve_speaks_tls_with_certfile_and_keyfile(database_url: str, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port)}
    env.pop("GATEWAY_BASE_URL", None)
    root = f"https://127.0.0.1:{port}"
    with _gateway_serve(env, "--certfile", str(cert), "--keyfile", str(key), probe=f"{root}/healthz", verify=str(cert)):
        metadata = requests.get(f"{root}/fhir/metadata", timeout=10, verify=str(cert))
        assert metadata.status_code == 200
        assert metadata.json()["implementation"]["url"] == f"{root}/fhir"  # the base URL follows TLS
        discovery = requests.get(f"{root}/fhir/.well-known/smart-configuration", timeout=10, verify=str(cert)).json()
        assert discovery["token_endpoint"] == f"{root}/auth/token"
        with pytest.raises(requests.exceptions.SSLError):  # an unknown certificate is not trusted
            requests.get(f"{root}/healthz", timeout=10)
        with pytest.raises(requests.ConnectionError):  # and nothing answers plain HTTP there
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    gateway = str(Path(sys.executable).parent / "gateway")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run([gateway, "serve", "--certfile", str(cert)], env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "tls_certfile and tls_keyfile go together" in result.stderr


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


def test_two_gateways_on_one_machine_share_no_control_socket(database_url: str, tmp_path: Path) -> None:
    """gunicorn puts a control socket at one path per user; two gateways fought over it."""
    home = tmp_path / "home"
    home.mkdir()
    ports = [_free_port(), _free_port()]
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "HOME": str(home)}
    env.pop("GATEWAY_BASE_URL", None)
    env.pop("XDG_RUNTIME_DIR", None)
    first, second = ({**env, "GATEWAY_PORT": str(port)} for port in ports)
    with _gateway_serve(first, probe=f"http://127.0.0.1:{ports[0]}/healthz"), \
         _gateway_serve(second, probe=f"http://127.0.0.1:{ports[1]}/healthz"):  # fmt: skip
        for port in ports:
            assert requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=10).status_code == 200
        assert not list(home.rglob("*.ctl")), list(home.rglob("*"))
