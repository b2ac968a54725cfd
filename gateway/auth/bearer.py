"""Bearer tokens in, requesters out: the resource server's authentication (RFC 6750)."""

from __future__ import annotations

from gateway.auth.tokens import Tokens
from gateway.fhir.context import Requester
from gateway.fhir.errors import Unauthorized


def requester_for(authorization: str | None, tokens: Tokens, realm: str) -> Requester:
    """The requester a bearer token stands for. A missing token is a 401 without an error code;
    a malformed, unknown, expired or revoked one is a 401 with error="invalid_token"."""
    if not authorization:
        raise Unauthorized(
            "this endpoint needs a SMART access token (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    grant = tokens.grant(token) if scheme.lower() == "bearer" and token and token.isascii() else None
    if grant is None:
        raise Unauthorized(
            "the access token is malformed, unknown, expired or revoked",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token"'},
        )
    who = f"user:{grant.username} via client:{grant.client_id}" if grant.username else f"client:{grant.client_id}"
    # A user grant's context carries the purpose of use chosen at authorisation; a backend
    # grant's carries the client's kind (ehr, dispatch, service) under the same key.
    bound = grant.context.get("purpose")
    return Requester(
        source=who,
        client_id=grant.client_id,
        scopes=tuple(grant.scope.split()),
        patient=grant.patient,
        username=grant.username,
        role=grant.context.get("role"),
        own_writes_only=not grant.username and bound == "ehr",
        organization=grant.context.get("organization"),
        part2_program=bool(grant.context.get("part2")),
        conceal_deletions=not grant.scopes.contexts <= {"system"},
        purpose=bound if grant.username else None,
        client_kind=None if grant.username else bound,
        grant=grant.token_id,
    )
