"""The audit trail and the disclosure ledger: append-only, hash-chained, written before release.

Every request leaves one audit record (refused ones included): who asked, for what purpose, about
whom, and, for each patient decided, the release as the consent engine decided it: the items
released with their bases, the items withheld with their reasons and rules, the consents
evaluated and the one that decided, the policy version and `as_of`. Every Part 2 item released
on a disclosure basis gets a ledger row, rendered from the same `Release`. Both are written in the
unit of work that commits them, before the answer leaves.

Each row's hash is SHA-256 over the previous row's hash and the row's canonical JSON, so editing
or removing a row breaks the chain from there on; `verify` finds the first broken link. Appends
are serialised (SQLite's write lock; a transaction advisory lock on PostgreSQL) so that concurrent
workers extend one chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, or_, select, text, update

from consent_engine import Alert, Basis, Outcome, Release
from gateway.fhir.validation import CONTROL_CHARACTERS
from gateway.store.database import writing
from gateway.store.schema import audit_event, audit_event_patient, disclosure, emergency_review

GENESIS = "0" * 64
_INSERT_EVENT = insert(audit_event).returning(audit_event.c.seq)
_LAST_HASHES = select(
    select(audit_event.c.hash).order_by(audit_event.c.seq.desc()).limit(1).scalar_subquery(),
    select(disclosure.c.hash).order_by(disclosure.c.seq.desc()).limit(1).scalar_subquery(),
)
_CHAIN_LOCK = 0x6175646974  # "audit"
CHAINED = {
    "audit_event": ("recorded_at", "patient", "recipient", "outcome", "purpose", "emergency", "body", "interaction"),
    "disclosure": ("audit_seq", "disclosed_at", "patient", "item", "discloser", "recipient", "body"),
}


def canonical(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC, default=str)


def chain_hash(previous: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + canonical(row)).hexdigest()


def chained_content(table: str, row: Any) -> dict[str, Any]:
    """The columns a row's hash covers; a column added later counts only where it is set, so
    that earlier rows still verify."""
    return {
        name: row[name] for name in CHAINED[table] if name in row and (row[name] is not None or name != "interaction")
    }


@dataclass(frozen=True)
class Requested:
    """The request an audit record is about, as the adapter saw it."""

    line: str  # "GET /fhir/Patient/x/$responder-brief?purpose=TREAT"
    interaction: str | None
    user: str | None  # the signed-in user, if any
    client: str | None
    role: str | None
    purpose: str | None
    patient: str | None = None  # the patient the URL names, for refused requests


@dataclass(frozen=True)
class NothingFound:
    """A request about patients' data that found none: nothing was released (a DENY to the
    requester's eyes, answered as nothing on file)."""


@dataclass(frozen=True)
class MatchShown:
    """What a $responder-match showed: who, graded how (a certain match confirms identity)."""

    asked: tuple[dict[str, Any], ...]
    shown: tuple[tuple[str, str], ...]  # (patient id, grade)
    considered: int = 0  # candidates decided about (those not shown are not named here)


@dataclass
class AuditRecord:
    """One request: its decisions, or why it was refused."""

    recorded_at: datetime
    recipient: str
    outcome: str
    patient: str | None
    purpose: str | None
    emergency: bool
    body: dict[str, Any]
    interaction: str | None = None
    disclosures: list[dict[str, Any]] = field(default_factory=list)  # one per released Part 2 item
    patients: list[str] = field(default_factory=list)
    review: bool = False


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def basis_body(basis: Basis) -> dict[str, Any]:
    return {"kind": basis.kind.value, "consent": basis.consent, "consents": list(basis.consents), "tpo": basis.tpo,
            "intermediary": basis.intermediary, "separate": basis.separate, "order": basis.order,
            "citation": basis.citation}  # fmt: skip


