"""Validation of incoming resources (R4 4.0.1 via the fhir.resources R4B models) plus what the
models do not check: required code bindings, id syntax, reference syntax, and the resource type
matching the URL. Every problem becomes an Issue whose `expression` is a FHIRPath location.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.fhir.errors import BadRequest, Issue, PayloadTooLarge, Unprocessable
from gateway.fhir.models import RESOURCE_TYPES, model_class, unsupported_type
from gateway.fhir.narrative import narrative_problem

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RELATIVE_REFERENCE = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)
_URN_UUID = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_URN_OID = re.compile(r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$")
_CONDITIONAL_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)$")

_ADMINISTRATIVE_GENDER = ("male", "female", "other", "unknown")
_NAME_USE = ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden")
_CONTACT_SYSTEM = ("phone", "fax", "email", "pager", "url", "sms", "other")
_CONTACT_USE = ("home", "work", "temp", "old", "mobile")
_IDENTIFIER_USE = ("usual", "official", "temp", "secondary", "old")
_ADDRESS_USE = ("home", "work", "temp", "old", "billing")
_ADDRESS_TYPE = ("postal", "physical", "both")


def _person_bindings(prefix: str) -> dict[str, tuple[str, ...]]:
    return {
        f"{prefix}.gender": _ADMINISTRATIVE_GENDER,
        f"{prefix}.name.use": _NAME_USE,
        f"{prefix}.telecom.system": _CONTACT_SYSTEM,
        f"{prefix}.telecom.use": _CONTACT_USE,
        f"{prefix}.identifier.use": _IDENTIFIER_USE,
        f"{prefix}.address.use": _ADDRESS_USE,
        f"{prefix}.address.type": _ADDRESS_TYPE,
    }


def _nested(path_head: str, repeat: str, tail: str, depth: int) -> list[str]:
    return [f"{path_head}{('.' + repeat) * level}.{tail}" for level in range(1, depth + 1)]


# Required bindings on `code` elements that the R4B models accept as any string. The brief and
# the consent engine branch on these values, so an unknown code must not slip into the store.
REQUIRED_BINDINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "Patient": {
        **_person_bindings("Patient"),
        "Patient.contact.gender": _ADMINISTRATIVE_GENDER,
        "Patient.link.type": ("replaced-by", "replaces", "refer", "seealso"),
    },
    "Practitioner": _person_bindings("Practitioner"),
    "RelatedPerson": _person_bindings("RelatedPerson"),
    "Person": _person_bindings("Person"),
    "Organization": {
        "Organization.telecom.system": _CONTACT_SYSTEM,
        "Organization.telecom.use": _CONTACT_USE,
    },
    "PractitionerRole": {
        "PractitionerRole.telecom.system": _CONTACT_SYSTEM,
        "PractitionerRole.telecom.use": _CONTACT_USE,
        "PractitionerRole.availableTime.daysOfWeek": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    },
    "EpisodeOfCare": {
        "EpisodeOfCare.status": (
            "planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error",
        ),
        "EpisodeOfCare.statusHistory.status": (
            "planned", "waitlist", "active", "onhold", "finished", "cancelled", "entered-in-error",
        ),
    },
    "CareTeam": {
        "CareTeam.status": ("proposed", "active", "suspended", "inactive", "entered-in-error"),
        "CareTeam.telecom.system": _CONTACT_SYSTEM,
    },
    "Consent": {
        "Consent.status": ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error"),
        **{
            path: ("deny", "permit")
            for path in ["Consent.provision.type", *_nested("Consent.provision", "provision", "type", 8)]
        },
    },
    "Encounter": {
        "Encounter.status": (
            "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
            "entered-in-error", "unknown",
        ),
    },
    "Flag": {"Flag.status": ("active", "inactive", "entered-in-error")},
    "CarePlan": {
        "CarePlan.status": (
            "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown",
        ),
        "CarePlan.intent": ("proposal", "plan", "order", "option"),
    },
    "Observation": {
        "Observation.status": (
            "registered", "preliminary", "final", "amended", "corrected", "cancelled",
            "entered-in-error", "unknown",
        ),
    },
    "MedicationStatement": {
        "MedicationStatement.status": (
            "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
            "not-taken",
        ),
    },
    "MedicationRequest": {
        "MedicationRequest.status": (
            "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
            "unknown",
        ),
        "MedicationRequest.intent": (
            "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
            "instance-order", "option",
        ),
    },
    "AllergyIntolerance": {
        "AllergyIntolerance.type": ("allergy", "intolerance"),
        "AllergyIntolerance.criticality": ("low", "high", "unable-to-assess"),
    },
    "Bundle": {
        "Bundle.type": (
            "document", "message", "transaction", "transaction-response", "batch", "batch-response",
            "history", "searchset", "collection",
        ),
    },
}  # fmt: skip


def iter_path(resource: dict[str, Any], path: str) -> Iterator[tuple[Any, str]]:
    """Values at a dotted path (lists are walked), each with its FHIRPath location."""
    head, *steps = path.split(".")
    nodes: list[tuple[Any, str]] = [(resource, head)]
    for step in steps:
        next_nodes: list[tuple[Any, str]] = []
        for node, location in nodes:
            if not isinstance(node, dict) or step not in node:
                continue
            value = node[step]
            if isinstance(value, list):
                next_nodes.extend((item, f"{location}.{step}[{index}]") for index, item in enumerate(value))
            else:
                next_nodes.append((value, f"{location}.{step}"))
        nodes = next_nodes
    yield from nodes


def find_references(node: Any) -> list[dict[str, Any]]:
    """Every Reference-like object (a dict with a string `reference`) inside a resource.

    On the ingest hot path: it builds no location strings (see `locate` for those)."""
    found: list[dict[str, Any]] = []
    stack: list[Any] = [node]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        if type(current) is dict:
            if type(current.get("reference")) is str:
                found.append(current)
            children = current.values()
        else:
            children = current
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push(child)
    return found


def locate(root: Any, target: Any, root_name: str) -> str:
    """The FHIRPath of `target` (found by identity) inside `root`, for error messages."""
    stack: list[tuple[Any, str]] = [(root, root_name)]
    while stack:
        current, where = stack.pop()
        if current is target:
            return where
        if isinstance(current, dict):
            stack.extend((value, f"{where}.{key}") for key, value in current.items() if isinstance(value, dict | list))
        elif isinstance(current, list):
            stack.extend(
                (item, f"{where}[{index}]") for index, item in enumerate(current) if isinstance(item, dict | list)
            )
    return root_name


def classify_reference(reference: str) -> str:
    """'relative', 'absolute', 'contained', 'urn', 'conditional' or 'invalid'."""
    if reference.startswith("#"):
        return "contained" if len(reference) > 1 else "invalid"
    match = _RELATIVE_REFERENCE.match(reference)
    if match:
        return "relative" if match["type"] in RESOURCE_TYPES else "invalid"
    if _URN_UUID.match(reference) or _URN_OID.match(reference):
        return "urn"
    if reference.startswith(("http://", "https://")) and len(reference) > 8 and " " not in reference:
        return "absolute"
    match = _CONDITIONAL_REFERENCE.match(reference)
    if match and match["type"] in RESOURCE_TYPES:
        return "conditional"
    return "invalid"


def issues_from_model_error(error: Exception, resource_type: str) -> list[Issue]:
    if not isinstance(error, ValidationError):
        return [Issue("structure", f"{resource_type} is not valid: {error}", expression=(resource_type,))]
    issues = []
    for problem in error.errors(include_url=False):
        path = resource_type
        for part in problem["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part not in ("__root__",) and not str(part).startswith(("function-", "json-or-python")):
                path += f".{part}"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = f"unknown element {problem['loc'][-1]!r}"
        elif problem["type"] == "missing":
            message = "required element is missing"
        issues.append(Issue("structure", message, expression=(path,)))
    return issues or [Issue("structure", str(error), expression=(resource_type,))]


# FHIR strings (datatypes.html#string) hold no character below U+0020 but tab, line feed and
# carriage return; PostgreSQL cannot store U+0000 at all. One rule for both stores: refused.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


MAX_RESOURCE_ELEMENTS = 100_000  # the most one resource may hold (elements and values): work is bounded per request


class _Scan:
    """One walk over a resource: the first string holding a control character, and the size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.narratives: list[tuple[str, str]] = []  # (FHIRPath, div) of every narrative met

    def control_character_at(self, node: Any, path: str) -> str | None:
        self.count += 1
        if self.count > self.limit:
            return None
        if isinstance(node, str):
            return path if CONTROL_CHARACTERS.search(node) else None
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
                    return path
                if key == "div" and isinstance(value, str):
                    self.narratives.append((f"{path}.div", value))
                found = self.control_character_at(value, f"{path}.{key}")
                if found:
                    return found
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found = self.control_character_at(value, f"{path}[{index}]")
                if found:
                    return found
        return None


