"""FHIR operations, declared as data: the router dispatches `$name` by this table and the
CapabilityStatement lists it, so neither can promise what the other does not do.

Each operation is a module named after it with a `handle` (run in the unit of work, before the
release hook) and, where the answer is built from what was released, a `present` (after it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, OperationContext
from gateway.fhir.operations import responder_brief, responder_match

Handler = Callable[[OperationContext, FhirRequest, Any, datetime, Interaction], FhirResponse]
Presenter = Callable[[OperationContext, FhirRequest, FhirResponse, Interaction, datetime], FhirResponse]
PROJECT = "https://crisis-fhir-gateway.org/fhir"


@dataclass(frozen=True)
class Operation:
    name: str  # without the $
    resource_type: str
    instance: bool  # Patient/{id}/$name (True) or Patient/$name
    method: str
    handle: Handler
    present: Presenter | None
    documentation: str

    @property
    def definition(self) -> str:
        return f"{PROJECT}/OperationDefinition/{self.resource_type}-{self.name}"


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "responder-brief", "Patient", True, "GET", responder_brief.handle, responder_brief.present,
        "GET Patient/{id}/$responder-brief?purpose=TREAT|ETREAT|BTG|crisis-coordination[&reason=][&class=]"
        "[&confirmed=true]: the responder brief, a document Bundle built from exactly what the consent engine "
        "releases; the purpose of use is required with each request",
    ),
    Operation(
        "responder-match", "Patient", False, "POST", responder_match.handle, None,
        "POST Patient/$responder-match (Parameters, with a purpose parameter or ?purpose=): at most 3 candidates "
        "with a match-grade, identity fields only, each shown only if the consent engine would release "
        "something about them to the requester",
    ),
)  # fmt: skip


def find_operation(resource_type: str, instance: bool, name: str) -> Operation | None:
    return next(
        (o for o in OPERATIONS if o.resource_type == resource_type and o.instance == instance and o.name == name), None
    )


__all__ = ["OPERATIONS", "Operation", "find_operation"]
