"""Turn a resource into search index entries, one kind per search parameter type.

Entries are plain tuples so the store can insert them in bulk in the same transaction as the
resource version they index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from gateway.fhir.dates import date_range
from gateway.fhir.search_parameters import SEARCH_PARAMETERS, SearchParameter
from gateway.fhir.validation import iter_path
from mappings.matching import patient_blocking_keys, soundex

MAX_INDEXED_LENGTH = 255
# Patients' matching keys (mappings.matching.blocking_keys) live in the token index under a name
# no URL can reach: search parameters starting with "_" are FHIR's, and this one is not declared.
BLOCKING_PARAMETER = "_blocking"
_NOT_DIGITS = re.compile(r"\D")

# Per kind: (param, *values). token: (system, code); string: (normalised, as written); date: (low, high);
# reference: (target_type, target_id).
IndexEntries = dict[str, list[tuple[Any, ...]]]


def normalise_string(value: str) -> str:
    """Case- and accent-insensitive form used for string search (search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())[:MAX_INDEXED_LENGTH]


def phonetic_codes(text: str) -> list[str]:
    """The Soundex code of each word ("Mary Ann" -> m600, a500), lower case, as the phonetic
    parameter indexes and compares them."""
    return [code.lower() for word in text.split() if (code := soundex(word))]


def phone_digits(value: str) -> str:
    """A phone number reduced to its digits, without a leading US country code."""
    digits = _NOT_DIGITS.sub("", value)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def split_reference(reference: str, base_url: str) -> tuple[str, str] | None:
    """(type, id) of a literal reference to a resource on this server, else None."""
    if reference.startswith(base_url + "/"):
        reference = reference[len(base_url) + 1 :]
    elif reference.startswith(("http://", "https://")):
        # A reference to another server: indexed by its tail so `subject=Patient/1` still
        # matches nothing here; the full URL is searched by `subject=<url>`.
        return ("url", reference[:MAX_INDEXED_LENGTH])
    parts = reference.split("/")
    if len(parts) in (2, 4) and parts[0][:1].isupper() and parts[1]:
        return parts[0], parts[1]
    return None


def _tokens(value: Any, param: SearchParameter) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value or "text" in value and "value" not in value:
            for coding in value.get("coding", []) or []:
                if isinstance(coding, dict) and coding.get("code"):
                    yield coding.get("system"), coding["code"]
        elif "code" in value:
            yield value.get("system"), value["code"]
        elif "value" in value and isinstance(value["value"], str):
            if param.name == "phone":
                if value.get("system") in (None, "phone", "sms"):
                    yield "phone", phone_digits(value["value"])
            else:
                yield value.get("system"), value["value"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in ("family", "text", "city", "district", "state", "postalCode", "country"):
            if isinstance(value.get(key), str):
                yield value[key]
        for key in ("given", "prefix", "suffix", "line"):
            for part in value.get(key, []) or []:
                if isinstance(part, str):
                    yield part


def _dates(value: Any) -> Iterator[tuple[datetime, datetime]]:
    if isinstance(value, str):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        yield (start[0] if start else datetime.min, end[1] if end else datetime.max)


def index_entries(resource: dict[str, Any], base_url: str) -> IndexEntries:
    entries: IndexEntries = {"token": [], "string": [], "date": [], "reference": []}
    resource_type = resource["resourceType"]
    for param in SEARCH_PARAMETERS.get(resource_type, {}).values():
        seen: set[tuple[Any, ...]] = set()
        for path in param.paths:
            for value, _ in iter_path(resource, f"{resource_type}.{path}"):
                rows: list[tuple[Any, ...]] = []
                if param.type == "token":
                    rows = [
                        (param.name, system or None, code[:MAX_INDEXED_LENGTH])
                        for system, code in _tokens(value, param)
                        if code
                    ]
                elif param.phonetic:
                    rows = [(param.name, code, text[:MAX_INDEXED_LENGTH]) for text in _strings(value)
                            for code in phonetic_codes(text)]  # fmt: skip
                elif param.type == "string":
                    rows = [
                        (param.name, normalise_string(text), text[:MAX_INDEXED_LENGTH])
                        for text in _strings(value)
                        if text.strip()
                    ]
                elif param.type == "date":
                    rows = [(param.name, low, high) for low, high in _dates(value)]
                elif param.type == "reference" and isinstance(value, dict):
                    target = split_reference(value.get("reference", ""), base_url)
                    if target:
                        rows = [(param.name, *target)]
                for row in rows:
                    if row not in seen:
                        seen.add(row)
                        entries[param.type].append(row)
    if resource_type == "Patient":
        entries["token"].extend((BLOCKING_PARAMETER, None, key) for key in sorted(patient_blocking_keys(resource)))
    return entries
