"""The consent engine in the release hook: no patient data reaches a user (a responder, a
compliance officer, ...) without a decision, and no decision without its audit record.

For every response that carries patient data (reads, searches and their includes, history,
Bundle entries) and whose requester is a signed-in user:
1. the patient's items (from the response, with their labels, data class and source), consents
   and treating relationships (in-progress Encounters) are gathered from the store;
2. `consent_engine.decide` decides per item;
3. an audit record (and a ledger row per released Part 2 item) is queued on the request; the
   engine commits the queue before the response leaves (Engine.handle), and a failure to commit
   is a uniform 503;
4. the response keeps only released items. A read of a withheld item is the same 404 as a read
   of nothing; a search looks as if the withheld items had never been stored. Released Part 2
   data carries the §2.32 notice; sensitivity labels are removed for non-clinical roles.
"""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from consent_engine import (
    DEFAULT_POLICY,
    ConsentsUnavailable,
    Decision,
    DecisionError,
    DecisionRequest,
    Emergency,
    Item,
    PatientRecord,
    Policy,
    Recipient,
    decide,
    policy_from_mapping,
)
from consent_engine.codes import BTG, DATA_CLASS_SYSTEM, KEPT_LABELS
from consent_engine.fhir import consent_from_fhir
from consent_engine.labels import sender_labels
from gateway.auth.accounts import Accounts, utcnow
from gateway.auth.resource import COMPLIANCE_OFFICER, is_patient_data
from gateway.consent.audit import AuditLog, AuditRecord
from gateway.consent.labelling import source_organization
from gateway.fhir.bundles import withhold_entries
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, ReleaseAll, ReleaseHook
from gateway.fhir.errors import BadRequest, ServiceUnavailable, not_known
from gateway.fhir.indexing import split_reference
from gateway.fhir.repository import Store
from gateway.fhir.search_parameters import SEARCH_PARAMETERS
from gateway.fhir.validation import iter_path
from gateway.settings import PROJECT_ROOT
from gateway.store.schema import audit_event

NOTICE_ISSUE = "informational"
CERTAIN_MATCH_VALID = timedelta(hours=1)  # a certain match confirms identity for the brief this long
POLICY_FILE = PROJECT_ROOT / "config" / "consent_policy.toml"


def load_policy(path: Path = POLICY_FILE) -> Policy:
    """The project rules from config/consent_policy.toml (defaults for what it leaves out)."""
    if not path.exists():
        return DEFAULT_POLICY
    return policy_from_mapping(tomllib.loads(path.read_text(encoding="utf-8")))


UNAVAILABLE = "the service cannot decide about this request now; try again"


def patient_of(resource: dict[str, Any], base_url: str) -> str | None:
    """The id of the patient a resource is about, or None for non-patient data."""
    resource_type = str(resource.get("resourceType", ""))
    if resource_type == "Patient":
        return str(resource.get("id")) if resource.get("id") else None
    param = SEARCH_PARAMETERS.get(resource_type, {}).get("patient")
    if param is None:
        return None
    for path in param.paths:
        for value, _ in iter_path(resource, f"{resource_type}.{path}"):
            if isinstance(value, dict):
                target = split_reference(value.get("reference", ""), base_url)
                if target and target[0] == "Patient":
                    return target[1]
    return ""  # patient data about nobody we can name: decided as "unknown patient" (withheld)


def _item(resource: dict[str, Any]) -> Item:
    data_class = "STATUS"
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == DATA_CLASS_SYSTEM:
            data_class = str(tag.get("code"))
    key = f"{resource.get('resourceType')}/{resource.get('id')}"
    return Item(key, data_class, sender_labels(resource), source_organization(resource))


