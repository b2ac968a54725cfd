"""The decision: which items of a patient's record may go to this recipient, for this purpose,
at `as_of`, and on what basis (../shared/research/consent.md §4, with issue 4's project rules).

Per item, in order:
1. minimum necessary: the recipient's role must be allowed the item's data class (CN and PSYNOTE
   only under their own consent or authorisation);
2. hard guards: law-enforcement and legal-proceeding purposes never reach Part 2 or
   mental-health data (§2.12(d), §2.31(d));
3. denies (restrictions, opt-outs, deny provisions) override every permit (a permit and a deny
   that both match raise a conflict alert), except for the emergency data set in an emergency;
4. a basis: Part 2 items need a reliable consent in force that names the item's source as
   discloser and covers recipient, purpose and data class; police only through a consent naming
   them. Non-Part 2 mental-health items: an authorisation, or the jurisdiction overlay for
   clinical roles at providers. Other items: HIPAA treatment between providers, or a consent.
   Emergency access (§2.51) releases the emergency data set to medical personnel.
No released item: DENY, and the caller answers exactly as for "nothing on file" (§2.13(c)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from consent_engine.codes import BTG, CN, PSYNOTE, PURPOSES, purpose_covers
from consent_engine.model import (
    PERMIT_KINDS,
    Alert,
    Basis,
    Consent,
    ConsentKind,
    Decision,
    DecisionRequest,
    Item,
    ItemDecision,
    Outcome,
    PatientRecord,
    Provision,
)
from consent_engine.policy import DEFAULT_POLICY, Policy

TREATING = "treating-providers"
INTERMEDIARY_PARTICIPANTS = "intermediary-participants"
PART2_KINDS = frozenset(
    {ConsentKind.PART2_SPECIFIC, ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY, ConsentKind.COUNSELING_NOTES}
)
DENY_KINDS = frozenset({ConsentKind.RESTRICTION, ConsentKind.OPT_OUT})


class DecisionError(ValueError):
    """The request cannot be decided as asked (HTTP 400): no purpose of use, an emergency
    without its nature. The message is safe to show the requester."""


class ConsentsUnavailable(RuntimeError):
    """The consents could not be read: routine requests fail closed (HTTP 503)."""


def in_force(consent: Consent, as_of: datetime) -> bool:
    """Signed, in its period (end inclusive), not expired by date or event, and not revoked at
    as_of (a revocation counts from its timestamp on, never backwards)."""
    if consent.revoked_at is not None and consent.revoked_at <= as_of:
        return False
    if consent.status != "active" and not (consent.status == "inactive" and consent.revoked_at is not None):
        return False
    if consent.signed_at is not None and consent.signed_at > as_of:
        return False
    if consent.expires_at is not None and as_of > consent.expires_at:
        return False
    if consent.expiry_event_at is not None and as_of >= consent.expiry_event_at:
        return False
    root = consent.provision
    return not ((root.start and as_of < root.start) or (root.end and as_of > root.end))


class _Context:
    """What the provision matcher needs, computed once per decision."""

    def __init__(self, request: DecisionRequest, record: PatientRecord, policy: Policy) -> None:
        recipient = request.recipient
        self.request = request
        # Whether a provision's request-level criteria (period, purpose, recipient) hold does not
        # depend on the item: computed once per provision per decision.
        self._applies: dict[int, bool] = {}
        self.police = recipient.role in policy.police_roles
        self.treating = (
            not self.police
            and recipient.organization_is_provider
            and bool({recipient.organization, *recipient.aliases} & record.treating_organizations)
        )

    def recipient_matches(self, provision: Provision) -> bool:
        if not provision.recipients and not provision.recipient_classes:
            return True
        if self.request.recipient.named_by(provision.recipients):
            return True
        # Classes (TPO "my treating providers", an intermediary's general designation) need a
        # treating relationship; police never have one (§2.31(a)(4), consent.md §2.12).
        return self.treating and bool(provision.recipient_classes & {TREATING, INTERMEDIARY_PARTICIPANTS})

    def applies(self, provision: Provision) -> bool:
        found = self._applies.get(id(provision))
        if found is None:
            as_of = self.request.as_of
            purpose = self.request.purpose or ""
            found = self._applies[id(provision)] = (
                (provision.start is None or provision.start <= as_of)
                and (provision.end is None or as_of <= provision.end)
                and (not provision.purposes or any(purpose_covers(p, purpose) for p in provision.purposes))
                and self.recipient_matches(provision)
            )
        return found

    def matches(self, provision: Provision, item: Item) -> bool:
        return (
            (not provision.data_classes or item.data_class in provision.data_classes)
            and (not provision.labels or bool(provision.labels & item.labels))
            and self.applies(provision)
        )

    def evaluate(self, provision: Provision, item: Item) -> str | None:
        """permit, deny, or None when the provision does not apply; a matching nested provision
        overrides its parent (the deepest match wins)."""
        if not self.matches(provision, item):
            return None
        for child in provision.provisions:
            found = self.evaluate(child, item)
            if found is not None:
                return found
        return provision.type


def _deny_all(request: DecisionRequest, record: PatientRecord, reason: str, policy: Policy,
              alerts: tuple[Alert, ...] = ()) -> Decision:  # fmt: skip
    items = tuple(ItemDecision(item, False, reason=reason) for item in _candidates(request, record))
    return Decision(Outcome.DENY, items, alerts=alerts, policy_version=policy.version, reasons=(reason,))


def _candidates(request: DecisionRequest, record: PatientRecord) -> list[Item]:
    wanted = request.data_classes
    return [item for item in record.items if wanted is None or item.data_class in wanted]


def decide(
    request: DecisionRequest,
    record: PatientRecord,
    consents: Sequence[Consent] | None,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """Decide a release. `consents` None means they could not be read: only emergency access
    goes on without them (ConsentsUnavailable otherwise)."""
    recipient = request.recipient
    purpose = request.purpose
    if not purpose:
        raise DecisionError("a purpose of use is required")
    role_classes = policy.role_data_classes.get(recipient.role)
    if role_classes is None:
        return _deny_all(request, record, "unknown-role", policy)
    if purpose not in PURPOSES:
        return _deny_all(request, record, "unknown-purpose", policy)
    if record.patient != request.patient:
        return _deny_all(request, record, "record-not-of-patient", policy)
    alerts: list[Alert] = []
    police = recipient.role in policy.police_roles
    emergency = purpose == BTG or request.emergency is not None
    if emergency:
        if not recipient.medical or police:
            alert = Alert("emergency-refused", f"{recipient.user} ({recipient.role}) asked for emergency access")
            return _deny_all(request, record, "2.51-not-medical-personnel", policy, (alert,))
        if request.emergency is None or not request.emergency.nature.strip():
            raise DecisionError("emergency access needs the nature of the emergency")
        if request.as_of > request.emergency.declared_at + policy.emergency_window:
            return _deny_all(request, record, "2.51-emergency-window-expired", policy)
    if consents is None and not emergency:
        raise ConsentsUnavailable("the consents could not be read")
    hard_denied = purpose in policy.hard_denied_purposes
    if hard_denied:
        alerts.append(Alert("law-enforcement-purpose", f"{recipient.user} asked for {purpose}"))
    context = _Context(request, record, policy)
    usable = [c for c in consents or () if c.patient == record.patient and in_force(c, request.as_of)]
    decisions: list[ItemDecision] = []
    conflicts: set[str] = set()
    # Items alike in class, labels and source get the same decision: decide each kind once.
    decided: dict[tuple[str, frozenset[str], str | None], ItemDecision] = {}
    for item in _candidates(request, record):
        signature = (item.data_class, item.labels, item.source)
        model = decided.get(signature)
        if model is None:
            model = decided[signature] = _decide_item(
                item, context, usable, role_classes, policy, emergency, hard_denied, police, conflicts
            )
            decisions.append(model)
        else:
            decisions.append(ItemDecision(item, model.released, model.basis, model.consent_ids, model.reason))
    for consent_ids in sorted(conflicts):
        alerts.append(Alert("consent-conflict", f"a permit and a deny both apply: {consent_ids}"))
    return _conclude(request, record, decisions, usable, alerts, policy, police)


def _decide_item(
    item: Item,
    context: _Context,
    usable: list[Consent],
    role_classes: frozenset[str],
    policy: Policy,
    emergency: bool,
    hard_denied: bool,
    police: bool,
    conflicts: set[str],
) -> ItemDecision:
    special = item.data_class in (CN, PSYNOTE)
    if not special and item.data_class not in role_classes:
        return ItemDecision(item, False, reason="minimum-necessary")
    if hard_denied and (item.part2 or item.mental_health):
        return ItemDecision(item, False, reason="2.12(d)-no-use-against-patient")
    emergency_item = emergency and item.data_class in policy.emergency_data_classes
    permits: list[Consent] = []
    denies: list[Consent] = []
    for consent in usable:
        verdict = context.evaluate(consent.provision, item)
        if verdict == "deny":
            denies.append(consent)
        elif verdict == "permit" and consent.kind in PERMIT_KINDS and _may_rely(consent, item, context, police):
            permits.append(consent)
    if denies:
        if permits:
            conflicts.add(", ".join(sorted({c.id for c in permits + denies})))
        if emergency_item:  # restrictions do not bind emergency treatment (164.522(a)(1)(iii))
            return ItemDecision(item, True, Basis.EMERGENCY)
        return ItemDecision(item, False, reason="restricted-by-patient")
    if permits:
        return ItemDecision(item, True, Basis.CONSENT, tuple(sorted(c.id for c in permits)))
    recipient = context.request.recipient
    purpose = context.request.purpose or ""
    if not item.part2 and not special and recipient.organization_is_provider and not police:
        if item.mental_health:
            # The jurisdiction overlay: clinical roles only (state mental-health law stand-in).
            if (
                policy.mental_health_overlay
                and recipient.role in policy.clinical_roles
                and any(purpose_covers(p, purpose) for p in policy.mental_health_overlay_purposes)
            ):
                return ItemDecision(item, True, Basis.JURISDICTION)
        elif any(purpose_covers(p, purpose) for p in policy.treatment_purposes):
            # HIPAA 164.506(c): to a provider for treatment; the role limits what (minimum necessary).
            return ItemDecision(item, True, Basis.TREATMENT)
    if emergency_item:
        return ItemDecision(item, True, Basis.EMERGENCY)
    if item.part2:
        return ItemDecision(item, False, reason="2.13(a)-no-consent")
    return ItemDecision(item, False, reason="no-basis")


def _may_rely(consent: Consent, item: Item, context: _Context, police: bool) -> bool:
    """The kind-specific rules on top of a matching permit provision."""
    if not consent.reliable:
        return False  # §2.31(c): a consent that fails §2.31(a) on its face is never relied on
    if (item.data_class == CN) != (consent.kind == ConsentKind.COUNSELING_NOTES):
        return False  # §2.31(b): counseling notes only under their own consent, which covers nothing else
    if item.data_class == PSYNOTE and not (
        consent.kind == ConsentKind.HIPAA_AUTHORIZATION and PSYNOTE in consent.provision.data_classes
    ):
        return False  # 164.508(a)(2): an authorisation naming psychotherapy notes
    if consent.disclosers and item.source not in consent.disclosers:
        return False  # a consent covers what its disclosers hold, nothing from other sources
    if item.part2:
        if consent.kind not in PART2_KINDS:
            return False
        if item.source is None or not consent.disclosers:
            return False  # §2.31(a)(2): the source program must be a named discloser
    if police:
        # Police reach data only through a consent that names them: never a class, never TPO or
        # an intermediary's general designation.
        return consent.kind not in (ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY) and _names(
            consent.provision, context
        )
    return True


def _names(provision: Provision, context: _Context) -> bool:
    recipient = context.request.recipient
    if recipient.named_by(provision.recipients):
        return True
    return any(_names(child, context) for child in provision.provisions if child.type == "permit")


def _conclude(
    request: DecisionRequest,
    record: PatientRecord,
    decisions: list[ItemDecision],
    usable: list[Consent],
    alerts: list[Alert],
    policy: Policy,
    police: bool,
) -> Decision:
    released: list[ItemDecision] = []
    part2_released: list[ItemDecision] = []
    relied: set[str] = set()
    for item_decision in decisions:
        if item_decision.released:
            released.append(item_decision)
            if item_decision.item.part2:
                part2_released.append(item_decision)
                relied.update(item_decision.consent_ids)
    if not released:
        outcome = Outcome.DENY
    elif len(released) == len(decisions):
        outcome = Outcome.PERMIT
    else:
        outcome = Outcome.PERMIT_WITH_REDACTION
    by_id = {c.id: c for c in usable}
    explanations = tuple(_explain(by_id[cid]) for cid in sorted(relied))
    intermediaries = {c.id for c in usable if c.kind == ConsentKind.PART2_INTERMEDIARY}
    intermediary = (
        tuple(d.item.key for d in released if intermediaries.intersection(d.consent_ids)) if intermediaries else ()
    )
    emergency_record = None
    emergency_items = [d for d in released if d.basis == Basis.EMERGENCY]
    if emergency_items and request.emergency is not None:
        recipient = request.recipient
        emergency_record = {
            "recipient": recipient.name,
            "recipient_user": recipient.user,
            "affiliation": recipient.organization,
            "disclosers": ", ".join(sorted({d.item.source or "unknown" for d in emergency_items})),
            "disclosed_at": request.as_of.isoformat(),
            "nature": request.emergency.nature.strip(),
        }
        alerts.append(Alert("emergency-access", f"{recipient.user}: review the emergency access"))
    if police and released:
        alerts.append(Alert("police-release", f"{len(released)} items released to {request.recipient.user}"))
    return Decision(
        outcome=outcome,
        items=tuple(decisions),
        notice=policy.notice if part2_released else None,
        notice_version=policy.notice_version if part2_released else None,
        consent_explanations=explanations,
        strip_labels=request.recipient.role not in policy.clinical_roles,
        ledger=tuple(d.item.key for d in part2_released),
        intermediary_disclosures=intermediary,
        emergency_record=emergency_record,
        alerts=tuple(alerts),
        policy_version=policy.version,
    )


def _explain(consent: Consent) -> str:
    """§2.32(b): a clear explanation of the scope of the consent relied on."""
    if consent.description:
        return consent.description
    root = consent.provision
    parts = [f"Consent {consent.id} ({consent.kind.value})"]
    if root.recipients or root.recipient_classes:
        parts.append("to " + ", ".join(sorted(root.recipients | root.recipient_classes)))
    if root.purposes:
        parts.append("for " + ", ".join(sorted(root.purposes)))
    if root.data_classes:
        parts.append("covering " + ", ".join(sorted(root.data_classes)))
    if consent.expires_at:
        parts.append(f"until {consent.expires_at:%Y-%m-%d}")
    elif consent.expiry_event:
        parts.append(f"until {consent.expiry_event}")
    return " ".join(parts)
