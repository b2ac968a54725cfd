"""The demo's dispatch link (`gateway serve --demo`): a fresh dispatch launch of the responder app
on each visit, served in demo mode only and on loopback only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from joserfc.jwk import ECKey
from sqlalchemy import select

from gateway.app import create_app
from gateway.auth.accounts import Accounts
from gateway.demo import DEMO_APP, DEMO_APP_SCOPE, DEMO_DISPATCH_PATIENT, DEMO_DISPATCH_USER
from gateway.settings import SettingsError, check_sandbox, load_settings
from gateway.store.schema import launch_context
from tests.conftest import BASE_URL

APP = "http://127.0.0.1:8081"


def test_the_dispatch_link_makes_a_fresh_launch_in_demo_mode_only(app: Flask, database_url: str) -> None:
    assert app.test_client().get("/demo/dispatch").status_code == 404  # not a demo: no such page
    demo = create_app(load_settings(database_url=database_url, base_url=BASE_URL, demo=True))
    try:
        assert demo.test_client().get("/demo/dispatch").status_code == 404  # the app is not registered yet
        key = ECKey.generate_key("P-384", parameters={"kid": "demo"})
        Accounts(demo.extensions["database"]).add_client(
            client_id=DEMO_APP, name="Responder app (demo)", kind="asymmetric", purpose="app", scope=DEMO_APP_SCOPE,
            redirect_uris=[f"{APP}/callback"], launch_url=f"{APP}/launch", jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
        launches = []
        for _ in range(2):
            answer = demo.test_client().get("/demo/dispatch")
            assert answer.status_code == 303 and answer.location.startswith(f"{APP}/launch?")
            query = parse_qs(urlsplit(answer.location).query)
            assert query["iss"] == [BASE_URL]
            launches.append(query["launch"][0])
        assert launches[0] != launches[1]  # each visit dispatches anew (a launch lives five minutes)
        with demo.extensions["database"].connect() as connection:
            row = connection.execute(select(launch_context).where(launch_context.c.launch_id == launches[0])).one()
        assert (row.client_id, row.patient, row.username) == (DEMO_APP, DEMO_DISPATCH_PATIENT, DEMO_DISPATCH_USER)
    finally:
        demo.extensions["database"].dispose()


def test_demo_mode_binds_loopback_only(database_url: str) -> None:
    with pytest.raises(SettingsError, match="loopback"):
        check_sandbox(load_settings(database_url=database_url, host="192.0.2.10", demo=True))
