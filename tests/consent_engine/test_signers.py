"""Who may sign (§2.14 minors, §2.15 incapacity) and what a deceased patient's record allows
(§2.15(b)): golden scenarios on the cast of people.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from consent_engine import (
    DEFAULT_POLICY,
    BasisKind,
    Consent,
    ConsentKind,
    Emergency,
    Operation,
    Outcome,
    PatientFacts,
    Provision,
    Recipient,
    Signer,
    SignerRole,
)
from consent_engine.signers import problems_at, signer_problems
from tests.consent_engine.people import AS_OF, CLINICIAN, OTP, PATIENT, RECORD, TPO, decide, request

PART2_DX = "Condition/opioid-use-disorder"
MINOR = PatientFacts(birth_date=date(2010, 5, 1))  # 15 when the TPO consent was signed (2026-03-01)
ADULT = PatientFacts(birth_date=date(1990, 5, 1))
DIED = datetime(2026, 11, 20, 3, 15)
DECEASED = PatientFacts(birth_date=date(1990, 5, 1), deceased=True, deceased_at=DIED)
MINOR_ALONE = replace(DEFAULT_POLICY, minor_sud_consent="minor-alone", jurisdiction="US-XX")
EXAMINER = Recipient(user="dr-okafor", name="Dr. Okafor", role="medical-examiner", medical=False,
                     organization="Organization/county-medical-examiner", organization_name="County Medical Examiner")  # fmt: skip


def signed_by(consent: Consent, *roles: SignerRole | None) -> Consent:
    return replace(consent, signers=tuple(Signer(role, f"RelatedPerson/{role}") for role in roles))


def released_to_clinician(consent: Consent, facts: PatientFacts, policy=DEFAULT_POLICY) -> bool:  # type: ignore[no-untyped-def]
    decided = decide(request(), replace(RECORD, facts=facts), [consent], policy)
    return PART2_DX in decided.released_keys


@pytest.mark.parametrize(
    ("policy", "roles", "relied_on"),
    [
        (DEFAULT_POLICY, (SignerRole.PATIENT,), False),  # minor-and-parent: the minor alone is not enough
        (DEFAULT_POLICY, (SignerRole.PARENT,), False),  # nor the parent alone
        (DEFAULT_POLICY, (SignerRole.PATIENT, SignerRole.PARENT), True),
        (DEFAULT_POLICY, (SignerRole.PATIENT, SignerRole.GUARDIAN), True),
        (MINOR_ALONE, (SignerRole.PATIENT,), True),  # minor-alone: only the minor signs
        (MINOR_ALONE, (SignerRole.PATIENT, SignerRole.PARENT), False),
        (MINOR_ALONE, (SignerRole.PARENT,), False),
    ],
)
def test_a_minors_consent_is_relied_on_only_when_the_jurisdictions_signers_signed(
    policy: object, roles: tuple[SignerRole, ...], relied_on: bool
) -> None:
    consent = signed_by(TPO, *roles)
    assert released_to_clinician(consent, MINOR, policy) is relied_on  # type: ignore[arg-type]
    decided = decide(request(), replace(RECORD, facts=MINOR), [consent], policy)  # type: ignore[arg-type]
    flagged = dict(decided.audit.consents_not_relied_on)
    assert (TPO.id in flagged) is not relied_on
    if not relied_on:
        assert any(p.startswith("2.14") for p in flagged[TPO.id])


def test_age_is_taken_when_the_consent_was_signed() -> None:
    """Signed at 15, read when she is long an adult: still a minor's consent."""
    consent = signed_by(TPO, SignerRole.PATIENT)
    later = datetime(2031, 1, 1)
    assert signer_problems(consent, MINOR, DEFAULT_POLICY, later)
    assert not signer_problems(replace(consent, signed_at=datetime(2028, 5, 1)), MINOR, DEFAULT_POLICY, later)
    assert not signer_problems(consent, PatientFacts(), DEFAULT_POLICY, later)  # age unknown: an adult's rules


@pytest.mark.parametrize(
    ("roles", "purposes", "relied_on"),
    [
        ((SignerRole.PATIENT,), None, True),
        ((SignerRole.GUARDIAN,), None, True),  # §2.15(a)(1): adjudicated lack of capacity
        ((SignerRole.PARENT,), None, False),  # a parent is not an adult's signer
        ((SignerRole.PROGRAM_DIRECTOR,), None, False),  # §2.15(a)(2): payment only
        ((SignerRole.PROGRAM_DIRECTOR,), frozenset({"HPAYMT"}), True),
        ((SignerRole.PERSONAL_REPRESENTATIVE,), None, False),  # only for the deceased
        ((None,), None, False),  # a signer whose role is not given
    ],
)
def test_an_adults_consent_signers(
    roles: tuple[SignerRole | None, ...], purposes: frozenset[str] | None, relied_on: bool
) -> None:
    consent = signed_by(TPO, *roles)
    if purposes is not None:
        consent = replace(consent, provision=replace(consent.provision, purposes=purposes))
    assert (not signer_problems(consent, ADULT, DEFAULT_POLICY, AS_OF)) is relied_on
    if purposes is None:
        assert released_to_clinician(consent, ADULT) is relied_on


