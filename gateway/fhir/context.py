"""The engine's request and response objects, and the two hooks every interaction passes.

`AuthorizationHook` runs before an interaction touches the store; `ReleaseHook` runs on every
response that leaves the engine (top-level requests and each Bundle entry alike). Both are
pass-through until the SMART and consent-engine work fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class EngineConfig:
    base_url: str
    default_page_size: int = 50
    max_page_size: int = 1000
    strict_search_by_default: bool = False
    max_bundle_entries: int = 10_000
    max_resource_elements: int = 100_000  # elements and values one resource may hold
    max_page_bytes: int = 16 * 1024 * 1024  # stored JSON one search page may carry
    security: dict[str, Any] | None = None  # CapabilityStatement.rest.security (SMART's oauth-uris)


@dataclass(frozen=True)
class Requester:
    """Who is asking. `source` is recorded on every version this requester writes."""

    source: str = "anonymous"
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    patient: str | None = None  # the launch context's patient, for patient/ scopes
    username: str | None = None  # the signed-in user behind an app's token
    role: str | None = None  # that user's role (config/roles.toml)
    own_writes_only: bool = False  # EHR clients: may change only resources whose source is theirs
    organization: str | None = None  # the sending organization (EHR clients), e.g. Organization/eastside-otp
    part2_program: bool = False  # the sender is a registered 42 CFR Part 2 program
    conceal_deletions: bool = False  # answer 404, not 410, for deleted resources (restricted readers)
    purpose: str | None = None  # purpose of use bound to the token (chosen at authorisation)
    client_kind: str | None = None  # backend clients: ehr, dispatch, service; apps: app
    grant: str | None = None  # the access token's id: what may be cached about the requester is cached by it


@dataclass
class FhirRequest:
    method: str  # GET, HEAD, POST, PUT, PATCH, DELETE
    path: str  # relative to the FHIR base, without leading slash: "Patient/1/_history/2"
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None  # the parsed resource (or JSON Patch document)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    requester: Requester = field(default_factory=Requester)
    # Set for Bundle entries: FHIRPath of the entry, e.g. "Bundle.entry[3]".
    entry: str | None = None
    # Set by transaction processing: the id a create gets, so that urn:uuid references to it
    # can be rewritten before any entry runs. Never taken from the client.
    assigned_id: str | None = None
    # Decisions the release hook queued; the engine's audit sink turns them into the request's
    # one audit record and commits it before the response leaves. Bundle entries share their
    # Bundle's list.
    audit: list[Any] = field(default_factory=list)
    # Resources to create in the same transaction as the audit record (the §2.51(c)
    # Communications), through the engine's router like any other create.
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    # Purpose of use and emergency given with this request (X-Purpose-Of-Use and
    # X-Emergency-Nature, or the operation's parameters); the token's purpose is in `requester`.
    purpose: str | None = None
    emergency_nature: str | None = None
    # Release decisions already taken for this request, by patient id ($responder-match decides
    # whom it may show before ranking; the release hook reuses those decisions).
    decided: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        return next((value for key, value in self.params if key == name), None)

    def prefer(self, key: str) -> str | None:
        """A token of the Prefer header (RFC 7240), e.g. prefer('return') -> 'minimal'."""
        for part in (self.header("prefer") or "").split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"').lower()
        return None


@dataclass
class FhirResponse:
    status: int
    resource: dict[str, Any] | None = None
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None  # FHIR instant; the adapter renders the HTTP date
    change: str | None = None  # created, updated, unchanged: what a write did (import reports it)
    # What the release hook decided about the response, for operations that present it (the
    # brief is built from exactly the released items and the bases they went on).
    disclosure: Any = None
    # Resources the interaction read about the patients in its answer but does not answer with
    # (their Consents, Encounters, episodes): the release decision reads them from here.
    inputs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Interaction:
    """What a request asks to do, as the hooks and the CapabilityStatement name it."""

    name: str  # read, vread, update, patch, delete, history-instance, history-type, history-system,
    # create, search-type, capabilities, transaction, batch, or an operation's name (responder-brief)
    resource_type: str | None = None
    resource_id: str | None = None


class AuthorizationHook(Protocol):
    def authorize(self, request: FhirRequest, interaction: Interaction) -> None:
        """Raise a FhirError (401/403/404) when the requester may not do this."""


class ReleaseHook(Protocol):
    def release(
        self, request: FhirRequest, interaction: Interaction, response: FhirResponse, repository: Any, now: datetime
    ) -> FhirResponse:
        """Return what may be released of the response (or raise). `repository` and `now` are
        the unit of work's: what the decision reads, it reads there."""

    def may_know(
        self, request: FhirRequest, patients: list[dict[str, Any]], repository: Any, now: datetime
    ) -> list[dict[str, Any]]:
        """The Patients among `patients` (in their order) whose existence the requester may
        learn. Asked before the engine computes anything across patients ($responder-match
        ranks candidates against each other only after this), so that a person the requester
        may not know of cannot change the answer. It decides; it discloses nothing."""


class WriteHook(Protocol):
    """Runs on every resource the engine writes (creates, updates, patches; Bundle entries too)."""

    def before_write(self, request: FhirRequest, content: dict[str, Any], current: Any) -> dict[str, Any]:
        """The content to store (e.g. with security labels); `current` is the stored version or None."""

    def after_write(self, request: FhirRequest, written: Any, repository: Any, now: Any) -> None:
        """Follow-up writes in the same unit of work (e.g. label propagation)."""

    def reads(self, content: dict[str, Any]) -> list[str]:
        """The references (Type/id) that `after_write` may read for this content: a transaction
        loads those of all its entries in one query before the first entry runs."""


class WriteAsIs:
    def before_write(self, request: FhirRequest, content: dict[str, Any], current: Any) -> dict[str, Any]:
        return content

    def after_write(self, request: FhirRequest, written: Any, repository: Any, now: Any) -> None:
        return None

    def reads(self, content: dict[str, Any]) -> list[str]:
        return []


class AuditSink(Protocol):
    def record(
        self,
        request: FhirRequest,
        interaction: Interaction | None,
        status: int,
        error: Exception | None,
        repository: Any,
        now: datetime,
    ) -> None:
        """Write the request's one audit record (its decisions, or why it was refused) in the
        unit of work of `repository`, or raise: then nothing may be released."""

    def spool(self, request: FhirRequest, interaction: Interaction | None, status: int, now: datetime) -> bool:
        """The store did not take the record: if the request is a medical emergency that released
        something, write its record durably elsewhere and say True (it may go out); else False."""

    def replay(self, unit: Any, follow_up: Any) -> int:
        """Append each spooled record, oldest first, in a unit of work of its own (`unit()`), with
        its follow-up resources (`follow_up(resource, repository, now)`); forget it once that
        committed. How many were replayed."""

    def replay_due(self) -> bool:
        """Whether spooled records may be waiting (checked at most every few seconds)."""


class AllowAll:
    """Until SMART authorization lands: every interaction is allowed (loopback binds only)."""

    def authorize(self, request: FhirRequest, interaction: Interaction) -> None:
        return None


class ReleaseAll:
    """Without authorization (local development on loopback, operator commands): responses leave
    unchanged."""

    def release(
        self, request: FhirRequest, interaction: Interaction, response: FhirResponse, repository: Any, now: datetime
    ) -> FhirResponse:
        return response

    def may_know(
        self, request: FhirRequest, patients: list[dict[str, Any]], repository: Any, now: datetime
    ) -> list[dict[str, Any]]:
        return patients


class OperationContext(Protocol):
    """What an operation's handler may use of the engine."""

    config: EngineConfig
    release: ReleaseHook
