"""After an emergency access is recorded: the §2.51(c) record goes back to each source program
as a FHIR Communication (stored in the gateway, addressed to the program's Organization, for its
EHR to fetch), written in one unit of work after the audit commit."""

from __future__ import annotations

import uuid
from typing import Any

from consent_engine.codes import DATA_CLASS_SYSTEM, LABEL_SYSTEM
from consent_engine.labels import PART2_PROVENANCE
from gateway.consent.audit import AuditLog, AuditRecord
from gateway.fhir.repository import Store

SOURCE = "gateway:consent-engine"


def emergency_communication(record: AuditRecord, discloser: str) -> dict[str, Any]:
    emergency = record.body["emergency"]
    text = (
        "42 CFR 2.51(c) record of a disclosure in a medical emergency. "
        f"Disclosed to: {emergency['recipient']} ({emergency['affiliation']}). "
        f"Disclosed by: the crisis-response gateway on behalf of {discloser}. "
        f"Date and time: {emergency['disclosed_at']} UTC. "
        f"Nature of the emergency: {emergency['nature']}."
    )
    return {
        "resourceType": "Communication",
        "id": str(uuid.uuid4()),
        "meta": {
            "security": [{"system": LABEL_SYSTEM[code], "code": code} for code in sorted(PART2_PROVENANCE)],
            "tag": [{"system": DATA_CLASS_SYSTEM, "code": "STATUS"}],
        },
        "status": "completed",
        "category": [{"text": "42 CFR 2.51 emergency disclosure notification"}],
        "subject": {"reference": record.patient},
        "recipient": [{"reference": discloser}],
        "sent": record.recorded_at.isoformat() + "Z",
        "payload": [{"contentString": text}],
    }


class ConsentAudit:
    """The engine's audit sink: commit the records, then notify the programs of emergencies."""

    def __init__(self, log: AuditLog, store: Store) -> None:
        self.log = log
        self.store = store

    def append(self, records: list[AuditRecord]) -> list[int]:
        sequences = self.log.append(records)
        notices = [
            emergency_communication(record, discloser)
            for record in records
            if record.body.get("emergency") and record.patient
            for discloser in sorted(
                {d for d in record.body["emergency"]["disclosers"].split(", ") if d.startswith("Organization/")}
            )
        ]
        if notices:
            with self.store.unit_of_work(True) as (repository, now):
                for notice in notices:
                    repository.write(notice, current=None, method="POST", source=SOURCE, now=now)
        return sequences
