"""Pulling from an EHR, end to end, beside a direct import of the same data. Prints its figures;
asserts nothing.

  .venv/bin/python bench/pull.py [--people 1000] [--rounds 5]

A second gateway (`gateway serve`, SMART on, one worker) is the EHR, holding an opioid treatment
program's records for `--people` people of the synthetic county (gateway/demo/population.py),
sent by the program. The gateway under test registers it as a source and pulls everything
(`gateway.pull.sync`: token, searches page by page, the importer as the program), from an empty
store; then, in the same run, `gateway import`'s pipeline (the importer, as the same program)
writes the same resources directly into another empty store. Figures: resources per second each
way and their ratio. Target (issue 17): pulled / direct >= 0.7.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import Server  # noqa: E402

from gateway.app import build_engine  # noqa: E402
from gateway.auth.accounts import Accounts  # noqa: E402
from gateway.demo.population import records  # noqa: E402
from gateway.fhir.context import Requester  # noqa: E402
from gateway.importer import Importer, ImportSummary, upsert_entry  # noqa: E402
from gateway.pull.client import SourceClient  # noqa: E402
from gateway.pull.sources import Sources  # noqa: E402
from gateway.pull.sync import PAGE, bulk_load, sync_source  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.store.database import after_bulk_load, open_database  # noqa: E402

OTP = "Organization/eastside-otp"


def store(path: Path) -> tuple[object, object]:
    settings = load_settings(database_url=f"sqlite:///{path}", base_url="http://127.0.0.1:9/fhir")
    database = open_database(settings.database_url)
    return database, build_engine(settings, database, operator=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-pull-bench-"))
    people = list(records(args.people))
    resources = [r for p in people for r in p.otp]
    types = sorted({r["resourceType"] for r in resources})
    program = Requester(source="client:eastside-otp-ehr", organization=OTP, part2_program=True)

    # The EHR: a gateway whose store holds the program's records, sent by the program.
    ehr_path = workdir / "ehr.sqlite3"
    ehr_database, ehr_engine = store(ehr_path)
    Importer(ehr_engine, "bench", ImportSummary(), None, program).run_chunked(  # type: ignore[arg-type]
        [upsert_entry(r) for r in resources], "the program's records"
    )
    after_bulk_load(ehr_database)  # type: ignore[arg-type]
    server = Server(f"sqlite:///{ehr_path}", auth="smart")
    rates: dict[str, list[float]] = {"searches": [], "bulk": [], "direct": []}
    pages = 0
    try:
        registered = Sources(ehr_database)  # type: ignore[arg-type]
        key = registered.add("registration", base_url=server.base, client_id="crisis-gateway", organization=OTP,
                             part2_program=True, resource_types=tuple(types), now=datetime(2026, 12, 6))  # fmt: skip
        Accounts(ehr_database).add_client(client_id="crisis-gateway", name="Crisis gateway", kind="asymmetric",  # type: ignore[arg-type]
                                          purpose="ehr", scope=key.scope, jwks=key.public_jwks(),
                                          organization=OTP)  # fmt: skip
        # A real EHR is a server that has been up for weeks: its worker's first search of each type
        # (modules and model classes loading) is not the pull's cost.
        warm = SourceClient(key)
        for resource_type in types:
            warm.get(f"{server.base}/{resource_type}", {"_count": "1"})
        for round_ in range(args.rounds):
            # Each way into an empty store of its own; the three interleaved, so that the machine's
            # drift touches them alike. Every pull starts with discovery and a new token.
            for way in ("searches", "bulk", "direct"):
                database, engine = store(workdir / f"{way}-{round_}.sqlite3")
                started = time.perf_counter()
                if way == "direct":
                    summary = ImportSummary()
                    Importer(engine, "bench", summary, None, program).run_chunked(  # type: ignore[arg-type]
                        [upsert_entry(r) for r in resources], "direct"
                    )
                    done = summary.total("created")
                else:
                    sources = Sources(database)  # type: ignore[arg-type]
                    source = sources.add("eastside-otp", base_url=server.base, client_id="crisis-gateway",
                                         organization=OTP, part2_program=True, resource_types=tuple(types),
                                         now=datetime(2026, 12, 6))  # fmt: skip
                    source.private_jwk = key.private_jwk  # the same registration at the EHR
                    pull = sync_source if way == "searches" else bulk_load
                    result = pull(engine, sources, source, SourceClient(source),  # type: ignore[arg-type]
                                  datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
                    if result.error:
                        raise SystemExit(f"the {way} pull failed: {result.error}")
                    done = result.summary.total("created")
                    pages = result.pages if way == "searches" else pages
                seconds = time.perf_counter() - started
                if done != len(resources):
                    raise SystemExit(f"{way}: {done} resources written, not {len(resources)}")
                rates[way].append(done / seconds)
    finally:
        server.stop()

    direct = statistics.median(rates["direct"])
    print(f"{len(people)} people, {len(resources)} resources of the program ({', '.join(types)}); SQLite, 2 cores; "
          f"median of {args.rounds} rounds")  # fmt: skip
    print(
        f"  pulled over HTTP:  {statistics.median(rates['searches']):,.0f} resources/s ({pages} pages of up to {PAGE})"
    )
    print(f"  pulled in bulk:    {statistics.median(rates['bulk']):,.0f} resources/s ($export, NDJSON streamed)")
    print(f"  direct import:     {direct:,.0f} resources/s")
    ratios = {w: [r / d for r, d in zip(rates[w], rates["direct"], strict=True)] for w in ("searches", "bulk")}
    print(f"  pulled / direct:   searches {statistics.median(ratios['searches']):.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in ratios['searches'])}), "
          f"bulk {statistics.median(ratios['bulk']):.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in ratios['bulk'])}); target >= 0.7")  # fmt: skip


if __name__ == "__main__":
    main()
