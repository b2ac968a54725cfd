"""`/admin/clock`: the sandbox clock for test harnesses (an EHR integrator's suite, a conformance
kit), the same as `gateway clock` on the command line.

    GET  /admin/clock                          {"now": ..., "offset_seconds": ..., "sandbox": true}
    POST /admin/clock  {"set": "2027-03-01T09:00:00Z"} | {"advance": "PT2H"} | {"reset": true}

Only a gateway with `sandbox = true` answers (404 otherwise: in production the endpoint does not
exist), and only to a signed-in user with role `admin`. Every change is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.auth.accounts import User
from gateway.clock import Clock, parse_duration, parse_instant
from gateway.consent.audit import AuditLog, Requested, audit_record
from gateway.http.token_user import Refused, refused, token_user

admin_api = Blueprint("admin_api", __name__, url_prefix="/admin")


@admin_api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    return refused(error)


def _sandbox_clock() -> Any:
    found: Clock = current_app.extensions["clock"]
    if not found.sandbox:
        raise Refused(404, "not_found", "no such endpoint")
    return found


def _admin() -> User:
    return token_user(lambda u: u.role == "admin", "the sandbox clock is for gateway administrators")


def _state(found: Any) -> Response:
    return jsonify({"now": found.now().isoformat() + "Z", "offset_seconds": found.offset().total_seconds(),
                    "sandbox": True})  # fmt: skip


@admin_api.get("/clock")
def show_clock() -> Response:
    found = _sandbox_clock()
    _admin()
    return _state(found)


@admin_api.post("/clock")
def move_clock() -> Response:
    found = _sandbox_clock()
    user = _admin()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or len(body) != 1:
        raise Refused(400, "invalid_request", 'send one of {"set": instant}, {"advance": duration}, {"reset": true}')
    try:
        if "set" in body and isinstance(body["set"], str):
            found.set(parse_instant(body["set"]), by=user.username)
        elif "advance" in body and isinstance(body["advance"], str):
            found.advance(parse_duration(body["advance"]), by=user.username)
        elif body.get("reset") is True:
            found.reset(by=user.username)
        else:
            raise Refused(
                400, "invalid_request", 'send one of {"set": instant}, {"advance": duration}, {"reset": true}'
            )
    except ValueError as error:
        raise Refused(400, "invalid_request", str(error)) from None
    store = current_app.extensions["fhir_engine"].store
    with store.unit_of_work(True) as (repository, now):
        requested = Requested(line=f"POST /admin/clock {sorted(body)[0]}", interaction="admin-clock",
                              user=user.username, client=None, role=user.role, purpose=None)  # fmt: skip
        AuditLog(current_app.extensions["database"]).append(repository.connection,
                                                            [audit_record(requested, [], 200, None, now)])  # fmt: skip
    return _state(found)
