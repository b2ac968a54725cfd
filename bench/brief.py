"""Responder brief and matching at scale. Prints its figures; asserts nothing.

  .venv/bin/python bench/brief.py [--small 1000] [--large 100000] [--samples 300] [--seconds 10]
                                  [--postgres URL]

On SQLite (and PostgreSQL when --postgres is given), with `gateway serve` (gunicorn, SMART on):
1. a population from gateway.demo.population: `--small` people with full records (10–50
   resources each, two sources, Part 2 data, consents, siblings who look alike), loaded through
   the engine as their EHRs would send them;
2. brief latency: GET Patient/{id}/$responder-brief sampled alternately with a plain
   GET Patient/{id} (the baseline, same run), one client; then 20 concurrent clients;
3. `--large - --small` more people (a Patient and a program episode each) are added and 2. is
   repeated: flat or not;
4. matching: typo'd descriptions of known people, three draws (nicknames, misspellings, swapped day and month,
   approximate ages) sent to $responder-match: recall at probable-or-better, wrong `certain`
   grades, median latency; then as many descriptions of strangers (not on file), where every
   `probable` or `certain` is a wrong person.
Targets (issue 5): brief p95 <= 150 ms at 20 concurrent clients, brief/read <= 5, flat 1k->100k;
match recall >= 0.95, no certain on a wrong person, median <= 50 ms at 100k.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import Client, Server  # noqa: E402

from gateway.app import build_engine  # noqa: E402
from gateway.auth.accounts import Accounts  # noqa: E402
from gateway.auth.tokens import Tokens  # noqa: E402
from gateway.demo import _clinician, _organizations  # noqa: E402
from gateway.demo.population import Person, name_collision_rates, records, typo_queries  # noqa: E402
from gateway.fhir.context import FhirRequest, Requester  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.store.database import after_bulk_load, open_database, upgrade  # noqa: E402
from mappings.matching import match_parameters  # noqa: E402

TEAM = {"resourceType": "Organization", "id": "county-mobile-crisis", "name": "County Mobile Crisis Team",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]}  # fmt: skip
TOKEN = "bench-clinician-token-" + "x" * 30
CHUNK = 1000
DRAWS = (7, 8, 9)  # seeds of typo_queries


def post(engine: Any, resources: list[dict[str, Any]], requester: Requester) -> None:
    for start in range(0, len(resources), CHUNK):
        entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in resources[start : start + CHUNK]]  # fmt: skip
        response = engine.handle(FhirRequest("POST", "", body={"resourceType": "Bundle", "type": "transaction",
                                                                "entry": entries}, requester=requester))  # fmt: skip
        assert response.status == 200


class Population:
    def __init__(self, database_url: str, base_url: str) -> None:
        self.settings = load_settings(database_url=database_url, base_url=base_url)
        self.database = open_database(database_url)
        upgrade(self.database)
        self.engine = build_engine(self.settings, self.database, operator=True)
        self.cmhc = Requester(source="client:harbor-ehr", organization="Organization/harbor-cmhc")
        self.otp = Requester(source="client:eastside-ehr", organization="Organization/eastside-otp", part2_program=True)
        self.patients: list[dict[str, Any]] = []

    def setup(self) -> None:
        import random

        rng = random.Random(1)
        base = list({o["id"]: o for o in [*_organizations(), TEAM]}.values())  # the team may be a demo org
        for org in ("harbor-cmhc", "eastside-otp"):
            for index in range(2):
                base += _clinician(org, index, rng)
        post(self.engine, base, self.cmhc)
        Accounts(self.database).add_user(username="ada", password="correct horse battery staple",
                                         display_name="Ada Lovelace", role="crisis-clinician",
                                         organization="Organization/county-mobile-crisis")  # fmt: skip
        Tokens(self.database).save(access_token=TOKEN, refresh_token=None, client_id="bench-app", username="ada",
                                   scope="openid fhirUser user/*.rs", context={"role": "crisis-clinician",
                                                                              "purpose": "TREAT"},
                                   lifetime=36000)  # fmt: skip

    def load(self, people: list[Person]) -> None:
        cmhc = [r for p in people for r in (p.patient, *p.cmhc)]
        otp = [r for p in people for r in p.otp]
        post(self.engine, cmhc, self.cmhc)
        post(self.engine, otp, self.otp)
        # As `gateway import` does after a load: a WAL checkpoint on SQLite, ANALYZE on PostgreSQL
        # (autovacuum, which would gather statistics later, is off on this machine).
        after_bulk_load(self.database)
        self.patients.extend(p.patient for p in people)


def timed(session: requests.Session, url: str, **kwargs: Any) -> float:
    started = time.perf_counter()
    response = session.request(kwargs.pop("method", "GET"), url, timeout=60, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return elapsed


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def latency(server: Server, ids: list[str], samples: int, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    session = requests.Session()
    brief_ms, read_ms = [], []
    for index in range(samples):
        pid = ids[index % len(ids)]
        brief_ms.append(timed(session, f"{server.base}/Patient/{pid}/$responder-brief",
                              params={"confirmed": "true", "purpose": "TREAT"}, headers=headers))  # fmt: skip
        read_ms.append(timed(session, f"{server.base}/Patient/{pid}", headers=headers))
    concurrent: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        # http.client, not requests: the 20 clients share this machine's two cores with the
        # server, and requests spends ~1 ms of CPU per call that the server then lacks.
        own = Client(server.base)
        index = offset
        while time.monotonic() < stop:
            elapsed = own.get(f"Patient/{ids[index % len(ids)]}/$responder-brief?confirmed=true&purpose=TREAT",
                              headers) * 1000  # fmt: skip
            with lock:
                concurrent.append(elapsed)
            index += 20

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "brief_median": statistics.median(brief_ms), "brief_p95": p95(brief_ms),
        "read_median": statistics.median(read_ms), "concurrent_median": statistics.median(concurrent),
        "concurrent_p95": p95(concurrent), "concurrent_rps": len(concurrent) / seconds,
    }  # fmt: skip


def match_grades(session: requests.Session, server: Server, fields: dict[str, Any]) -> dict[str, str]:
    """$responder-match for a description: the candidates' ids with their grades."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    response = session.post(f"{server.base}/Patient/$responder-match", json=match_parameters(fields), headers=headers,
                            params={"purpose": "TREAT"}, timeout=60)  # fmt: skip
    return {e["resource"]["id"]: e["search"]["extension"][0]["valueCode"] for e in response.json().get("entry", [])}