def decision_body(release: Release) -> dict[str, Any]:
    """One patient's release, as the compliance officer reads it."""
    request, facts = release.request, release.audit
    record = release.emergency_record
    return {
        "patient": request.patient,
        "operation": request.operation.value,
        "outcome": release.outcome.value,
        "as_of": _instant(facts.as_of),
        "policy_version": facts.policy_version,
        "released": [
            {"item": r.item.key, "description": r.item.description, "data_class": r.item.data_class,
             "part2": r.item.part2, "basis": basis_body(r.basis), "accompanies": r.accompanies}
            for r in release.released
        ],
        "withheld": [{"item": w.item.key, "reason": w.reason, "citation": w.citation, "consents": list(w.consents)}
                     for w in release.withheld],
        "consents": {
            "evaluated": list(facts.consents_evaluated), "in_force": list(facts.consents_in_force),
            "relied_on": list(facts.consents_relied_on), "denying": list(facts.consents_denying),
            "not_relied_on": [{"consent": cid, "problems": list(problems)} for cid, problems in facts.consents_not_relied_on],
        },
        "orders": {
            "evaluated": list(facts.orders_evaluated), "relied_on": list(facts.orders_relied_on),
            "not_relied_on": [{"order": oid, "problems": list(problems)} for oid, problems in facts.orders_not_relied_on],
        },
        "reasons": list(facts.reasons),
        "presence": list(facts.presence),
        "notice_version": release.notice.version if release.notice else None,
        "scope": [{"consent": s.consent, "text": s.text} for s in release.scope_explanations],
        "sensitivity_labels": "removed" if release.strip_sensitivity else "kept",
        "intermediary_list": [{"participant": r.participant, "participant_name": r.participant_name, "item": r.item,
                               "description": r.description} for r in release.intermediary_list],
        "emergency_record": None if record is None else {
            "recipient": record.recipient_name, "recipient_user": record.recipient_user, "affiliation": record.affiliation,
            "affiliation_name": record.affiliation_name, "disclosed_by": record.disclosed_by,
            "disclosed_at": _instant(record.disclosed_at), "nature": record.nature, "programs": list(record.programs)},
    }  # fmt: skip


def ledger_rows(release: Release) -> list[dict[str, Any]]:
    """§2.25: one row per released Part 2 item, rendered from the release's own ledger."""
    recipient, request = release.request.recipient, release.request
    return [
        {"patient": request.patient, "item": row.item, "description": row.description, "data_class": row.data_class, "discloser": row.discloser,
         "recipient_user": recipient.user, "recipient_name": recipient.name,
         "recipient_organization": recipient.organization, "purpose": request.purpose, "basis": row.basis.kind.value,
         "consent": row.basis.consent, "consents": list(row.basis.consents), "tpo": row.basis.tpo,
         "order": row.basis.order, "separate": row.basis.separate,
         "intermediary": row.basis.intermediary, "citation": row.basis.citation, "notice_version": row.notice_version}
        for row in release.ledger
    ]  # fmt: skip


def combined_outcome(releases: list[Release]) -> str:
    outcomes = {r.outcome for r in releases}
    if outcomes == {Outcome.DENY}:
        return Outcome.DENY.value
    if outcomes == {Outcome.PERMIT}:
        return Outcome.PERMIT.value
    return Outcome.PERMIT_WITH_REDACTION.value


def printable(text: str) -> str:
    """What a client sent, fit for the audit: control characters percent-encoded (PostgreSQL
    cannot store U+0000, and a refused request's record must still be written)."""
    return CONTROL_CHARACTERS.sub(lambda found: f"%{ord(found.group()):02X}", text)


