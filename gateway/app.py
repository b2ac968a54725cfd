"""The application factory: settings in, a Flask app with the FHIR engine and the SMART
authorization server wired in out."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, jsonify, request
from sqlalchemy import Engine as SqlEngine
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from gateway.auth.accounts import Accounts
from gateway.auth.discovery import capability_security
from gateway.auth.keys import Keys
from gateway.auth.resource import SmartAuthorization, SmartRelease
from gateway.auth.server import AuthConfig, SmartServer
from gateway.auth.tokens import Tokens
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.consent.audit import AuditLog
from gateway.consent.inputs import DecisionInputs
from gateway.consent.labelling import Labelling
from gateway.consent.release import ConsentRelease, load_policy
from gateway.consent.sink import ConsentAudit
from gateway.consent.spool import AuditSpool
from gateway.fhir.engine import Engine, EngineConfig
from gateway.http.admin_api import admin_api
from gateway.http.auth_api import auth_api
from gateway.http.compliance_api import compliance_api
from gateway.http.console import console
from gateway.http.fhir_api import fhir_api
from gateway.http.fhir_api import http_error as fhir_http_error
from gateway.http.legal_api import legal_api
from gateway.http.operator import operator
from gateway.http.pages import pages
from gateway.http.public_health_api import public_health_api
from gateway.http.responder_api import responder_api
from gateway.settings import Settings, check_sandbox, load_settings
from gateway.store.clock import SandboxClock
from gateway.store.database import open_database
from gateway.store.repository import SqlStore


def public_root(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def consent_release(settings: Settings, database: SqlEngine) -> ConsentRelease:
    """The one door out: the consent engine with its inputs loaded through each unit of work."""
    return ConsentRelease(settings.base_url, DecisionInputs(settings.base_url, AuditLog(database)), load_policy())


def clock_for(settings: Settings, database: SqlEngine) -> Clock:
    """The gateway's one clock: the system clock, or in a sandbox the operator-set one."""
    return SandboxClock(database) if settings.sandbox else SYSTEM_CLOCK


def build_engine(
    settings: Settings, database: SqlEngine, *, operator: bool = False, clock: Clock | None = None
) -> Engine:
    """The FHIR engine. `operator=True` is for local operator commands (import, demo), which run
    with the database's own credentials and write without a token; the HTTP API never uses it."""
    clock = clock or clock_for(settings, database)
    store = SqlStore(database, settings.base_url, clock)
    smart = settings.auth == "smart" and not operator
    config = EngineConfig(
        base_url=settings.base_url,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        strict_search_by_default=settings.default_search_handling == "strict",
        max_bundle_entries=settings.max_bundle_entries,
        max_resource_elements=settings.max_resource_elements,
        max_page_bytes=settings.max_page_bytes,
        security=capability_security(public_root(settings.base_url)) if smart else None,
    )
    accounts = Accounts(database, clock)
    labelling = Labelling(programs=accounts.part2_programs)  # every version is labelled, whoever writes it
    if not smart:
        return Engine(store, config, writes=labelling)
    return Engine(
        store,
        config,
        authorization=SmartAuthorization(settings.base_url, consent_decides=True),
        release=SmartRelease(settings.base_url, consent_release(settings, database), consent_decides=True),
        writes=labelling,
        audit=ConsentAudit(AuditLog(database), AuditSpool(Path(settings.audit_spool_dir))),
    )


def build_smart_server(settings: Settings, database: SqlEngine, clock: Clock | None = None) -> SmartServer:
    clock = clock or clock_for(settings, database)
    accounts = Accounts(database, clock)
    config = AuthConfig(
        issuer=settings.base_url,
        public_root=public_root(settings.base_url),
        app_token_seconds=settings.app_token_seconds,
        backend_token_seconds=settings.backend_token_seconds,
        offline_refresh=timedelta(days=settings.offline_refresh_days),
        assertion_leeway_seconds=settings.assertion_leeway_seconds,
        session_idle=timedelta(minutes=settings.session_idle_minutes),
    )
    tokens = Tokens(database, settings.token_cache_seconds, clock)
    return SmartServer(database, accounts, tokens, Keys(database, clock), config)


