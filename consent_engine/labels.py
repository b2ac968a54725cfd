"""Security labels at ingest (DS4P): what every stored resource version carries.

- provenance: anything a registered Part 2 program sends is Part 2 (`42CFRPart2`, `R`,
  `NORDSCLCD`), an Encounter or Organization included: it identifies the person as a patient of
  the program (§2.12(a)(1));
- codes: sensitivity codes (`SUD`, `OPIOIDUD`, `ETHUD`, `MH`, `PSY`, `PSYTHPN`, `HIV`, ...) from
  value sets (config/sensitivity.toml: ICD-10-CM, SNOMED CT, RxNorm);
- the sender's own labels are kept (the retired `NORDSLCD` is read as `NORDSCLCD`);
- a resource that was Part 2 stays Part 2: an update never drops those labels.
Each resource also gets a data class (config/data_classes.toml) as a `meta.tag`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from consent_engine.codes import (
    DATA_CLASS_SYSTEM,
    DATA_CLASSES,
    KEPT_LABELS,
    LABEL_SYSTEM,
    MENTAL_HEALTH_LABELS,
    NO_REDISCLOSURE,
    PART2,
    PSYCHOTHERAPY_NOTE,
    RESTRICTED,
    SUD_LABELS,
)

ALIASES = {"NORDSLCD": NO_REDISCLOSURE}  # a retired misspelling: accepted, never emitted
PART2_PROVENANCE = frozenset({PART2, RESTRICTED, NO_REDISCLOSURE})
# Where labels propagate: an item's Encounter, EpisodeOfCare and the Conditions it is about.
PROPAGATION_PATHS = ("encounter", "context", "episodeOfCare", "reasonReference", "addresses", "condition",
                     "diagnosis", "basedOn")  # fmt: skip
PROPAGATION_TARGETS = frozenset({"Encounter", "EpisodeOfCare", "Condition"})


@dataclass(frozen=True)
class CodeRule:
    system: str
    prefixes: tuple[str, ...] = ()  # code prefixes (ICD-10-CM ranges)
    codes: frozenset[str] = frozenset()  # exact codes (SNOMED CT, RxNorm)
    exclude: tuple[str, ...] = ()  # prefixes that do not count (F17: tobacco)
    labels: frozenset[str] = frozenset()

    def matches(self, system: str, code: str) -> bool:
        if system != self.system:
            return False
        normalized = code.replace(".", "").upper() if self.prefixes else code
        if any(normalized.startswith(p) for p in self.exclude):
            return False
        return normalized in self.codes or any(normalized.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class LabelRules:
    code_rules: tuple[CodeRule, ...] = ()
    type_classes: Mapping[str, str] = field(default_factory=dict)  # resource type -> data class
    note_classes: Mapping[str, str] = field(default_factory=dict)  # "system|code" of a note type -> class
    default_class: str = "STATUS"

    @cached_property
    def by_system(self) -> Mapping[str, tuple[CodeRule, ...]]:
        """The code rules per code system: most codings (LOINC, CPT, ...) meet no rule at all."""
        grouped: dict[str, list[CodeRule]] = {}
        for rule in self.code_rules:
            grouped.setdefault(rule.system, []).append(rule)
        return {system: tuple(found) for system, found in grouped.items()}


def rules_from_mapping(sensitivity: Mapping[str, Any], classes: Mapping[str, Any]) -> LabelRules:
    """Rules from config/sensitivity.toml and config/data_classes.toml (already parsed)."""
    rules = []
    for entry in sensitivity.get("rule", []):
        labels = frozenset(entry["labels"])
        unknown = labels - set(LABEL_SYSTEM)
        if unknown:
            raise ValueError(f"sensitivity rule for {entry.get('system')}: unknown labels {sorted(unknown)}")
        rules.append(
            CodeRule(
                system=str(entry["system"]),
                prefixes=tuple(str(p).replace(".", "").upper() for p in entry.get("prefixes", [])),
                codes=frozenset(str(c) for c in entry.get("codes", [])),
                exclude=tuple(str(p).replace(".", "").upper() for p in entry.get("exclude", [])),
                labels=labels,
            )
        )
    type_classes = {str(k): str(v) for k, v in classes.get("resource_types", {}).items()}
    note_classes = {str(k): str(v) for k, v in classes.get("note_types", {}).items()}
    for value in [*type_classes.values(), *note_classes.values()]:
        if value not in DATA_CLASSES:
            raise ValueError(f"unknown data class {value!r} in the data class configuration")
    return LabelRules(tuple(rules), type_classes, note_classes, str(classes.get("default", "STATUS")))


def _codings(node: Any) -> Iterator[tuple[str, str]]:
    """Every (system, code) in the resource, wherever it sits (code, medicationCodeableConcept,
    reasonCode, valueCodeableConcept, ...), except meta. A loop over a stack, not recursion:
    it runs for every version written."""
    stack: list[Any] = [node]
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        if type(current) is dict:
            system, code = current.get("system"), current.get("code")
            if type(system) is str and type(code) is str:
                yield system, code
            for key, value in current.items():
                if key != "meta" and type(value) in (dict, list):
                    push(value)
        elif type(current) is list:
            for value in reversed(current):  # so that a list's items come out in their order
                if type(value) in (dict, list):
                    push(value)


def sensitivity_of(resource: Mapping[str, Any], rules: LabelRules) -> frozenset[str]:
    found: set[str] = set()
    by_system = rules.by_system
    for system, code in _codings(resource):
        for rule in by_system.get(system, ()):
            if rule.matches(system, code):
                found |= rule.labels
    if found & (SUD_LABELS | MENTAL_HEALTH_LABELS | {PSYCHOTHERAPY_NOTE}):
        found.add(RESTRICTED)
    return frozenset(found)


def data_class_of(resource: Mapping[str, Any], rules: LabelRules, labels: frozenset[str] = frozenset()) -> str:
    resource_type = str(resource.get("resourceType", ""))
    if resource_type == "DocumentReference":
        for system, code in _codings(resource.get("type")):
            found = rules.note_classes.get(f"{system}|{code}")
            if found:
                return found
        if PSYCHOTHERAPY_NOTE in labels:
            return "PSYNOTE"
    if resource_type == "Observation":
        categories = {
            str(coding.get("code"))
            for concept in resource.get("category") or []
            if isinstance(concept, dict)
            for coding in concept.get("coding") or []
            if isinstance(coding, dict)
        }
        if categories and "laboratory" not in categories:
            return "DX" if "exam" in categories else rules.type_classes.get("Observation:other", "LAB")
    return rules.type_classes.get(resource_type, rules.default_class)


def sender_labels(resource: Mapping[str, Any]) -> frozenset[str]:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    found: set[str] = set()
    for coding in (meta or {}).get("security") or []:
        code = coding.get("code") if isinstance(coding, dict) else None
        if isinstance(code, str):
            found.add(ALIASES.get(code, code))
    return frozenset(found)


def labels_for(
    resource: Mapping[str, Any],
    rules: LabelRules,
    *,
    part2_source: bool,
    previous: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """All labels the version must carry."""
    labels = set(sender_labels(resource)) | sensitivity_of(resource, rules)
    if part2_source:
        labels |= PART2_PROVENANCE
    # Never dropped by an update: Part 2 provenance (once Part 2, always Part 2) and the
    # sensitivity labels earlier versions carried (propagated ones included).
    labels |= previous & (KEPT_LABELS | set(LABEL_SYSTEM))
    return frozenset(labels)


def apply_labels(resource: dict[str, Any], labels: frozenset[str], data_class: str) -> dict[str, Any]:
    """The resource with meta.security holding `labels` (canonical systems; other labels the
    sender put there kept as sent) and meta.tag holding the data class."""
    meta = dict(resource.get("meta") or {})
    security: list[dict[str, Any]] = []
    seen: set[str] = set()
    for coding in meta.get("security") or []:
        if not isinstance(coding, dict):
            continue
        code = ALIASES.get(str(coding.get("code")), str(coding.get("code")))
        if code in LABEL_SYSTEM:
            continue  # re-emitted below with the canonical system
        if code not in seen:
            seen.add(code)
            security.append(coding)
    for code in sorted(labels):
        if code in LABEL_SYSTEM and code not in seen:
            seen.add(code)
            security.append({"system": LABEL_SYSTEM[code], "code": code})
    tags = [t for t in meta.get("tag") or [] if not (isinstance(t, dict) and t.get("system") == DATA_CLASS_SYSTEM)]
    tags.append({"system": DATA_CLASS_SYSTEM, "code": data_class})
    if security:
        meta["security"] = security
    else:
        meta.pop("security", None)  # FHIR has no empty arrays
    meta["tag"] = tags
    return {**resource, "meta": meta}


def propagation_targets(resource: Mapping[str, Any]) -> list[str]:
    """References to the Encounter, EpisodeOfCare and Conditions an item hangs off."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str) and reference.split("/")[0] in PROPAGATION_TARGETS:
                found.append("/".join(reference.split("/")[:2]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for path in PROPAGATION_PATHS:
        visit(resource.get(path))
    return list(dict.fromkeys(found))
