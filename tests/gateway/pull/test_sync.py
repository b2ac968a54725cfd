"""Pulling from an EHR that cannot push, over real HTTP: the EHR is a second gateway (SMART Backend
Services, the consent engine's own-records rule) holding an opioid treatment program's records;
the pulling gateway has a store of its own. Nothing lost, nothing duplicated, labels from the
source, the cursor resumable, a `next` link off the source refused."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gateway.app import build_engine
from gateway.fhir.engine import Engine
from gateway.fhir.search import parse_search
from gateway.pull.client import SourceClient
from gateway.pull.sources import Source, Sources
from gateway.pull.sync import sync_source
from gateway.settings import load_settings
from gateway.store.database import make_engine, open_database, upgrade
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.pull.faults import FaultyProxy

OTP = "Organization/eastside-otp"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def records(n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i in range(n):
        found += [
            {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Family{i}", "given": ["Given"]}],
             "birthDate": "1980-01-01", "gender": "female"},
            {"resourceType": "EpisodeOfCare", "id": f"eoc{i}", "status": "active", "type": [{"text": "Methadone"}],
             "patient": {"reference": f"Patient/p{i}"}, "managingOrganization": {"reference": OTP}},
            {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": f"Patient/p{i}"},
             "code": {"coding": [{"system": ICD10, "code": "F11.20", "display": "Opioid dependence"}]}},
        ]  # fmt: skip
    return found


@dataclass
class Pull:
    ehr: Harness
    sources: Sources
    engine: Engine
    source: Source

    def run(self, client: SourceClient | None = None) -> Any:
        fresh = self.sources.get(self.source.source_id)
        assert fresh is not None
        return sync_source(self.engine, self.sources, fresh, client or SourceClient(fresh, sleep=lambda _: None),
                           datetime.now(UTC).replace(tzinfo=None))  # fmt: skip

    def stored(self, resource_type: str) -> dict[str, tuple[int, dict[str, Any]]]:
        with self.engine.store.unit_of_work(False) as (repository, _):
            query = parse_search(resource_type, [("_count", "1000")], base_url=self.engine.config.base_url,
                                 strict=True, default_count=1000, max_count=1000)  # fmt: skip
            found, _ = repository.search(query)
        return {r.id: (r.version, r.content or {}) for r in found}


def pulling_store(tmp_path: Path) -> str:
    """The pulling gateway's own store: SQLite, or on a PostgreSQL run a second database beside the
    EHR's (the same server, another database: the two gateways share nothing)."""
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    server = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = 'test_pull'")).first():
            connection.execute(text("CREATE DATABASE test_pull"))
    server.dispose()
    pulled = url.rsplit("/", 1)[0] + "/test_pull"
    engine = make_engine(pulled)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    engine.dispose()
    return pulled


@pytest.fixture()
def pull(smart_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pull]:
    monkeypatch.setattr("gateway.pull.sync.PAGE", 200)  # pages of 200: a few hundred people make several
    ehr = Harness(smart_server.base_url, smart_server.server.app)
    ehr.push("eastside-otp-ehr", *records(3), part2=True, organization=OTP)
    url = pulling_store(tmp_path)
    settings = load_settings(database_url=url, base_url="http://127.0.0.1:9/fhir")
    database = open_database(url)
    sources = Sources(database)
    source = sources.add("eastside-otp", base_url=smart_server.base_url, client_id="crisis-gateway",
                         organization=OTP, part2_program=True,
                         resource_types=("Patient", "EpisodeOfCare", "Condition"), now=datetime(2026, 12, 6))  # fmt: skip
    # The EHR registers the gateway as a Backend Services client with the JWKS it publishes.
    ehr.accounts.add_client(client_id="crisis-gateway", name="County crisis gateway", kind="asymmetric", purpose="ehr",
                            scope=source.scope, jwks=source.public_jwks(), organization=OTP)  # fmt: skip
    yield Pull(ehr, sources, build_engine(settings, database, operator=True), source)
    database.dispose()


