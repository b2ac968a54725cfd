"""What the compliance dashboard watches beyond alerts: patterns in the audit trail that a single
record does not show, and how far consents reach. Reads the audit log and the store; returns rows.

- repeated probable-match views: a user shown `probable` (unconfirmed) matches again and again,
  the pattern of someone browsing people rather than responding to a call;
- look-ups with no dispatch behind them: a brief read by a responder whose organization had no
  crisis encounter with the person at the time (no dispatch launch, no on-scene record);
- consent coverage per Part 2 program: of the people in active treatment there, how many have a
  consent in force that lets a crisis team see their crisis plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from consent_engine.consents import in_force
from consent_engine.fhir import consent_from_fhir, episode_from_resource, parse_datetime
from consent_engine.model import PERMIT_KINDS, Consent
from gateway.fhir.repository import Repository
from gateway.fhir.search import parse_search
from gateway.store.schema import audit_event

PROBABLE_VIEWS_FLAGGED = 3  # probable matches shown to one user in the period
DISPATCH_GRACE = timedelta(minutes=10)  # a brief read just before the team was recorded on scene
CRISIS_PLAN = "CRISISPLAN"
COVERING_CLASSES = frozenset({"treating-providers", "intermediary-participants"})
COVERING_PURPOSES = frozenset({"TREAT", "crisis-coordination"})


def probable_match_views(connection: Connection, since: datetime) -> list[dict[str, Any]]:
    """Users shown probable matches at least PROBABLE_VIEWS_FLAGGED times since then, most first."""
    rows = connection.execute(
        select(audit_event.c.recipient, audit_event.c.recorded_at, audit_event.c.body)
        .where(audit_event.c.interaction == "responder-match", audit_event.c.recorded_at >= since)
    ).all()  # fmt: skip
    views: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for user, recorded_at, body in rows:
        for shown in (body or {}).get("shown") or []:
            if shown.get("grade") == "probable":
                views[str(user)].append((recorded_at, str(shown.get("patient"))))
    flagged = [
        {"user": user, "views": len(found), "people": len({p for _, p in found}),
         "last": max(t for t, _ in found).isoformat(timespec="minutes") + "Z", "patient": None}
        for user, found in views.items() if len(found) >= PROBABLE_VIEWS_FLAGGED
    ]  # fmt: skip
    return sorted(flagged, key=lambda r: -int(r["views"]))


def lookups_without_dispatch(connection: Connection, repository: Repository, since: datetime) -> list[dict[str, Any]]:
    """Briefs released to a responder whose organization had no crisis (field) encounter with the
    person in progress at the time, newest first."""
    rows = connection.execute(
        select(audit_event.c.seq, audit_event.c.recorded_at, audit_event.c.recipient, audit_event.c.patient,
               audit_event.c.body)
        .where(audit_event.c.interaction == "responder-brief", audit_event.c.recorded_at >= since,
               audit_event.c.outcome.in_(("PERMIT", "PERMIT_WITH_REDACTION")))
        .order_by(audit_event.c.seq.desc())
    ).all()  # fmt: skip
    patients = sorted({str(r.patient).removeprefix("Patient/") for r in rows if r.patient})
    encounters = repository.compartments(patients, ["Encounter"]) if patients else {}
    found = []
    for seq, recorded_at, user, patient, body in rows:
        organization = ((body or {}).get("requester") or {}).get("organization")
        if not patient or not organization:
            continue
        field = [e.content for e in encounters.get(str(patient).removeprefix("Patient/"), []) if e.content
                 and (e.content.get("class") or {}).get("code") == "FLD"
                 and (e.content.get("serviceProvider") or {}).get("reference") == organization]  # fmt: skip
        if not any(_during(e, recorded_at) for e in field):
            found.append({"seq": int(seq), "recorded_at": recorded_at.isoformat(timespec="minutes") + "Z",
                          "user": str(user), "organization": organization, "patient": str(patient)})  # fmt: skip
    return found


def _during(encounter: dict[str, Any], moment: datetime) -> bool:
    period = encounter.get("period") or {}
    start = parse_datetime(period.get("start"))
    end = parse_datetime(period.get("end"), end=True)
    return start is not None and start - DISPATCH_GRACE <= moment and (end is None or moment <= end)


def part2_coverage(
    repository: Repository, base_url: str, programs: Iterable[str], crisis_teams: frozenset[str], now: datetime
) -> list[dict[str, Any]]:
    """For each Part 2 program: the people with an active episode there, and how many of them have
    a consent in force (relied on) that lets a crisis team (one of `crisis_teams`, or treating
    providers as a class) see the program's crisis plan for treatment or crisis coordination."""
    coverage = []
    for program in sorted(programs):
        episodes = _active_episodes(repository, base_url, program)
        people = sorted({p for p, _ in episodes})
        consents = repository.compartments(people, ["Consent", "EpisodeOfCare"]) if people else {}
        covered = 0
        for person in people:
            resources = [r.content for r in consents.get(person, []) if r.content]
            person_episodes = [e for r in resources if (e := episode_from_resource(r)) is not None]
            stored = [consent_from_fhir(r) for r in resources if r.get("resourceType") == "Consent"]
            if any(_covers(c, program, crisis_teams, now, person_episodes) for c in stored):
                covered += 1
        coverage.append({"program": program, "people": len(people), "covered": covered,
                         "share": round(covered / len(people), 3) if people else None, "patient": None})  # fmt: skip
    return coverage


def _active_episodes(repository: Repository, base_url: str, program: str) -> list[tuple[str, str]]:
    query = parse_search("EpisodeOfCare", [("organization", program), ("status", "active"), ("_count", "1000")],
                         base_url=base_url, strict=True, default_count=1000, max_count=1000)  # fmt: skip
    found, _ = repository.search(query)
    return [(str(((e.content or {}).get("patient") or {}).get("reference", "")).removeprefix("Patient/"), e.id)
            for e in found if e.content]  # fmt: skip


def _covers(consent: Consent, program: str, crisis_teams: frozenset[str], now: datetime, episodes: Any) -> bool:
    root = consent.provision
    return (
        consent.kind in PERMIT_KINDS
        and consent.reliable
        and root.type == "permit"
        and in_force(consent, now, episodes)
        and program in consent.bounds
        and (not root.data_classes or CRISIS_PLAN in root.data_classes)
        and (not root.purposes or bool(root.purposes & COVERING_PURPOSES))
        and bool(root.recipient_classes & COVERING_CLASSES or root.recipients & crisis_teams)
    )
