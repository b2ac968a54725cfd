"""GET Patient/{id}/$responder-brief: the one-screen responder brief, a FHIR document.

`handle` reads the patient's record (one compartment query) and answers with it as a collection
Bundle, with the Consents, Encounters and episodes it read as the decision's inputs; the release
hook decides what of it may go; `present` then builds the document from exactly the released
items and the bases they went on (mappings.build_brief). A brief that releases nothing is the
same 404 as a brief of nobody.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from consent_engine.codes import DATA_CLASSES, DEMOGRAPHICS
from consent_engine.fhir import data_class
from gateway.fhir import bundles
from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, OperationContext
from gateway.fhir.errors import BadRequest, not_known
from gateway.fhir.everything import DECISION_INPUTS, patient_record
from gateway.fhir.operations.purpose import require_purpose
from gateway.fhir.repository import Repository
from mappings import BriefContext, build_brief


def handle(
    engine: OperationContext, request: FhirRequest, repository: Repository, now: datetime, interaction: Interaction
) -> FhirResponse:
    assert interaction.resource_id
    require_purpose(request, "Parameters.parameter.where(name='purpose')")
    classes = _classes(request)
    record = patient_record(repository, engine.config.base_url, interaction.resource_id)
    if not record:
        raise not_known("Patient", interaction.resource_id)
    inputs = [item.content for item in record if item.type in DECISION_INPUTS and item.content]
    entries = [
        bundles.entry_for(engine.config.base_url, item)
        for item in record
        if item.type != "Consent"
        and (classes is None or not item.content or data_class(item.content) in classes | {DEMOGRAPHICS})
    ]
    return FhirResponse(200, {"resourceType": "Bundle", "type": "collection", "entry": entries}, inputs=inputs)


def present(
    engine: OperationContext, request: FhirRequest, response: FhirResponse, interaction: Interaction, now: datetime
) -> FhirResponse:
    """The document, from what was released; nothing released is nothing on file (404)."""
    assert interaction.resource_id
    body = response.resource or {}
    resources: list[dict[str, Any]] = [
        e["resource"] for e in body.get("entry") or [] if isinstance(e.get("resource"), dict)
    ]
    release = response.disclosure
    if release is not None and not release.released:
        raise not_known("Patient", interaction.resource_id)
    if release is None and not any(r.get("resourceType") == "Patient" for r in resources):
        raise not_known("Patient", interaction.resource_id)
    context = BriefContext(
        base_url=engine.config.base_url,
        as_of=now,
        clinical=release is None or not release.strip_sensitivity,
        bases=release.bases if release is not None else (),
        notice=release.notice if release is not None else None,
        scope=release.scope_explanations if release is not None else (),
    )
    return replace(response, resource=build_brief(interaction.resource_id, resources, context))


def _classes(request: FhirRequest) -> frozenset[str] | None:
    wanted = request.param("class")
    if not wanted:
        return None
    classes = frozenset(c.strip() for c in wanted.split(",") if c.strip())
    unknown = classes - DATA_CLASSES
    if unknown:
        raise BadRequest(f"class takes data classes ({', '.join(sorted(DATA_CLASSES))}); unknown: "
                         f"{', '.join(sorted(unknown))}", expression="Parameters.parameter.where(name='class')")  # fmt: skip
    return classes
