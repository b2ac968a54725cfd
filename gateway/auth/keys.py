"""The gateway's own signing keys (RS256, for id_tokens), kept in the store so that every worker
signs with the same key and publishes the same JWKS.

Rotation adds a new key and retires the old one; a retired key stays in the JWKS until every
token signed with it has expired (ID_TOKEN_LIFETIME), then `gateway keys rotate` prunes it.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import Engine, delete, insert, select, update

from gateway.auth.accounts import utcnow
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.database import writing
from gateway.store.schema import signing_key

ID_TOKEN_LIFETIME = timedelta(hours=1)
_CACHE_SECONDS = 30.0


class Keys:
    def __init__(self, database: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.database = database
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, RSAKey, list[dict[str, Any]]] | None = None

    def _load(self) -> tuple[RSAKey, list[dict[str, Any]]]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < _CACHE_SECONDS:
                return self._cached[1], self._cached[2]
            query = select(signing_key).order_by(signing_key.c.created_at)
            with self.database.connect() as connection:
                rows: list[Any] = list(connection.execute(query).mappings().all())
            current = [row for row in rows if row["retired_at"] is None]
            if not current:  # the first start: make a key (a write only then)
                with writing(self.database) as connection:
                    rows = list(connection.execute(query).mappings().all())
                    current = [row for row in rows if row["retired_at"] is None]
                    if not current:
                        row = _new_key_row(utcnow(self.clock))
                        connection.execute(insert(signing_key).values(**row))
                        rows, current = [*rows, row], [row]
            key = RSAKey.import_key(current[-1]["private_jwk"])
            published = [RSAKey.import_key(row["private_jwk"]).as_dict(private=False) for row in rows]
            self._cached = (time.monotonic(), key, published)
            return key, published

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def current(self) -> RSAKey:
        return self._load()[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": self._load()[1]}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.current()
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)

    def rotate(self, now: datetime | None = None) -> dict[str, Any]:
        """A new current key; the old one retired; keys retired longer ago than any token lives
        are removed. Returns what changed."""
        now = now or utcnow(self.clock)
        row = _new_key_row(now)
        with writing(self.database) as connection:
            retired = connection.execute(
                update(signing_key).where(signing_key.c.retired_at.is_(None)).values(retired_at=now)
            ).rowcount
            pruned = connection.execute(
                delete(signing_key).where(signing_key.c.retired_at < now - ID_TOKEN_LIFETIME)
            ).rowcount
            connection.execute(insert(signing_key).values(**row))
        self.forget()
        return {"kid": row["kid"], "retired": retired, "removed": pruned}


def _new_key_row(now: datetime) -> dict[str, Any]:
    kid = uuid.uuid4().hex
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return {
        "kid": kid,
        "alg": "RS256",
        "private_jwk": key.as_dict(private=True),
        "created_at": now,
        "retired_at": None,
    }
