"""Ingest and read benchmark (issue: the gateway's spine). Prints its figures; asserts nothing.

  .venv/bin/python bench/ingest.py [--large 100000] [--small 1000] [--rounds 5] [--postgres URL]

1. validation ceiling: validate_resource() over the Synthea resources, in-process;
2. ingest: Synthea transaction Bundles POSTed over real HTTP to `gateway serve` (one gunicorn
   worker), resources/s, on SQLite and PostgreSQL, printed beside the ceiling;
3. read latency: median GET Patient/{id} and Patient?identifier= with --small and --large patients;
4. peak RSS of the server process while the large population is imported over HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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


def fresh_ids(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same Bundle with new urn:uuids, so each post creates new resources."""
    text = json.dumps(bundle)
    for entry in bundle["entry"]:
        old = entry["fullUrl"].removeprefix("urn:uuid:")
        text = text.replace(old, str(uuid.uuid4()))
    return json.loads(text)


def validation_ceiling(bundles: list[dict[str, Any]], rounds: int) -> float:
    """Median resources/s of validate_resource() over the patient Bundles' resources (what
    ingest validates), warmed up first: the first validation of a type loads its classes."""
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    for resource in resources:
        validate_resource(resource)
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for resource in resources:
            validate_resource(resource)
        rates.append(len(resources) / (time.perf_counter() - started))
    return statistics.median(rates)


class Server:
    def __init__(self, database_url: str, port: int) -> None:
        env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_PORT": str(port),
               "GATEWAY_BASE_URL": f"http://127.0.0.1:{port}/fhir", "GATEWAY_WORKERS": "1"}  # fmt: skip
        gateway = str(ROOT / ".venv" / "bin" / "gateway")
        if not database_url.startswith("sqlite"):
            subprocess.run([gateway, "db", "upgrade"], env=env, check=True, capture_output=True)
        self.process = subprocess.Popen([gateway, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{port}/fhir"
        for _ in range(200):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def reset_peak(self) -> None:
        """Forget the peak so far (Linux: writing 5 to clear_refs resets VmHWM)."""
        for pid in [self.process.pid, *self._children()]:
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def worker_peak_rss_mb(self) -> float:
        peak = 0.0
        for pid in [self.process.pid, *self._children()]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        return peak

    def _children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def ingest(server: Server, setup: list[dict[str, Any]], patients: list[dict[str, Any]], rounds: int) -> list[float]:
    """Resources/s of three passes, each posting every Synthea patient Bundle `rounds` times."""
    session = requests.Session()
    for bundle in setup:
        session.post(server.base, data=json.dumps(bundle), headers=HEADERS, timeout=120).raise_for_status()
    rates = []
    for _ in range(3):
        bodies = [json.dumps(fresh_ids(b)) for _ in range(rounds) for b in patients]
        count = sum(len(b["entry"]) for b in patients) * rounds
        started = time.perf_counter()
        for body in bodies:
            session.post(server.base, data=body, headers=HEADERS, timeout=120).raise_for_status()
        rates.append(count / (time.perf_counter() - started))
    return rates


def load_patients(server: Server, total: int, start: int = 0) -> None:
    session = requests.Session()
    for offset in range(start, total, 1000):
        entries = [{"resource": {"resourceType": "Patient", "id": f"bench-{n}", "gender": "female",
                                 "identifier": [{"system": "urn:bench", "value": f"B{n}"}],
                                 "name": [{"family": f"Family{n % 5000}", "given": [f"Given{n}"]}],
                                 "birthDate": f"19{50 + n % 50}-0{1 + n % 9}-1{n % 9}"},
                    "request": {"method": "PUT", "url": f"Patient/bench-{n}"}}
                   for n in range(offset, min(total, offset + 1000))]  # fmt: skip
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        session.post(server.base, data=json.dumps(bundle), headers=HEADERS, timeout=300).raise_for_status()


def read_latency(server: Server, population: int, samples: int = 500) -> tuple[float, float]:
    """Median latency of the two reads, on one keep-alive connection (http.client: the client's
    own overhead stays small next to the server's)."""
    parts = urlsplit(server.base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def get(path: str) -> float:
        started = time.perf_counter()
        connection.request("GET", f"{parts.path}/{path}", headers={"Accept": "application/fhir+json"})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or not body:
            raise RuntimeError(f"GET {path}: {response.status}")
        return elapsed

    for n in range(20):
        get(f"Patient/bench-{n}")
    by_id, by_identifier = [], []
    for i in range(samples):
        n = (i * 7919) % population
        by_id.append(get(f"Patient/bench-{n}"))
        by_identifier.append(get(f"Patient?identifier=urn:bench|B{n}"))
    connection.close()
    return statistics.median(by_id) * 1000, statistics.median(by_identifier) * 1000


def run(name: str, database_url: str, port: int, args: argparse.Namespace, ceiling: float) -> None:
    setup, patients = synthea()
    server = Server(database_url, port)
    try:
        rates = ingest(server, setup, patients, args.rounds)
        rate = statistics.median(rates)
        print(
            f"[{name}] ingest over HTTP: median {rate:,.0f} resources/s of 3 passes (best {max(rates):,.0f})"
            f" = {rate / ceiling:.2f} x validation ceiling"
        )
        load_patients(server, args.small)
        small = read_latency(server, args.small)
        started = time.perf_counter()
        load_patients(server, args.large, start=args.small)
        loaded = (args.large - args.small) / (time.perf_counter() - started)
        print(f"[{name}] loaded {args.large - args.small:,} patients over HTTP at {loaded:,.0f} resources/s")
        large = read_latency(server, args.large)
        print(f"[{name}] median GET Patient/id: {small[0]:.2f} ms @ {args.small:,} patients, "
              f"{large[0]:.2f} ms @ {args.large:,} (ratio {large[0] / small[0]:.2f})")  # fmt: skip
        print(f"[{name}] median GET Patient?identifier=: {small[1]:.2f} ms @ {args.small:,}, "
              f"{large[1]:.2f} ms @ {args.large:,} (ratio {large[1] / small[1]:.2f})")  # fmt: skip
        print(f"[{name}] server peak RSS after importing {args.large:,} patients: {server.worker_peak_rss_mb():.0f} MB")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="posts of each Synthea patient Bundle")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench",
                        help="a PostgreSQL database the benchmark may fill ('' to skip)")  # fmt: skip
    args = parser.parse_args()
    setup, patients = synthea()
    ceiling = validation_ceiling(patients, 5)
    print(f"validation ceiling (in-process, same resources): {ceiling:,.0f} resources/s")
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{tmp}/bench.sqlite3", 18081, args, ceiling)
    if args.postgres:
        run("postgresql", args.postgres, 18082, args, ceiling)


if __name__ == "__main__":
    main()
