"""The engine's audit sink: each request's one audit record, rendered from the releases queued on
it (or from why it was refused), written in the unit of work that commits it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.consent.audit import AuditLog, Requested, audit_record
from gateway.fhir.context import FhirRequest, Interaction
from gateway.fhir.repository import Repository


def requested(request: FhirRequest, interaction: Interaction | None, root: str = "/fhir") -> Requested:
    query = "&".join(f"{k}={v}" for k, v in request.params)
    requester = request.requester
    return Requested(
        line=f"{request.method} {root}/{request.path}{'?' + query if query else ''}",
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
        return f"Patient/{parts[1]}"
    for name in ("_id", "patient", "subject") if parts[0] == "Patient" else ("patient", "subject"):
        value = request.param(name)
        if value and "," not in value:
            return value if value.startswith("Patient/") else f"Patient/{value}"
    return None


class ConsentAudit:
    def __init__(self, log: AuditLog) -> None:
        self.log = log

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
