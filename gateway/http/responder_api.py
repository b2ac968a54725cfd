"""What a responder's app tells the gateway (SMART user token):

- POST /responder/on-scene  {"patient": "<id>", "incident": "..."}  the responder is with the
  person: starts the crisis Encounter (the treating relationship). The answer is the same 202
  whether or not the patient is on file (presence is protected); nothing is stored for an
  unknown patient, and roles that are not treating roles (police, dispatch) are refused.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.consent.encounters import start_crisis_encounter
from gateway.fhir.context import Requester
from gateway.fhir.validation import ID_PATTERN
from gateway.http.token_user import Refused, refused, token_user

responder_api = Blueprint("responder_api", __name__, url_prefix="/responder")
TREATING_ROLES = frozenset({"crisis-clinician", "peer-specialist", "ems", "ed-physician"})


responder_api.register_error_handler(Refused, refused)


@responder_api.post("/on-scene")
def on_scene() -> Response:
    user = token_user(
        lambda u: u.role in TREATING_ROLES and bool(u.organization),
        "only responders in a treating role, with an organization, record this",
    )
    body = request.get_json(silent=True)
    patient = body.get("patient") if isinstance(body, dict) else None
    incident = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(patient, str) or not ID_PATTERN.match(patient):
        raise Refused(400, "invalid_request", 'send {"patient": "<Patient id>"}')
    if incident is not None and (not isinstance(incident, str) or len(incident) > 100):
        raise Refused(400, "invalid_request", "incident must be a short string")
    writer = Requester(source=f"user:{user.username}", username=user.username, role=user.role)
    start_crisis_encounter(current_app.extensions["fhir_engine"], writer, patient, user.organization or "", incident)
    response = jsonify({"recorded": True})
    response.status_code = 202
    return response