def test_a_source_is_pulled_with_its_labels_and_pulled_again_without_duplicates(pull: Pull) -> None:
    first = pull.run()
    assert first.error is None and first.refused == [], (first.error, first.refused)
    conditions = pull.stored("Condition")
    assert sorted(conditions) == ["c0", "c1", "c2"] and sorted(pull.stored("Patient")) == ["p0", "p1", "p2"]
    security = {c["code"] for c in conditions["c0"][1]["meta"]["security"]}
    assert "42CFRPart2" in security  # labelled as the Part 2 program's data, as if it had pushed it
    again = pull.run()
    assert again.error is None and pull.stored("Condition") == conditions  # versions unchanged: no duplicates
    changed = copy.deepcopy(records(3)[5])  # c1, now in remission
    changed["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                             "code": "remission"}]}  # fmt: skip
    pull.ehr.push("eastside-otp-ehr", changed, part2=True, organization=OTP)
    assert pull.run().error is None
    after = pull.stored("Condition")
    assert (
        after["c1"][0] == conditions["c1"][0] + 1
        and after["c1"][1]["clinicalStatus"]["coding"][0]["code"] == "remission"
    )
    assert after["c0"][0] == conditions["c0"][0]
    shown = pull.sources.get("eastside-otp")
    assert shown is not None and shown.last_success_at is not None and shown.last_error is None
    assert pull.sources.cursor("eastside-otp", "Condition")


def test_pages_are_followed_and_a_next_link_off_the_source_is_refused(pull: Pull) -> None:
    pull.ehr.push("eastside-otp-ehr", *records(450)[9:], part2=True, organization=OTP)  # 450 people: 3 pages each
    result = pull.run()
    assert result.error is None and result.pages >= 9
    assert len(pull.stored("Patient")) == 450

    class OffHost(SourceClient):
        def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
            page = super().get(url, params)
            page["link"] = [{"relation": "next", "url": "https://evil.example/fhir/Patient?page=2"}]
            return page

    fresh = pull.sources.get("eastside-otp")
    assert fresh is not None
    refused = pull.run(OffHost(fresh, sleep=lambda _: None))
    assert refused.error is not None and "next link leads off the source" in refused.error
    status = pull.sources.get("eastside-otp")
    assert status is not None and status.last_error and "off the source" in status.last_error


def test_the_cli_adds_lists_and_runs_a_source(smart_server: LiveServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from gateway.cli import main

    ehr = Harness(smart_server.base_url, smart_server.server.app)
    ehr.push("eastside-otp-ehr", *records(2), part2=True, organization=OTP)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    runner = CliRunner()
    added = runner.invoke(main, ["source", "add", "eastside-otp", "--base-url", smart_server.base_url,
                                 "--client-id", "crisis-gateway", "--organization", OTP, "--part2",
                                 "--types", "Patient,Condition", "--json"])  # fmt: skip
    assert added.exit_code == 0, added.output
    view = json.loads(added.output)
    assert view["jwks_url"].endswith("/auth/sources/eastside-otp/jwks.json") and view["part2_program"] is True
    failed = runner.invoke(main, ["source", "run", "eastside-otp"])  # not registered at the EHR yet
    assert failed.exit_code == 1 and "ERROR" in failed.output
    database = open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    source = Sources(database).get("eastside-otp")
    database.dispose()
    assert source is not None
    ehr.accounts.add_client(client_id="crisis-gateway", name="County crisis gateway", kind="asymmetric", purpose="ehr",
                            scope=source.scope, jwks=source.public_jwks(), organization=OTP)  # fmt: skip
    ran = runner.invoke(main, ["source", "run", "eastside-otp"])
    assert ran.exit_code == 0 and "4 created" in ran.output, ran.output
    listed = json.loads(runner.invoke(main, ["source", "list", "--json"]).output)[0]
    assert listed["last_success_at"] > listed["last_error_at"]  # the failure stays on record, with its time
    assert "no enabled asymmetric client" in listed["last_error"]
    assert 0 <= listed["lag_seconds"] < 60  # just pulled


@pytest.fixture()
def faulty(pull: Pull) -> Iterator[tuple[Pull, FaultyProxy]]:
    """The same source, reached through a faulty network."""
    proxy = FaultyProxy(pull.ehr.base)
    database = pull.sources.database
    with database.begin() as connection:
        connection.execute(text("UPDATE pull_source SET base_url = :url"), {"url": proxy.base})
    yield pull, proxy
    proxy.stop()


def versions(pull: Pull, resource_type: str) -> dict[str, int]:
    return {k: v for k, (v, _) in pull.stored(resource_type).items()}


def test_storms_of_429_and_500_are_ridden_out(faulty: tuple[Pull, FaultyProxy]) -> None:
    pull, proxy = faulty
    proxy.plan = ["429", "429", "429", "500", "ok", "401", "cut"]  # and a token refused mid-sync, a page cut off
    result = pull.run()
    assert result.error is None, result.error
    assert sorted(versions(pull, "Condition")) == ["c0", "c1", "c2"] and set(versions(pull, "Patient").values()) == {1}
    assert proxy.plan == [] and proxy.searches == 3 + 6  # three pages; each of the six faults cost one retry


def test_a_run_that_fails_mid_sync_resumes_with_nothing_lost_and_nothing_twice(
    faulty: tuple[Pull, FaultyProxy],
) -> None:
    pull, proxy = faulty
    pull.ehr.push("eastside-otp-ehr", *records(250)[9:], part2=True, organization=OTP)  # Patient: two pages
    proxy.plan = ["ok", "malformed"]  # the second page of Patients is not JSON
    failed = pull.run()
    assert failed.error is not None and "not JSON" in failed.error
    halfway = versions(pull, "Patient")
    assert len(halfway) == 200  # the first page is in, and its cursor with it
    status = pull.sources.get("eastside-otp")
    assert status is not None and status.last_error_at is not None
    proxy.plan = ["500"] * 5  # then the source is down: retried, then given up
    down = pull.run()
    assert down.error is not None and "500 after 5 tries" in down.error
    assert pull.run().error is None  # back up: resumes
    after = versions(pull, "Patient")
    assert len(after) == 250 and set(after.values()) == {1}  # none lost, none written twice
    assert len(versions(pull, "Condition")) == 250


def test_a_resource_that_fails_validation_is_reported_on_the_source_without_its_values(
    faulty: tuple[Pull, FaultyProxy],
) -> None:
    """The rest of the page goes in; the refused resource is named on the source's status by its
    reference and the element at fault, never by what it holds (operators see the status, and
    what a record holds leaves the gateway only through the consent engine)."""
    pull, proxy = faulty
    proxy.plan = ["invalid"]  # the first page (Patients): the first one's gender is no code
    result = pull.run()
    assert result.error is None
    assert sorted(versions(pull, "Patient")) == ["p1", "p2"] and len(versions(pull, "Condition")) == 3
    shown = pull.sources.get("eastside-otp")
    assert shown is not None and len(shown.refused) == 1, shown.refused
    assert "Patient/p0" in shown.refused[0] and "Patient.gender" in shown.refused[0]
    assert "Martian" not in json.dumps(shown.refused) and "nurse" not in json.dumps(shown.refused)


def test_one_worker_leads_and_pulls_what_is_due_and_another_takes_over_when_it_dies(pull: Pull) -> None:
    from datetime import timedelta

    from gateway.clock import SYSTEM_CLOCK
    from gateway.pull.scheduler import Scheduler

    def worker() -> Scheduler:
        return Scheduler(pull.sources.database, pull.engine, SYSTEM_CLOCK, lease_seconds=120,
                         client=lambda s: SourceClient(s, sleep=lambda _: None))  # fmt: skip

    first, second = worker(), worker()
    now = datetime.now(UTC).replace(tzinfo=None)
    # Both try at once: exactly one pulls.
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda w=w: results.append(w.tick(now))) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 1]
    assert sorted(pull.stored("Condition")) == ["c0", "c1", "c2"]
    assert first.tick(now + timedelta(minutes=1)) == {} and second.tick(now + timedelta(minutes=1)) == {}  # not due
    leader = first if first.lead(now + timedelta(minutes=1)) else second
    follower = second if leader is first else first
    assert not follower.lead(now + timedelta(minutes=1))
    # The leader dies (stops renewing): when its lease runs out, the other takes over and pulls.
    later = now + timedelta(minutes=16)
    assert set(follower.tick(later)) == {"eastside-otp"}
    assert not leader.lead(later)


