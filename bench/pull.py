"""Pulling from an EHR, end to end, beside a direct import of the same data. Prints its figures;
asserts nothing.

  .venv/bin/python bench/pull.py [--people 300]

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
from gateway.pull.sync import bulk_load, sync_source  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.store.database import after_bulk_load, open_database  # noqa: E402

OTP = "Organization/eastside-otp"


def store(path: Path) -> tuple[object, object]:
    settings = load_settings(database_url=f"sqlite:///{path}", base_url="http://127.0.0.1:9/fhir")
    database = open_database(settings.database_url)
    return database, build_engine(settings, database, operator=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
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
    try:
        pulled_database, pulled_engine = store(workdir / "pulled.sqlite3")
        sources = Sources(pulled_database)  # type: ignore[arg-type]
        source = sources.add("eastside-otp", base_url=server.base, client_id="crisis-gateway", organization=OTP,
                             part2_program=True, resource_types=tuple(types), now=datetime(2026, 12, 6))  # fmt: skip
        Accounts(ehr_database).add_client(client_id="crisis-gateway", name="Crisis gateway", kind="asymmetric",  # type: ignore[arg-type]
                                          purpose="ehr", scope=source.scope, jwks=source.public_jwks(),
                                          organization=OTP)  # fmt: skip
        started = time.perf_counter()
        result = sync_source(pulled_engine, sources, source, SourceClient(source),  # type: ignore[arg-type]
                             datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
        pulled_seconds = time.perf_counter() - started
        if result.error:
            raise SystemExit(f"the pull failed: {result.error}")
        pulled = result.summary.total("created")
        # The same through the source's Bulk export, into another empty store.
        bulk_database, bulk_engine = store(workdir / "bulk.sqlite3")
        bulk_sources = Sources(bulk_database)  # type: ignore[arg-type]
        bulk_source = bulk_sources.add("eastside-otp", base_url=server.base, client_id="crisis-gateway",
                                       organization=OTP, part2_program=True, resource_types=tuple(types),
                                       now=datetime(2026, 12, 6))  # fmt: skip
        bulk_source.private_jwk = source.private_jwk  # the same registration at the EHR
        started = time.perf_counter()
        bulk = bulk_load(bulk_engine, bulk_sources, bulk_source, SourceClient(bulk_source),  # type: ignore[arg-type]
                         datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
        bulk_seconds = time.perf_counter() - started
        if bulk.error:
            raise SystemExit(f"the bulk pull failed: {bulk.error}")
        bulked = bulk.summary.total("created")
    finally:
        server.stop()

    direct_database, direct_engine = store(workdir / "direct.sqlite3")
    summary = ImportSummary()
    started = time.perf_counter()
    Importer(direct_engine, "bench", summary, None, program).run_chunked(  # type: ignore[arg-type]
        [upsert_entry(r) for r in resources], "direct"
    )
    direct_seconds = time.perf_counter() - started
    direct = summary.total("created")

    print(f"{len(people)} people, {len(resources)} resources of the program ({', '.join(types)}); SQLite, 2 cores")
    print(f"  pulled over HTTP:  {pulled} resources in {pulled_seconds:.2f} s, {pulled / pulled_seconds:,.0f}/s "
          f"({result.pages} pages)")  # fmt: skip
    print(f"  pulled in bulk:    {bulked} resources in {bulk_seconds:.2f} s, {bulked / bulk_seconds:,.0f}/s "
          f"($export, NDJSON streamed)")  # fmt: skip
    print(f"  direct import:     {direct} resources in {direct_seconds:.2f} s, {direct / direct_seconds:,.0f}/s")
    print(f"  pulled / direct:   searches {(pulled / pulled_seconds) / (direct / direct_seconds):.2f}, "
          f"bulk {(bulked / bulk_seconds) / (direct / direct_seconds):.2f} (target >= 0.7)")  # fmt: skip


if __name__ == "__main__":
    main()
