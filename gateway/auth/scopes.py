"""SMART scopes (App Launch 2.2, scopes-and-launch-context.html), as data.

Plain Python, no Flask: the authorization server negotiates with it and the resource server
checks every FHIR interaction with it. v1 scopes (`.read`, `.write`, `.*`) are read as their v2
equivalents (`.rs`, `.cud`, `.cruds`) but are granted in the form they were asked for, as the
spec asks ("SHOULD return v1 scopes when v1 scopes are requested and granted").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from gateway.fhir.models import RESOURCE_TYPES

ACTIONS = "cruds"
V1_ACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}
CONTEXTS = ("patient", "user", "system")
# Scopes that are not about resources; a client's ceiling must list them to be granted them.
LAUNCH_SCOPES = frozenset({"launch", "launch/patient", "launch/encounter"})
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile"})
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})
OTHER_SCOPES = LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")

# Which letter each FHIR interaction needs (scopes-and-launch-context.html, "Scopes for requesting
# FHIR Resources"): r = read, vread, instance history; s = search, type and system history.
INTERACTION_ACTION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "responder-brief": "r",  # Patient/{id}/$responder-brief reads the patient's record
    "responder-match": "s",  # Patient/$responder-match searches for a person
}


class ScopeError(ValueError):
    """A scope string the server cannot grant (OAuth `invalid_scope`)."""


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient, user, system
    resource_type: str  # a type or "*"
    actions: frozenset[str]
    query: str = ""  # the query constraint, without "?"
    text: str = ""  # as the client wrote it

    def covers(self, other: ResourceScope) -> bool:
        """Everything `other` allows, this allows too."""
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and other.actions <= self.actions
            and (not self.query or self.query == other.query)
        )

    def allows(self, context: str, resource_type: str, action: str) -> bool:
        return self.context == context and self.resource_type in ("*", resource_type) and action in self.actions

    def v2_text(self) -> str:
        letters = "".join(letter for letter in ACTIONS if letter in self.actions)
        return f"{self.context}/{self.resource_type}.{letters}" + (f"?{self.query}" if self.query else "")


def parse_resource_scope(text: str) -> ResourceScope | None:
    """A resource scope, None for a non-resource scope (openid, launch, ...).
    Raises ScopeError for something that looks like a resource scope but is not a valid one."""
    if text in OTHER_SCOPES or text.startswith("launch/") or "/" not in text:
        return None
    match = _RESOURCE_SCOPE.match(text)
    if not match:
        raise ScopeError(f"{text!r} is not a SMART scope (context/Type.cruds)")
    context, resource_type, letters, query = match.groups()
    if resource_type != "*" and resource_type not in RESOURCE_TYPES:
        raise ScopeError(f"{text!r} names a resource type this server does not have")
    if letters in V1_ACTIONS:
        actions = V1_ACTIONS[letters]
    elif letters and _in_order(letters):
        actions = letters
    else:
        raise ScopeError(f"{text!r}: the actions must be a non-empty, in-order subset of 'cruds'")
    return ResourceScope(context, resource_type, frozenset(actions), (query or "").lstrip("?"), text)


def _in_order(letters: str) -> bool:
    positions = [ACTIONS.find(letter) for letter in letters]
    return all(p >= 0 for p in positions) and positions == sorted(set(positions))


@dataclass(frozen=True)
class ScopeSet:
    """A parsed, space-separated scope string."""

    resources: tuple[ResourceScope, ...]
    others: frozenset[str]

    @classmethod
    def parse(cls, scope: str | Iterable[str] | None) -> ScopeSet:
        tokens = scope.split() if isinstance(scope, str) else list(scope or ())
        resources: list[ResourceScope] = []
        others: set[str] = set()
        for token in tokens:
            parsed = parse_resource_scope(token)
            if parsed is None:
                others.add(token)
            else:
                resources.append(parsed)
        return cls(tuple(resources), frozenset(others))

    def __str__(self) -> str:
        return " ".join([s.text or s.v2_text() for s in self.resources] + sorted(self.others))

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset(s.context for s in self.resources)

    def allowing(self, context: str, resource_type: str, action: str) -> list[ResourceScope]:
        return [s for s in self.resources if s.allows(context, resource_type, action)]

    def covers(self, scope: ResourceScope) -> bool:
        return any(granted.covers(scope) for granted in self.resources)

    def has(self, name: str) -> bool:
        return name in self.others


@lru_cache(maxsize=4096)
def scopes_of(scopes: tuple[str, ...]) -> ScopeSet:
    """A requester's scopes, parsed once: the hooks ask on every request and every Bundle entry."""
    return ScopeSet.parse(scopes)


def negotiate(requested: str, ceiling: str, *, allow_query: bool = False) -> ScopeSet:
    """What a client is granted of what it asked for, within its registered ceiling.

    A requested resource scope is granted when the ceiling covers it; otherwise its overlap with
    the ceiling is granted (fewer actions, or the ceiling's narrower types for a wildcard). Other
    scopes are granted when the ceiling lists them. Query-constrained scopes are refused: the
    resource server could not enforce them on reads (ScopeError -> invalid_scope).
    """
    asked = ScopeSet.parse(requested)
    limit = ScopeSet.parse(ceiling)
    granted: list[ResourceScope] = []
    for scope in asked.resources:
        if scope.query and not allow_query:
            raise ScopeError(f"{scope.text!r}: query-constrained scopes are not supported by this server")
        if limit.covers(scope):
            granted.append(scope)
            continue
        for bound in limit.resources:
            if bound.context != scope.context or bound.query:
                continue
            if scope.resource_type not in ("*", bound.resource_type) and bound.resource_type != "*":
                continue
            actions = scope.actions & bound.actions
            if actions:
                resource_type = bound.resource_type if scope.resource_type == "*" else scope.resource_type
                narrowed = ResourceScope(scope.context, resource_type, frozenset(actions))
                granted.append(replace(narrowed, text=narrowed.v2_text()))
    others = frozenset(name for name in asked.others if name in limit.others)
    unique = tuple(dict.fromkeys(granted))
    return ScopeSet(unique, others)


def is_subset(requested: ScopeSet, granted: ScopeSet) -> bool:
    """Refresh may narrow a grant, never widen it (compared by meaning, so v1 and v2 forms mix)."""
    return all(granted.covers(scope) for scope in requested.resources) and requested.others <= granted.others
