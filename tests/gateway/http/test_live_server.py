"""Over a real socket: concurrent writers, and the import command against the same store."""

from __future__ import annotations

import threading
from typing import Any

import requests

from tests.conftest import LiveServer
from tests.gateway.http.test_rest import patient

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def test_concurrent_updates_never_lose_one(live_server: LiveServer) -> None:
    url = f"{live_server.base_url}/Patient/race"
    assert requests.put(url, json=patient(id="race"), headers=HEADERS, timeout=10).status_code == 201
    results: list[int] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        barrier.wait()
        body: dict[str, Any] = patient(id="race", birthDate=f"19{50 + n}-01-01")
        response = requests.put(url, json=body, headers={**HEADERS, "If-Match": 'W/"1"'}, timeout=30)
        results.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == 1, results
    assert set(results) <= {200, 409, 412}, results
    history = requests.get(f"{url}/_history", timeout=10).json()
    assert history["total"] == 2  # the first write and exactly one winner


def test_real_http_errors_are_operation_outcomes(live_server: LiveServer) -> None:
    response = requests.post(f"{live_server.base_url}/Patient", data=b"{not json", headers=HEADERS, timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert response.json()["issue"][0]["expression"] == ["Patient"]
