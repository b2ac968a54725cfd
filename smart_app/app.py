"""The responder app: its own Flask application, a confidential SMART client of the gateway.

Routes:
- GET /            the start page: sign in, or (signed in) who you are and the launch context
- GET /login       standalone launch: to the gateway's authorize endpoint (PKCE, state)
- GET /launch      EHR (dispatch) launch: `iss` must be our gateway, `launch` is passed on
- GET /callback    the redirect URI: state checked, code exchanged (private_key_jwt)
- GET|POST /find   the search ($responder-match); POST /person/<id>/confirm: "this is the person"
- GET /person/<id> the brief ($responder-brief)
- GET|POST /emergency, POST /emergency/end   emergency access (medical personnel): its nature,
                   what it releases, its window
- GET|POST /person/<id>/outcome   after the call: disposition and note, written back by the gateway
- POST /logout     revokes the grant at the gateway and ends the session

Tokens never reach the browser: its cookie names a server-side session (sessions.py).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask, g, redirect, render_template, request, session
from werkzeug.wrappers import Response

from mappings.outcome import DISPOSITIONS, MAX_NOTE
from smart_app.fhir import FhirApi, FhirError, Purpose
from smart_app.sessions import SessionStore
from smart_app.settings import AppSettings
from smart_app.smart import SmartClient, SmartError, Tokens, pkce_pair

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # every page may carry patient data or a session's state
}


def create_app(settings: AppSettings | None = None) -> Flask:
    settings = settings or AppSettings()
    app = Flask("smart_app", static_folder=str(Path(__file__).parent / "static"))
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME="responder_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # the gateway's redirect back is a top-level GET
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    client = SmartClient(settings.fhir_base_url, settings.client_id, Path(settings.private_key_file),
                         settings.redirect_uri)  # fmt: skip

    def revoke_idle(data: dict[str, Any]) -> None:  # an idle session's grant ends with it
        if data.get("tokens"):
            client.revoke(Tokens.from_dict(data["tokens"]))

    store = SessionStore(settings.database_url, settings.session_idle_minutes * 60, revoke_idle)
    app.extensions["smart_app"] = (settings, store, client)

    @app.before_request
    def _load_session() -> None:
        session_id = session.get("sid")
        g.data = store.load(session_id) if isinstance(session_id, str) else None
        if g.data is None:
            session.pop("sid", None)

    @app.context_processor
    def _every_page() -> dict[str, Any]:
        """What every page shows: who is signed in, the emergency window while it lasts, and what
        the idle sign-out (static/idle.js) needs."""
        tokens = Tokens.from_dict(g.data["tokens"]) if g.data and g.data.get("tokens") else None
        return {"emergency": _emergency(), "user": tokens, "idle_seconds": settings.session_idle_minutes * 60,
                "csrf": (g.data or {}).get("csrf")}  # fmt: skip

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def begin(launch: str | None) -> Response:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        session["sid"] = store.create({"state": state, "verifier": verifier})
        try:
            scope = f"launch launch/patient {settings.scope}" if launch else settings.scope
            return redirect(client.authorize_url(state, challenge, scope, launch), 303)
        except SmartError as error:
            return _page("problem.html", 502, message=str(error))

    @app.get("/")
    def home() -> Response:
        tokens = _tokens()
        if tokens is None:
            return _page("start.html", 200)
        return _page("home.html", 200, tokens=tokens, csrf=g.data.get("csrf"))

    @app.get("/login")
    def login() -> Response:
        return begin(None)

    @app.get("/launch")
    def launch() -> Response:
        if request.args.get("iss", "").rstrip("/") != settings.fhir_base_url or not request.args.get("launch"):
            return _page("problem.html", 400, message="This launch did not come from the gateway this app serves.")
        return begin(request.args["launch"])

    @app.get("/callback")
    def callback() -> Response:
        data = g.data or {}
        state = request.args.get("state", "")
        if not data.get("state") or not hmac.compare_digest(str(data["state"]), state):
            return _page("problem.html", 400, message="This sign-in expired or did not start here. Sign in again.")
        if request.args.get("error"):
            store.end(str(session.pop("sid")))
            if request.args["error"] == "access_denied":
                return _page("problem.html", 403, message="Access was not allowed at the gateway.")
            why = request.args.get("error_description") or request.args["error"]
            return _page("problem.html", 502, message=f"The gateway could not sign you in: {why}")
        try:
            tokens = client.exchange(request.args.get("code", ""), str(data["verifier"]))
        except SmartError as error:
            return _page("problem.html", 502, message=str(error))
        # A fresh session id once signed in: the one that carried the state is spent.
        store.end(str(session["sid"]))
        session["sid"] = store.create({"tokens": tokens.as_dict(), "csrf": secrets.token_urlsafe(24)})
        # A dispatch launch opens straight onto its person's brief; a standalone one, the search.
        return redirect(f"/person/{tokens.patient}" if tokens.patient else "/find", 303)

    @app.get("/find")
    def find() -> Response:
        if _tokens() is None:
            return redirect("/", 303)
        return _page("find.html", 200, csrf=g.data.get("csrf"), form={}, purposes=PURPOSES, candidates=None)

    def _emergency() -> dict[str, Any] | None:
        """The emergency window, while it lasts: its nature and the minutes left."""
        found = (g.data or {}).get("emergency")
        if not isinstance(found, dict) or float(found.get("until", 0)) <= time.time():
            return None
        left = float(found["until"]) - time.time()
        return {"nature": str(found["nature"]), "until": float(found["until"]), "minutes": int(left // 60) + 1,
                "seconds": int(left)}  # fmt: skip

    def _purpose() -> Purpose:
        emergency = _emergency()
        return Purpose(str(g.data.get("purpose") or "TREAT"), emergency["nature"] if emergency else None)

    @app.get("/emergency")
    def emergency_form() -> Response:
        tokens = _tokens()
        if tokens is None:
            return redirect("/", 303)
        if not tokens.medical_personnel:
            return _page("problem.html", 403, message=NOT_MEDICAL)
        person = request.args.get("person", "")
        return _page("emergency.html", 200, csrf=g.data.get("csrf"), minutes=settings.emergency_minutes,
                     person=person if PATIENT_ID.match(person) else "")  # fmt: skip

    @app.post("/emergency")
    def emergency_start() -> Response:
        tokens = _tokens()
        if tokens is None or not _csrf_ok():
            return redirect("/", 303)
        if not tokens.medical_personnel:
            return _page("problem.html", 403, message=NOT_MEDICAL)
        nature = " ".join(request.form.get("nature", "").split())[:200]
        person = request.form.get("person", "")
        person = person if PATIENT_ID.match(person) else ""
        if len(nature) < 3:
            return _page("emergency.html", 400, csrf=g.data.get("csrf"), minutes=settings.emergency_minutes,
                         person=person, error="Say what the emergency is.")  # fmt: skip
        g.data["emergency"] = {"nature": nature, "until": time.time() + settings.emergency_minutes * 60}
        store.save(str(session["sid"]), g.data)
        return redirect(f"/person/{person}" if person else "/find", 303)

    @app.post("/emergency/end")
    def emergency_end() -> Response:
        if _tokens() is None or not _csrf_ok():
            return redirect("/", 303)
        g.data.pop("emergency", None)
        store.save(str(session["sid"]), g.data)
        return redirect("/find", 303)

    @app.post("/find")
    def find_results() -> Response:
        tokens = _tokens()
        if tokens is None:
            return redirect("/", 303)
        if not _csrf_ok():
            return _page("problem.html", 400, message="The form expired. Search again.")
        form = {k: request.form.get(k, "").strip()[:100] for k in ("name", "nickname", "age", "birth_date", "phone",
                                                                   "address", "purpose")}  # fmt: skip
        purpose = form["purpose"] if form["purpose"] in dict(PURPOSES) else "TREAT"
        description = _description(form)
        if not any(description.get(k) for k in ("given", "family", "nickname", "phone")):
            return _page("find.html", 400, csrf=g.data.get("csrf"), form=form, purposes=PURPOSES, candidates=None,
                         error="Give a name, a nickname or a phone number.")  # fmt: skip
        try:
            g.data["purpose"] = purpose
            candidates = FhirApi(settings.fhir_base_url, tokens.access_token).match(_purpose(), description)
        except FhirError as error:
            if error.status < 500:  # what was typed (a birth date that is not one, say): say so on the form
                return _page("find.html", 400, csrf=g.data.get("csrf"), form=form, purposes=PURPOSES,
                             candidates=None, error=f"Check the search: {error}")  # fmt: skip
            return _page("problem.html", 502, message=f"The search did not work: {error}")
        # A `certain` grade opens the brief directly; `probable` and `possible` need the responder's word.
        g.data["certain"] = [c.patient_id for c in candidates if c.grade == "certain"]
        store.save(str(session["sid"]), g.data)
        return _page("find.html", 200, csrf=g.data.get("csrf"), form=form, purposes=PURPOSES, candidates=candidates)

    @app.post("/person/<patient_id>/confirm")
    def confirm(patient_id: str) -> Response:
        if _tokens() is None or not _csrf_ok():
            return redirect("/", 303)
        if not PATIENT_ID.match(patient_id):
            return _page("not_found.html", 404)
        g.data.setdefault("confirmed", []).append(patient_id)
        store.save(str(session["sid"]), g.data)
        return redirect(f"/person/{patient_id}", 303)

    @app.get("/person/<patient_id>")
    def person(patient_id: str) -> Response:
        tokens = _tokens()
        if tokens is None:
            return redirect("/", 303)
        if not PATIENT_ID.match(patient_id):  # it goes into the gateway's URL: a FHIR id or nothing
            return _page("not_found.html", 404)
        confirmed = patient_id in g.data.get("confirmed", []) or patient_id == tokens.patient
        if not confirmed and patient_id not in g.data.get("certain", []):
            return _page("problem.html", 400, message="Confirm who this is before the brief opens: search again.")
        try:
            brief = FhirApi(settings.fhir_base_url, tokens.access_token).brief(patient_id, _purpose(), confirmed)
        except FhirError as error:
            return _page("problem.html", 502, message=f"The brief could not be loaded: {error}")
        if brief is None:  # nothing on file, or nothing this responder may see: the same words
            return _page("not_found.html", 404, person=patient_id)
        return _page("brief.html", 200, brief=brief, csrf=g.data.get("csrf"), person=patient_id)

    @app.route("/person/<patient_id>/outcome", methods=["GET", "POST"])
    def outcome(patient_id: str) -> Response:
        tokens = _tokens()
        if tokens is None or (request.method == "POST" and not _csrf_ok()):
            return redirect("/", 303)
        if not PATIENT_ID.match(patient_id):
            return _page("not_found.html", 404)
        if not tokens.treating_role:
            return _page("problem.html", 403, message="Outcomes are recorded by the treating members of the team.")
        form = {"disposition": request.form.get("disposition", ""), "note": request.form.get("note", "")[:MAX_NOTE]}
        values = {"csrf": g.data.get("csrf"), "person": patient_id, "dispositions": DISPOSITIONS, "form": form}
        if request.method == "GET":
            return _page("outcome.html", 200, **values)
        if form["disposition"] not in DISPOSITIONS:
            return _page("outcome.html", 400, **values, error="Pick what happened.")
        try:
            told = FhirApi(settings.fhir_base_url, tokens.access_token).record_outcome(
                patient_id, form["disposition"], form["note"]
            )
        except FhirError as error:
            return _page("outcome.html", 400 if error.status < 500 else 502, **values,
                         error=f"The outcome was not recorded: {error}")  # fmt: skip
        return _page("outcome_done.html", 200, told=told, disposition=DISPOSITIONS[form["disposition"]],
                     csrf=g.data.get("csrf"))  # fmt: skip

    def _csrf_ok() -> bool:
        expected = (g.data or {}).get("csrf")
        return bool(expected) and hmac.compare_digest(str(expected), request.form.get("csrf", ""))

    @app.post("/still-here")
    def still_here() -> Response:
        """The idle timer's keep-alive (idle.js): the session's clock restarts; nothing else."""
        expected = (g.data or {}).get("csrf")
        if not expected or not hmac.compare_digest(str(expected), request.headers.get("X-CSRF-Token", "")):
            return Response(status=403)
        store.save(str(session["sid"]), g.data)
        return Response(status=204)

    @app.post("/logout")
    def logout() -> Response:
        data = g.data or {}
        if data.get("csrf") and hmac.compare_digest(str(data["csrf"]), request.form.get("csrf", "")):
            if data.get("tokens"):
                client.revoke(Tokens.from_dict(data["tokens"]))
            store.end(str(session.pop("sid")))
        return redirect("/", 303)

    def _tokens() -> Tokens | None:
        """The session's tokens, refreshed when they are about to expire; None: not signed in."""
        data = g.data
        if not data or not data.get("tokens"):
            return None
        tokens = Tokens.from_dict(data["tokens"])
        if tokens.expires_at - time.time() < settings.refresh_margin_seconds:
            try:
                tokens = client.refresh(tokens)
            except SmartError:
                store.end(str(session.pop("sid")))  # the grant ended (sign-out elsewhere, idle): sign in again
                return None
            data["tokens"] = tokens.as_dict()
        store.save(str(session["sid"]), data)  # the session stays alive while it is used
        return tokens

    return app


PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
NOT_MEDICAL = "Emergency access is for medical personnel only (42 CFR 2.51)."
PURPOSES = [("TREAT", "Treatment (crisis response)"), ("crisis-coordination", "Crisis care coordination")]


def _description(form: dict[str, str]) -> dict[str, Any]:
    """The search form as $responder-match parameters: a name split into given and family, an
    age or a birth date, a phone, a place."""
    words = form["name"].split()
    description: dict[str, Any] = {"nickname": form["nickname"], "phone": form["phone"], "address": form["address"],
                                   "birthDate": form["birth_date"]}  # fmt: skip
    if len(words) == 1:
        description["given"] = words[0]
    elif words:
        description["given"], description["family"] = " ".join(words[:-1]), words[-1]
    if form["age"].isdigit() and 0 < int(form["age"]) < 130:
        description["age"] = int(form["age"])
    return description


def _page(template: str, status: int, **values: Any) -> Response:
    return Response(render_template(template, **values), status=status, mimetype="text/html")
