"""The purpose of use of a responder operation: given with each request."""

from __future__ import annotations

from consent_engine.codes import PURPOSES
from gateway.fhir.context import FhirRequest
from gateway.fhir.errors import BadRequest


def require_purpose(request: FhirRequest, where: str) -> str:
    """The responder operations take the purpose of use with each request (a `purpose`
    parameter or X-Purpose-Of-Use), never the one bound to the token (consent-conventions.md)."""
    purpose = request.param("purpose") or request.purpose
    if not purpose:
        raise BadRequest("a purpose of use is required with this request: purpose=TREAT, ETREAT, BTG or "
                         "crisis-coordination", expression=where)  # fmt: skip
    if purpose not in PURPOSES:
        raise BadRequest(f"{purpose!r} is not a purpose of use this gateway knows", expression=where)
    request.purpose = purpose
    reason = request.param("reason")
    if reason is not None:
        request.emergency_nature = reason
    return purpose
