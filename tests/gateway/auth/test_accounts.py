"""Users and clients: registration rules, password hashing, lockout, TOTP."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from gateway.auth.accounts import AccountError, Accounts, LoginRefused, utcnow
from gateway.auth.roles import load_roles
from gateway.clock import SYSTEM_CLOCK
from gateway.store.schema import app_user, oauth_client

PASSWORD = "correct horse battery staple"


@pytest.fixture()
def accounts(app: Flask) -> Accounts:
    return Accounts(app.extensions["database"])


def test_roles_say_who_is_medical_personnel() -> None:
    roles = load_roles()
    assert {"crisis-clinician", "peer-specialist", "ems", "ed-physician", "police-officer", "dispatcher",
            "compliance-officer", "admin"} <= set(roles)  # fmt: skip
    assert roles["ems"].medical and roles["crisis-clinician"].medical and roles["ed-physician"].medical
    assert not roles["police-officer"].medical and not roles["peer-specialist"].medical


def test_passwords_and_secrets_are_stored_hashed(accounts: Accounts) -> None:
    accounts.add_user(username="ada", password=PASSWORD, display_name="Ada", role="crisis-clinician")
    _, secret = accounts.add_client(client_id="dash", name="Dashboard", kind="symmetric", purpose="app",
                                    scope="user/*.rs", redirect_uris=["https://dash.example/cb"])  # fmt: skip
    with accounts.database.connect() as connection:
        stored_password = connection.execute(select(app_user.c.password_hash)).scalar_one()
        stored_secret = connection.execute(select(oauth_client.c.secret_hash)).scalar_one()
    assert stored_password.startswith("$argon2id$") and PASSWORD not in stored_password
    assert secret and stored_secret.startswith("$argon2id$") and secret not in stored_secret
    client = accounts.client("dash")
    assert client and client.check_client_secret(secret) and not client.check_client_secret("guess")


def test_lockout_after_repeated_failures(accounts: Accounts) -> None:
    accounts.add_user(username="ada", password=PASSWORD, display_name="Ada", role="crisis-clinician")
    now = utcnow(SYSTEM_CLOCK)
    for _ in range(5):
        with pytest.raises(LoginRefused, match="wrong"):
            accounts.login("ada", "wrong password", None, now)
    with pytest.raises(LoginRefused, match="too many"):
        accounts.login("ada", PASSWORD, None, now)  # even the right password waits
    assert accounts.login("ada", PASSWORD, None, now + timedelta(minutes=1)).username == "ada"
    # Unknown users get the same answer as wrong passwords.
    with pytest.raises(LoginRefused) as unknown:
        accounts.login("nobody", PASSWORD, None, now)
    with pytest.raises(LoginRefused) as wrong:
        accounts.login("ada", "wrong password", None, now + timedelta(minutes=2))
    assert str(unknown.value) == str(wrong.value)


def test_totp_second_factor(accounts: Accounts) -> None:
    user = accounts.add_user(username="officer", password=PASSWORD, display_name="Officer Lee", role="police-officer",
                             totp=True)  # fmt: skip
    assert user.totp_secret
    with pytest.raises(LoginRefused):
        accounts.login("officer", PASSWORD, None)
    with pytest.raises(LoginRefused):
        accounts.login("officer", PASSWORD, "000000" if pyotp.TOTP(user.totp_secret).now() != "000000" else "111111")
    assert accounts.login("officer", PASSWORD, pyotp.TOTP(user.totp_secret).now()).username == "officer"


def test_disabled_user_cannot_sign_in(accounts: Accounts) -> None:
    accounts.add_user(username="ada", password=PASSWORD, display_name="Ada", role="crisis-clinician")
    accounts.set_user_disabled("ada")
    with pytest.raises(LoginRefused):
        accounts.login("ada", PASSWORD, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "public", "purpose": "app", "scope": "patient/*.rs"}, "redirect URI"),
        ({"kind": "public", "purpose": "app", "scope": "system/*.rs", "redirect_uris": ["https://a.example/cb"]}, "system/"),
        ({"kind": "symmetric", "purpose": "ehr", "scope": "system/*.rs"}, "private_key_jwt"),
        ({"kind": "asymmetric", "purpose": "ehr", "scope": "system/*.rs", "jwks_uri": "https://ehr.example/jwks"},
         "Organization"),
        ({"kind": "asymmetric", "purpose": "service", "scope": "system/*.rs", "jwks_uri": "http://ehr.example/jwks"},
         "https"),
        ({"kind": "asymmetric", "purpose": "service", "scope": "system/*.rs",
          "jwks": {"keys": [{"kty": "RSA", "kid": "k", "n": "x", "e": "AQAB", "d": "secret"}]}}, "private"),
        ({"kind": "public", "purpose": "app", "scope": "patient/*.zz", "redirect_uris": ["https://a.example/cb"]},
         "cruds"),
    ],
)  # fmt: skip
def test_client_registration_rules(accounts: Accounts, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.add_client(client_id="c", name="C", **kwargs)  # type: ignore[arg-type]


def test_weak_password_and_unknown_role_are_refused(accounts: Accounts) -> None:
    with pytest.raises(AccountError, match="12 characters"):
        accounts.add_user(username="u", password="short", display_name="U", role="ems")
    with pytest.raises(AccountError, match="unknown role"):
        accounts.add_user(username="u", password=PASSWORD, display_name="U", role="wizard")