class AppOrigins:
    """Origins of the registered apps' redirect URIs (CORS on token and FHIR endpoints), read
    from the store at most every 30 seconds."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._origins: frozenset[str] = frozenset()
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __contains__(self, origin: object) -> bool:
        with self._lock:
            if time.monotonic() - self._read_at > 30:
                self._origins = frozenset(
                    public_root(uri)
                    for client in self.accounts.clients()
                    if client.purpose == "app" and not client.disabled
                    for uri in client.redirect_uris
                )
                self._read_at = time.monotonic()
            return origin in self._origins


def _add_cors(response: Response, origins: AppOrigins) -> Response:
    path = request.path
    origin = request.headers.get("Origin")
    if not origin:
        return response
    public = path.endswith(("/metadata", "/.well-known/smart-configuration", "/.well-known/openid-configuration")) or (
        path in ("/auth/jwks.json", "/auth/smart-style.json")
    )
    if public:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif (
        path.startswith("/fhir") or path in ("/auth/token", "/auth/revoke", "/auth/introspect")
    ) and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    else:
        return response
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, Prefer"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Access-Control-Expose-Headers"] = "Location, ETag, Content-Location, Last-Modified"
    return response


# Every page the gateway renders (sign-in, consent, grants, home, docs): its own origin only, no
# inline script or style, not framed (clickjacking of the consent page), no referrer leaving with
# a code or a patient id in the URL.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        for name, value in PAGE_SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings | None = None, *, upgrade_sqlite: bool = True) -> Flask:
    settings = settings or load_settings()
    logging.getLogger("gateway").setLevel(settings.log_level)
    check_sandbox(settings)
    database = open_database(
        settings.database_url, upgrade_sqlite=upgrade_sqlite, statement_timeout_ms=settings.statement_timeout_ms
    )
    clock = clock_for(settings, database)
    app = Flask("gateway", static_folder=str(Path(__file__).parent / "http" / "static"))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["GATEWAY_SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_urlsafe(32)
    app.config["SESSION_COOKIE_NAME"] = "gateway_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.base_url.startswith("https://")
    app.extensions["fhir_engine"] = build_engine(settings, database, clock=clock)
    app.extensions["consent_release"] = consent_release(settings, database)
    app.extensions["database"] = database
    app.extensions["clock"] = clock
    server = build_smart_server(settings, database, clock)
    app.extensions["smart_server"] = server
    origins = AppOrigins(server.accounts)
    app.after_request(lambda response: _add_cors(response, origins))
    app.after_request(_page_headers)
    app.register_blueprint(pages)
    app.register_blueprint(auth_api)
    app.register_blueprint(compliance_api)
    app.register_blueprint(legal_api)
    app.register_blueprint(admin_api)
    app.register_blueprint(public_health_api)
    app.register_blueprint(responder_api)
    app.register_blueprint(console)
    app.register_blueprint(operator)
    app.register_blueprint(fhir_api, url_prefix="/fhir")
    if settings.demo:
        from gateway.http.demo_api import demo_api  # noqa: PLC0415

        app.register_blueprint(demo_api)

    @app.errorhandler(HTTPException)
    def _routing_error(error: HTTPException) -> Response | HTTPException:
        # /fhir answers its own errors as OperationOutcome, those that never reached its
        # blueprint included (a method it has no route for, a URL the router refused); elsewhere
        # (OAuth endpoints) JSON.
        if request.path == "/fhir" or request.path.startswith("/fhir/"):
            if request.blueprint == "fhir_api":
                return error
            return fhir_http_error(error)
        response = jsonify({"error": "invalid_request", "error_description": error.description or error.name})
        response.status_code = error.code or 500
        return response

    @app.get("/healthz")
    def health() -> Response:
        with database.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return jsonify({"status": "ok"})

    return app
