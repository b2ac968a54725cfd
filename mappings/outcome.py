"""After the call: the responder's outcome as FHIR. The crisis Encounter is finished with its
disposition (and the responder's short note), and each care team that may be told receives a
Communication: "your patient was seen by the mobile crisis team at 14:05; outcome: stayed home
with a safety plan". Plain data in, FHIR out; the gateway decides who may be told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

P = "https://crisis-fhir-gateway.org/fhir"
DISPOSITION_SYSTEM = f"{P}/CodeSystem/crisis-disposition"
NOTE_EXTENSION = f"{P}/StructureDefinition/crisis-outcome-note"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MAX_NOTE = 500

# The pick-list, in the order responders see it: the common outcomes of a mobile crisis call.
DISPOSITIONS: dict[str, str] = {
    "stayed-home-safety-plan": "Stayed home with a safety plan",
    "connected-to-care-team": "Connected with their care team",
    "voluntary-crisis-unit": "Went voluntarily to a crisis stabilisation unit",
    "voluntary-emergency-department": "Went voluntarily to the emergency department",
    "involuntary-evaluation": "Taken for an involuntary evaluation",
    "medical-transport": "Taken to hospital for medical care",
    "declined-services": "Declined services",
    "not-located": "Not located",
    "police-custody": "Taken into police custody",
}


def finished_encounter(encounter: dict[str, Any], disposition: str, note: str, end: str) -> dict[str, Any]:
    """The crisis Encounter, finished at `end` (a FHIR instant), with its disposition and note."""
    finished = {k: v for k, v in encounter.items() if k not in ("meta", "text")}
    finished["status"] = "finished"
    finished["period"] = {**(encounter.get("period") or {}), "end": end}
    start = finished["period"].get("start")
    if isinstance(start, str) and start > end:  # never a period that ends before it starts
        finished["period"]["start"] = end
    finished["hospitalization"] = {
        **(encounter.get("hospitalization") or {}),
        "dischargeDisposition": {
            "coding": [{"system": DISPOSITION_SYSTEM, "code": disposition, "display": DISPOSITIONS[disposition]}],
            "text": DISPOSITIONS[disposition],
        },
    }
    extensions = [e for e in encounter.get("extension") or [] if e.get("url") != NOTE_EXTENSION]
    if note:
        extensions.append({"url": NOTE_EXTENSION, "valueString": note})
    if extensions:
        finished["extension"] = extensions
    else:
        finished.pop("extension", None)
    return finished


def field_encounter(patient: str, organization: str, start: str) -> dict[str, Any]:
    """A crisis Encounter for an outcome recorded without one (no dispatch, no on-scene record)."""
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": ACT_CODE, "code": "FLD", "display": "field"},
        "type": [{"text": "Mobile crisis response"}],
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": organization},
        "period": {"start": start},
    }


def care_team_message(
    patient: str,
    encounter: str,
    sender: str,
    sender_name: str,
    recipient: str,
    disposition: str,
    note: str,
    seen_at: datetime,
    sent: str,
) -> dict[str, Any]:
    """The Communication that closes the loop with a care team (`recipient`, an Organization
    reference); `seen_at` is local time as the care team reads it."""
    outcome = DISPOSITIONS[disposition]
    text = (
        f"Your patient was seen by the {sender_name} at {seen_at:%H:%M} on {seen_at:%-d %b %Y}; "
        f"outcome: {outcome[0].lower()}{outcome[1:]}."
    )
    payload = [{"contentString": text}]
    if note:
        payload.append({"contentString": f"Note from the responder: {note}"})
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification"}
                ]
            }
        ],  # fmt: skip
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": encounter},
        "sent": sent,
        "sender": {"reference": sender},
        "recipient": [{"reference": recipient}],
        "reasonCode": [{"coding": [{"system": DISPOSITION_SYSTEM, "code": disposition, "display": outcome}]}],
        "payload": payload,
    }
