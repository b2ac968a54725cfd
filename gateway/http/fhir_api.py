"""The `/fhir` blueprint: wire format in, `Engine.handle`, wire format out.

Nothing here decides anything about FHIR: it negotiates the format, parses the body with the
locked-down parsers, and renders the engine's response (or its OperationOutcome) with the
headers http.html asks for (ETag, Location, Last-Modified, Content-Type with fhirVersion).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC
from email.utils import format_datetime, formatdate
from typing import Any

import orjson
import psycopg
from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from consent_engine.codes import PURPOSES
from gateway.auth.bearer import requester_for
from gateway.consent.audit import printable
from gateway.fhir.capability import capability_statement
from gateway.fhir.context import FhirRequest, FhirResponse, Requester
from gateway.fhir.dates import parse_instant
from gateway.fhir.engine import Engine
from gateway.fhir.errors import (
    BadRequest,
    FhirError,
    Issue,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    operation_outcome,
)
from gateway.fhir.formats import (
    Format,
    dump_json,
    dump_xml,
    mime_type,
    parse_json,
    parse_xml,
    request_format,
    response_format,
)
from gateway.fhir.openapi import openapi_from_capability
from gateway.http import bulk

log = logging.getLogger("gateway.http")

fhir_api = Blueprint("fhir_api", __name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _engine() -> Engine:
    engine: Engine = current_app.extensions["fhir_engine"]
    return engine


def _wanted_format() -> Format:
    try:
        return response_format(request.args.get("_format"), request.headers.get("Accept"))
    except FhirError:
        return "json"


def render(body: dict[str, Any] | None, status: int, fmt: Format, headers: dict[str, str] | None = None) -> Response:
    pretty = request.args.get("_pretty") == "true"
    response = Response(status=status)
    if body is not None and status != 304:
        response.set_data(dump_xml(body, pretty) if fmt == "xml" else dump_json(body, pretty))
        response.headers["Content-Type"] = mime_type(fmt)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render_error(error: FhirError) -> Response:
    return render(operation_outcome(located(error.issues)), error.status, _wanted_format(), error.headers)


def located(issues: list[Issue]) -> list[Issue]:
    """Every issue points somewhere: one without a location points at the request's root
    element (the resource type in the URL, or Bundle for the base URL)."""
    parts = request.path.removeprefix("/fhir").strip("/").split("/")
    root = parts[0] if parts[0][:1].isupper() else "Bundle" if parts == [""] else "Resource"
    return [
        issue if issue.expression else Issue(issue.code, issue.diagnostics, issue.severity, (root,)) for issue in issues
    ]


def _parse_body(method: str) -> Any:
    data = request.get_data(cache=False)
    content_type = request.headers.get("Content-Type", "")
    if method == "PATCH":
        if content_type.split(";")[0].strip().lower() != "application/json-patch+json":
            raise UnsupportedMediaType("PATCH takes a JSON Patch document: Content-Type application/json-patch+json")
        return parse_json(data, current_app.config["GATEWAY_SETTINGS"].max_json_depth)
    if request.path.endswith("/_search"):
        if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType("POST _search takes application/x-www-form-urlencoded parameters")
        return list(request.form.items(multi=True))
    if method in ("POST", "PUT") or data:
        fmt = request_format(content_type)
        if fmt == "xml":
            return parse_xml(data)
        return parse_json(data, current_app.config["GATEWAY_SETTINGS"].max_json_depth)
    return None


PUBLIC = ("metadata", ".well-known/smart-configuration")


def _fhir_request(path: str) -> FhirRequest:
    return FhirRequest(
        method=request.method,
        path=path.strip("/"),
        params=[(k, v) for k, v in request.args.items(multi=True) if k not in ("_format", "_pretty")],
        headers={name.lower(): value for name, value in request.headers.items()},
        requester=Requester(source="unauthenticated"),
        # The purpose of use and emergency given with this request; the token's is its default
        # for plain reads, never for the responder operations.
        purpose=request.headers.get("X-Purpose-Of-Use") or None,
        emergency_nature=request.headers.get("X-Emergency-Nature") or None,
    )


@fhir_api.get("/api-docs")
def api_docs() -> Response:
    """OpenAPI 3.0, generated from the CapabilityStatement (public, like metadata)."""
    document = current_app.extensions.get("openapi")
    if document is None:
        engine = _engine()
        document = orjson.dumps(
            openapi_from_capability(capability_statement(engine.config.base_url, engine.config.security))
        )
        current_app.extensions["openapi"] = document
    return Response(document, mimetype="application/json")


def _backend_requester() -> Requester:
    settings = current_app.config["GATEWAY_SETTINGS"]
    return requester_for(request.headers.get("Authorization"), current_app.extensions["smart_server"].tokens,
                         settings.base_url)  # fmt: skip


@fhir_api.get("/$export")
def bulk_export() -> Response:
    settings = current_app.config["GATEWAY_SETTINGS"]
    job = bulk.kick_off(_engine(), _backend_requester(), settings.base_url, request.args.get("_type"),
                        request.args.get("_since"), request.headers.get("Prefer"))  # fmt: skip
    response = Response(status=202)
    response.headers["Content-Location"] = f"{settings.base_url}/$export-status/{job}"
    return response


@fhir_api.route("/$export-status/<job>", methods=["GET", "DELETE"])
def bulk_status(job: str) -> Response:
    requester = _backend_requester()
    if request.method == "DELETE":
        bulk.delete(requester, job)
        return Response(status=202)
    found, until = bulk.manifest(requester, job)
    return Response(orjson.dumps(found), mimetype="application/json",
                    headers={"Cache-Control": "no-store", "Expires": formatdate(until, usegmt=True)})  # fmt: skip


@fhir_api.get("/$export-file/<job>/<name>")
def bulk_file(job: str, name: str) -> Response:
    path = bulk.file(_backend_requester(), job, name)

    def lines() -> Iterator[bytes]:
        with path.open("rb") as opened:
            yield from opened

    return Response(lines(), mimetype="application/fhir+ndjson", headers={"Cache-Control": "no-store"})


@fhir_api.route("/", methods=METHODS, defaults={"path": ""}, strict_slashes=False)
@fhir_api.route("/<path:path>", methods=METHODS)
def fhir(path: str) -> Response:
    settings = current_app.config["GATEWAY_SETTINGS"]
    fhir_request = _fhir_request(path)
    try:
        fmt = response_format(request.args.get("_format"), request.headers.get("Accept"))
        if settings.auth == "smart" and fhir_request.path not in PUBLIC:
            # Before the body is read: a caller without a valid token costs us no parsing.
            fhir_request.requester = requester_for(
                request.headers.get("Authorization"), current_app.extensions["smart_server"].tokens, settings.base_url
            )
        if fhir_request.purpose is not None and fhir_request.purpose not in PURPOSES:
            # One rule for every request, whether or not it touches anyone's records.
            raise BadRequest(f"X-Purpose-Of-Use {printable(fhir_request.purpose)[:60]!r} is not a purpose of use "
                             "this gateway knows (docs/consent.md lists them)")  # fmt: skip
        try:
            fhir_request.body = _parse_body(request.method)
        except HTTPException as error:
            raise _as_fhir_error(error) from None
    except FhirError as error:
        if fhir_request.path not in PUBLIC:
            _engine().refused(fhir_request, error)  # refused requests are audited too
        raise
    result = _engine().handle(fhir_request)
    return _render_result(result, fmt)


def _render_result(result: FhirResponse, fmt: Format) -> Response:
    headers: dict[str, str] = {}
    if result.etag:
        headers["ETag"] = result.etag
    if result.location:
        headers["Location"] = result.location
        headers["Content-Location"] = result.location
    if result.last_modified:
        headers["Last-Modified"] = format_datetime(parse_instant(result.last_modified).replace(tzinfo=UTC), usegmt=True)
    return render(result.resource, result.status, fmt, headers)


@fhir_api.errorhandler(FhirError)
def _fhir_error(error: FhirError) -> Response:
    return render_error(error)


def _as_fhir_error(error: HTTPException) -> FhirError:
    status = error.code or 500
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if status == 405 or (status == 404 and request.method not in METHODS):
        # (the router answers 404 for the base URL with a method none of its rules has)
        allowed = sorted(getattr(error, "valid_methods", None) or METHODS)
        return MethodNotAllowed(f"{request.method} is not supported on {request.path}",
                                headers={"Allow": ", ".join(allowed)})  # fmt: skip
    if status == 404:
        return NotFound(f"nothing at {request.path}")
    found = FhirError(error.description or "bad request", code="processing" if status != 400 else None)
    found.status = status
    return found


@fhir_api.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """Errors raised before the view ran (no route for the method, ...): refused, and audited."""
    fhir_error = _as_fhir_error(error)
    try:
        _engine().refused(_fhir_request(request.path.removeprefix("/fhir")), fhir_error)
    except FhirError as unrecorded:  # the refusal cannot be recorded: the one 503 instead
        return render_error(unrecorded)
    return render_error(fhir_error)


@fhir_api.errorhandler(OperationalError)
@fhir_api.errorhandler(psycopg.OperationalError)  # raised unwrapped by the store's COPY path
def _database_error(error: OperationalError | psycopg.OperationalError) -> Response:
    """The store failed in operation (down, locked past the statement timeout, read-only, full):
    fail closed with the one 503 every such failure gets; the cause goes to the log."""
    reference = uuid.uuid4().hex[:12]
    cause = error.orig if isinstance(error, OperationalError) else error
    log.error("database unavailable (reference %s): %s", reference, type(cause).__name__)
    response = render_error(ServiceUnavailable())
    response.headers["X-Reference"] = reference
    return response


@fhir_api.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    reference = uuid.uuid4().hex[:12]
    # The traceback names code, not data: SQL parameters are hidden by the engine (hide_parameters).
    log.exception("unexpected error (reference %s)", reference)
    return _internal(reference)


def _internal(reference: str) -> Response:
    outcome = operation_outcome([Issue("exception", f"internal error; quote reference {reference} to the operator")])
    return render(outcome, 500, _wanted_format())
