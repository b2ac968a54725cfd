"""No client mistake produces a 500 (property tests with hypothesis)."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ELEMENT = st.sampled_from(["name", "gender", "birthDate", "telecom", "identifier", "address", "meta", "id", "active",
                           "managingOrganization", "link", "contact", "extension", "text", "resourceType"])  # fmt: skip
PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROFILE
@given(body=st.dictionaries(ELEMENT, JSON, max_size=5))
def test_random_patient_bodies_never_500(client: FlaskClient, body: dict[str, object]) -> None:
    body.setdefault("resourceType", "Patient")
    for response in (
        client.post("/fhir/Patient", data=json.dumps(body), content_type="application/fhir+json"),
        client.put("/fhir/Patient/x1", data=json.dumps(body), content_type="application/fhir+json"),
    ):
        assert response.status_code < 500, response.data


@PROFILE
@given(
    entries=st.lists(st.dictionaries(st.sampled_from(["fullUrl", "resource", "request"]), JSON, max_size=3), max_size=4)
)
def test_random_bundles_never_500(client: FlaskClient, entries: list[dict[str, object]]) -> None:
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
        response = client.post("/fhir", data=json.dumps(bundle), content_type="application/fhir+json")
        assert response.status_code < 500, response.data


@PROFILE
@given(path=st.text(alphabet="abcPatient/_$?&=|:.-%0123456789", max_size=40))
def test_random_urls_never_500(client: FlaskClient, path: str) -> None:
    assert client.get(f"/fhir/{path}").status_code < 500
    assert client.delete(f"/fhir/{path}").status_code < 500


@PROFILE
@given(body=st.binary(max_size=200))
def test_random_bytes_never_500(client: FlaskClient, body: bytes) -> None:
    for content_type in ("application/fhir+json", "application/fhir+xml"):
        assert client.post("/fhir/Patient", data=body, content_type=content_type).status_code < 500
