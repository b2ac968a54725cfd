"""The authorization server's HTTP face: discovery, sign-in, authorize and consent, token,
introspection, revocation, the grant management page, EHR launch and JWKS.

Handlers parse, call the SMART server (gateway.auth) and respond. OAuth errors are answered the
OAuth way (JSON, or a redirect to a *registered* redirect_uri); nothing here answers 500 for a
client's mistake.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc6749.errors import InvalidClientError, OAuth2Error
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from gateway.auth.accounts import Client, LoginRefused, User, utcnow
from gateway.auth.bearer import requester_for
from gateway.auth.discovery import openid_configuration, smart_configuration
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.auth.server import SmartServer
from gateway.consent.audit import AuditLog, Requested, audit_record
from gateway.consent.encounters import start_crisis_encounter
from gateway.fhir.context import Requester
from gateway.fhir.errors import FhirError
from gateway.fhir.validation import ID_PATTERN
from gateway.http.token_user import Refused, refused

auth_api = Blueprint("auth_api", __name__, template_folder="templates")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# What a responder may say they need the data for (consent_engine.codes); the token carries it.
PURPOSES = [
    ("TREAT", "Treatment (crisis response)"),
    ("ETREAT", "Emergency treatment"),
    ("crisis-coordination", "Crisis coordination (non-clinical)"),
]
SMART_STYLE = {
    "color_background": "#f4f5f7",
    "color_error": "#9b1c1c",
    "color_highlight": "#1a56db",
    "color_modal_backdrop": "",
    "color_success": "#046c4e",
    "color_text": "#1b1d21",
    "dim_border_radius": "6px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, sans-serif",
    "font_family_heading": "system-ui, sans-serif",
}


def _server() -> SmartServer:
    server: SmartServer = current_app.extensions["smart_server"]
    return server


def _root() -> str:
    return str(_server().config.public_root)


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


# -- sessions and CSRF ---------------------------------------------------------------------------
SEEN_WRITE_SECONDS = 60.0


def _idle_limit() -> float:
    return float(current_app.config["GATEWAY_SETTINGS"].session_idle_minutes * 60)


def signed_in_user() -> User | None:
    """The session's user, if the session is alive: not idle for longer than the limit, and
    the user not disabled since."""
    username = session.get("user")
    if not username:
        return None
    server = _server()
    now = server.clock.timestamp()
    session_id = str(session.get("sid") or "")
    idle = _idle_limit()
    if now - float(session.get("seen", 0)) > idle or not server.accounts.session_alive(session_id, _idle_delta()):
        session.clear()
        return None
    user = server.accounts.user(username)
    if user is None or user.disabled:
        session.clear()
        return None
    if now - float(session.get("seen", 0)) > SEEN_WRITE_SECONDS:
        server.accounts.touch_session(session_id)  # at most a write a minute per session
    session["seen"] = now
    return user


def _idle_delta() -> timedelta:
    return timedelta(seconds=_idle_limit())


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def valid_csrf() -> bool:
    expected = session.get("csrf")
    return bool(expected) and hmac.compare_digest(str(expected), request.form.get("csrf_token", ""))


def _message(title: str, message: str, status: int) -> Response:
    response = Response(render_template("message.html", title=title, message=message), status=status)
    response.headers.update(NO_STORE)
    return response


def _safe_next(target: str | None) -> str:
    """Only our own authorize page or the console: never an open redirect."""
    if (
        target
        and target.startswith(("/auth/authorize", "/console/", "/console?", "/operator/"))
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("auth_api.manage")


# -- discovery -------------------------------------------------------------------------------------
@auth_api.get("/fhir/.well-known/smart-configuration")
def smart_config() -> Response:
    server = _server()
    return _json(smart_configuration(server.config.issuer, _root()))


@auth_api.get("/fhir/.well-known/openid-configuration")
def openid_config() -> Response:
    server = _server()
    return _json(openid_configuration(server.config.issuer, _root()))


@auth_api.get("/auth/jwks.json")
def jwks() -> Response:
    return _json(_server().keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


@auth_api.post("/auth/register")
def register_client() -> Response:
    """OAuth 2.0 Dynamic Client Registration (RFC 7591) for EHRs, with an operator's initial
    access token (docs/integrators.md)."""
    from gateway.auth.registration import RegistrationError, register  # noqa: PLC0415

    settings = current_app.config["GATEWAY_SETTINGS"]
    server = _server()
    try:
        answer = register(server.accounts, request.headers.get("Authorization"), request.get_json(silent=True),
                          utcnow(server.clock), settings.sandbox)  # fmt: skip
    except RegistrationError as error:
        headers = {**NO_STORE, **({"WWW-Authenticate": 'Bearer error="invalid_token"'} if error.status == 401 else {})}
        return _json({"error": error.error, "error_description": str(error)}, error.status, headers)
    return _json(answer, 201, NO_STORE)


@auth_api.get("/auth/conformance")
def conformance() -> Response:
    """A backend client's own recent pushes: accepted or refused (and why), and what was written
    with the labels applied (docs/integrators.md)."""
    from gateway.auth.conformance import conformance_report  # noqa: PLC0415

    client = _calling_backend(lambda c: True, "a backend client's token shows its own pushes")
    database = current_app.extensions["database"]
    report = conformance_report(database, client.client_id)
    # What it wrote, back to the client that wrote it: still a request about records, so audited first.
    requested = Requested(line=f"GET {request.path}", interaction="conformance-report", user=None,
                          client=client.client_id, role=client.purpose, purpose=None)  # fmt: skip
    with current_app.extensions["fhir_engine"].store.unit_of_work(True) as (repository, now):
        AuditLog(database).append(repository.connection, [audit_record(requested, [], 200, None, now)])
    report.update(organization=client.organization, part2_program=client.part2_program)
    return _json(report, 200, NO_STORE)


@auth_api.get("/auth/sources/<source_id>/jwks.json")
def source_jwks(source_id: str) -> Response:
    """The public key the gateway signs its client assertions with when it pulls from this source:
    the URL an EHR registers for the gateway's Backend Services client."""
    from gateway.pull.sources import Sources  # noqa: PLC0415

    found = Sources(current_app.extensions["database"]).get(source_id)
    if found is None:
        return _json({"error": "not_found", "error_description": "no such source"}, 404)
    return _json(found.public_jwks(), headers={"Cache-Control": "public, max-age=300"})


