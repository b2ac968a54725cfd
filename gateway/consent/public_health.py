"""The store's side of public-health counts (consent_engine/public_health.py): every stored
treatment episode or crisis encounter becomes a Safe Harbor row the moment it is read, and only
the rows leave this module. Nothing identifying is kept or returned."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.engine import Connection

from consent_engine.codes import MENTAL_HEALTH_LABELS, PART2, SUD_LABELS
from consent_engine.fhir import parse_datetime, security_labels
from consent_engine.public_health import SafeHarborRow, safe_harbor_row
from gateway.settings import PROJECT_ROOT
from gateway.store.schema import resource

ZIP3_FILE = PROJECT_ROOT / "config" / "safe_harbor_zip3.toml"
MEASURES = {
    "treatment-episodes": "EpisodeOfCare",  # a person's episode of treatment, by the year it began
    "crisis-encounters": "Encounter",  # a crisis team's field encounter, by its year
}
CRISIS_CLASS = "FLD"  # v3-ActCode field: the mobile crisis team's on-scene encounter
BATCH = 500


@cache
def restricted_zip3(path: Path = ZIP3_FILE) -> tuple[str, frozenset[str]]:
    """The census the table comes from, and its three-digit ZIP areas of 20,000 people or fewer."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return str(data["census"]), frozenset(str(z) for z in data["restricted"])


def _program(content: dict[str, Any]) -> str:
    labels = security_labels(content)
    if PART2 in labels or labels & SUD_LABELS:
        return "sud"
    if labels & MENTAL_HEALTH_LABELS:
        return "mental-health"
    return "other"


def _event_date(content: dict[str, Any]) -> date | None:
    period = content.get("period") if isinstance(content.get("period"), dict) else {}
    found = parse_datetime((period or {}).get("start"))
    return found.date() if found else None


def _patient_id(content: dict[str, Any]) -> str | None:
    for element in ("patient", "subject"):
        reference = (content.get(element) or {}).get("reference") if isinstance(content.get(element), dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference.removeprefix("Patient/")
    return None


def safe_harbor_rows(connection: Connection, measure: str) -> Iterator[SafeHarborRow]:
    """The measure's events as Safe Harbor rows, read in batches (the events, then their people)."""
    resource_type = MEASURES[measure]
    _, restricted = restricted_zip3()
    query = (
        select(resource.c.content)
        .where(resource.c.type == resource_type, resource.c.deleted == false())
        .order_by(resource.c.pk)
    )
    events = [row.content for row in connection.execute(query) if row.content]
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        if resource_type == "Encounter":
            batch = [e for e in batch if (e.get("class") or {}).get("code") == CRISIS_CLASS]
        ids = sorted({p for e in batch if (p := _patient_id(e))})
        people = {
            row.fhir_id: row.content
            for row in connection.execute(
                select(resource.c.fhir_id, resource.c.content).where(
                    resource.c.type == "Patient", resource.c.fhir_id.in_(ids), resource.c.deleted == false()
                )
            )
        }
        for event in batch:
            when = _event_date(event)
            if when is None:
                continue  # no year: not countable by year, and not guessed
            person = people.get(_patient_id(event) or "") or {}
            born = parse_datetime(person.get("birthDate"))
            address = next((a for a in person.get("address") or [] if isinstance(a, dict)), {})
            program = "crisis" if resource_type == "Encounter" else _program(event)
            yield safe_harbor_row(when, born.date() if born else None, person.get("gender"), address.get("postalCode"),
                                  program, restricted)  # fmt: skip
