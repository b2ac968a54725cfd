"""42 CFR Part 2 / HIPAA consent decisions: a pure library (no Flask, no SQLAlchemy, no clock:
time is passed in as `as_of`).

    decision = decide(request, record, consents, policy)

takes who asks (recipient, role, purpose of use, optional emergency), the patient's labelled
items and their consents, and returns PERMIT, PERMIT_WITH_REDACTION or DENY with a decision,
basis or reason per item and the obligations that go with a release (the §2.32 notice, ledger
rows, the §2.51(c) record, alerts). See decide.py for the procedure.
"""

from consent_engine.decide import ConsentsUnavailable, DecisionError, decide, in_force
from consent_engine.model import (
    Alert,
    Basis,
    Consent,
    ConsentKind,
    Decision,
    DecisionRequest,
    Emergency,
    Item,
    ItemDecision,
    Outcome,
    PatientRecord,
    Provision,
    Recipient,
)
from consent_engine.policy import DEFAULT_POLICY, Policy, policy_from_mapping

__all__ = [
    "DEFAULT_POLICY",
    "Alert",
    "Basis",
    "Consent",
    "ConsentKind",
    "ConsentsUnavailable",
    "Decision",
    "DecisionError",
    "DecisionRequest",
    "Emergency",
    "Item",
    "ItemDecision",
    "Outcome",
    "PatientRecord",
    "Policy",
    "Provision",
    "Recipient",
    "decide",
    "in_force",
    "policy_from_mapping",
]
