"""The one door out: what of a patient's record may go to this recipient, for this purpose, at
`as_of`, on what basis, and what must go with it (../shared/research/consent.md §4, with the
conventions of consent-conventions.md).

    release(request, record, consents, history, policy, as_of) -> Release

Every requester comes through here: responders and other users, compliance officers, and backend
clients (EHRs, dispatch systems: the own-records rule). A deceased patient (§2.15(b)) has no
brief, no match and no emergency: those are denied whole. Per item, for users:
1. minimum necessary: the role must receive the item's class (CN and PSYNOTE only under their own
   consent or authorisation naming the recipient, and only for roles allowed them);
2. hard guard: law-enforcement and legal-proceeding purposes never reach Part 2 or mental-health
   data (§2.12(d), §2.31(d));
   a medical examiner's cause-of-death inquiry about a deceased patient is not restricted
   (§2.15(b)(1)): the role's classes go on that basis;
3. denies (restrictions, opt-outs, deny provisions) of the item's discloser override every permit,
   except for the emergency data set in an emergency; a deny and a permit that both apply raise a
   conflict alert;
4. a basis: a Part 2 item needs a reliable consent in force (every §2.31(a) element, signed by
   whom §2.14 and §2.15 allow for this patient) that names its source as discloser
   and covers recipient, purpose and class (police: only a consent naming them); a non-Part 2
   mental-health item an authorisation or the jurisdiction overlay; any other item HIPAA treatment
   between providers or a consent. An emergency (§2.51) releases the emergency data set to medical
   personnel.
Then, for requests about clinical data (a brief, a match, a search of clinical classes),
demographics follow the decision: the Patient goes with a non-empty release and never alone.
Nothing released: DENY, answered exactly as "nothing on file" (§2.13(c)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consent_engine.codes import (
    BTG,
    CITATIONS,
    CN,
    PSYNOTE,
    PURPOSES,
    REASONS,
    purpose_covers,
)
from consent_engine.consents import ProvisionMatcher, in_force
from consent_engine.model import (
    PART2_KINDS,
    PERMIT_KINDS,
    Alert,
    AuditFacts,
    Basis,
    BasisKind,
    Consent,
    ConsentKind,
    CourtOrder,
    EmergencyRecord,
    History,
    IntermediaryRow,
    Item,
    LedgerRow,
    Notice,
    Operation,
    Outcome,
    Recipient,
    Record,
    Release,
    Released,
    ReleaseRequest,
    ScopeExplanation,
    Withheld,
)
from consent_engine.part2 import scope_explanation
from consent_engine.policy import Policy
from consent_engine.signers import problems_at

# What the §2.25 ledger accounts for: disclosures, not a program's own administration or HIPAA
# treatment of non-Part 2 data.
DISCLOSURE_BASES = frozenset({BasisKind.CONSENT, BasisKind.COURT_ORDER, BasisKind.EMERGENCY, BasisKind.DECEDENT})
# §2.31(d): a consent to use records against the patient is a separate consent, for that alone.
SEPARATE_LEGAL_KINDS = frozenset({ConsentKind.PART2_SPECIFIC, ConsentKind.HIPAA_AUTHORIZATION})
Decided = Released | Withheld


class DecisionError(ValueError):
    """The request cannot be decided as asked (HTTP 400): no purpose of use, an unknown one, an
    emergency without its nature. The message is safe to show the requester."""


class ConsentsUnavailable(RuntimeError):
    """The consents could not be read: routine requests fail closed (HTTP 503)."""


def request_alerts(recipient: Recipient, purpose: str | None, policy: Policy) -> tuple[Alert, ...]:
    """What compliance officers hear of at once, whatever is released: every request by police
    and every request for a law-enforcement or legal purpose (one per request, not per patient)."""
    found = []
    if recipient.role in policy.police_roles:
        found.append(Alert("police-request", f"{recipient.user} ({recipient.organization}) asked for {purpose}"))
    if purpose in policy.hard_denied_purposes:
        found.append(Alert("legal-purpose", f"{recipient.user} ({recipient.role}) asked for {purpose}"))
    return tuple(found)


def withheld(item: Item, reason: str, consents: tuple[str, ...] = ()) -> Withheld:
    return Withheld(item, reason, REASONS[reason], consents)


def release(
    request: ReleaseRequest,
    record: Record,
    consents: Sequence[Consent] | None,
    history: History,
    policy: Policy,
    as_of: datetime,
    orders: Sequence[CourtOrder] | None = (),
) -> Release:
    """Decide a release. `consents` (or `orders`) None means they could not be read: only
    emergency access goes on without them (ConsentsUnavailable otherwise)."""
    if request.recipient.system:
        if (
            request.purpose and request.purpose not in PURPOSES
        ):  # the own-records rule needs none, but a wrong one is wrong
            raise DecisionError(f"{request.purpose!r} is not a purpose of use this gateway knows")
        return _own_records(request, record, policy, as_of)
    return _Decision(request, record, consents, history, policy, as_of, orders).run()


class _Decision:
    """One user request about one patient, decided item by item."""

    def __init__(
        self,
        request: ReleaseRequest,
        record: Record,
        consents: Sequence[Consent] | None,
        history: History,
        policy: Policy,
        as_of: datetime,
        orders: Sequence[CourtOrder] | None = (),
    ) -> None:
        self.request, self.record, self.history, self.policy, self.as_of = request, record, history, policy, as_of
        self.recipient = request.recipient
        self.purpose = request.purpose or ""
        self.police = self.recipient.role in policy.police_roles
        self.emergency = self.purpose == BTG
        self.alerts: list[Alert] = []
        self.conflicts: set[tuple[str, ...]] = set()
        self.denying: set[str] = set()
        self.consents = sorted(
            (c for c in consents or () if c.patient == record.patient and c.kind != ConsentKind.COURT_ORDER),
            key=lambda c: c.id,
        )
        self.orders = sorted((o for o in orders or () if o.patient == record.patient), key=lambda o: o.id)
        self.consents_readable = consents is not None and orders is not None
        # Law-enforcement and legal-proceeding purposes reach Part 2 and mental-health data only
        # under a registered order or a separate §2.31(d) consent; some roles reach nothing else.
        self.legal = self.purpose in policy.hard_denied_purposes
        self.order_only = self.recipient.role in policy.order_only_roles
        self.deceased = record.facts.dead_at(as_of)
        # Missing §2.31(a) elements, and signers who may not sign for this patient (§2.14, §2.15).
        self.problems = {c.id: problems_at(c, record.facts, policy, as_of) for c in self.consents}
        self.cause_of_death = (
            self.deceased
            and self.recipient.role in policy.cause_of_death_roles
            and self.purpose in policy.cause_of_death_purposes
        )
        self.usable = [c for c in self.consents if in_force(c, as_of, record.episodes)]
        self.bounded = [(c, c.bounds) for c in self.usable]  # read for every item: computed once
        self._bases: dict[tuple[str, ...], Basis] = {}
        wanted = request.data_classes
        self.in_scope = [i for i in record.items if wanted is None or i.data_class in wanted or i.demographics]

    # -- the request as a whole -------------------------------------------------------------------
    def run(self) -> Release:
        recipient, purpose, policy = self.recipient, self.purpose, self.policy
        if not purpose:
            raise DecisionError("a purpose of use is required")
        if purpose not in PURPOSES:
            raise DecisionError(f"{purpose!r} is not a purpose of use this gateway knows")
        self.alerts.extend(request_alerts(recipient, purpose, policy))
        if self.record.patient != self.request.patient:
            return self._deny_all("record-not-of-patient")
        role_classes = policy.role_data_classes.get(recipient.role)
        if role_classes is None:
            return self._deny_all("unknown-role")
        self.role_classes = role_classes
        self.note_classes = policy.role_note_classes.get(recipient.role, frozenset())
        if self.emergency:
            if not recipient.medical or self.police:
                self.alerts.append(Alert("emergency-refused", f"{recipient.user} ({recipient.role}) asked for "
                                                              "emergency access"))  # fmt: skip
                return self._deny_all("not-medical-personnel")
            if self.request.emergency is None or not self.request.emergency.nature.strip():
                raise DecisionError("emergency access needs the nature of the emergency")
        if self.deceased and (self.emergency or self.request.operation in (Operation.BRIEF, Operation.MATCH)):
            return self._deny_all("patient-deceased")
        if not self.consents_readable and not self.emergency:
            raise ConsentsUnavailable("the consents could not be read")
        treating = (
            not self.police
            and recipient.organization_is_provider
            and bool({recipient.organization, *recipient.aliases} & self.record.treating_organizations)
        )
        self.matcher = ProvisionMatcher(recipient, purpose, self.as_of, treating)
        self.applicable_orders = [
            o
            for o in self.orders
            if o.in_force(self.as_of)
            and recipient.named_by(o.recipients)
            and any(purpose_covers(p, purpose) for p in o.purposes)
        ]
        decided = self._decide_items()
        for ids in sorted(self.conflicts):
            self.alerts.append(Alert("consent-conflict", f"a permit and a deny both apply: {', '.join(ids)}"))
        under_orders = (
            sorted({d.basis.order for d in decided if isinstance(d, Released) and d.basis.order})
            if self.applicable_orders
            else ()
        )
        if under_orders:
            self.alerts.append(Alert("court-order-release", f"{recipient.user} ({recipient.organization}) received "
                                                            f"records under {', '.join(under_orders)}"))  # fmt: skip
        return self._conclude(decided)

    def _deny_all(self, reason: str) -> Release:
        return self._conclude([withheld(item, reason) for item in self.in_scope], reasons=(reason,))

    def _decide_items(self) -> list[Decided]:
        """Clinical items first; then demographics, which follow them in a clinical request."""
        decided: list[Decided] = []
        # Items alike in kind, class, labels and source get the same decision: decide each once.
        cache: dict[tuple[str, str, frozenset[str], str | None], Decided] = {}
        people: list[Item] = []
        by_item = any(o.items for o in self.applicable_orders)  # an order naming items decides each apart
        for item in self.in_scope:
            if item.demographics:
                people.append(item)
                continue
            signature = (item.key if by_item else item.kind, item.data_class, item.labels, item.source)
            model = cache.get(signature)
            if model is None:
                model = cache[signature] = self._decide_item(item)
                decided.append(model)
            elif isinstance(model, Released):
                decided.append(Released(item, model.basis))
            else:
                decided.append(Withheld(item, model.reason, model.citation, model.consents))
        clinical = self.request.operation in (Operation.BRIEF, Operation.MATCH) or len(people) < len(self.in_scope)
        released = [d for d in decided if isinstance(d, Released)]
        for person in people:
            own = self._decide_item(person)
            decided.append(self._accompany(person, own, released) if clinical else own)
        return decided

    def _accompany(self, person: Item, own: Decided, released: list[Released]) -> Decided:
        """Demographics follow the decision: shown with something released about the person,
        never alone. A Part 2 program's Patient goes only alongside that program's items released
        on a Part 2 basis (or on a basis of its own); a restriction on it gives way only to an
        emergency, as restrictions do (164.522(a)(1)(iii))."""
        if not released:
            return withheld(person, "demographics-follow-the-decision")
        if isinstance(own, Released):
            return own
        alongside = released
        if own.reason == "no-use-against-patient":
            # Under a legal purpose the person goes only with what an order or a separate
            # §2.31(d) consent released about them.
            alongside = [r for r in alongside if r.basis.kind == BasisKind.COURT_ORDER or r.basis.separate]
        if person.part2:
            alongside = [r for r in alongside if r.item.source == person.source and r.basis.kind in DISCLOSURE_BASES]
        if own.reason == "restricted-by-patient":
            alongside = [r for r in alongside if r.basis.kind == BasisKind.EMERGENCY]
        if not alongside:
            return own
        return Released(person, min(alongside, key=lambda r: r.item.key).basis, accompanies=True)

    # -- one item ------------------------------------------------------------------------------------
    def _decide_item(self, item: Item) -> Decided:
        policy, recipient = self.policy, self.recipient
        if recipient.role in policy.administration_roles and item.kind in policy.administration_kinds:
            kind = BasisKind.ADMINISTRATION
            return Released(item, Basis(kind, citation=CITATIONS[kind.value]))
        note = CN if item.data_class == CN else PSYNOTE if item.psychotherapy else None
        if self.applicable_orders:
            order = self._order_covering(item, note)
            if order is not None:
                return Released(item, self._order_basis(order, note))
        against = self.legal and (item.part2 or item.mental_health or note is not None)
        if against or self.order_only:
            # Only an order (above) or a separate §2.31(d) consent; first: no other reason may mask it.
            if not self._verdicts(item, note)[0]:
                return withheld(item, "no-use-against-patient" if against else "needs-a-court-order")
        if note is not None:
            if note not in self.note_classes:
                return withheld(item, "minimum-necessary")
        elif item.data_class not in self.role_classes:
            return withheld(item, "minimum-necessary")
        if self.cause_of_death and note is None:
            # §2.15(b)(1): Part 2 does not restrict a cause-of-death inquiry; nor does a restriction
            # (164.522(a)(1)(v): not effective against 164.512(g) disclosures).
            return Released(item, Basis(BasisKind.DECEDENT, citation=CITATIONS["cause-of-death"]))
        emergency_item = self.emergency and note is None and item.data_class in policy.emergency_data_classes
        permits, denies = self._verdicts(item, note)
        if denies:
            deny_ids = tuple(c.id for c in denies)
            if permits:
                self.conflicts.add(tuple(sorted({c.id for c in permits + denies})))
            if emergency_item:  # restrictions do not bind emergency treatment (164.522(a)(1)(iii))
                return Released(item, Basis(BasisKind.EMERGENCY, citation=CITATIONS["emergency"]))
            self.denying.update(deny_ids)
            return withheld(item, "restricted-by-patient", deny_ids)
        if permits:
            return Released(item, self._consent_basis(permits))
        if self.order_only:
            return withheld(item, "needs-a-court-order")
        if not item.part2 and note is None and recipient.organization_is_provider and not self.police:
            if item.mental_health:
                # The jurisdiction overlay (state mental-health law stand-in): clinical roles only.
                if (
                    policy.mental_health_overlay
                    and recipient.role in policy.mental_health_overlay_roles
                    and any(purpose_covers(p, self.purpose) for p in policy.mental_health_overlay_purposes)
                ):
                    return Released(item, Basis(BasisKind.JURISDICTION, citation=CITATIONS["jurisdiction"]))
            elif any(purpose_covers(p, self.purpose) for p in policy.treatment_purposes):
                # HIPAA 164.506(c): to a provider for treatment; the role limits what (minimum necessary).
                return Released(item, Basis(BasisKind.TREATMENT, citation=CITATIONS["treatment"]))
        if emergency_item:
            return Released(item, Basis(BasisKind.EMERGENCY, citation=CITATIONS["emergency"]))
        if note == CN:
            return withheld(item, "counseling-notes-need-their-own-consent")
        if note == PSYNOTE:
            return withheld(item, "psychotherapy-notes-need-an-authorisation")
        if self.emergency and item.data_class not in policy.emergency_data_classes and item.part2:
            return withheld(item, "not-in-emergency-set")
        if self.police:
            return withheld(item, "police-need-a-consent-naming-them")
        if item.part2:
            return withheld(item, "no-consent")
        if item.mental_health:
            return withheld(item, "mental-health-needs-a-basis")
        return withheld(item, "no-basis")

    def _verdicts(self, item: Item, note: str | None) -> tuple[list[Consent], list[Consent]]:
        """The consents about this item's source that permit it (and may be relied on: the
        kind-specific rules hold), and those that deny it."""
        permits: list[Consent] = []
        denies: list[Consent] = []
        for consent, bounds in self.bounded:
            if bounds and item.source not in bounds:
                continue  # a consent is about its disclosers' records, not another provider's
            verdict = self.matcher.evaluate(consent.provision, item)
            if verdict == "deny":
                denies.append(consent)
            elif verdict == "permit" and consent.kind in PERMIT_KINDS and self._may_rely(consent, item, note):
                permits.append(consent)
        return permits, denies

    def _order_covering(self, item: Item, note: str | None) -> CourtOrder | None:
        """The first registered order that covers this item for this recipient and purpose: its
        holders, its classes or items; notes only where it covers confidential communications
        (§2.63)."""
        for order in self.applicable_orders:
            if order.holders and item.source not in order.holders:
                continue
            if item.data_class not in order.data_classes and item.key not in order.items:
                continue
            if note is not None and not order.confidential_communications:
                continue
            return order
        return None

    @staticmethod
    def _order_basis(order: CourtOrder, note: str | None) -> Basis:
        citation = f"42 CFR 2.61, {order.section}" + (", 2.63" if note is not None else "")
        return Basis(BasisKind.COURT_ORDER, order=order.id, citation=citation)

    def _separate(self, consent: Consent) -> bool:
        """§2.31(d): a separate consent to use the records against the patient, for that purpose
        alone, naming the recipient (never a general TPO or intermediary consent)."""
        root = consent.provision
        return (
            consent.kind in SEPARATE_LEGAL_KINDS
            and bool(root.purposes)
            and root.purposes <= self.policy.hard_denied_purposes
            and self.matcher.names_recipient(root)
        )

    def _may_rely(self, consent: Consent, item: Item, note: str | None) -> bool:
        """The kind-specific rules on top of a matching permit provision."""
        if self.problems[consent.id]:
            return False  # §2.31(c), §2.14, §2.15: a defective consent is never relied on
        if self.order_only or (self.legal and (item.part2 or item.mental_health or note is not None)):
            if not self._separate(consent):
                return False
        if item.part2 and (consent.kind not in PART2_KINDS or item.source is None or not consent.disclosers):
            return False  # §2.31(a)(2): the source program must be a named discloser
        if note == CN:
            # §2.31(b): only a counseling-notes consent, and only one that names the recipient.
            return consent.kind == ConsentKind.COUNSELING_NOTES and self.matcher.names_recipient(consent.provision)
        if consent.kind == ConsentKind.COUNSELING_NOTES:
            return False  # it covers nothing else
        if note == PSYNOTE:
            return consent.kind == ConsentKind.HIPAA_AUTHORIZATION and PSYNOTE in consent.provision.data_classes
        if self.police:
            # Police reach data only through a consent that names them: never a class, never TPO or
            # an intermediary's general designation.
            return consent.kind not in (ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY) and (
                self.matcher.names_recipient(consent.provision)
            )
        return True

    def _consent_basis(self, permits: list[Consent]) -> Basis:
        key = tuple(c.id for c in permits)  # the same consents decide many items alike
        found = self._bases.get(key)
        if found is None:
            found = self._bases[key] = self._basis_of(permits)
        return found

    def _basis_of(self, permits: list[Consent]) -> Basis:
        # The consent that names the recipient decides over a class designation; then the lowest id.
        deciding = min(permits, key=lambda c: (not self.matcher.names_recipient(c.provision), c.id))
        kind = deciding.kind
        citation = {
            ConsentKind.PART2_TPO: "tpo-consent",
            ConsentKind.PART2_INTERMEDIARY: "intermediary-consent",
            ConsentKind.COUNSELING_NOTES: "counseling-notes-consent",
            ConsentKind.HIPAA_AUTHORIZATION: "authorization",
        }.get(kind, "consent")
        separate = (self.legal or self.order_only) and self._separate(deciding)
        return Basis(
            BasisKind.CONSENT,
            consent=deciding.id,
            consents=tuple(sorted(c.id for c in permits)),
            tpo=kind == ConsentKind.PART2_TPO,
            intermediary=kind == ConsentKind.PART2_INTERMEDIARY,
            separate=separate,
            citation=CITATIONS["separate-consent" if separate else citation],
        )

    # -- the answer and its obligations ----------------------------------------------------------------
    def _identity_only(self) -> bool:
        """A match, or a brief whose person is not confirmed yet: the answer is who it is, nothing more."""
        operation = self.request.operation
        if operation == Operation.MATCH:
            return True
        if operation != Operation.BRIEF or self.request.identity_confirmed:
            return False
        matched = self.history.certain_match_at
        return not (matched is not None and matched <= self.as_of <= matched + self.policy.certain_match_confirms)

    def _conclude(self, decided: list[Decided], reasons: tuple[str, ...] = ()) -> Release:
        presence: tuple[str, ...] = ()
        if self._identity_only():
            presence = tuple(sorted(d.item.key for d in decided if isinstance(d, Released) and not d.item.demographics))
            decided = [d for d in decided if d.item.demographics]
        facts = self._facts(reasons, presence)
        return conclude(self.request, self.record, decided, self.policy, facts, self.alerts, self.consents)

    def _facts(self, reasons: tuple[str, ...], presence: tuple[str, ...]) -> AuditFacts:
        return AuditFacts(
            as_of=self.as_of,
            policy_version=self.policy.version,
            consents_evaluated=tuple(c.id for c in self.consents),
            consents_in_force=tuple(c.id for c in self.usable),
            consents_denying=tuple(sorted(self.denying)),
            consents_not_relied_on=tuple((c.id, self.problems[c.id]) for c in self.consents if self.problems[c.id]),
            orders_evaluated=tuple(o.id for o in self.orders),
            orders_not_relied_on=tuple((o.id, o.problems) for o in self.orders if o.problems),
            reasons=reasons,
            presence=presence,
        )


def conclude(
    request: ReleaseRequest,
    record: Record,
    decided: list[Decided],
    policy: Policy,
    facts: AuditFacts,
    alerts: list[Alert] | None = None,
    consents: Sequence[Consent] = (),
) -> Release:
    """The outcome and every obligation, from the items' decisions."""
    released = tuple(sorted((d for d in decided if isinstance(d, Released)), key=lambda r: r.item.key))
    held = tuple(sorted((d for d in decided if isinstance(d, Withheld)), key=lambda w: w.item.key))
    counted = [d for d in decided if not d.item.demographics] or decided
    counted_released = sum(1 for d in counted if isinstance(d, Released))
    if not released:
        outcome = Outcome.DENY
    elif counted_released == len(counted):
        outcome = Outcome.PERMIT
    else:
        outcome = Outcome.PERMIT_WITH_REDACTION
    part2 = [r for r in released if r.item.part2]
    notice = Notice(policy.notice, policy.notice_version) if part2 else None
    relied = sorted({r.basis.consent for r in released if r.basis.consent})
    orders = tuple(sorted({r.basis.order for r in released if r.basis.order}))
    by_id = {c.id: c for c in consents}
    ledger = tuple(
        LedgerRow(r.item.key, r.item.description, r.item.data_class, r.item.source, r.basis, policy.notice_version)
        for r in part2
        if r.basis.kind in DISCLOSURE_BASES
    )
    recipient = request.recipient
    organization_name = recipient.organization_name or record.organization_names.get(recipient.organization, "")
    intermediary = tuple(
        IntermediaryRow(recipient.organization, organization_name, r.item.key, r.item.description)
        for r in released
        if r.basis.intermediary
    )
    emergency_items = [r for r in released if r.basis.kind == BasisKind.EMERGENCY]
    emergency_record = None
    alerts = list(alerts or ())
    if emergency_items and request.emergency is not None:
        emergency_record = EmergencyRecord(
            recipient_name=recipient.name,
            recipient_user=recipient.user,
            affiliation=recipient.organization,
            affiliation_name=organization_name,
            disclosed_by=policy.gateway_name,
            disclosed_at=facts.as_of,
            nature=request.emergency.nature.strip(),
            programs=tuple(sorted({r.item.source for r in emergency_items if r.item.source})),
        )
        alerts.append(Alert("emergency-access", f"{recipient.user}: review the emergency access to {request.patient}"))
    return Release(
        request=request,
        outcome=outcome,
        released=released,
        withheld=held,
        audit=AuditFacts(**{**facts.__dict__, "consents_relied_on": tuple(relied), "orders_relied_on": orders}),
        notice=notice,
        scope_explanations=tuple(
            ScopeExplanation(cid, scope_explanation(by_id[cid])) for cid in relied if cid in by_id
        ),
        strip_sensitivity=not recipient.system and recipient.role not in policy.clinical_roles,
        ledger=ledger,
        intermediary_list=intermediary,
        emergency_record=emergency_record,
        review=emergency_record is not None,
        alerts=tuple(alerts),
    )


def _own_records(request: ReleaseRequest, record: Record, policy: Policy, as_of: datetime) -> Release:
    """Backend clients are not persons: an EHR reads back what its organization sent and what is
    addressed to it (the §2.51 notifications), nothing else (deny by default)."""
    organization = request.recipient.organization
    kind = BasisKind.OWN_RECORDS
    decided: list[Decided] = [
        Released(item, Basis(kind, citation=CITATIONS[kind.value]))
        if organization and (item.source == organization or organization in item.addressed_to)
        else withheld(item, "not-own-records")
        for item in record.items
    ]
    return conclude(request, record, decided, policy, AuditFacts(as_of=as_of, policy_version=policy.version))


__all__ = ["DISCLOSURE_BASES", "ConsentsUnavailable", "DecisionError", "release", "request_alerts", "withheld"]