def test_gateway_serve_pulls_on_schedule_with_one_of_its_workers(pull: Pull, tmp_path: Path) -> None:
    from tests.gateway.test_serve import _free_port, _gateway_serve

    port = _free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": str(pull.sources.database.url.render_as_string(hide_password=False)),
           "GATEWAY_PORT": str(port), "GATEWAY_WORKERS": "2", "GATEWAY_PULL_TICK_SECONDS": "0.3"}  # fmt: skip
    with _gateway_serve(env, probe=f"http://127.0.0.1:{port}/healthz"):
        deadline = time.monotonic() + 30

        def done() -> bool:  # the last page in, and the run recorded after it
            shown = pull.sources.get("eastside-otp")
            return len(pull.stored("Condition")) == 3 and shown is not None and shown.last_success_at is not None

        while time.monotonic() < deadline and not done():
            time.sleep(0.2)
    assert sorted(pull.stored("Condition")) == ["c0", "c1", "c2"]
    assert set(versions(pull, "Patient").values()) == {1}  # two workers, one puller: each written once
    shown = pull.sources.get("eastside-otp")
    assert shown is not None and shown.last_success_at is not None


def test_a_deletion_at_the_source_is_applied_to_what_it_sent_and_only_that(pull: Pull) -> None:
    import requests

    assert pull.run().error is None
    # The same id, written here by someone else (an operator's import): not the source's to delete.
    from gateway.fhir.context import FhirRequest, Requester

    pull.engine.handle(FhirRequest("PUT", "Condition/c2", requester=Requester(source="import:local"),
                                   body={**records(3)[8], "note": [{"text": "entered here"}]}))  # fmt: skip
    token = pull.ehr.backend_token(pull.ehr._backends["eastside-otp-ehr"], "system/*.cruds")
    for doomed in ("c1", "c2"):
        gone = requests.delete(f"{pull.ehr.base}/Condition/{doomed}", headers={"Authorization": f"Bearer {token}"},
                               timeout=10)  # fmt: skip
        assert gone.status_code in (200, 204), gone.text
    result = pull.run()
    assert result.error is None, result.error
    left = pull.stored("Condition")
    assert "c1" not in left and "c0" in left  # deleted here as at the source
    assert "c2" in left and left["c2"][1]["note"][0]["text"] == "entered here"  # not the source's record
    assert pull.run().error is None and "c1" not in pull.stored("Condition")  # again: nothing changes


