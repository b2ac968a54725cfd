"""Onboarding an EHR, played from docs/integrators.md: each `sh` block of the page, run as
written, against a live gateway, from a fresh key to an accepted Bundle. And the registration
endpoint's rules (RFC 7591) one by one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from joserfc.jwk import ECKey

from gateway.auth.registration import invite
from tests.conftest import LiveServer
from tests.gateway.auth.harness import PASSWORD, Harness

PAGE = Path(__file__).resolve().parents[3] / "docs" / "integrators.md"
OTP = "Organization/eastside-otp"


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)


def run(block: str, env: dict[str, str], where: Path) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, cwd=where, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, (block[:200], done.stdout, done.stderr)
    return done.stdout


def test_the_integrators_page_takes_an_ehr_from_a_fresh_key_to_an_accepted_bundle(
    smart_server: LiveServer, tmp_path: Path
) -> None:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    token = invite(smart_server.server.app.extensions["database"], OTP, True, datetime.utcnow())
    env = {**os.environ, "GATEWAY": harness.root, "INVITE": token, "PYTHON": sys.executable}
    steps = blocks()
    assert len(steps) == 4, "make a key, register, get a token and push, see how it went"
    started = time.monotonic()
    assert "made ehr-private-key.json" in run(steps[0], env, tmp_path)
    registered = run(steps[1], env, tmp_path)
    client_id, status = registered.split()[:2]
    assert status == "pending-approval"
    harness.accounts.set_client_disabled(client_id, False)  # the operator: gateway client approve <client_id>
    pushed = run(steps[2], env, tmp_path)
    assert pushed.strip() == "200 transaction-response"
    report = run(steps[3], env, tmp_path)
    assert report.startswith("1 pushes, 1 accepted;") and "Patient/onboarding-1 (Part 2)" in report, report
    assert time.monotonic() - started < 60  # the machine's part of "under an hour"
    client = harness.accounts.client(client_id)
    assert client is not None and client.organization == OTP and client.part2_program and client.purpose == "ehr"
    with smart_server.server.app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
        stored = repository.read("Patient", "onboarding-1")
    assert stored is not None and "42CFRPart2" in {c["code"] for c in stored.content["meta"]["security"]}


def register(harness: Harness, token: str, **changes: Any) -> requests.Response:
    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    metadata = {"client_name": "Harbor CMHC EHR", "token_endpoint_auth_method": "private_key_jwt",
                "grant_types": ["client_credentials"], "scope": "system/Patient.cru",
                "jwks": {"keys": [key.as_dict(private=False)]}}  # fmt: skip
    metadata.update(changes)
    return requests.post(f"{harness.root}/auth/register", json={k: v for k, v in metadata.items() if v is not None},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip


def test_registration_refuses_what_rfc_7591_and_the_gateway_do_not_allow(smart_server: LiveServer) -> None:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    database = smart_server.server.app.extensions["database"]
    assert register(harness, "not-an-invitation").status_code == 401
    token = invite(database, "Organization/harbor-cmhc", False, datetime.utcnow())
    for changes, field in (({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method"),
                           ({"scope": "user/*.rs"}, "scope"), ({"scope": "system/Nothing.cru"}, "scope"),
                           ({"jwks": None}, "jwks"), ({"client_name": "x"}, "client_name"),
                           ({"jwks": {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": "AAAA", "y": "AAAA"}]}},
                            "not a valid EC public key"),
                           ({"grant_types": ["authorization_code"]}, "grant_types")):  # fmt: skip
        refused = register(harness, token, **changes)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata", refused.text
        assert field in refused.json()["error_description"]
    made = register(harness, token)  # the invitation survived the refusals
    assert made.status_code == 201 and made.json()["status"] == "pending-approval"
    assert made.json()["organization"] == "Organization/harbor-cmhc" and made.json()["part2_program"] is False
    again = register(harness, token)
    assert again.status_code == 401 and "used" in again.json()["error_description"]  # once
    config = requests.get(f"{harness.base}/.well-known/smart-configuration", timeout=10).json()
    assert config["registration_endpoint"] == f"{harness.root}/auth/register"


def test_on_a_sandbox_a_registered_client_works_at_once(sandbox_server: LiveServer) -> None:
    harness = Harness(sandbox_server.base_url, sandbox_server.server.app)
    token = invite(sandbox_server.server.app.extensions["database"], OTP, True, datetime.utcnow())
    made = register(harness, token)
    assert made.status_code == 201 and made.json()["status"] == "active"
    client = harness.accounts.client(made.json()["client_id"])
    assert client is not None and not client.disabled
    assert json.loads(json.dumps(made.json()))["jwks"]["keys"][0]["kid"] == "k1"


def test_the_conformance_report_shows_refusals_with_their_reason_to_the_client_and_its_operator(
    smart_server: LiveServer,
) -> None:
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.push("eastside-otp-ehr", {"resourceType": "Patient", "id": "c-1", "name": [{"family": "Ito"}]}, part2=True,
                 organization=OTP)  # fmt: skip
    token = harness.backend_token(harness._backends["eastside-otp-ehr"], "system/*.cruds")
    bad = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Patient/c-2"}, "resource": {"resourceType": "Patient", "id": "c-3"}}]}  # fmt: skip
    assert requests.post(harness.base, json=bad, timeout=10, headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/fhir+json"}).status_code == 400  # fmt: skip
    report = requests.get(f"{harness.root}/auth/conformance", headers={"Authorization": f"Bearer {token}"},
                          timeout=10).json()  # fmt: skip
    assert [p["accepted"] for p in report["pushes"]] == [False, True]
    assert "must equal the id in the URL" in report["pushes"][0]["reason"]
    assert report["written"][0]["resource"] == "Patient/c-1" and report["written"][0]["part2"] is True
    assert requests.get(f"{harness.root}/auth/conformance", timeout=10).status_code == 401
    harness.add_user("root", role="admin", practitioner=None, organization=None)
    browser = requests.Session()
    login = browser.get(f"{harness.root}/auth/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert csrf
    browser.post(f"{harness.root}/auth/login", timeout=10, data={"csrf_token": csrf.group(1), "username": "root",
                                                                 "password": PASSWORD})  # fmt: skip
    page = browser.get(f"{harness.root}/operator/clients/eastside-otp-ehr/conformance", timeout=10)
    assert page.status_code == 200 and "400 refused" in page.text and "<td>Patient</td>" in page.text
    assert "c-1" not in page.text  # the operator sees types and labels, not whose records
