"""The sources the gateway pulls from: where, as which client, with which key, what, and how
each run went. Kept in the store (`pull_source`, `pull_cursor`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import Engine, insert, select, update

from gateway.store.database import writing
from gateway.store.schema import pull_cursor, pull_source

BREAKER_AFTER = 3  # failed runs in a row before the circuit opens
BREAKER_FIRST = timedelta(minutes=5)
BREAKER_LONGEST = timedelta(hours=6)
SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
DEFAULT_TYPES = ("Patient", "EpisodeOfCare", "CareTeam", "Condition", "MedicationStatement", "CarePlan", "Flag")


class SourceError(Exception):
    """A source cannot be added or changed as asked; the message says why."""


@dataclass
class Source:
    source_id: str
    base_url: str
    client_id: str
    private_jwk: dict[str, Any]
    scope: str
    resource_types: tuple[str, ...]
    every_minutes: int
    organization: str
    part2_program: bool
    disabled: bool = False
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    refused: list[str] = field(default_factory=list)
    failures: int = 0  # runs failed in a row
    open_until: datetime | None = None  # the circuit breaker: no scheduled run before this

    @property
    def key(self) -> ECKey | RSAKey:
        return (
            ECKey.import_key(self.private_jwk)
            if self.private_jwk.get("kty") == "EC"
            else RSAKey.import_key(self.private_jwk)
        )

    @property
    def algorithm(self) -> str:
        return "ES384" if self.private_jwk.get("kty") == "EC" else "RS384"

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "alg": self.algorithm, "use": "sig"}]}

    def lag(self, now: datetime) -> timedelta | None:
        """How stale the gateway's copy may be: the time since the last successful run (None:
        never pulled)."""
        return now - self.last_success_at if self.last_success_at else None

    def public_view(self, now: datetime | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {"source": self.source_id, "base_url": self.base_url, "client_id": self.client_id,
                "scope": self.scope, "resource_types": list(self.resource_types), "every_minutes": self.every_minutes,
                "organization": self.organization, "part2_program": self.part2_program, "disabled": self.disabled,
                "last_success_at": _iso(self.last_success_at), "last_error_at": _iso(self.last_error_at),
                "last_error": self.last_error, "refused": self.refused, "failures": self.failures,
                "circuit_open_until": _iso(self.open_until)}  # fmt: skip
        if now is not None:
            lag = self.lag(now)
            view["lag_seconds"] = int(lag.total_seconds()) if lag is not None else None
        return view


class Sources:
    def __init__(self, database: Engine) -> None:
        self.database = database

    def add(self, source_id: str, *, base_url: str, client_id: str, organization: str, part2_program: bool,
            resource_types: tuple[str, ...] = DEFAULT_TYPES, every_minutes: int = 15, algorithm: str = "ES384",
            now: datetime) -> Source:  # fmt: skip
        if not SOURCE_ID.match(source_id):
            raise SourceError("a source id is lower-case letters, digits and dashes (e.g. eastside-otp)")
        if not base_url.startswith(("https://", "http://")):
            raise SourceError("the FHIR base URL must be an absolute http(s) URL")
        if not organization.startswith("Organization/"):
            raise SourceError("the source organization is an Organization reference, e.g. Organization/eastside-otp")
        kid = f"{source_id}-1"
        key = (ECKey.generate_key("P-384", parameters={"kid": kid}) if algorithm == "ES384"
               else RSAKey.generate_key(2048, parameters={"kid": kid}))  # fmt: skip
        scope = " ".join(f"system/{t}.rs" for t in resource_types)
        with writing(self.database) as connection:
            if connection.execute(select(pull_source.c.source_id).where(pull_source.c.source_id == source_id)).first():
                raise SourceError(f"a source {source_id!r} exists already")
            connection.execute(insert(pull_source).values(
                source_id=source_id, base_url=base_url.rstrip("/"), client_id=client_id,
                private_jwk=json.dumps(key.as_dict(private=True)), scope=scope,
                resource_types=json.dumps(list(resource_types)), every_minutes=every_minutes,
                organization=organization, part2_program=part2_program, disabled=False, created_at=now))  # fmt: skip
        found = self.get(source_id)
        assert found is not None
        return found

    def get(self, source_id: str) -> Source | None:
        with self.database.connect() as connection:
            row = connection.execute(select(pull_source).where(pull_source.c.source_id == source_id)).mappings().first()
        return _source(row) if row else None

    def all(self) -> list[Source]:
        with self.database.connect() as connection:
            rows = connection.execute(select(pull_source).order_by(pull_source.c.source_id)).mappings().all()
        return [_source(row) for row in rows]

    def set_disabled(self, source_id: str, disabled: bool = True) -> None:
        with writing(self.database) as connection:
            changed = connection.execute(update(pull_source).where(pull_source.c.source_id == source_id)
                                         .values(disabled=disabled)).rowcount  # fmt: skip
        if not changed:
            raise SourceError(f"no source {source_id!r}")

    def record_run(self, source_id: str, now: datetime, error: str | None, refused: list[str]) -> None:
        """How a run went. After BREAKER_AFTER failures in a row the circuit opens: scheduled runs
        wait, twice as long after each further failure (at most BREAKER_LONGEST), so that a source
        that is down is not hammered; a success closes it."""
        values: dict[str, Any] = {"refused": json.dumps(refused[:200])}
        with writing(self.database) as connection:
            failures = int(connection.execute(select(pull_source.c.failures)
                                              .where(pull_source.c.source_id == source_id)).scalar() or 0)  # fmt: skip
            if error:
                failures += 1
                values.update(last_error_at=now, last_error=error[:2000], failures=failures)
                if failures >= BREAKER_AFTER:
                    values["open_until"] = now + min(BREAKER_LONGEST, BREAKER_FIRST * 2 ** (failures - BREAKER_AFTER))
            else:
                values.update(last_success_at=now, failures=0, open_until=None)
            connection.execute(update(pull_source).where(pull_source.c.source_id == source_id).values(**values))

    def cursor(self, source_id: str, resource_type: str) -> str | None:
        with self.database.connect() as connection:
            return connection.execute(select(pull_cursor.c.last_updated).where(
                pull_cursor.c.source_id == source_id, pull_cursor.c.resource_type == resource_type)).scalar()  # fmt: skip


def _source(row: Any) -> Source:
    return Source(source_id=row["source_id"], base_url=row["base_url"], client_id=row["client_id"],
                  private_jwk=json.loads(row["private_jwk"]), scope=row["scope"],
                  resource_types=tuple(json.loads(row["resource_types"])), every_minutes=row["every_minutes"],
                  organization=row["organization"], part2_program=bool(row["part2_program"]),
                  disabled=bool(row["disabled"]), last_success_at=row["last_success_at"],
                  last_error_at=row["last_error_at"], last_error=row["last_error"],
                  refused=json.loads(row["refused"]) if row["refused"] else [], failures=int(row["failures"] or 0),
                  open_until=row["open_until"])  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None