def test_a_source_that_keeps_failing_opens_its_circuit_and_a_success_closes_it(
    faulty: tuple[Pull, FaultyProxy],
) -> None:
    from datetime import timedelta

    from gateway.clock import SYSTEM_CLOCK
    from gateway.pull.scheduler import Scheduler

    pull, proxy = faulty
    with pull.sources.database.begin() as connection:  # every minute: the breaker, not the interval, decides
        connection.execute(text("UPDATE pull_source SET every_minutes = 1"))
    scheduler = Scheduler(pull.sources.database, pull.engine, SYSTEM_CLOCK,
                          client=lambda s: SourceClient(s, sleep=lambda _: None))  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    for attempt in range(3):  # down: five 500s each run (past the retries)
        proxy.plan = ["500"] * 5
        ran = scheduler.tick(now + timedelta(minutes=2 * attempt))
        assert ran["eastside-otp"].error
    status = pull.sources.get("eastside-otp")
    assert status is not None and status.failures == 3 and status.open_until is not None
    assert status.open_until == now + timedelta(minutes=4) + timedelta(minutes=5)
    assert scheduler.tick(now + timedelta(minutes=6)) == {}  # due, but the circuit is open: left alone
    searches = proxy.searches
    ran = scheduler.tick(now + timedelta(minutes=10))  # the circuit's wait is over: tried again, and it is back
    assert ran["eastside-otp"].error is None and proxy.searches > searches
    status = pull.sources.get("eastside-otp")
    assert status is not None and status.failures == 0 and status.open_until is None


