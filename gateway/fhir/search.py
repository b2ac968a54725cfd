"""Parsing of search requests (R4 search.html) into a `SearchQuery` the store can run.

Criteria are AND-ed; comma-separated values inside one criterion are OR-ed. Unknown parameters
are ignored with a warning (lenient) or refused with 400 (`Prefer: handling=strict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal

from gateway.fhir.dates import date_range
from gateway.fhir.errors import BadRequest, Issue
from gateway.fhir.indexing import normalise_string, phone_digits, phonetic_codes
from gateway.fhir.models import RESOURCE_TYPES, model_class
from gateway.fhir.search_parameters import COMMON_PARAMETERS, RESULT_PARAMETERS, SEARCH_PARAMETERS
from gateway.fhir.validation import CONTROL_CHARACTERS

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
STRING_MODIFIERS = (None, "exact", "contains")
SORTABLE = {"_lastUpdated", "_id"}


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code of the system


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str | None
    target_id: str


@dataclass(frozen=True)
class Criterion:
    name: str
    kind: Literal["token", "string", "date", "reference", "_id", "_lastUpdated"]
    modifier: str | None
    values: tuple[Any, ...]  # OR-ed


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    total: Literal["none", "estimate", "accurate"] = "accurate"
    summary_count: bool = False
    summary: str | None = None  # _summary=true|text|data for the matches
    elements: tuple[str, ...] = ()  # _elements: top-level elements to keep in matches
    warnings: list[Issue] = field(default_factory=list)
    # The parameters that define the result set, for the self/next links.
    echo: list[tuple[str, str]] = field(default_factory=list)
    # The most stored JSON one page may carry: past it the page ends early, and its next link
    # goes on from there. Work per request is bounded by size, not only by _count.
    max_bytes: int | None = None


def parse_elements(raw: str) -> tuple[str, ...]:
    """`_elements=name,birthDate`: top-level element names (search.html#elements)."""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for element in names:
        if not element.replace("-", "").isalnum() or "." in element:
            raise BadRequest(f"_elements takes top-level element names, got {element!r}")
    return names


@cache
def _element_names(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, from the R4B model's definitions."""
    model = model_class(resource_type)
    if model is None:
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for name, definition in model.model_fields.items():
        extra = definition.json_schema_extra if isinstance(definition.json_schema_extra, dict) else {}
        json_name = definition.alias or name
        if extra.get("summary_element_property"):
            summary.add(json_name)
        if extra.get("element_required") or definition.is_required():
            mandatory.add(json_name)
    return frozenset(summary), frozenset(mandatory)


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """search.html#summary on the top-level elements: `true` keeps the summary elements, `text`
    the narrative and mandatory elements, `data` drops the narrative. Marked SUBSETTED."""
    summary, mandatory = _element_names(resource["resourceType"])
    if mode == "data":
        keep = tuple(key for key in resource if key != "text")
    elif mode == "text":
        keep = ("text", *mandatory)
    else:
        keep = tuple(summary)
    return subset(resource, tuple(name for key in keep for name in (key, f"_{key}")))


def subset(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    """The resource cut down to the asked elements, marked SUBSETTED as the spec requires."""
    kept = {
        key: value for key, value in resource.items() if key in elements and key not in ("resourceType", "id", "meta")
    }
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [
        *meta.get("tag", []),
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"},
    ]
    return {"resourceType": resource["resourceType"], "id": resource.get("id"), "meta": meta, **kept}


def _split_values(raw: str) -> list[str]:
    """Comma-separated OR values, honouring `\\,` escapes."""
    values, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return [value for value in values if value != ""]


def _token(raw: str) -> TokenValue:
    if "|" not in raw:
        return TokenValue(None, raw)
    system, code = raw.split("|", 1)
    return TokenValue(system, code or None)


def _date(raw: str, name: str) -> DateValue:
    prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
    value = raw[2:] if raw[:2] in DATE_PREFIXES else raw
    found = date_range(value)
    if found is None:
        raise BadRequest(f"{name}: {raw!r} is not a FHIR date (e.g. 2024, 2024-03-01, ge2024-03-01T10:00Z)")
    return DateValue(prefix, *found)


def _reference(raw: str, modifier: str | None, targets: tuple[str, ...], base_url: str, name: str) -> ReferenceValue:
    if raw.startswith(base_url + "/"):
        raw = raw[len(base_url) + 1 :]
    if raw.startswith(("http://", "https://")):
        return ReferenceValue("url", raw)
    parts = raw.split("/")
    if len(parts) == 2 and parts[0] in RESOURCE_TYPES:
        if targets and parts[0] not in targets:
            raise BadRequest(f"{name} cannot refer to a {parts[0]}")
        return ReferenceValue(parts[0], parts[1])
    if modifier and modifier in RESOURCE_TYPES:
        return ReferenceValue(modifier, raw)
    if len(targets) == 1:
        return ReferenceValue(targets[0], raw)
    return ReferenceValue(None, raw)


def _parse_include(raw: str, name: str) -> Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCE_TYPES:
        raise BadRequest(f"{name}={raw!r}: expected SourceType:parameter[:TargetType]")
    param = SEARCH_PARAMETERS[parts[0]].get(parts[1])
    if param is None or param.type != "reference":
        raise BadRequest(f"{name}={raw!r}: {parts[0]} has no reference parameter {parts[1]!r}")
    return Include(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


_WHOLE = re.compile(r"^[0-9]{1,19}$")
LARGEST = 2**63 - 1  # what the stores' integers hold


def whole_number(raw: str) -> int | None:
    """A non-negative whole number in ASCII digits that the store can hold, else None (`isdigit`
    also says yes to '³' and '²', which `int` then refuses)."""
    if not _WHOLE.match(raw):
        return None
    value = int(raw)
    return value if value <= LARGEST else None


def _positive_int(raw: str, name: str) -> int:
    value = whole_number(raw)
    if value is None:
        raise BadRequest(f"{name} must be a non-negative whole number below 2^63, got {raw!r}", expression=name)
    return value


def parse_search(
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    base_url: str,
    strict: bool,
    default_count: int,
    max_count: int,
) -> SearchQuery:
    query = SearchQuery(resource_type, count=default_count)
    declared = SEARCH_PARAMETERS[resource_type]

    def unknown(message: str) -> None:
        if strict:
            raise BadRequest(message + " (Prefer: handling=strict)", code="not-supported")
        query.warnings.append(Issue("not-supported", message + "; ignored", severity="warning"))

    for key, raw in params:
        if CONTROL_CHARACTERS.search(raw) or CONTROL_CHARACTERS.search(key):
            raise BadRequest("search values may not contain control characters", code="value", expression=key)
        name, _, modifier_text = key.partition(":")
        modifier = modifier_text or None
        if name in RESULT_PARAMETERS:
            if name == "_count":
                query.count = min(_positive_int(raw, name), max_count)
            elif name == "_offset":
                query.offset = _positive_int(raw, name)
            elif name == "_sort":
                for part in raw.split(","):
                    column = part.lstrip("-")
                    if column in SORTABLE:
                        query.sort.append((column, part.startswith("-")))
                    else:
                        unknown(f"sorting by {column!r} is not supported (only _lastUpdated, _id)")
            elif name == "_include":
                query.includes.append(_parse_include(raw, name))
            elif name == "_revinclude":
                query.revincludes.append(_parse_include(raw, name))
            elif name == "_total":
                if raw not in ("none", "estimate", "accurate"):
                    raise BadRequest(f"_total must be none, estimate or accurate, got {raw!r}")
                query.total = raw  # type: ignore[assignment]
            elif name == "_elements":
                query.elements = parse_elements(raw)
            elif name == "_summary":
                if raw == "count":
                    query.summary_count = True
                elif raw in ("true", "text", "data"):
                    query.summary = raw
                elif raw != "false":
                    raise BadRequest(f"_summary must be true, text, data, count or false, got {raw!r}")
            if name in ("_include", "_revinclude", "_total", "_summary", "_sort", "_elements"):
                query.echo.append((key, raw))
            continue
        if name in COMMON_PARAMETERS:
            kind = COMMON_PARAMETERS[name]
            if modifier:
                raise BadRequest(f"modifier :{modifier} is not supported on {name}")
            if kind == "token":
                query.criteria.append(Criterion(name, "_id", None, tuple(_split_values(raw))))
            else:
                query.criteria.append(
                    Criterion(name, "_lastUpdated", None, tuple(_date(v, name) for v in _split_values(raw)))
                )
            query.echo.append((key, raw))
            continue
        param = declared.get(name)
        if param is None:
            unknown(f"unknown search parameter {name!r} for {resource_type}")
            continue
        values = _split_values(raw)
        if not values:
            raise BadRequest(f"search parameter {name} has no value")
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise BadRequest(f"{key} must be true or false")
            query.criteria.append(Criterion(name, param.type, "missing", (raw == "true",)))
        elif param.type == "token":
            if modifier not in (None, "not"):
                raise BadRequest(f"modifier :{modifier} is not supported on token parameter {name}")
            tokens = tuple(_token(v) for v in values)
            if name == "phone":
                tokens = tuple(TokenValue(None, phone_digits(t.code or "")) for t in tokens)
            query.criteria.append(Criterion(name, "token", modifier, tokens))
        elif param.phonetic:
            if modifier:
                raise BadRequest(f"modifier :{modifier} is not supported on {name}, which compares by sound")
            codes = tuple(code for v in values for code in phonetic_codes(v)[:1])
            if len(codes) != len(values):
                raise BadRequest(f"{name} needs a name with at least one Latin letter (it compares Soundex codes)")
            # the codes are all four characters long, so the store's starts-with is equality
            query.criteria.append(Criterion(name, "string", None, codes))
        elif param.type == "string":
            if modifier not in STRING_MODIFIERS:
                raise BadRequest(f"modifier :{modifier} is not supported on string parameter {name}")
            # :exact keeps the text as given (search.html#string); the store compares both forms
            texts = tuple(v if modifier == "exact" else normalise_string(v) for v in values)
            query.criteria.append(Criterion(name, "string", modifier, texts))
        elif param.type == "date":
            if modifier:
                raise BadRequest(f"modifier :{modifier} is not supported on date parameter {name}")
            query.criteria.append(Criterion(name, "date", None, tuple(_date(v, name) for v in values)))
        else:
            if modifier and modifier not in RESOURCE_TYPES:
                raise BadRequest(f"modifier :{modifier} is not supported on reference parameter {name}")
            query.criteria.append(
                Criterion(
                    name,
                    "reference",
                    None,
                    tuple(_reference(v, modifier, param.target_types, base_url, name) for v in values),
                )
            )
        query.echo.append((key, raw))
    return query
