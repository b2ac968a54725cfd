"""One error hierarchy for the engine; every error renders as an OperationOutcome.

Status codes follow FHIR R4 http.html: 400 bad syntax, 404 unknown, 405 wrong method, 406/415
format negotiation, 409 version conflict, 410 deleted, 412 precondition failed, 413 too large,
422 business-rule / profile failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue. `expression` holds FHIRPath locations of the problem."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.diagnostics:
            issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue

    def under(self, entry: str) -> Issue:
        """The same issue located inside a Bundle entry, e.g. `Bundle.entry[3]`.

        `Patient.name[0]` becomes `Bundle.entry[3].resource.name[0]`; a path that is already
        relative to the entry (`request.url`) is appended; no path points at the entry itself.
        """
        return Issue(self.code, self.diagnostics, self.severity, _relocate(self.expression, entry))


def _relocate(expression: tuple[str, ...], entry: str) -> tuple[str, ...]:
    if not expression:
        return (entry,)
    located = []
    for path in expression:
        head, _, rest = path.partition(".")
        if head[:1].isupper():
            located.append(f"{entry}.resource" + (f".{rest}" if rest else ""))
        else:
            located.append(f"{entry}.{path}")
    return tuple(located)


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_fhir() for issue in issues]}


class FhirError(Exception):
    """Base of every error the engine raises on purpose. Subclasses fix the HTTP status."""

    status = 400
    default_code = "invalid"
    audited = False  # its audit record is written (or its failure to be written is this error)

    def __init__(
        self,
        diagnostics: str = "",
        *,
        code: str | None = None,
        expression: str | tuple[str, ...] | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(expression, str):
            expression = (expression,)
        self.issues = issues or [Issue(code or self.default_code, diagnostics, expression=expression or ())]
        self.headers = headers or {}
        super().__init__(diagnostics or (self.issues[0].diagnostics if self.issues else ""))

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    def under(self, entry: str) -> FhirError:
        """This error re-located inside a Bundle entry (see `Issue.under`)."""
        clone = type(self).__new__(type(self))
        clone.issues = [issue.under(entry) for issue in self.issues]
        clone.headers = dict(self.headers)
        Exception.__init__(clone, str(self))
        return clone


class BadRequest(FhirError):
    status = 400
    default_code = "invalid"


class NotSupported(FhirError):
    status = 400
    default_code = "not-supported"


def not_known(resource_type: str | None, resource_id: str | None) -> NotFound:
    """The one answer for "not here", "not yours" and "not permitted": the same bytes, so that the
    presence of a record is never revealed (42 CFR 2.13(c))."""
    return NotFound(f"{resource_type}/{resource_id} is not known")


class Unauthorized(FhirError):
    """No valid credentials (RFC 6750): the adapter adds WWW-Authenticate."""

    status = 401
    default_code = "login"


class Forbidden(FhirError):
    status = 403
    default_code = "forbidden"


class NotFound(FhirError):
    status = 404
    default_code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    default_code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    default_code = "not-supported"


class Conflict(FhirError):
    status = 409
    default_code = "conflict"


class Gone(FhirError):
    status = 410
    default_code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    default_code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    default_code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    default_code = "not-supported"


class Unprocessable(FhirError):
    """Syntactically fine, semantically wrong: failed validation against the R4 definitions."""

    status = 422
    default_code = "processing"


UNAVAILABLE = "the service cannot answer now; try again shortly"
RETRY_AFTER_SECONDS = "5"


class ServiceUnavailable(FhirError):
    """The store, the consents or the audit cannot be read or written: fail closed, and say so in
    the same words whatever failed and whoever asked about whom (the cause goes to the log)."""

    status = 503
    default_code = "transient"

    def __init__(self, diagnostics: str = UNAVAILABLE, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": RETRY_AFTER_SECONDS})
        super().__init__(UNAVAILABLE, **kwargs)
