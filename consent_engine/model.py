"""What the engine takes and returns: plain, immutable data.

In: a `ReleaseRequest` (who asks, for what purpose, about whom, how), the patient's `Record`
(the labelled items in scope, the treating relationships, the programs' episodes), the patient's
`Consent`s, the requester's `History` and the time. Out: one `Release`, from which the answer,
the audit record and the ledger are all rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple

from consent_engine.codes import DEMOGRAPHICS, MENTAL_HEALTH_LABELS, PART2, PSYCHOTHERAPY_NOTE, PSYNOTE


class Outcome(StrEnum):
    PERMIT = "PERMIT"  # every requested item is released
    PERMIT_WITH_REDACTION = "PERMIT_WITH_REDACTION"  # some are
    DENY = "DENY"  # none is; the answer is the one for "nothing on file"


class ConsentKind(StrEnum):
    PART2_SPECIFIC = "part2-specific"  # §2.31: named discloser(s), recipient(s), purpose, data
    PART2_TPO = "part2-tpo"  # §2.31(a)(4)(i), 2024: one consent for all future TPO
    PART2_INTERMEDIARY = "part2-intermediary"  # §2.31(a)(4)(ii): general designation
    COUNSELING_NOTES = "part2-counseling-notes"  # §2.31(b): never combined with another kind
    HIPAA_AUTHORIZATION = "hipaa-authorization"  # 45 CFR 164.508: non-Part 2 data
    RESTRICTION = "restriction"  # §2.26 / 164.522: a deny for some recipients, purposes or data
    OPT_OUT = "opt-out"  # deny everything (but emergencies)
    COURT_ORDER = "court-order"  # §§2.61-2.67: registered by compliance officers; read as a CourtOrder


PERMIT_KINDS = frozenset(
    {ConsentKind.PART2_SPECIFIC, ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY, ConsentKind.COUNSELING_NOTES,
     ConsentKind.HIPAA_AUTHORIZATION}
)  # fmt: skip
PART2_KINDS = frozenset(
    {ConsentKind.PART2_SPECIFIC, ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY, ConsentKind.COUNSELING_NOTES}
)
DENY_KINDS = frozenset({ConsentKind.RESTRICTION, ConsentKind.OPT_OUT})


class Operation(StrEnum):
    """How the requester asks: decides which rules about identity apply."""

    READ = "read"  # a read, search or history of FHIR resources
    BRIEF = "brief"  # $responder-brief: clinical classes; the person shown only with them
    MATCH = "match"  # $responder-match: identity only, shown only if a brief would release something
    REPORT = "report"  # a compliance report (the ledger, the §2.24 list, reviews)


@dataclass(frozen=True)
class Recipient:
    """Who would receive the data. Decisions key on the individual's role and employer, never on
    the unit they ride with (co-responder teams). A backend client (an EHR, a dispatch system) is
    a recipient too, with `system` set: it is decided by the own-records rule."""

    user: str  # username, or client:<id> for a backend client
    name: str
    role: str  # for backend clients: the client's kind (ehr, dispatch, service)
    medical: bool  # counts as medical personnel (§2.51)
    organization: str  # e.g. Organization/harbor-cmhc
    organization_is_provider: bool = False  # a health-care provider (HIPAA covered entity)
    aliases: frozenset[str] = frozenset()  # other references naming the same organization or person
    practitioner: str | None = None
    organization_name: str = ""  # the §2.51(c) record names the recipient's affiliation
    system: bool = False

    def named_by(self, references: frozenset[str]) -> bool:
        if not references:
            return False
        mine = {self.organization, *self.aliases}
        if self.practitioner:
            mine.add(self.practitioner)
        return bool(mine & references)


@dataclass(frozen=True)
class Emergency:
    """A break-the-glass declaration (§2.51), made with the request: what is happening."""

    nature: str


@dataclass(frozen=True)
class ReleaseRequest:
    recipient: Recipient
    purpose: str | None
    patient: str
    operation: Operation = Operation.READ
    data_classes: frozenset[str] | None = None  # the classes asked for (None: every class)
    emergency: Emergency | None = None
    identity_confirmed: bool = True  # a brief: the responder confirmed this is the right person


@dataclass(frozen=True)
class Item:
    """One releasable piece of the record (a resource), with what the labeller found."""

    key: str  # e.g. "Condition/abc"
    data_class: str
    labels: frozenset[str] = frozenset()
    source: str | None = None  # the Organization that sent it (its discloser)
    description: str = ""  # a brief description for the ledger (§2.25, 164.528(b)(2))
    addressed_to: frozenset[str] = frozenset()  # a Communication's recipients
    # Derived once, read on every decision.
    kind: str = field(init=False, compare=False, repr=False)
    part2: bool = field(init=False, compare=False, repr=False)
    mental_health: bool = field(init=False, compare=False, repr=False)
    psychotherapy: bool = field(init=False, compare=False, repr=False)
    demographics: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.key.split("/", 1)[0])
        object.__setattr__(self, "part2", PART2 in self.labels)
        object.__setattr__(self, "mental_health", bool(self.labels & MENTAL_HEALTH_LABELS))
        object.__setattr__(self, "psychotherapy", PSYCHOTHERAPY_NOTE in self.labels or self.data_class == PSYNOTE)
        object.__setattr__(self, "demographics", self.data_class == DEMOGRAPHICS)


@dataclass(frozen=True)
class Episode:
    """A program's EpisodeOfCare for the patient: how an end-of-treatment expiry is recognised."""

    key: str
    program: str  # managingOrganization
    status: str
    end: datetime | None = None  # when it ended (period.end, else when it was recorded as ended)