def test_a_first_load_through_bulk_export_then_incremental_sync_goes_on(pull: Pull) -> None:
    from gateway.pull.sync import bulk_load

    pull.ehr.push("eastside-otp-ehr", *records(40)[9:], part2=True, organization=OTP)
    fresh = pull.sources.get("eastside-otp")
    assert fresh is not None
    loaded = bulk_load(pull.engine, pull.sources, fresh, SourceClient(fresh, sleep=lambda _: None),
                       datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
    assert loaded.error is None and loaded.refused == [], loaded.error
    assert len(pull.stored("Patient")) == 40 and len(pull.stored("Condition")) == 40
    security = {c["code"] for c in pull.stored("Condition")["c7"][1]["meta"]["security"]}
    assert "42CFRPart2" in security
    assert pull.sources.cursor("eastside-otp", "Patient")  # the export's transactionTime
    before = versions(pull, "Condition")
    assert pull.run().error is None and versions(pull, "Condition") == before  # nothing new: nothing written


def test_the_gateway_exports_in_bulk_only_what_the_client_may_have(pull: Pull) -> None:
    import requests

    harness = pull.ehr
    token = harness.backend_token(harness._backends["eastside-otp-ehr"], "system/*.cruds")
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{harness.base}/$export", headers=auth, timeout=10).status_code == 400  # no Prefer
    other = harness.add_backend("harbor-cmhc-ehr", scope="system/*.cruds")
    harness.push("harbor-cmhc-ehr", {"resourceType": "Condition", "id": "cmhc-1", "subject": {"reference": "Patient/p0"},
                                     "code": {"text": "Depression"}}, organization="Organization/harbor-cmhc")  # fmt: skip
    kicked = requests.get(f"{harness.base}/$export", params={"_type": "Condition"}, timeout=30,
                          headers={**auth, "Prefer": "respond-async"})  # fmt: skip
    assert kicked.status_code == 202
    status = kicked.headers["Content-Location"]
    manifest = requests.get(status, headers=auth, timeout=10).json()
    assert manifest["requiresAccessToken"] is True and [o["type"] for o in manifest["output"]] == ["Condition"]
    lines = requests.get(manifest["output"][0]["url"], headers=auth, timeout=10).text.splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["c0", "c1", "c2"]  # its own, not the CMHC's
    stranger = harness.backend_token(other, "system/*.cruds")
    assert requests.get(status, headers={"Authorization": f"Bearer {stranger}"}, timeout=10).status_code == 404
    assert requests.delete(status, headers=auth, timeout=10).status_code == 202
    assert requests.get(status, headers=auth, timeout=10).status_code == 404


def test_an_export_is_gone_a_day_after(pull: Pull, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    import requests

    from gateway.http import bulk

    monkeypatch.setattr(bulk, "EXPORTS", tmp_path)  # apart from the jobs of a suite running beside this one
    harness = pull.ehr
    auth = {"Authorization": f"Bearer {harness.backend_token(harness._backends['eastside-otp-ehr'], 'system/*.cruds')}"}
    kicked = requests.get(f"{harness.base}/$export", params={"_type": "Condition"}, timeout=30,
                          headers={**auth, "Prefer": "respond-async"})  # fmt: skip
    status = kicked.headers["Content-Location"]
    answer = requests.get(status, headers=auth, timeout=10)
    assert answer.status_code == 200 and "GMT" in answer.headers["Expires"]
    job = status.rsplit("/", 1)[1]
    a_day_ago = time.time() - bulk.KEPT_SECONDS - 60
    os.utime(bulk.EXPORTS / job, (a_day_ago, a_day_ago))
    assert requests.get(status, headers=auth, timeout=10).status_code == 404  # expired: gone at once
    assert job in bulk.remove_expired() and not (bulk.EXPORTS / job).exists()


@pytest.mark.parametrize(
    ("params", "expression"),
    [({"_type": "Condition,Spaceship"}, "_type"), ({"_since": "last tuesday"}, None), ({"_type": ",,"}, None)],
)
def test_a_bad_export_request_is_refused_with_an_outcome_and_leaves_no_job(
    pull: Pull, params: dict[str, str], expression: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import requests

    from gateway.http import bulk

    monkeypatch.setattr(bulk, "EXPORTS", tmp_path)  # apart from the jobs of a suite running beside this one
    harness = pull.ehr
    token = harness.backend_token(harness._backends["eastside-otp-ehr"], "system/*.cruds")
    before = set(tmp_path.iterdir())
    answer = requests.get(f"{harness.base}/$export", params=params, timeout=30,
                          headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async"})  # fmt: skip
    if params.get("_type") == ",,":  # no type named: the default types, an export like any other
        assert answer.status_code == 202
        requests.delete(answer.headers["Content-Location"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome"
    if expression:
        assert answer.json()["issue"][0]["expression"] == [expression]
    assert set(tmp_path.iterdir()) == before


def test_a_synthea_record_sent_to_the_ehr_is_pulled_whole_with_bulk_status_polled(
    faulty: tuple[Pull, FaultyProxy],
) -> None:
    """Real data written by others (the shared Synthea fixtures), as the program's EHR holds it;
    the first load through its Bulk export, whose status answers 'in progress' first."""
    from collections import Counter

    import requests

    from gateway.pull.sync import bulk_load
    from tests.conftest import load_fixture

    pull, proxy = faulty
    token = pull.ehr.backend_token(pull.ehr._backends["eastside-otp-ehr"], "system/*.cruds")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    for name in ("hospitalInformation1559319163815.json", "practitionerInformation1559319163815.json",
                 "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"):  # fmt: skip
        sent = requests.post(pull.ehr.base, json=load_fixture(f"synthea/{name}"), headers=headers, timeout=60)
        assert sent.status_code == 200, sent.text[:300]
    types = ("Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "Procedure", "Immunization")
    scope = " ".join(f"system/{t}.rs" for t in types)
    with pull.sources.database.begin() as connection:  # the operator widens the source, the EHR its grant
        connection.execute(text("UPDATE pull_source SET resource_types = :types, scope = :scope"),
                           {"types": json.dumps(types), "scope": scope})  # fmt: skip
    with pull.ehr.app.extensions["database"].begin() as connection:
        connection.execute(text("UPDATE oauth_client SET scope = :scope WHERE client_id = 'crisis-gateway'"),
                           {"scope": scope})  # fmt: skip
    at_the_ehr = Counter()
    for resource_type in types:
        page = requests.get(f"{pull.ehr.base}/{resource_type}", params={"_count": "1000"}, headers=headers,
                            timeout=30).json()  # fmt: skip
        at_the_ehr[resource_type] = sum(e["resource"]["resourceType"] == resource_type for e in page.get("entry") or [])
    assert sum(at_the_ehr.values()) > 50 and at_the_ehr["Observation"] > 20  # a real record, not a toy
    proxy.plan = ["ok", "pending", "pending"]  # the kick-off, then the status twice "in progress"
    fresh = pull.sources.get("eastside-otp")
    assert fresh is not None
    waits: list[float] = []
    loaded = bulk_load(pull.engine, pull.sources, fresh, SourceClient(fresh, sleep=waits.append),
                       datetime.now(UTC).replace(tzinfo=None))  # fmt: skip
    assert loaded.error is None and loaded.refused == [], (loaded.error, loaded.refused[:3])
    assert waits == [7.0, 7.0]  # as long as each Retry-After asked
    pulled = Counter({t: len(pull.stored(t)) for t in types})
    assert pulled == at_the_ehr
