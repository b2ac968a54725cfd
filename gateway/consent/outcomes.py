"""After the call: the responder records the outcome, and the loop closes with the care team.

The responder's organization's crisis Encounter with the person (the one dispatch or the
on-scene record started, else a new one) is finished with the disposition and note. Each care
team the responder may see, under a consent or the treatment basis, is sent a Communication
addressed to the organization that holds it: "your patient was seen by the mobile crisis team at
14:05; outcome: ...". Care teams known only through emergency access, or not at all, are told
nothing: the loop closes where the patient's consent (or HIPAA's treatment rule, for records
outside Part 2) lets the responder know the team exists. All writes are one unit of work, each
with its audit record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from consent_engine import BasisKind, Released
from gateway.fhir.context import FhirRequest, Requester
from gateway.fhir.dates import instant
from gateway.fhir.engine import Engine
from gateway.fhir.everything import DECISION_INPUTS
from gateway.fhir.ids import new_id
from gateway.fhir.repository import Repository
from mappings.outcome import care_team_message, field_encounter, finished_encounter

CARE_TEAM_TYPES = ("CareTeam", "EpisodeOfCare")
# The bases on which knowing of a care team lets the responder tell it the outcome.
TELLING_BASES = frozenset({BasisKind.CONSENT, BasisKind.TREATMENT, BasisKind.JURISDICTION})


@dataclass
class Outcome:
    encounter: str = ""  # Encounter/<id>, finished
    told: list[str] = field(default_factory=list)  # the care teams' organizations, by name


def record_outcome(
    engine: Engine,
    requester: Requester,
    patient: str,
    disposition: str,
    note: str,
    zone: str = "UTC",
) -> Outcome | None:
    """Finish the crisis Encounter and tell the care teams; None (nothing written) when the
    patient is not stored. `requester` is the responder, with their organization."""
    organization = requester.organization or ""
    outcome = Outcome()

    def plan(repository: Repository, now: datetime) -> list[FhirRequest]:
        found = repository.compartments([patient], sorted(DECISION_INPUTS | set(CARE_TEAM_TYPES)))
        record = [r.content for r in found.get(patient, []) if r.content and not r.deleted]
        writer = Requester(source=requester.source, username=requester.username, role=requester.role,
                           organization=organization,
                           scopes=("system/Encounter.cu", "system/Communication.c"))  # fmt: skip
        ended = instant(now)
        # No crisis Encounter yet (no dispatch, no on-scene record): one is made, its id chosen
        # here so that the messages can name it (an update that creates).
        current = _crisis_encounter(record, organization) or {**field_encounter(patient, organization, ended),
                                                              "id": new_id()}  # fmt: skip
        outcome.encounter = f"Encounter/{current['id']}"
        writes = [FhirRequest("PUT", outcome.encounter, requester=writer, headers={"prefer": "return=minimal"},
                              body=finished_encounter(current, disposition, note, ended))]  # fmt: skip
        sender = _organization_name(repository, organization) or "mobile crisis team"
        local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
        for recipient in _care_teams_to_tell(engine, requester, patient, record, repository, now):
            if recipient == organization:
                continue
            outcome.told.append(_organization_name(repository, recipient) or recipient)
            message = care_team_message(patient, outcome.encounter, organization, sender, recipient, disposition, note,
                                        local, ended)  # fmt: skip
            writes.append(FhirRequest("POST", "Communication", body=message, requester=writer,
                                      headers={"prefer": "return=minimal"}))  # fmt: skip
        return writes

    if engine.write_about_patient(patient, plan) is None:
        return None
    return outcome


def _crisis_encounter(record: list[dict[str, Any]], organization: str) -> dict[str, Any] | None:
    """The organization's newest in-progress field Encounter with the person."""
    open_ones = [
        r for r in record
        if r.get("resourceType") == "Encounter" and r.get("status") in ("in-progress", "arrived", "planned")
        and (r.get("class") or {}).get("code") == "FLD"
        and (r.get("serviceProvider") or {}).get("reference") == organization
    ]  # fmt: skip
    return max(open_ones, key=lambda r: str((r.get("period") or {}).get("start") or ""), default=None)


def _care_teams_to_tell(
    engine: Engine, requester: Requester, patient: str, record: list[dict[str, Any]], repository: Repository,
    now: datetime,
) -> list[str]:  # fmt: skip
    """The organizations holding the care teams (and episodes of care) the responder may see,
    on a basis that lets them tell it; none without the consent engine (authorization off)."""
    decide = getattr(engine.release, "releasable", None)
    if decide is None:
        return []
    request = FhirRequest("GET", "CareTeam", requester=requester, purpose="TREAT")
    released: list[Released] = decide(request, patient, record, repository, now)
    by_key = {f"{r.get('resourceType')}/{r.get('id')}": r for r in record}
    told: list[str] = []
    for item in released:
        resource = by_key.get(item.item.key) or {}
        if resource.get("resourceType") not in CARE_TEAM_TYPES or item.basis.kind not in TELLING_BASES:
            continue
        holders = [item.item.source] if item.item.source else []
        if not holders:
            managing = resource.get("managingOrganization")
            managing = managing if isinstance(managing, list) else [managing] if managing else []
            holders = [str(m.get("reference")) for m in managing if isinstance(m, dict) and m.get("reference")]
        told.extend(h for h in holders if h and h not in told)
    return told


def _organization_name(repository: Repository, reference: str) -> str | None:
    if not reference.startswith("Organization/"):
        return None
    found = repository.read("Organization", reference.removeprefix("Organization/"))
    name = (found.content or {}).get("name") if found is not None and not found.deleted else None
    return name if isinstance(name, str) and name else None