@dataclass(frozen=True)
class PatientFacts:
    """What the Patient resource says that the rules on signers and on deceased patients read
    (§2.14, §2.15). Unknown facts are None: a patient of unknown age is read as an adult, one
    not recorded as deceased as living."""

    birth_date: date | None = None
    deceased: bool = False  # deceasedBoolean true, or a deceasedDateTime
    deceased_at: datetime | None = None  # deceasedDateTime, when given

    def dead_at(self, moment: datetime | None) -> bool:
        """Whether the patient had died by `moment` (a death recorded without a date counts from
        any moment; None asks about no moment and is False)."""
        if not self.deceased or moment is None:
            return False
        return self.deceased_at is None or self.deceased_at <= moment

    def age_at(self, moment: datetime | None) -> int | None:
        if self.birth_date is None or moment is None:
            return None
        day = moment.date()
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class Record:
    patient: str
    items: tuple[Item, ...]  # every item in scope of the request
    # Organizations with a treating relationship at as_of (an in-progress crisis Encounter).
    treating_organizations: frozenset[str] = frozenset()
    episodes: tuple[Episode, ...] = ()
    organization_names: Mapping[str, str] = field(default_factory=dict)
    facts: PatientFacts = PatientFacts()


@dataclass(frozen=True)
class History:
    """What the requester's earlier requests established (from the audit log)."""

    certain_match_at: datetime | None = None  # their own $responder-match graded this patient certain


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


class SignerRole(StrEnum):
    """Who signed a consent, in what capacity (§2.14, §2.15): Consent.performer's role."""

    PATIENT = "patient"
    PARENT = "parent"  # of a minor
    GUARDIAN = "guardian"  # appointed by a court (a minor's, or an adult's adjudicated as lacking capacity)
    PERSONAL_REPRESENTATIVE = "personal-representative"  # of a deceased patient
    PROGRAM_DIRECTOR = "program-director"  # for an adult lacking capacity, for payment only


@dataclass(frozen=True)
class Signer:
    role: SignerRole | None  # None: not given, or not a role this gateway knows
    reference: str | None = None


