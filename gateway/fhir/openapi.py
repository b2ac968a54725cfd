"""An OpenAPI 3.0 description generated from the CapabilityStatement, served at
`/fhir/api-docs` (HAPI serves one at the same place).

It is for tools (client generators, API explorers, the schemathesis run in `.ci/run`): every
path, method and search parameter comes from the statement, so it promises exactly what the
statement does. Resource bodies are described loosely (an object with its resourceType): FHIR's
own StructureDefinitions are the contract for their content, and the server's validation answers
with an OperationOutcome for anything else.
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.operations import find_operation

FHIR_JSON = "application/fhir+json"
ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"
ERROR = {"description": "An OperationOutcome saying what is wrong",
         "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}  # fmt: skip


def _resource_schema(resource_type: str | None) -> dict[str, Any]:
    kind: dict[str, Any] = {"type": "string"}
    if resource_type:
        kind["enum"] = [resource_type]
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": kind, "id": {"type": "string", "pattern": ID_PATTERN}},
        "additionalProperties": True,
    }


def _answer(description: str, schema: str = "Resource") -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _operation(operation_id: str, summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    responses = {"default": ERROR, **ok}
    return {"operationId": operation_id, "summary": summary, "responses": responses, **extra}


def _body(resource_type: str | None) -> dict[str, Any]:
    return {"required": True, "content": {FHIR_JSON: {"schema": _resource_schema(resource_type)}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": ID_PATTERN}}  # fmt: skip


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": "string"}}


PAGING = [_query("_count", "page size"), _query("_offset", "where the page starts")]


def _type_paths(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name = resource["type"]
    interactions = {i["code"] for i in resource.get("interaction", [])}
    search = [_query(p["name"], p.get("documentation") or p["type"]) for p in resource.get("searchParam", [])]
    rid = _path_param("id", f"the {name}'s logical id")
    paths: dict[str, dict[str, Any]] = {}
    kind: dict[str, Any] = {}
    if "search-type" in interactions:
        kind["get"] = _operation(f"search{name}", f"Search {name}", {"200": _answer("a searchset Bundle", "Bundle")},
                                 parameters=[*search, *PAGING, _query("_sort", "sort order")])  # fmt: skip
    if "create" in interactions:
        kind["post"] = _operation(f"create{name}", f"Create a {name}", {"201": _answer("the created resource")},
                                  requestBody=_body(name))  # fmt: skip
    paths[f"/{name}"] = kind
    instance: dict[str, Any] = {"parameters": [rid]}
    if "read" in interactions:
        instance["get"] = _operation(f"read{name}", f"Read a {name}", {"200": _answer("the resource")})
    if "update" in interactions:
        instance["put"] = _operation(f"update{name}", f"Update (or create) a {name}",
                                     {"200": _answer("the updated resource"), "201": _answer("the created resource")},
                                     requestBody=_body(name))  # fmt: skip
    if "patch" in interactions:
        instance["patch"] = _operation(f"patch{name}", f"Patch a {name} (JSON Patch)", {"200": _answer("the patched resource")},
                                       requestBody={"required": True, "content": {"application/json-patch+json": {
                                           "schema": {"type": "array", "items": {"type": "object"}}}}})  # fmt: skip
    if "delete" in interactions:
        instance["delete"] = _operation(f"delete{name}", f"Delete a {name}", {"204": {"description": "deleted"}})
    paths[f"/{name}/{{id}}"] = instance
    if "history-instance" in interactions:
        paths[f"/{name}/{{id}}/_history"] = {"get": _operation(
            f"history{name}Instance", f"The versions of a {name}", {"200": _answer("a history Bundle", "Bundle")},
            parameters=[rid, *PAGING, _query("_since", "versions after this instant")])}  # fmt: skip
    if "vread" in interactions:
        paths[f"/{name}/{{id}}/_history/{{vid}}"] = {"get": _operation(
            f"vread{name}", f"One version of a {name}", {"200": _answer("the version")},
            parameters=[rid, _path_param("vid", "the version id")])}  # fmt: skip
    if "history-type" in interactions:
        paths[f"/{name}/_history"] = {"get": _operation(
            f"history{name}Type", f"The versions of every {name}", {"200": _answer("a history Bundle", "Bundle")},
            parameters=[*PAGING, _query("_since", "versions after this instant")])}  # fmt: skip
    if "search-type" in interactions:
        paths[f"/{name}/_search"] = {"post": _operation(
            f"search{name}Post", f"Search {name} with the parameters in the body",
            {"200": _answer("a searchset Bundle", "Bundle")},
            requestBody={"required": True, "content": {"application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {p["name"]: p["schema"] for p in search}}}}})}  # fmt: skip
    for declared in resource.get("operation", []):
        paths.update(_operation_paths(name, declared))
    return paths


def _operation_paths(resource_type: str, declared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = [o for o in (find_operation(resource_type, i, declared["name"]) for i in (True, False)) if o]
    paths: dict[str, dict[str, Any]] = {}
    for operation in found:
        path = (
            f"/{resource_type}/{{id}}/${operation.name}"
            if operation.instance
            else f"/{resource_type}/${operation.name}"
        )
        spec = _operation(f"{operation.name.replace('-', '_')}", declared.get("documentation") or operation.name,
                          {"200": _answer("the operation's answer")},
                          parameters=[_query("purpose", "the purpose of use (required)")]
                          + ([_path_param("id", "the Patient's logical id")] if operation.instance else []))  # fmt: skip
        if operation.method == "POST":
            spec["requestBody"] = _body("Parameters")
        paths[path] = {operation.method.lower(): spec}
    return paths


def openapi_from_capability(capability: dict[str, Any]) -> dict[str, Any]:
    rest = capability["rest"][0]
    paths: dict[str, dict[str, Any]] = {
        "/metadata": {
            "get": _operation(
                "capabilities", "The CapabilityStatement", {"200": _answer("the CapabilityStatement")}, security=[]
            )
        },  # fmt: skip
    }
    system = {i["code"] for i in rest.get("interaction", [])}
    if system & {"transaction", "batch"}:
        paths["/"] = {"post": _operation("transaction", "A transaction or batch Bundle",
                                         {"200": _answer("a transaction-response or batch-response Bundle", "Bundle")},
                                         requestBody=_body("Bundle"))}  # fmt: skip
    if "history-system" in system:
        paths["/_history"] = {"get": _operation("historySystem", "Every version of every resource",
                                                {"200": _answer("a history Bundle", "Bundle")}, parameters=PAGING)}  # fmt: skip
    if any(o.get("name") == "export" for o in rest.get("operation", [])):
        paths["/$export"] = {"get": _operation(
            "bulkExport", "Bulk Data export (system level); answers 202 with Content-Location to poll",
            {"202": {"description": "accepted: poll the Content-Location"}},
            parameters=[_query("_type", "resource types, comma-separated"),
                        _query("_since", "only resources changed at or after this instant"),
                        {"name": "Prefer", "in": "header", "required": True, "description": "respond-async",
                         "schema": {"type": "string"}}])}  # fmt: skip
    for resource in rest.get("resource", []):
        paths.update(_type_paths(resource))
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": capability.get("title") or capability.get("name") or "FHIR server",
            "version": (capability.get("software") or {}).get("version", "0"),
            "description": f"FHIR {capability.get('fhirVersion')} REST API, generated from the CapabilityStatement. "
            + str(rest.get("documentation") or ""),
        },
        "servers": [{"url": capability["implementation"]["url"]}],
        "paths": paths,
        "components": {
            "schemas": {
                "Resource": _resource_schema(None),
                "Bundle": _resource_schema("Bundle"),
                "OperationOutcome": {
                    **_resource_schema("OperationOutcome"),
                    "required": ["resourceType", "issue"],
                },  # fmt: skip
            }
        },
    }
    oauth = _oauth_uris(rest.get("security") or {})
    if oauth:
        document["components"]["securitySchemes"] = {
            "smart": {"type": "oauth2", "description": "SMART on FHIR (see .well-known/smart-configuration)",
                      "flows": {"authorizationCode": {"authorizationUrl": oauth["authorize"], "tokenUrl": oauth["token"],
                                                      "scopes": {}},
                                "clientCredentials": {"tokenUrl": oauth["token"], "scopes": {}}}},
        }  # fmt: skip
        document["security"] = [{"smart": []}]
    return document


def _oauth_uris(security: dict[str, Any]) -> dict[str, str]:
    for extension in security.get("extension", []):
        if extension.get("url", "").endswith("StructureDefinition/oauth-uris"):
            return {e["url"]: e.get("valueUri", "") for e in extension.get("extension", [])}
    return {}