def _strip_labels(resource: dict[str, Any]) -> dict[str, Any]:
    """Sensitivity labels say what a record is about (an SUD label tells police the diagnosis):
    non-clinical recipients get only R, 42CFRPart2 and NORDSCLCD."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or not meta.get("security"):
        return resource
    kept = [c for c in meta["security"] if isinstance(c, dict) and c.get("code") in KEPT_LABELS]
    new_meta = {k: v for k, v in meta.items() if k != "security"}
    if kept:
        new_meta["security"] = kept
    return {**resource, "meta": new_meta}


class ConsentRelease:
    def __init__(
        self,
        base_url: str,
        store: Store,
        accounts: Accounts,
        audit: AuditLog,
        policy: Policy | None = None,
        inner: ReleaseHook | None = None,
    ) -> None:
        self.base_url = base_url
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.policy = policy or load_policy()
        self.inner: ReleaseHook = inner or ReleaseAll()
        self._recipients: dict[str, tuple[float, Recipient | None]] = {}
        self._lock = threading.Lock()

    # -- who is asking ---------------------------------------------------------------------------
    def recipient(self, username: str) -> Recipient | None:
        with self._lock:
            hit = self._recipients.get(username)
            if hit and time.monotonic() - hit[0] < 10:
                return hit[1]
        user = self.accounts.user(username)
        found = None
        if user is not None and not user.disabled:
            organization = user.organization or ""
            found = Recipient(
                user=user.username,
                name=user.display_name,
                role=user.role,
                medical=user.medical,
                organization=organization,
                organization_is_provider=self._is_provider(organization),
                practitioner=user.practitioner,
            )
        with self._lock:
            self._recipients[username] = (time.monotonic(), found)
        return found

    def _is_provider(self, organization: str) -> bool:
        """Organization.type includes `prov` (a health-care provider)."""
        target = split_reference(organization, self.base_url)
        if not target or target[0] != "Organization":
            return False
        with self.store.unit_of_work(False) as (repository, _):
            found = repository.read("Organization", target[1])
        if found is None or found.deleted or not found.content:
            return False
        return any(
            coding.get("code") == "prov"
            for concept in found.content.get("type") or []
            for coding in concept.get("coding") or []
            if isinstance(coding, dict)
        )

    # -- what is on file ---------------------------------------------------------------------------
    def _contexts(self, request: FhirRequest, patients: list[str]) -> dict[str, PatientContext | None]:
        """Each patient's privacy consents and treating organizations, in one query for all of
        them; None for each when the store cannot be read in an emergency (decided without)."""
        if not patients:
            return {}
        try:
            with self.store.unit_of_work(False) as (repository, _):
                found = repository.compartments(patients, ["Consent", "Encounter"])
        except Exception as error:  # the store could not be read: routine requests fail closed
            if not request.requester.emergency_nature:
                raise ServiceUnavailable(UNAVAILABLE) from error
            return dict.fromkeys(patients)
        return {patient: _context_of(resources) for patient, resources in found.items()}

    def _emergency(self, request: FhirRequest, recipient: Recipient, patient: str) -> Emergency | None:
        requester = request.requester
        if requester.purpose != BTG and not requester.emergency_nature:
            return None
        now = utcnow()
        window = now - self.policy.emergency_window
        with self.audit.database.connect() as connection:
            first = connection.execute(
                select(func.min(audit_event.c.recorded_at)).where(
                    audit_event.c.recipient == recipient.user,
                    audit_event.c.patient == patient,
                    audit_event.c.emergency.is_(True),
                    audit_event.c.recorded_at >= window,
                )
            ).scalar()
        return Emergency(requester.emergency_nature or "", first or now)

    # -- the hook -------------------------------------------------------------------------------------
    def release(self, request: FhirRequest, interaction: Interaction, response: FhirResponse) -> FhirResponse:
        requester = request.requester
        body = response.resource
        if body is None or interaction.name in ("transaction", "batch", "capabilities"):
            return self.inner.release(request, interaction, response)
        bundle = body.get("resourceType") == "Bundle"
        entries = (body.get("entry") or []) if bundle else [{"resource": body}]
        patient_data = [
            e["resource"]
            for e in entries
            if isinstance(e.get("resource"), dict) and is_patient_data(str(e["resource"].get("resourceType", "")))
        ]
        match_record = None
        if interaction.name == "responder-match":
            match_record = _match_record(request, len(patient_data))
            request.audit.append(match_record)  # every match is audited
        if not patient_data:
            return self.inner.release(request, interaction, response)
        if interaction.name == "responder-brief":
            request.requester = requester = replace(
                requester,
                purpose=request.param("purpose") or requester.purpose,
                emergency_nature=request.param("reason") or requester.emergency_nature,
            )
            if request.param("confirmed") != "true" and not self._certain_match(requester, interaction.resource_id):
                # Identity first: until the responder confirms it is the right person (or a
                # recent match of theirs was certain), only what confirms identity is considered.
                patient_data = [r for r in patient_data if r.get("resourceType") == "Patient"]
        strip = False
        notices: list[Decision] = []
        if requester.username is None:
            released = self._own_records(request, patient_data)
        else:
            released, strip, notices = self._decided(request, patient_data)
        if not bundle:
            if id(body) not in released:
                raise not_known(interaction.resource_type, interaction.resource_id)
            shaped = _strip_labels(body) if strip else body
            if notices:
                shaped = _with_notice(shaped, notices)
            return self.inner.release(request, interaction, replace(response, resource=shaped))
        kept = []
        for entry in entries:
            resource = entry.get("resource")
            if isinstance(resource, dict) and is_patient_data(str(resource.get("resourceType", ""))):
                if id(resource) not in released:
                    continue
                entry = {**entry, "resource": _strip_labels(resource) if strip else resource}
            kept.append(entry)
        if len(kept) != len(entries) and interaction.name == "history-instance":
            raise not_known(interaction.resource_type, interaction.resource_id)
        shaped = withhold_entries(body, kept)
        if match_record is not None:
            match_record.body["shown"] = [
                {"patient": e["resource"].get("id"),
                 "grade": next((x.get("valueCode") for x in (e.get("search") or {}).get("extension") or []), None)}
                for e in shaped.get("entry") or []
            ]  # fmt: skip
        if notices:
            shaped = {**shaped, "entry": [*(shaped.get("entry") or []), _notice_entry(notices)]}
        return self.inner.release(request, interaction, replace(response, resource=shaped))

    def _certain_match(self, requester: Any, patient_id: str | None) -> bool:
        """Did this user's own $responder-match grade this patient `certain` in the last hour?"""
        if not requester.username or not patient_id:
            return False
        since = utcnow() - CERTAIN_MATCH_VALID
        with self.audit.database.connect() as connection:
            bodies = connection.execute(
                select(audit_event.c.body)
                .where(audit_event.c.recipient == requester.username, audit_event.c.outcome == "MATCH",
                       audit_event.c.recorded_at >= since)
                .order_by(audit_event.c.seq.desc())
                .limit(20)
            ).scalars().all()  # fmt: skip
        return any(
            shown.get("patient") == patient_id and shown.get("grade") == "certain"
            for body in bodies
            for shown in (body or {}).get("shown", [])
        )

    def _own_records(self, request: FhirRequest, resources: list[dict[str, Any]]) -> set[int]:
        """Backend (system) clients are not recipients: an EHR reads back what its organization
        sent and what is addressed to it (the §2.51 notifications), nothing else (deny by
        default). Audited like any decision."""
        requester = request.requester
        released = [r for r in resources if _own_record(requester.organization, r)]
        withheld = [r for r in resources if r not in released]
        keys = [f"{r.get('resourceType')}/{r.get('id')}" for r in released]
        patients = sorted({patient_of(r, self.base_url) or "" for r in resources})
        request.audit.append(
            AuditRecord(
                recorded_at=utcnow(),
                recipient=f"client:{requester.client_id}",
                outcome="PERMIT" if not withheld else ("PERMIT_WITH_REDACTION" if released else "DENY"),
                patient=f"Patient/{patients[0]}" if len(patients) == 1 and patients[0] else None,
                purpose=requester.purpose,
                emergency=False,
                body={
                    "request": f"{request.method} {request.path}",
                    "client": requester.client_id,
                    "released": [{"item": key, "basis": "own-records"} for key in keys],
                    "withheld": [
                        {"item": f"{r.get('resourceType')}/{r.get('id')}", "reason": "not-own-records"}
                        for r in withheld
                    ],
                    "alerts": [],
                    "emergency": None,
                },  # fmt: skip
            )
        )
        return {id(r) for r in released}

    def _decided(self, request: FhirRequest, resources: list[dict[str, Any]]) -> tuple[set[int], bool, list[Decision]]:
        """A signed-in user: the consent engine decides, patient by patient."""
        requester = request.requester
        assert requester.username is not None
        by_patient: dict[str, list[dict[str, Any]]] = {}
        administered: list[dict[str, Any]] = []
        for resource in resources:
            if requester.role == COMPLIANCE_OFFICER and resource.get("resourceType") == "Consent":
                administered.append(resource)  # managing consents is the officer's job (audited)
                continue
            by_patient.setdefault(patient_of(resource, self.base_url) or "", []).append(resource)
        if administered:
            request.audit.append(_administration_record(requester.username, request, administered))
        released: set[int] = {id(r) for r in administered}
        if not by_patient:
            return released, False, []
        _require_purpose(requester)
        recipient = self.recipient(requester.username)
        contexts = self._contexts(request, [p for p in by_patient if p]) if recipient is not None else {}
        strip = True
        notices: list[Decision] = []
        for patient, patient_resources in by_patient.items():
            decision = self._decide(request, recipient, patient, patient_resources, contexts.get(patient))
            if decision is None:
                continue
            keys = {item.key for item in decision.released}
            released.update(id(r) for r in patient_resources if f"{r.get('resourceType')}/{r.get('id')}" in keys)
            strip = strip and decision.strip_labels
            if decision.notice:
                notices.append(decision)
        return released, strip, notices

    def may_know(self, request: FhirRequest, patients: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Whom the requester may learn exists: the decision `release` would take for each
        Patient alone, without its audit record (nothing leaves here; what is shown in the end
        passes `release` and is audited there)."""
        requester = request.requester
        if requester.username is None:
            known = [p for p in patients if _own_record(requester.organization, p)]
            return self.inner.may_know(request, known)
        if not patients:
            return self.inner.may_know(request, [])
        _require_purpose(requester)
        recipient = self.recipient(requester.username)
        if recipient is None:
            return self.inner.may_know(request, [])
        ids = [str(patient.get("id") or "") for patient in patients]
        contexts = self._contexts(request, [i for i in ids if i])
        known = []
        for patient, patient_id in zip(patients, ids, strict=True):
            if patient_id:
                decision, _ = self._decision(request, recipient, patient_id, (_item(patient),), contexts[patient_id])
                if decision.released:
                    known.append(patient)
        return self.inner.may_know(request, known)

    def _decide(
        self,
        request: FhirRequest,
        recipient: Recipient | None,
        patient: str,
        resources: list[dict[str, Any]],
        context: PatientContext | None,
    ) -> Decision | None:
        requester = request.requester
        items = tuple(dict.fromkeys(_item(r) for r in resources))
        if recipient is None or not patient:
            record_body = {
                "reason": "unknown-recipient" if recipient is None else "no-patient",
                "withheld": [i.key for i in items],
            }
            request.audit.append(AuditRecord(utcnow(), requester.username or "?", "DENY", patient or None,
                                             requester.purpose, False, record_body))  # fmt: skip
            return None
        decision, decision_request = self._decision(request, recipient, patient, items, context)
        request.audit.append(_audit_record(decision, decision_request, requester.client_id, request))
        return decision

    def _decision(
        self,
        request: FhirRequest,
        recipient: Recipient,
        patient: str,
        items: tuple[Item, ...],
        context: PatientContext | None,
    ) -> tuple[Decision, DecisionRequest]:
        """The consent engine's decision about these items of one patient, as of now. `context`
        None: the store could not be read, an emergency goes on without consents."""
        requester = request.requester
        as_of = utcnow()
        if context is None:
            consents, treating = None, frozenset[str]()
        else:
            try:
                consents = [consent_from_fhir(c) for c in context[0]]
            except Exception as error:  # a stored consent the engine cannot read: fail closed
                if not requester.emergency_nature:
                    raise ServiceUnavailable(UNAVAILABLE) from error
                consents = None
            treating = context[1]
        emergency = self._emergency(request, recipient, patient)
        decision_request = DecisionRequest(recipient, requester.purpose, f"Patient/{patient}", as_of,
                                           emergency=emergency)  # fmt: skip
        record = PatientRecord(f"Patient/{patient}", items, treating)
        try:
            decision = decide(decision_request, record, consents, self.policy)
        except DecisionError as error:
            raise BadRequest(str(error)) from None
        except ConsentsUnavailable:
            raise ServiceUnavailable(UNAVAILABLE) from None
        return decision, decision_request


PatientContext = tuple[list[dict[str, Any]], frozenset[str]]  # privacy consents, treating organizations


def _context_of(found: list[Any]) -> PatientContext:
    """From a patient's stored Consents and Encounters: the consents in the privacy scope and the
    organizations treating the patient now (in-progress Encounters' service providers)."""
    treating = frozenset(
        str((e.content.get("serviceProvider") or {}).get("reference"))
        for e in found
        if e.type == "Encounter"
        and e.content
        and e.content.get("status") == "in-progress"
        and e.content.get("serviceProvider")
    )
    scoped = [
        c.content
        for c in found
        if c.type == "Consent"
        and c.content
        and any(
            coding.get("code") == "patient-privacy" for coding in (c.content.get("scope") or {}).get("coding") or []
        )
    ]
    return scoped, treating


def _require_purpose(requester: Any) -> None:
    if not requester.purpose:
        raise BadRequest("a purpose of use is required for patient data (header X-Purpose-Of-Use)")


def _own_record(organization: str | None, resource: dict[str, Any]) -> bool:
    """Sent by this organization, or a Communication addressed to it."""
    if organization is None:
        return False
    addressed = [r.get("reference") for r in resource.get("recipient") or [] if isinstance(r, dict)]
    return source_organization(resource) == organization or (
        resource.get("resourceType") == "Communication" and organization in addressed
    )


def _match_record(request: FhirRequest, candidates: int) -> AuditRecord:
    requester = request.requester
    asked = [
        {"name": p.get("name"), "value": next((v for k, v in p.items() if k.startswith("value")), None)}
        for p in (request.body or {}).get("parameter") or []
        if isinstance(p, dict) and p.get("name") != "resource"
    ]
    return AuditRecord(
        recorded_at=utcnow(),
        recipient=requester.username or f"client:{requester.client_id}",
        outcome="MATCH",
        patient=None,
        purpose=requester.purpose,
        emergency=False,
        body={
            "request": "POST Patient/$responder-match",
            "asked": asked,
            "candidates_found": candidates,
            "released": [],
            "withheld": [],
            "alerts": [],
            "emergency": None,
        },  # fmt: skip
    )


def _administration_record(username: str, request: FhirRequest, consents: list[dict[str, Any]]) -> AuditRecord:
    patients = sorted({str((c.get("patient") or {}).get("reference")) for c in consents})
    return AuditRecord(
        recorded_at=utcnow(),
        recipient=username,
        outcome="PERMIT",
        patient=patients[0] if len(patients) == 1 else None,
        purpose="HOPERAT",
        emergency=False,
        body={
            "request": f"{request.method} {request.path}",
            "basis": "compliance-administration",
            "released": [{"item": f"Consent/{c.get('id')}", "basis": "compliance-administration"} for c in consents],
            "withheld": [],
            "alerts": [],
            "emergency": None,
        },  # fmt: skip
    )


def _audit_record(
    decision: Decision, request: DecisionRequest, client_id: str | None, fhir: FhirRequest
) -> AuditRecord:
    recipient = request.recipient
    body = {
        "request": f"{fhir.method} {fhir.path}",
        "client": client_id,
        "recipient": {"user": recipient.user, "name": recipient.name, "role": recipient.role,
                      "organization": recipient.organization, "medical": recipient.medical},
        "as_of": request.as_of.isoformat(),
        "released": [{"item": d.item.key, "basis": d.basis.value if d.basis else None, "consents": list(d.consent_ids)}
                     for d in decision.items if d.released],
        "withheld": [{"item": d.item.key, "reason": d.reason} for d in decision.items if not d.released],
        "policy_version": decision.policy_version,
        "notice_version": decision.notice_version,
        "alerts": [{"code": a.code, "detail": a.detail} for a in decision.alerts],
        "emergency": decision.emergency_record,
        "reasons": list(decision.reasons),
        "identity_confirmed": fhir.param("confirmed") == "true" if fhir.path.endswith("$responder-brief") else None,
        "released_beyond_identity": any(d.released and d.item.key.split("/")[0] != "Patient" for d in decision.items),
    }  # fmt: skip
    ledger = [
        {
            "item": d.item.key,
            "discloser": d.item.source,
            "recipient_name": recipient.name,
            "recipient_organization": recipient.organization,
            "purpose": request.purpose,
            "basis": d.basis.value if d.basis else None,
            "consents": list(d.consent_ids),
            "notice_version": decision.notice_version,
            "data_class": d.item.data_class,
            "intermediary": d.item.key in decision.intermediary_disclosures,
        }
        for d in decision.items
        if d.released and d.item.part2
    ]
    return AuditRecord(
        recorded_at=request.as_of,
        recipient=recipient.user,
        outcome=decision.outcome.value,
        patient=request.patient,
        purpose=request.purpose,
        emergency=request.emergency is not None,
        body=body,
        disclosures=ledger,
    )


def _notice_text(decisions: list[Decision]) -> str:
    first = decisions[0]
    explanations = [text for d in decisions for text in d.consent_explanations]
    return "\n\n".join([first.notice or "", *explanations])


def _notice_entry(decisions: list[Decision]) -> dict[str, Any]:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": NOTICE_ISSUE, "diagnostics": _notice_text(decisions),
                   "details": {"text": f"42 CFR 2.32 notice ({decisions[0].notice_version})"}}],
    }  # fmt: skip
    return {"resource": outcome, "search": {"mode": "outcome"}}


NOTICE_EXTENSION = "https://crisis-fhir-gateway.org/fhir/StructureDefinition/redisclosure-notice"


def _with_notice(resource: dict[str, Any], decisions: list[Decision]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["extension"] = [
        *(meta.get("extension") or []),
        {"url": NOTICE_EXTENSION, "valueString": _notice_text(decisions)},
    ]
    return {**resource, "meta": meta}


__all__ = ["ConsentRelease", "load_policy", "patient_of"]
