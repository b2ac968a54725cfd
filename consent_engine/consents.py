"""Which consents are in force at an instant, and which of their provisions apply to a request.

R4 Consent semantics as docs/consent-profile.md fixes them: nested provisions flip their parent
to any depth (the deepest match wins), criteria within one provision must all hold, an empty
criterion matches anything. Time is exact: a start, an end, an expiry or a revocation takes effect
at its instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from consent_engine.codes import purpose_covers
from consent_engine.model import Alert, Consent, CourtOrder, Episode, Item, Provision, Recipient

TREATING = "treating-providers"
INTERMEDIARY_PARTICIPANTS = "intermediary-participants"
END_OF_TREATMENT = "end-of-treatment"
ACTIVE_EPISODES = frozenset({"planned", "waitlist", "active", "onhold"})
ENDED_EPISODES = frozenset({"finished", "cancelled"})


def treatment_ended_at(consent: Consent, episodes: Iterable[Episode]) -> datetime | None:
    """When treatment ended at the consent's programs, from the EpisodeOfCare the programs send:
    none of their episodes for the patient is still open and the last one ended after the consent
    was signed (an episode that ended before it does not end it)."""
    programs = consent.bounds
    relevant = [e for e in episodes if e.program in programs]
    if not relevant or any(e.status in ACTIVE_EPISODES for e in relevant):
        return None
    ends = [e.end for e in relevant if e.status in ENDED_EPISODES and e.end is not None]
    if not ends:
        return None
    ended = max(ends)
    if consent.signed_at is not None and ended < consent.signed_at:
        return None
    return ended


def in_force(consent: Consent, as_of: datetime, episodes: Iterable[Episode] = ()) -> bool:
    """Signed, in its period (end inclusive), not expired by date or event, and not revoked at
    as_of (a revocation counts from its instant on, never backwards)."""
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
    if consent.expiry_event == END_OF_TREATMENT:
        ended = treatment_ended_at(consent, episodes)
        if ended is not None and as_of >= ended:
            return False
    root = consent.provision
    return not ((root.start and as_of < root.start) or (root.end and as_of > root.end))


def standing(consent: Consent, problems: tuple[str, ...], as_of: datetime,
             episodes: Iterable[Episode] = ()) -> tuple[str, str]:  # fmt: skip
    """Where a consent stands at `as_of`, for people: ("in force", ""), ("revoked", when),
    ("expired", when), ("not yet in force", from when), ("not relied on", what is missing or
    wrong: `problems`, from `signers.problems_at`) or ("inactive", its status)."""
    if problems:
        return "not relied on", "; ".join(problems)
    if consent.revoked_at is not None and consent.revoked_at <= as_of:
        return "revoked", f"revoked {consent.revoked_at:%Y-%m-%d %H:%M} UTC"
    if in_force(consent, as_of, episodes):
        return "in force", ""
    if consent.status not in ("active", "inactive"):
        return "inactive", f"status {consent.status}"
    ends = [t for t in (consent.expires_at, consent.provision.end, consent.expiry_event_at) if t is not None]
    if consent.expiry_event == END_OF_TREATMENT:
        ended = treatment_ended_at(consent, episodes)
        if ended is not None:
            ends.append(ended)
    past = [t for t in ends if t < as_of]
    if past:
        return "expired", f"expired {min(past):%Y-%m-%d}"
    start = consent.provision.start or consent.signed_at
    if start is not None and start > as_of:
        return "not yet in force", f"from {start:%Y-%m-%d}"
    return "inactive", f"status {consent.status}"


class ProvisionMatcher:
    """Whether provisions apply to one request's recipient, purpose and time, and to an item.
    A provision's request-level criteria do not depend on the item: they are computed once per
    provision per request."""

    def __init__(self, recipient: Recipient, purpose: str, as_of: datetime, treating: bool) -> None:
        self.recipient = recipient
        self.purpose = purpose
        self.as_of = as_of
        self.treating = treating  # a treating relationship (police never have one)
        self._applies: dict[int, bool] = {}

    def recipient_matches(self, provision: Provision) -> bool:
        if not provision.recipients and not provision.recipient_classes:
            return True
        if self.recipient.named_by(provision.recipients):
            return True
        # Classes (TPO "my treating providers", an intermediary's general designation) need a
        # treating relationship (§2.31(a)(4), consent.md §2.12).
        return self.treating and bool(provision.recipient_classes & {TREATING, INTERMEDIARY_PARTICIPANTS})

    def applies(self, provision: Provision) -> bool:
        found = self._applies.get(id(provision))
        if found is None:
            found = self._applies[id(provision)] = (
                (provision.start is None or provision.start <= self.as_of)
                and (provision.end is None or self.as_of <= provision.end)
                and (not provision.purposes or any(purpose_covers(p, self.purpose) for p in provision.purposes))
                and self.recipient_matches(provision)
            )
        return found

    def evaluate(self, provision: Provision, item: Item) -> str | None:
        """permit, deny, or None when the provision does not apply; a matching nested provision
        overrides its parent (the deepest match wins)."""
        if (
            (provision.data_classes and item.data_class not in provision.data_classes)
            or (provision.labels and not provision.labels & item.labels)
            or not self.applies(provision)
        ):
            return None
        for child in provision.provisions:
            found = self.evaluate(child, item)
            if found is not None:
                return found
        return provision.type

    def names_recipient(self, provision: Provision) -> bool:
        """The provision (or a permit nested in it) names this recipient, not only a class."""
        if self.recipient.named_by(provision.recipients):
            return True
        return any(self.names_recipient(child) for child in provision.provisions if child.type == "permit")


def consent_alerts(consent: Consent) -> tuple[Alert, ...]:
    """What compliance officers must hear about at once when such a consent is recorded: a form
    that combines counseling notes with other data (§2.31(b)) is defective."""
    if any(problem.startswith("2.31(b)") for problem in consent.problems):
        detail = f"Consent/{consent.id} combines SUD counseling notes with other data; it cannot be relied on"
        return (Alert("counseling-notes-combined", detail),)
    return ()


def order_alerts(order: CourtOrder) -> tuple[Alert, ...]:
    """A registered court order that cannot be relied on (a finding, the notice or a limit is
    missing) is stored, and compliance officers hear of it at once."""
    if not order.problems:
        return ()
    detail = f"Consent/{order.id} (court order) cannot be relied on: {'; '.join(order.problems)}"
    return (Alert("court-order-cannot-be-relied-on", detail),)
