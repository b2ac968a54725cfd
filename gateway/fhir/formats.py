"""FHIR wire formats: JSON and XML in and out, and content negotiation (R4 http.html#mime-type).

Parsing is where hostile input arrives first, so the parsers here are locked down: JSON nesting
depth is bounded, and the XML parser refuses DOCTYPEs and entities outright and never touches the
network (billion-laughs and XXE payloads are refused before any expansion can happen).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from lxml import etree

from gateway.fhir import fhir_xml
from gateway.fhir.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from gateway.fhir.fhir_xml import XmlShapeError, load_xml

Format = Literal["json", "xml"]

JSON_MIME = "application/fhir+json"
XML_MIME = "application/fhir+xml"
FHIR_VERSION = "4.0"

_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "text/json"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml"}
_FORMAT_PARAM = {
    "json": "json",
    "xml": "xml",
    **{mime: "json" for mime in _JSON_TYPES},
    **{mime: "xml" for mime in _XML_TYPES},
}
_BOM = b"\xef\xbb\xbf"
_DOCTYPE_OR_ENTITY = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    main, *params = header.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), parsed


def request_format(content_type: str | None) -> Format:
    """The format of a request body, from its Content-Type (415 when it is not a FHIR format)."""
    if not content_type:
        raise UnsupportedMediaType("a request body needs a Content-Type: application/fhir+json or application/fhir+xml")
    mime, params = _media_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset!r} is not supported; FHIR bodies are UTF-8")
    if mime in _JSON_TYPES:
        return "json"
    if mime in _XML_TYPES:
        return "xml"
    raise UnsupportedMediaType(
        f"Content-Type {mime!r} is not supported; use application/fhir+json or application/fhir+xml"
    )


def response_format(format_param: str | None, accept: str | None) -> Format:
    """The response format: `_format` wins over `Accept`; JSON when the client does not care."""
    if format_param:
        chosen = _FORMAT_PARAM.get(format_param.strip().lower().split(";")[0].strip())
        if chosen is None:
            raise NotAcceptable(f"_format {format_param!r} is not supported; use json or xml")
        return chosen  # type: ignore[return-value]
    if not accept:
        return "json"
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        mime, params = _media_type(part)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            ranges.append((-quality, position, mime))
    for _, _, mime in sorted(ranges):
        if mime in _JSON_TYPES or mime in ("*/*", "application/*", "text/*", "text/html"):
            return "json"
        if mime in _XML_TYPES:
            return "xml"
    raise NotAcceptable(f"none of the accepted types ({accept}) is available; use application/fhir+json")


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parse a JSON body (UTF-8, with or without a byte-order mark), bounding its nesting depth."""
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body.strip():
        raise BadRequest("the request body is empty; expected a FHIR resource")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int, depth: int = 1) -> None:
    """Refuse JSON nested deeper than max_depth. Recursion stops at max_depth (<= 500, see
    settings), far below Python's recursion limit."""
    if depth > max_depth:
        raise BadRequest(f"JSON nesting deeper than {max_depth} levels is refused")
    for child in value.values() if type(value) is dict else value if type(value) is list else ():
        if type(child) is dict or type(child) is list:
            check_depth(child, max_depth, depth + 1)


def locked_down_xml_parser() -> etree.XMLParser:
    """An lxml parser that loads no DTD, expands no entity and never touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse a FHIR XML resource into its FHIR JSON form (the form we store and validate)."""
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body.strip():
        raise BadRequest("the request body is empty; expected a FHIR resource")
    if _DOCTYPE_OR_ENTITY.search(body):
        raise BadRequest("XML with a DOCTYPE or entity declarations is refused")
    parser = locked_down_xml_parser()
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as error:
        raise BadRequest(f"the body is not well-formed XML: {error}") from None
    if root.getroottree().docinfo.doctype:
        raise BadRequest("XML with a DOCTYPE is refused")
    qname = etree.QName(root)
    if qname.namespace != "http://hl7.org/fhir":
        raise BadRequest("the XML root element is not in the FHIR namespace http://hl7.org/fhir")
    from gateway.fhir.models import model_class, unsupported_type  # noqa: PLC0415 - models load lazily

    if model_class(qname.localname) is None:
        raise BadRequest(unsupported_type(qname.localname), code="not-supported", expression=qname.localname)
    try:
        return load_xml(root)
    except XmlShapeError as error:
        raise BadRequest(str(error), expression=error.where) from None


def dump_json(resource: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(resource, option=orjson.OPT_INDENT_2 if pretty else 0)


def dump_xml(resource: dict[str, Any], pretty: bool = False) -> bytes:
    return fhir_xml.dump_xml(resource, pretty)


def mime_type(fmt: Format) -> str:
    base = JSON_MIME if fmt == "json" else XML_MIME
    return f"{base}; charset=utf-8; fhirVersion={FHIR_VERSION}"
