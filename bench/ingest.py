"""Ingest and read benchmark for the gateway's spine. Prints its figures; asserts nothing.

  .venv/bin/python bench/ingest.py [--large 100000] [--small 1000] [--rounds 3] [--postgres URL|'']

This machine's speed drifts by +-20% from minute to minute, so every comparison is made between
measurements taken side by side:

1. ingest: Synthea transaction Bundles POSTed over real HTTP to `gateway serve` (one gunicorn
   worker); before and after each of three passes the validation ceiling (validate_resource()
   in-process over the same resources) is measured again, and the ratio is taken per pass;
2. read latency: two servers, one holding --small and one --large patients, are sampled
   alternately (GET Patient/{id} and Patient?identifier=), and the medians compared;
3. memory: peak RSS of the large server while its patients are imported over HTTP.
Each runs on SQLite and, unless --postgres '' is given, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("GATEWAY_FIXTURES", ROOT.parent / "shared" / "fixtures"))
sys.path.insert(0, str(ROOT))

from gateway.fhir.validation import validate_resource  # noqa: E402

HEADERS = {"Content-Type": "application/fhir+json"}


def synthea() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    setup = [json.loads((FIXTURES / "synthea" / n).read_text()) for n in
             ("hospitalInformation1559319163815.json", "practitionerInformation1559319163815.json")]  # fmt: skip
    patients = [json.loads(p.read_text()) for p in sorted((FIXTURES / "synthea").glob("[A-Z]*.json"))]
    return setup, patients


def fresh_ids(bundle: dict[str, Any]) -> str:
    """The Bundle as JSON with new urn:uuids, so that each post creates new resources."""
    body = json.dumps(bundle)
    for entry in bundle["entry"]:
        body = body.replace(entry["fullUrl"].removeprefix("urn:uuid:"), str(uuid.uuid4()))
    return body


def validation_rate(resources: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for resource in resources:
        validate_resource(resource)
    return len(resources) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, what: str) -> None:
    """Poll `url` until it answers 2xx (30 s at most)."""
    for _ in range(300):
        try:
            requests.get(url, timeout=1).raise_for_status()
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


class Server:
    """`gateway serve` (gunicorn, one worker) on its own store."""

    def __init__(self, database_url: str, auth: str = "off", workers: int = 1, worker_class: str = "") -> None:
        # The spine is measured without tokens; bench/auth.py measures what SMART adds.
        port = free_port()
        self.base = f"http://127.0.0.1:{port}/fhir"
        env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port),
               "GATEWAY_BASE_URL": self.base, "GATEWAY_WORKERS": str(workers), "GATEWAY_AUTH": auth,
               **({"GATEWAY_WORKER_CLASS": worker_class} if worker_class else {})}  # fmt: skip
        gateway = str(Path(sys.executable).parent / "gateway")
        subprocess.run([gateway, "db", "upgrade"], env=env, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [gateway, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_up(f"http://127.0.0.1:{port}/healthz", "gateway serve")

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [self.process.pid, *(int(p) for p in children.read_text().split())] if children.exists() else []

    def peak_rss_mb(self) -> float:
        peak = 0.0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        return peak

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def ingest(server: Server, setup: list[dict[str, Any]], patients: list[dict[str, Any]], rounds: int) -> None:
    session = requests.Session()
    for bundle in setup:
        session.post(server.base, data=json.dumps(bundle), headers=HEADERS, timeout=120).raise_for_status()
    for bundle in patients:  # warm the worker: its first validation of each type loads model classes
        session.post(server.base, data=fresh_ids(bundle), headers=HEADERS, timeout=120).raise_for_status()
    resources = [e["resource"] for b in patients for e in b["entry"]]
    validation_rate(resources)
    rates, ceilings = [], []
    for _ in range(3):
        before = statistics.median(validation_rate(resources) for _ in range(3))
        bodies = [fresh_ids(b) for _ in range(rounds) for b in patients]
        started = time.perf_counter()
        for body in bodies:
            session.post(server.base, data=body, headers=HEADERS, timeout=120).raise_for_status()
        rates.append(len(resources) * rounds / (time.perf_counter() - started))
        # The host's speed drifts within seconds: the ceiling is taken on both sides of the pass.
        after = statistics.median(validation_rate(resources) for _ in range(3))
        ceilings.append((before + after) / 2)
    ratios = [rate / ceiling for rate, ceiling in zip(rates, ceilings, strict=True)]
    print(f"  ingest over HTTP: {statistics.median(rates):,.0f} resources/s (passes: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})")  # fmt: skip
    print(f"  validation ceiling beside each pass: {', '.join(f'{c:,.0f}' for c in ceilings)} resources/s")
    print(f"  ingest / ceiling: {statistics.median(ratios):.2f} (passes: {', '.join(f'{r:.2f}' for r in ratios)})")


def load_patients(server: Server, total: int) -> float:
    session = requests.Session()
    started = time.perf_counter()
    for offset in range(0, total, 1000):
        entries = [{"resource": {"resourceType": "Patient", "id": f"bench-{n}", "gender": "female",
                                 "identifier": [{"system": "urn:bench", "value": f"B{n}"}],
                                 "name": [{"family": f"Family{n % 5000}", "given": [f"Given{n}"]}],
                                 "birthDate": f"19{50 + n % 50}-0{1 + n % 9}-1{n % 9}"},
                    "request": {"method": "PUT", "url": f"Patient/bench-{n}"}}
                   for n in range(offset, min(total, offset + 1000))]  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        session.post(server.base, data=json.dumps(bundle), headers=HEADERS, timeout=300).raise_for_status()
    return total / (time.perf_counter() - started)


class Client:
    """One keep-alive connection (http.client), so the client's own overhead stays small."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def get(self, path: str, headers: dict[str, str] | None = None) -> float:
        started = time.perf_counter()
        self.connection.request(
            "GET", f"{self.path}/{path}", headers={"Accept": "application/fhir+json", **(headers or {})}
        )
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or not body:
            raise RuntimeError(f"GET {path}: {response.status}")
        return elapsed


