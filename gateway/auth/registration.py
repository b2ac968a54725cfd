"""Dynamic Client Registration (RFC 7591) for EHRs that push: an operator hands out an initial
access token for one organization (`gateway client invite`); the integrator registers their
Backend Services client with it (`POST /auth/register`); the client stays disabled until an
operator approves it (`gateway client approve`), or works at once on a sandbox gateway."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gateway.auth.accounts import AccountError, Accounts
from gateway.auth.scopes import ScopeError, parse_resource_scope
from gateway.store.database import writing
from gateway.store.schema import registration_invite

NAME = re.compile(r"^[\w .,'()&/-]{3,100}$")


class RegistrationError(Exception):
    """RFC 7591 §3.2.2: `error` is the code, the message its description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.status = error, status


@dataclass(frozen=True)
class Invite:
    organization: str
    part2_program: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(database: Engine, organization: str, part2_program: bool, now: datetime, hours: int = 72) -> str:
    """A new initial access token for one organization, usable once, for `hours`."""
    if not organization.startswith("Organization/"):
        raise RegistrationError("invalid_request", "the organization is an Organization reference")
    token = secrets.token_urlsafe(32)
    with writing(database) as connection:
        connection.execute(insert(registration_invite).values(
            token_hash=_hash(token), organization=organization, part2_program=part2_program, created_at=now,
            expires_at=now + timedelta(hours=hours)))  # fmt: skip
    return token


def register(accounts: Accounts, bearer: str | None, metadata: Any, now: datetime, sandbox: bool) -> dict[str, Any]:
    """Register a Backend Services client from RFC 7591 metadata; the registration response."""
    token = (bearer or "").removeprefix("Bearer ").strip() if (bearer or "").startswith("Bearer ") else ""
    if not token:
        raise RegistrationError("invalid_token", "send the initial access token an operator gave you", 401)
    if not isinstance(metadata, dict):
        raise RegistrationError("invalid_client_metadata", "send the client metadata as a JSON object")
    name = metadata.get("client_name")
    if not isinstance(name, str) or not NAME.match(name):
        raise RegistrationError("invalid_client_metadata", "client_name: 3 to 100 letters, digits or punctuation")
    if metadata.get("token_endpoint_auth_method") != "private_key_jwt":
        raise RegistrationError("invalid_client_metadata", "token_endpoint_auth_method must be private_key_jwt")
    if metadata.get("grant_types", ["client_credentials"]) != ["client_credentials"]:
        raise RegistrationError("invalid_client_metadata", 'grant_types must be ["client_credentials"]')
    jwks, jwks_uri = metadata.get("jwks"), metadata.get("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise RegistrationError("invalid_client_metadata", "give exactly one of jwks and jwks_uri")
    scope = metadata.get("scope")
    if not isinstance(scope, str) or not scope.split() or any(not s.startswith("system/") for s in scope.split()):
        raise RegistrationError("invalid_client_metadata", "scope: system/ scopes only, e.g. system/Patient.cru")
    try:
        for text in scope.split():
            parse_resource_scope(text)
    except ScopeError as error:
        raise RegistrationError("invalid_client_metadata", f"scope: {error}") from None
    database = accounts.database
    with writing(database) as connection:
        row = connection.execute(select(registration_invite).where(
            registration_invite.c.token_hash == _hash(token))).mappings().first()  # fmt: skip
        if row is None or row["used_by"] is not None or row["expires_at"] < now:
            raise RegistrationError("invalid_token", "the initial access token is unknown, used or expired", 401)
        client_id = f"ehr-{uuid.uuid4().hex[:12]}"
        connection.execute(update(registration_invite).where(registration_invite.c.token_hash == _hash(token))
                           .values(used_by=client_id))  # fmt: skip
    try:
        accounts.add_client(client_id=client_id, name=name, kind="asymmetric", purpose="ehr", scope=str(scope),
                            jwks=jwks if isinstance(jwks, dict) else None,
                            jwks_uri=jwks_uri if isinstance(jwks_uri, str) else None,
                            organization=row["organization"], part2_program=bool(row["part2_program"]))  # fmt: skip
    except AccountError as error:
        with writing(database) as connection:  # the invitation stays usable for a corrected request
            connection.execute(update(registration_invite).where(registration_invite.c.token_hash == _hash(token))
                               .values(used_by=None))  # fmt: skip
        raise RegistrationError("invalid_client_metadata", str(error)) from None
    if not sandbox:
        accounts.set_client_disabled(client_id, True)  # pending until an operator approves it
    answer: dict[str, Any] = {
        "client_id": client_id, "client_id_issued_at": int((now - datetime(1970, 1, 1)).total_seconds()),
        "client_name": name, "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
        "scope": scope, "organization": row["organization"], "part2_program": bool(row["part2_program"]),
        "status": "active" if sandbox else "pending-approval",
    }  # fmt: skip
    answer.update({"jwks": jwks} if jwks is not None else {"jwks_uri": jwks_uri})
    return answer
