"""The CapabilityStatement, generated from what the engine implements (R4 capabilitystatement.html).

Resource types, interactions, operations (gateway/fhir/operations) and search parameters come from
the same declarations the router and the indexer use, so the statement cannot promise what the
server does not do.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway import __version__
from gateway.fhir.models import R4_TYPES_NOT_SUPPORTED, RESOURCE_TYPES
from gateway.fhir.operations import OPERATIONS
from gateway.fhir.search_parameters import SEARCH_PARAMETERS, SearchParameter

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type")  # fmt: skip
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
SYSTEM_OPERATIONS = (
    {"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export",
     "documentation": "Bulk Data export (system level, Prefer: respond-async; _type, _since) for Backend Services "
                      "clients: each resource goes out through its own search, released and audited page by page."},
)  # fmt: skip


def _search_param(param: SearchParameter) -> dict[str, Any]:
    return {
        "name": param.name,
        "definition": param.definition,
        "type": param.type,
        "documentation": param.documentation,
    }


def _common_params() -> list[dict[str, Any]]:
    return [
        {"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token",
         "documentation": "Logical id"},
        {"name": "_lastUpdated", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
         "type": "date", "documentation": "When the current version was stored (prefixes eq, ne, lt, gt, le, ge)"},
    ]  # fmt: skip


@cache
def _rest_resources() -> tuple[dict[str, Any], ...]:
    resources = []
    for resource_type in sorted(RESOURCE_TYPES):
        params = SEARCH_PARAMETERS[resource_type]
        includes = sorted(f"{resource_type}:{p.name}" for p in params.values() if p.type == "reference")
        revincludes = sorted(
            f"{other}:{p.name}"
            for other, other_params in SEARCH_PARAMETERS.items()
            for p in other_params.values()
            if p.type == "reference" and resource_type in p.target_types
        )
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "modified-since",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": includes or None,
            "searchRevInclude": revincludes or None,
            "searchParam": _common_params() + [_search_param(p) for p in params.values()],
        }
        operations = [
            {"name": o.name, "definition": o.definition, "documentation": o.documentation}
            for o in OPERATIONS
            if o.resource_type == resource_type
        ]
        if operations:
            entry["operation"] = operations
        resources.append({k: v for k, v in entry.items() if v is not None})
    return tuple(resources)


def capability_statement(base_url: str, security: dict[str, Any] | None = None) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "Transactions are atomic. Unknown search parameters are ignored with a warning "
        "unless the client sends Prefer: handling=strict. Not supported: the R4 4.0.1 resource types "
        + ", ".join(sorted(R4_TYPES_NOT_SUPPORTED))
        + " (resources are validated with R4B models, which dropped or redesigned them).",
    }
    if security:
        rest["security"] = security
    rest["resource"] = list(_rest_resources())
    rest["interaction"] = [{"code": code} for code in SYSTEM_INTERACTIONS]
    rest["operation"] = [dict(o) for o in SYSTEM_OPERATIONS]
    return {
        "resourceType": "CapabilityStatement",
        "id": "gateway",
        "url": f"{base_url}/metadata",
        "name": "CrisisResponseGateway",
        "title": "Crisis-response FHIR gateway",
        "status": "active",
        "experimental": False,
        "date": "2026-11-26",
        "publisher": "crisis-fhir-gateway contributors",
        "kind": "instance",
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "crisis-fhir-gateway", "version": __version__},
        "implementation": {"description": "Crisis-response FHIR gateway", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }
