import time

import pytest

from gateway.fhir.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from gateway.fhir.formats import parse_json, parse_xml, request_format, response_format

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, b"<!doctype html><html/>"])
def test_xml_with_doctype_or_entities_is_refused_quickly(payload: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(BadRequest, match="DOCTYPE"):
        parse_xml(payload)
    assert time.perf_counter() - started < 0.1


def test_xml_outside_the_fhir_namespace_is_refused() -> None:
    with pytest.raises(BadRequest, match="namespace"):
        parse_xml(b"<Patient><id value='1'/></Patient>")


def test_xml_patient_parses_to_fhir_json_with_bom() -> None:
    body = b'\xef\xbb\xbf<Patient xmlns="http://hl7.org/fhir"><id value="x1"/><gender value="female"/></Patient>'
    assert parse_xml(body) == {"resourceType": "Patient", "id": "x1", "gender": "female"}


def test_json_with_bom_parses() -> None:
    assert parse_json(b'\xef\xbb\xbf{"resourceType": "Patient"}', 64) == {"resourceType": "Patient"}


def test_deep_json_is_refused() -> None:
    deep = b'{"a":' * 100 + b"1" + b"}" * 100
    with pytest.raises(BadRequest, match="nesting"):
        parse_json(deep, 64)


@pytest.mark.parametrize("body", [b"", b"   ", b"{", b"[1,", b"\xff\xfe"])
def test_malformed_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(body, 64)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/fhir+json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/fhir+xml;charset=UTF-8", "xml"),
        ("text/xml", "xml"),
    ],
)
def test_request_formats(content_type: str, expected: str) -> None:
    assert request_format(content_type) == expected


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/fhir+json; charset=latin-1"]
)
def test_unsupported_request_formats(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        request_format(content_type)


@pytest.mark.parametrize(
    ("format_param", "accept", "expected"),
    [
        (None, None, "json"),
        (None, "application/fhir+xml", "xml"),
        (None, "text/html,application/xhtml+xml,*/*;q=0.8", "json"),
        (None, "application/fhir+xml;q=0.5, application/fhir+json", "json"),
        ("xml", "application/fhir+json", "xml"),
        ("application/fhir+json", None, "json"),
    ],
)
def test_response_format_negotiation(format_param: str | None, accept: str | None, expected: str) -> None:
    assert response_format(format_param, accept) == expected


@pytest.mark.parametrize(("format_param", "accept"), [("turtle", None), (None, "application/pdf")])
def test_unavailable_response_formats(format_param: str | None, accept: str | None) -> None:
    with pytest.raises(NotAcceptable):
        response_format(format_param, accept)
