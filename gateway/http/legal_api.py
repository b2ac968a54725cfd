"""Subpoenas: `POST /legal/subpoenas`, for anyone signed in (county counsel, a district attorney's
investigator, police).

42 CFR 2.61: an order authorises disclosure and a subpoena compels it; a subpoena alone
authorises nothing (§2.13(b): not even a subpoena overrides the restrictions). So a subpoena is
received, stored in the compliance officers' queue (`GET /compliance/subpoenas`) with an alert,
and answered with a receipt that is the same whoever it describes: the answer does not say whether
the gateway holds records about anyone (§2.13(c)). Nothing is looked up; the officers decide
what, if anything, a court order will later allow.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import insert

from consent_engine import Alert
from gateway.auth.accounts import User
from gateway.consent.audit import AuditLog, Requested, audit_record
from gateway.http.token_user import Refused, refused, token_user
from gateway.store.schema import subpoena

legal_api = Blueprint("legal_api", __name__, url_prefix="/legal")
DOCUMENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/tiff"})
RECEIPT = (
    "Received. A compliance officer will review this subpoena and answer you. A subpoena alone does not "
    "authorise the disclosure of substance use disorder treatment records (42 CFR 2.61); this receipt does "
    "not say whether the gateway holds records about anyone."
)
PERSON_FIELDS = ("name", "birthDate", "identifier", "address")


def _requested(user: User | None) -> Requested:
    return Requested(line=f"{request.method} {request.path}", interaction="legal-subpoena",
                     user=user.username if user else None, client=None, role=user.role if user else None,
                     purpose="legal-proceeding", patient=None)  # fmt: skip


@legal_api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    """A refused submission leaves its audit record too."""
    store = current_app.extensions["fhir_engine"].store
    with store.unit_of_work(True) as (repository, now):
        record = audit_record(_requested(None), [], error.status, error, now)
        AuditLog(current_app.extensions["database"]).append(repository.connection, [record])
    return refused(error)


def _text(body: dict[str, Any], name: str, limit: int = 500) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Refused(400, "invalid_request", f"{name} must be text of at most {limit} characters")
    return value.strip() or None


def _submission(body: Any) -> tuple[dict[str, Any], str]:
    """The described person, issuer, case and due date, and the document (checked base64)."""
    if not isinstance(body, dict):
        raise Refused(400, "invalid_request", 'send JSON: {"document": {"contentType", "data"}, "person": {...}, ...}')
    document = body.get("document")
    if not isinstance(document, dict) or document.get("contentType") not in DOCUMENT_TYPES:
        raise Refused(400, "invalid_request",
                      f"document.contentType must be one of {', '.join(sorted(DOCUMENT_TYPES))}")  # fmt: skip
    data = document.get("data")
    try:
        decoded = base64.b64decode(data, validate=True) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise Refused(400, "invalid_request", "document.data must be the subpoena itself, base64-encoded")
    person = body.get("person")
    if not isinstance(person, dict) or not any(person.get(f) for f in PERSON_FIELDS):
        raise Refused(400, "invalid_request", f"person must describe whom it is about ({', '.join(PERSON_FIELDS)})")
    described = {f: person[f] for f in PERSON_FIELDS if person.get(f)}
    issuer = _text(body, "issuer")
    if not issuer:
        raise Refused(400, "invalid_request", "issuer (the court or agency that issued it) is required")
    fields = {"person": described, "issuer": issuer, "case": _text(body, "case"), "due": _text(body, "due", 10),
              "contentType": document["contentType"], "bytes": len(decoded)}  # fmt: skip
    return fields, str(data)


@legal_api.post("/subpoenas")
def submit_subpoena() -> tuple[Response, int]:
    user = token_user(lambda u: True, "")
    fields, document = _submission(request.get_json(silent=True))
    receipt = str(uuid.uuid4())
    store = current_app.extensions["fhir_engine"].store
    alert = Alert("subpoena-received", f"{user.username} ({user.organization or user.role}) submitted a subpoena "
                                       f"from {fields['issuer']}: review it in the queue ({receipt})")  # fmt: skip
    try:
        with store.unit_of_work(True) as (repository, now):
            repository.connection.execute(insert(subpoena).values(
                id=receipt, received_at=now, submitted_by=user.username, organization=user.organization,
                body=fields, document=document, status="pending"))  # fmt: skip
            record = audit_record(_requested(user), [alert], 202, None, now)
            AuditLog(current_app.extensions["database"]).append(repository.connection, [record])
    except Exception as error:
        raise Refused(503, "temporarily_unavailable", "the subpoena cannot be received now; try again") from error
    return jsonify({"receipt": receipt, "status": "received", "message": RECEIPT}), 202
