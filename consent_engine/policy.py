"""Project rules where the law leaves a choice: each one a named value, with the defaults issue 4
sets. `policy_from_mapping` reads the same names from config/consent_policy.toml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from consent_engine.codes import (
    CN,
    CONTACT,
    CRISISPLAN,
    DATA_CLASSES,
    DX,
    ETREAT,
    LAB,
    LAW_ENFORCEMENT,
    LEGAL_PROCEEDING,
    MED,
    PSYNOTE,
    STATUS,
    TREAT,
)
from consent_engine.notice import STATEMENT_1, STATEMENT_1_VERSION

_CLINICAL = frozenset(DATA_CLASSES - {CN, PSYNOTE})


def _default_roles() -> dict[str, frozenset[str]]:
    return {
        "crisis-clinician": _CLINICAL,
        "ed-physician": _CLINICAL,
        "ems": _CLINICAL,
        "peer-specialist": frozenset({STATUS, CONTACT, CRISISPLAN}),
        "dispatcher": frozenset({CONTACT, CRISISPLAN}),
        "police-officer": frozenset({STATUS, CONTACT, CRISISPLAN}),
        "compliance-officer": frozenset(),
        "admin": frozenset(),
    }


@dataclass(frozen=True)
class Policy:
    version: str = "2026-11-26"
    # Minimum necessary: the data classes each role may receive at all (CN and PSYNOTE only ever
    # under their own consent or authorisation). A role not listed receives nothing.
    role_data_classes: Mapping[str, frozenset[str]] = field(default_factory=_default_roles)
    # Roles that see clinical detail: the jurisdiction overlay and HIPAA treatment disclosures
    # apply to them, and they keep sensitivity labels.
    clinical_roles: frozenset[str] = frozenset({"crisis-clinician", "ed-physician", "ems"})
    police_roles: frozenset[str] = frozenset({"police-officer"})
    # Hard-denied for Part 2 and mental-health data whatever the consents say (§2.12(d), §2.31(d)).
    hard_denied_purposes: frozenset[str] = frozenset({LAW_ENFORCEMENT, LEGAL_PROCEEDING})
    emergency_data_classes: frozenset[str] = frozenset({DX, MED, CONTACT, LAB, CRISISPLAN})
    emergency_window: timedelta = timedelta(minutes=60)
    # The state-law stand-in: non-Part 2 mental-health data may go without consent to clinical
    # roles at health-care providers for these purposes (and their specialisations).
    mental_health_overlay: bool = True
    mental_health_overlay_purposes: frozenset[str] = frozenset({TREAT, ETREAT})
    # HIPAA 164.506(c): other (non-sensitive) data to a treating provider without consent.
    treatment_purposes: frozenset[str] = frozenset({TREAT})
    notice: str = STATEMENT_1
    notice_version: str = STATEMENT_1_VERSION


DEFAULT_POLICY = Policy()


def policy_from_mapping(data: Mapping[str, Any]) -> Policy:
    """A policy from configuration (TOML tables): unknown names are an error, lists become sets,
    `emergency_window_minutes` sets the window."""
    known = {f.name for f in fields(Policy)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "emergency_window_minutes":
            values["emergency_window"] = timedelta(minutes=int(value))
        elif name == "role_data_classes":
            values[name] = {role: _classes(role, classes) for role, classes in dict(value).items()}
        elif name in known:
            values[name] = frozenset(value) if isinstance(value, list) else value
        else:
            raise ValueError(f"unknown consent policy setting {name!r}")
    return replace(DEFAULT_POLICY, **values)


def _classes(role: str, classes: Any) -> frozenset[str]:
    found = frozenset(str(c) for c in classes)
    unknown = found - DATA_CLASSES
    if unknown:
        raise ValueError(f"role {role!r}: unknown data classes {sorted(unknown)}")
    return found