def control_character_at(node: Any, path: str) -> str | None:
    """The FHIRPath of the first string (or property name) holding a control character."""
    return _Scan(2**62).control_character_at(node, path)


VALID_METAS_KEPT = 4096
_valid_metas: dict[bytes, None] = {}


def _validate_model(model: Any, resource: dict[str, Any]) -> None:
    """The model's validation, with `meta` checked once per distinct shape: a load repeats the same
    labels, tags and profiles on every resource (a pulled page carries its source's labels on
    each), and validating them is most of the work for a small resource. Meta is a datatype whose
    validity does not depend on its siblings, so a meta seen in a valid resource is valid in any;
    an unseen one is validated with the resource, so errors keep their full paths."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or not meta:
        model.model_validate(resource)
        return
    try:
        key = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        model.model_validate(resource)
        return
    if key in _valid_metas:
        model.model_validate({k: v for k, v in resource.items() if k != "meta"})
        return
    model.model_validate(resource)
    if len(_valid_metas) >= VALID_METAS_KEPT:
        _valid_metas.clear()  # bounded: per-resource metas (versionId, lastUpdated) never repeat
    _valid_metas[key] = None


def validate_resource(
    resource: Any, expected_type: str | None = None, *, stored: bool = False, max_elements: int = MAX_RESOURCE_ELEMENTS
) -> str:
    """Validate a parsed resource; return its type. Raises BadRequest/Unprocessable with issues.

    `stored`: the resource is about to be stored, so its references must already be resolved:
    conditional references and urn:uuid placeholders only mean something inside a transaction
    Bundle, which rewrites them before its entries are validated. A stored Bundle (a document)
    keeps its internal urn:uuid references: they resolve against its own entries."""
    if not isinstance(resource, dict):
        raise BadRequest("expected a FHIR resource (a JSON object)")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise BadRequest("the resource has no resourceType", expression="resourceType")
    model = model_class(resource_type)
    if model is None or resource_type not in RESOURCE_TYPES:
        raise BadRequest(unsupported_type(resource_type), code="not-supported", expression=resource_type)
    if expected_type is not None and resource_type != expected_type:
        raise BadRequest(
            f"resource type {resource_type} does not match the URL's type {expected_type}",
            expression=f"{resource_type}.resourceType",
        )
    resource_id = resource.get("id")
    if resource_id is not None and (not isinstance(resource_id, str) or not ID_PATTERN.match(resource_id)):
        raise BadRequest("id must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'", expression=f"{resource_type}.id")
    scan = _Scan(max_elements)
    where = scan.control_character_at({k: v for k, v in resource.items() if k != "resourceType"}, resource_type)
    if scan.count > max_elements:
        raise PayloadTooLarge(f"a resource may hold at most {max_elements:,} elements and values",
                              expression=resource_type)  # fmt: skip
    if where:
        raise BadRequest("FHIR strings may not contain control characters (other than tab, CR and LF)",
                         code="value", expression=where)  # fmt: skip
    for location, div in scan.narratives:
        problem = narrative_problem(div)
        if problem:
            raise Unprocessable(issues=[Issue("invariant", problem, expression=(location,))])
    try:
        _validate_model(model, resource)
    except (ValidationError, ValueError, TypeError) as error:
        raise Unprocessable(issues=issues_from_model_error(error, resource_type)) from None

    issues: list[Issue] = []
    for path, allowed in REQUIRED_BINDINGS.get(resource_type, {}).items():
        for value, location in iter_path(resource, path):
            if value not in allowed:
                issues.append(
                    Issue(
                        "code-invalid",
                        f"{value!r} is not in the required value set ({', '.join(allowed)})",
                        expression=(location,),
                    )
                )
    must_be_resolved = stored and resource_type != "Bundle"
    for reference in find_references(resource):
        target = reference["reference"]
        kind = classify_reference(target)
        if kind == "invalid":
            where = locate(resource, reference, resource_type)  # paths only for problems: hot path
            issues.append(
                Issue(
                    "value",
                    f"{target!r} is not a valid reference (Type/id, an absolute URL, #contained or urn:uuid)",
                    expression=(f"{where}.reference",),
                )
            )
        elif must_be_resolved and kind == "conditional":
            raise BadRequest(
                "conditional references are resolved only inside transaction Bundles",
                expression=f"{locate(resource, reference, resource_type)}.reference",
            )
        elif must_be_resolved and target.startswith("urn:uuid:"):
            raise BadRequest(
                f"{target} does not resolve: urn:uuid references only resolve to entries of the same "
                "transaction Bundle",
                expression=f"{locate(resource, reference, resource_type)}.reference",
            )
    if issues:
        raise Unprocessable(issues=issues)
    return resource_type
