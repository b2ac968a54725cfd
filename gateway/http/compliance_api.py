"""Reports for compliance officers (documented JSON, or CSV with ?format=csv), over a SMART user
token of a user whose role is compliance-officer:

- GET  /compliance/disclosures?patient=Patient/x[&since=YYYY-MM-DD]  §2.25 accounting (3 years)
- GET  /compliance/intermediary-disclosures?patient=Patient/x          §2.24 list
- GET  /compliance/emergency-reviews[?status=pending|reviewed|all]     §2.51 accesses to review
- POST /compliance/emergency-reviews/<seq>  {"note": "..."}            mark one reviewed
- GET  /compliance/alerts[?since=YYYY-MM-DD]                           police releases, conflicts, ...
- GET  /compliance/consents-not-relied-on                              Consents missing §2.31 elements
- GET  /compliance/audit-events[?patient=&since=&_count=]                the audit trail as FHIR AuditEvents
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select, update

from consent_engine.fhir import consent_from_fhir, parse_datetime
from gateway.auth.accounts import utcnow
from gateway.consent.audit import AuditLog, AuditRecord
from gateway.fhir.search import parse_search
from gateway.http.token_user import Refused, refused, token_user
from gateway.store.database import writing
from gateway.store.schema import audit_event, disclosure, emergency_review

compliance_api = Blueprint("compliance_api", __name__, url_prefix="/compliance")
ACCOUNTING_PERIOD = timedelta(days=3 * 365)


compliance_api.register_error_handler(Refused, refused)


def _officer() -> str:
    """The compliance officer asking. The reports carry patient data, so the access is audited
    (and committed) before any of it is read: no record, no report (503)."""
    user = token_user(lambda u: u.role == "compliance-officer", "compliance reports are for compliance officers")
    record = AuditRecord(
        recorded_at=utcnow(),
        recipient=user.username,
        outcome="PERMIT",
        patient=None,  # the patient asked about is in the request; this row is not a disclosure decision
        purpose="HOPERAT",
        emergency=False,
        body={
            "request": f"{request.method} {request.full_path.rstrip('?')}",
            "basis": "compliance-administration",
            "released": [],
            "withheld": [],
            "alerts": [],
            "emergency": None,
        },  # fmt: skip
    )
    try:
        AuditLog(_database()).append([record])
    except Exception as error:
        raise Refused(503, "temporarily_unavailable", "the report cannot be recorded now; try again") from error
    return user.username


def _database() -> Any:
    return current_app.extensions["database"]


def _since(default: timedelta | None = None) -> datetime | None:
    given = request.args.get("since")
    if given:
        found = parse_datetime(given)
        if found is None:
            raise Refused(400, "invalid_request", "since must be a date, e.g. 2026-01-31")
        return found
    return utcnow() - default if default else None


def _answer(rows: list[dict[str, Any]], name: str) -> Response:
    if request.args.get("format") == "csv":
        buffer = io.StringIO()
        columns = list(rows[0]) if rows else ["empty"]
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (v if not isinstance(v, list | dict) else str(v)) for k, v in row.items()})
        response = Response(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    else:
        response = jsonify({"report": name, "generated_at": utcnow().isoformat() + "Z", "rows": rows})
    response.headers["Cache-Control"] = "no-store"
    return response


def _patient() -> str:
    patient = request.args.get("patient", "")
    if not patient.startswith("Patient/"):
        raise Refused(400, "invalid_request", "patient=Patient/<id> is required")
    return patient


def _ledger(patient: str, since: datetime | None, intermediary_only: bool) -> list[dict[str, Any]]:
    query = select(disclosure).where(disclosure.c.patient == patient).order_by(disclosure.c.seq)
    if since:
        query = query.where(disclosure.c.disclosed_at >= since)
    with _database().connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        {
            "disclosed_at": row["disclosed_at"].isoformat() + "Z",
            "item": row["item"],
            "data_class": row["body"].get("data_class"),
            "discloser": row["discloser"],
            "recipient": row["body"].get("recipient_name"),
            "recipient_user": row["recipient"],
            "recipient_organization": row["body"].get("recipient_organization"),
            "purpose": row["body"].get("purpose"),
            "basis": row["body"].get("basis"),
            "consents": row["body"].get("consents"),
            "notice_version": row["body"].get("notice_version"),
        }
        for row in rows
        if not intermediary_only or row["body"].get("intermediary")
    ]


@compliance_api.get("/disclosures")
def disclosures() -> Response:
    _officer()
    return _answer(_ledger(_patient(), _since(ACCOUNTING_PERIOD), False), "disclosures")


@compliance_api.get("/intermediary-disclosures")
def intermediary_disclosures() -> Response:
    _officer()
    return _answer(_ledger(_patient(), _since(ACCOUNTING_PERIOD), True), "intermediary-disclosures")


@compliance_api.get("/emergency-reviews")
def emergency_reviews() -> Response:
    _officer()
    status = request.args.get("status", "pending")
    query = select(emergency_review, audit_event.c.body).join(
        audit_event, audit_event.c.seq == emergency_review.c.audit_seq
    )
    if status == "pending":
        query = query.where(emergency_review.c.reviewed_at.is_(None))
    elif status == "reviewed":
        query = query.where(emergency_review.c.reviewed_at.is_not(None))
    elif status != "all":
        raise Refused(400, "invalid_request", "status is pending, reviewed or all")
    with _database().connect() as connection:
        rows = connection.execute(query.order_by(emergency_review.c.audit_seq)).mappings().all()
    return _answer(
        [
            {
                "audit_seq": row["audit_seq"],
                "accessed_at": row["accessed_at"].isoformat() + "Z",
                "patient": row["patient"],
                "recipient": row["recipient"],
                "nature": (row["body"].get("emergency") or {}).get("nature"),
                "released": [r["item"] for r in row["body"].get("released", [])],
                "reviewed_at": row["reviewed_at"].isoformat() + "Z" if row["reviewed_at"] else None,
                "reviewer": row["reviewer"],
                "note": row["note"],
            }
            for row in rows
        ],
        "emergency-reviews",
    )


@compliance_api.post("/emergency-reviews/<int:seq>")
def review_emergency(seq: int) -> Response:
    officer = _officer()
    body = request.get_json(silent=True)
    note = body.get("note") if isinstance(body, dict) else None
    if not isinstance(note, str) or not note.strip():
        raise Refused(400, "invalid_request", 'send {"note": "..."}: what the review found')
    with writing(_database()) as connection:
        changed = connection.execute(
            update(emergency_review)
            .where(emergency_review.c.audit_seq == seq, emergency_review.c.reviewed_at.is_(None))
            .values(reviewed_at=utcnow(), reviewer=officer, note=note.strip())
        ).rowcount
    if not changed:
        raise Refused(409, "invalid_request", "no pending emergency access with that number")
    return jsonify({"audit_seq": seq, "reviewed": True})


@compliance_api.get("/alerts")
def alerts() -> Response:
    _officer()
    since = _since(timedelta(days=90))
    with _database().connect() as connection:
        rows = connection.execute(
            select(audit_event.c.seq, audit_event.c.recorded_at, audit_event.c.recipient, audit_event.c.patient,
                   audit_event.c.body).where(audit_event.c.recorded_at >= since).order_by(audit_event.c.seq)
        ).mappings().all()  # fmt: skip
    found = [
        {"audit_seq": row["seq"], "recorded_at": row["recorded_at"].isoformat() + "Z", "recipient": row["recipient"],
         "patient": row["patient"], "alert": alert["code"], "detail": alert["detail"]}
        for row in rows
        for alert in row["body"].get("alerts", [])
    ]  # fmt: skip
    return _answer(found, "alerts")


@compliance_api.get("/consents-not-relied-on")
def consents_not_relied_on() -> Response:
    _officer()
    settings = current_app.config["GATEWAY_SETTINGS"]
    store = current_app.extensions["fhir_engine"].store
    query = parse_search("Consent", [("_count", "1000")], base_url=settings.base_url, strict=True,
                         default_count=1000, max_count=1000)  # fmt: skip
    with store.unit_of_work(False) as (repository, _):
        consents, _ = repository.search(query)
    rows = []
    for item in consents:
        consent = consent_from_fhir(item.content or {})
        if consent.problems:
            rows.append({"consent": f"Consent/{item.id}", "patient": consent.patient, "kind": consent.kind.value,
                         "problems": list(consent.problems)})  # fmt: skip
    return _answer(rows, "consents-not-relied-on")


def audit_event_resource(row: Any, base_url: str) -> dict[str, Any]:
    """One audit row as a FHIR R4 AuditEvent (a disclosure decision: type rest, subtype read)."""
    body = row["body"]
    outcome = row["outcome"]
    recipient = body.get("recipient") or {}
    entities: list[dict[str, Any]] = []
    if row["patient"]:
        entities.append({"what": {"reference": row["patient"]}, "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"}})  # fmt: skip
    for released in body.get("released", []):
        entities.append({"what": {"reference": released["item"]}, "description": "released",
                         "detail": [{"type": "basis", "valueString": str(released.get("basis"))}]})  # fmt: skip
    for withheld in body.get("withheld", []):
        entities.append({"what": {"reference": withheld["item"]}, "description": "withheld",
                         "detail": [{"type": "reason", "valueString": str(withheld.get("reason"))}]})  # fmt: skip
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row["seq"]),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
        "action": "R",
        "recorded": row["recorded_at"].isoformat() + "Z",
        "outcome": "0" if outcome in ("PERMIT", "PERMIT_WITH_REDACTION") else "4",
        "outcomeDesc": outcome,
        "agent": [{
            "who": {"identifier": {"system": "urn:crisis-gateway:user", "value": row["recipient"]},
                    "display": recipient.get("name") or row["recipient"]},
            "requestor": True,
            "role": [{"text": recipient.get("role") or "unknown"}],
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
    _officer()
    settings = current_app.config["GATEWAY_SETTINGS"]
    query = select(audit_event).order_by(audit_event.c.seq.desc())
    if request.args.get("patient"):
        query = query.where(audit_event.c.patient == _patient())
    since = _since()
    if since:
        query = query.where(audit_event.c.recorded_at >= since)
    count = request.args.get("_count", "100")
    if not count.isdigit() or not 0 < int(count) <= 1000:
        raise Refused(400, "invalid_request", "_count is a whole number from 1 to 1000")
    with _database().connect() as connection:
        rows = connection.execute(query.limit(int(count))).mappings().all()
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(rows),
        "entry": [{"resource": audit_event_resource(row, settings.base_url)} for row in rows] or None,
    }
    response = jsonify({k: v for k, v in bundle.items() if v is not None})
    response.headers["Content-Type"] = "application/fhir+json"
    response.headers["Cache-Control"] = "no-store"
    return response
