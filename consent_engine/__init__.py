"""42 CFR Part 2 / HIPAA release decisions: a pure library (no Flask, no SQLAlchemy, no clock:
time is passed in as `as_of`).

    release(request, record, consents, history, policy, as_of) -> Release

takes who asks (a user with a role, or a backend client), for what purpose, about whom and how
(a read, a brief, a match, a report), the patient's labelled items, consents and program
episodes, and what the requester's earlier requests established; it returns one `Release`: the
items released (each with its basis), the items withheld (each with its reason and rule), and
every obligation as data (the §2.32 notice and scope explanations, labels, ledger rows, the §2.24
list, the §2.51(c) record, the review item, alerts) and the audit facts. The answer, the audit
record and the ledger are all rendered from it. See release.py for the procedure.
"""

from consent_engine.consents import consent_alerts, in_force, order_alerts, treatment_ended_at
from consent_engine.model import (
    Alert,
    AuditFacts,
    Basis,
    BasisKind,
    Consent,
    ConsentKind,
    CourtOrder,
    Emergency,
    EmergencyRecord,
    Episode,
    History,
    IntermediaryRow,
    Item,
    LedgerRow,
    Notice,
    Operation,
    OrderSection,
    Outcome,
    PatientFacts,
    Provision,
    Recipient,
    Record,
    Release,
    Released,
    ReleaseRequest,
    ScopeExplanation,
    Signer,
    SignerRole,
    Withheld,
)
from consent_engine.policy import DEFAULT_POLICY, Policy, policy_from_mapping
from consent_engine.release import DISCLOSURE_BASES, ConsentsUnavailable, DecisionError, release, request_alerts

__all__ = [
    "DEFAULT_POLICY",
    "DISCLOSURE_BASES",
    "Alert",
    "AuditFacts",
    "Basis",
    "BasisKind",
    "Consent",
    "ConsentKind",
    "ConsentsUnavailable",
    "CourtOrder",
    "DecisionError",
    "Emergency",
    "EmergencyRecord",
    "Episode",
    "History",
    "IntermediaryRow",
    "Item",
    "LedgerRow",
    "Notice",
    "Operation",
    "OrderSection",
    "Outcome",
    "PatientFacts",
    "Policy",
    "Provision",
    "Recipient",
    "Record",
    "Release",
    "ReleaseRequest",
    "Released",
    "ScopeExplanation",
    "Signer",
    "SignerRole",
    "Withheld",
    "consent_alerts",
    "in_force",
    "order_alerts",
    "policy_from_mapping",
    "release",
    "request_alerts",
    "treatment_ended_at",
]