@dataclass(frozen=True)
class Consent:
    id: str
    kind: ConsentKind
    patient: str
    provision: Provision
    status: str = "active"
    disclosers: frozenset[str] = frozenset()  # the programs whose records it covers (Consent.organization)
    recorded_by: str | None = None  # the organization that sent it: bounds it when it names no discloser
    intermediary: str | None = None
    signed_at: datetime | None = None
    expires_at: datetime | None = None  # inclusive
    expiry_event: str | None = None  # e.g. end-of-treatment
    expiry_event_at: datetime | None = None  # when the event happened, if the Consent says so
    revoked_at: datetime | None = None
    problems: tuple[str, ...] = ()  # §2.31(a) elements missing: the consent cannot be relied on
    description: str = ""  # the §2.32(b) explanation of its scope
    signers: tuple[Signer, ...] = ()

    @property
    def reliable(self) -> bool:
        return not self.problems

    @property
    def bounds(self) -> frozenset[str]:
        """The sources whose items it is about: its disclosers, else the program that recorded it
        (an opt-out recorded by one program withholds that program's items, not another's)."""
        if self.disclosers:
            return self.disclosers
        return frozenset({self.recorded_by}) if self.recorded_by else frozenset()


class OrderSection(StrEnum):
    """The section of 42 CFR Part 2 subpart E a court order is issued under."""

    NON_CRIMINAL = "2.64"  # non-criminal purposes
    CRIMINAL = "2.65"  # criminal investigation or prosecution of the patient
    PROGRAM = "2.66"  # investigation or prosecution of a program or person holding records
    UNDERCOVER = "2.67"  # undercover agents and informants in a program


@dataclass(frozen=True)
class CourtOrder:
    """A court order authorising disclosure (§2.61: it authorises, a subpoena compels; only an
    order authorises). Released under it: exactly its scope, to exactly its recipients."""

    id: str
    patient: str
    section: OrderSection | None
    recipients: frozenset[str]  # named: an office, or a one-off recipient registered for the order
    purposes: frozenset[str]
    data_classes: frozenset[str] = frozenset()  # the classes it permits ...
    items: frozenset[str] = frozenset()  # ... and/or the items it names (Condition/abc)
    holders: frozenset[str] = frozenset()  # the programs ordered to disclose (empty: every source)
    confidential_communications: bool = False  # §2.63: it covers them (and SUD counseling notes)
    findings_recorded: bool = False  # the section's required findings are in the order
    notice_given: bool = False  # the patient and the holder had notice and an opportunity to respond
    status: str = "active"  # inactive: vacated
    issued_at: datetime | None = None
    expires_at: datetime | None = None  # inclusive
    problems: tuple[str, ...] = ()  # why it cannot be relied on

    def in_force(self, as_of: datetime) -> bool:
        return (
            self.status == "active"
            and not self.problems
            and (self.issued_at is None or self.issued_at <= as_of)
            and (self.expires_at is None or as_of <= self.expires_at)
        )


class BasisKind(StrEnum):
    CONSENT = "consent"  # a consent or authorisation (§2.31, 164.508)
    COURT_ORDER = "court-order"  # §§2.61-2.66: a registered order's exact scope
    EMERGENCY = "emergency"  # §2.51
    TREATMENT = "treatment"  # HIPAA 164.506(c): provider to provider, non-sensitive data
    JURISDICTION = "jurisdiction"  # the state-law overlay for non-Part 2 mental-health data
    DECEDENT = "cause-of-death"  # §2.15(b)(1), 164.512(g)(1): a medical examiner's cause-of-death inquiry
    OWN_RECORDS = "own-records"  # a backend client reads back what its organization sent
    ADMINISTRATION = "compliance-administration"  # a compliance officer's own records and reports


@dataclass(frozen=True)
class Basis:
    kind: BasisKind
    consent: str | None = None  # the consent that decided
    order: str | None = None  # the court order that decided
    consents: tuple[str, ...] = ()  # every consent that permits it
    tpo: bool = False  # the deciding consent is a single TPO consent (§2.31(a)(4)(i))
    intermediary: bool = False  # … an intermediary's general designation (§2.24)
    separate: bool = False  # … a separate consent to use the records against the patient (§2.31(d))
    citation: str = ""


