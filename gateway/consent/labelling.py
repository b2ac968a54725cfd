"""Security labels at ingest: the engine's write hook, with the rules from config/ and the
registry of Part 2 programs (the EHR clients registered with `--part2-program`)."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from consent_engine import consent_alerts, order_alerts
from consent_engine.codes import SENSITIVITY_LABELS, SOURCE_ORGANIZATION
from consent_engine.fhir import consent_from_fhir, data_class, is_court_order, order_from_fhir, source_organization
from consent_engine.labels import (
    PART2_PROVENANCE,
    LabelRules,
    apply_labels,
    data_class_of,
    labels_for,
    propagation_targets,
    provenance_targets,
    rules_from_mapping,
    sender_labels,
)
from gateway.fhir.context import FhirRequest
from gateway.fhir.repository import Repository, StoredResource
from gateway.settings import PROJECT_ROOT

PROPAGATED = SENSITIVITY_LABELS | PART2_PROVENANCE
PROPAGATION_SOURCE = "gateway:label-propagation"
PROGRAMS_CACHE_SECONDS = 30.0


@cache
def load_rules(config_dir: Path = PROJECT_ROOT / "config") -> LabelRules:
    sensitivity = tomllib.loads((config_dir / "sensitivity.toml").read_text(encoding="utf-8"))
    classes = tomllib.loads((config_dir / "data_classes.toml").read_text(encoding="utf-8"))
    return rules_from_mapping(sensitivity, classes)


def previous_source(current: Any) -> str | None:
    return source_organization(current.content) if isinstance(current, StoredResource) and current.content else None


def with_source_organization(content: dict[str, Any], organization: str) -> dict[str, Any]:
    meta = dict(content.get("meta") or {})
    others = [
        e for e in meta.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == SOURCE_ORGANIZATION)
    ]
    meta["extension"] = [*others, {"url": SOURCE_ORGANIZATION, "valueReference": {"reference": organization}}]
    return {**content, "meta": meta}


class Labelling:
    """Every version written gets its DS4P labels and data class; the labels of a sensitive item
    propagate to the Encounter, EpisodeOfCare and Conditions it hangs off, and a Provenance that
    traces items to a Part 2 program makes them Part 2 (a new version of each, written by
    `gateway:label-propagation`, in the same transaction). A Consent that combines counseling
    notes with other data raises an alert on the request that writes it."""

    def __init__(self, rules: LabelRules | None = None, programs: Callable[[], frozenset[str]] | None = None) -> None:
        self.rules = rules or load_rules()
        self._load_programs = programs or frozenset
        self._programs: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def programs(self) -> frozenset[str]:
        """The registered Part 2 programs' organizations, read at most every 30 seconds."""
        with self._lock:
            if time.monotonic() - self._read_at > PROGRAMS_CACHE_SECONDS:
                self._programs = self._load_programs()
                self._read_at = time.monotonic()
            return self._programs

    def before_write(self, request: FhirRequest, content: dict[str, Any], current: Any) -> dict[str, Any]:
        previous = (
            sender_labels(current.content) if isinstance(current, StoredResource) and current.content else frozenset()
        )
        labels = labels_for(content, self.rules, part2_source=request.requester.part2_program, previous=previous,
                            part2_programs=self.programs())  # fmt: skip
        labelled = apply_labels(content, labels, data_class_of(content, self.rules, labels))
        organization = request.requester.organization or (previous_source(current) if current else None)
        if organization:
            labelled = with_source_organization(labelled, organization)
        if labelled.get("resourceType") == "Consent":
            if is_court_order(labelled):
                request.audit.extend(order_alerts(order_from_fhir(labelled)))
            else:
                request.audit.extend(consent_alerts(consent_from_fhir(labelled)))
        return labelled

    def after_write(self, request: FhirRequest, written: Any, repository: Repository, now: Any) -> None:
        content = written.content or {}
        for reference in provenance_targets(content, self.programs()):
            self._carry(reference, PART2_PROVENANCE, written, repository, now)
        carried = sender_labels(content) & PROPAGATED
        if not carried:
            return
        for reference in propagation_targets(content):
            self._carry(reference, carried, written, repository, now)

    def reads(self, content: dict[str, Any]) -> list[str]:
        """What `after_write` reads: the items labels propagate to, and a Provenance's targets."""
        return [*propagation_targets(content), *provenance_targets(content, self.programs())]

    def _carry(self, reference: str, labels: frozenset[str], written: Any, repository: Repository, now: Any) -> None:
        target_type, _, target_id = reference.partition("/")
        if not target_id or (target_type, target_id) == (written.type, written.id):
            return
        target = repository.read(target_type, target_id)
        if target is None or target.deleted or target.content is None:
            return
        have = sender_labels(target.content)
        if labels <= have:
            return
        labelled = apply_labels(dict(target.content), have | labels, data_class(target.content))
        repository.write(labelled, current=target, method="PUT", source=PROPAGATION_SOURCE, now=now)
