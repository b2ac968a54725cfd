"""The one door out, in the engine: every response that carries patient data (reads, searches
and their includes, history, the responder operations, Bundle entries) is decided by
`consent_engine.release`, for every requester (users, EHRs, dispatch systems), and answered from
the `Release`:

1. the inputs are loaded through the request's unit of work (gateway.consent.inputs);
2. the engine decides, patient by patient, and each `Release` is queued on the request: the
   engine's audit sink renders the audit record and the ledger from it and commits them before
   the response leaves (and the §2.51(c) Communications it calls for, in the same transaction);
3. the response keeps exactly the released items, redacted as the release says (labels), with
   the §2.32 notice when Part 2 data is in it. A read of a withheld item is the same 404 as a read
   of nothing; a search looks as if the withheld items had never been stored (§2.13(c)).
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from consent_engine import (
    DEFAULT_POLICY,
    ConsentsUnavailable,
    DecisionError,
    Emergency,
    History,
    Item,
    Operation,
    Policy,
    Recipient,
    Record,
    Release,
    Released,
    ReleaseRequest,
    policy_from_mapping,
    release,
    request_alerts,
)
from consent_engine.codes import BTG
from consent_engine.fhir import item_from_resource
from consent_engine.part2 import emergency_communication
from consent_engine.redaction import notice_entry, notice_extensions, redact, with_notice
from gateway.auth.resource import is_patient_data
from gateway.consent.audit import MatchShown, NothingFound
from gateway.consent.inputs import DecisionInputs, PatientContext
from gateway.fhir.bundles import withhold_entries
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, Requester
from gateway.fhir.errors import BadRequest, ServiceUnavailable, not_known
from gateway.fhir.everything import BRIEF_TYPES
from gateway.fhir.indexing import split_reference
from gateway.fhir.repository import Repository
from gateway.fhir.search_parameters import SEARCH_PARAMETERS
from gateway.fhir.validation import iter_path
from gateway.settings import PROJECT_ROOT

POLICY_FILE = PROJECT_ROOT / "config" / "consent_policy.toml"
OPERATIONS = {"responder-brief": Operation.BRIEF, "responder-match": Operation.MATCH}
NOT_DECIDED = ("transaction", "batch", "capabilities")
WRITES = frozenset({"create", "update", "patch", "conditional-update"})


def load_policy(path: Path = POLICY_FILE) -> Policy:
    """The project rules from config/consent_policy.toml (defaults for what it leaves out)."""
    if not path.exists():
        return DEFAULT_POLICY
    return policy_from_mapping(tomllib.loads(path.read_text(encoding="utf-8")))


def patient_of(resource: dict[str, Any], base_url: str) -> str | None:
    """The id of the patient a resource is about, or None for non-patient data ("" for patient
    data about nobody we can name: decided as such, withheld)."""
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
    return ""


def _key(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


class ConsentRelease:
    def __init__(self, base_url: str, inputs: DecisionInputs, policy: Policy | None = None) -> None:
        self.base_url = base_url
        self.inputs = inputs
        self.policy = policy or load_policy()

    # -- the hook ---------------------------------------------------------------------------------
    def release(
        self,
        request: FhirRequest,
        interaction: Interaction,
        response: FhirResponse,
        repository: Repository,
        now: datetime,
    ) -> FhirResponse:
        body = response.resource
        if body is None or interaction.name in NOT_DECIDED:
            return response
        bundle = body.get("resourceType") == "Bundle"
        entries: list[dict[str, Any]] = (body.get("entry") or []) if bundle else [{"resource": body}]
        patient_data = [
            e["resource"] for e in entries
            if isinstance(e.get("resource"), dict) and is_patient_data(str(e["resource"].get("resourceType", "")))
        ]  # fmt: skip
        operation = OPERATIONS.get(interaction.name, Operation.READ)
        if operation == Operation.MATCH:
            return self._shown(request, response, entries, repository, now)
        if not patient_data and operation != Operation.BRIEF:
            if is_patient_data(interaction.resource_type or ""):
                # Nothing found is still a request about patients: nothing was released, and police
                # and legal requests are alerted all the same.
                request.audit.append(NothingFound())
                if request.requester.username:
                    recipient = self._recipient(request.requester, repository)
                    request.audit.extend(request_alerts(recipient, self._purpose(request, operation), self.policy))
            return response
        releases = self._decide(request, operation, patient_data, response.inputs, repository, now, interaction)
        released = {r.item.key: (decided, r) for decided in releases for r in decided.released}
        if not bundle:
            owner = released.get(_key(body))
            if owner is None:
                if interaction.name in WRITES:
                    # The write stands; only its echo is withheld (as with Prefer: return=minimal):
                    # the writer learns nothing it did not send.
                    return replace(response, resource=None)
                raise not_known(interaction.resource_type, interaction.resource_id)
            return replace(response, resource=self._shaped(body, *owner))
        kept = []
        for entry in entries:
            resource = entry.get("resource")
            if isinstance(resource, dict) and is_patient_data(str(resource.get("resourceType", ""))):
                owner = released.get(_key(resource))
                if owner is None:
                    continue
                entry = {**entry, "resource": self._redacted(resource, *owner)}
            kept.append(entry)
        if len(kept) != len(entries) and interaction.name == "history-instance":
            raise not_known(interaction.resource_type, interaction.resource_id)
        shaped = withhold_entries(body, kept) if len(kept) != len(entries) else body
        notices = [r for r in releases if r.notice is not None]
        if notices and operation != Operation.BRIEF:
            scope = tuple(s for r in notices for s in r.scope_explanations)
            notice = notices[0].notice
            assert notice is not None
            meta = dict(shaped.get("meta") or {})
            meta["extension"] = [*(meta.get("extension") or []), *notice_extensions(notice, scope)]
            shaped = {**shaped, "meta": meta, "entry": [*(shaped.get("entry") or []), notice_entry(notice, scope)]}
        disclosure = releases[0] if operation == Operation.BRIEF and releases else None
        return replace(response, resource=shaped, disclosure=disclosure)

    def may_know(
        self, request: FhirRequest, patients: list[dict[str, Any]], repository: Repository, now: datetime
    ) -> list[dict[str, Any]]:
        """Whom the requester may learn exists: a person is shown only if the engine would release
        something about them to this requester for this purpose (demographics follow the
        decision). Decided here, before anyone is compared with anyone; nothing is disclosed,
        and the decisions are kept for the release of what is finally shown."""
        ids = [str(p.get("id") or "") for p in patients]
        if not any(ids):
            return []
        recipient = self._recipient(request.requester, repository)
        purpose = self._purpose(request, Operation.MATCH)
        # One query for every candidate's record: what would be released decides who may be shown.
        found = repository.compartments([i for i in ids if i], BRIEF_TYPES)
        known = []
        for patient, patient_id in zip(patients, ids, strict=True):
            if not patient_id:
                continue
            record = [r.content for r in found.get(patient_id, []) if r.content]
            items = [patient, *(r for r in record if r.get("resourceType") != "Consent")]
            context = self.inputs.context(repository, [patient, *record])
            decided = self._one(
                request, recipient, purpose, Operation.MATCH, patient_id, items, context, repository, now
            )
            request.decided[patient_id] = decided
            if decided.released:
                known.append(patient)
        return known

    def releasable(
        self, request: FhirRequest, patient_id: str, record: list[dict[str, Any]], repository: Repository, now: datetime
    ) -> list[Released]:
        """What of one patient's `record` the engine would release to the requester for the
        request's purpose: decided, not disclosed (nothing leaves, nothing is audited). For a
        write the requester's own record calls for, such as whom an outcome may be told to."""
        recipient = self._recipient(request.requester, repository)
        context = self.inputs.context(repository, record)
        items = [r for r in record if r.get("resourceType") != "Consent"]
        decided = self._one(request, recipient, request.purpose, Operation.READ, patient_id, items, context,
                            repository, now)  # fmt: skip
        return list(decided.released)

    def simulate(
        self,
        recipient: Recipient,
        purpose: str,
        patient_id: str,
        record: list[dict[str, Any]],
        repository: Repository,
        now: datetime,
    ) -> Release:
        """What a brief of this record would release to this recipient (a person imagined by role
        and organization) for this purpose, identity confirmed: the release function itself, with
        nothing disclosed, ledgered or alerted. `record` is the patient's resources with their
        Consents (a consent not yet saved may be among them: "try this consent")."""
        context = self.inputs.context(repository, record)
        items = tuple(dict.fromkeys(item_from_resource(r) for r in record if r.get("resourceType") != "Consent"
                                    and is_patient_data(str(r.get("resourceType", "")))))  # fmt: skip
        decision = ReleaseRequest(recipient=recipient, purpose=purpose, patient=f"Patient/{patient_id}",
                                  operation=Operation.BRIEF, identity_confirmed=True)  # fmt: skip
        facts = Record(patient=f"Patient/{patient_id}", items=items, treating_organizations=context.treating,
                       episodes=context.episodes, facts=context.facts)  # fmt: skip
        return release(decision, facts, context.consents, History(), self.policy, now, context.orders)

    def decide_report(
        self, requester: Requester, items: dict[str, list[Item]], repository: Repository, now: datetime
    ) -> list[Release]:
        """A compliance report's rows, by the patient each concerns: decided like any release
        (compliance officers receive them as the programs' own administration), so that the
        report is audited against each patient it shows."""
        recipient = self._recipient(requester, repository)
        releases = []
        for patient, patient_items in items.items():
            decision = ReleaseRequest(recipient, "HOPERAT", patient, Operation.REPORT)
            record = Record(patient, tuple(patient_items))
            releases.append(release(decision, record, [], History(), self.policy, now))
        return releases

    # -- deciding --------------------------------------------------------------------------------------
    def _decide(
        self,
        request: FhirRequest,
        operation: Operation,
        resources: list[dict[str, Any]],
        read: list[dict[str, Any]] | None,
        repository: Repository,
        now: datetime,
        interaction: Interaction,
    ) -> list[Release]:
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for resource in resources:
            by_patient.setdefault(patient_of(resource, self.base_url) or "", []).append(resource)
        if operation == Operation.BRIEF and interaction.resource_id:
            by_patient.setdefault(interaction.resource_id, [])
        recipient = self._recipient(request.requester, repository)
        purpose = self._purpose(request, operation)
        # Backend clients are decided by the own-records rule, by each item's source alone: their
        # pages (a source's sync, a Bulk export) need no patient's consents, so none are read.
        named = [p for p in by_patient if p] if not recipient.system else []
        try:
            contexts = self.inputs.contexts(repository, named, read, purpose == BTG) if named else {}
        except Exception as failure:  # consents or orders cannot be read: routine requests fail closed
            raise ServiceUnavailable() from failure
        releases = []
        for patient, patient_resources in by_patient.items():
            context = contexts.get(patient, PatientContext([], frozenset(), ()))
            decided = self._one(
                request, recipient, purpose, operation, patient, patient_resources, context, repository, now
            )
            request.audit.append(decided)
            self._follow_ups(request, decided, repository)
            releases.append(decided)
        return releases

    def _one(
        self,
        request: FhirRequest,
        recipient: Recipient,
        purpose: str | None,
        operation: Operation,
        patient: str,
        resources: list[dict[str, Any]],
        context: PatientContext,
        repository: Repository,
        now: datetime,
    ) -> Release:
        emergency = Emergency(request.emergency_nature) if purpose == BTG and request.emergency_nature else None
        confirmed = operation != Operation.BRIEF or request.param("confirmed") == "true"
        history = History()
        if not confirmed and not recipient.system:
            history = self.inputs.history(repository, recipient.user, patient, now - self.policy.certain_match_confirms)
        classes = request.param("class") if operation == Operation.BRIEF else None
        decision = ReleaseRequest(
            recipient=recipient,
            purpose=purpose,
            patient=f"Patient/{patient}",
            operation=operation,
            data_classes=frozenset(c.strip() for c in classes.split(",")) if classes else None,
            emergency=emergency,
            identity_confirmed=confirmed,
        )
        record = Record(
            patient=f"Patient/{patient}" if patient else "",
            items=tuple(dict.fromkeys(item_from_resource(r) for r in resources)),
            treating_organizations=context.treating,
            episodes=context.episodes,
            facts=context.facts,
        )
        try:
            return release(decision, record, context.consents, history, self.policy, now, context.orders)
        except DecisionError as error:
            raise BadRequest(str(error), expression="Parameters.parameter.where(name='purpose')") from None
        except ConsentsUnavailable:
            raise ServiceUnavailable() from None

    def _recipient(self, requester: Requester, repository: Repository) -> Recipient:
        found = self.inputs.recipient(requester, repository)
        if found is None:  # a user no longer known (or disabled): receives nothing, audited as such
            return Recipient(user=requester.username or "?", name=requester.username or "?", role="(unknown)",
                             medical=False, organization="")  # fmt: skip
        return found

    @staticmethod
    def _purpose(request: FhirRequest, operation: Operation) -> str | None:
        """The responder operations take the purpose with the request; plain reads use the one
        given with the request (X-Purpose-Of-Use) or else the one bound to the token."""
        if operation in (Operation.BRIEF, Operation.MATCH):
            return request.purpose
        return request.purpose or request.requester.purpose

    def _follow_ups(self, request: FhirRequest, decided: Release, repository: Repository) -> None:
        """§2.51(c): the record goes back to each source program, in the audit's transaction."""
        record = decided.emergency_record
        if record is None:
            return
        for program in record.programs:
            name = self.inputs.organization_name(repository, program)
            request.follow_ups.append(
                emergency_communication(record, decided.request.patient, program, name, self.policy.gateway_name)
            )

    # -- what leaves ---------------------------------------------------------------------------------
    @staticmethod
    def _redacted(resource: dict[str, Any], decided: Release, released: Released) -> dict[str, Any]:
        return redact(resource, part2=released.item.part2, strip_sensitivity=decided.strip_sensitivity)

    def _shaped(self, resource: dict[str, Any], decided: Release, released: Released) -> dict[str, Any]:
        shaped = self._redacted(resource, decided, released)
        if decided.notice is not None:
            shaped = with_notice(shaped, decided.notice, decided.scope_explanations)
        return shaped

    def _shown(
        self,
        request: FhirRequest,
        response: FhirResponse,
        entries: list[dict[str, Any]],
        repository: Repository,
        now: datetime,
    ) -> FhirResponse:
        """A match shows identity fields of the people `may_know` allowed, as decided there."""
        body = response.resource or {}
        kept, shown = [], []
        for entry in entries:
            patient_id = str((entry.get("resource") or {}).get("id") or "")
            decided = request.decided.get(patient_id)
            if decided is None or not decided.released:
                continue
            request.audit.append(decided)  # what is shown is what the audit record says was released
            resource = entry["resource"]
            shown_as = next(r for r in decided.released if r.item.key == _key(resource))
            kept.append({**entry, "resource": self._redacted(resource, decided, shown_as)})
            grade = next((x.get("valueCode") for x in (entry.get("search") or {}).get("extension") or []), "")
            shown.append((patient_id, str(grade)))
        asked = tuple(
            {"name": p.get("name"), "value": next((v for k, v in p.items() if k.startswith("value")), None)}
            for p in (request.body or {}).get("parameter") or []
            if isinstance(p, dict) and p.get("name") != "resource"
        )
        request.audit.append(MatchShown(asked, tuple(shown), considered=len(request.decided)))
        if not shown and request.requester.username:
            recipient = self._recipient(request.requester, repository)
            request.audit.extend(request_alerts(recipient, self._purpose(request, Operation.MATCH), self.policy))
        shaped = withhold_entries(body, kept) if len(kept) != len(entries) else body
        return replace(response, resource=shaped)


__all__ = ["ConsentRelease", "load_policy", "patient_of"]
