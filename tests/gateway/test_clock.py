"""The sandbox clock (gateway/clock.py): refused where it must be, and, where it runs, every time
the gateway reads moves with it: consent periods, the audit's as_of, token, code and session
expiry, meta.lastUpdated."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from gateway.cli import main
from gateway.clock import parse_duration, parse_instant
from gateway.settings import SettingsError, check_sandbox, load_settings
from gateway.store.schema import audit_event
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.world import World


def test_durations_and_instants() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("2h30m") == timedelta(hours=2, minutes=30)
    assert parse_duration("-1d") == timedelta(days=-1)
    assert parse_duration("P1W2DT3H") == timedelta(weeks=1, days=2, hours=3)
    assert parse_duration("PT45S") == timedelta(seconds=45)
    for bad in ("", "P", "2x", "1d and a bit", "soon"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_instant("2027-03-01T09:00:00-05:00") == datetime(2027, 3, 1, 14, 0)
    assert parse_instant("2027-03-01") == datetime(2027, 3, 1)
    with pytest.raises(ValueError):
        parse_instant("next tuesday")


def test_a_sandbox_binds_loopback_only_unless_an_operator_overrides() -> None:
    check_sandbox(load_settings(sandbox=True, host="127.0.0.1"))
    check_sandbox(load_settings(sandbox=False, host="10.1.2.3"))
    with pytest.raises(SettingsError, match="loopback"):
        check_sandbox(load_settings(sandbox=True, host="10.1.2.3"))
    check_sandbox(load_settings(sandbox=True, host="10.1.2.3", sandbox_allow_non_loopback=True))
    refused = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"], env={"GATEWAY_SANDBOX": "true"})
    assert refused.exit_code != 0 and "loopback" in refused.output


def test_the_clock_commands_refuse_outside_a_sandbox_and_move_it_inside(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'clock.sqlite3'}"}
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    refused = runner.invoke(main, ["clock", "advance", "1d"], env=env)
    assert refused.exit_code != 0 and "sandboxes only" in refused.output
    env["GATEWAY_SANDBOX"] = "true"
    moved = runner.invoke(main, ["clock", "set", "2027-06-01T12:00:00Z", "--json"], env=env)
    assert moved.exit_code == 0, moved.output
    assert moved.output.count("2027-06-01T12:00") == 1
    advanced = runner.invoke(main, ["clock", "advance", "P2D", "--json"], env=env)
    assert "2027-06-03T12:00" in advanced.output
    assert runner.invoke(main, ["clock", "advance", "later"], env=env).exit_code != 0
    reset = runner.invoke(main, ["clock", "reset", "--json"], env=env)
    assert '"offset_seconds": 0.0' in reset.output
    assert os.environ.get("GATEWAY_SANDBOX") is None  # the environment of the run is untouched


# -- in a running sandbox --------------------------------------------------------------------------------
@pytest.fixture()
def sandbox(sandbox_server: LiveServer) -> Harness:
    harness = Harness(sandbox_server.base_url, sandbox_server.server.app)
    harness.add_app()
    harness.add_user("root", role="admin", organization="Organization/county-it", practitioner=None)
    return harness


def move(harness: Harness, **change: str | bool) -> dict[str, Any]:
    token = harness.app_token(scope="openid fhirUser user/*.rs", patient=None, username="root")["access_token"]
    response = requests.post(f"{harness.root}/admin/clock", json=change, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_admin_endpoint_is_for_administrators_of_a_sandbox_only(sandbox: Harness, smart_server: LiveServer) -> None:
    sandbox.add_user("ada")
    ada = sandbox.app_token(scope="openid fhirUser user/*.rs", patient=None, username="ada")["access_token"]
    refused = requests.post(f"{sandbox.root}/admin/clock", json={"advance": "1d"}, timeout=10,
                            headers={"Authorization": f"Bearer {ada}"})  # fmt: skip
    assert refused.status_code == 403
    production = smart_server.base_url.removesuffix("/fhir")
    assert requests.get(f"{production}/admin/clock", timeout=10).status_code == 404
    state = move(sandbox, set="2027-01-15T08:00:00Z")
    assert state["now"].startswith("2027-01-15T08:00")
    assert move(sandbox, advance="PT1H")["now"].startswith("2027-01-15T09:00")


def test_consent_expiry_audit_time_and_lastupdated_follow_the_clock(sandbox: Harness) -> None:
    """A consent naming the police department until 20 December: released today; after the clock
    is set past it, withheld, and the audit says when it decided."""
    world: World = county.build(sandbox)
    consent = county.consent("omar-police", "omar", "part2-specific", disclosers=[county.DETOX],
                             recipients=[{"reference": county.POLICE}], purposes=["crisis-coordination"],
                             classes=["STATUS", "CONTACT", "CRISISPLAN"])  # fmt: skip
    consent["provision"]["period"] = {"end": "2026-12-20"}
    world.push("detox", consent)

    def police_brief() -> set[str]:
        world.tokens.clear()  # a token from before the clock moved has expired: sign in again
        answer = world.brief("lee", "omar", purpose="crisis-coordination", confirmed="true")
        assert answer.status_code in (200, 404), answer.text
        entries = answer.json().get("entry", []) if answer.status_code == 200 else []
        return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries[1:]}

    assert "EpisodeOfCare/omar-detox-episode" in police_brief()
    move(sandbox, set="2026-12-21T00:00:00Z")
    assert police_brief() == set()
    with sandbox.app.extensions["database"].connect() as connection:
        rows = connection.execute(select(audit_event.c.body).order_by(audit_event.c.seq.desc()).limit(3)).scalars()
        last = next(body for body in rows.all() if body.get("decisions"))
    as_of = last["decisions"][0]["as_of"]
    assert as_of.startswith("2026-12-21T00:0"), as_of
    world.push("crisis", county.organization("Organization/new-shelter", "Harbor Night Shelter"))
    found = sandbox.get("Organization/new-shelter", world.token("ada")).json()
    assert found["meta"]["lastUpdated"].startswith("2026-12-21T00:0")


def test_tokens_and_sessions_expire_on_the_gateways_clock(sandbox: Harness) -> None:
    sandbox.add_user("ada")
    backend = sandbox.add_backend("county-cad", scope="system/Patient.rs", purpose="dispatch")
    system_token = sandbox.backend_token(backend, "system/Patient.rs")  # 5 minutes
    app_grant = sandbox.app_token(scope="openid fhirUser user/*.rs offline_access", patient=None, username="ada")
    assert sandbox.get("metadata", system_token).status_code == 200
    assert sandbox.get("Patient", system_token).status_code == 200
    move(sandbox, advance="6m")
    assert sandbox.get("Patient", system_token).status_code == 401  # the backend token has expired
    assert sandbox.get("Patient", str(app_grant["access_token"])).status_code == 200  # an hour's token has not
    assert sandbox.backend_token(backend, "system/Patient.rs")  # a new one: assertions are on the EHR's clock
    move(sandbox, advance="2h")
    assert sandbox.get("Patient", str(app_grant["access_token"])).status_code == 401
    refreshed = requests.post(sandbox.token_url, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": app_grant["refresh_token"], "client_id": "responder-app"})  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text  # offline access lasts 30 days
    move(sandbox, advance="31d")
    again = requests.post(sandbox.token_url, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"], "client_id": "responder-app"})  # fmt: skip
    assert again.status_code == 400


def test_a_court_order_expires_on_the_sandbox_clock(sandbox: Harness) -> None:
    """County counsel reads under an order until it expires (1 February 2027); moved past it, the
    same request finds nothing, and nothing is disclosed."""
    world: World = county.build(sandbox)
    sandbox.add_user("kerr", role="legal-counsel", organization="Organization/county-counsel", practitioner=None)
    sandbox.add_app("compliance-console", scope="openid fhirUser user/*.rs user/Consent.cruds")
    cora = sandbox.app_token(client_id="compliance-console", scope="openid fhirUser user/Consent.cru user/*.rs",
                             patient=None, username="cora")["access_token"]  # fmt: skip
    order = county.profile_example("order-2026-cv-118") | {"id": "order-118", "patient": {"reference": "Patient/maria"}}
    created = requests.put(f"{sandbox.base}/Consent/order-118", json=order, timeout=10,
                           headers={"Authorization": f"Bearer {cora}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert created.status_code == 201, created.text

    def counsel_reads() -> set[str]:
        world.tokens.pop("kerr", None)  # sign in again: a moved clock has expired the last token
        bundle = sandbox.get("Condition", world.token("kerr"), params={"patient": "Patient/maria"},
                             headers={"X-Purpose-Of-Use": "legal-proceeding"}).json()  # fmt: skip
        return {e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"}

    assert counsel_reads() == {"maria-oud"}
    move(sandbox, set="2027-02-02T00:00:00Z")
    assert counsel_reads() == set()