@auth_api.get("/auth/smart-style.json")
def smart_style() -> Response:
    return _json(SMART_STYLE, headers={"Cache-Control": "public, max-age=3600"})


# -- sign-in ---------------------------------------------------------------------------------------
@auth_api.route("/auth/login", methods=["GET", "POST"])
def login() -> Response:
    if request.method == "GET":
        return _login_page(request.args.get("next"), None, 200)
    target = request.form.get("next")
    if not valid_csrf():
        return _login_page(target, "The form expired; please sign in again.", 400)
    try:
        user = _server().accounts.login(
            request.form.get("username", ""), request.form.get("password", ""), request.form.get("totp") or None
        )
    except LoginRefused as refused:
        return _login_page(target, str(refused), 401)
    session.clear()  # a fresh session on sign-in: no fixation
    session.permanent = False
    session["user"] = user.username
    session["sid"] = _server().accounts.start_session(user.username)
    session["seen"] = _server().clock.timestamp()
    session["auth_time"] = int(session["seen"])
    return redirect(_safe_next(target), 303)


def _login_page(target: str | None, error: str | None, status: int) -> Response:
    page = render_template("login.html", next=_safe_next(target), error=error, csrf_token=csrf_token())
    response = Response(page, status=status)
    response.headers.update(NO_STORE)
    return response


@auth_api.post("/auth/logout")
def logout() -> Response:
    if valid_csrf():
        if session.get("sid"):
            _server().accounts.end_session(str(session["sid"]))  # its online_access grants end with it
        session.clear()
    return redirect(url_for("auth_api.login"), 303)


# -- authorization code: authorize, consent --------------------------------------------------------
def _authorization_params() -> list[tuple[str, str]]:
    skip = {"csrf_token", "decision", "grant_scope", "patient", "purpose"}
    return [(k, v) for k, v in request.values.items(multi=True) if k not in skip]


