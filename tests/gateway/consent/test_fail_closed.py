"""Fail closed, shown with real faults: when the store will not take the audit record (a lock
another connection holds past the gateway's statement timeout; a read-only SQLite file), every
routine request gets the same 503 and nothing is released, while a medical emergency still gets
its emergency set, its audit record durable in the spool first, and replayed into the hash chain
once the store takes writes again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select, text
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.consent.audit import AuditLog
from gateway.settings import load_settings
from gateway.store.schema import audit_event, disclosure, emergency_review
from tests.conftest import LiveServer
from tests.gateway.auth.harness import Harness
from tests.gateway.consent import world as county
from tests.gateway.consent.world import World

TIMEOUT_MS = 1500


@contextmanager
def serve(database_url: str, spool: Path, **overrides: Any) -> Iterator[tuple[Harness, Any]]:
    """A gateway of its own (statement timeout 1.5 s, its own spool) on a real socket."""
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}/fhir"
    server.app = create_app(load_settings(database_url=database_url, base_url=base_url, auth="smart",
                                          secret_key="fault-tests", statement_timeout_ms=TIMEOUT_MS,
                                          audit_spool_dir=str(spool), **overrides))  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    harness = Harness(base_url, server.app)
    harness.add_app()
    try:
        yield harness, server.app
    finally:
        server.shutdown()
        server.server_close()
        server.app.extensions["database"].dispose()


def routine_and_emergency(world: World) -> tuple[requests.Response, requests.Response, requests.Response]:
    """A routine brief about a person on file and one about nobody, then an emergency brief."""
    known = world.brief("ada", "maria", purpose="TREAT", confirmed="true")
    nobody = world.brief("ada", "nobody-here", purpose="TREAT", confirmed="true")
    emergency = world.brief("ada", "dana", purpose="BTG", reason="unresponsive, suspected overdose", confirmed="true")
    return known, nobody, emergency


def assert_failed_closed(known: requests.Response, nobody: requests.Response) -> None:
    assert known.status_code == nobody.status_code == 503
    assert known.json() == nobody.json()  # the same words, whoever it is about
    assert known.headers["Retry-After"] == "5"
    assert "Maria" not in known.text and "maria-oud" not in known.text


def assert_emergency_went_out_spooled(emergency: requests.Response, spool: Path) -> set[str]:
    assert emergency.status_code == 200, emergency.text
    sent = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in emergency.json()["entry"][1:]}
    assert {"Condition/dana-oud", "MedicationStatement/dana-methadone"} <= sent
    spooled = sorted(spool.glob("*.json"))
    assert len(spooled) == 1, "the emergency's audit record is durable in the spool before the answer"
    return sent


def assert_replayed(world: World, app: Any, sent: set[str], spool: Path) -> None:
    """The next request that the store records replays the spool: the record, its ledger rows,
    its review item and the §2.51(c) Communication, in an intact hash chain."""
    assert world.get("ada", "metadata").status_code == 200
    assert world.brief("ada", "maria", purpose="TREAT", confirmed="true").status_code == 200
    assert not list(spool.glob("*.json"))
    database = app.extensions["database"]
    with database.connect() as connection:
        rows = connection.execute(select(audit_event.c.seq, audit_event.c.body)).all()
        spooled = [(seq, body) for seq, body in rows if body.get("spooled")]
        assert len(spooled) == 1
        seq, body = spooled[0]
        assert body["decisions"][0]["emergency_record"]["nature"] == "unresponsive, suspected overdose"
        ledger = set(connection.execute(select(disclosure.c.item).where(disclosure.c.audit_seq == seq)).scalars())
        reviews = connection.execute(select(emergency_review.c.audit_seq).where(emergency_review.c.audit_seq == seq))
        assert ledger == sent and len(reviews.all()) == 1
    communications = world.harness.get("Communication", world.harness.backend_token(
        world.harness._backends["eastside-otp-ehr"], "system/*.rs"), params={"subject": "Patient/dana"}).json()  # fmt: skip
    assert communications.get("total", 0) >= 1  # the §2.51(c) record went to the program
    assert all(report.intact for report in AuditLog(database).verify())


def test_a_lock_held_past_the_statement_timeout(smart_server: LiveServer, database_url: str, tmp_path: Path) -> None:
    """Another connection holds a lock on the audit (PostgreSQL: an ACCESS EXCLUSIVE table lock;
    SQLite: the database's write lock) longer than the gateway's statement timeout."""
    spool = tmp_path / "spool"
    with serve(database_url, spool) as (harness, app):
        world = county.build(harness)
        for user in ("ada",):
            world.token(user)
        database = app.extensions["database"]
        if database.dialect.name == "postgresql":
            holder = database.connect()
            holder.execute(text("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE"))  # in its transaction
            release = holder.close
        else:
            raw = sqlite3.connect(database.url.database, isolation_level=None)
            raw.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held by another connection
            release = raw.close
        try:
            known, nobody, emergency = routine_and_emergency(world)
        finally:
            release()
        assert_failed_closed(known, nobody)
        sent = assert_emergency_went_out_spooled(emergency, spool)
        assert_replayed(world, app, sent, spool)


def _read_only(path: Path, on: bool) -> None:
    """A read-only database file: immutable for root (who ignores permissions), 0444 for anyone."""
    if on:
        os.chmod(path, 0o444)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)
    if not on:
        os.chmod(path, 0o644)


def test_a_read_only_sqlite_file(smart_server: LiveServer, tmp_path: Path) -> None:
    """The store's file turns read-only (a full or remounted disk, an operator's mistake): reads
    still work, writes do not."""
    spool = tmp_path / "spool"
    path = tmp_path / "gateway.sqlite3"
    with serve(f"sqlite:///{path}", spool) as (harness, app):
        world = county.build(harness)
        world.token("ada")
        backend_token = harness.backend_token(harness._backends["eastside-otp-ehr"], "system/*.rs")
        database = app.extensions["database"]
        database.dispose()  # connections opened from now on find the file read-only
        _read_only(path, True)
        try:
            with pytest.raises(sqlite3.OperationalError):  # the fault is real: a write fails
                with sqlite3.connect(path) as check:
                    check.execute("CREATE TABLE probe (x)")
            known, nobody, emergency = routine_and_emergency(world)
            assert harness.get("Patient/maria", backend_token).status_code == 503  # an EHR's read too
        finally:
            database.dispose()
            _read_only(path, False)
        assert_failed_closed(known, nobody)
        sent = assert_emergency_went_out_spooled(emergency, spool)
        assert_replayed(world, app, sent, spool)


def test_gateway_audit_replay_appends_what_was_spooled(tmp_path: Path) -> None:
    """The operator's command, for a spool left behind (the store came back, and no request has
    been recorded since)."""
    from datetime import datetime

    from click.testing import CliRunner

    from gateway.cli import main
    from gateway.consent.audit import AuditRecord
    from gateway.consent.spool import AuditSpool

    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "GATEWAY_AUDIT_SPOOL_DIR": str(tmp_path / "s"),
    }
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    record = AuditRecord(recorded_at=datetime(2026, 12, 6, 3, 4, 5), recipient="ada", outcome="PERMIT",
                         patient="Patient/dana", purpose="BTG", emergency=True, body={"decisions": []},
                         interaction="responder-brief", review=True)  # fmt: skip
    AuditSpool(tmp_path / "s").write(record, [])
    replayed = runner.invoke(main, ["audit", "replay", "--json"], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert '"replayed": 1' in replayed.output and '"remaining": 0' in replayed.output
    verified = runner.invoke(main, ["audit", "verify", "--json"], env=env)
    assert verified.exit_code == 0 and '"rows": 1' in verified.output
