"""What the engine takes and returns: plain, immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from consent_engine.codes import MENTAL_HEALTH_LABELS, PART2, PSYCHOTHERAPY_NOTE


class Outcome(StrEnum):
    PERMIT = "PERMIT"
    PERMIT_WITH_REDACTION = "PERMIT_WITH_REDACTION"
    DENY = "DENY"


class ConsentKind(StrEnum):
    PART2_SPECIFIC = "part2-specific"  # §2.31: named discloser(s), recipient(s), purpose, data
    PART2_TPO = "part2-tpo"  # §2.31(a)(4)(i), 2024: one consent for all future TPO
    PART2_INTERMEDIARY = "part2-intermediary"  # §2.31(a)(4)(ii): general designation
    COUNSELING_NOTES = "part2-counseling-notes"  # §2.31(b): never combined with another kind
    HIPAA_AUTHORIZATION = "hipaa-authorization"  # 45 CFR 164.508: non-Part 2 data
    RESTRICTION = "restriction"  # §2.26 / 164.522: a deny for some recipients, purposes or data
    OPT_OUT = "opt-out"  # deny everything (but emergencies)


PERMIT_KINDS = frozenset(
    {ConsentKind.PART2_SPECIFIC, ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY, ConsentKind.COUNSELING_NOTES,
     ConsentKind.HIPAA_AUTHORIZATION}
)  # fmt: skip


@dataclass(frozen=True)
class Recipient:
    """Who would receive the data: decisions key on the individual's role and employer, never on
    the unit they ride with (co-responder teams)."""

    user: str  # username (audit) and, where known, the Practitioner reference
    name: str
    role: str
    medical: bool  # counts as medical personnel (§2.51)
    organization: str  # e.g. Organization/harbor-cmhc
    organization_is_provider: bool = False  # a health-care provider (HIPAA covered entity)
    aliases: frozenset[str] = frozenset()  # other references naming the same organization or person
    practitioner: str | None = None

    def named_by(self, references: frozenset[str]) -> bool:
        mine = {self.organization, *self.aliases}
        if self.practitioner:
            mine.add(self.practitioner)
        return bool(mine & references)


@dataclass(frozen=True)
class Emergency:
    """A break-the-glass declaration (§2.51): who declared it, when, and why."""

    nature: str
    declared_at: datetime


@dataclass(frozen=True)
class DecisionRequest:
    recipient: Recipient
    purpose: str | None
    patient: str
    as_of: datetime
    data_classes: frozenset[str] | None = None  # None: every class
    emergency: Emergency | None = None


@dataclass(frozen=True)
class Item:
    """One releasable piece of the record (usually a resource), with what the labeller found."""

    key: str  # e.g. "Condition/abc"
    data_class: str
    labels: frozenset[str] = frozenset()
    source: str | None = None  # the Organization that sent it (the discloser)
    # Derived once, read on every decision.
    part2: bool = field(init=False, compare=False, repr=False)
    mental_health: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "part2", PART2 in self.labels)
        mental = bool(self.labels & MENTAL_HEALTH_LABELS) or PSYCHOTHERAPY_NOTE in self.labels
        object.__setattr__(self, "mental_health", mental)


@dataclass(frozen=True)
class PatientRecord:
    patient: str
    items: tuple[Item, ...]
    # Organizations with a treating relationship at as_of (an active crisis Encounter).
    treating_organizations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Provision:
    """A FHIR R4 Consent.provision: a permit or deny rule, with nested exceptions.

    Empty criteria match anything; a nested provision that matches overrides its parent."""

    type: str  # "permit" or "deny"
    start: datetime | None = None
    end: datetime | None = None  # inclusive
    recipients: frozenset[str] = frozenset()  # Organization/…, Practitioner/… references
    recipient_classes: frozenset[str] = frozenset()  # treating-providers, intermediary-participants
    purposes: frozenset[str] = frozenset()
    data_classes: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()  # the sensitivity the rule is about, e.g. {"SUD"}
    provisions: tuple[Provision, ...] = ()


@dataclass(frozen=True)
class Consent:
    id: str
    kind: ConsentKind
    patient: str
    provision: Provision
    status: str = "active"
    disclosers: frozenset[str] = frozenset()  # Part 2 programs allowed to disclose
    intermediary: str | None = None
    signed_at: datetime | None = None
    expires_at: datetime | None = None  # inclusive
    expiry_event: str | None = None  # e.g. end-of-treatment
    expiry_event_at: datetime | None = None  # when the event happened, if it has
    revoked_at: datetime | None = None
    problems: tuple[str, ...] = ()  # §2.31(a) elements missing: the consent cannot be relied on
    description: str = ""  # the §2.32(b) explanation of its scope

    @property
    def reliable(self) -> bool:
        return not self.problems


class Basis(StrEnum):
    CONSENT = "consent"
    EMERGENCY = "emergency"  # §2.51
    TREATMENT = "treatment"  # HIPAA 164.506(c): provider to provider, non-Part 2 data
    JURISDICTION = "jurisdiction"  # the configurable state-law overlay for mental-health data


class ItemDecision(NamedTuple):
    item: Item
    released: bool
    basis: Basis | None = None
    consent_ids: tuple[str, ...] = ()
    reason: str = ""  # why withheld: a reason code citing the rule (audit only, never the recipient)


@dataclass(frozen=True)
class Alert:
    code: str  # police-release, law-enforcement-purpose, consent-conflict, emergency-access
    detail: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    items: tuple[ItemDecision, ...]
    notice: str | None = None  # §2.32 Statement 1 when a Part 2 item is released
    notice_version: str | None = None
    consent_explanations: tuple[str, ...] = ()  # §2.32(b), one per relied-on consent
    strip_labels: bool = False  # sensitivity labels removed for non-clinical recipients
    ledger: tuple[str, ...] = ()  # keys of released Part 2 items: a disclosure ledger row each
    intermediary_disclosures: tuple[str, ...] = ()  # §2.24 list entries (item keys)
    emergency_record: dict[str, str] | None = None  # §2.51(c)
    alerts: tuple[Alert, ...] = ()
    policy_version: str = ""
    reasons: tuple[str, ...] = field(default=())  # request-level reason codes (audit only)

    @property
    def released(self) -> tuple[Item, ...]:
        return tuple(d.item for d in self.items if d.released)

    @property
    def withheld(self) -> tuple[ItemDecision, ...]:
        return tuple(d for d in self.items if not d.released)
