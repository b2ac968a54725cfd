"""Every HL7 R4 example round-trips: JSON in -> JSON out (equal apart from meta), and
XML in -> JSON -> XML."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree

from tests.conftest import FIXTURES, fhir_json, load_fixture

HL7_EXAMPLES = sorted(p.name for p in (FIXTURES / "hl7-r4-examples").glob("*.json"))


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the gateway adds to meta: versionId, lastUpdated, and the labels
    and data-class tag of labelling at ingest (tests/gateway/consent checks those)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated", "tag",
                                                                                 "security")}  # fmt: skip
    rest = {k: v for k, v in resource.items() if k != "meta"}
    return {**rest, "meta": meta} if meta else rest


def codes(codings: list[dict[str, Any]] | None) -> set[tuple[str | None, str]]:
    return {(c.get("system"), c["code"]) for c in codings or []}


def assert_sender_meta_kept(stored: dict[str, Any], sent: dict[str, Any]) -> None:
    """Every tag and security label the sender put there is still there."""
    for element in ("tag", "security"):
        sent_codes = {code for _, code in codes((sent.get("meta") or {}).get(element))}
        assert sent_codes <= {code for _, code in codes(stored["meta"].get(element))}, element


@pytest.mark.parametrize("name", HL7_EXAMPLES)
def test_json_round_trip(client: FlaskClient, name: str) -> None:
    resource = load_fixture(f"hl7-r4-examples/{name}")
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    assert client.put(url, **fhir_json(resource)).status_code == 201
    stored = client.get(url).json
    assert without_meta(stored) == without_meta(resource)
    assert_sender_meta_kept(stored, resource)
    assert stored["meta"]["versionId"] == "1"


def canonical_narratives(value: Any) -> Any:
    """XHTML narratives compared as canonical XML (`&quot;` and `"` are the same text), and UTC
    offsets as the XML writer of fhir.resources spells them (`+00:00` becomes `Z`)."""
    if isinstance(value, dict):
        return {
            k: etree.tostring(etree.fromstring(v), method="c14n") if k == "div" and isinstance(v, str)
            else canonical_narratives(v)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [canonical_narratives(item) for item in value]
    if isinstance(value, str) and value.endswith("+00:00") and value[:4].isdigit():
        return value.removesuffix("+00:00") + "Z"
    return value


@pytest.mark.parametrize("name", HL7_EXAMPLES)
def test_xml_round_trip(client: FlaskClient, name: str) -> None:
    resource = load_fixture(f"hl7-r4-examples/{name}")
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    client.put(url, **fhir_json(resource))
    xml = client.get(url + "?_format=xml").data
    etree.fromstring(xml)  # well-formed
    # XML in (as a new id) -> JSON out -> the same content
    copy_id = f"{resource['id'][:56]}-xmlcopy"
    xml_in = xml.replace(f'<id value="{resource["id"]}"/>'.encode(), f'<id value="{copy_id}"/>'.encode(), 1)
    response = client.put(
        f"/fhir/{resource['resourceType']}/{copy_id}", data=xml_in, content_type="application/fhir+xml"
    )
    assert response.status_code == 201, response.json
    copied = client.get(f"/fhir/{resource['resourceType']}/{copy_id}").json
    assert canonical_narratives(without_meta({**copied, "id": resource["id"]})) == canonical_narratives(
        without_meta(resource)
    )
    assert (
        client.get(f"/fhir/{resource['resourceType']}/{copy_id}?_format=xml")
        .data.replace(copy_id.encode(), resource["id"].encode())
        .split(b"<meta>")[0]
        == xml.split(b"<meta>")[0]
    )


def test_empty_xml_fixture_is_a_clear_400(client: FlaskClient) -> None:
    data = (FIXTURES / "transactions" / "Patient.xml").read_bytes()
    response = client.post("/fhir/Patient", data=data, content_type="application/fhir+xml")
    assert response.status_code == 400
    assert "empty" in response.json["issue"][0]["diagnostics"]
