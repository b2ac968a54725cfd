"""What 42 CFR Part 2 requires to go with a disclosure, as data and text:

- §2.32(a): the notice (2024 Statement 1, verbatim; ../shared/research/consent.md §2.4), versioned
  so that the ledger records which text went out;
- §2.32(b): a clear explanation of the scope of each consent relied on;
- §2.51(c): the record of a disclosure in a medical emergency, and the FHIR Communication that
  takes it back to the source program.
"""

from __future__ import annotations

from typing import Any

from consent_engine.codes import DATA_CLASS_SYSTEM, LABEL_SYSTEM, NO_REDISCLOSURE, PART2, RESTRICTED, STATUS
from consent_engine.model import Consent, EmergencyRecord

STATEMENT_1_VERSION = "2024"
STATEMENT_1 = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2). "
    "These rules prohibit you from using or disclosing this record, or testimony that describes the information "
    "contained in this record, in any civil, criminal, administrative, or legislative proceedings by any Federal, "
    "State, or local authority, against the patient, unless authorized by the consent of the patient, except as "
    "provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In addition, "
    "the Federal rules prohibit you from making any other use or disclosure of this record unless at least one of "
    "the following applies:\n"
    "(i) Further use or disclosure is expressly permitted by the written consent of the individual whose "
    "information is being disclosed in this record or as otherwise permitted by 42 CFR part 2.\n"
    "(ii) You are a covered entity or business associate and have received the record for treatment, payment, or "
    "health care operations, or\n"
    "(iii) You have received the record from a covered entity or business associate as permitted by 45 CFR part "
    "164, subparts A and E.\n"
    "A general authorization for the release of medical or other information is NOT sufficient to meet the required "
    "elements of written consent to further use or redisclose the record (see 42 CFR 2.31)."
)


def scope_explanation(consent: Consent) -> str:
    """§2.32(b): the consent's own explanation, or one generated from its provisions (naming it)."""
    if consent.description:
        return f"Consent {consent.id}: {consent.description}"
    root = consent.provision
    parts = [f"Consent {consent.id} ({consent.kind.value})"]
    if root.recipients or root.recipient_classes:
        parts.append("to " + ", ".join(sorted(root.recipients | root.recipient_classes)))
    if root.purposes:
        parts.append("for " + ", ".join(sorted(root.purposes)))
    if root.data_classes:
        parts.append("covering " + ", ".join(sorted(root.data_classes)))
    if consent.disclosers:
        parts.append("from " + ", ".join(sorted(consent.disclosers)))
    if consent.expires_at:
        parts.append(f"until {consent.expires_at:%Y-%m-%d}")
    elif consent.expiry_event:
        parts.append(f"until {consent.expiry_event}")
    return " ".join(parts)


def emergency_text(record: EmergencyRecord, program_name: str, gateway_name: str) -> str:
    """The §2.51(c) record in words: recipient and affiliation, who disclosed, when, and why."""
    return (
        "42 CFR 2.51(c) record of a disclosure in a medical emergency. "
        f"Disclosed to: {record.recipient_name} ({record.affiliation_name or record.affiliation}). "
        f"Disclosed by: {program_name} via {gateway_name}, on behalf of {program_name}. "
        f"Date and time: {record.disclosed_at.isoformat(timespec='milliseconds')}Z. "
        f"Nature of the emergency: {record.nature}."
    )


def emergency_communication(
    record: EmergencyRecord, patient: str, program: str, program_name: str, gateway_name: str
) -> dict[str, Any]:
    """The §2.51(c) record as a FHIR Communication addressed to the source program (its EHR fetches
    it as one of its own records). Labelled Part 2: it says the person is the program's patient.
    No id: it is created like any other resource."""
    labels = sorted({PART2, RESTRICTED, NO_REDISCLOSURE})
    return {
        "resourceType": "Communication",
        "meta": {
            "security": [{"system": LABEL_SYSTEM[code], "code": code} for code in labels],
            "tag": [{"system": DATA_CLASS_SYSTEM, "code": STATUS}],
        },
        "status": "completed",
        "category": [{"text": "42 CFR 2.51 emergency disclosure notification"}],
        "subject": {"reference": patient},
        "recipient": [{"reference": program}],
        "sent": record.disclosed_at.isoformat(timespec="milliseconds") + "Z",
        "payload": [{"contentString": emergency_text(record, program_name, gateway_name)}],
    }