def read_latency(small: Server, large: Server, sizes: tuple[int, int], samples: int = 600) -> None:
    clients = (Client(small.base), Client(large.base))
    for client, size in zip(clients, sizes, strict=True):
        for n in range(30):
            client.get(f"Patient/bench-{n % size}")
    by_id: tuple[list[float], list[float]] = ([], [])
    by_identifier: tuple[list[float], list[float]] = ([], [])
    for i in range(samples):
        for which, (client, size) in enumerate(zip(clients, sizes, strict=True)):
            n = (i * 7919) % size
            by_id[which].append(client.get(f"Patient/bench-{n}"))
            by_identifier[which].append(client.get(f"Patient?identifier=urn:bench|B{n}"))
    for label, timings in (("GET Patient/{id}", by_id), ("GET Patient?identifier=", by_identifier)):
        small_ms, large_ms = (statistics.median(t) * 1000 for t in timings)
        p95_small, p95_large = (statistics.quantiles(t, n=20)[-1] * 1000 for t in timings)
        print(f"  median {label}: {small_ms:.2f} ms @ {sizes[0]:,} patients, {large_ms:.2f} ms @ {sizes[1]:,}"
              f" (ratio {large_ms / small_ms:.2f}; p95 {p95_small:.2f} / {p95_large:.2f} ms)")  # fmt: skip


def run(name: str, database_urls: tuple[str, str, str], args: argparse.Namespace) -> None:
    print(f"[{name}]")
    setup, patients = synthea()
    server = Server(database_urls[0])
    try:
        ingest(server, setup, patients, args.rounds)
    finally:
        server.stop()
    small, large = Server(database_urls[1]), Server(database_urls[2])
    try:
        load_patients(small, args.small)
        rate = load_patients(large, args.large)
        print(f"  imported {args.large:,} patients over HTTP at {rate:,.0f} resources/s;"
              f" server peak RSS {large.peak_rss_mb():.0f} MB")  # fmt: skip
        read_latency(small, large, (args.small, args.large))
    finally:
        small.stop()
        large.stop()


def postgres_databases(url: str) -> tuple[str, str, str]:
    """Three fresh databases next to the one in `url` (dropped and created again)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    base = url.rsplit("/", 1)[0]
    names = ("bench_ingest", "bench_small", "bench_large")
    with admin.connect() as connection:
        for db in names:
            connection.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {db}"))
    admin.dispose()
    return tuple(f"{base}/{db}" for db in names)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="posts of each Synthea patient Bundle per pass")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server the benchmark may create databases on ('' to skip)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", tuple(f"sqlite:///{tmp}/{n}.sqlite3" for n in ("ingest", "small", "large")), args)  # type: ignore[arg-type]
    if args.postgres:
        run("postgresql", postgres_databases(args.postgres), args)


if __name__ == "__main__":
    main()
