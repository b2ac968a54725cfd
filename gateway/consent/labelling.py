"""Security labels at ingest: the engine's write hook, with the rules from config/."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from consent_engine.codes import DATA_CLASS_SYSTEM, PROJECT, SENSITIVITY_LABELS
from consent_engine.labels import (
    PART2_PROVENANCE,
    LabelRules,
    apply_labels,
    data_class_of,
    labels_for,
    propagation_targets,
    rules_from_mapping,
    sender_labels,
)
from gateway.fhir.context import FhirRequest
from gateway.fhir.repository import Repository, StoredResource
from gateway.settings import PROJECT_ROOT

PROPAGATED = SENSITIVITY_LABELS | PART2_PROVENANCE
PROPAGATION_SOURCE = "gateway:label-propagation"


@cache
def load_rules(config_dir: Path = PROJECT_ROOT / "config") -> LabelRules:
    sensitivity = tomllib.loads((config_dir / "sensitivity.toml").read_text(encoding="utf-8"))
    classes = tomllib.loads((config_dir / "data_classes.toml").read_text(encoding="utf-8"))
    return rules_from_mapping(sensitivity, classes)


def _data_class(content: dict[str, Any]) -> str | None:
    for tag in (content.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == DATA_CLASS_SYSTEM:
            return str(tag.get("code"))
    return None


SOURCE_ORGANIZATION = f"{PROJECT}/StructureDefinition/source-organization"


def source_organization(content: dict[str, Any]) -> str | None:
    """The organization that sent this resource (the discloser, for the consent engine)."""
    for extension in (content.get("meta") or {}).get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == SOURCE_ORGANIZATION:
            reference = (extension.get("valueReference") or {}).get("reference")
            return str(reference) if reference else None
    return None


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
    propagate to the Encounter, EpisodeOfCare and Conditions it hangs off (a new version of each,
    written by `gateway:label-propagation`, in the same transaction)."""

    def __init__(self, rules: LabelRules | None = None) -> None:
        self.rules = rules or load_rules()

    def before_write(self, request: FhirRequest, content: dict[str, Any], current: Any) -> dict[str, Any]:
        previous = (
            sender_labels(current.content) if isinstance(current, StoredResource) and current.content else frozenset()
        )
        labels = labels_for(content, self.rules, part2_source=request.requester.part2_program, previous=previous)
        labelled = apply_labels(content, labels, data_class_of(content, self.rules, labels))
        organization = request.requester.organization or (previous_source(current) if current else None)
        return with_source_organization(labelled, organization) if organization else labelled

    def after_write(self, request: FhirRequest, written: Any, repository: Repository, now: Any) -> None:
        content = written.content or {}
        carried = sender_labels(content) & PROPAGATED
        if not carried:
            return
        for reference in propagation_targets(content):
            target_type, target_id = reference.split("/", 1)
            if (target_type, target_id) == (written.type, written.id):
                continue
            target = repository.read(target_type, target_id)
            if target is None or target.deleted or target.content is None:
                continue
            have = sender_labels(target.content)
            if carried <= have:
                continue
            data_class = _data_class(target.content) or data_class_of(target.content, self.rules, have)
            labelled = apply_labels(dict(target.content), have | carried, data_class)
            repository.write(labelled, current=target, method="PUT", source=PROPAGATION_SOURCE, now=now)
