"""The audit trail and the disclosure ledger: append-only, hash-chained, written before release.

Every decision is recorded (denials included); every released Part 2 item gets a ledger row.
Each row's hash is SHA-256 over the previous row's hash and the row's canonical JSON, so editing
or removing a row breaks the chain from there on; `verify` finds the first broken link.
Appends are serialised (SQLite's write lock; a transaction advisory lock on PostgreSQL) so that
concurrent workers extend one chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, text

from gateway.store.database import writing
from gateway.store.schema import audit_event, disclosure, emergency_review

GENESIS = "0" * 64
_INSERT_EVENT = insert(audit_event).returning(audit_event.c.seq)
_LAST_HASHES = select(
    select(audit_event.c.hash).order_by(audit_event.c.seq.desc()).limit(1).scalar_subquery(),
    select(disclosure.c.hash).order_by(disclosure.c.seq.desc()).limit(1).scalar_subquery(),
)
_CHAIN_LOCK = 0x6175646974  # "audit"


def _canonical(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC, default=str)


def chain_hash(previous: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + _canonical(row)).hexdigest()


@dataclass
class AuditRecord:
    """One decision: who asked, about whom, what went and what did not, and why."""

    recorded_at: datetime
    recipient: str
    outcome: str
    patient: str | None
    purpose: str | None
    emergency: bool
    body: dict[str, Any]
    disclosures: list[dict[str, Any]] = field(default_factory=list)  # one per released Part 2 item


@dataclass(frozen=True)
class ChainReport:
    table: str
    rows: int
    first_broken: int | None  # seq of the first row whose hash does not verify

    @property
    def intact(self) -> bool:
        return self.first_broken is None


class AuditLog:
    def __init__(self, database: Engine) -> None:
        self.database = database

    def _lock(self, connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})

    @staticmethod
    def _last_hashes(connection: Connection) -> tuple[str, str]:
        """The newest hash of each chain, in one round trip (read after the chain lock: a
        statement's snapshot is taken when it starts)."""
        row = connection.execute(_LAST_HASHES).one()
        return str(row[0] or GENESIS), str(row[1] or GENESIS)

    def append(self, records: list[AuditRecord]) -> list[int]:
        """Commit the records (and their ledger rows); returns their sequence numbers. Raises if
        the store cannot take them: the caller must then not release anything."""
        if not records:
            return []
        sequences = []
        ledger: list[dict[str, Any]] = []
        with writing(self.database) as connection:
            self._lock(connection)
            previous, previous_disclosure = self._last_hashes(connection)
            for record in records:
                row = {
                    "recorded_at": record.recorded_at,
                    "patient": record.patient,
                    "recipient": record.recipient,
                    "outcome": record.outcome,
                    "purpose": record.purpose,
                    "emergency": record.emergency,
                    "body": record.body,
                }
                digest = chain_hash(previous, row)
                seq = int(
                    connection.execute(_INSERT_EVENT, {**row, "prev_hash": previous, "hash": digest}).scalar_one()
                )
                sequences.append(seq)
                previous = digest
                if record.body.get("emergency"):
                    # §2.51: every emergency access is reviewed by compliance.
                    connection.execute(
                        insert(emergency_review).values(
                            audit_seq=seq,
                            patient=record.patient or "",
                            recipient=record.recipient,
                            accessed_at=record.recorded_at,
                        )
                    )
                for item in record.disclosures:
                    ledger_row = {
                        "audit_seq": seq,
                        "disclosed_at": record.recorded_at,
                        "patient": record.patient or "",
                        "item": item["item"],
                        "discloser": item.get("discloser"),
                        "recipient": record.recipient,
                        "body": item,
                    }
                    ledger_digest = chain_hash(previous_disclosure, ledger_row)
                    ledger.append({**ledger_row, "prev_hash": previous_disclosure, "hash": ledger_digest})
                    previous_disclosure = ledger_digest
            if ledger:
                # One executemany: a brief discloses a few dozen items, and an INSERT each was
                # most of the time the audit held the write lock.
                connection.execute(insert(disclosure), ledger)
        return sequences

    def verify(self) -> list[ChainReport]:
        reports = []
        columns = {
            "audit_event": ("recorded_at", "patient", "recipient", "outcome", "purpose", "emergency", "body"),
            "disclosure": ("audit_seq", "disclosed_at", "patient", "item", "discloser", "recipient", "body"),
        }
        with self.database.connect() as connection:
            for table in (audit_event, disclosure):
                previous, count, broken = GENESIS, 0, None
                for row in connection.execute(select(table).order_by(table.c.seq)).mappings():
                    count += 1
                    content = {name: row[name] for name in columns[table.name]}
                    if broken is None and (
                        row["prev_hash"] != previous or chain_hash(previous, content) != row["hash"]
                    ):
                        broken = int(row["seq"])
                    previous = row["hash"]
                reports.append(ChainReport(table.name, count, broken))
        return reports