def printable_tree(node: Any) -> Any:
    """`printable` over every string of a record body (error messages quote what was sent)."""
    if isinstance(node, str):
        return printable(node) if CONTROL_CHARACTERS.search(node) else node
    if isinstance(node, dict):
        return {key: printable_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [printable_tree(value) for value in node]
    return node


def clipped(text: str, size: int) -> str:
    """A client's value cut to the audit column it goes in (what was sent stays in the line)."""
    return text if len(text) <= size else text[: size - 1] + "…"


PURPOSE_COLUMN = 40  # audit_event.purpose: a client's odd value is kept whole in the body's request line


def refusal_problems(error: Exception | None) -> list[str]:
    """A refusal's issues as code and element (`code-invalid at Bundle.entry[0].resource.gender`),
    without the diagnostics, which may quote what the request held: for readers who may see
    that a request was refused and why, not what it carried (operators)."""
    issues = getattr(error, "issues", None) or []
    return [f"{i.code} at {', '.join(i.expression) or 'the request'}" for i in issues[:5]]


def audit_record(
    requested: Requested, entries: Iterable[Any], status: int, error: Exception | None, now: datetime
) -> AuditRecord:
    """The request's one audit record, from the decisions and notes queued on it."""
    entries = list(entries)
    releases = [e for e in entries if isinstance(e, Release)]
    # Request-level alerts (police, legal purposes) come with each patient's release: one of each.
    alerts = list(dict.fromkeys([a for r in releases for a in r.alerts] + [e for e in entries if isinstance(e, Alert)]))
    match = next((e for e in entries if isinstance(e, MatchShown)), None)
    patients = list(dict.fromkeys(r.request.patient for r in releases if r.request.patient))
    if not patients and requested.patient:
        patients = [requested.patient]
    sent = error is None  # an answer that is an error carries nothing, whatever was decided before it
    if releases and (sent or all(r.outcome == Outcome.DENY for r in releases)):
        outcome = combined_outcome(releases)  # a DENY is answered as nothing on file (404): that is what was sent
    elif sent and (match is not None or any(isinstance(e, NothingFound) for e in entries)):
        outcome = Outcome.DENY.value  # nobody shown, nothing found: nothing released
    elif not sent:
        outcome = "ERROR" if status >= 500 else "REFUSED"
    else:
        outcome = "COMPLETED"
    first = releases[0].request.recipient if releases else None
    body: dict[str, Any] = {
        "request": requested.line,
        "interaction": requested.interaction,
        "status": status,
        "requester": {
            "user": requested.user, "client": requested.client, "role": first.role if first else requested.role,
            "name": first.name if first else None, "organization": first.organization if first else None,
            "system": first.system if first else requested.user is None,
        },
        "purpose": releases[0].request.purpose if releases else requested.purpose,
        "patients": patients,
        "decisions": [decision_body(r) for r in releases],
        "alerts": [{"code": a.code, "detail": a.detail} for a in alerts],
        "refusal": {"status": status, "reason": str(error), "problems": refusal_problems(error)}
        if outcome in ("ERROR", "REFUSED") else None,
        "sent": sent,
        "emergency": next((decision_body(r)["emergency_record"] for r in releases if r.emergency_record), None),
    }  # fmt: skip
    if match is not None:
        body["asked"] = list(match.asked)
        body["shown"] = [{"patient": patient, "grade": grade} for patient, grade in match.shown]
        body["considered"] = match.considered
    recipient = requested.user or (f"client:{requested.client}" if requested.client else "unauthenticated")
    if not sent:  # a refusal's reason may quote what the client sent
        body = printable_tree(body)
    body["purpose"] = printable(body["purpose"]) if body["purpose"] else None
    return AuditRecord(
        recorded_at=now,
        recipient=recipient,
        outcome=outcome,
        patient=patients[0] if len(patients) == 1 else None,
        purpose=clipped(body["purpose"], PURPOSE_COLUMN) if body["purpose"] else None,
        emergency=sent and any(r.emergency_record for r in releases),
        body=body,
        interaction=requested.interaction,
        disclosures=[row for r in releases for row in ledger_rows(r)] if sent else [],
        patients=patients,
        review=sent and any(r.review for r in releases),
    )


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

    @staticmethod
    def _lock(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})

    @staticmethod
    def _last_hashes(connection: Connection) -> tuple[str, str]:
        """The newest hash of each chain, in one round trip (read after the chain lock: a
        statement's snapshot is taken when it starts)."""
        row = connection.execute(_LAST_HASHES).one()
        return str(row[0] or GENESIS), str(row[1] or GENESIS)

    def append_apart(self, records: list[AuditRecord]) -> list[int]:
        """Commit the records in a write transaction of their own."""
        with writing(self.database) as connection:
            return self.append(connection, records)

    def append(self, connection: Connection, records: list[AuditRecord]) -> list[int]:
        """Write the records (and their ledger rows, review items and patient index) on the
        caller's connection, inside its transaction; returns their sequence numbers. Raises if
        the store cannot take them: the caller must then not release anything."""
        if not records:
            return []
        sequences = []
        ledger: list[dict[str, Any]] = []
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
                "interaction": record.interaction,
            }
            digest = chain_hash(previous, chained_content("audit_event", row))
            seq = int(connection.execute(_INSERT_EVENT, {**row, "prev_hash": previous, "hash": digest}).scalar_one())
            sequences.append(seq)
            previous = digest
            if len(record.patients) > 1:
                connection.execute(
                    insert(audit_event_patient), [{"audit_seq": seq, "patient": p} for p in record.patients]
                )
            if record.review:
                # §2.51: every emergency access is reviewed by compliance.
                connection.execute(insert(emergency_review).values(audit_seq=seq, patient=record.patient or "",
                                                                   recipient=record.recipient,
                                                                   accessed_at=record.recorded_at))  # fmt: skip
            for item in record.disclosures:
                ledger_row = {
                    "audit_seq": seq,
                    "disclosed_at": record.recorded_at,
                    "patient": item["patient"],
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

    # -- what the engine and the compliance reports read ------------------------------------------
    @staticmethod
    def certain_match_at(connection: Connection, user: str, patient_id: str, since: datetime) -> datetime | None:
        """When this user's own $responder-match last graded this patient `certain`."""
        rows = connection.execute(
            select(audit_event.c.recorded_at, audit_event.c.body)
            .where(audit_event.c.recipient == user, audit_event.c.interaction == "responder-match",
                   audit_event.c.recorded_at >= since)
            .order_by(audit_event.c.seq.desc())
            .limit(20)
        ).all()  # fmt: skip
        for recorded_at, body in rows:
            if any(
                s.get("patient") == patient_id and s.get("grade") == "certain" for s in (body or {}).get("shown", [])
            ):
                return recorded_at  # type: ignore[no-any-return]
        return None

    @staticmethod
    def ledger(connection: Connection, patient: str, since: datetime | None) -> list[Any]:
        """§2.25: a patient's disclosure rows, oldest first."""
        query = select(disclosure).where(disclosure.c.patient == patient).order_by(disclosure.c.seq)
        if since:
            query = query.where(disclosure.c.disclosed_at >= since)
        return list(connection.execute(query).mappings().all())

    @staticmethod
    def events(connection: Connection, patient: str | None, since: datetime | None, limit: int) -> list[Any]:
        """Audit records, newest first: a patient's (named alone, or among several), or all."""
        query = select(audit_event).order_by(audit_event.c.seq.desc())
        if patient:
            many = select(audit_event_patient.c.audit_seq).where(audit_event_patient.c.patient == patient)
            query = query.where(or_(audit_event.c.patient == patient, audit_event.c.seq.in_(many)))
        if since:
            query = query.where(audit_event.c.recorded_at >= since)
        return list(connection.execute(query.limit(limit)).mappings().all())

    @staticmethod
    def reviews(connection: Connection, status: str, patient: str | None = None) -> list[Any]:
        """§2.51 emergency accesses with their review: pending, reviewed or all; all or one person's."""
        query = select(emergency_review, audit_event.c.body).join(
            audit_event, audit_event.c.seq == emergency_review.c.audit_seq
        )
        if patient:
            query = query.where(emergency_review.c.patient == patient)
        if status == "pending":
            query = query.where(emergency_review.c.reviewed_at.is_(None))
        elif status == "reviewed":
            query = query.where(emergency_review.c.reviewed_at.is_not(None))
        return list(connection.execute(query.order_by(emergency_review.c.audit_seq)).mappings().all())

    @staticmethod
    def record_review(connection: Connection, seq: int, reviewer: str, note: str, now: datetime) -> bool:
        """Mark a pending emergency access reviewed; False when there is no such pending one."""
        changed = connection.execute(
            update(emergency_review)
            .where(emergency_review.c.audit_seq == seq, emergency_review.c.reviewed_at.is_(None))
            .values(reviewed_at=now, reviewer=reviewer, note=note)
        ).rowcount
        return bool(changed)

    def verify(self) -> list[ChainReport]:
        reports = []
        with self.database.connect() as connection:
            for table in (audit_event, disclosure):
                previous, count, broken = GENESIS, 0, None
                for row in connection.execute(select(table).order_by(table.c.seq)).mappings():
                    count += 1
                    content = chained_content(table.name, row)
                    if broken is None and (
                        row["prev_hash"] != previous or chain_hash(previous, content) != row["hash"]
                    ):
                        broken = int(row["seq"])
                    previous = row["hash"]
                reports.append(ChainReport(table.name, count, broken))
        return reports


ACCOUNTING_PERIOD = timedelta(days=3 * 365)  # §2.25(a): three years before the request
