"""The FHIR engine: one router for top-level requests and Bundle entries (R4 http.html).

`Engine.handle` opens a unit of work (one DB transaction) and dispatches; `Engine.dispatch` is
what transaction processing calls for each entry, inside its own single unit of work. Every
dispatch passes the authorization hook before touching the store and the release hook after.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch

from gateway.fhir import bundles
from gateway.fhir.capability import capability_statement
from gateway.fhir.context import (
    AllowAll,
    AuditSink,
    AuthorizationHook,
    EngineConfig,
    FhirRequest,
    FhirResponse,
    Interaction,
    ReleaseAll,
    ReleaseHook,
    Requester,
    WriteAsIs,
    WriteHook,
)
from gateway.fhir.dates import date_range, instant
from gateway.fhir.errors import (
    BadRequest,
    Conflict,
    FhirError,
    Forbidden,
    Gone,
    Issue,
    MethodNotAllowed,
    NotFound,
    NotSupported,
    PreconditionFailed,
    ServiceUnavailable,
    Unprocessable,
    not_known,
    operation_outcome,
)
from gateway.fhir.everything import patient_record
from gateway.fhir.ids import new_id
from gateway.fhir.models import RESOURCE_TYPES, unsupported_type
from gateway.fhir.operations import Operation, find_operation
from gateway.fhir.repository import Repository, Store, StoredResource
from gateway.fhir.search import (
    Criterion,
    SearchQuery,
    parse_elements,
    parse_search,
    subset,
    summarize,
    whole_number,
)
from gateway.fhir.transaction import run_batch, run_transaction
from gateway.fhir.validation import ID_PATTERN, validate_resource

log = logging.getLogger(__name__)
# One thread: read-aheads are a head start, never a second load on the store beside the requests.
_READ_AHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")

_ETAG = re.compile(r'^(W/)?"(?P<version>[0-9]+)"$')


def parse_etag(value: str, where: str = "If-Match") -> int:
    match = _ETAG.match(value.strip())
    if not match:
        raise BadRequest(f'{where} must be a version ETag like W/"3", got {value!r}')
    return int(match["version"])


def _check_owner(request: FhirRequest, current: StoredResource | None) -> None:
    """A requester restricted to its own writes (an EHR) may not change what another source wrote:
    one provider's push never overwrites another provider's record."""
    requester = request.requester
    if requester.own_writes_only and current is not None and current.source != requester.source:
        raise Forbidden(
            f"{current.type}/{current.id} was written by another source; a client changes only what it wrote",
            expression=current.type,
        )


class Engine:
    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        authorization: AuthorizationHook | None = None,
        release: ReleaseHook | None = None,
        writes: WriteHook | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.authorization: AuthorizationHook = authorization or AllowAll()
        self.release: ReleaseHook = release or ReleaseAll()
        self.writes: WriteHook = writes or WriteAsIs()
        self.audit = audit

    # -- entry points --------------------------------------------------------------------------
    def handle(self, request: FhirRequest) -> FhirResponse:
        """A top-level request: route, run in one unit of work, write its audit record, commit.
        A write and its audit record commit together; a read's audit record commits in a short
        write of its own before the answer leaves. Refused requests are audited too."""
        interaction: Interaction | None = None
        try:
            if request.path == "" and request.method == "POST":
                interaction = Interaction(self._bundle_type(request))
                return self._bundle(request, interaction)
            interaction, _ = self.route(request)
            write = request.method not in ("GET", "HEAD") and not request.path.endswith("_search")
            with self.store.unit_of_work(write) as (repository, now):
                response = self.dispatch(request, repository, now)
                if write:
                    repository.flush()
                    self._record(request, interaction, response.status, None, repository, now)
            if not write:
                self._record_apart(request, interaction, response.status, None)
            return response
        except FhirError as error:
            if not error.audited:
                self._record_apart(request, interaction, error.status, error)
            raise
        except Exception as error:  # a fault of ours (500): recorded if the store still takes it
            self._record_apart(request, interaction, 500, error)
            raise

    def refused(self, request: FhirRequest, error: FhirError) -> None:
        """A request refused before it reached the engine (no token, a body that does not parse):
        audited like any other."""
        self._record_apart(request, None, error.status, error)

    @staticmethod
    def _bundle_type(request: FhirRequest) -> str:
        body = request.body
        bundle_type = body.get("type") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("resourceType") != "Bundle"
            or bundle_type not in ("batch", "transaction")
        ):
            raise BadRequest(
                "POST to the base URL takes a Bundle of type transaction or batch", expression="Bundle.type"
            )
        return str(bundle_type)

    def _bundle(self, request: FhirRequest, interaction: Interaction) -> FhirResponse:
        """A transaction runs in one unit of work with its audit record; a batch gives each entry
        its own, and its audit record one more. The Bundle as a whole passes both hooks; each
        entry passes them again in dispatch, like any top-level request."""
        self.authorization.authorize(request, interaction)
        if interaction.name == "transaction":

            def audit(repository: Repository, now: datetime) -> None:
                self._record(request, interaction, 200, None, repository, now)

            response = run_transaction(self, request, before_commit=audit)
        else:
            response = run_batch(self, request)
            self._record_apart(request, interaction, response.status, None)
        return response

    def _record(
        self,
        request: FhirRequest,
        interaction: Interaction | None,
        status: int,
        error: Exception | None,
        repository: Repository,
        now: datetime,
    ) -> None:
        """The request's one audit record, and the follow-up writes its decisions call for, in
        this unit of work. Without an audit sink (authorization off) there is none."""
        if self.audit is None:
            return
        try:
            self.audit.record(request, interaction, status, error, repository, now)
            for resource in request.follow_ups if error is None else ():  # nothing left: nothing to document
                self._follow_up(resource, repository, now)
        except Exception as failure:
            unavailable = ServiceUnavailable()
            unavailable.audited = True
            raise unavailable from failure

    def _follow_up(self, resource: dict[str, Any], repository: Repository, now: datetime) -> None:
        follow_up = FhirRequest("POST", str(resource["resourceType"]), body=resource, requester=INTERNAL,
                                headers={"prefer": "return=minimal"})  # fmt: skip
        self.dispatch(follow_up, repository, now)

    def _record_apart(
        self, request: FhirRequest, interaction: Interaction | None, status: int, error: Exception | None
    ) -> None:
        if self.audit is None:
            return
        try:
            with self.store.unit_of_work(True) as (repository, now):
                self._record(request, interaction, status, error, repository, now)
        except Exception as failure:
            # The store will not take the record. A medical emergency goes out with its record in
            # the spool (written durably first); anything else fails closed, refusals included:
            # a 404 beside a 503 would tell who is on file.
            if error is None and self.audit.spool(request, interaction, status, self.store.clock.now()):
                return
            unavailable = ServiceUnavailable()
            unavailable.audited = True  # trying again now would only wait for the same failure
            raise unavailable from failure
        if self.audit.replay_due():
            self.replay_spool()

    def replay_spool(self) -> int:
        """Append the spooled emergency records to the audit (and create their §2.51(c)
        Communications) now that the store takes writes; how many. A failure leaves them spooled."""
        if self.audit is None:
            return 0
        try:
            return self.audit.replay(lambda: self.store.unit_of_work(True), self._follow_up)
        except Exception:  # still failing: they stay in the spool for the next try
            log.warning("spooled audit records could not be replayed yet", exc_info=True)
            return 0

    def create_about_patient(
        self, requester: Requester, patient_id: str, build: Callable[[datetime], dict[str, Any]]
    ) -> str | None:
        """Create what `build(now)` returns, about Patient/{patient_id}, as `requester`; its id, or
        None, with nothing written, when no such patient is stored (callers answer the same
        either way: presence is protected)."""

        def plan(repository: Repository, now: datetime) -> list[FhirRequest]:
            content = build(now)
            return [FhirRequest("POST", str(content["resourceType"]), body=content, requester=requester,
                                headers={"prefer": "return=minimal"})]  # fmt: skip

        responses = self.write_about_patient(patient_id, plan)
        if not responses:
            return None
        return (responses[0].location or "").split("/_history")[0].rsplit("/", 1)[-1] or None

    def write_about_patient(
        self, patient_id: str, plan: Callable[[Repository, datetime], list[FhirRequest]]
    ) -> list[FhirResponse] | None:
        """The writes `plan(repository, now)` returns, about Patient/{patient_id}, each through the
        router (labels, index, versions) with its audit record, all in one unit of work: all are
        stored or none. None, with nothing written, when no such patient is stored."""
        with self.store.unit_of_work(True) as (repository, now):
            found = repository.read("Patient", patient_id)
            if found is None or found.deleted:
                return None
            responses = []
            for request in plan(repository, now):
                interaction, _ = self.route(request)
                response = self.dispatch(request, repository, now)
                repository.flush()
                self._record(request, interaction, response.status, None, repository, now)
                responses.append(response)
        return responses

    def read_ahead(self, patient_id: str) -> Future[int]:
        """Read a person's record now, in the background, and keep nothing of it: a dispatch
        launch's brief is asked for a minute later, and by then the rows are in the store's
        caches (PostgreSQL's buffers, the operating system's pages), not on disk. Nothing is
        decided, held or sent here: the brief reads the record again when it is asked for, and
        the consent engine decides then, on what is on file then (a consent revoked in between
        stops the release). The future gives the number of resources read, for tests."""
        return _READ_AHEAD.submit(self._read_record, patient_id)

    def _read_record(self, patient_id: str) -> int:
        try:
            with self.store.unit_of_work(False) as (repository, _):
                return len(patient_record(repository, self.config.base_url, patient_id))
        except Exception:  # a read-ahead that fails costs the brief nothing but its head start
            log.warning("read-ahead of a record failed", exc_info=True)
            return 0

    def may_know_patient(self, requester: Requester, patient_id: str, purpose: str | None = None) -> bool:
        """Is Patient/{patient_id} stored, and may the requester learn so (the release hooks'
        `may_know`)? For pages outside the FHIR API that take a patient id from a user."""
        with self.store.unit_of_work(False) as (repository, now):
            found = repository.read("Patient", patient_id)
            if found is None or found.deleted or not found.content:
                return False
            request = FhirRequest("GET", f"Patient/{patient_id}", requester=requester, purpose=purpose)
            return bool(self.release.may_know(request, [found.content], repository, now))

    def dispatch(self, request: FhirRequest, repository: Repository, now: datetime) -> FhirResponse:
        interaction, handler = self.route(request)
        self.authorization.authorize(request, interaction)
        try:
            response = handler(request, repository, now, interaction)
        except Gone:
            # 410 would tell a requester who may not see the resource that it existed.
            if request.requester.conceal_deletions and interaction.name in ("read", "vread", "history-instance"):
                raise not_known(interaction.resource_type, interaction.resource_id) from None
            raise
        released = self.release.release(request, interaction, response, repository, now)
        operation = self._operation(interaction)
        if operation is not None and operation.present is not None:
            return operation.present(self, request, released, interaction, now)
        return released

    @staticmethod
    def _operation(interaction: Interaction) -> Operation | None:
        if interaction.resource_type is None:
            return None
        return find_operation(interaction.resource_type, interaction.resource_id is not None, interaction.name)

    # -- routing -------------------------------------------------------------------------------
    Handler = Callable[[FhirRequest, Repository, datetime, Interaction], FhirResponse]

    def route(self, request: FhirRequest) -> tuple[Interaction, Handler]:
        method = "GET" if request.method == "HEAD" else request.method
        parts = [part for part in request.path.split("/") if part] if request.path else []
        if not parts:
            raise MethodNotAllowed(f"{method} is not supported on the base URL")
        if parts == ["metadata"]:
            return self._only(method, "GET", Interaction("capabilities"), self._capabilities)
        if parts == ["_history"]:
            return self._only(method, "GET", Interaction("history-system"), self._history)
        if parts[-1].startswith("$") and len(parts) in (2, 3):
            return self._route_operation(method, parts, request.path)
        if any(part.startswith("$") for part in parts):
            raise NotSupported(f"operation {request.path} is not supported by this server")
        resource_type = parts[0]
        if resource_type not in RESOURCE_TYPES:
            raise NotFound(unsupported_type(resource_type), code="not-supported")
        if len(parts) == 1:
            routes = {
                "GET": (Interaction("search-type", resource_type), self._search),
                "POST": (Interaction("create", resource_type), self._create),
                "PUT": (Interaction("update", resource_type), self._conditional_update),
                "DELETE": (Interaction("delete", resource_type), self._conditional_delete),
            }
            if method not in routes:
                raise MethodNotAllowed(f"{method} is not supported on {resource_type}")
            return routes[method]
        if parts[1] == "_search" and len(parts) == 2:
            return self._only(method, "POST", Interaction("search-type", resource_type), self._search)
        if parts[1] == "_history" and len(parts) == 2:
            return self._only(method, "GET", Interaction("history-type", resource_type), self._history)
        resource_id = parts[1]
        if not ID_PATTERN.match(resource_id):
            raise BadRequest(f"{resource_id!r} is not a valid resource id", expression="request.url")
        if len(parts) == 2:
            routes = {
                "GET": (Interaction("read", resource_type, resource_id), self._read),
                "PUT": (Interaction("update", resource_type, resource_id), self._update),
                "PATCH": (Interaction("patch", resource_type, resource_id), self._patch),
                "DELETE": (Interaction("delete", resource_type, resource_id), self._delete),
            }
            if method not in routes:
                raise MethodNotAllowed(f"{method} is not supported on {resource_type}/{resource_id}")
            return routes[method]
        if parts[2] == "_history" and len(parts) == 3:
            return self._only(method, "GET", Interaction("history-instance", resource_type, resource_id), self._history)
        if parts[2] == "_history" and len(parts) == 4:
            return self._only(method, "GET", Interaction("vread", resource_type, resource_id), self._vread)
        raise NotFound(f"no FHIR interaction at {request.path!r}")

    def _route_operation(self, method: str, parts: list[str], path: str) -> tuple[Interaction, Handler]:
        resource_type, resource_id = parts[0], parts[1] if len(parts) == 3 else None
        operation = find_operation(resource_type, resource_id is not None, parts[-1][1:])
        if operation is None:
            raise NotSupported(f"operation {path} is not supported by this server")
        if resource_id is not None and not ID_PATTERN.match(resource_id):
            raise BadRequest(f"{resource_id!r} is not a valid resource id", expression="request.url")

        def run(request: FhirRequest, repository: Repository, now: datetime, interaction: Interaction) -> FhirResponse:
            return operation.handle(self, request, repository, now, interaction)

        return self._only(method, operation.method, Interaction(operation.name, resource_type, resource_id), run)

    @staticmethod
    def _only(method: str, allowed: str, interaction: Interaction, handler: Handler) -> tuple[Interaction, Handler]:
        if method != allowed:
            raise MethodNotAllowed(f"{method} is not supported here; use {allowed}")
        return interaction, handler

    # -- helpers -------------------------------------------------------------------------------
    def _location(self, item: StoredResource) -> str:
        return f"{self.config.base_url}/{item.type}/{item.id}/_history/{item.version}"

    def _written(
        self, request: FhirRequest, item: StoredResource, status: int, message: str, change: str
    ) -> FhirResponse:
        # Bundle entries answer minimally unless asked: a pushing EHR wants statuses and
        # locations back, not an echo of the megabytes it just sent.
        prefer = request.prefer("return") or ("minimal" if request.entry else None)
        if prefer == "minimal":
            body = None
        elif prefer == "operationoutcome":
            body = operation_outcome([Issue("informational", message, severity="information")])
        else:
            body = item.content
        return FhirResponse(
            status,
            body,
            location=self._location(item),
            etag=item.etag,
            last_modified=instant(item.last_updated),
            change=change,
        )

    def search_criteria(self, resource_type: str, query_string: str, where: str) -> list[Criterion]:
        """The criteria of a condition (If-None-Exist, conditional update/delete/reference);
        parsed strictly: an unknown parameter in a condition would silently widen the match."""
        params = parse_qsl(query_string, keep_blank_values=True)
        if not params:
            raise BadRequest(f"{where} needs search criteria")
        query = self._parse_search(resource_type, params, strict=True)
        if not query.criteria:
            raise BadRequest(f"{where} needs search criteria")
        return query.criteria

    def _parse_search(self, resource_type: str, params: list[tuple[str, str]], strict: bool) -> SearchQuery:
        return parse_search(
            resource_type,
            params,
            base_url=self.config.base_url,
            strict=strict,
            default_count=self.config.default_page_size,
            max_count=self.config.max_page_size,
        )

    def _require_resource(self, request: FhirRequest, resource_type: str) -> dict[str, Any]:
        validate_resource(request.body, resource_type, stored=True, max_elements=self.config.max_resource_elements)
        body: dict[str, Any] = request.body
        return body

    def _current(self, repository: Repository, resource_type: str, resource_id: str) -> StoredResource:
        item = repository.read(resource_type, resource_id)
        if item is None:
            raise not_known(resource_type, resource_id)
        if item.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted", headers={"ETag": item.etag})
        return item

    # -- interactions --------------------------------------------------------------------------
    def _capabilities(
        self, request: FhirRequest, repository: Repository, now: datetime, _: Interaction
    ) -> FhirResponse:
        return FhirResponse(200, capability_statement(self.config.base_url, self.config.security))

    def _read(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type and i.resource_id
        item = self._current(repository, i.resource_type, i.resource_id)
        if_none_match = request.header("if-none-match")
        if if_none_match and if_none_match.strip() in (item.etag, f'"{item.version}"'):
            return FhirResponse(304, None, etag=item.etag, last_modified=instant(item.last_updated))
        since = request.header("if-modified-since")
        if since:
            from email.utils import parsedate_to_datetime  # noqa: PLC0415

            try:
                moment = parsedate_to_datetime(since).replace(tzinfo=None)
            except (TypeError, ValueError):
                moment = None
            if moment and item.last_updated.replace(microsecond=0) <= moment:
                return FhirResponse(304, None, etag=item.etag, last_modified=instant(item.last_updated))
        params = dict(request.params)
        summary = params.get("_summary")
        if summary not in (None, "false", "true", "text", "data"):
            raise BadRequest(f"_summary must be true, text, data or false on a read, got {summary!r}")
        elements = parse_elements(params["_elements"]) if params.get("_elements") else ()
        content = _shaped(item.content, summary if summary != "false" else None, elements)
        return FhirResponse(200, content, etag=item.etag, last_modified=instant(item.last_updated))

    def _vread(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type and i.resource_id
        version_text = request.path.rstrip("/").split("/")[-1]
        version = whole_number(version_text)
        if version is None:
            raise NotFound(f"{i.resource_type}/{i.resource_id} has no version {version_text!r}")
        item = repository.vread(i.resource_type, i.resource_id, version)
        if item is None:
            raise NotFound(f"{i.resource_type}/{i.resource_id} has no version {version_text}")
        if item.deleted:
            raise Gone(f"version {version_text} of {i.resource_type}/{i.resource_id} is a deletion")
        return FhirResponse(200, item.content, etag=item.etag, last_modified=instant(item.last_updated))

    def _create(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type
        content = dict(self._require_resource(request, i.resource_type))
        condition = request.header("if-none-exist")
        if condition:
            criteria = self.search_criteria(i.resource_type, condition.lstrip("?"), "If-None-Exist")
            repository.lock(f"{i.resource_type}?{condition}")
            found = repository.find(i.resource_type, criteria)
            if len(found) > 1:
                raise PreconditionFailed(
                    f"If-None-Exist {condition!r} matches more than one {i.resource_type}", expression="request.url"
                )
            if found:
                return self._written(
                    request, found[0], 200, "a matching resource exists; nothing was created", "unchanged"
                )
        content["id"] = request.assigned_id or new_id()
        content = self.writes.before_write(request, content, None)
        item = repository.write(content, current=None, method="POST", source=request.requester.source, now=now)
        self.writes.after_write(request, item, repository, now)
        return self._written(request, item, 201, f"created {item.type}/{item.id}", "created")

    def _update(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type and i.resource_id
        content = self._require_resource(request, i.resource_type)
        if content.get("id") != i.resource_id:
            raise BadRequest(
                f"the resource's id ({content.get('id')!r}) must equal the id in the URL ({i.resource_id!r})",
                expression=f"{i.resource_type}.id",
            )
        return self._store_update(request, repository, now, content, repository.read(i.resource_type, i.resource_id))

    def _store_update(
        self,
        request: FhirRequest,
        repository: Repository,
        now: datetime,
        content: dict[str, Any],
        current: StoredResource | None,
        method: str = "PUT",
    ) -> FhirResponse:
        if_match = request.header("if-match")
        if if_match:
            expected = parse_etag(if_match)
            if current is None or current.deleted:
                raise PreconditionFailed(
                    f"If-Match {if_match}: {content['resourceType']}/{content['id']} does not exist"
                )
            if current.version != expected:
                raise PreconditionFailed(
                    f"If-Match {if_match} does not match the current version {current.etag}; read it again"
                )
        live = current if current is not None and not current.deleted else None
        _check_owner(request, live)
        content = self.writes.before_write(request, content, live)
        if live is not None and live.content is not None and _same_content(live.content, content):
            return self._written(request, live, 200, "no change; the current version is kept", "unchanged")
        item = repository.write(content, current=current, method=method, source=request.requester.source, now=now)
        self.writes.after_write(request, item, repository, now)
        created = live is None
        change = "created" if created else "updated"
        return self._written(request, item, 201 if created else 200, f"{change} {item.type}/{item.id}", change)

    def _conditional_update(
        self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction
    ) -> FhirResponse:
        assert i.resource_type
        query_string = "&".join(f"{k}={v}" for k, v in request.params)
        if not request.params:
            raise MethodNotAllowed(f"PUT on {i.resource_type} needs an id (Type/id) or search criteria (Type?...)")
        criteria = self.search_criteria(i.resource_type, query_string, "a conditional update")
        content = dict(self._require_resource(request, i.resource_type))
        repository.lock(f"{i.resource_type}?{query_string}")
        found = repository.find(i.resource_type, criteria)
        if len(found) > 1:
            raise PreconditionFailed(f"the conditional update matches more than one {i.resource_type}")
        if found:
            if content.get("id") not in (None, found[0].id):
                raise BadRequest(
                    f"the resource's id {content['id']!r} differs from the matching {i.resource_type}/{found[0].id}",
                    expression=f"{i.resource_type}.id",
                )
            content["id"] = found[0].id
            return self._store_update(request, repository, now, content, found[0])
        content["id"] = content.get("id") or request.assigned_id or new_id()
        return self._store_update(request, repository, now, content, repository.read(i.resource_type, content["id"]))

    def _patch(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        """JSON Patch (RFC 6902), http.html#patch."""
        assert i.resource_type and i.resource_id
        current = self._current(repository, i.resource_type, i.resource_id)
        operations = request.body
        if not isinstance(operations, list):
            raise BadRequest("a PATCH body must be a JSON Patch document (a JSON array of operations)")
        try:
            patched = jsonpatch.apply_patch(current.content, operations)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as error:
            raise Unprocessable(f"the JSON Patch cannot be applied: {error}") from None
        if (
            not isinstance(patched, dict)
            or patched.get("id") != i.resource_id
            or patched.get("resourceType") != i.resource_type
        ):
            raise Unprocessable("a JSON Patch may not change the resource's type or id")
        patched_request = dataclasses.replace(request, body=patched)
        content = self._require_resource(patched_request, i.resource_type)
        return self._store_update(patched_request, repository, now, content, current, method="PATCH")

    def _delete(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type and i.resource_id
        current = repository.read(i.resource_type, i.resource_id)
        if_match = request.header("if-match")
        if if_match and (current is None or current.deleted or current.version != parse_etag(if_match)):
            raise PreconditionFailed(f"If-Match {if_match} does not match the current version")
        if current is None or current.deleted:
            # http.html#delete: deleting what does not exist (any more) succeeds.
            return FhirResponse(204)
        _check_owner(request, current)
        item = repository.delete(current, source=request.requester.source, now=now)
        return FhirResponse(204, etag=item.etag)

    def _conditional_delete(
        self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction
    ) -> FhirResponse:
        assert i.resource_type
        query_string = "&".join(f"{k}={v}" for k, v in request.params)
        criteria = self.search_criteria(i.resource_type, query_string, "a conditional delete")
        repository.lock(f"{i.resource_type}?{query_string}")
        found = repository.find(i.resource_type, criteria)
        if len(found) > 1:
            raise PreconditionFailed(f"the conditional delete matches more than one {i.resource_type}")
        if found:
            _check_owner(request, found[0])
            repository.delete(found[0], source=request.requester.source, now=now)
        return FhirResponse(204)

    def _search(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        assert i.resource_type
        handling = request.prefer("handling")
        strict = handling == "strict" if handling else self.config.strict_search_by_default
        params = list(request.params)
        if request.method == "POST" and isinstance(request.body, list):
            params += request.body  # form-encoded parameters of POST _search
        params = [(k, v) for k, v in params if k not in ("_format", "_pretty")]
        query = self._parse_search(i.resource_type, params, strict)
        query.max_bytes = self.config.max_page_bytes
        matches, total = repository.search(query)
        if query.elements or query.summary:
            matches = [
                dataclasses.replace(item, content=_shaped(item.content, query.summary, query.elements))
                for item in matches
            ]
        included = repository.included(matches, query.includes) + repository.revincluded(matches, query.revincludes)
        links = bundles.page_links(
            self.config.base_url, i.resource_type, query.echo, query.count, query.offset, total, len(matches)
        )
        body = bundles.searchset(self.config.base_url, matches, included, total, links, query.warnings, now)
        return FhirResponse(200, body)

    def _history(self, request: FhirRequest, repository: Repository, now: datetime, i: Interaction) -> FhirResponse:
        count, offset, since = self.config.default_page_size, 0, None
        echo: list[tuple[str, str]] = []
        for key, value in request.params:
            if key == "_count":
                found_count = whole_number(value)
                if found_count is None:
                    raise BadRequest(f"_count must be a whole number below 2^63, got {value!r}", expression="_count")
                count = min(found_count, self.config.max_page_size)
            elif key == "_offset":
                found_offset = whole_number(value)
                if found_offset is None:
                    raise BadRequest(f"_offset must be a whole number below 2^63, got {value!r}", expression="_offset")
                offset = found_offset
            elif key == "_since":
                found = date_range(value)
                if found is None:
                    raise BadRequest(f"_since must be a FHIR instant, got {value!r}")
                since = found[0]
                echo.append((key, value))
        if i.resource_id:
            assert i.resource_type
            if repository.read(i.resource_type, i.resource_id) is None:
                raise NotFound(f"{i.resource_type}/{i.resource_id} is not known")
        versions, total = repository.history(i.resource_type, i.resource_id, since, count, offset,
                                             self.config.max_page_bytes)  # fmt: skip
        path = "/".join(p for p in (i.resource_type, i.resource_id, "_history") if p)
        links = bundles.page_links(self.config.base_url, path, echo, count, offset, total, len(versions))
        return FhirResponse(200, bundles.history(self.config.base_url, versions, total, links, now))


def _shaped(content: dict[str, Any] | None, summary: str | None, elements: tuple[str, ...]) -> dict[str, Any] | None:
    """A copy cut down by _summary and/or _elements; the stored resource is never changed."""
    if content is None:
        return None
    if summary:
        content = summarize(content, summary)
    if elements:
        content = subset(content, elements)
    return content


def _same_content(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Equal apart from the server-assigned meta: such an update creates no new version."""

    def strip(content: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (content.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
        rest = {k: v for k, v in content.items() if k != "meta"}
        if meta:
            rest["meta"] = meta
        return rest

    return strip(stored) == strip(incoming)


INTERNAL = Requester(source="gateway:consent-engine", scopes=("system/*.c",), part2_program=True)
"""Who writes what the engine's own obligations call for (the §2.51(c) Communications)."""

__all__ = ["Engine", "EngineConfig", "FhirError", "Conflict", "parse_etag", "new_id"]
