"""Who may sign a consent (§2.14 minors, §2.15 incapacity and death), checked against the patient
as the Patient resource describes them.

A consent signed by the wrong people is still read and stored; like one missing a §2.31(a)
element, it is listed with the reason and never relied on. Restrictions and opt-outs are
honoured whoever signed them (when in doubt, deny). Which rule applies depends on the patient at
the moment of signing (a minor then, deceased then) and, for death, at the moment of the
release: the patient's own consents are not relied on after their death (§2.15(b)(2), read
conservatively: from then on the personal representative consents).
"""

from __future__ import annotations

from datetime import datetime

from consent_engine.codes import PAYMENT
from consent_engine.model import PERMIT_KINDS, Consent, PatientFacts, SignerRole
from consent_engine.policy import MINOR_ALONE, Policy

ADULT_SIGNERS = frozenset({SignerRole.PATIENT, SignerRole.GUARDIAN})
PARENTS = frozenset({SignerRole.PARENT, SignerRole.GUARDIAN})


def signer_problems(consent: Consent, facts: PatientFacts, policy: Policy, as_of: datetime) -> tuple[str, ...]:
    """Why the signers of this consent cannot make it one to rely on at `as_of` (empty: they can).
    A consent with no signer at all is already flagged by §2.31(a)(8)."""
    if consent.kind not in PERMIT_KINDS or not consent.signers:
        return ()
    roles = {s.role for s in consent.signers}
    problems: list[str] = []
    if None in roles:
        problems.append(
            "2.31(a)(8): a signer's role (patient, parent, guardian, personal-representative, program-director) "
            "is missing or unknown"
        )
    signed = consent.signed_at
    if facts.dead_at(signed):
        if SignerRole.PERSONAL_REPRESENTATIVE not in roles:
            problems.append("2.15(b)(2): signed after the patient's death, by someone other than the personal "
                            "representative")  # fmt: skip
        return tuple(problems)
    if SignerRole.PERSONAL_REPRESENTATIVE in roles:
        problems.append("2.15(b)(2): a personal representative signs only for a deceased patient")
    age = facts.age_at(signed)
    if age is not None and age < policy.age_of_majority:
        problems += _minor(roles, age, policy)
    elif not roles & ADULT_SIGNERS:
        if SignerRole.PROGRAM_DIRECTOR in roles:
            if consent.provision.purposes - {PAYMENT} or not consent.provision.purposes:
                problems.append("2.15(a)(2): a program director may consent only to obtain payment (HPAYMT)")
        elif SignerRole.PARENT in roles:
            problems.append("2.15(a)(1): a parent signs for an adult only as a court-appointed guardian")
    if facts.dead_at(as_of):
        problems.append("2.15(b)(2): the patient has died; a disclosure needs the personal representative's consent")
    return tuple(problems)


def _minor(roles: set[SignerRole | None], age: int, policy: Policy) -> list[str]:
    where = f"{policy.jurisdiction}: a minor ({age}, under {policy.age_of_majority})"
    if policy.minor_sud_consent == MINOR_ALONE:
        if SignerRole.PATIENT not in roles or roles & PARENTS:
            return [f"2.14(b): {where} may obtain treatment alone; only the minor may sign"]
        return []
    if SignerRole.PATIENT not in roles or not roles & PARENTS:
        return [f"2.14(c)(1): {where} needs a parent for treatment; the minor and a parent or guardian both sign"]
    return []


def problems_at(consent: Consent, facts: PatientFacts, policy: Policy, as_of: datetime) -> tuple[str, ...]:
    """Everything that keeps this consent from being relied on at `as_of`: missing §2.31(a)
    elements, and its signers."""
    return consent.problems + signer_problems(consent, facts, policy, as_of)
