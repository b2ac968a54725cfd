"""A bounded schemathesis run over the gateway's own OpenAPI (`/fhir/api-docs`), as `.ci/run`
does on SQLite and on PostgreSQL: `python -m tests.fuzz.run [--database-url URL] [--seconds N]`.

It starts what it needs: a fresh store (a temporary SQLite file, or a new database on the given
PostgreSQL server, dropped afterwards) with the demo records, `gateway serve` on a free port, and
an EHR backend client whose token every generated request carries. It fails on any 5xx and on any
error that is not an OperationOutcome (tests/fuzz/checks.py)."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The crisis-response types and the system endpoints; the other R4 types share their code paths.
TYPES = ("Patient", "EpisodeOfCare", "CareTeam", "Consent", "Encounter", "Condition", "Flag", "CarePlan",
         "Observation", "Organization", "Practitioner", "PractitionerRole", "RelatedPerson", "Bundle")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "gateway"), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def _register_backend(env: dict[str, str]) -> ECKey:
    """An EHR of a demo program (its own records are readable), signing with ES384."""
    from gateway.auth.accounts import Accounts
    from gateway.store.database import open_database

    key = ECKey.generate_key("P-384", parameters={"kid": uuid.uuid4().hex[:16]})
    database = open_database(env["GATEWAY_DATABASE_URL"])
    try:
        Accounts(database).add_client(client_id="fuzz-ehr", name="schemathesis", kind="asymmetric", purpose="ehr",
                                      scope="system/*.cruds", jwks={"keys": [key.as_dict(private=False)]},
                                      organization="Organization/harbor-cmhc")  # fmt: skip
    finally:
        database.dispose()
    return key


def _token(root: str, key: ECKey) -> str:
    now = int(time.time())
    claims = {"iss": "fuzz-ehr", "sub": "fuzz-ehr", "aud": f"{root}/auth/token", "exp": now + 290, "iat": now,
              "jti": secrets.token_hex(16)}  # fmt: skip
    assertion = jwt.encode({"alg": "ES384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES384"])
    answer = requests.post(f"{root}/auth/token", timeout=30, data={
        "grant_type": "client_credentials", "scope": "system/*.cruds",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to make a scratch database on (default: SQLite)")
    parser.add_argument("--seconds", type=int, default=120, help="schemathesis's time budget")
    options = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        scratch_database(options.database_url, Path(scratch), "fuzz") as database_url,
    ):
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update({"GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port), "GATEWAY_WORKERS": "2",
                    "GATEWAY_AUDIT_SPOOL_DIR": str(Path(scratch) / "spool")})  # fmt: skip
        _gateway(env, "db", "upgrade")
        _gateway(env, "demo", "--patients", "10")
        key = _register_backend(env)
        root = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([str(BIN / "gateway"), "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{root}/healthz", timeout=2).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            token = _token(root, key)
            include = "|".join(TYPES)
            command = [
                str(BIN / "st"), "run", f"{root}/fhir/api-docs",
                "--header", f"Authorization: Bearer {token}",
                "--checks", "not_a_server_error,errors_are_operation_outcomes",
                "--include-path-regex", rf"^/(metadata|_history|({include})(/.*)?)?$",
                "--phases", "examples,coverage,fuzzing",
                "--max-time", str(options.seconds),
                "--workers", "1",  # the coverage phase is not thread-safe (hypothesis lambda descriptions)
                "--request-timeout", "30",
                "--suppress-health-check", "all",
                "--max-failures", "25",
                "--no-color",
            ]  # fmt: skip
            run_env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.checks", "PYTHONPATH": str(ROOT)}
            # Its cache of crashes goes in the scratch directory, not in the checkout.
            return subprocess.run(command, env=run_env, cwd=scratch, check=False).returncode
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
