"""The REST interactions of http.html, through the Flask adapter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import BASE_URL, fhir_json, load_fixture

JSON_PATCH = "application/json-patch+json"


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "MPI100001"}],
        "name": [{"use": "official", "family": "Rivera", "given": ["Alex", "Jo"]}],
        "gender": "female",
        "birthDate": "1987-04-12",
        "telecom": [{"system": "phone", "value": "(555) 010-4477", "use": "mobile"}],
        "address": [{"line": ["12 Harbor Way"], "city": "Bayview", "postalCode": "94103"}],
        **extra,
    }


def create(client: FlaskClient, resource: dict[str, Any], **headers: str) -> Any:
    response = client.post(f"/fhir/{resource['resourceType']}", headers=headers, **fhir_json(resource))
    assert response.status_code == 201, response.json
    return response


def assert_outcome(response: Any, status: int, expression: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json
    assert body["resourceType"] == "OperationOutcome"
    for issue in body["issue"]:
        assert issue["expression"], issue  # every issue points somewhere
    if expression:
        assert expression in [e for issue in body["issue"] for e in issue["expression"]]
    return body


def test_create_assigns_id_version_and_headers(client: FlaskClient) -> None:
    response = create(client, patient(id="client-chosen"))
    body = response.json
    assert body["id"] != "client-chosen"  # POST ignores a client id
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{BASE_URL}/Patient/{body['id']}/_history/1"
    assert response.headers["Last-Modified"].endswith("GMT")
    read = client.get(f"/fhir/Patient/{body['id']}")
    assert read.status_code == 200
    assert read.json == body


def test_update_creates_versions_and_vread_returns_each(client: FlaskClient) -> None:
    first = client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    assert first.status_code == 201
    second = client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1", gender="male")))
    assert second.status_code == 200
    assert second.headers["ETag"] == 'W/"2"'
    assert client.get("/fhir/Patient/p1/_history/1").json["gender"] == "female"
    assert client.get("/fhir/Patient/p1/_history/2").json["gender"] == "male"
    assert client.get("/fhir/Patient/p1/_history/3").status_code == 404
    history = client.get("/fhir/Patient/p1/_history").json
    assert history["type"] == "history"
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']


def test_identical_update_creates_no_new_version(client: FlaskClient) -> None:
    client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    again = client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    assert again.status_code == 200
    assert again.headers["ETag"] == 'W/"1"'


def test_if_match_guards_updates(client: FlaskClient) -> None:
    client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    stale = client.put("/fhir/Patient/p1", headers={"If-Match": 'W/"7"'}, **fhir_json(patient(id="p1", gender="male")))
    assert_outcome(stale, 412)
    fresh = client.put("/fhir/Patient/p1", headers={"If-Match": 'W/"1"'}, **fhir_json(patient(id="p1", gender="male")))
    assert fresh.status_code == 200
    malformed = client.put("/fhir/Patient/p1", headers={"If-Match": "one"}, **fhir_json(patient(id="p1")))
    assert_outcome(malformed, 400)


def test_update_with_mismatched_id_is_refused(client: FlaskClient) -> None:
    assert_outcome(client.put("/fhir/Patient/p1", **fhir_json(patient(id="p2"))), 400, "Patient.id")
    assert_outcome(client.put("/fhir/Patient/p1", **fhir_json(patient())), 400, "Patient.id")


def test_delete_then_read_is_gone_and_history_keeps_it(client: FlaskClient) -> None:
    client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    assert client.delete("/fhir/Patient/p1").status_code == 204
    assert_outcome(client.get("/fhir/Patient/p1"), 410)
    assert client.delete("/fhir/Patient/p1").status_code == 204  # idempotent
    assert client.delete("/fhir/Patient/never").status_code == 204
    history = client.get("/fhir/Patient/p1/_history").json
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT"]
    assert_outcome(client.get("/fhir/Patient/p1/_history/2"), 410)
    assert client.get("/fhir/Patient?_id=p1").json["total"] == 0
    recreated = client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    assert recreated.status_code == 201
    assert recreated.json["meta"]["versionId"] == "3"


def test_read_of_unknown_resource_is_404(client: FlaskClient) -> None:
    assert_outcome(client.get("/fhir/Patient/nope"), 404)


def test_conditional_create(client: FlaskClient) -> None:
    condition = {"If-None-Exist": "identifier=urn:oid:2.16.840.1.113883.3.9999.1|MPI100001"}
    first = create(client, patient(), **condition)
    second = client.post("/fhir/Patient", headers=condition, **fhir_json(patient()))
    assert second.status_code == 200
    assert second.json["id"] == first.json["id"]
    create(client, patient())  # a second match now exists
    third = client.post("/fhir/Patient", headers=condition, **fhir_json(patient()))
    assert_outcome(third, 412)


def test_conditional_update(client: FlaskClient) -> None:
    url = "/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.9999.1|MPI100001"
    created = client.put(url, **fhir_json(patient()))
    assert created.status_code == 201
    updated = client.put(url, **fhir_json(patient(gender="male")))
    assert updated.status_code == 200
    assert updated.json["id"] == created.json["id"]
    assert updated.json["meta"]["versionId"] == "2"
    create(client, patient())
    assert_outcome(client.put(url, **fhir_json(patient())), 412)


def test_conditional_delete(client: FlaskClient) -> None:
    first = create(client, patient())
    assert client.delete("/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.9999.1|MPI100001").status_code == 204
    assert client.get(f"/fhir/Patient/{first.json['id']}").status_code == 410


@pytest.mark.parametrize(
    ("prefer", "has_body", "resource_type"),
    [("return=minimal", False, None), ("return=representation", True, "Patient"),
     ("return=OperationOutcome", True, "OperationOutcome")],
)  # fmt: skip
def test_prefer_return(client: FlaskClient, prefer: str, has_body: bool, resource_type: str | None) -> None:
    response = client.post("/fhir/Patient", headers={"Prefer": prefer}, **fhir_json(patient()))
    assert response.status_code == 201
    assert bool(response.data) == has_body
    if has_body:
        assert response.json["resourceType"] == resource_type


def test_json_patch(client: FlaskClient) -> None:
    client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    patch = [{"op": "replace", "path": "/gender", "value": "other"}]
    response = client.patch("/fhir/Patient/p1", data=json.dumps(patch), content_type=JSON_PATCH)
    assert response.status_code == 200
    assert response.json["gender"] == "other"
    bad = [{"op": "replace", "path": "/gender", "value": "robot"}]
    assert_outcome(
        client.patch("/fhir/Patient/p1", data=json.dumps(bad), content_type=JSON_PATCH), 422, "Patient.gender"
    )
    assert_outcome(client.patch("/fhir/Patient/p1", data=json.dumps(patch), content_type="application/fhir+json"), 415)


def test_xml_in_and_out(client: FlaskClient) -> None:
    xml = (b'<Patient xmlns="http://hl7.org/fhir"><id value="x1"/><name><family value="Nguyen"/></name>'
           b'<gender value="male"/></Patient>')  # fmt: skip
    assert client.put("/fhir/Patient/x1", data=xml, content_type="application/fhir+xml").status_code == 201
    response = client.get("/fhir/Patient/x1?_format=xml")
    assert response.headers["Content-Type"].startswith("application/fhir+xml")
    assert b'<family value="Nguyen"/>' in response.data
    assert client.get("/fhir/Patient/x1", headers={"Accept": "application/fhir+xml"}).data.startswith(b"<?xml")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/fhir/Patient", {"data": "{", "content_type": "application/fhir+json"}, 400),
        ("post", "/fhir/Patient", {"data": "{}", "content_type": "text/plain"}, 415),
        ("post", "/fhir/Patient", {"data": "{}"}, 415),
        ("post", "/fhir/Patient", {"data": "[]", "content_type": "application/fhir+json"}, 400),
        ("post", "/fhir/Patient", {"data": '{"resourceType":"Observation","status":"final","code":{"text":"x"}}',
                                   "content_type": "application/fhir+json"}, 400),
        ("post", "/fhir/Frobnicator", {"data": "{}", "content_type": "application/fhir+json"}, 404),
        ("get", "/fhir/Patient/x?_format=pdf", {}, 406),
        ("get", "/fhir/Patient/x", {"headers": {"Accept": "application/pdf"}}, 406),
        ("post", "/fhir/Patient/x", {"data": "{}", "content_type": "application/fhir+json"}, 405),
        ("delete", "/fhir/metadata", {}, 405),
        ("get", "/fhir/Patient/bad id", {}, 400),
        ("post", "/fhir/Patient/$everything", {"data": "{}", "content_type": "application/fhir+json"}, 400),
        ("post", "/fhir", {"data": '{"resourceType":"Patient"}', "content_type": "application/fhir+json"}, 400),
    ],
)  # fmt: skip
def test_client_mistakes_get_operation_outcomes(
    client: FlaskClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    assert_outcome(getattr(client, method)(path, **kwargs), status)


def test_oversized_body_is_413(client: FlaskClient) -> None:
    huge = json.dumps(patient(text={"status": "generated", "div": "<div>" + "x" * 3_000_000 + "</div>"}))
    assert_outcome(client.post("/fhir/Patient", data=huge, content_type="application/fhir+json"), 413)


def test_conditional_and_placeholder_references_outside_transactions_are_refused(client: FlaskClient) -> None:
    body = {"resourceType": "Flag", "status": "active", "code": {"text": "x"},
            "subject": {"reference": "Patient?identifier=x|1"}}  # fmt: skip
    assert_outcome(client.post("/fhir/Flag", **fhir_json(body)), 400, "Flag.subject.reference")


def test_read_with_if_none_match_is_304(client: FlaskClient) -> None:
    client.put("/fhir/Patient/p1", **fhir_json(patient(id="p1")))
    assert client.get("/fhir/Patient/p1", headers={"If-None-Match": 'W/"1"'}).status_code == 304


def test_capability_statement_is_generated_and_valid_r4(client: FlaskClient) -> None:
    from gateway.fhir.models import model_class

    body = client.get("/fhir/metadata").json
    model_class("CapabilityStatement").model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    patient_entry = next(r for r in body["rest"][0]["resource"] if r["type"] == "Patient")
    names = {p["name"] for p in patient_entry["searchParam"]}
    assert {"_id", "_lastUpdated", "identifier", "name", "family", "given", "birthdate", "gender", "telecom",
            "address-postalcode"} <= names  # fmt: skip
    assert {i["code"] for i in body["rest"][0]["interaction"]} == {"transaction", "batch", "history-system"}
    assert "SubscriptionTopic" not in {r["type"] for r in body["rest"][0]["resource"]}


def test_history_of_type_and_system(client: FlaskClient) -> None:
    create(client, patient())
    create(client, load_fixture("hl7-r4-examples/organization-example.json"))
    assert client.get("/fhir/Patient/_history").json["total"] == 1
    assert client.get("/fhir/_history").json["total"] == 2
    assert client.get("/fhir/_history?_since=2999-01-01").json["total"] == 0


def test_document_bundle_with_internal_urn_references_is_stored(client: FlaskClient) -> None:
    document = {
        "resourceType": "Bundle", "type": "document", "id": "doc1",
        "entry": [
            {"fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
             "resource": {"resourceType": "Composition", "status": "final", "type": {"text": "brief"},
                          "date": "2026-11-26", "title": "t", "author": [{"display": "gateway"}],
                          "subject": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e1"}}},
            {"fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e1", "resource": patient()},
        ],
    }  # fmt: skip
    assert client.put("/fhir/Bundle/doc1", **fhir_json(document)).status_code == 201
