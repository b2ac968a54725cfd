"""Reports for compliance officers (documented JSON, or CSV with ?format=csv), over a SMART user
token of a user whose role is compliance-officer:

- GET  /compliance/disclosures?patient=Patient/x[&since=YYYY-MM-DD]  §2.25 accounting (3 years)
- GET  /compliance/intermediary-disclosures?patient=Patient/x          §2.24 list
- GET  /compliance/emergency-reviews[?status=pending|reviewed|all]     §2.51 accesses to review
- POST /compliance/emergency-reviews/<seq>  {"note": "..."}            mark one reviewed
- GET  /compliance/alerts[?since=YYYY-MM-DD]                           police requests, conflicts, ...
- GET  /compliance/consents-not-relied-on                              Consents missing §2.31 elements
- GET  /compliance/audit-events[?patient=&since=&_count=]              the audit trail as FHIR AuditEvents

A report's rows carry patient data, so they go through the same door as any release: each row is
an item decided by the consent engine (compliance administration), the request leaves one audit
record naming every patient it shows, and that record commits before the report leaves. Refused
requests (401, 403, 400) are audited too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import insert, select, update

from consent_engine import Item, Release
from consent_engine.consents import standing
from consent_engine.fhir import consent_from_fhir, is_court_order, order_from_fhir, parse_datetime, patient_facts
from consent_engine.signers import problems_at
from gateway.auth.accounts import User
from gateway.consent.audit import ACCOUNTING_PERIOD, AuditLog, Requested, audit_record
from gateway.fhir.context import Requester
from gateway.fhir.dates import utc_now
from gateway.fhir.repository import Repository
from gateway.fhir.search import parse_search
from gateway.http.token_user import Refused, refused, token_user
from gateway.store.schema import audit_event, request_decision, subpoena

compliance_api = Blueprint("compliance_api", __name__, url_prefix="/compliance")
Row = dict[str, Any]


@compliance_api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    """A refused report request leaves its audit record too (unless recording is what failed)."""
    if error.status != 503:
        with _unit() as (repository, now):
            record = audit_record(_requested(None), [], error.status, error, now)
            AuditLog(_database()).append(repository.connection, [record])
    return refused(error)


def _database() -> Any:
    return current_app.extensions["database"]


@contextmanager
def _unit() -> Iterator[tuple[Repository, datetime]]:
    with current_app.extensions["fhir_engine"].store.unit_of_work(True) as (repository, now):
        yield repository, now


def _requested(user: User | None) -> Requested:
    patient = request.args.get("patient")
    return Requested(
        line=f"{request.method} {request.full_path.rstrip('?')}",
        interaction=f"compliance-{request.endpoint.rsplit('.', 1)[-1] if request.endpoint else 'report'}",
        user=user.username if user else None,
        client=None,
        role=user.role if user else None,
        purpose="HOPERAT",
        patient=patient if patient and patient.startswith("Patient/") else None,
    )


def _officer() -> User:
    return token_user(lambda u: u.role == "compliance-officer", "compliance reports are for compliance officers")


def _report(
    user: User, rows: list[Row], name: str, key: Callable[[Row], str], patient: Callable[[Row], str | None]
) -> Response:
    return _answer(decided_rows(user, rows, name, key, patient), name)


def decided_rows(
    user: User, rows: list[Row], name: str, key: Callable[[Row], str], patient: Callable[[Row], str | None]
) -> list[Row]:
    """Decide the rows as items by the patient each concerns and write the audit record; the
    released rows (all of them, for an officer; decided all the same)."""
    by_patient: dict[str, dict[str, Item]] = {}
    for row in rows:
        item = Item(key(row), "STATUS", description=name)  # one item may stand for several rows (alerts)
        by_patient.setdefault(patient(row) or "", {})[item.key] = item
    requester = Requester(source=f"user:{user.username}", username=user.username, role=user.role)
    door = current_app.extensions["consent_release"]
    try:
        with _unit() as (repository, now):
            items = {p: list(found.values()) for p, found in by_patient.items()}
            releases: list[Release] = door.decide_report(requester, items, repository, now)
            record = audit_record(_requested(user), releases, 200, None, now)
            AuditLog(_database()).append(repository.connection, [record])
    except Exception as error:
        raise Refused(503, "temporarily_unavailable", "the report cannot be recorded now; try again") from error
    released = {(r.request.patient, k) for r in releases for k in r.released_keys}
    return [row for row in rows if (patient(row) or "", key(row)) in released]


def _since(default: timedelta | None = None) -> datetime | None:
    given = request.args.get("since")
    if given:
        found = parse_datetime(given)
        if found is None:
            raise Refused(400, "invalid_request", "since must be a date, e.g. 2026-01-31")
        return found
    return utc_now(current_app.extensions["fhir_engine"].store.clock) - default if default else None


def _answer(rows: list[Row], name: str) -> Response:
    if request.args.get("format") == "csv":
        return csv_response(rows, name)
    response = jsonify({"report": name, "rows": rows})
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_response(rows: list[Row], name: str) -> Response:
    """A report as a CSV download (a spreadsheet's first row names the columns)."""
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["empty"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (v if not isinstance(v, list | dict) else str(v)) for k, v in row.items()})
    response = Response(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _patient() -> str:
    patient = request.args.get("patient", "")
    if not patient.startswith("Patient/"):
        raise Refused(400, "invalid_request", "patient=Patient/<id> is required")
    return patient


def ledger_rows(patient: str, since: datetime | None, intermediary_only: bool) -> list[Row]:
    with _database().connect() as connection:
        rows = AuditLog.ledger(connection, patient, since)
    return [
        {
            "seq": row["seq"],
            "disclosed_at": row["disclosed_at"].isoformat() + "Z",
            "patient": row["patient"],
            "item": row["item"],
            "description": row["body"].get("description"),
            "data_class": row["body"].get("data_class"),
            "discloser": row["discloser"],
            "recipient": row["body"].get("recipient_name"),
            "recipient_user": row["recipient"],
            "recipient_organization": row["body"].get("recipient_organization"),
            "purpose": row["body"].get("purpose"),
            "basis": row["body"].get("basis"),
            "consents": row["body"].get("consents"),
            "tpo": bool(row["body"].get("tpo")),
            "citation": row["body"].get("citation"),
            "notice_version": row["body"].get("notice_version"),
            "intermediary": bool(row["body"].get("intermediary")),
        }
        for row in rows
        if not intermediary_only or row["body"].get("intermediary")
    ]


def disclosure_key(row: Row) -> str:
    return f"Disclosure/{row['seq']}"


@compliance_api.get("/disclosures")
def disclosures() -> Response:
    user = _officer()
    rows = ledger_rows(_patient(), _since(ACCOUNTING_PERIOD), False)
    return _report(user, rows, "disclosures", disclosure_key, lambda r: r["patient"])


@compliance_api.get("/intermediary-disclosures")
def intermediary_disclosures() -> Response:
    user = _officer()
    rows = ledger_rows(_patient(), _since(ACCOUNTING_PERIOD), True)
    return _report(user, rows, "intermediary-disclosures", disclosure_key, lambda r: r["patient"])


# 45 CFR 164.528: disclosures the individual may have accounted for over six years are those not for
# treatment, payment or operations and not on their own authorisation: here, those on a court
# order (164.512(e)) and to a medical examiner (164.512(g)).
HIPAA_ACCOUNTED_BASES = frozenset({"court-order", "cause-of-death"})
HIPAA_ACCOUNTING_PERIOD = timedelta(days=6 * 365)


def hipaa_accounting_rows(patient: str, since: datetime | None) -> list[Row]:
    """A person's disclosures that HIPAA's accounting lists (164.528), oldest first."""
    rows: list[Row] = []
    for record in reversed(_audit_rows(patient, since, 100_000)):
        requester = record["body"].get("requester") or {}
        for decision in record["body"].get("decisions", []):
            if decision.get("patient") != patient:
                continue
            for released in decision.get("released", []):
                basis = released.get("basis") or {}
                if basis.get("kind") in HIPAA_ACCOUNTED_BASES:
                    rows.append({"audit_seq": record["seq"], "disclosed_at": record["recorded_at"].isoformat() + "Z",
                                 "patient": patient, "item": released.get("item"),
                                 "description": released.get("description"), "recipient": requester.get("name"),
                                 "recipient_user": record["recipient"], "recipient_organization": requester.get("organization"),
                                 "purpose": record["purpose"], "basis": basis.get("kind"),
                                 "citation": basis.get("citation"), "order": basis.get("order")})  # fmt: skip
    return rows


def hipaa_key(row: Row) -> str:
    return f"AuditEvent/{row['audit_seq']}"  # one record may stand for several rows


def review_rows(status: str, patient: str | None = None) -> list[Row]:
    """Emergency accesses (`pending`, `reviewed` or `all`; all or one person's), oldest first."""
    with _database().connect() as connection:
        found = AuditLog.reviews(connection, status, patient)
    return [
        {
            "audit_seq": row["audit_seq"],
            "accessed_at": row["accessed_at"].isoformat() + "Z",
            "patient": row["patient"],
            "recipient": row["recipient"],
            "nature": (row["body"].get("emergency") or {}).get("nature"),
            "released": [r["item"] for d in row["body"].get("decisions", []) for r in d.get("released", [])],
            "reviewed_at": row["reviewed_at"].isoformat() + "Z" if row["reviewed_at"] else None,
            "reviewer": row["reviewer"],
            "note": row["note"],
        }
        for row in found
    ]


def review_key(row: Row) -> str:
    return f"EmergencyReview/{row['audit_seq']}"


@compliance_api.get("/emergency-reviews")
def emergency_reviews() -> Response:
    user = _officer()
    status = request.args.get("status", "pending")
    if status not in ("pending", "reviewed", "all"):
        raise Refused(400, "invalid_request", "status is pending, reviewed or all")
    rows = review_rows(status)
    return _report(user, rows, "emergency-reviews", review_key, lambda r: r["patient"])


@compliance_api.post("/emergency-reviews/<int:seq>")
def review_emergency(seq: int) -> Response:
    user = _officer()
    body = request.get_json(silent=True)
    note = body.get("note") if isinstance(body, dict) else None
    if not isinstance(note, str) or not note.strip():
        raise Refused(400, "invalid_request", 'send {"note": "..."}: what the review found')
    if not record_review(user, seq, note.strip()):
        raise Refused(409, "invalid_request", "no pending emergency access with that number")
    return jsonify({"audit_seq": seq, "reviewed": True})


def record_review(user: User, seq: int, note: str) -> bool:
    """Sign off one pending emergency access, with the review's own audit record; False when
    there is no such pending access."""
    with _unit() as (repository, now):
        changed = AuditLog.record_review(repository.connection, seq, user.username, note, now)
        if changed:
            record = audit_record(_requested(user), [], 200, None, now)
            AuditLog(_database()).append(repository.connection, [record])
    return bool(changed)


def subpoena_rows(status: str, with_documents: bool = False) -> list[Row]:
    """Submitted subpoenas (`pending`, `answered` or `all`), oldest first."""
    query = select(subpoena).order_by(subpoena.c.received_at)
    if status != "all":
        query = query.where(subpoena.c.status == status)
    with _database().connect() as connection:
        found = connection.execute(query).mappings().all()
    return [
        {"receipt": row["id"], "received_at": row["received_at"].isoformat() + "Z", "submitted_by": row["submitted_by"],
         "organization": row["organization"], **row["body"], "status": row["status"],
         "handled_at": row["handled_at"].isoformat() + "Z" if row["handled_at"] else None,
         "handled_by": row["handled_by"], "note": row["note"]}
        | ({"document": row["document"]} if with_documents else {})
        for row in found
    ]  # fmt: skip


def subpoena_key(row: Row) -> str:
    return f"Subpoena/{row['receipt']}"


def answer_subpoena_with(user: User, receipt: str, note: str) -> bool:
    """Record how a pending subpoena was answered, with its audit record; False if none such."""
    with _unit() as (repository, now):
        changed = repository.connection.execute(
            update(subpoena)
            .where(subpoena.c.id == receipt, subpoena.c.status == "pending")
            .values(status="answered", handled_at=now, handled_by=user.username, note=note)
        ).rowcount
        if changed:
            record = audit_record(_requested(user), [], 200, None, now)
            AuditLog(_database()).append(repository.connection, [record])
    return bool(changed)


REQUEST_ALERTS = ("police-request", "legal-purpose", "court-order-release")


def request_rows(since: datetime | None) -> list[Row]:
    """Police and legal requests (their alerts) since then, newest first, each with the officer's
    decision if one was recorded."""
    rows = [r for r in alert_rows(since) if r["alert"] in REQUEST_ALERTS]
    with _database().connect() as connection:
        decided = {row.audit_seq: row for row in connection.execute(select(request_decision))}
    for row in rows:
        found = decided.get(row["audit_seq"])
        row["decided_by"] = found.decided_by if found else None
        row["decision"] = found.note if found else None
    return list(reversed(rows))


def record_request_decision(user: User, seq: int, note: str) -> bool:
    """The officer's decision on a police or legal request, with its audit record; False when
    the record is not such a request or was decided already."""
    with _unit() as (repository, now):
        body = repository.connection.execute(select(audit_event.c.body).where(audit_event.c.seq == seq)).scalar()
        codes = {a.get("code") for a in (body or {}).get("alerts", [])}
        taken = repository.connection.execute(select(request_decision.c.audit_seq)
                                              .where(request_decision.c.audit_seq == seq)).first()  # fmt: skip
        if not codes & set(REQUEST_ALERTS) or taken is not None:
            return False
        repository.connection.execute(insert(request_decision).values(audit_seq=seq, decided_at=now,
                                                                       decided_by=user.username, note=note))  # fmt: skip
        AuditLog(_database()).append(repository.connection, [audit_record(_requested(user), [], 200, None, now)])
    return True


@compliance_api.get("/subpoenas")
def subpoenas() -> Response:
    """The queue of submitted subpoenas (42 CFR 2.61: none authorises anything by itself):
    `status=pending` (default), `answered` or `all`; `document=true` includes the documents."""
    user = _officer()
    status = request.args.get("status", "pending")
    if status not in ("pending", "answered", "all"):
        raise Refused(400, "invalid_request", "status must be pending, answered or all")
    rows = subpoena_rows(status, request.args.get("document") == "true")
    # Not about a stored patient: nothing links a subpoena to one (audited as such).
    return _report(user, rows, "subpoenas", subpoena_key, lambda r: None)


@compliance_api.post("/subpoenas/<receipt>")
def answer_subpoena(receipt: str) -> Response:
    """Record how a subpoena was answered (an objection, a request for a court order, ...)."""
    user = _officer()
    body = request.get_json(silent=True)
    note = body.get("note") if isinstance(body, dict) else None
    if not isinstance(note, str) or not note.strip():
        raise Refused(400, "invalid_request", 'send {"note": "..."}: how the subpoena was answered')
    if not answer_subpoena_with(user, receipt, note.strip()):
        raise Refused(409, "invalid_request", "no pending subpoena with that receipt")
    return jsonify({"receipt": receipt, "status": "answered"})


def _audit_rows(patient: str | None, since: datetime | None, limit: int) -> list[Any]:
    with _database().connect() as connection:
        return AuditLog.events(connection, patient, since, limit)


def alert_rows(since: datetime | None, patient: str | None = None) -> list[Row]:
    """Alerts raised since then (police requests, conflicts, emergency accesses, ...), all or one
    person's, oldest first."""
    return [
        {"audit_seq": row["seq"], "recorded_at": row["recorded_at"].isoformat() + "Z", "recipient": row["recipient"],
         "patient": row["patient"], "alert": alert["code"], "detail": alert["detail"]}
        for row in reversed(_audit_rows(patient, since, 10_000))
        for alert in row["body"].get("alerts", [])
    ]  # fmt: skip


def alert_key(row: Row) -> str:
    return f"AuditEvent/{row['audit_seq']}"


@compliance_api.get("/alerts")
def alerts() -> Response:
    user = _officer()
    rows = alert_rows(_since(timedelta(days=90)))
    return _report(user, rows, "alerts", alert_key, lambda r: r["patient"])


def consent_rows(patient: str | None = None) -> list[Row]:
    """The stored Consents (all, or one patient's) and where each stands now (in force, revoked,
    expired, not yet in force, not relied on: with why), court orders included."""
    settings = current_app.config["GATEWAY_SETTINGS"]
    store = current_app.extensions["fhir_engine"].store
    params = [("_count", "1000"), *([("patient", patient)] if patient else [])]
    query = parse_search("Consent", params, base_url=settings.base_url, strict=True, default_count=1000,
                         max_count=1000)  # fmt: skip
    policy = current_app.extensions["consent_release"].policy
    rows: list[Row] = []
    with store.unit_of_work(False) as (repository, now):
        consents, _ = repository.search(query)
        people = {str(((c.content or {}).get("patient") or {}).get("reference") or "") for c in consents}
        repository.existing([("Patient", p.removeprefix("Patient/")) for p in people if p.startswith("Patient/")])
        for item in consents:
            content = item.content or {}
            if is_court_order(content):
                order = order_from_fhir(content)
                state = ("not relied on", "; ".join(order.problems)) if order.problems else (
                    ("in force", "") if order.in_force(now) else ("not in force", f"status {order.status}"))  # fmt: skip
                rows.append({"consent": f"Consent/{item.id}", "patient": order.patient, "kind": "court-order",
                             "standing": state[0], "why": state[1], "problems": list(order.problems),
                             "signed": None, "expires": _day(order.expires_at)})  # fmt: skip
                continue
            consent = consent_from_fhir(content)
            # Signers are checked against the patient (their age at signing, their death) as now.
            found = repository.read("Patient", consent.patient.removeprefix("Patient/"))
            problems = problems_at(consent, patient_facts(found.content if found else None), policy, now)
            state = standing(consent, problems, now)
            rows.append({"consent": f"Consent/{item.id}", "patient": consent.patient, "kind": consent.kind.value,
                         "standing": state[0], "why": state[1], "problems": list(problems),
                         "signed": _day(consent.signed_at), "expires": _day(consent.expires_at),
                         "description": consent.description})  # fmt: skip
    return rows


def _day(moment: datetime | None) -> str | None:
    return f"{moment:%Y-%m-%d}" if moment else None


def consent_key(row: Row) -> str:
    return str(row["consent"])


@compliance_api.get("/consents-not-relied-on")
def consents_not_relied_on() -> Response:
    user = _officer()
    rows = [{k: row[k] for k in ("consent", "patient", "kind", "problems")} for row in consent_rows()
            if row["problems"]]  # fmt: skip
    return _report(user, rows, "consents-not-relied-on", consent_key, lambda r: r["patient"])


def audit_event_resource(row: Any, base_url: str) -> dict[str, Any]:
    """One audit row as a FHIR R4 AuditEvent (IHE BALP style): the request, the requester, each
    patient, and each item released (with its basis) or withheld (with its reason)."""
    body = row["body"]
    outcome = row["outcome"]
    requester = body.get("requester") or {}
    entities: list[dict[str, Any]] = []
    for patient in body.get("patients") or ([row["patient"]] if row["patient"] else []):
        entities.append({"what": {"reference": patient}, "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"}})  # fmt: skip
    for decision in body.get("decisions", []):
        for released in decision.get("released", []):
            basis = released.get("basis") or {}
            detail = [{"type": "basis", "valueString": str(basis.get("kind"))},
                      {"type": "rule", "valueString": str(basis.get("citation"))}]  # fmt: skip
            if basis.get("consent"):
                detail.append({"type": "consent", "valueString": f"Consent/{basis['consent']}"})
            if basis.get("order"):
                detail.append({"type": "court-order", "valueString": f"Consent/{basis['order']}"})
            if basis.get("tpo"):
                detail.append({"type": "tpo", "valueString": "a single consent for treatment, payment and operations"})
            entities.append({"what": {"reference": released["item"]}, "description": "released", "detail": detail})
        for withheld in decision.get("withheld", []):
            detail = [{"type": "reason", "valueString": str(withheld.get("reason"))},
                      {"type": "rule", "valueString": str(withheld.get("citation"))}]  # fmt: skip
            detail += [{"type": "consent", "valueString": f"Consent/{c}"} for c in withheld.get("consents") or []]
            entities.append({"what": {"reference": withheld["item"]}, "description": "withheld", "detail": detail})
        consents = decision.get("consents") or {}
        for consent_id in consents.get("evaluated", []):
            roles = [role for role in ("relied_on", "denying", "in_force") if consent_id in consents.get(role, [])]
            entities.append({"what": {"reference": f"Consent/{consent_id}"},
                             "description": f"consent evaluated ({', '.join(roles) or 'not in force'})"})  # fmt: skip
    refused_or_denied = outcome not in ("PERMIT", "PERMIT_WITH_REDACTION", "COMPLETED")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row["seq"]),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": str(body.get("interaction") or "read")}],
        "action": "R" if str(body.get("request", "GET")).startswith("GET") else "E",
        "recorded": row["recorded_at"].isoformat() + "Z",
        "outcome": "8" if outcome == "ERROR" else "4" if refused_or_denied else "0",
        "outcomeDesc": outcome,
        "agent": [{
            "who": {"identifier": {"system": "urn:crisis-gateway:user", "value": row["recipient"]},
                    "display": requester.get("name") or row["recipient"]},
            "requestor": True,
            "role": [{"text": requester.get("role") or "unknown"}],
        }],
        "source": {"site": base_url, "observer": {"display": "crisis-response gateway consent engine"}},
    }  # fmt: skip
    if row["purpose"]:
        event["purposeOfEvent"] = [{"coding": [{"code": row["purpose"]}]}]
    if entities:
        event["entity"] = entities
    return event


@compliance_api.get("/audit-events")
def audit_events() -> Response:
    """The audit trail as a FHIR searchset Bundle of AuditEvents (?patient=, ?since=, ?_count=)."""
    user = _officer()
    settings = current_app.config["GATEWAY_SETTINGS"]
    count = request.args.get("_count", "100")
    if not count.isascii() or not count.isdigit() or not 0 < int(count) <= 1000:
        raise Refused(400, "invalid_request", "_count is a whole number from 1 to 1000")
    patient = _patient() if request.args.get("patient") else None
    rows = _audit_rows(patient, _since(), int(count))
    decided = decided_rows(user, [dict(r) for r in rows], "audit-events", lambda r: f"AuditEvent/{r['seq']}",
                       lambda r: patient or r["patient"])  # fmt: skip
    shown = {row["seq"] for row in decided}
    events = [audit_event_resource(row, settings.base_url) for row in rows if row["seq"] in shown]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(events)}
    if events:
        bundle["entry"] = [{"resource": event} for event in events]
    response = jsonify(bundle)
    response.headers["Content-Type"] = "application/fhir+json"
    response.headers["Cache-Control"] = "no-store"
    return response
