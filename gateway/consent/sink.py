"""The engine's audit sink: each request's one audit record, rendered from the releases queued on
it (or from why it was refused), written in the unit of work that commits it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from consent_engine import Release
from gateway.consent.audit import AuditLog, Requested, audit_record, printable
from gateway.consent.spool import AuditSpool
from gateway.fhir.context import FhirRequest, Interaction
from gateway.fhir.repository import Repository
from gateway.fhir.validation import ID_PATTERN


def requested(request: FhirRequest, interaction: Interaction | None, root: str = "/fhir") -> Requested:
    query = "&".join(f"{k}={v}" for k, v in request.params)
    requester = request.requester
    return Requested(
        line=printable(f"{request.method} {root}/{request.path}{'?' + query if query else ''}"),
        interaction=interaction.name if interaction else None,
        user=requester.username,
        client=requester.client_id,
        role=requester.role or requester.client_kind,
        purpose=request.purpose or requester.purpose,
        patient=named_patient(request),
    )


def named_patient(request: FhirRequest) -> str | None:
    """The patient a request names in its URL (Patient/x/..., ?patient=Patient/x), if one."""
    parts = request.path.split("/")
    if len(parts) >= 2 and parts[0] == "Patient" and parts[1] and not parts[1].startswith("$"):
        return _patient(parts[1])
    for name in ("_id", "patient", "subject") if parts[0] == "Patient" else ("patient", "subject"):
        value = request.param(name)
        if value and "," not in value:
            return _patient(value.removeprefix("Patient/"))
    return None


def _patient(patient_id: str) -> str | None:
    # What is not an id names nobody (and would not fit the audit's patient column).
    return f"Patient/{patient_id}" if ID_PATTERN.match(patient_id) else None


class ConsentAudit:
    def __init__(self, log: AuditLog, spool: AuditSpool | None = None) -> None:
        self.log = log
        self.spool_to = spool

    def record(
        self,
        request: FhirRequest,
        interaction: Interaction | None,
        status: int,
        error: Exception | None,
        repository: Repository,
        now: datetime,
    ) -> None:
        entry: Any = audit_record(requested(request, interaction), request.audit, status, error, now)
        self.log.append(repository.connection, [entry])

    def spool(self, request: FhirRequest, interaction: Interaction | None, status: int, now: datetime) -> bool:
        emergency = any(isinstance(e, Release) and e.emergency_record is not None for e in request.audit)
        if self.spool_to is None or not emergency:
            return False
        entry = audit_record(requested(request, interaction), request.audit, status, None, now)
        self.spool_to.write(entry, list(request.follow_ups))
        return True

    def replay(
        self,
        unit: Callable[[], AbstractContextManager[tuple[Repository, datetime]]],
        follow_up: Callable[[dict[str, Any], Repository, datetime], None],
    ) -> int:
        if self.spool_to is None:
            return 0
        replayed = 0
        for path in self.spool_to.pending():
            record, follow_ups = self.spool_to.read(path)
            with unit() as (repository, now):
                self.log.append(repository.connection, [record])
                for resource in follow_ups:
                    follow_up(resource, repository, now)
            path.unlink()  # after the commit: a crash between the two replays it twice, never zero times
            replayed += 1
        return replayed

    def replay_due(self) -> bool:
        return self.spool_to is not None and self.spool_to.due()
