"""Clients and users of the authorization server, on the store's tables.

Client secrets and passwords are hashed with Argon2id; codes and tokens (in `tokens.py`) with
SHA-256, which suffices for random 256-bit values and keeps the lookup a primary-key read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import Engine, delete, insert, select, update

from gateway.auth.roles import role as known_role
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.database import writing
from gateway.store.schema import app_user, oauth_client, sign_in_session

CLIENT_KINDS = ("public", "symmetric", "asymmetric")
SESSION_KEPT = timedelta(days=1)
CLIENT_PURPOSES = ("app", "ehr", "dispatch", "service")
AUTH_METHOD = {"public": "none", "symmetric": "client_secret_basic", "asymmetric": "private_key_jwt"}
# After this many failed logins in a row, each further attempt waits longer (CJIS 5.5.3 asks
# for a lockout after at most 5 attempts).
FREE_ATTEMPTS = 5
MAX_LOCKOUT = timedelta(minutes=30)

WRONG_CREDENTIALS = "wrong username, password or one-time code"

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A client or user registration the gateway refuses; the message says why."""


def utcnow(clock: Clock) -> datetime:
    """The gateway's clock to the second: what tokens, codes and accounts record."""
    return clock.now().replace(microsecond=0)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class Client:
    """A registered client, with the methods Authlib's ClientMixin asks for."""

    client_id: str
    name: str
    kind: str
    purpose: str
    scope: str
    redirect_uris: list[str] = field(default_factory=list)
    secret_hash: str | None = None
    jwks_uri: str | None = None
    jwks: dict[str, Any] | None = None
    launch_url: str | None = None
    organization: str | None = None
    part2_program: bool = False
    disabled: bool = False
    created_at: datetime | None = None

    # -- authlib ClientMixin ---------------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # SMART requires redirect_uri on every authorization request

    def get_allowed_scope(self, scope: str | None) -> str:
        from gateway.auth.scopes import negotiate  # noqa: PLC0415

        try:
            return str(negotiate(scope or "", self.scope))
        except ScopeError:
            return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.kind == "symmetric" and verify_secret(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.disabled:
            return False
        if method == "none_by_refresh_token":
            return self.kind == "public"
        if self.kind == "symmetric":
            return method in ("client_secret_basic", "client_secret_post")
        return method == AUTH_METHOD[self.kind]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.purpose == "app"

    def check_grant_type(self, grant_type: str) -> bool:
        if self.purpose == "app":
            return grant_type in ("authorization_code", "refresh_token")
        return grant_type == "client_credentials" and self.kind == "asymmetric"

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """What versions written by this client record as their source."""
        return f"client:{self.client_id}"

    def public_view(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "kind": self.kind,
            "purpose": self.purpose,
            "token_endpoint_auth_method": AUTH_METHOD[self.kind],
            "scope": self.scope,
            "redirect_uris": self.redirect_uris,
            "launch_url": self.launch_url,
            "jwks_uri": self.jwks_uri,
            "jwks": self.jwks,
            "organization": self.organization,
            "part2_program": self.part2_program,
            "disabled": self.disabled,
        }


@dataclass
class User:
    username: str
    display_name: str
    role: str
    practitioner: str | None = None
    practitioner_role: str | None = None
    organization: str | None = None
    totp_secret: str | None = None
    disabled: bool = False
    password_hash: str = ""
    failed_logins: int = 0
    locked_until: datetime | None = None

    def get_user_id(self) -> str:
        return self.username

    @property
    def medical(self) -> bool:
        return known_role(self.role).medical

    @property
    def treating(self) -> bool:
        return known_role(self.role).treating

    def public_view(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "medical": self.medical,
            "fhirUser": self.practitioner,
            "practitioner_role": self.practitioner_role,
            "organization": self.organization,
            "totp": bool(self.totp_secret),
            "disabled": self.disabled,
        }


def _check_jwks(jwks: dict[str, Any]) -> None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise AccountError("a JWKS must be an object with a non-empty 'keys' array")
    kids = [key.get("kid") for key in keys if isinstance(key, dict)]
    if len(kids) != len(keys) or not all(kids) or len(set(kids)) != len(kids):
        raise AccountError("every key in the JWKS needs a 'kid', unique within the set")
    for key in keys:
        if key.get("kty") not in ("RSA", "EC"):
            raise AccountError(f"key {key.get('kid')!r}: only RSA and EC keys are accepted")
        if any(private in key for private in ("d", "p", "q")):
            raise AccountError(f"key {key.get('kid')!r} contains private key material; register the public key")
        try:  # a key the gateway could never verify with is refused now, not at the first token request
            (ECKey if key["kty"] == "EC" else RSAKey).import_key(key)
        except (ValueError, TypeError, KeyError) as error:
            raise AccountError(f"key {key.get('kid')!r} is not a valid {key['kty']} public key: {error}") from None


class Accounts:
    def __init__(self, database: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.database = database
        self.clock = clock

    # -- clients -----------------------------------------------------------------------------------
    def add_client(
        self,
        *,
        client_id: str,
        name: str,
        kind: str,
        purpose: str,
        scope: str,
        redirect_uris: Iterable[str] = (),
        jwks_uri: str | None = None,
        jwks: dict[str, Any] | None = None,
        launch_url: str | None = None,
        organization: str | None = None,
        part2_program: bool = False,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a symmetric client, its secret (shown once)."""
        redirect_uris = list(redirect_uris)
        if kind not in CLIENT_KINDS:
            raise AccountError(f"kind must be one of {', '.join(CLIENT_KINDS)}")
        if purpose not in CLIENT_PURPOSES:
            raise AccountError(f"purpose must be one of {', '.join(CLIENT_PURPOSES)}")
        try:
            ceiling = ScopeSet.parse(scope)
        except ScopeError as error:
            raise AccountError(str(error)) from None
        if purpose == "app":
            if not redirect_uris:
                raise AccountError("an app needs at least one redirect URI")
            if ceiling.contexts & {"system"}:
                raise AccountError("apps get patient/ and user/ scopes; system/ scopes are for backend clients")
        else:
            if kind != "asymmetric":
                raise AccountError("backend clients (ehr, dispatch, service) authenticate with private_key_jwt")
            if ceiling.contexts - {"system"}:
                raise AccountError("backend clients get system/ scopes only")
        if kind == "asymmetric":
            if bool(jwks_uri) == bool(jwks):
                raise AccountError("an asymmetric client registers exactly one of a JWKS URL or an inline JWKS")
            if jwks_uri and not jwks_uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise AccountError("a JWKS URL must use https (http only for localhost)")
            if jwks:
                _check_jwks(jwks)
        if purpose == "ehr" and not organization:
            raise AccountError("an EHR client names its source Organization (e.g. Organization/eastside-otp)")
        for uri in redirect_uris:
            if not uri.startswith(("https://", "http://")) or "#" in uri:
                raise AccountError(f"redirect URI {uri!r} must be an absolute http(s) URL without a fragment")
        secret = secrets.token_urlsafe(32) if kind == "symmetric" else None
        client = Client(
            client_id=client_id,
            name=name,
            kind=kind,
            purpose=purpose,
            scope=str(ceiling),
            redirect_uris=redirect_uris,
            secret_hash=hash_secret(secret) if secret else None,
            jwks_uri=jwks_uri,
            jwks=jwks,
            launch_url=launch_url,
            organization=organization,
            part2_program=part2_program,
            created_at=utcnow(self.clock),
        )
        with writing(self.database) as connection:
            if connection.execute(
                select(oauth_client.c.client_id).where(oauth_client.c.client_id == client_id)
            ).first():
                raise AccountError(f"a client {client_id!r} is registered already")
            connection.execute(insert(oauth_client).values(**_client_row(client)))
        return client, secret

    def client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        with self.database.connect() as connection:
            row = (
                connection.execute(select(oauth_client).where(oauth_client.c.client_id == client_id)).mappings().first()
            )
        return Client(**dict(row)) if row else None

    def clients(self) -> list[Client]:
        with self.database.connect() as connection:
            rows = connection.execute(select(oauth_client).order_by(oauth_client.c.client_id)).mappings().all()
        return [Client(**dict(row)) for row in rows]

    def part2_programs(self) -> frozenset[str]:
        """The organizations of the clients registered as 42 CFR Part 2 programs (disabled ones
        too: what a program sent stays Part 2 data)."""
        with self.database.connect() as connection:
            rows = connection.execute(
                select(oauth_client.c.organization).where(
                    oauth_client.c.part2_program.is_(True), oauth_client.c.organization.is_not(None)
                )
            ).scalars()
            return frozenset(str(row) for row in rows)

    def set_client_disabled(self, client_id: str, disabled: bool = True) -> None:
        with writing(self.database) as connection:
            changed = connection.execute(
                update(oauth_client).where(oauth_client.c.client_id == client_id).values(disabled=disabled)
            ).rowcount
        if not changed:
            raise AccountError(f"no client {client_id!r}")

    # -- users -------------------------------------------------------------------------------------
    def add_user(
        self,
        *,
        username: str,
        password: str,
        display_name: str,
        role: str,
        practitioner: str | None = None,
        practitioner_role: str | None = None,
        organization: str | None = None,
        totp: bool = False,
    ) -> User:
        try:
            known_role(role)
        except KeyError as error:
            raise AccountError(str(error.args[0])) from None
        if len(password) < 12:
            raise AccountError("a password needs at least 12 characters")
        if practitioner and not practitioner.startswith("Practitioner/"):
            raise AccountError("fhirUser must be a Practitioner reference, e.g. Practitioner/123")
        user = User(
            username=username,
            display_name=display_name,
            role=role,
            practitioner=practitioner,
            practitioner_role=practitioner_role,
            organization=organization,
            totp_secret=pyotp.random_base32() if totp else None,
            password_hash=hash_secret(password),
        )
        with writing(self.database) as connection:
            if connection.execute(select(app_user.c.username).where(app_user.c.username == username)).first():
                raise AccountError(f"a user {username!r} exists already")
            connection.execute(
                insert(app_user).values(**{k: v for k, v in user.__dict__.items()}, created_at=utcnow(self.clock))
            )
        return user

    def user(self, username: str | None) -> User | None:
        if not username:
            return None
        with self.database.connect() as connection:
            row = connection.execute(select(app_user).where(app_user.c.username == username)).mappings().first()
        if not row:
            return None
        values = dict(row)
        values.pop("created_at")
        return User(**values)

    def users(self) -> list[User]:
        with self.database.connect() as connection:
            names = connection.execute(select(app_user.c.username).order_by(app_user.c.username)).scalars().all()
        return [user for name in names if (user := self.user(name))]

    def set_user_disabled(self, username: str, disabled: bool = True) -> None:
        with writing(self.database) as connection:
            changed = connection.execute(
                update(app_user).where(app_user.c.username == username).values(disabled=disabled)
            ).rowcount
        if not changed:
            raise AccountError(f"no user {username!r}")

    def login(self, username: str, password: str, totp_code: str | None, now: datetime | None = None) -> User:
        """The user, if the credentials are right; otherwise LoginRefused, with the same message
        for an unknown user and a wrong password (no account enumeration)."""
        now = now or utcnow(self.clock)
        user = self.user(username)
        if user is None:
            verify_secret(_DUMMY_HASH, password)  # the same work either way: no timing oracle
            raise LoginRefused(WRONG_CREDENTIALS)
        if user.locked_until and user.locked_until > now:
            raise LoginRefused(f"too many failed attempts; try again after {user.locked_until:%H:%M:%S} UTC")
        ok = verify_secret(user.password_hash, password) and not user.disabled
        if ok and user.totp_secret:
            ok = bool(totp_code) and pyotp.TOTP(user.totp_secret).verify(totp_code or "", valid_window=1)
        with writing(self.database) as connection:
            if ok:
                connection.execute(
                    update(app_user).where(app_user.c.username == username).values(failed_logins=0, locked_until=None)
                )
                return user
            failures = user.failed_logins + 1
            locked = None
            if failures >= FREE_ATTEMPTS:
                locked = now + min(MAX_LOCKOUT, timedelta(seconds=30 * 2 ** (failures - FREE_ATTEMPTS)))
            connection.execute(
                update(app_user)
                .where(app_user.c.username == username)
                .values(failed_logins=failures, locked_until=locked)
            )
        raise LoginRefused(WRONG_CREDENTIALS)

    # -- sign-in sessions (an online_access grant lives on its session) ---------------------------
    def start_session(self, username: str) -> str:
        session_id = secrets.token_urlsafe(32)
        now = utcnow(self.clock)
        with writing(self.database) as connection:
            connection.execute(insert(sign_in_session).values(session_id=session_id, username=username,
                                                              started_at=now, seen_at=now))  # fmt: skip
            # Sessions unused for a day are long dead (online_access lives on the idle limit): swept
            # at sign-in, which is rare, so the table does not grow without end.
            connection.execute(delete(sign_in_session).where(sign_in_session.c.seen_at < now - SESSION_KEPT))
        return session_id

    def touch_session(self, session_id: str) -> None:
        self._mark_session(session_id, seen_at=utcnow(self.clock))

    def end_session(self, session_id: str) -> None:
        self._mark_session(session_id, ended_at=utcnow(self.clock))

    def _mark_session(self, session_id: str, **values: datetime) -> None:
        with writing(self.database) as connection:
            connection.execute(
                update(sign_in_session)
                .where(sign_in_session.c.session_id == session_id, sign_in_session.c.ended_at.is_(None))
                .values(**values)
            )

    def session_alive(self, session_id: str, idle: timedelta) -> bool:
        """Not ended (sign-out), and active within `idle`."""
        with self.database.connect() as connection:
            row = connection.execute(
                select(sign_in_session.c.seen_at, sign_in_session.c.ended_at).where(
                    sign_in_session.c.session_id == session_id
                )
            ).first()
        return row is not None and row.ended_at is None and row.seen_at + idle >= utcnow(self.clock)


class LoginRefused(Exception):
    pass


_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-work")


def _client_row(client: Client) -> dict[str, Any]:
    return {k: v for k, v in client.__dict__.items()}
