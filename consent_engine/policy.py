"""Project rules where the law leaves a choice: each one a named value, with the defaults of
../shared/research/consent-conventions.md. `policy_from_mapping` reads the same names from
config/consent_policy.toml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from consent_engine.codes import (
    CAUSE_OF_DEATH,
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
from consent_engine.part2 import STATEMENT_1, STATEMENT_1_VERSION

_CLINICAL = frozenset(DATA_CLASSES - {CN, PSYNOTE})
MINOR_ALONE = "minor-alone"
MINOR_AND_PARENT = "minor-and-parent"
MINOR_RULES = frozenset({MINOR_ALONE, MINOR_AND_PARENT})
_NOTES = frozenset({CN, PSYNOTE})


def _default_roles() -> dict[str, frozenset[str]]:
    return {
        "crisis-clinician": _CLINICAL,
        "ed-physician": _CLINICAL,
        "ems": _CLINICAL,
        "peer-specialist": frozenset({STATUS, CONTACT, CRISISPLAN}),
        "dispatcher": frozenset({CONTACT, CRISISPLAN}),
        "police-officer": frozenset({STATUS, CONTACT, CRISISPLAN}),
        "medical-examiner": frozenset({DX, MED, LAB}),
        "epidemiologist": frozenset(),
        "legal-counsel": _CLINICAL,  # the ceiling: only an order or a §2.31(d) consent opens it
        "compliance-officer": frozenset(),
        "admin": frozenset(),
    }


def _default_note_roles() -> dict[str, frozenset[str]]:
    return {"crisis-clinician": _NOTES, "ed-physician": _NOTES, "ems": _NOTES}


@dataclass(frozen=True)
class Policy:
    version: str = "2026-12-06"
    # Minimum necessary (§2.13(a), 164.514(d)): the data classes each role may receive at all.
    # A role not listed receives nothing.
    role_data_classes: Mapping[str, frozenset[str]] = field(default_factory=_default_roles)
    # CN and PSYNOTE, which a role receives only under their own consent (§2.31(b)) or
    # authorisation (164.508(a)(2)) naming the recipient.
    role_note_classes: Mapping[str, frozenset[str]] = field(default_factory=_default_note_roles)
    # Roles that see clinical detail: they keep sensitivity labels (an SUD label would tell
    # anyone else the diagnosis).
    clinical_roles: frozenset[str] = frozenset({"crisis-clinician", "ed-physician", "ems"})
    police_roles: frozenset[str] = frozenset({"police-officer"})
    # Use against the patient (§2.12(d), §2.31(d)): these purposes reach Part 2 and mental-health data
    # only under a registered court order (§§2.61-2.66) or a separate consent for that alone.
    hard_denied_purposes: frozenset[str] = frozenset({LAW_ENFORCEMENT, LEGAL_PROCEEDING})
    # Roles that receive nothing but under a court order or a separate §2.31(d) consent.
    order_only_roles: frozenset[str] = frozenset({"legal-counsel"})
    # §2.51: what an emergency releases (never CN or PSYNOTE), to medical personnel only.
    emergency_data_classes: frozenset[str] = frozenset({DX, MED, CONTACT, LAB, CRISISPLAN})
    # The state-law stand-in: non-Part 2 mental-health items (MH, PSY, BH) may go without the
    # patient's consent to these roles at health-care providers, for these purposes (and their
    # specialisations), never to police.
    mental_health_overlay: bool = True
    mental_health_overlay_roles: frozenset[str] = frozenset({"crisis-clinician", "ed-physician"})
    mental_health_overlay_purposes: frozenset[str] = frozenset({TREAT, ETREAT})
    # HIPAA 164.506(c): other (non-sensitive) data to any role at a treating provider.
    treatment_purposes: frozenset[str] = frozenset({TREAT})
    # Compliance officers receive consents and compliance reports as the programs' own
    # administration (§2.12(c)(3), §2.24, §2.25), not as disclosures.
    administration_roles: frozenset[str] = frozenset({"compliance-officer"})
    administration_kinds: frozenset[str] = frozenset(
        {"Consent", "Disclosure", "AuditEvent", "EmergencyReview", "Subpoena"}
    )
    # §2.14: the jurisdiction's rule for minors (a deployment serves one jurisdiction). With
    # "minor-alone" a minor may obtain SUD treatment without a parent and only the minor may sign a
    # consent; with "minor-and-parent" the minor and a parent or guardian both sign. A minor is
    # under `age_of_majority` when the consent is signed.
    jurisdiction: str = "US"
    minor_sud_consent: str = "minor-and-parent"
    age_of_majority: int = 18
    # §2.15(b)(1), 164.512(g)(1): a cause-of-death inquiry about a deceased patient, by these roles
    # for these purposes, receives the role's classes.
    cause_of_death_roles: frozenset[str] = frozenset({"medical-examiner"})
    cause_of_death_purposes: frozenset[str] = frozenset({CAUSE_OF_DEATH})
    # §2.54: public health receives Safe Harbor de-identified counts only, with cells under
    # `minimum_cell` suppressed.
    public_health_roles: frozenset[str] = frozenset({"epidemiologist"})
    minimum_cell: int = 11
    # A certain $responder-match confirms identity for the requester's briefs this long.
    certain_match_confirms: timedelta = timedelta(hours=1)
    # The name the §2.51(c) record gives for who disclosed ("<program> via <gateway_name>").
    gateway_name: str = "the county crisis-response gateway"
    notice: str = STATEMENT_1
    notice_version: str = STATEMENT_1_VERSION


DEFAULT_POLICY = Policy()


def policy_from_mapping(data: Mapping[str, Any]) -> Policy:
    """A policy from configuration (TOML tables): unknown names are an error, lists become sets,
    `certain_match_confirms_minutes` sets that duration."""
    known = {f.name for f in fields(Policy)}
    if data.get("minor_sud_consent", "minor-and-parent") not in MINOR_RULES:
        raise ValueError(f"minor_sud_consent must be one of {sorted(MINOR_RULES)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "certain_match_confirms_minutes":
            values["certain_match_confirms"] = timedelta(minutes=int(value))
        elif name in ("role_data_classes", "role_note_classes"):
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
