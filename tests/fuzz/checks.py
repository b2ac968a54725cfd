"""Schemathesis checks of the FHIR contract (loaded with SCHEMATHESIS_HOOKS): besides "no 5xx",
every error answered under /fhir is an OperationOutcome, as docs/fhir-api.md promises."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def errors_are_operation_outcomes(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome" or not body.get("issue"):
        raise AssertionError(f"{response.status_code} without an OperationOutcome: {(response.content or b'')[:300]!r}")
    return None
