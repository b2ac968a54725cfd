"""What SMART authorization costs a FHIR request. Prints its figures; asserts nothing.

  .venv/bin/python bench/auth.py [--requests 2000]

Two measurements, each against a baseline taken in the same run:

1. in-process, per request: bearer token -> requester (cached and uncached look-up), the scope
   and compartment check, and the release filter, timed over many calls; printed beside the
   median latency of the same read over HTTP, so the share of a request is visible;
2. end to end: two `gateway serve` processes on one store, one with auth = "off" and one with
   auth = "smart", sampled alternately with GET Patient/{id}; the difference of the medians is
   what authorization adds over real HTTP (noisier: it includes the machine's jitter).
Target (issue 3): authorization adds under 0.5 ms to a FHIR request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import Server  # noqa: E402

from gateway.auth.accounts import Accounts  # noqa: E402
from gateway.auth.bearer import requester_for  # noqa: E402
from gateway.auth.resource import SmartAuthorization, SmartRelease  # noqa: E402
from gateway.auth.tokens import Tokens  # noqa: E402
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, ReleaseAll  # noqa: E402
from gateway.store.database import open_database  # noqa: E402

PATIENT = {
    "resourceType": "Patient",
    "id": "bench-1",
    "name": [{"family": "Rivera", "given": ["Maria"]}],
    "gender": "female",
    "birthDate": "1988-04-12",
}


def per_call_us(function: object, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()  # type: ignore[operator]
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-auth-bench-"))
    url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    smart_server = Server(url, auth="smart")
    open_server = Server(url, auth="off")
    try:
        database = open_database(url)
        tokens = Tokens(database, cache_seconds=10.0)
        accounts = Accounts(database)
        accounts.add_client(client_id="bench-ehr", name="Bench EHR", kind="asymmetric", purpose="ehr",
                            scope="system/*.cruds", organization="Organization/bench",
                            jwks={"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "x": "A" * 64, "y": "A" * 64}]})  # fmt: skip
        access = "bench-" + "x" * 40
        tokens.save(access_token=access, refresh_token=None, client_id="bench-ehr", username=None,
                    scope="system/*.cruds", context={}, lifetime=3600)  # fmt: skip
        patient_token = "bench-patient-" + "y" * 40
        tokens.save(access_token=patient_token, refresh_token=None, client_id="bench-ehr", username="ada",
                    scope="launch/patient patient/*.rs", context={"patient": "bench-1"}, lifetime=3600)  # fmt: skip
        header = {"Authorization": f"Bearer {access}"}
        requests.put(f"{open_server.base}/Patient/bench-1", json=PATIENT, timeout=10,
                     headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip

        # 1. in process
        hook = SmartAuthorization(smart_server.base)
        release = SmartRelease(smart_server.base, ReleaseAll())
        interaction = Interaction("read", "Patient", "bench-1")
        response = FhirResponse(200, PATIENT)

        def cached(token: str = patient_token) -> None:
            requester = requester_for(f"Bearer {token}", tokens, smart_server.base)
            request = FhirRequest("GET", "Patient/bench-1", requester=requester)
            hook.authorize(request, interaction)
            release.release(request, interaction, response)

        def uncached() -> None:
            tokens.forget(patient_token)
            cached()

        cached()
        cached_us = statistics.median(per_call_us(cached, args.requests) for _ in range(5))
        uncached_us = statistics.median(per_call_us(uncached, max(args.requests // 10, 50)) for _ in range(5))

        # 2. end to end, alternating between the two servers
        session = requests.Session()
        smart_ms: list[float] = []
        open_ms: list[float] = []
        for base, headers in ((smart_server.base, header), (open_server.base, {})):
            for _ in range(200):  # warm both workers
                session.get(f"{base}/Patient/bench-1", headers=headers, timeout=10).raise_for_status()
        for _ in range(args.requests):
            for base, headers, sink in ((smart_server.base, header, smart_ms), (open_server.base, {}, open_ms)):
                started = time.perf_counter()
                session.get(f"{base}/Patient/bench-1", headers=headers, timeout=10).raise_for_status()
                sink.append((time.perf_counter() - started) * 1000)
        smart_median, open_median = statistics.median(smart_ms), statistics.median(open_ms)
        print("SMART authorization cost per FHIR request (target: < 0.5 ms)")
        print(f"  in process, token cached:   {cached_us:7.1f} us  (bearer -> requester, scope + compartment, release)")
        print(f"  in process, token uncached: {uncached_us:7.1f} us  (one indexed look-up in the store)")
        print(f"  GET Patient/{{id}} over HTTP, auth off:   median {open_median:.2f} ms")
        print(f"  GET Patient/{{id}} over HTTP, auth smart: median {smart_median:.2f} ms")
        print(f"  difference of medians: {smart_median - open_median:+.3f} ms "
              f"(cached in-process cost is {cached_us / 1000 / open_median:.1%} of the unauthenticated read)")  # fmt: skip
        database.dispose()
    finally:
        smart_server.stop()
        open_server.stop()


if __name__ == "__main__":
    main()
