"""`gateway client|user|keys`: registration from the command line, with --json for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey

from gateway.cli import main
from tests.gateway.test_cli import runner  # noqa: F401  (the fixture)


def _json(result: object) -> object:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return json.loads(result.output)  # type: ignore[attr-defined]


def test_client_add_list_disable(runner: CliRunner, tmp_path: Path) -> None:  # noqa: F811
    app = _json(runner.invoke(main, ["client", "add", "responder-app", "--name", "Responder", "--kind", "public",
                                     "--scope", "launch openid fhirUser patient/*.rs", "--redirect-uri",
                                     "https://app.example/cb", "--launch-url", "https://app.example/launch", "--json"]))  # fmt: skip
    assert app["token_endpoint_auth_method"] == "none"  # type: ignore[index]
    secret = _json(runner.invoke(main, ["client", "add", "dash", "--name", "Dash", "--kind", "symmetric", "--scope",
                                        "user/*.rs", "--redirect-uri", "https://dash.example/cb", "--json"]))  # fmt: skip
    assert len(secret["client_secret"]) > 30  # type: ignore[index]
    key = ECKey.generate_key("P-384", parameters={"kid": "ehr-1"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    ehr = _json(runner.invoke(main, ["client", "add", "eastside-ehr", "--name", "Eastside EHR", "--kind", "asymmetric",
                                     "--purpose", "ehr", "--scope", "system/*.cruds", "--jwks", f"@{tmp_path / 'jwks.json'}",
                                     "--organization", "Organization/eastside-otp", "--part2-program", "--json"]))  # fmt: skip
    assert ehr["part2_program"] is True and ehr["jwks"]["keys"][0]["kid"] == "ehr-1"  # type: ignore[index]
    listed = _json(runner.invoke(main, ["client", "list", "--json"]))
    assert [c["client_id"] for c in listed] == ["dash", "eastside-ehr", "responder-app"]  # type: ignore[union-attr, index]
    disabled = _json(runner.invoke(main, ["client", "disable", "dash", "--json"]))
    assert disabled["disabled"] is True  # type: ignore[index]
    duplicate = runner.invoke(main, ["client", "add", "dash", "--name", "x", "--kind", "public", "--scope", "user/*.rs",
                                     "--redirect-uri", "https://x.example/cb"])  # fmt: skip
    assert duplicate.exit_code != 0 and "registered already" in duplicate.output


def test_user_add_list_disable(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("GATEWAY_NEW_USER_PASSWORD", "correct horse battery staple")
    added = _json(runner.invoke(main, ["user", "add", "lee", "--name", "Officer Lee", "--role", "police-officer",
                                       "--practitioner", "Practitioner/lee", "--totp", "--json"]))  # fmt: skip
    assert added["medical"] is False and added["totp_uri"].startswith("otpauth://totp/")  # type: ignore[index]
    listed = _json(runner.invoke(main, ["user", "list", "--json"]))
    assert listed[0]["username"] == "lee" and "password" not in json.dumps(listed)  # type: ignore[index]
    assert _json(runner.invoke(main, ["user", "disable", "lee", "--json"]))["disabled"] is True  # type: ignore[index]
    bad_role = runner.invoke(main, ["user", "add", "x", "--name", "X", "--role", "wizard"])
    assert bad_role.exit_code != 0 and "unknown role" in bad_role.output


def test_keys_rotate(runner: CliRunner) -> None:  # noqa: F811
    first = _json(runner.invoke(main, ["keys", "rotate", "--json"]))
    second = _json(runner.invoke(main, ["keys", "rotate", "--json"]))
    assert first["kid"] != second["kid"] and second["retired"] == 1  # type: ignore[index]


def test_demo_sign_in_is_created_once_and_works(runner: CliRunner) -> None:  # noqa: F811
    from gateway.auth.accounts import Accounts
    from gateway.demo import DEMO_PASSWORD, DEMO_USER, ensure_demo_accounts
    from gateway.settings import load_settings
    from gateway.store.database import open_database

    settings = load_settings()
    first = ensure_demo_accounts(settings)
    assert ensure_demo_accounts(settings) == first  # idempotent
    database = open_database(settings.database_url)
    try:
        user = Accounts(database).login(DEMO_USER, DEMO_PASSWORD, None)
        assert user.role == "crisis-clinician" and user.organization == "Organization/county-mobile-crisis"
    finally:
        database.dispose()


def test_demo_refuses_non_loopback_binds(runner: CliRunner) -> None:  # noqa: F811
    result = runner.invoke(main, ["serve", "--demo", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "loopback" in result.output
