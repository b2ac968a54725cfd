"""Transaction and batch Bundles (R4 http.html#transaction).

A transaction runs in explicit phases inside ONE unit of work, so it is all or nothing:
1. preprocess: check each entry, give every create its id, resolve conditional identities;
2. rewrite references: `urn:uuid` and other fullUrls to the entries' identities, conditional
   references (`Patient?identifier=...`) to their single match;
3. run the entries through the engine's router in the spec's order (DELETE, POST, PUT/PATCH, GET);
4. answer with a transaction-response Bundle, entries in request order.
A batch runs each entry in its own unit of work and reports per entry.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson

from gateway.fhir.context import EngineConfig, FhirRequest, FhirResponse, WriteHook
from gateway.fhir.dates import instant, utc_now
from gateway.fhir.errors import BadRequest, FhirError, PayloadTooLarge, PreconditionFailed, operation_outcome
from gateway.fhir.ids import new_id
from gateway.fhir.repository import Repository, Store
from gateway.fhir.search import Criterion
from gateway.fhir.validation import classify_reference, find_references, locate


class Engine(Protocol):
    """What Bundle processing needs of the engine: its router, its store and its conditions."""

    config: EngineConfig
    store: Store
    writes: WriteHook

    def dispatch(self, request: FhirRequest, repository: Repository, now: datetime) -> FhirResponse: ...

    def search_criteria(self, resource_type: str, query_string: str, where: str) -> list[Criterion]: ...


BeforeCommit = Callable[[Repository, datetime], None]

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ENTRY_HEADERS = {
    "ifMatch": "if-match",
    "ifNoneExist": "if-none-exist",
    "ifNoneMatch": "if-none-match",
    "ifModifiedSince": "if-modified-since",
}


@dataclass
class Entry:
    index: int
    request: FhirRequest
    full_url: str | None
    identity: str | None = None  # "Type/id" this entry writes, once known

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


def _check_bundle(engine: Engine, request: FhirRequest) -> list[dict[str, Any]]:
    bundle = request.body
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be a list", expression="Bundle.entry")
    if len(entries) > engine.config.max_bundle_entries:
        raise PayloadTooLarge(
            f"the Bundle has {len(entries)} entries; at most {engine.config.max_bundle_entries} are accepted",
            expression="Bundle.entry",
        )
    return entries


def _entry_request(engine: Engine, outer: FhirRequest, raw: Any, index: int) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest("a Bundle entry must be an object", expression=where)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise BadRequest("a transaction or batch entry needs a request", expression=f"{where}.request")
    method = request.get("method")
    if not isinstance(method, str) or method not in _ORDER:  # an object or a list is not hashable
        raise BadRequest(
            f"request.method {method!r} is not one of GET, HEAD, POST, PUT, PATCH, DELETE",
            expression=f"{where}.request.method",
        )
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("request.url is required", expression=f"{where}.request.url")
    base = engine.config.base_url
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    elif url.startswith(("http://", "https://")):
        raise BadRequest(
            f"request.url {url!r} points at another server; use a URL relative to this one",
            expression=f"{where}.request.url",
        )
    parts = urlsplit(url.lstrip("/"))
    headers = {header: str(request[key]) for key, header in _ENTRY_HEADERS.items() if request.get(key) is not None}
    if outer.header("prefer"):
        headers["prefer"] = outer.header("prefer") or ""
    body: Any = raw.get("resource")
    if method == "PATCH":
        body = _patch_document(body, where)
    elif method in ("POST", "PUT") and not isinstance(body, dict):
        raise BadRequest(f"a {method} entry needs a resource", expression=f"{where}.resource")
    full_url = raw.get("fullUrl")
    if full_url is not None:
        if not isinstance(full_url, str) or classify_reference(full_url) not in ("urn", "absolute"):
            raise BadRequest(
                f"fullUrl {full_url!r} must be an absolute URL or a urn:uuid/urn:oid",
                expression=f"{where}.fullUrl",
            )
    return Entry(
        index,
        FhirRequest(
            method=method,
            path=parts.path,
            params=parse_qsl(parts.query, keep_blank_values=True),
            body=body,
            headers=headers,
            requester=outer.requester,
            entry=where,
            audit=outer.audit,
        ),
        full_url,
    )


def _patch_document(body: Any, where: str) -> Any:
    """PATCH entries carry the JSON Patch as a Binary (http.html#patch)."""
    if not (isinstance(body, dict) and body.get("resourceType") == "Binary"):
        raise BadRequest("a PATCH entry carries its JSON Patch as a Binary resource", expression=f"{where}.resource")
    if body.get("contentType") != "application/json-patch+json":
        raise BadRequest(
            "only JSON Patch (application/json-patch+json) is supported", expression=f"{where}.resource.contentType"
        )
    try:
        return orjson.loads(base64.b64decode(body.get("data", ""), validate=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise BadRequest("the Binary's data is not base64 JSON", expression=f"{where}.resource.data") from None


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _response_entry(response: FhirResponse) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if response.resource is not None:
        entry["resource"] = response.resource
    result: dict[str, Any] = {"status": _status_line(response.status)}
    if response.resource is not None and response.resource.get("resourceType") == "OperationOutcome":
        result["outcome"] = entry.pop("resource")
    if response.location:
        result["location"] = response.location
    if response.etag:
        result["etag"] = response.etag
    if response.last_modified:
        result["lastModified"] = response.last_modified
    entry["response"] = result
    if response.location:
        entry["fullUrl"] = response.location.split("/_history/")[0]
    return entry


def _response_bundle(kind: str, entries: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": kind,
        "entry": entries,
    }


# -- transaction ---------------------------------------------------------------------------------
def run_transaction(engine: Engine, request: FhirRequest, before_commit: BeforeCommit | None = None) -> FhirResponse:
    responses = execute_transaction(engine, request, before_commit)
    entries = [_response_entry(r) for r in responses]
    return FhirResponse(200, _response_bundle("transaction-response", entries, utc_now(engine.store.clock)))


def execute_transaction(
    engine: Engine, request: FhirRequest, before_commit: BeforeCommit | None = None
) -> list[FhirResponse]:
    """Run a transaction Bundle atomically; the entries' responses in request order.
    `before_commit` runs in the same unit of work after the last entry (the audit record)."""
    raw_entries = _check_bundle(engine, request)
    entries = [_entry_request(engine, request, raw, index) for index, raw in enumerate(raw_entries)]
    seen_full_urls: dict[str, int] = {}
    for entry in entries:
        if entry.full_url:
            if entry.full_url in seen_full_urls:
                raise BadRequest(
                    f"fullUrl {entry.full_url} is used by entry {seen_full_urls[entry.full_url]} too",
                    expression=f"{entry.where}.fullUrl",
                )
            seen_full_urls[entry.full_url] = entry.index
    with engine.store.unit_of_work(True) as (repository, now):
        _resolve_identities(engine, repository, entries)
        _rewrite_references(engine, repository, entries)
        responses: dict[int, FhirResponse] = {}
        for entry in sorted(entries, key=lambda e: (_ORDER[e.request.method], e.index)):
            try:
                responses[entry.index] = engine.dispatch(entry.request, repository, now)
            except FhirError as error:
                raise error.under(entry.where) from None
        if before_commit is not None:
            repository.flush()
            before_commit(repository, now)
    return [responses[entry.index] for entry in entries]


def _what_hooks_read(engine: Engine, entries: list[Entry]) -> list[tuple[str, str]]:
    """The resources the write hook will read after the entries' writes (the Encounters and
    episodes labels propagate to), to be loaded with the entries' own identities rather than one
    read per entry: a page of a source's MedicationStatements names as many Encounters. Only
    literal references: a urn:uuid one is a create of this Bundle, a conditional one is read
    when it is resolved."""
    wanted: list[tuple[str, str]] = []
    for entry in entries:
        if entry.request.method in ("POST", "PUT") and isinstance(entry.request.body, dict):
            for reference in engine.writes.reads(entry.request.body):
                kind, _, identity = reference.partition("/")
                if kind.isalpha() and identity and "/" not in identity and "?" not in identity:
                    wanted.append((kind, identity))
    return wanted


def _named_identity(entry: Entry) -> tuple[str, str] | None:
    """(type, id) that a PUT/PATCH/DELETE Type/id entry names in its URL."""
    parts = [part for part in entry.request.path.split("/") if part]
    return (parts[0], parts[1]) if len(parts) == 2 and entry.request.method in ("PUT", "PATCH", "DELETE") else None


def _resolve_identities(engine: Engine, repository: Repository, entries: list[Entry]) -> None:
    """Give each write entry the identity it will have, before any entry runs."""
    claimed: dict[str, int] = {}
    # One query for every identity the entries name (PUT/PATCH/DELETE Type/id, the ids that
    # urn:uuid creates would like to keep, what the write hook will read): the reads by id that
    # follow then cost nothing.
    named = [key for entry in entries if (key := _named_identity(entry)) is not None]
    placeholders = [
        (entry.request.path.strip("/"), entry.full_url.removeprefix("urn:uuid:").lower())
        for entry in entries
        if entry.request.method == "POST" and entry.full_url and entry.full_url.startswith("urn:uuid:")
    ]
    taken = repository.existing(named + placeholders + _what_hooks_read(engine, entries))
    for entry in entries:
        request = entry.request
        parts = [part for part in request.path.split("/") if part]
        try:
            if request.method == "POST" and len(parts) == 1:
                entry.identity = _conditional_identity(
                    engine, repository, parts[0], request.header("if-none-exist"), request, None
                )
                if entry.identity == f"{parts[0]}/{request.assigned_id}":
                    entry.identity = _keep_placeholder_id(taken, parts[0], entry)
            elif request.method == "PUT" and len(parts) == 1 and request.params:
                query = "&".join(f"{k}={v}" for k, v in request.params)
                body_id = request.body.get("id") if isinstance(request.body, dict) else None
                entry.identity = _conditional_identity(engine, repository, parts[0], query, request, body_id)
            elif (named_key := _named_identity(entry)) is not None:
                entry.identity = "/".join(named_key)
        except FhirError as error:
            raise error.under(entry.where) from None
        if entry.identity and request.method != "GET":
            if entry.identity in claimed:
                raise BadRequest(
                    f"{entry.identity} is written by entry {claimed[entry.identity]} too; a transaction may "
                    "touch each resource once",
                    expression=f"{entry.where}.request.url",
                )
            claimed[entry.identity] = entry.index


def _conditional_identity(
    engine: Engine,
    repository: Repository,
    resource_type: str,
    condition: str | None,
    request: FhirRequest,
    body_id: str | None,
) -> str:
    if condition:
        criteria = engine.search_criteria(resource_type, condition.lstrip("?"), "the condition")
        repository.lock(f"{resource_type}?{condition}")
        found = repository.find(resource_type, criteria)
        if len(found) > 1:
            raise PreconditionFailed(f"{condition!r} matches more than one {resource_type}", expression="request")
        if found:
            return f"{resource_type}/{found[0].id}"
    if body_id and request.method == "PUT":
        return f"{resource_type}/{body_id}"

    request.assigned_id = new_id()
    return f"{resource_type}/{request.assigned_id}"


def _keep_placeholder_id(taken: set[tuple[str, str]], resource_type: str, entry: Entry) -> str:
    """A create whose fullUrl is urn:uuid:X gets the id X while X is free. Senders such as Synthea
    split one record over several Bundles and point across them with urn:uuid:X; keeping X as
    the id lets those references resolve (see `_resolve_placeholder`)."""
    if entry.full_url and entry.full_url.startswith("urn:uuid:"):
        candidate = entry.full_url.removeprefix("urn:uuid:").lower()
        if (resource_type, candidate) not in taken:
            taken.add((resource_type, candidate))
            entry.request.assigned_id = candidate
    return f"{resource_type}/{entry.request.assigned_id}"


def _resolve_placeholder(repository: Repository, target: str, where: str) -> str:
    candidate = target.removeprefix("urn:uuid:").lower()
    types = repository.types_with_id(candidate)
    if len(types) != 1:
        raise BadRequest(
            f"{target} is not the fullUrl of any entry in this transaction, nor a stored resource",
            expression=where,
        )
    return f"{types[0]}/{candidate}"


def _rewrite_references(engine: Engine, repository: Repository, entries: list[Entry]) -> None:
    identities = {entry.full_url: entry.identity for entry in entries if entry.full_url and entry.identity}
    resolved: dict[str, str] = {}  # a Bundle points at the same few targets many times
    for entry in entries:
        body = entry.request.body
        if not isinstance(body, dict) or "resourceType" not in body or body["resourceType"] == "Bundle":
            # A Bundle stored as an entry (a document) keeps its references: they point at its own
            # entries, as when it is POSTed on its own.
            continue
        resource_type = body["resourceType"]
        for reference in find_references(body):
            target = reference["reference"]
            if target in identities:
                reference["reference"] = identities[target]
                continue
            if target in resolved:
                reference["reference"] = resolved[target]
                continue
            kind = classify_reference(target)
            if kind == "conditional" or (kind == "urn" and target.startswith("urn:uuid:")):
                location = locate(body, reference, resource_type)
                where = f"{entry.where}.resource{location[len(resource_type) :]}.reference"
                if kind == "conditional":
                    resolved[target] = _resolve_conditional_reference(engine, repository, target, where)
                else:
                    resolved[target] = _resolve_placeholder(repository, target, where)
                reference["reference"] = resolved[target]


def _resolve_conditional_reference(engine: Engine, repository: Repository, target: str, where: str) -> str:
    resource_type, _, query = target.partition("?")
    try:
        criteria = engine.search_criteria(resource_type, query, "a conditional reference")
    except FhirError as error:
        raise BadRequest(error.issues[0].diagnostics, expression=where) from None
    found = repository.find(resource_type, criteria)
    if len(found) != 1:
        raise PreconditionFailed(
            f"the conditional reference {target!r} matches {'no' if not found else 'more than one'} "
            f"{resource_type}; it must match exactly one",
            expression=where,
        )
    return f"{resource_type}/{found[0].id}"


# -- batch ---------------------------------------------------------------------------------------
def _error_entry(error: FhirError) -> dict[str, Any]:
    return {"response": {"status": _status_line(error.status), "outcome": operation_outcome(error.issues)}}


def run_batch(engine: Engine, request: FhirRequest) -> FhirResponse:
    raw_entries = _check_bundle(engine, request)
    results: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_entries):
        try:
            entry = _entry_request(engine, request, raw, index)  # its errors are located in the Bundle already
        except FhirError as error:
            results.append(_error_entry(error))
            continue
        try:
            with engine.store.unit_of_work(entry.request.method not in ("GET", "HEAD")) as (repository, now):
                response = engine.dispatch(entry.request, repository, now)
            results.append(_response_entry(response))
        except FhirError as error:
            results.append(_error_entry(error.under(entry.where)))
    return FhirResponse(200, _response_bundle("batch-response", results, utc_now(engine.store.clock)))


__all__ = ["execute_transaction", "run_batch", "run_transaction"]
