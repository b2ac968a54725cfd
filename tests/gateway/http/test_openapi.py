"""/fhir/api-docs: an OpenAPI 3.0 description generated from the CapabilityStatement, public like
metadata, and loadable by schemathesis (which .ci/run then drives against the gateway)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from flask.testing import FlaskClient

from tests.gateway.auth.harness import Harness


def _docs(client: FlaskClient) -> dict[str, Any]:
    answer = client.get("/fhir/api-docs")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return dict(json.loads(answer.data))


def test_every_type_interaction_and_operation_of_the_statement_is_described(client: FlaskClient) -> None:
    docs = _docs(client)
    capability = json.loads(client.get("/fhir/metadata").data)
    assert docs["openapi"].startswith("3.0") and docs["servers"] == [{"url": "http://127.0.0.1:8080/fhir"}]
    paths = docs["paths"]
    for resource in capability["rest"][0]["resource"]:
        name = resource["type"]
        assert set(paths[f"/{name}"]) == {"get", "post"}
        assert {"get", "put", "patch", "delete"} <= set(paths[f"/{name}/{{id}}"])
        assert f"/{name}/{{id}}/_history/{{vid}}" in paths and f"/{name}/_search" in paths
        searched = {p["name"] for p in paths[f"/{name}"]["get"]["parameters"]}
        assert {p["name"] for p in resource["searchParam"]} <= searched
    assert "get" in paths["/Patient/{id}/$responder-brief"] and "post" in paths["/Patient/$responder-match"]
    assert "post" in paths["/"] and "get" in paths["/metadata"] and "get" in paths["/_history"]
    assert [o["name"] for o in capability["rest"][0]["operation"]] == ["export"]  # Bulk Data, system level
    assert capability["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    assert {p["name"] for p in paths["/$export"]["get"]["parameters"]} == {"_type", "_since", "Prefer"}
    assert "MedicinalProduct" not in json.dumps(paths)
    ids = [op["operationId"] for path in paths.values() for key, op in path.items() if key != "parameters"]
    assert len(ids) == len(set(ids)) > 1000  # unique, as generators need


def test_schemathesis_loads_it(client: FlaskClient) -> None:
    schema = schemathesis.openapi.from_dict(_docs(client))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 1000


def test_it_is_public_and_names_the_smart_endpoints(smart: Harness) -> None:
    import requests

    answer = requests.get(f"{smart.base}/api-docs", timeout=10)  # no token, as for metadata
    assert answer.status_code == 200
    flows = answer.json()["components"]["securitySchemes"]["smart"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == smart.token_url
