"""XML against JSON, over HTTP through `gateway serve`: the same resource read both ways, and
written both ways. Prints its figures; asserts nothing.

  .venv/bin/python bench/xml_speed.py [--sizes 10,1000,30000] [--repeat 5]

For each size, a Patient with that many extensions (and a narrative) is stored; then the median
of `--repeat` reads as JSON and as XML (`_format`), and of as many writes (PUT) of each form.
Target (issue 14): an XML read <= 3x the JSON read of the same resource; the worst case of the
probe, 300,000 extensions, took 298 s as XML against 0.16 s as JSON.

Then the probe's starvation case on the default server (one gthread worker, two threads): two
clients read the largest resource as XML without pause while a third asks for `metadata`; its
latency beside the same request on the idle server (the probe saw 46 s).
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

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import Server  # noqa: E402

from gateway.fhir.formats import dump_xml  # noqa: E402


def extension(n: int, mixed: bool) -> dict[str, Any]:
    """One kind of extension throughout (the probe's case), or three kinds in turn (strings with
    characters to escape, booleans, codings), which the writer cannot take as one column."""
    if not mixed or n % 3 == 0:
        return {"url": "https://bench.example/ext", "valueString": f"value {n}" + (" & <more>" if mixed else "")}
    if n % 3 == 1:
        return {"url": "https://bench.example/flag", "valueBoolean": n % 2 == 0}
    return {"url": "https://bench.example/code", "valueCoding": {"system": "https://bench.example/cs", "code": str(n)}}


def patient(size: int, mixed: bool = False) -> dict[str, Any]:
    return {
        "resourceType": "Patient", "id": f"xml-{size}{'-mixed' if mixed else ''}",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Bench &amp; test</p></div>'},
        "extension": [extension(n, mixed) for n in range(size)],
        "name": [{"family": "Bench", "given": ["X", "M"]}], "birthDate": "1970-01-01", "active": True,
    }  # fmt: skip


def timed(call: Any, repeat: int) -> float:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        found.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000,30000,20000m", help="m: mixed kinds of extension")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = Server(f"sqlite:///{directory}/xml.sqlite3")
        try:
            session = requests.Session()
            print("size (extensions) | JSON read | XML read | ratio | JSON write | XML write | ratio")
            for spec in args.sizes.split(","):
                size, mixed = int(spec.rstrip("m")), spec.endswith("m")
                resource = patient(size, mixed)
                url = f"{server.base}/Patient/{resource['id']}"
                as_json, as_xml = orjson.dumps(resource), dump_xml(resource)
                json_write = timed(lambda b=as_json, u=url: session.put(u, data=b, timeout=600, headers={
                    "Content-Type": "application/fhir+json"}), args.repeat)  # fmt: skip
                xml_write = timed(lambda b=as_xml, u=url: session.put(u, data=b, timeout=600, headers={
                    "Content-Type": "application/fhir+xml"}), args.repeat)  # fmt: skip
                json_read = timed(lambda u=url: session.get(u, params={"_format": "json"}, timeout=600), args.repeat)
                xml_read = timed(lambda u=url: session.get(u, params={"_format": "xml"}, timeout=600), args.repeat)
                largest = url
                print(f"{size:>16,}{'m' if mixed else ' '} | {json_read * 1000:8.1f} ms | {xml_read * 1000:7.1f} ms | {xml_read / json_read:4.1f}"
                      f" | {json_write * 1000:9.1f} ms | {xml_write * 1000:8.1f} ms | {xml_write / json_write:4.1f}")  # fmt: skip
            starvation(server.base, largest)
        finally:
            server.stop()


def starvation(base: str, heavy_url: str, seconds: float = 10.0) -> None:
    def latencies(count: int) -> list[float]:
        found = []
        for _ in range(count):
            started = time.perf_counter()
            requests.get(f"{base}/metadata", timeout=600).raise_for_status()
            found.append(time.perf_counter() - started)
            time.sleep(0.1)
        return found

    idle = latencies(20)
    stop = threading.Event()
    reads = [0, 0]

    def hammer(slot: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                session.get(heavy_url, params={"_format": "xml"}, timeout=600).raise_for_status()
                reads[slot] += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    busy = latencies(int(seconds / 0.15))
    stop.set()
    for thread in threads:
        thread.join()
    print(f"metadata, idle: median {statistics.median(idle) * 1000:.1f} ms, max {max(idle) * 1000:.1f} ms; "
          f"beside two clients reading {heavy_url.rsplit('/', 1)[1]} as XML without pause ({sum(reads)} reads): "
          f"median {statistics.median(busy) * 1000:.1f} ms, p95 {sorted(busy)[int(len(busy) * 0.95)] * 1000:.1f} ms, "
          f"max {max(busy) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