def test_restrictions_are_honoured_whoever_signed_them() -> None:
    restriction = replace(
        signed_by(TPO, SignerRole.PARENT),
        id="parent-restriction",
        kind=ConsentKind.RESTRICTION,
        provision=Provision("deny"),
    )
    assert signer_problems(restriction, MINOR, MINOR_ALONE, AS_OF) == ()
    decided = decide(request(), replace(RECORD, facts=MINOR), [signed_by(TPO, SignerRole.PATIENT, SignerRole.PARENT),
                                                                restriction])  # fmt: skip
    assert PART2_DX not in decided.released_keys


# -- deceased patients (§2.15(b)) ----------------------------------------------------------------------
DEAD_RECORD = replace(RECORD, facts=DECEASED)
AFTER = datetime(2026, 11, 26, 12, 0)


def test_a_deceased_patient_has_no_crisis_brief_and_no_emergency() -> None:
    signed = signed_by(TPO, SignerRole.PATIENT)
    for asked in (
        request(operation=Operation.BRIEF),
        request(operation=Operation.MATCH),
        request(purpose="BTG", emergency=Emergency("found unresponsive")),
    ):
        decided = decide(asked, DEAD_RECORD, [signed], as_of=AFTER)
        assert decided.outcome == Outcome.DENY and decided.released == ()
        assert decided.audit.reasons == ("patient-deceased",)
        assert decided.ledger == () and decided.emergency_record is None
    alive = decide(request(operation=Operation.BRIEF), replace(RECORD, facts=ADULT), [signed])
    assert alive.outcome != Outcome.DENY


def test_the_medical_examiner_gets_the_cause_of_death_classes_on_the_2_15_b_basis() -> None:
    decided = decide(request(EXAMINER, "cause-of-death"), DEAD_RECORD, [], as_of=AFTER)
    classes = {r.item.data_class for r in decided.released if not r.item.demographics}
    assert classes == {"DX", "MED", "LAB"}  # not CONTACT, STATUS, CRISISPLAN, never notes
    assert {r.basis.kind for r in decided.released} == {BasisKind.DECEDENT}
    assert decided.released[0].basis.citation == "42 CFR 2.15(b)(1); 45 CFR 164.512(g)(1)"
    part2 = {r.item.key for r in decided.released if r.item.part2}
    assert {row.item for row in decided.ledger} == part2 and part2  # every Part 2 item accounted for
    assert {row.basis.kind for row in decided.ledger} == {BasisKind.DECEDENT}
    assert decided.notice is not None  # Statement 1 goes with Part 2 data, on any basis
    assert "Patient/maria-rivera" in decided.released_keys  # identity of the decedent goes with it


def test_the_medical_examiner_gets_nothing_about_the_living_or_for_another_purpose() -> None:
    living = decide(request(EXAMINER, "cause-of-death"), replace(RECORD, facts=ADULT), [])
    assert living.outcome == Outcome.DENY
    other_purpose = decide(request(EXAMINER, "TREAT"), DEAD_RECORD, [], as_of=AFTER)
    assert other_purpose.outcome == Outcome.DENY
    clinician = decide(request(CLINICIAN, "cause-of-death"), DEAD_RECORD, [], as_of=AFTER)
    assert not [r for r in clinician.released if r.basis.kind == BasisKind.DECEDENT]


def test_after_death_only_the_personal_representatives_consent_is_relied_on() -> None:
    in_life = signed_by(TPO, SignerRole.PATIENT)
    before = decide(request(), DEAD_RECORD, [in_life], as_of=datetime(2026, 11, 19))
    assert PART2_DX in before.released_keys  # alive then
    after = decide(request(), DEAD_RECORD, [in_life], as_of=AFTER)
    assert PART2_DX not in after.released_keys
    assert any("personal representative" in p for p in dict(after.audit.consents_not_relied_on)[TPO.id])
    representative = replace(
        signed_by(TPO, SignerRole.PERSONAL_REPRESENTATIVE), id="estate-consent", signed_at=datetime(2026, 11, 24)
    )
    assert PART2_DX in decide(request(), DEAD_RECORD, [representative], as_of=AFTER).released_keys
    someone_else = replace(signed_by(TPO, SignerRole.PARENT), id="parent-after-death", signed_at=datetime(2026, 11, 24))
    assert problems_at(someone_else, DECEASED, DEFAULT_POLICY, AFTER)
    assert PATIENT == DEAD_RECORD.patient and OTP in TPO.disclosers
