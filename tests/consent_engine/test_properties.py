"""Properties that must hold for every request, record and set of consents (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consent_engine import (
    DEFAULT_POLICY,
    Basis,
    Consent,
    ConsentKind,
    DecisionError,
    DecisionRequest,
    Emergency,
    Item,
    Outcome,
    PatientRecord,
    Provision,
    Recipient,
    decide,
    in_force,
)
from tests.consent_engine.people import AS_OF, CMHC, CRISIS_TEAM, OTP, PART2_LABELS, PATIENT, POLICE

ORGS = [OTP, CMHC, CRISIS_TEAM, POLICE, "Organization/county-ems"]
CLASSES = ["DEMOGRAPHICS", "STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN", "CN", "PSYNOTE"]
PURPOSES = ["TREAT", "ETREAT", "BTG", "HPAYMT", "crisis-coordination", "law-enforcement", "legal-proceeding"]
ROLES = sorted(DEFAULT_POLICY.role_data_classes)

items = st.builds(
    lambda n, cls, part2, mh, source: Item(
        f"Resource/{n}", cls, (PART2_LABELS if part2 else frozenset()) | (frozenset({"MH"}) if mh else frozenset()),
        source,
    ),
    st.integers(0, 10_000), st.sampled_from(CLASSES), st.booleans(), st.booleans(), st.sampled_from([OTP, CMHC, None]),
)  # fmt: skip
moments = st.one_of(st.none(), st.integers(-400, 400).map(lambda d: AS_OF + timedelta(days=d)))
leaf = st.builds(
    Provision,
    type=st.sampled_from(["permit", "deny"]),
    start=moments,
    end=moments,
    recipients=st.frozensets(st.sampled_from(ORGS), max_size=2),
    recipient_classes=st.frozensets(st.sampled_from(["treating-providers", "intermediary-participants"]), max_size=1),
    purposes=st.frozensets(st.sampled_from(PURPOSES), max_size=2),
    data_classes=st.frozensets(st.sampled_from(CLASSES), max_size=3),
)
provisions = st.recursive(
    leaf, lambda children: st.builds(lambda p, kids: Provision(**{**p.__dict__, "provisions": tuple(kids)}), leaf,
                                     st.lists(children, max_size=2)), max_leaves=4)  # fmt: skip
consents = st.builds(
    Consent,
    id=st.text("abcdef", min_size=1, max_size=6),
    kind=st.sampled_from(list(ConsentKind)),
    patient=st.sampled_from([PATIENT, "Patient/other"]),
    provision=provisions,
    status=st.sampled_from(["active", "active", "inactive", "entered-in-error"]),
    disclosers=st.frozensets(st.sampled_from([OTP, CMHC]), max_size=2),
    signed_at=moments,
    expires_at=moments,
    revoked_at=moments,
    problems=st.sampled_from([(), ("2.31(a)(8): no signature",)]),
)
recipients = st.builds(
    lambda role, medical, org, provider: Recipient(user="u", name="U", role=role, medical=medical, organization=org,
                                                   organization_is_provider=provider),
    st.sampled_from(ROLES + ["stranger"]), st.booleans(), st.sampled_from(ORGS), st.booleans(),
)  # fmt: skip
requests = st.builds(
    lambda recipient, purpose, emergency, classes: DecisionRequest(
        recipient, purpose, PATIENT, AS_OF, classes, Emergency(emergency, AS_OF - timedelta(minutes=5)) if emergency else None
    ),
    recipients, st.sampled_from(PURPOSES), st.sampled_from([None, "", "overdose"]),
    st.one_of(st.none(), st.frozensets(st.sampled_from(CLASSES), min_size=1)),
)  # fmt: skip
records = st.builds(
    lambda its, treating: PatientRecord(PATIENT, tuple({i.key: i for i in its}.values()), treating),
    st.lists(items, max_size=12), st.frozensets(st.sampled_from(ORGS), max_size=2),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(requests, records, st.lists(consents, max_size=5))
def test_every_release_has_a_basis_and_the_obligations_follow(
    request: DecisionRequest, record: PatientRecord, given_consents: list[Consent]
) -> None:
    try:
        decision = decide(request, record, given_consents)
    except DecisionError:
        assert request.emergency is None or not request.emergency.nature.strip()
        return
    by_id: dict[str, list[Consent]] = {}
    for consent in given_consents:
        by_id.setdefault(consent.id, []).append(consent)
    wanted = request.data_classes
    assert [d.item for d in decision.items] == [i for i in record.items if wanted is None or i.data_class in wanted]
    police = request.recipient.role in DEFAULT_POLICY.police_roles
    part2_released = False
    for item_decision in decision.items:
        item = item_decision.item
        if not item_decision.released:
            assert item_decision.basis is None and item_decision.reason
            continue
        assert item_decision.basis is not None
        if item.part2:
            part2_released = True
            assert item_decision.basis in (Basis.CONSENT, Basis.EMERGENCY)
        if item_decision.basis == Basis.CONSENT:
            assert item_decision.consent_ids
            for consent_id in item_decision.consent_ids:
                assert any(
                    c.reliable and c.patient == PATIENT and in_force(c, request.as_of)
                    and (not item.part2 or (item.source in c.disclosers and c.kind != ConsentKind.HIPAA_AUTHORIZATION))
                    and (not police or c.kind not in (ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY))
                    for c in by_id[consent_id]
                )  # fmt: skip
        if item_decision.basis == Basis.EMERGENCY:
            assert request.recipient.medical and not police
            assert item.data_class in DEFAULT_POLICY.emergency_data_classes
        if item.data_class == "CN":
            assert all(c.kind == ConsentKind.COUNSELING_NOTES for cid in item_decision.consent_ids for c in by_id[cid]
                       if c.kind == ConsentKind.COUNSELING_NOTES) and item_decision.basis == Basis.CONSENT  # fmt: skip
        if request.purpose in DEFAULT_POLICY.hard_denied_purposes:
            assert not item.part2 and not item.mental_health
    assert (decision.notice is not None) == part2_released
    assert set(decision.ledger) == {d.item.key for d in decision.items if d.released and d.item.part2}
    released = [d for d in decision.items if d.released]
    if not released:
        assert decision.outcome == Outcome.DENY
    elif len(released) == len(decision.items):
        assert decision.outcome == Outcome.PERMIT
    else:
        assert decision.outcome == Outcome.PERMIT_WITH_REDACTION


@settings(max_examples=200, deadline=None)
@given(requests, records, st.lists(consents, max_size=4))
def test_a_revocation_never_widens_what_is_released(
    request: DecisionRequest, record: PatientRecord, given_consents: list[Consent]
) -> None:
    try:
        before = decide(request, record, given_consents)
    except DecisionError:
        return
    revoked = [
        Consent(**{**c.__dict__, "status": "inactive", "revoked_at": datetime(2026, 1, 1)}) for c in given_consents
    ]
    after = decide(request, record, revoked)
    assert {i.key for i in after.released} <= {i.key for i in before.released} | {
        d.item.key for d in after.items if d.basis in (Basis.EMERGENCY, Basis.TREATMENT, Basis.JURISDICTION)
    }