@auth_api.route("/auth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    server = _server()
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)  # type: ignore[no-any-return]
    user = signed_in_user()
    params = _authorization_params()
    if user is None:
        back = url_for("auth_api.authorize") + "?" + urlencode(params)
        return redirect(url_for("auth_api.login", next=back), 303)
    return _consent_page(grant, user, params, None, 200)


def _consent_page(grant: Any, user: User, params: list[tuple[str, str]], error: str | None, status: int) -> Response:
    request_ = grant.request
    granted: ScopeSet = request_.smart_granted
    launch = request_.smart_launch
    needs_patient = launch is None and (
        "patient" in granted.contexts or "launch/patient" in ScopeSet.parse(request_.payload.scope or "").others
    )
    page = render_template(
        "consent.html",
        client=request_.client,
        user=user,
        params=params,
        scopes=str(granted).split(),
        launch=launch,
        needs_patient=needs_patient,
        patient=request.form.get("patient"),
        purposes=PURPOSES,
        purpose=(launch or {}).get("purpose") or request.form.get("purpose") or "TREAT",
        error=error,
        csrf_token=csrf_token(),
    )
    response = Response(page, status=status)
    response.headers.update(NO_STORE)
    response.headers["X-Frame-Options"] = "DENY"
    return response


@auth_api.post("/auth/authorize/consent")
def consent() -> Response:
    server = _server()
    if not valid_csrf():
        return _message("Please try again", "The consent form expired or was not sent by this page.", 400)
    user = signed_in_user()
    if user is None:
        return _message("Signed out", "Your session ended. Start again from the app.", 401)
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)  # type: ignore[no-any-return]
    if request.form.get("decision") != "approve":
        return server.create_authorization_response(grant=grant, grant_user=None)  # type: ignore[no-any-return]
    offered: ScopeSet = grant.request.smart_granted
    chosen = set(request.form.getlist("grant_scope"))
    scope = " ".join(s for s in str(offered).split() if s in chosen)
    launch = grant.request.smart_launch
    params = _authorization_params()
    if launch and launch.get("username") and launch["username"] != user.username:
        return _message("Wrong user", "This launch was made for another user.", 403)
    patient = launch["patient"] if launch else (request.form.get("patient") or "").strip() or None
    wants_patient = "patient" in ScopeSet.parse(scope).contexts or "launch/patient" in chosen
    purpose = request.form.get("purpose") or "TREAT"
    if purpose not in dict(PURPOSES):
        return _consent_page(grant, user, params, "Choose a purpose of use from the list.", 400)
    if wants_patient and not launch:
        # The same answer for "not stored" and "not for you": a person's presence is protected.
        if not patient or not ID_PATTERN.match(patient) or not _may_know(user, patient, purpose, scope):
            return _consent_page(grant, user, params, "No patient with that id; check it and try again.", 400)
    context: dict[str, Any] = {"need_patient_banner": True, "purpose": purpose, "session": session.get("sid")}
    if patient and wants_patient:
        context["patient"] = patient
    if launch:
        context.update({k: launch[k] for k in ("encounter", "incident") if launch.get(k)})
    grant.request.smart_decision = {
        "scope": scope,
        "context": context,
        "launch_id": launch["launch_id"] if launch else None,
        "auth_time": None,
    }
    return server.create_authorization_response(grant=grant, grant_user=user)  # type: ignore[no-any-return]


def _patient_exists(patient_id: str) -> bool:
    """For trusted backends (dispatch, EHRs) only: whether a Patient with this id is stored."""
    store = current_app.extensions["fhir_engine"].store
    with store.unit_of_work(False) as (repository, _):
        found = repository.read("Patient", patient_id)
    return found is not None and not found.deleted


def _may_know(user: User, patient_id: str, purpose: str, scope: str) -> bool:
    """May this user, asking for this purpose with these scopes, learn that the patient exists?"""
    requester = Requester(source=f"user:{user.username}", scopes=tuple(scope.split()), patient=patient_id,
                          username=user.username, role=user.role, purpose=purpose)  # fmt: skip
    return bool(current_app.extensions["fhir_engine"].may_know_patient(requester, patient_id, purpose))


# -- token, introspection, revocation ----------------------------------------------------------------
@auth_api.post("/auth/token")
def token() -> Response:
    return _server().create_token_response()  # type: ignore[no-any-return]


