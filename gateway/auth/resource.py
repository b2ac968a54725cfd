"""The resource server's side of SMART: the engine's authorization and release hooks.

`SmartAuthorization.authorize` runs before an interaction touches the store: scope check (403),
patient-compartment rules for `patient/` tokens (searches are narrowed to the patient, reads of
another patient are 404 so that nothing leaks), and `user/` tokens are kept away from patient
data until the consent engine decides about it. `SmartRelease.release` runs on every response:
it withholds whatever the token's context may not see, including `_include`d resources.

Tokens are turned into a `Requester` by the HTTP adapter (401 there); these hooks only see
requesters.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from consent_engine.fhir import is_court_order
from gateway.auth.scopes import INTERACTION_ACTION, scopes_of
from gateway.fhir.bundles import withhold_entries
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, ReleaseHook, Requester
from gateway.fhir.errors import Forbidden, not_known
from gateway.fhir.indexing import split_reference
from gateway.fhir.search_parameters import SEARCH_PARAMETERS
from gateway.fhir.validation import iter_path


def is_patient_data(resource_type: str) -> bool:
    """Patient and every type in the patient compartment (those with a `patient` parameter)."""
    return resource_type == "Patient" or "patient" in SEARCH_PARAMETERS.get(resource_type, {})


def in_compartment(resource: dict[str, Any], patient_id: str, base_url: str) -> bool:
    resource_type = resource.get("resourceType", "")
    if resource_type == "Patient":
        return bool(resource.get("id") == patient_id)
    param = SEARCH_PARAMETERS.get(resource_type, {}).get("patient")
    if param is None:
        return True  # not patient data: Practitioner, Organization, Location, ...
    for path in param.paths:
        for value, _ in iter_path(resource, f"{resource_type}.{path}"):
            if isinstance(value, dict) and split_reference(value.get("reference", ""), base_url) == (
                "Patient",
                patient_id,
            ):
                return True
    return False


def _context_of(requester: Requester, resource_type: str, action: str) -> str | None:
    """The broadest context whose scopes allow the action: system, then user, then patient."""
    scopes = scopes_of(requester.scopes)
    for context in ("system", "user", "patient"):
        if scopes.allowing(context, resource_type, action):
            return context
    return None


COMPLIANCE_OFFICER = "compliance-officer"


class SmartAuthorization:
    """`consent_decides`: user-level reads of patient data go on to the consent engine (in the
    release hook) instead of being refused here."""

    def __init__(self, base_url: str, consent_decides: bool = False) -> None:
        self.base_url = base_url
        self.consent_decides = consent_decides

    def authorize(self, request: FhirRequest, interaction: Interaction) -> None:
        requester = request.requester
        if interaction.name in ("capabilities", "transaction", "batch"):
            return  # public, or decided entry by entry
        action = INTERACTION_ACTION.get(interaction.name)
        if action is None:
            raise Forbidden(f"the {interaction.name} interaction is not available to SMART clients")
        resource_type = interaction.resource_type or "*"
        context = _context_of(requester, resource_type, action)
        if context is None:
            raise Forbidden(
                f"the token's scopes do not allow '{action}' on {resource_type}",
                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )
        if (
            resource_type == "Consent"
            and action in ("c", "u")
            and isinstance(request.body, dict)
            and is_court_order(request.body)
            and requester.role != COMPLIANCE_OFFICER
        ):
            # §2.61: an order authorises only once a compliance officer has checked and registered it.
            raise Forbidden("court orders are registered by compliance officers")
        if context == "system":
            return
        if resource_type == "*":
            raise Forbidden("system-wide history is for backend services")
        if context == "user":
            if is_patient_data(resource_type):
                if not self.consent_decides:
                    # Privacy first: user-level access to patient data is the consent engine's
                    # decision; without it, the answer is no.
                    raise Forbidden(
                        f"{resource_type} is patient data; user-level access to it needs the consent engine's decision"
                    )
                # Compliance officers create and revoke Consents; otherwise users read, never write.
                officer_consent = resource_type == "Consent" and request.requester.role == COMPLIANCE_OFFICER
                if action not in ("r", "s") and not (officer_consent and action in ("c", "u")):
                    raise Forbidden("user-level tokens read patient data; they do not write it")
            return
        self._patient_context(request, interaction, requester, resource_type, action)

    def _patient_context(
        self, request: FhirRequest, interaction: Interaction, requester: Requester, resource_type: str, action: str
    ) -> None:
        patient = requester.patient
        if not patient:
            raise Forbidden("a patient/ scope needs a patient in the launch context")
        if not is_patient_data(resource_type):
            if action not in ("r", "s"):
                raise Forbidden(f"patient-level tokens may not write {resource_type}")
            return
        if action == "s":
            if interaction.name == "responder-match":
                raise Forbidden("matching a person is for user-level tokens")
            if interaction.name != "search-type":
                raise Forbidden("history is not available to patient-level tokens")
            request.params.append(("_id", patient) if resource_type == "Patient" else ("patient", patient))
        elif action == "r":
            if resource_type == "Patient" and interaction.resource_id != patient:
                raise not_known("Patient", interaction.resource_id)
        elif action in ("c", "u"):
            body = request.body
            if (
                interaction.name == "patch"
                or not isinstance(body, dict)
                or not in_compartment(body, patient, self.base_url)
            ):
                raise Forbidden("patient-level tokens may write only resources about the launch patient")
        else:
            raise Forbidden("patient-level tokens may not delete")


class SmartRelease:
    """Withholds what the requester's context may not see, then hands over to the next hook."""

    def __init__(self, base_url: str, inner: ReleaseHook, consent_decides: bool = False) -> None:
        self.base_url = base_url
        self.inner = inner
        self.consent_decides = consent_decides

    def _visible(self, requester: Requester, resource: dict[str, Any]) -> bool:
        resource_type = str(resource.get("resourceType", ""))
        if resource_type == "OperationOutcome":
            return True
        scopes = scopes_of(requester.scopes)
        if scopes.allowing("system", resource_type, "r") or scopes.allowing("system", resource_type, "s"):
            return True
        if not is_patient_data(resource_type):
            return True
        if requester.patient and (
            scopes.allowing("patient", resource_type, "r") or scopes.allowing("patient", resource_type, "s")
        ):
            return in_compartment(resource, requester.patient, self.base_url)
        # user/ scopes: the consent engine (the next hook) decides, item by item.
        return self.consent_decides and bool(
            scopes.allowing("user", resource_type, "r") or scopes.allowing("user", resource_type, "s")
        )

    def release(
        self, request: FhirRequest, interaction: Interaction, response: FhirResponse, repository: Any, now: datetime
    ) -> FhirResponse:
        requester = request.requester
        body = response.resource
        if (
            body is not None
            and body.get("resourceType") == "Bundle"
            and interaction.name not in ("transaction", "batch")
        ):
            entries = body.get("entry") or []
            kept = [
                e for e in entries if not isinstance(e.get("resource"), dict) or self._visible(requester, e["resource"])
            ]
            if len(kept) != len(entries):
                if interaction.name == "history-instance":
                    raise not_known(interaction.resource_type, interaction.resource_id)
                response = replace(response, resource=withhold_entries(body, kept))
        elif body is not None and interaction.name in ("read", "vread") and not self._visible(requester, body):
            raise not_known(interaction.resource_type, interaction.resource_id)
        return self.inner.release(request, interaction, response, repository, now)

    def may_know(
        self, request: FhirRequest, patients: list[dict[str, Any]], repository: Any, now: datetime
    ) -> list[dict[str, Any]]:
        visible = [p for p in patients if self._visible(request.requester, p)]
        return self.inner.may_know(request, visible, repository, now)

    def releasable(
        self, request: FhirRequest, patient_id: str, record: list[dict[str, Any]], repository: Any, now: datetime
    ) -> list[Any]:
        """The consent engine's decision about a record, nothing disclosed (ConsentRelease.releasable)."""
        decide = getattr(self.inner, "releasable", None)
        return list(decide(request, patient_id, record, repository, now)) if decide else []
