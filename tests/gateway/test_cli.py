"""The `gateway` command: import, demo, settings errors, and the loopback-only serve guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from gateway.cli import is_loopback, main
from gateway.settings import SettingsError, load_settings
from tests.conftest import FIXTURES


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