def _oauth_request() -> Any:
    return _server().create_oauth2_request(None)


def _authenticated_client(methods: list[str], endpoint: str) -> Client | None:
    """The calling client, or None when it sent no credentials; wrong credentials raise."""
    try:
        client: Client = _server().authenticate_client(_oauth_request(), methods, endpoint)
    except InvalidClientError:
        if (
            request.headers.get("Authorization", "").lower().startswith("basic")
            or request.form.get("client_assertion")
            or request.form.get("client_secret")
        ):
            raise
        return None
    return client


@auth_api.post("/auth/introspect")
def introspect() -> Response:
    """RFC 7662. Callers: a confidential client (Basic or private_key_jwt), a backend client's
    bearer token (any system/ scope), or a token introspecting itself."""
    server = _server()
    candidate = request.form.get("token", "")
    bearer = request.headers.get("Authorization", "")
    allowed = False
    try:
        if bearer.lower().startswith("bearer "):
            presented = bearer[7:].strip()
            caller = server.tokens.grant(presented)
            allowed = caller is not None and ("system" in caller.scopes.contexts or presented == candidate)
        else:
            client = _authenticated_client(
                ["client_secret_basic", "client_secret_post", "private_key_jwt"], "introspection"
            )
            allowed = client is not None and client.kind != "public"
    except OAuth2Error as error:
        return server.handle_error_response(None, error)  # type: ignore[no-any-return]
    if not allowed:
        return _json(
            {
                "error": "invalid_client",
                "error_description": "introspection needs client credentials or a bearer token",
            },
            401,
            {**NO_STORE, "WWW-Authenticate": 'Bearer realm="introspection"'},
        )
    server.tokens.forget(candidate)
    grant = server.tokens.grant(candidate) if candidate else None
    if grant is None:
        return _json({"active": False}, headers=NO_STORE)
    return _json(grant.introspection(server.config.issuer), headers=NO_STORE)


@auth_api.post("/auth/revoke")
def revoke() -> Response:
    """RFC 7009: 200 for a token revoked or unknown (§2.2: an invalid token is no error); a token
    issued to another client is refused (§2.1), as Authlib's endpoint does (invalid_grant)."""
    server = _server()
    try:
        client = _authenticated_client(
            ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"], "revocation"
        )
    except OAuth2Error as error:
        return server.handle_error_response(None, error)  # type: ignore[no-any-return]
    if client is None:
        return _json({"error": "invalid_client", "error_description": "revocation needs the client's credentials"}, 401)
    row = server.tokens.family_of(request.form.get("token", ""))
    if row is not None and row["client_id"] != client.client_id:
        return _json({"error": "invalid_grant", "error_description": "the token was not issued to this client"}, 400,
                     NO_STORE)  # fmt: skip
    if row is not None:
        server.tokens.revoke_family(row["family"])
    return _json({}, headers=NO_STORE)


# -- grant management ------------------------------------------------------------------------------
@auth_api.get("/auth/manage")
def manage() -> Response:
    user = signed_in_user()
    if user is None:
        return redirect(url_for("auth_api.login"), 303)
    server = _server()
    grants = []
    for row in server.tokens.grants_of_user(user.username):
        client = server.accounts.client(row["client_id"])
        grants.append(
            {
                "family": row["family"],
                "client_name": client.name if client else row["client_id"],
                "scope": row["scope"],
                "issued_at": row["issued_at"],
                "patient": (row["context"] or {}).get("patient"),
            }
        )
    response = Response(render_template("manage.html", user=user, grants=grants, csrf_token=csrf_token()))
    response.headers.update(NO_STORE)
    return response


@auth_api.post("/auth/manage/revoke")
def manage_revoke() -> Response:
    user = signed_in_user()
    if user is None or not valid_csrf():
        return _message("Please sign in again", "Your session ended or the form expired.", 401)
    server = _server()
    family = request.form.get("grant", "")
    if any(row["family"] == family for row in server.tokens.grants_of_user(user.username)):
        server.tokens.revoke_family(family)
    return redirect(url_for("auth_api.manage"), 303)


