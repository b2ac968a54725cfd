"""The `gateway` command: import, demo, settings errors, and the loopback-only serve guard."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from gateway.cli import is_loopback, main
from gateway.settings import SettingsError, load_settings
from gateway.store.database import SchemaNotCurrent, open_database
from tests.conftest import FIXTURES
from tests.scratch import scratch_database


@pytest.fixture()
def runner(app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_BASE_URL", "http://127.0.0.1:8080/fhir")
    return CliRunner()


def _totals(output: str) -> list[int]:
    line = next(line for line in output.splitlines() if line.startswith("total"))
    return [int(n) for n in line.split()[1:]]


def test_import_is_idempotent(runner: CliRunner) -> None:
    paths = [str(FIXTURES / "bulk-ndjson"), str(FIXTURES / "shift-part2")]
    first = runner.invoke(main, ["import", "--quiet", *paths])
    assert first.exit_code == 0, first.output
    created, updated, unchanged, failed = _totals(first.output)
    assert created > 1900 and failed == 0
    second = runner.invoke(main, ["import", "--quiet", *paths])
    assert second.exit_code == 0, second.output
    assert _totals(second.output) == [0, 0, created + updated, 0]


def test_import_of_synthea_directory_loads_referenced_organizations_first(runner: CliRunner, client: object) -> None:
    result = runner.invoke(main, ["import", "--quiet", str(FIXTURES / "synthea")])
    assert result.exit_code == 0, result.output
    assert "Organization" in result.output


def test_import_reports_failures_and_exits_non_zero(runner: CliRunner, tmp_path: Path) -> None:
    good = {"resourceType": "Patient", "id": "ok", "gender": "female"}
    bad = {"resourceType": "Patient", "id": "bad", "gender": "robot"}
    (tmp_path / "people.ndjson").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    (tmp_path / "broken.json").write_text("{not json")
    result = runner.invoke(main, ["import", "--quiet", str(tmp_path)])
    assert result.exit_code == 1
    assert _totals(result.output) == [1, 0, 0, 2]
    assert "resource.gender" in result.output and "robot" in result.output


def test_demo_loads_realistic_records(runner: CliRunner) -> None:
    from gateway.demo import demo_resources

    result = runner.invoke(main, ["demo", "--patients", "6"])
    assert result.exit_code == 0, result.output
    assert _totals(result.output)[0] == len(demo_resources(6))


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    with pytest.raises(SettingsError, match="GATEWAY_PORT"):
        load_settings()
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0 and "GATEWAY_PORT" in result.output


def test_serve_refuses_non_loopback_binds_without_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_AUTH", "off")
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "loopback" in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.1.2.3")


def test_import_reads_xml_bundles(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "people.xml").write_text(
        '<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>'
        '<entry><fullUrl value="urn:uuid:2b0c2d4e-0000-4000-8000-000000000002"/>'
        '<resource><Patient><id value="2b0c2d4e-0000-4000-8000-000000000002"/><gender value="male"/></Patient>'
        '</resource><request><method value="POST"/><url value="Patient"/></request></entry></Bundle>'
    )
    first = runner.invoke(main, ["import", "--quiet", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert _totals(first.output) == [1, 0, 0, 0]
    again = runner.invoke(main, ["import", "--quiet", str(tmp_path)])
    assert _totals(again.output) == [0, 0, 1, 0]


def _document() -> dict[str, object]:
    """A FHIR document (a discharge summary's shape): Composition first, entries by urn:uuid."""
    patient_url, author_url = (
        "urn:uuid:8d4e1c1a-0f3b-4a51-9d57-2f7a9c0e6b11",
        "urn:uuid:2b1f0c9e-5a7d-4c3e-8e21-7d9a6b4f3c22",
    )
    return {
        "resourceType": "Bundle", "id": "discharge-summary-17",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "type": "document", "timestamp": "2026-11-30T09:10:00Z",
        "entry": [
            {"fullUrl": "urn:uuid:5e7d0f3a-6c1b-4b8e-9a3d-1f2e3c4b5a66", "resource": {
                "resourceType": "Composition", "status": "final",
                "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
                "subject": {"reference": patient_url}, "date": "2026-11-30T09:00:00Z",
                "author": [{"reference": author_url}], "title": "Discharge summary"}},
            {"fullUrl": patient_url, "resource": {"resourceType": "Patient", "name": [{"family": "Okafor"}]}},
            {"fullUrl": author_url, "resource": {"resourceType": "Practitioner", "name": [{"family": "Lind"}]}},
        ],
    }  # fmt: skip


def test_a_document_bundle_gets_the_same_answer_from_import_and_post(
    runner: CliRunner, tmp_path: Path, client: FlaskClient
) -> None:
    posted = client.post("/fhir/Bundle", data=json.dumps({**_document(), "id": None}),
                         content_type="application/fhir+json")  # fmt: skip
    assert posted.status_code == 201, posted.data
    (tmp_path / "summary.json").write_text(json.dumps(_document()))
    result = runner.invoke(main, ["import", "--quiet", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Bundle" in result.output and _totals(result.output) == [1, 0, 0, 0]
    stored = json.loads(client.get("/fhir/Bundle/discharge-summary-17").data)
    assert stored["type"] == "document" and len(stored["entry"]) == 3
    # It is stored as the document it is, not unpacked: no Patient Okafor of its own.
    assert json.loads(client.get("/fhir/Patient?family=Okafor").data).get("total") == 0


def test_import_names_every_failure(runner: CliRunner, tmp_path: Path) -> None:
    """The probe's import of 50 bad resources named 20 and said nothing of the other 30."""
    lines = [json.dumps({"resourceType": "Patient", "id": f"bad-{n}", "gender": f"robot-{n}"}) for n in range(50)]
    (tmp_path / "people.ndjson").write_text("\n".join(lines) + "\n")
    result = runner.invoke(main, ["import", "--quiet", str(tmp_path / "people.ndjson")])
    assert result.exit_code == 1
    assert result.output.count("failed: ") == 20
    assert "... and 30 more failures not shown: `--failures FILE` writes them all" in result.output
    listing = tmp_path / "failures.txt"
    result = runner.invoke(main, ["import", "--quiet", "--failures", str(listing), str(tmp_path / "people.ndjson")])
    assert result.exit_code == 1 and f"all 50 are in {listing}" in result.output
    written = listing.read_text().splitlines()
    assert len(written) == 50 and all(f"robot-{n}" in written[n] for n in range(50))


@pytest.fixture()
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty store of the kind this run uses: a new SQLite file, or a new PostgreSQL database."""
    with scratch_database(database_url, tmp_path, "fresh") as url:
        yield url


def test_commands_on_a_store_never_upgraded_say_to_upgrade_and_upgrade_says_what_it_did(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", fresh_database_url)
    runner = CliRunner()
    people = tmp_path / "people.ndjson"
    people.write_text(json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female"}) + "\n")
    if fresh_database_url.startswith("postgresql"):  # SQLite, the embedded store, upgrades itself
        refused = runner.invoke(main, ["import", "--quiet", str(people)])
        assert refused.exit_code == 1
        assert "run `gateway db upgrade` first" in refused.output and "Traceback" not in refused.output
    else:
        with pytest.raises(SchemaNotCurrent, match="run `gateway db upgrade` first"):
            open_database(fresh_database_url, upgrade_sqlite=False)
    created = runner.invoke(main, ["db", "upgrade"])
    assert created.exit_code == 0, created.output
    assert re.search(r"created the schema in .*: \d\d tables, at revision \w+", created.output), created.output
    again = runner.invoke(main, ["db", "upgrade"])
    assert "already current" in again.output and "nothing to do" in again.output
    assert runner.invoke(main, ["import", "--quiet", str(people)]).exit_code == 0