def matching(server: Server, patients: list[dict[str, Any]], count: int) -> dict[str, Any]:
    session = requests.Session()
    found = wrong_certain = wrong_probable = 0
    times = []
    recalls = []
    # Three draws of typos over the same people: one draw's recall moved by ±0.007 between seeds.
    for seed in DRAWS:
        found_in_draw = 0
        for fields, true_id in typo_queries(patients, count, seed=seed):
            started = time.perf_counter()
            grades = match_grades(session, server, fields)
            times.append((time.perf_counter() - started) * 1000)
            if grades.get(true_id) in ("certain", "probable"):
                found_in_draw += 1
            wrong_certain += sum(1 for pid, grade in grades.items() if grade == "certain" and pid != true_id)
            wrong_probable += sum(1 for pid, grade in grades.items() if grade == "probable" and pid != true_id)
        recalls.append(found_in_draw / count)
        found += found_in_draw
    precision = found / max(found + wrong_probable + wrong_certain, 1)
    # People who are not on file, described the same way: any probable or certain is wrong.
    strangers = [p.patient for p in records(count, rich=0, seed=99)]
    stranger_grades = []
    for fields, _ in typo_queries(strangers, count):
        stranger_grades += match_grades(session, server, fields).values()
    return {"recall": min(recalls), "recalls": recalls, "wrong_certain": wrong_certain, "precision": precision,
            "median": statistics.median(times), "strangers": count,
            "stranger_probable": stranger_grades.count("probable"),
            "stranger_certain": stranger_grades.count("certain")}  # fmt: skip


def report(label: str, figures: dict[str, float]) -> None:
    print(f"  {label}: brief median {figures['brief_median']:.1f} ms (p95 {figures['brief_p95']:.1f}), "
          f"plain read median {figures['read_median']:.1f} ms, ratio {figures['brief_median'] / figures['read_median']:.1f}; "
          f"20 clients: median {figures['concurrent_median']:.1f} ms, p95 {figures['concurrent_p95']:.1f} ms, "
          f"{figures['concurrent_rps']:.0f} briefs/s")  # fmt: skip


def run(database_url: str, args: argparse.Namespace, label: str) -> None:
    print(
        f"{label} ({args.workers} gunicorn {args.worker_class or 'default'} worker{'s' if args.workers > 1 else ''}):"
    )
    server = Server(database_url, auth="smart", workers=args.workers, worker_class=args.worker_class)
    try:
        population = Population(database_url, server.base)
        population.setup()
        people = list(records(args.large, rich=args.small))
        started = time.perf_counter()
        population.load(people[: args.small])
        loaded = sum(1 + len(p.cmhc) + len(p.otp) for p in people[: args.small])
        print(
            f"  loaded {args.small} people with full records ({loaded} resources) in {time.perf_counter() - started:.0f} s"
        )
        ids = [p.patient["id"] for p in people[: args.small]]
        small = latency(server, ids, args.samples, args.seconds)
        report(f"{args.small:,} people", small)
        started = time.perf_counter()
        population.load(people[args.small :])
        print(f"  added {len(people) - args.small:,} more people in {time.perf_counter() - started:.0f} s")
        large = latency(server, ids, args.samples, args.seconds)
        report(f"{len(people):,} people", large)
        drift = large["read_median"] / small["read_median"]
        print(f"  flatness (large/small brief median): {large['brief_median'] / small['brief_median']:.2f}; "
              f"the plain read moved by {drift:.2f} between the two (the host's drift), so corrected: "
              f"{large['brief_median'] / small['brief_median'] / drift:.2f}")  # fmt: skip
        # every known person once (1,000 by default): at 300 queries one miss moved recall by 0.3%
        match = matching(server, population.patients[: args.small], args.small)
        print(f"  match at {len(people):,}: recall (probable or better) {match['recall']:.3f} (lowest of "
              f"{len(DRAWS)} draws: {', '.join(f'{r:.3f}' for r in match['recalls'])}), "
              f"precision {match['precision']:.3f}, wrong certain {match['wrong_certain']:.0f}, "
              f"median {match['median']:.1f} ms; {match['strangers']:.0f} strangers (not on file): "
              f"{match['stranger_probable']:.0f} probable, {match['stranger_certain']:.0f} certain")  # fmt: skip
        population.database.dispose()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="",
                        help="gunicorn worker class (default: the gateway's setting, gthread)")  # fmt: skip
    args = parser.parse_args()
    given_rate, family_rate = name_collision_rates()
    print(f"population names: two people share a given name 1 in {1 / given_rate:.0f}, "
          f"a family name 1 in {1 / family_rate:.0f}")  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="gateway-brief-bench-"))
    run(f"sqlite:///{workdir / 'brief.sqlite3'}", args, "SQLite")
    if args.postgres:
        from sqlalchemy import create_engine, text

        engine = create_engine(args.postgres)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        run(args.postgres, args, "PostgreSQL")


if __name__ == "__main__":
    main()
