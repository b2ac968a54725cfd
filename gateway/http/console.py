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
- GET  /console/consents/new[?kind=]     take in a signed consent: a template, then its form
- POST /console/consents/new             save it, or say what is missing (each 42 CFR 2.31 element)
- POST /console/consents/<id>/revoke     revoke from an effective time
- GET|POST /console/orders/new           register a court order (42 CFR 2.61-2.67), or say what it lacks
- GET|POST /console/recipients/new       register a one-off recipient (an organization a consent names)
- GET  /console/requests, POST /console/subpoenas/<receipt>   the subpoena queue; police and legal requests
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from consent_engine.fhir import consent_from_fhir, order_from_fhir, parse_datetime, patient_facts
from consent_engine.signers import problems_at
from gateway.auth.accounts import User
from gateway.auth.roles import role as known_role
from gateway.consent.audit import ACCOUNTING_PERIOD, AuditLog
from gateway.consent.inputs import is_provider
from gateway.consent.oversight import (
    PROBABLE_VIEWS_FLAGGED,
    lookups_without_dispatch,
    part2_coverage,
    probable_match_views,
)
from gateway.consent.package import build_package
from gateway.fhir.context import FhirRequest, Requester
from gateway.fhir.dates import instant, utc_now
from gateway.fhir.errors import FhirError
from gateway.fhir.everything import patient_record
from gateway.fhir.ids import new_id
from gateway.fhir.repository import Repository
from gateway.fhir.search import parse_search
from gateway.fhir.validation import ID_PATTERN
from gateway.http.auth_api import csrf_token, signed_in_user, valid_csrf
from gateway.http.compliance_api import (
    HIPAA_ACCOUNTING_PERIOD,
    Row,
    alert_key,
    alert_rows,
    answer_subpoena_with,
    consent_key,
    consent_rows,
    csv_response,
    decided_rows,
    disclosure_key,
    hipaa_accounting_rows,
    hipaa_key,
    ledger_rows,
    record_request_decision,
    record_review,
    request_rows,
    review_key,
    review_rows,
    subpoena_key,
    subpoena_rows,
)
from gateway.http.letters import disclosure_letter
from mappings import consent_form
from mappings.brief import display_name
from mappings.consent_form import consent_resource, court_order_resource, recipient_class, revoked

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
    watch = _watched(now - timedelta(days=EXPIRING_DAYS), now)
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
        awaiting=len([r for r in request_rows(now - timedelta(days=90)) if not r["decision"]]),
        verified=None,
        **watch,
    )


def _watched(since: datetime, now: datetime) -> dict[str, Any]:
    """The dashboard's patterns (gateway.consent.oversight), decided and audited like its other rows."""
    engine = current_app.extensions["fhir_engine"]
    server = current_app.extensions["smart_server"]
    teams = frozenset(u.organization for u in server.accounts.users() if u.organization and u.treating)
    with engine.store.unit_of_work(False) as (repository, _):
        probable = probable_match_views(repository.connection, since)
        undispatched = lookups_without_dispatch(repository.connection, repository, since)
        coverage = part2_coverage(repository, engine.config.base_url, server.accounts.part2_programs(), teams, now)
    rows = [*({**r, "_kind": "undispatched"} for r in undispatched)]
    shown = decided_rows(
        g.officer, rows, "console-oversight", lambda r: f"AuditEvent/{r['seq']}", lambda r: r["patient"]
    )
    names = _organization_names([c["program"] for c in coverage] + [r["organization"] for r in shown])
    return {
        "probable": probable,
        "undispatched": shown[:20],
        "coverage": coverage,
        "names": names,
        "probable_threshold": PROBABLE_VIEWS_FLAGGED,
    }


@console.post("/audit/verify")
def verify_audit() -> Response:
    if not valid_csrf():
        return redirect(url_for("console.dashboard"), 303)
    reports = AuditLog(current_app.extensions["database"]).verify()
    return _page("console_message.html", title="Audit trail", reports=reports,
                 message="Every audit record and every ledger row is chained to the one before it by its "
                         "hash; a change to any of them breaks the chain from there on.")  # fmt: skip


