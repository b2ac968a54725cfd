"""What a responder's app tells the gateway (SMART user token):

- POST /responder/on-scene  {"patient": "<id>", "incident": "..."}  the responder is with the
  person: starts the crisis Encounter (the treating relationship). The answer is the same 202
  whether or not the patient is on file (presence is protected); nothing is stored for an
  unknown patient, and roles that are not treating roles (police, dispatch) are refused.
- POST /responder/outcome  {"patient": "<id>", "disposition": "<code>", "note": "..."}  after the
  call: finishes the crisis Encounter with the disposition (mappings.outcome.DISPOSITIONS) and
  tells the care teams the responder may see (gateway.consent.outcomes). 202 with the names of
  the organizations told; the same 202 with none for a patient not on file.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.auth.accounts import User
from gateway.consent.encounters import start_crisis_encounter
from gateway.consent.outcomes import record_outcome
from gateway.fhir.context import Requester
from gateway.fhir.validation import ID_PATTERN
from gateway.http.token_user import Refused, refused, token_user
from mappings.outcome import DISPOSITIONS, MAX_NOTE

responder_api = Blueprint("responder_api", __name__, url_prefix="/responder")


responder_api.register_error_handler(Refused, refused)


def _treating_user() -> User:
    return token_user(
        lambda u: u.treating and bool(u.organization),
        "only responders in a treating role, with an organization, record this",
    )


def _body_patient() -> tuple[dict[str, Any], str]:
    body = request.get_json(silent=True)
    patient = body.get("patient") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(patient, str) or not ID_PATTERN.match(patient):
        raise Refused(400, "invalid_request", 'send {"patient": "<Patient id>", ...}')
    return body, patient


@responder_api.post("/on-scene")
def on_scene() -> Response:
    user = _treating_user()
    body, patient = _body_patient()
    incident = body.get("incident")
    if incident is not None and (not isinstance(incident, str) or len(incident) > 100):
        raise Refused(400, "invalid_request", "incident must be a short string")
    writer = Requester(source=f"user:{user.username}", username=user.username, role=user.role)
    start_crisis_encounter(current_app.extensions["fhir_engine"], writer, patient, user.organization or "", incident)
    response = jsonify({"recorded": True})
    response.status_code = 202
    return response


@responder_api.post("/outcome")
def outcome() -> Response:
    user = _treating_user()
    body, patient = _body_patient()
    disposition, note = body.get("disposition"), body.get("note", "")
    if disposition not in DISPOSITIONS:
        raise Refused(400, "invalid_request", "disposition must be one of " + ", ".join(DISPOSITIONS))
    note = " ".join(note.split()) if isinstance(note, str) else None  # a form's line breaks are spaces here
    if note is None or len(note) > MAX_NOTE or not note.isprintable():
        raise Refused(400, "invalid_request", f"note must be printable text of at most {MAX_NOTE} characters")
    writer = Requester(source=f"user:{user.username}", username=user.username, role=user.role,
                       organization=user.organization)  # fmt: skip
    settings = current_app.config["GATEWAY_SETTINGS"]
    done = record_outcome(current_app.extensions["fhir_engine"], writer, patient, str(disposition), note,
                          settings.local_timezone)  # fmt: skip
    response = jsonify({"recorded": True, "told": done.told if done else []})
    response.status_code = 202
    return response
