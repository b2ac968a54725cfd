"""Server-side sessions: the browser holds only an opaque, signed session id; the tokens, the
PKCE verifier and the state live here. A session idle past its limit is gone, and its grant
revoked at the gateway."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Column, Float, MetaData, String, Table, Text, create_engine, delete, insert, select, update
from sqlalchemy.engine import Engine

metadata = MetaData()
app_session = Table(
    "app_session",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("seen_at", Float, nullable=False),
)


class SessionStore:
    def __init__(
        self, database_url: str, idle_seconds: float, on_expired: Callable[[dict[str, Any]], None] = lambda _: None
    ) -> None:
        if database_url.startswith("sqlite:///"):
            Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(database_url, hide_parameters=True)
        metadata.create_all(self.engine)
        self.idle_seconds = idle_seconds
        self.on_expired = on_expired

    def create(self, data: dict[str, Any]) -> str:
        """A new session's id. Idle sessions are swept as new ones start (no timer, no growth),
        and each is handed to `on_expired` (the app revokes its grant)."""
        session_id = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            connection.execute(insert(app_session).values(session_id=session_id, data=orjson.dumps(data).decode(),
                                                          seen_at=time.time()))  # fmt: skip
            idle = app_session.c.seen_at < time.time() - self.idle_seconds
            swept = [orjson.loads(row.data) for row in connection.execute(select(app_session.c.data).where(idle))]
            connection.execute(delete(app_session).where(idle))
        for expired in swept:
            self.on_expired(expired)
        return session_id

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(app_session.c.data, app_session.c.seen_at)
                                     .where(app_session.c.session_id == session_id)).first()  # fmt: skip
        if row is None:
            return None
        data: dict[str, Any] = orjson.loads(row.data)
        if row.seen_at < time.time() - self.idle_seconds:
            self.end(session_id)
            self.on_expired(data)
            return None
        return data

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(app_session).where(app_session.c.session_id == session_id)
                               .values(data=orjson.dumps(data).decode(), seen_at=time.time()))  # fmt: skip

    def end(self, session_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(app_session).where(app_session.c.session_id == session_id))