@console.get("/audit/package")
def audit_package() -> Response:
    """One person's or one period's audit records and ledger rows with their hash-chain proof, as
    a file an auditor checks offline (`gateway audit verify --file`)."""
    reference = _patient_reference()
    errors: list[str] = []
    since = _day_argument("since", errors)
    until = _day_argument("until", errors)
    if request.args.get("patient") and reference is None:
        errors.append("Give the person's id, e.g. Patient/123.")
    if errors or not (reference or since or until):
        return _page("console_message.html", 400, title="Which records?",
                     message=" ".join(errors) or "Give a person, a period, or both.")  # fmt: skip
    database = current_app.extensions["database"]
    with database.connect() as connection:
        package = build_package(connection, reference, since, until, _now())
    # The package carries patient data (the records' bodies): its release is decided and audited
    # like any report, by the patients it names.
    events = package["chains"]["audit_event"]["rows"]
    rows = [{"seq": r["seq"], "patient": r["content"].get("patient")} for r in events]
    released = decided_rows(
        g.officer, rows, "audit-package", lambda r: f"AuditEvent/{r['seq']}", lambda r: r["patient"]
    )
    if len(released) != len(rows):  # all or nothing: a package with holes would not verify anyway
        return _page("console_message.html", 403, title="Not yours to export",
                     message="Some of these records may not be released to you; ask for a narrower package.")  # fmt: skip
    name = "-".join(p for p in ("audit-package", (reference or "").removeprefix("Patient/"),
                                request.args.get("since", ""), request.args.get("until", "")) if p)  # fmt: skip
    body = orjson.dumps(package, option=orjson.OPT_INDENT_2)
    return Response(body, mimetype="application/json",
                    headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.json"'})  # fmt: skip


def _day_argument(name: str, errors: list[str]) -> datetime | None:
    given = request.args.get(name, "").strip()
    if not given:
        return None
    found = parse_datetime(given) if len(given) == 10 else None
    if found is None:
        errors.append(f"{name} must be a date (YYYY-MM-DD).")
    return found


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
    by_kind = {
        "consent": consent_key,
        "disclosure": disclosure_key,
        "review": review_key,
        "hipaa": hipaa_key,
        "alert": alert_key,
    }
    rows = [*({**r, "_kind": "consent"} for r in consent_rows(reference)),
            *({**r, "_kind": "disclosure"} for r in _disclosures(reference)),
            *({**r, "_kind": "hipaa"} for r in hipaa_accounting_rows(reference, _now() - HIPAA_ACCOUNTING_PERIOD)),
            *({**r, "_kind": "alert"} for r in alert_rows(_now() - ACCOUNTING_PERIOD, reference)),
            *({**r, "_kind": "review"} for r in review_rows("all") if r["patient"] == reference)]  # fmt: skip
    # The page's one audit record names the person (the request's patient parameter).
    shown = decided_rows(g.officer, rows, "console-patient", lambda r: by_kind[r["_kind"]](r), lambda r: r["patient"])
    disclosures = [r for r in shown if r["_kind"] == "disclosure"]
    treating, police = _preview_organizations(reference.removeprefix("Patient/"))
    return _page(
        "console_patient.html",
        patient=reference,
        preview=_who_can_see(reference.removeprefix("Patient/"), treating, police, None),
        treating=treating,
        police=police,
        providers=_organizations(True),
        departments=_organizations(False),
        names=_organization_names(r.get(k) for r in shown for k in ("recipient_organization", "discloser")),
        accounting=[r for r in shown if r["_kind"] == "hipaa"],
        alerts=list(reversed([r for r in shown if r["_kind"] == "alert"])),
        consents=[r for r in shown if r["_kind"] == "consent"],
        disclosures=list(reversed(disclosures)),
        intermediary=[r for r in disclosures if r.get("intermediary")],
        reviews=[r for r in shown if r["_kind"] == "review"],
        saved=_consent_reference(request.args.get("saved")),
        revoked=_consent_reference(request.args.get("revoked")),
    )


def _consent_reference(value: str | None) -> str | None:
    """A Consent reference from the page's own redirect, shown back only when it is one."""
    return value if value and value.startswith("Consent/") and ID_PATTERN.match(value[8:]) else None


def _organization_names(references: Any) -> dict[str, str]:
    """Organization references as the names an officer knows them by (the reference itself when
    the gateway has no such Organization)."""
    wanted = {r for r in references if isinstance(r, str) and r.startswith("Organization/")}
    names: dict[str, str] = {}
    with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
        repository.existing([("Organization", r.removeprefix("Organization/")) for r in wanted])  # one query
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


@console.get("/patient/disclosures.pdf")
def patient_disclosures_pdf() -> Response:
    """The same list as a letter to the person (42 CFR 2.25), PDF."""
    reference = _patient_reference()
    if reference is None:
        return _page("console_message.html", 400, title="Which person?", message="Give the person's id.")
    now = _now()
    rows = decided_rows(g.officer, _disclosures(reference), "disclosures", disclosure_key, lambda r: r["patient"])
    names = _organization_names(r.get(k) for r in rows for k in ("recipient_organization", "discloser"))
    with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
        found = repository.read("Patient", reference.removeprefix("Patient/"))
    person = display_name(found.content if found is not None and not found.deleted else None, "the person")
    policy = current_app.extensions["consent_release"].policy
    letter = disclosure_letter(person, reference, list(reversed(rows)), names, now - ACCOUNTING_PERIOD, now,
                               g.officer.display_name, policy.gateway_name)  # fmt: skip
    filename = f"disclosures-{reference.removeprefix('Patient/')}.pdf"
    return Response(letter, mimetype="application/pdf", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


# -- orders and requests ---------------------------------------------------------------------------
@console.get("/requests")
def requests_queue() -> Response:
    """Subpoenas awaiting an answer, and the police and legal requests of the last 90 days with
    the decisions recorded on them."""
    subpoenas = decided_rows(g.officer, subpoena_rows("pending"), "subpoenas", subpoena_key, lambda r: None)
    rows = request_rows(_now() - timedelta(days=90))
    shown = decided_rows(g.officer, rows, "requests", alert_key, lambda r: r["patient"])
    return _page("console_requests.html", subpoenas=subpoenas, requests=shown, done=request.args.get("done"),
                 decided=request.args.get("decided"), error=None)  # fmt: skip


@console.post("/requests/<int:seq>")
def decide_request(seq: int) -> Response:
    return _noted(lambda note: record_request_decision(g.officer, seq, note),
                  ("What did you decide?", "Say what was decided (no action, a consent asked for, a court order needed, ...)."),
                  ("Already decided", "That request is not awaiting a decision."), decided=seq)  # fmt: skip


def _noted(record: Any, missing: tuple[str, str], taken: tuple[str, str], **done: Any) -> Response:
    """An officer's note on a queue item (an answer, a decision): CSRF, a note, recorded once."""
    note = " ".join(request.form.get("note", "").split())[:1000]
    if not valid_csrf():
        return redirect(url_for("console.requests_queue"), 303)
    if not note:
        return _page("console_message.html", 400, title=missing[0], message=missing[1])
    if not record(note):
        return _page("console_message.html", 409, title=taken[0], message=taken[1])
    return redirect(url_for("console.requests_queue", **done), 303)


@console.get("/subpoenas/<receipt>/document")
def subpoena_document(receipt: str) -> Response:
    """The subpoena as submitted (a PDF or an image), to read before answering it."""
    found = [r for r in subpoena_rows("all", with_documents=True) if r["receipt"] == receipt]
    if not found:
        return _page("console_message.html", 404, title="No such subpoena", message="That receipt is not on file.")
    row = decided_rows(g.officer, found, "subpoena-document", subpoena_key, lambda r: None)[0]
    return Response(base64.b64decode(row["document"]), mimetype=str(row["contentType"]), headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="subpoena-{receipt}"'})  # fmt: skip


@console.post("/subpoenas/<receipt>")
def answer_subpoena(receipt: str) -> Response:
    return _noted(lambda note: answer_subpoena_with(g.officer, receipt, note),
                  ("How was it answered?", "Say how the subpoena was answered (an objection, a request for a court order, ...)."),
                  ("Already answered", "That subpoena is not awaiting an answer."), done=receipt)  # fmt: skip


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


# -- consent intake ------------------------------------------------------------------------------
def _officer_writer(user: User) -> Requester:
    """The officer as the writer of Consents: through the router, labelled, versioned, audited."""
    return Requester(source=f"user:{user.username}", username=user.username, role=user.role,
                     organization=user.organization, scopes=("user/Consent.cru",))  # fmt: skip


def _stored(resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The stored resources of a type as (reference, name, content), by name: what a form may
    name. Read once per request, however many lists the page shows."""
    cache: dict[str, list[tuple[str, str, dict[str, Any]]]] = g.setdefault("stored", {})
    if resource_type not in cache:
        settings = current_app.config["GATEWAY_SETTINGS"]
        query = parse_search(resource_type, [("_count", "1000")], base_url=settings.base_url, strict=True,
                             default_count=1000, max_count=1000)  # fmt: skip
        with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
            found, _ = repository.search(query)
        named = [(f"{resource_type}/{r.id}", display_name(r.content, r.id), r.content or {}) for r in found]
        cache[resource_type] = sorted(named, key=lambda item: item[1].lower())
    return cache[resource_type]


def _organizations(providers: bool | None = None) -> list[tuple[str, str]]:
    """Organizations as (reference, name); with `providers`, only health-care providers (True)
    or only the others (False)."""
    return [(r, n) for r, n, c in _stored("Organization") if providers is None or is_provider(c) == providers]


def _people() -> list[tuple[str, str]]:
    """Practitioners as (reference, name): individuals a consent may name."""
    return [(r, n) for r, n, _ in _stored("Practitioner")]


# -- who can see this person: the release function, nothing disclosed ----------------------------
# The responder roles previewed, each with the purpose it asks with and where it works.
PREVIEW_ROLES = (("crisis-clinician", "TREAT", "treating"), ("peer-specialist", "TREAT", "treating"),
                 ("ems", "TREAT", "treating"), ("ed-physician", "TREAT", "treating"),
                 ("dispatcher", "TREAT", "treating"), ("police-officer", "crisis-coordination", "police"))  # fmt: skip
CLASS_LABELS = {"DEMOGRAPHICS": "Who the person is", **consent_form.DATA_CLASSES}


def _who_can_see(patient_id: str, treating: str, police: str, candidate: dict[str, Any] | None) -> list[dict[str, Any]]:
    """For each responder role, what a brief of this person would release to someone of that
    role (of the treating organization, or of the police department) now: by kind of
    information, with how much is withheld. `candidate` is a consent not yet saved."""
    engine = current_app.extensions["fhir_engine"]
    door = current_app.extensions["consent_release"]
    rows = []
    with engine.store.unit_of_work(False) as (repository, now):
        record = [r.content for r in patient_record(repository, engine.config.base_url, patient_id) if r.content]
        if candidate is not None:
            record.append(candidate)
        for role, purpose, where in PREVIEW_ROLES:
            organization = police if where == "police" else treating
            recipient = door.inputs.person(repository, f"preview:{role}", role, role, organization)
            decided = door.simulate(recipient, purpose, patient_id, record, repository, now)
            shown = Counter(r.item.data_class for r in decided.released if not r.accompanies)
            rows.append({"role": role, "role_name": known_role(role).display, "purpose": purpose,
                         "organization": recipient.organization_name or organization,
                         "classes": [(CLASS_LABELS.get(c, c), n) for c, n in sorted(shown.items())],
                         "withheld": len(decided.withheld), "part2": decided.notice is not None})  # fmt: skip
    return rows


def _preview_organizations(patient_id: str, candidate: dict[str, Any] | None = None) -> tuple[str, str]:
    """Where the preview's people work: the treating organization asked for, else one a consent
    (the one being tried first) names as recipient, else the one whose crisis team is with the
    person now, else the first provider; and the police department asked for, else the first."""
    providers = [r for r, _ in _organizations(True)]
    police = [r for r, _ in _organizations(False)]
    treating = request.args.get("treating") or request.form.get("treating") or ""
    if treating not in providers:
        with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
            stored = [r.content for r in repository.compartment(patient_id, ["Encounter", "Consent"]) if r.content]
        named = [str((actor.get("reference") or {}).get("reference"))
                 for consent in ([candidate] if candidate else []) + [r for r in stored if r["resourceType"] == "Consent"]
                 for actor in (consent.get("provision") or {}).get("actor") or []]  # fmt: skip
        current = [str((e.get("serviceProvider") or {}).get("reference")) for e in stored
                   if e["resourceType"] == "Encounter" and e.get("status") == "in-progress"]  # fmt: skip
        treating = next((r for r in [*named, *current] if r in providers), providers[0] if providers else "")
    department = request.args.get("police") or request.form.get("police") or ""
    if department not in police:
        department = police[0] if police else ""
    return treating, department


def _intake_page(status: int, kind: str | None, form: dict[str, Any], errors: list[str] | None = None,
                 **preview: Any) -> Response:  # fmt: skip
    return _page("console_consent_form.html", status, kind=kind, form=form, errors=errors or [], **preview,
                 people=_people(),
                 providers=_organizations(True), departments=_organizations(False),
                 kinds=consent_form.KINDS, organizations=_organizations(), purposes=consent_form.PURPOSES,
                 classes=consent_form.DATA_CLASSES, recipient_classes=consent_form.RECIPIENT_CLASSES,
                 statements={k: consent_form.STATEMENTS[k][1] for k in consent_form.STATEMENTS_BY_KIND.get(kind or "", ())},
                 signer_roles=consent_form.SIGNER_ROLES, max_mb=consent_form.SIGNED_FORM_MAX_BYTES // (1024 * 1024))  # fmt: skip


@console.get("/consents/new")
def new_consent() -> Response:
    kind = request.args.get("kind")
    if kind not in consent_form.KINDS:
        return _page("console_consent_kinds.html", kinds=consent_form.KINDS, patient=request.args.get("patient", ""),
                     supersedes=request.args.get("supersedes", ""))  # fmt: skip
    template = consent_form.TEMPLATES[kind]
    form = {"patient": request.args.get("patient", ""), "supersedes": request.args.get("supersedes", ""),
            "disclosers": [g.officer.organization] if g.officer.organization else [], "recipients": [],
            "recipient_classes": list(template.recipient_classes), "purposes": list(template.purposes),
            "classes": list(template.classes), "statements": [], "end_of_treatment": bool(template.expiry_event),
            "signer_role": "patient", "signer": "", "signed": "", "expires": "", "intermediary": ""}  # fmt: skip
    return _intake_page(200, kind, form)


def _form_values() -> dict[str, Any]:
    lists = ("disclosers", "recipients", "recipient_classes", "purposes", "classes", "statements")
    values: dict[str, Any] = {name: request.form.getlist(name) for name in lists}
    for name in ("patient", "supersedes", "signer_role", "signer", "signed", "expires", "intermediary"):
        values[name] = request.form.get(name, "").strip()[:200]
    values["end_of_treatment"] = request.form.get("end_of_treatment") == "yes"
    return values


def _signed_form(errors: list[str]) -> dict[str, Any] | None:
    """The uploaded signed form as a FHIR Attachment: a PDF, at most SIGNED_FORM_MAX_BYTES."""
    upload = request.files.get("signed_form")
    if upload is None or not upload.filename:
        return None
    data = upload.stream.read(consent_form.SIGNED_FORM_MAX_BYTES + 1)
    if len(data) > consent_form.SIGNED_FORM_MAX_BYTES:
        errors.append(f"The signed form is larger than {consent_form.SIGNED_FORM_MAX_BYTES // (1024 * 1024)} MB.")
        return None
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        errors.append("The signed form must be a PDF file (a scan saved as PDF).")
        return None
    return {"contentType": "application/pdf", "data": base64.b64encode(data).decode(), "size": len(data),
            "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),  # FHIR Attachment.hash is SHA-1
            "title": "".join(c for c in upload.filename if c.isprintable())[:100]}  # fmt: skip


def _day(value: str, label: str, errors: list[str]) -> str | None:
    if not value:
        return None
    if parse_datetime(value) is None or len(value) != 10:
        errors.append(f"{label} must be a date (YYYY-MM-DD).")
        return None
    return value


@console.post("/consents/new")
def save_consent() -> Response:
    kind = request.form.get("kind", "")
    if kind not in consent_form.KINDS or not valid_csrf():
        return redirect(url_for("console.new_consent"), 303)
    form = _form_values()
    errors: list[str] = []
    patient_id = form["patient"].removeprefix("Patient/")
    if not ID_PATTERN.match(patient_id):
        errors.append("Give the person's id, e.g. Patient/123 (2.31(a)(1)).")
    known = {reference for reference, _ in _organizations()}
    people = {reference for reference, _ in _people()}
    if [r for r in form["disclosers"] if r not in known] or [r for r in form["recipients"] if r not in known | people]:
        errors.append("Pick organizations from the lists.")
    signed = _day(form["signed"], "The date signed", errors)
    expires = _day(form["expires"], "The expiry date", errors)
    signer_role = form["signer_role"] if form["signer_role"] in consent_form.SIGNER_ROLES else "patient"
    signer = f"Patient/{patient_id}" if signer_role == "patient" else form["signer"]
    if signer_role != "patient" and not (signer.startswith(("RelatedPerson/", "Practitioner/")) and
                                         ID_PATTERN.match(signer.split("/", 1)[1])):  # fmt: skip
        errors.append("Give who signed for the person as RelatedPerson/<id> (a parent, guardian or representative).")
    attachment = _signed_form(errors)
    consent_id = new_id()
    elements: dict[str, Any] = dict(
        disclosers=form["disclosers"],
        recipients=[*({"reference": r} for r in form["recipients"]),
                    *(recipient_class(c) for c in form["recipient_classes"] if c in consent_form.RECIPIENT_CLASSES)],
        purposes=[p for p in form["purposes"] if p in consent_form.PURPOSES],
        classes=[c for c in form["classes"] if c in consent_form.DATA_CLASSES],
        deny=kind in consent_form.DENYING_KINDS,
        signers=[(signer, signer_role)] if signer else [],
        signed=f"{signed}T12:00:00Z" if signed else None,
        statements=tuple(s for s in form["statements"] if s in consent_form.STATEMENTS),
        expires=expires,
        expiry_event=consent_form.END_OF_TREATMENT if form["end_of_treatment"] else None,
        attachment=attachment,
        intermediary=form["intermediary"] if kind == "part2-intermediary" and form["intermediary"] in known else None,
    )  # fmt: skip
    resource = consent_resource(consent_id, f"Patient/{patient_id}", kind, **elements)
    if not errors:
        errors.extend(_missing_elements(resource, patient_id))
    if request.form.get("action") == "preview" and ID_PATTERN.match(patient_id):
        # "Try this consent": what each role would see with it, before anything is saved. Its
        # scope is previewed as if the paperwork were complete (a date, the statements, the form).
        treating, police = _preview_organizations(patient_id, resource)
        paperwork = {"signed": elements["signed"] or instant(_now()), "statements": None,
                     "expiry_event": elements["expiry_event"] or (None if elements["expires"] else
                                                                  consent_form.END_OF_TREATMENT),
                     "signers": elements["signers"] or [(f"Patient/{patient_id}", "patient")],
                     "attachment": attachment or {"contentType": "application/pdf", "url": "urn:preview"}}  # fmt: skip
        candidate = consent_resource(consent_id, f"Patient/{patient_id}", kind, **{**elements, **paperwork})
        # What each role would see is about the person: this view is decided and audited like any other.
        if decided_rows(g.officer, [{"consent": f"Consent/{consent_id}", "patient": f"Patient/{patient_id}"}],
                        "consent-preview", consent_key, lambda r: r["patient"]):  # fmt: skip
            return _intake_page(200, kind, form, errors, preview=_who_can_see(patient_id, treating, police, candidate),
                                treating=treating, police=police)  # fmt: skip
        return _intake_page(403, kind, form, ["The preview of this person may not be shown to you."])
    if errors:
        return _intake_page(400, kind, form, errors)
    supersedes = form["supersedes"].removeprefix("Consent/")

    def plan(repository: Repository, now: datetime) -> list[FhirRequest]:
        writer = _officer_writer(g.officer)
        writes = [FhirRequest("PUT", f"Consent/{consent_id}", body=resource, requester=writer,
                              headers={"prefer": "return=minimal"})]  # fmt: skip
        old = repository.read("Consent", supersedes) if ID_PATTERN.match(supersedes) else None
        if old is not None and not old.deleted and old.content:
            writes.append(FhirRequest("PUT", f"Consent/{supersedes}", requester=writer,
                                      body=revoked(old.content, instant(now), f"Consent/{consent_id}"),
                                      headers={"prefer": "return=minimal"}))  # fmt: skip
        return writes

    try:
        written = current_app.extensions["fhir_engine"].write_about_patient(patient_id, plan)
    except FhirError as error:
        return _intake_page(400, kind, form, [f"The gateway refused the consent: {error}"])
    if written is None:
        return _intake_page(400, kind, form, [f"No person Patient/{patient_id} is on file (2.31(a)(1))."])
    return redirect(url_for("console.patient", patient=f"Patient/{patient_id}", saved=f"Consent/{consent_id}"), 303)


def _missing_elements(resource: dict[str, Any], patient_id: str) -> list[str]:
    """Every 42 CFR 2.31 element (or 164.508 one) the consent lacks, and any signer who could not
    sign for this person: named before anything is saved."""
    consent = consent_from_fhir(resource)
    policy = current_app.extensions["consent_release"].policy
    with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, now):
        found = repository.read("Patient", patient_id)
        facts = patient_facts(found.content if found is not None and not found.deleted else None)
        return list(problems_at(consent, facts, policy, now))


@console.post("/consents/<consent_id>/revoke")
def revoke_consent(consent_id: str) -> Response:
    if not valid_csrf() or not ID_PATTERN.match(consent_id):
        return redirect(url_for("console.dashboard"), 303)
    given = request.form.get("effective", "").strip()
    effective = parse_datetime(given) if given else None
    if given and effective is None:
        return _page("console_message.html", 400, title="When?", message="The effective time must be a date and time.")
    with current_app.extensions["fhir_engine"].store.unit_of_work(False) as (repository, _):
        found = repository.read("Consent", consent_id)
    content = found.content if found is not None and not found.deleted else None
    patient_reference = str(((content or {}).get("patient") or {}).get("reference") or "")
    if content is None or not patient_reference.startswith("Patient/"):
        return _page("console_message.html", 404, title="No such consent", message="That consent is not on file.")

    def plan(repository: Repository, now: datetime) -> list[FhirRequest]:
        # From the time given (a revocation received yesterday, or one that takes effect later),
        # else now; decisions before it stand, decisions from it on no longer rely on the consent.
        at = instant(effective if effective is not None else now)
        return [FhirRequest("PUT", f"Consent/{consent_id}", body=revoked(content, at),
                            requester=_officer_writer(g.officer), headers={"prefer": "return=minimal"})]  # fmt: skip

    current_app.extensions["fhir_engine"].write_about_patient(patient_reference.removeprefix("Patient/"), plan)
    return redirect(url_for("console.patient", patient=patient_reference, revoked=f"Consent/{consent_id}"), 303)


# -- court orders ----------------------------------------------------------------------------------
def _order_page(status: int, form: dict[str, Any], errors: list[str] | None = None) -> Response:
    return _page("console_order_form.html", status, form=form, errors=errors or [], organizations=_organizations(),
                 sections=consent_form.ORDER_SECTIONS, purposes=consent_form.ORDER_PURPOSES,
                 grounds=consent_form.ORDER_GROUNDS, classes=consent_form.DATA_CLASSES,
                 max_mb=consent_form.SIGNED_FORM_MAX_BYTES // (1024 * 1024))  # fmt: skip


@console.get("/orders/new")
def new_order() -> Response:
    form = {"patient": request.args.get("patient", ""), "court": "", "section": "", "holders": [], "recipients": [],
            "purposes": ["legal-proceeding"], "classes": [], "issued": "", "expires": "", "findings": False,
            "notice": False, "confidential": False, "ground": ""}  # fmt: skip
    return _order_page(200, form)


@console.post("/orders/new")
def save_order() -> Response:
    if not valid_csrf():
        return redirect(url_for("console.new_order"), 303)
    form: dict[str, Any] = {
        name: request.form.getlist(name) for name in ("holders", "recipients", "purposes", "classes")
    }
    for name in ("patient", "court", "section", "issued", "expires", "ground"):
        form[name] = request.form.get(name, "").strip()[:200]
    for name in ("findings", "notice", "confidential"):
        form[name] = request.form.get(name) == "yes"
    errors: list[str] = []
    patient_id = form["patient"].removeprefix("Patient/")
    if not ID_PATTERN.match(patient_id):
        errors.append("Give the person's id, e.g. Patient/123.")
    known = {reference for reference, _ in _organizations()}
    if [r for r in (*form["holders"], *form["recipients"]) if r not in known]:
        errors.append("Pick organizations from the lists.")
    issued = _day(form["issued"], "The date of the order", errors)
    expires = _day(form["expires"], "The end of the order", errors)
    attachment = _signed_form(errors)
    order_id = new_id()
    order = court_order_resource(
        order_id, f"Patient/{patient_id}", court=form["court"],
        section=form["section"] if form["section"] in consent_form.ORDER_SECTIONS else None,
        holders=form["holders"], recipients=form["recipients"],
        purposes=[p for p in form["purposes"] if p in consent_form.ORDER_PURPOSES],
        classes=[c for c in form["classes"] if c in consent_form.DATA_CLASSES],
        issued=f"{issued}T12:00:00Z" if issued else None, expires=expires, findings=form["findings"],
        notice=form["notice"], confidential_communications=form["confidential"],
        ground=form["ground"] if form["ground"] in consent_form.ORDER_GROUNDS else None, attachment=attachment,
    )  # fmt: skip
    if not form["court"]:
        errors.append("Name the court and the case, as the order gives them.")
    if not errors:
        errors.extend(order_from_fhir(order).problems)
    if errors:
        return _order_page(400, form, errors)

    def plan(repository: Repository, now: datetime) -> list[FhirRequest]:
        return [FhirRequest("PUT", f"Consent/{order_id}", body=order, requester=_officer_writer(g.officer),
                            headers={"prefer": "return=minimal"})]  # fmt: skip

    try:
        written = current_app.extensions["fhir_engine"].write_about_patient(patient_id, plan)
    except FhirError as error:
        return _order_page(400, form, [f"The gateway refused the order: {error}"])
    if written is None:
        return _order_page(400, form, [f"No person Patient/{patient_id} is on file."])
    return redirect(url_for("console.patient", patient=f"Patient/{patient_id}", saved=f"Consent/{order_id}"), 303)


# -- one-off recipients ----------------------------------------------------------------------------
NPI = "http://hl7.org/fhir/sid/us-npi"


@console.route("/recipients/new", methods=["GET", "POST"])
def new_recipient() -> Response:
    """An organization a consent or an order names that the gateway does not know yet (a
    family-practice clinic, a court, an attorney's office): stored as an Organization, so that
    consents can name it and decisions can recognise it (by reference, or by its NPI)."""
    form = {name: request.form.get(name, "").strip()[:200] for name in ("name", "npi", "phone", "provider")}
    if request.method == "GET":
        return _page("console_recipient_form.html", form=form, errors=[])
    if not valid_csrf():
        return redirect(url_for("console.new_recipient"), 303)
    errors = []
    if len(form["name"]) < 3 or not form["name"].isprintable():
        errors.append("Give the organization's name.")
    if form["npi"] and not (form["npi"].isdigit() and len(form["npi"]) == 10):
        errors.append("An NPI has 10 digits.")
    if form["phone"] and not all(c.isdigit() or c in " +-().x" for c in form["phone"]):
        errors.append("Give the phone number in digits.")
    if errors:
        return _page("console_recipient_form.html", 400, form=form, errors=errors)
    organization: dict[str, Any] = {"resourceType": "Organization", "active": True, "name": form["name"]}
    if form["provider"] == "yes":
        organization["type"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                             "code": "prov"}]}]  # fmt: skip
    if form["npi"]:
        organization["identifier"] = [{"system": NPI, "value": form["npi"]}]
    if form["phone"]:
        organization["telecom"] = [{"system": "phone", "value": form["phone"], "use": "work"}]
    writer = Requester(source=f"user:{g.officer.username}", username=g.officer.username, role=g.officer.role,
                       organization=g.officer.organization, scopes=("user/Organization.c",))  # fmt: skip
    try:
        created = current_app.extensions["fhir_engine"].handle(
            FhirRequest(
                "POST", "Organization", body=organization, requester=writer, headers={"prefer": "return=minimal"}
            )
        )
    except FhirError as error:
        return _page("console_recipient_form.html", 400, form=form, errors=[f"The gateway refused it: {error}"])
    reference = "/".join((created.location or "").split("/_history")[0].rsplit("/", 2)[-2:])
    return _page("console_message.html", 201, title="Recipient registered",
                 message=f"{form['name']} is registered as {reference}: consents and court orders can now name it.")  # fmt: skip
