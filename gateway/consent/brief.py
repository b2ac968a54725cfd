"""The last release hook of `$responder-brief`: what the consent engine let through becomes the
responder brief (mappings.build_brief). Built only from released resources, so the document can
neither show nor hint at what was withheld."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.auth.accounts import utcnow
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction
from gateway.fhir.errors import not_known
from mappings import BriefContext, build_brief

BASIS_TEXT = {
    "consent": "the patient's consent",
    "emergency": "a medical emergency (42 CFR 2.51)",
    "treatment": "treatment between providers (HIPAA)",
    "jurisdiction": "treatment by clinical staff (state law)",
    "own-records": "your organization's own records",
    "compliance-administration": "compliance administration",
}


class BriefRelease:
    def __init__(self, base_url: str, clinical_roles: frozenset[str]) -> None:
        self.base_url = base_url
        self.clinical_roles = clinical_roles

    def release(self, request: FhirRequest, interaction: Interaction, response: FhirResponse) -> FhirResponse:
        body = response.resource
        if interaction.name != "responder-brief" or body is None or interaction.resource_id is None:
            return response
        resources: list[dict[str, Any]] = []
        notice = None
        for entry in body.get("entry") or []:
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            if resource.get("resourceType") == "OperationOutcome":
                notice = "\n".join(str(i.get("diagnostics", "")) for i in resource.get("issue") or [])
                continue
            resources.append(resource)
        if not any(r.get("resourceType") == "Patient" for r in resources):
            raise not_known("Patient", interaction.resource_id)
        context = BriefContext(
            base_url=self.base_url,
            as_of=utcnow(),
            clinical=request.requester.role in self.clinical_roles,
            basis=self._basis(request),
            notice=notice,
        )
        return replace(response, resource=build_brief(interaction.resource_id, resources, context))

    def may_know(self, request: FhirRequest, patients: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return patients

    @staticmethod
    def _basis(request: FhirRequest) -> tuple[str, ...]:
        found: list[str] = []
        for record in request.audit:
            for released in record.body.get("released", []):
                basis = str(released.get("basis"))
                consents = released.get("consents") or []
                text = BASIS_TEXT.get(basis, basis) + (f" ({', '.join(consents)})" if consents else "")
                if text not in found:
                    found.append(text)
        return tuple(found)