# -- EHR launch --------------------------------------------------------------------------------------
@auth_api.post("/launch")
def launch() -> Response:
    """A dispatch (CAD) or EHR backend client asks for a launch of a responder app for a patient;
    the answer is the URL to open (the app's launch URL with iss and launch)."""
    server = _server()
    settings = current_app.config["GATEWAY_SETTINGS"]
    backend = _calling_backend(lambda c: c.purpose in ("dispatch", "ehr"),
                               "only dispatch and EHR backend clients launch apps")  # fmt: skip
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json({"error": "invalid_request", "error_description": "send a JSON object"}, 400)
    app_client = server.accounts.client(str(body.get("client_id", "")))
    if app_client is None or app_client.purpose != "app" or app_client.disabled or not app_client.launch_url:
        return _json(
            {"error": "invalid_request", "error_description": "client_id must be an enabled app with a launch URL"}, 400
        )
    patient = body.get("patient")
    if not isinstance(patient, str) or not ID_PATTERN.match(patient) or not _patient_exists(patient):
        return _json(
            {"error": "invalid_request", "error_description": "patient must be the id of a stored Patient"}, 400
        )
    optional: dict[str, str | None] = {}
    purpose = body.get("purpose", "ETREAT")
    if purpose not in dict(PURPOSES):
        return _json(
            {"error": "invalid_request", "error_description": "purpose must be one of " + ", ".join(dict(PURPOSES))},
            400,
        )
    for name in ("encounter", "incident", "user"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not value or len(value) > 100):
            return _json({"error": "invalid_request", "error_description": f"{name} must be a short string"}, 400)
        optional[name] = value
    responder = server.accounts.user(optional["user"]) if optional["user"] else None
    if optional["user"] and responder is None:
        return _json({"error": "invalid_request", "error_description": "user is not a known user"}, 400)
    encounter = optional["encounter"]
    if responder is not None and responder.organization and not encounter:
        # Dispatching a team starts the crisis Encounter: the treating relationship the consent
        # engine looks for (TPO and intermediary consents).
        writer = Requester(source=f"client:{backend.client_id}", client_id=backend.client_id)
        encounter = start_crisis_encounter(current_app.extensions["fhir_engine"], writer, patient,
                                           responder.organization, optional["incident"])  # fmt: skip
    launch_id = server.create_launch(
        client_id=app_client.client_id,
        created_by=backend.client_id,
        patient=patient,
        username=optional["user"],
        encounter=encounter,
        incident=optional["incident"],
        purpose=purpose,
    )
    # The link is opened on the way to the call and the brief asked for then: the person's
    # record is read ahead now, kept by the store's caches only (decided when it is asked for).
    if settings.launch_read_ahead:
        current_app.extensions["fhir_engine"].read_ahead(patient)
    url = app_launch_url(app_client.launch_url, settings.base_url, launch_id)
    return _json({"launch": launch_id, "iss": settings.base_url, "launch_url": url, "expires_in": 300}, 201, NO_STORE)


def app_launch_url(launch_url: str, iss: str, launch_id: str) -> str:
    """The app's launch URL with `iss` and `launch` (SMART App Launch, EHR launch)."""
    separator = "&" if "?" in launch_url else "?"
    return f"{launch_url}{separator}{urlencode({'iss': iss, 'launch': launch_id})}"


def _calling_backend(allowed: Callable[[Client], bool], why: str) -> Client:
    """The backend client behind the request's bearer token: 401 without a valid one, 403 for a
    user's token or a client that `allowed` refuses (`why` says why)."""
    server = _server()
    settings = current_app.config["GATEWAY_SETTINGS"]
    try:
        caller = requester_for(request.headers.get("Authorization"), server.tokens, settings.base_url)
    except FhirError as error:
        raise Refused(401, "invalid_token", str(error), error.headers) from None
    client = server.accounts.client(caller.client_id) if caller.client_id and not caller.username else None
    if client is None or not allowed(client):
        raise Refused(403, "insufficient_scope", why)
    return client


auth_api.register_error_handler(Refused, refused)


@auth_api.errorhandler(ScopeError)
def _scope_error(error: ScopeError) -> Response:
    return _json({"error": "invalid_scope", "error_description": str(error)}, 400)


@auth_api.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return _json(
        {"error": "server_error" if status >= 500 else "invalid_request", "error_description": error.description or ""},
        status,
    )
