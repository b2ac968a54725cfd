"""The demo tells the truth: each consent path the README lists works as it says, with the demo's
own users (in process, through the production hooks: SMART, the consent engine, the audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from gateway.app import build_engine
from gateway.demo import DECEASED, DEMO_USERS, MINOR, ORDERED, _id, ensure_demo_accounts, load_demo
from gateway.fhir.context import FhirRequest, Requester
from gateway.fhir.engine import Engine
from gateway.fhir.errors import FhirError
from gateway.settings import load_settings
from gateway.store.database import open_database

ROLES = {username: role for username, _, role, _, _ in DEMO_USERS}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = Path(tmp_path_factory.mktemp("demo")) / "demo.sqlite3"
    settings = load_settings(database_url=f"sqlite:///{path}", base_url="http://demo/fhir")
    load_demo(settings, patients=16)
    ensure_demo_accounts(settings)
    database = open_database(settings.database_url)
    yield build_engine(settings, database)
    database.dispose()


def brief(engine: Engine, user: str, person: int, purpose: str, **params: str) -> tuple[int, set[str], str]:
    requester = Requester(source=f"user:{user}", client_id="demo-app", scopes=("user/*.rs",), username=user,
                          role=ROLES[user], conceal_deletions=True)  # fmt: skip
    request = FhirRequest("GET", f"Patient/{_id('patient', person)}/$responder-brief", requester=requester,
                          params=[("purpose", purpose), ("confirmed", "true"), *params.items()])  # fmt: skip
    try:
        document = engine.handle(request).resource or {}
    except FhirError as error:
        return error.status, set(), ""
    kinds = {e["resource"]["resourceType"] for e in document["entry"][1:]}
    basis = next(s for s in document["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "basis")
    return 200, kinds, str(basis["text"]["div"])


def test_tpo_with_the_crisis_team_on_scene(demo: Engine) -> None:
    status, kinds, basis = brief(demo, "demo-clinician", 0, "TREAT")
    assert status == 200 and {"Condition", "MedicationStatement", "Patient"} <= kinds
    assert "demo-tpo" in basis and "42 CFR part 2" in basis


def test_police_with_and_without_a_consent_naming_them(demo: Engine) -> None:
    status, kinds, _ = brief(demo, "demo-officer", 3, "crisis-coordination")
    assert status == 200 and kinds >= {"Patient", "EpisodeOfCare", "CareTeam"} and "Condition" not in kinds
    assert brief(demo, "demo-officer", 0, "crisis-coordination")[0] == 404


def test_intermediary_counseling_notes_and_psychotherapy_notes(demo: Engine) -> None:
    status, kinds, basis = brief(demo, "demo-clinician", 6, "TREAT")
    assert status == 200 and "Condition" in kinds and "demo-intermediary" in basis
    assert "DocumentReference" in brief(demo, "demo-clinician", 9, "TREAT")[1]
    assert "DocumentReference" in brief(demo, "demo-clinician", 1, "TREAT")[1]
    assert "DocumentReference" not in brief(demo, "demo-peer", 9, "TREAT")[1]


def test_emergency_access_despite_an_opt_out_and_denial_without_a_basis(demo: Engine) -> None:
    assert brief(demo, "demo-clinician", 11, "TREAT")[0] == 404  # the opt-out
    status, kinds, basis = brief(demo, "demo-clinician", 11, "BTG", reason="unresponsive after a seizure")
    assert status == 200 and "Condition" in kinds and "emergency" in basis
    assert brief(demo, "demo-clinician", 15, "TREAT")[0] == 404  # OTP, no consent, no one on scene


def test_a_restriction_and_the_mental_health_overlay(demo: Engine) -> None:
    status, kinds, _ = brief(demo, "demo-clinician", 4, "TREAT")
    assert status == 200 and "Condition" not in kinds and "EpisodeOfCare" in kinds  # no diagnoses
    status, kinds, _ = brief(demo, "demo-clinician", 2, "TREAT")
    assert status == 200 and "Condition" in kinds  # mental-health data under the overlay


def test_peers_and_dispatchers_get_their_minimum_necessary(demo: Engine) -> None:
    assert brief(demo, "demo-peer", 0, "TREAT")[1] <= {"Patient", "EpisodeOfCare", "Encounter", "CareTeam", "Flag",
                                                        "PractitionerRole", "Practitioner", "Organization"}  # fmt: skip
    dispatcher = brief(demo, "demo-dispatcher", 0, "TREAT")[1]
    assert "CareTeam" in dispatcher and not dispatcher & {"EpisodeOfCare", "Condition", "MedicationStatement"}


def search(engine: Engine, user: str, resource_type: str, person: int, purpose: str) -> set[str]:
    requester = Requester(source=f"user:{user}", client_id="demo-app", scopes=("user/*.rs",), username=user,
                          role=ROLES[user], conceal_deletions=True)  # fmt: skip
    request = FhirRequest("GET", resource_type, requester=requester, purpose=purpose,
                          params=[("patient", f"Patient/{_id('patient', person)}")])  # fmt: skip
    bundle = engine.handle(request).resource or {}
    return {
        e["resource"]["resourceType"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"
    }


def test_a_minors_consent_signed_without_a_parent_is_not_relied_on(demo: Engine) -> None:
    status, kinds, _ = brief(demo, "demo-clinician", MINOR, "TREAT")
    assert not {"Condition", "MedicationStatement"} & kinds  # the OTP's records stay with the OTP
    assert {"Condition", "MedicationStatement"} <= brief(demo, "demo-clinician", 0, "TREAT")[1]  # an adult's


def test_a_deceased_person_has_no_brief_and_the_examiner_gets_the_cause_of_death_classes(demo: Engine) -> None:
    assert brief(demo, "demo-clinician", DECEASED, "BTG", reason="found unresponsive")[0] == 404
    assert search(demo, "demo-examiner", "Condition", DECEASED, "cause-of-death") == {"Condition"}
    assert search(demo, "demo-examiner", "Condition", DECEASED, "TREAT") == set()
    assert search(demo, "demo-examiner", "Condition", 0, "cause-of-death") == set()  # the living


def test_the_court_order_opens_its_scope_to_county_counsel_only(demo: Engine) -> None:
    assert search(demo, "demo-counsel", "Condition", ORDERED, "legal-proceeding") == {"Condition"}
    assert search(demo, "demo-counsel", "CareTeam", ORDERED, "legal-proceeding") == set()  # not a class it names
    assert search(demo, "demo-counsel", "Condition", 0, "legal-proceeding") == set()  # no order about person 0


def test_the_epidemiologist_reads_no_record(demo: Engine) -> None:
    assert search(demo, "demo-epidemiologist", "Condition", 0, "PUBHLTH") == set()


def test_the_demo_registers_the_responder_app_once_with_its_own_key(app: Flask, tmp_path: Path) -> None:
    from gateway.demo import DEMO_APP, ensure_demo_app

    settings = app.config["GATEWAY_SETTINGS"]
    key_file = tmp_path / "var" / "smart-app-key.json"
    lines = ensure_demo_app(settings, "http://127.0.0.1:8081", key_file)
    assert lines == ["responder app: http://127.0.0.1:8081/ (sign in as demo-clinician or demo-officer)",
                     "dispatch launch to try: http://127.0.0.1:8080/demo/dispatch (opens the app on the dispatched "
                     "person's brief)"]  # fmt: skip
    assert key_file.stat().st_mode & 0o777 == 0o600
    registered = app.extensions["smart_server"].accounts.client(DEMO_APP)
    assert registered.kind == "asymmetric" and registered.redirect_uris == ["http://127.0.0.1:8081/callback"]
    private = json.loads(key_file.read_text())
    assert registered.jwks["keys"][0]["x"] == private["x"] and "d" not in registered.jwks["keys"][0]
    assert ensure_demo_app(settings, "http://127.0.0.1:8081", key_file) == lines  # idempotent
    assert json.loads(key_file.read_text()) == private
    key_file.unlink()
    assert "is missing" in ensure_demo_app(settings, "http://127.0.0.1:8081", key_file)[0]


def test_the_demo_officer_has_the_second_factor_the_console_asks_for(tmp_path: Path) -> None:
    import pyotp

    from gateway.auth.accounts import Accounts
    from gateway.demo import DEMO_OFFICER

    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", base_url="http://127.0.0.1:8080/fhir"
    )
    lines = ensure_demo_accounts(settings)
    database = open_database(settings.database_url)
    officer = Accounts(database).user(DEMO_OFFICER)
    assert officer is not None and officer.totp_secret
    assert Accounts(database).login(DEMO_OFFICER, "demo-password-2026", pyotp.TOTP(officer.totp_secret).now())
    database.dispose()
    console = [line for line in lines if line.startswith("compliance console: http://127.0.0.1:8080/console/")]
    assert console and officer.totp_secret in console[0]
    assert ensure_demo_accounts(settings)[-1] == console[0]  # created once: the same secret on the next start
