"""Pages for the gateway's operators (role `admin`), signed in at `/auth/login`:

- GET /operator/clients/<client_id>/conformance   an EHR's recent pushes: accepted or refused and
                          why, what was written with the labels applied
- GET /operator/sources   each source the gateway pulls from: its schedule, when it last
                          succeeded, whether it is failing and since when, its cursors, and the
                          resources refused on its last run with why (docs/pull.md)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from gateway.auth.accounts import User
from gateway.auth.conformance import conformance_report
from gateway.fhir.dates import utc_now
from gateway.http.auth_api import csrf_token, signed_in_user
from gateway.pull.sources import Sources

operator = Blueprint("operator", __name__, url_prefix="/operator", template_folder="templates")


def _operator() -> Any:
    """The signed-in operator, or the answer for anyone else (sign in; 403)."""
    user = signed_in_user()
    if user is None:
        return redirect(url_for("auth_api.login", next=request.full_path.rstrip("?")), 303)
    if user.role != "admin":
        body = render_template("console_message.html", title="For operators", csrf_token=csrf_token(), officer=None,
                               message=f"These pages are for the gateway's operators. Your role is {user.role}.")  # fmt: skip
        return Response(body, status=403, headers={"Cache-Control": "no-store"})
    return user


@operator.get("/clients/<client_id>/conformance")
def client_conformance(client_id: str) -> Response:
    user = _operator()
    if not isinstance(user, User):
        return user  # type: ignore[no-any-return]
    client = current_app.extensions["smart_server"].accounts.client(client_id)
    if client is None:
        return Response("no such client", 404, mimetype="text/plain")
    report = conformance_report(current_app.extensions["database"], client_id)
    body = render_template(
        "operator_conformance.html", client=client, report=report, user=user, csrf_token=csrf_token()
    )
    return Response(body, headers={"Cache-Control": "no-store"})


@operator.get("/sources")
def sources() -> Response:
    user = _operator()
    if not isinstance(user, User):
        return user  # type: ignore[no-any-return]
    store = Sources(current_app.extensions["database"])
    rows: list[dict[str, Any]] = []
    for source in store.all():
        failing = source.last_error_at is not None and (
            source.last_success_at is None or source.last_error_at > source.last_success_at
        )
        rows.append({"source": source, "failing": failing,
                     "cursors": {t: store.cursor(source.source_id, t) for t in source.resource_types}})  # fmt: skip
    now = utc_now(current_app.extensions["clock"])
    for row in rows:
        lag = row["source"].lag(now)
        row["lag"] = f"{int(lag.total_seconds() // 60)} min" if lag is not None else "never pulled"
    body = render_template("operator_sources.html", rows=rows, csrf_token=csrf_token(), user=user)
    return Response(body, headers={"Cache-Control": "no-store"})
