"""Access and refresh tokens: opaque random strings, stored as SHA-256 hashes.

Opaque tokens (not JWTs) because a responder's grant must die the moment it is revoked; the
resource server looks each token up, and keeps what it found in a small in-process cache so that
authorization costs well under half a millisecond. A revocation is seen at once by the worker
that made it and within `token_cache_seconds` by the others (docs/auth.md).

Every token belongs to a *family*: the grant it came from (one code exchange, or one backend
token). Refresh tokens rotate; presenting a rotated one again revokes the whole family
(best-practices.html: "expire an app's authorization if a refresh token is used more than once").
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gateway.auth.accounts import utcnow
from gateway.auth.scopes import ScopeSet
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.database import writing
from gateway.store.schema import oauth_token

_CACHE_ENTRIES = 10_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AccessGrant:
    """What a valid access token carries: who, for which client, with which scopes and context."""

    token_id: str
    family: str
    client_id: str
    username: str | None
    scope: str
    context: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    scopes: ScopeSet = field(compare=False)

    @property
    def patient(self) -> str | None:
        value = self.context.get("patient")
        return str(value) if value else None

    def introspection(self, issuer: str) -> dict[str, Any]:
        """RFC 7662 / SMART token-introspection.html: active, scope, client_id, exp and the
        launch context that was in the token response."""
        body: dict[str, Any] = {
            "active": True,
            "scope": self.scope,
            "client_id": self.client_id,
            "exp": int(_epoch(self.expires_at)),
            "iat": int(_epoch(self.issued_at)),
            "token_type": "Bearer",
        }
        for name in ("patient", "encounter", "fhirUser"):
            if self.context.get(name):
                body[name] = self.context[name]
        if self.username:
            body["username"] = self.username
            if self.context.get("id_token"):
                body["iss"] = issuer
                body["sub"] = self.username
        return body


def _epoch(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)).total_seconds()


class Tokens:
    def __init__(self, database: Engine, cache_seconds: float = 10.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, AccessGrant | None]] = OrderedDict()
        self._lock = threading.Lock()

    def save(
        self,
        *,
        access_token: str,
        refresh_token: str | None,
        client_id: str,
        username: str | None,
        scope: str,
        context: dict[str, Any],
        lifetime: int,
        refresh_lifetime: timedelta | None = None,
        family: str | None = None,
        now: datetime | None = None,
    ) -> str:
        now = now or utcnow(self.clock)
        family = family or uuid.uuid4().hex
        with writing(self.database) as connection:
            connection.execute(
                insert(oauth_token).values(
                    token_id=uuid.uuid4().hex,
                    access_hash=digest(access_token),
                    refresh_hash=digest(refresh_token) if refresh_token else None,
                    family=family,
                    client_id=client_id,
                    username=username,
                    scope=scope,
                    context=context,
                    issued_at=now,
                    expires_at=now + timedelta(seconds=lifetime),
                    refresh_expires_at=now + refresh_lifetime if refresh_token and refresh_lifetime else None,
                )
            )
        return family

    def grant(self, access_token: str, now: datetime | None = None) -> AccessGrant | None:
        """The grant behind a bearer token, or None (unknown, expired or revoked)."""
        key = digest(access_token)
        clock = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and clock - hit[0] < self.cache_seconds:
                found = hit[1]
                if found is None or found.expires_at > (now or utcnow(self.clock)):
                    return found
        found = self._load(key, now or utcnow(self.clock))
        with self._lock:
            self._cache[key] = (clock, found)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return found

    def forget(self, access_token: str) -> None:
        """Drop a token from this worker's cache, so that the next look-up reads the store."""
        with self._lock:
            self._cache.pop(digest(access_token), None)

    def _load(self, key: str, now: datetime) -> AccessGrant | None:
        with self.database.connect() as connection:
            row = connection.execute(select(oauth_token).where(oauth_token.c.access_hash == key)).mappings().first()
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
            return None
        return _grant(row)

    def refresh_row(self, refresh_token: str) -> dict[str, Any] | None:
        with self.database.connect() as connection:
            row = (
                connection.execute(select(oauth_token).where(oauth_token.c.refresh_hash == digest(refresh_token)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def mark_rotated(self, token_id: str, now: datetime | None = None) -> None:
        with writing(self.database) as connection:
            connection.execute(
                update(oauth_token)
                .where(oauth_token.c.token_id == token_id)
                .values(rotated_at=now or utcnow(self.clock))
            )

    def revoke_family(self, family: str, now: datetime | None = None) -> int:
        with writing(self.database) as connection:
            hashes = (
                connection.execute(select(oauth_token.c.access_hash).where(oauth_token.c.family == family))
                .scalars()
                .all()
            )
            count = connection.execute(
                update(oauth_token)
                .where(oauth_token.c.family == family, oauth_token.c.revoked_at.is_(None))
                .values(revoked_at=now or utcnow(self.clock))
            ).rowcount
        with self._lock:
            for key in hashes:
                self._cache.pop(key, None)
        return count

    def revoke_all(self, *, client_id: str | None = None, username: str | None = None) -> int:
        """Every grant of a client or of a user (when either is disabled)."""
        column, value = (oauth_token.c.client_id, client_id) if client_id else (oauth_token.c.username, username)
        with self.database.connect() as connection:
            families = (
                connection.execute(
                    select(oauth_token.c.family).where(column == value, oauth_token.c.revoked_at.is_(None)).distinct()
                )
                .scalars()
                .all()
            )
        return sum(self.revoke_family(family) for family in families)

    def family_of(self, token: str) -> dict[str, Any] | None:
        """The row of an access or refresh token (for revocation and introspection)."""
        key = digest(token)
        with self.database.connect() as connection:
            row = (
                connection.execute(
                    select(oauth_token).where((oauth_token.c.access_hash == key) | (oauth_token.c.refresh_hash == key))
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def grants_of_user(self, username: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The user's live app grants (one per family), newest first, for the management page."""
        now = now or utcnow(self.clock)
        with self.database.connect() as connection:
            rows = (
                connection.execute(
                    select(oauth_token)
                    .where(oauth_token.c.username == username, oauth_token.c.revoked_at.is_(None))
                    .order_by(oauth_token.c.issued_at.desc())
                )
                .mappings()
                .all()
            )
        families: dict[str, dict[str, Any]] = {}
        for row in rows:
            alive = row["expires_at"] > now or (row["refresh_expires_at"] and row["refresh_expires_at"] > now)
            if alive and row["family"] not in families:
                families[row["family"]] = dict(row)
        return list(families.values())


def _grant(row: Any) -> AccessGrant:
    return AccessGrant(
        token_id=row["token_id"],
        family=row["family"],
        client_id=row["client_id"],
        username=row["username"],
        scope=row["scope"],
        context=dict(row["context"] or {}),
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        scopes=ScopeSet.parse(row["scope"]),
    )
