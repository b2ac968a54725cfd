"""The compliance console: server-rendered pages for compliance officers (issue 16).

Signed in at the gateway (`/auth/login`, the same sign-in as app authorisation) as a user whose
role is `compliance-officer` and who has a second factor (TOTP); idle sign-out as the gateway's
sessions have it (`session_idle_minutes`). Every page with patient data is decided and audited
like any report (`compliance_api.decided_rows`: the rows go through the consent engine and the
page's one audit record commits before it is shown), and is `no-store`.

- GET  /console/                         the dashboard: open reviews, alerts, consents needing care
- GET  /console/patient?patient=<id>     one person: consents and where each stands, disclosures
                                         (42 CFR 2.25, three years), the 2.24 list, emergency accesses
- GET  /console/patient/disclosures.csv  the same disclosures as a spreadsheet
- GET  /console/reviews                  emergency accesses awaiting review
- POST /console/reviews/<seq>            sign one off, with what the review found
- POST /console/audit/verify             check the audit trail's hash chains now
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from gateway.consent.audit import ACCOUNTING_PERIOD, AuditLog
from gateway.fhir.dates import utc_now
from gateway.fhir.validation import ID_PATTERN
from gateway.http.auth_api import csrf_token, signed_in_user, valid_csrf
from gateway.http.compliance_api import (
    Row,
    alert_key,
    alert_rows,
    consent_key,
    consent_rows,
    csv_response,
    decided_rows,
    disclosure_key,
    ledger_rows,
    record_review,
    review_key,
    review_rows,
)

console = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
OFFICER = "compliance-officer"
NO_STORE = {"Cache-Control": "no-store"}
EXPIRING_DAYS = 30


@console.before_request
def _officer_only() -> Response | None:
    user = signed_in_user()
    if user is None:
        return redirect(url_for("auth_api.login", next=request.full_path.rstrip("?")), 303)
    if user.role != OFFICER:
        return _page("console_message.html", 403, title="For compliance officers",
                     message="The compliance console is for compliance officers. Your role is "
                             f"{user.role}.")  # fmt: skip
    if not user.totp_secret:
        return _page("console_message.html", 403, title="A second factor is needed",
                     message="Compliance officers sign in with a password and a one-time code. Ask your "
                             "administrator to give your account a second factor (gateway user add --totp).")  # fmt: skip
    g.officer = user
    return None


def _page(template: str, status: int = 200, **values: Any) -> Response:
    body = render_template(template, csrf_token=csrf_token(), officer=getattr(g, "officer", None), **values)
    return Response(body, status=status, headers=NO_STORE)


def _now() -> datetime:
    return utc_now(current_app.extensions["fhir_engine"].store.clock)


@console.get("/")
def dashboard() -> Response:
    now = _now()
    by_kind = {"review": review_key, "alert": alert_key, "consent": consent_key}
    rows = [*({**r, "_kind": "review"} for r in review_rows("pending")),
            *({**r, "_kind": "alert"} for r in alert_rows(now - timedelta(days=EXPIRING_DAYS))),
            *({**r, "_kind": "consent"} for r in consent_rows())]  # fmt: skip
    shown = decided_rows(g.officer, rows, "console-dashboard", lambda r: by_kind[r["_kind"]](r), lambda r: r["patient"])
    reviews = [r for r in shown if r["_kind"] == "review"]
    alerts = [r for r in shown if r["_kind"] == "alert"]
    consents = [r for r in shown if r["_kind"] == "consent"]
    soon = f"{now + timedelta(days=EXPIRING_DAYS):%Y-%m-%d}"
    today = f"{now:%Y-%m-%d}"
    return _page(
        "console_dashboard.html",
        reviews=reviews,
        alerts=list(reversed(alerts))[:10],
        alert_counts=Counter(str(a["alert"]) for a in alerts).most_common(),
        flagged=[c for c in consents if c["standing"] == "not relied on"],
        expiring=[
            c for c in consents if c["standing"] == "in force" and c["expires"] and today <= c["expires"] <= soon
        ],
        standing_counts=Counter(str(c["standing"]) for c in consents).most_common(),
        days=EXPIRING_DAYS,
        verified=None,
    )


@console.post("/audit/verify")
def verify_audit() -> Response:
    if not valid_csrf():
        return redirect(url_for("console.dashboard"), 303)
    reports = AuditLog(current_app.extensions["database"]).verify()
    return _page("console_message.html", title="Audit trail", reports=reports,
                 message="Every audit record and every ledger row is chained to the one before it by its "
                         "hash; a change to any of them breaks the chain from there on.")  # fmt: skip


def _patient_reference() -> str | None:
    given = request.args.get("patient", "").strip().removeprefix("Patient/")
    return f"Patient/{given}" if given and ID_PATTERN.match(given) else None


def _disclosures(patient: str) -> list[Row]:
    return ledger_rows(patient, _now() - ACCOUNTING_PERIOD, False)


@console.get("/patient")
def patient() -> Response:
    reference = _patient_reference()
    if reference is None:
        return _page("console_patient.html", 400 if request.args.get("patient") else 200, patient=None,
                     error="Give the person's id, e.g. Patient/123." if request.args.get("patient") else None)  # fmt: skip
    by_kind = {"consent": consent_key, "disclosure": disclosure_key, "review": review_key}
    rows = [*({**r, "_kind": "consent"} for r in consent_rows(reference)),
            *({**r, "_kind": "disclosure"} for r in _disclosures(reference)),
            *({**r, "_kind": "review"} for r in review_rows("all") if r["patient"] == reference)]  # fmt: skip
    # The page's one audit record names the person (the request's patient parameter).
    shown = decided_rows(g.officer, rows, "console-patient", lambda r: by_kind[r["_kind"]](r), lambda r: r["patient"])
    disclosures = [r for r in shown if r["_kind"] == "disclosure"]
    return _page(
        "console_patient.html",
        patient=reference,
        names=_organization_names(r.get(k) for r in disclosures for k in ("recipient_organization", "discloser")),
        consents=[r for r in shown if r["_kind"] == "consent"],
        disclosures=list(reversed(disclosures)),
        intermediary=[r for r in disclosures if r.get("intermediary")],
        reviews=[r for r in shown if r["_kind"] == "review"],
    )


def _organization_names(references: Any) -> dict[str, str]:
    """Organization references as the names an officer knows them by (the reference itself when
    the gateway has no such Organization)."""
    wanted = {r for r in references if isinstance(r, str) and r.startswith("Organization/")}
    names: dict[str, str] = {}
    with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
        for reference in wanted:
            found = repository.read("Organization", reference.removeprefix("Organization/"))
            name = (found.content or {}).get("name") if found is not None and not found.deleted else None
            names[reference] = name if isinstance(name, str) and name else reference
    return names


@console.get("/patient/disclosures.csv")
def patient_disclosures_csv() -> Response:
    reference = _patient_reference()
    if reference is None:
        return _page("console_message.html", 400, title="Which person?", message="Give the person's id.")
    rows = decided_rows(g.officer, _disclosures(reference), "disclosures", disclosure_key, lambda r: r["patient"])
    return csv_response(rows, f"disclosures-{reference.removeprefix('Patient/')}")


@console.get("/reviews")
def reviews() -> Response:
    rows = decided_rows(g.officer, review_rows("pending"), "emergency-reviews", review_key, lambda r: r["patient"])
    return _page("console_reviews.html", reviews=rows, done=request.args.get("done"), error=None)


@console.post("/reviews/<int:seq>")
def sign_off(seq: int) -> Response:
    note = " ".join(request.form.get("note", "").split())[:1000]
    if not valid_csrf():
        return redirect(url_for("console.reviews"), 303)
    if not note:
        rows = decided_rows(g.officer, review_rows("pending"), "emergency-reviews", review_key, lambda r: r["patient"])
        return _page("console_reviews.html", 400, reviews=rows, done=None,
                     error="Say what the review found before signing it off.")  # fmt: skip
    if not record_review(g.officer, seq, note):
        return _page("console_message.html", 409, title="Already reviewed",
                     message="That emergency access is not awaiting review (someone may have signed it off).")  # fmt: skip
    return redirect(url_for("console.reviews", done=seq), 303)
