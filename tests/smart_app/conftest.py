"""The responder app on a real socket, registered as a confidential asymmetric client of a live
gateway (the `smart` harness), exactly as an operator would register it."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from joserfc.jwk import ECKey
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from smart_app.app import create_app
from smart_app.sessions import SessionStore
from smart_app.settings import AppSettings
from tests.conftest import LiveServer
from tests.gateway.auth.harness import APP_SCOPE, Harness
from tests.gateway.conftest import smart  # noqa: F401  (the live gateway with people and a clinician)
from tests.gateway.consent.world import World
from tests.gateway.consent.world import build as build_county


@dataclass
class ResponderApp:
    base: str
    app: Flask
    client_id: str

    @property
    def store(self) -> SessionStore:
        return self.app.extensions["smart_app"][1]  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def responder_app(smart: Harness, tmp_path: Path) -> Iterator[ResponderApp]:  # noqa: F811
    yield from _serve_app(smart, tmp_path)


@pytest.fixture()
def county(smart_server: LiveServer, tmp_path: Path) -> Iterator[tuple[World, ResponderApp]]:
    """The county world (tests/gateway/consent/world.py: two Part 2 programs, a mental-health
    centre, the crisis team, the ED, the police) with the responder app registered."""
    harness = Harness(smart_server.base_url, smart_server.server.app)
    harness.add_app()
    world = build_county(harness)
    for app in _serve_app(harness, tmp_path):
        yield world, app


def _serve_app(smart: Harness, tmp_path: Path) -> Iterator[ResponderApp]:  # noqa: F811
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = ECKey.generate_key("P-384", parameters={"kid": "responder-web-1"})
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    smart.add_app("responder-web", kind="asymmetric", scope=APP_SCOPE, redirect_uris=[f"{base}/callback"],
                  launch_url=f"{base}/launch", jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    settings = AppSettings(base_url=base, fhir_base_url=smart.base, client_id="responder-web",
                           private_key_file=str(key_file), secret_key="test-app-key",
                           database_url=f"sqlite:///{tmp_path / 'sessions.sqlite3'}")  # fmt: skip
    app = create_app(settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ResponderApp(base, app, "responder-web")
    server.shutdown()
    server.server_close()
    app.extensions["smart_app"][1].engine.dispose()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# A brief page (after the confirm page, which names the person too).
BRIEF_URL = re.compile(r"/person/[^/?#]+$")
VIEWPORTS = {"phone": {"width": 360, "height": 800}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture(params=list(VIEWPORTS))
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])  # type: ignore[arg-type]
    opened = context.new_page()
    opened.viewport_name = request.param  # type: ignore[attr-defined]
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"app-{name}-{page.viewport_name}.png"), full_page=True)  # type: ignore[attr-defined]
