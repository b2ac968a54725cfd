"""The signed-in user behind a SMART bearer token, for the gateway's own (non-FHIR) JSON APIs,
and the OAuth-style JSON error they answer with."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, jsonify, request

from gateway.auth.accounts import User
from gateway.auth.bearer import requester_for
from gateway.fhir.errors import FhirError


class Refused(Exception):
    """Answered as {"error": ..., "error_description": ...} with its status."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status, self.error, self.headers = status, error, headers or {}


def refused(error: Refused) -> Response:
    response = jsonify({"error": error.error, "error_description": str(error)})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def token_user(allowed: Callable[[User], bool], why: str) -> User:
    """The token's user: 401 without a valid token, 403 when `allowed` says no (`why` tells)."""
    server = current_app.extensions["smart_server"]
    settings = current_app.config["GATEWAY_SETTINGS"]
    try:
        requester = requester_for(request.headers.get("Authorization"), server.tokens, settings.base_url)
    except FhirError as error:
        raise Refused(401, "invalid_token", str(error), error.headers) from None
    user: User | None = server.accounts.user(requester.username) if requester.username else None
    if user is None or user.disabled or not allowed(user):
        raise Refused(403, "insufficient_scope", why)
    return user
