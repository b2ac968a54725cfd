"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
GATEWAY_TEST_DATABASE_URL points at one (as .ci/run does); an unreachable database given that
way is an error, never a skip."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import BaseWSGIServer, make_server

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from gateway.store.database import make_engine, upgrade
from gateway.store.schema import metadata

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
if not FIXTURES.exists():  # a clone next to shared/, or the CI layout
    FIXTURES = Path(os.environ.get("GATEWAY_FIXTURES", "../shared/fixtures")).resolve()
if not (FIXTURES / "hl7-r4-examples").is_dir():
    raise RuntimeError(f"shared fixtures not found at {FIXTURES}; set GATEWAY_FIXTURES")
BASE_URL = "http://127.0.0.1:8080/fhir"


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8-sig"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.sqlite3'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except Exception as error:  # an unreachable database must fail the run, not skip it
        raise RuntimeError(f"GATEWAY_TEST_DATABASE_URL={url} is not reachable: {error}") from error
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # The FHIR engine's own tests run without tokens (auth="off"); tests/gateway/auth and
    # tests/gateway/http/test_smart_* run the same engine behind SMART (`smart_server`).
    return load_settings(database_url=database_url, base_url=BASE_URL, max_request_bytes=2 * 1024 * 1024, auth="off")


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    application.extensions["database"].dispose()


@pytest.fixture(autouse=True)
def _empty_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from an empty store (cheap: tables are small)."""
    if not {"app", "live_server", "smart_server", "sandbox_server"} & set(request.fixturenames):
        yield
        return
    name = next(n for n in ("app", "live_server", "smart_server", "sandbox_server") if n in request.fixturenames)
    found = request.getfixturevalue(name)
    app: Flask = found if isinstance(found, Flask) else found.server.app
    database = app.extensions["database"]
    with database.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    yield


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class LiveServer:
    def __init__(self, server: BaseWSGIServer, base_url: str) -> None:
        self.server = server
        self.base_url = base_url


def _serve(database_url: str, **overrides: Any) -> Iterator[LiveServer]:
    """The gateway on a real socket (threaded werkzeug server) sharing the test database."""
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    port = server.server_port
    base_url = f"http://127.0.0.1:{port}/fhir"
    server.app = create_app(load_settings(database_url=database_url, base_url=base_url, **overrides))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(server, base_url)
    server.shutdown()
    server.server_close()
    server.app.extensions["database"].dispose()


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    yield from _serve(database_url, auth="off")


@pytest.fixture(scope="session")
def smart_server(database_url: str) -> Iterator[LiveServer]:
    """The gateway behind SMART authorization, on a real socket."""
    yield from _serve(database_url, auth="smart", secret_key="test-session-key")


@pytest.fixture(scope="session")
def sandbox_server(database_url: str) -> Iterator[LiveServer]:
    """A sandbox gateway (its clock can be moved: gateway/clock.py), behind SMART, on a real socket.
    Each test starts with the clock back at the system's (the store is emptied)."""
    yield from _serve(database_url, auth="smart", secret_key="test-session-key", sandbox=True)


def fhir_json(data: Any) -> dict[str, Any]:
    return {"data": json.dumps(data), "content_type": "application/fhir+json"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright: the real browser of the page tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        yield launched
        launched.close()