class Released(NamedTuple):  # a tuple: one is made per item on every decision
    item: Item
    basis: Basis
    accompanies: bool = False  # demographics shown because something about the person is


class Withheld(NamedTuple):
    item: Item
    reason: str  # a code of codes.REASONS
    citation: str
    consents: tuple[str, ...] = ()  # the consents that decided it (a restriction, an opt-out)


@dataclass(frozen=True)
class Alert:
    code: str  # police-request, legal-purpose, consent-conflict, emergency-access, emergency-refused
    detail: str


@dataclass(frozen=True)
class Notice:
    """§2.32(a): the statement that goes with released Part 2 records."""

    text: str
    version: str


@dataclass(frozen=True)
class ScopeExplanation:
    """§2.32(b): what a relied-on consent covers."""

    consent: str
    text: str


@dataclass(frozen=True)
class LedgerRow:
    """One disclosure of a Part 2 item (§2.25 accounting)."""

    item: str
    description: str
    data_class: str
    discloser: str | None
    basis: Basis
    notice_version: str


@dataclass(frozen=True)
class IntermediaryRow:
    """§2.24: a disclosure under an intermediary's general designation."""

    participant: str  # the recipient's organization
    participant_name: str
    item: str
    description: str


@dataclass(frozen=True)
class EmergencyRecord:
    """§2.51(c): written immediately after the disclosure, sent to each source program."""

    recipient_name: str
    recipient_user: str
    affiliation: str  # the recipient's organization (reference)
    affiliation_name: str
    disclosed_by: str  # "<program> via <gateway>, on behalf of <program>"
    disclosed_at: datetime
    nature: str
    programs: tuple[str, ...]  # the source programs whose records went


@dataclass(frozen=True)
class AuditFacts:
    as_of: datetime
    policy_version: str
    consents_evaluated: tuple[str, ...] = ()  # the patient's consents the decision read
    consents_in_force: tuple[str, ...] = ()
    consents_relied_on: tuple[str, ...] = ()
    consents_denying: tuple[str, ...] = ()
    consents_not_relied_on: tuple[tuple[str, tuple[str, ...]], ...] = ()  # id, missing §2.31 elements
    orders_evaluated: tuple[str, ...] = ()
    orders_relied_on: tuple[str, ...] = ()
    orders_not_relied_on: tuple[tuple[str, tuple[str, ...]], ...] = ()  # id, what is missing
    reasons: tuple[str, ...] = ()  # request-level reason codes
    presence: tuple[str, ...] = ()  # identity-only answers: the items that justify showing the person


@dataclass(frozen=True)
class Release:
    """The whole decision about one patient for one request. The answer carries exactly
    `released`; the ledger is `ledger`; the audit record is all of it."""

    request: ReleaseRequest
    outcome: Outcome
    released: tuple[Released, ...]
    withheld: tuple[Withheld, ...]
    audit: AuditFacts
    notice: Notice | None = None
    scope_explanations: tuple[ScopeExplanation, ...] = ()
    strip_sensitivity: bool = False  # sensitivity labels stay only for clinical roles
    ledger: tuple[LedgerRow, ...] = ()
    intermediary_list: tuple[IntermediaryRow, ...] = ()
    emergency_record: EmergencyRecord | None = None
    review: bool = False  # a compliance review item (every emergency access)
    alerts: tuple[Alert, ...] = ()

    @property
    def released_keys(self) -> frozenset[str]:
        return frozenset(r.item.key for r in self.released)

    @property
    def bases(self) -> tuple[Basis, ...]:
        """The distinct bases of what was released, in a stable order."""
        return tuple(dict.fromkeys(r.basis for r in sorted(self.released, key=lambda r: r.item.key)))
