"""Security labels at ingest (DS4P): what every stored resource version carries
(../shared/research/consent-conventions.md, "Labels").

- provenance: anything a registered Part 2 program sends, anything that names such a program
  (its Encounter's service provider, a care team member, a managing organization) and anything a
  Provenance traces to one is Part 2 data: `42CFRPart2`, `R`, `NORDSCLCD` and `SUD`, whatever its
  codes (§2.12(a)(1): an uncoded detox admission from a Part 2 program identifies an SUD patient);
- codes: sensitivity codes (`SUD`, `OPIOIDUD`, `ETHUD`, `MH`, `PSY`, `PSYTHPN`, `HIV`, ...) from
  value sets (config/sensitivity.toml: every RxNorm product of the SUD ingredients, ICD-10-CM
  F10–F19 with all descendants, SNOMED CT, HCPCS and CPT SUD services) and from ingredient, brand
  and diagnosis names in the codes' words;
- the sender's own labels are kept (the retired `NORDSLCD` is read as `NORDSCLCD`), a
  DocumentReference's `securityLabel` included;
- a resource that was Part 2 stays Part 2: an update never drops those labels.
Each resource also gets a data class (config/data_classes.toml) as a `meta.tag`; SUD counseling
notes (`CN`) and psychotherapy notes (`PSYNOTE`) are recognised from the document's type,
category and confidentiality as EHRs send them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from consent_engine.codes import (
    CN,
    CONFIDENTIALITY,
    DATA_CLASS_SYSTEM,
    DATA_CLASSES,
    KEPT_LABELS,
    LABEL_SYSTEM,
    MENTAL_HEALTH_LABELS,
    NO_REDISCLOSURE,
    PART2,
    PSYCHOTHERAPY_NOTE,
    PSYNOTE,
    RESTRICTED,
    SUD_LABELS,
    VERY_RESTRICTED,
)
from consent_engine.fhir import ALIASES, security_labels

PART2_PROVENANCE = frozenset({PART2, RESTRICTED, NO_REDISCLOSURE, "SUD"})
# Where labels propagate: an item's Encounter, EpisodeOfCare and the Conditions it is about.
PROPAGATION_PATHS = ("encounter", "context", "episodeOfCare", "reasonReference", "addresses", "condition",
                     "diagnosis", "basedOn")  # fmt: skip
PROPAGATION_TARGETS = frozenset({"Encounter", "EpisodeOfCare", "Condition"})
TEXT_ELEMENTS = ("code", "medicationCodeableConcept", "type", "reasonCode", "valueCodeableConcept")
DOCUMENT_TYPES = frozenset({"DocumentReference", "Composition"})
# A document is a counseling or psychotherapy note when its type or category says so in words.
NOTE_WORDS = re.compile(r"\b(counsel+ing|psychotherap\w*|therapy (session|note)s?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CodeRule:
    systems: frozenset[str]
    prefixes: tuple[str, ...] = ()  # code prefixes (ICD-10-CM ranges)
    codes: frozenset[str] = frozenset()  # exact codes (SNOMED CT, RxNorm, HCPCS)
    exclude: tuple[str, ...] = ()  # prefixes that do not count (F17: tobacco)
    labels: frozenset[str] = frozenset()

    def matches(self, system: str, code: str) -> bool:
        if system not in self.systems:
            return False
        normalized = code.replace(".", "").upper() if self.prefixes else code
        if any(normalized.startswith(p) for p in self.exclude):
            return False
        return normalized in self.codes or any(normalized.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class TextRule:
    """Ingredient, brand or diagnosis names, whole words, case-insensitive."""

    pattern: re.Pattern[str]
    labels: frozenset[str]
    exclude: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        return bool(self.pattern.search(text)) and not (self.exclude and self.exclude.search(text))


@dataclass(frozen=True)
class LabelRules:
    code_rules: tuple[CodeRule, ...] = ()
    type_classes: Mapping[str, str] = field(default_factory=dict)  # resource type -> data class
    note_classes: Mapping[str, str] = field(default_factory=dict)  # "system|code" of a note type -> class
    default_class: str = "STATUS"
    text_rules: tuple[TextRule, ...] = ()

    @cached_property
    def by_system(self) -> Mapping[str, tuple[CodeRule, ...]]:
        """The code rules per code system: most codings (LOINC, ...) meet no rule at all."""
        grouped: dict[str, list[CodeRule]] = {}
        for rule in self.code_rules:
            for system in rule.systems:
                grouped.setdefault(system, []).append(rule)
        return {system: tuple(found) for system, found in grouped.items()}


def _words(terms: Any) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(str(t)) for t in terms) + r")\b", re.IGNORECASE)


def rules_from_mapping(sensitivity: Mapping[str, Any], classes: Mapping[str, Any]) -> LabelRules:
    """Rules from config/sensitivity.toml and config/data_classes.toml (already parsed)."""
    rules = []
    for entry in sensitivity.get("rule", []):
        labels = _known_labels(entry)
        system = entry["system"]
        rules.append(
            CodeRule(
                systems=frozenset([system] if isinstance(system, str) else system),
                prefixes=tuple(str(p).replace(".", "").upper() for p in entry.get("prefixes", [])),
                codes=frozenset(str(c) for c in entry.get("codes", [])),
                exclude=tuple(str(p).replace(".", "").upper() for p in entry.get("exclude", [])),
                labels=labels,
            )
        )
    text_rules = tuple(
        TextRule(
            _words(entry["terms"]), _known_labels(entry), _words(entry["exclude"]) if entry.get("exclude") else None
        )
        for entry in sensitivity.get("text_rule", [])
    )
    type_classes = {str(k): str(v) for k, v in classes.get("resource_types", {}).items()}
    note_classes = {str(k): str(v) for k, v in classes.get("note_types", {}).items()}
    for value in [*type_classes.values(), *note_classes.values()]:
        if value not in DATA_CLASSES:
            raise ValueError(f"unknown data class {value!r} in the data class configuration")
    return LabelRules(tuple(rules), type_classes, note_classes, str(classes.get("default", "STATUS")), text_rules)


def _known_labels(entry: Mapping[str, Any]) -> frozenset[str]:
    labels = frozenset(entry["labels"])
    unknown = labels - set(LABEL_SYSTEM)
    if unknown:
        raise ValueError(
            f"sensitivity rule {entry.get('system') or entry.get('terms')}: unknown labels {sorted(unknown)}"
        )
    return labels


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


def _texts(resource: Mapping[str, Any], elements: tuple[str, ...], codes: bool = False) -> Iterator[str]:
    """The words of these CodeableConcept elements: their text and their codings' displays (and,
    with `codes`, the codes themselves, for local codes such as `counseling-note`)."""
    keys = ("display", "code") if codes else ("display",)
    for element in elements:
        value = resource.get(element)
        for concept in value if isinstance(value, list) else [value]:
            if not isinstance(concept, dict):
                continue
            if isinstance(concept.get("text"), str):
                yield concept["text"]
            for coding in concept.get("coding") or []:
                for key in keys:
                    if isinstance(coding, dict) and isinstance(coding.get(key), str):
                        yield coding[key].replace("-", " ").replace("_", " ")


def sensitivity_of(resource: Mapping[str, Any], rules: LabelRules) -> frozenset[str]:
    found: set[str] = set()
    by_system = rules.by_system
    for system, code in _codings(resource):
        for rule in by_system.get(system, ()):
            if rule.matches(system, code):
                found |= rule.labels
    if rules.text_rules:
        for text in _texts(resource, TEXT_ELEMENTS):
            for text_rule in rules.text_rules:
                if text_rule.matches(text):
                    found |= text_rule.labels
    if found & (SUD_LABELS | MENTAL_HEALTH_LABELS | {PSYCHOTHERAPY_NOTE}):
        found.add(RESTRICTED)
    return frozenset(found)


def _document_labels(resource: Mapping[str, Any]) -> frozenset[str]:
    """A DocumentReference's own securityLabel (R4: CodeableConcepts) counts as its labels."""
    if resource.get("resourceType") != "DocumentReference":
        return frozenset()
    return frozenset(
        ALIASES.get(code, code)
        for system, code in _codings(resource.get("securityLabel"))
        if system in (CONFIDENTIALITY, LABEL_SYSTEM.get(code))
    )


def is_note(resource: Mapping[str, Any], labels: frozenset[str]) -> bool:
    """A counseling or psychotherapy note as EHRs send one: labelled a psychotherapy note, very
    restricted (V), or a document whose type or category names counseling or psychotherapy."""
    if PSYCHOTHERAPY_NOTE in labels:
        return True
    if resource.get("resourceType") not in DOCUMENT_TYPES:
        return False
    if VERY_RESTRICTED in labels or resource.get("confidentiality") == VERY_RESTRICTED:
        return True
    return any(NOTE_WORDS.search(text) for text in _texts(resource, ("type", "category"), codes=True))


def data_class_of(resource: Mapping[str, Any], rules: LabelRules, labels: frozenset[str] = frozenset()) -> str:
    resource_type = str(resource.get("resourceType", ""))
    if resource_type in DOCUMENT_TYPES:
        for system, code in _codings(resource.get("type")):
            found = rules.note_classes.get(f"{system}|{code}")
            if found:
                return found
    if is_note(resource, labels):
        # Notes of a Part 2 program (or about SUD treatment) are SUD counseling notes (§2.31(b)).
        return CN if PART2 in labels or labels & SUD_LABELS else PSYNOTE
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
    return security_labels(dict(resource))


def names_a_program(resource: Mapping[str, Any], programs: frozenset[str]) -> bool:
    """The resource refers to a Part 2 program (as service provider, managing organization, care
    team member, author, ...): it says the person is, or was, that program's patient."""
    if not programs:
        return False
    stack: list[Any] = [resource]
    while stack:
        current = stack.pop()
        if type(current) is dict:
            reference = current.get("reference")
            if type(reference) is str and reference in programs:
                return True
            stack.extend(v for k, v in current.items() if k != "meta" and type(v) in (dict, list))
        elif type(current) is list:
            stack.extend(v for v in current if type(v) in (dict, list))
    return False


def labels_for(
    resource: Mapping[str, Any],
    rules: LabelRules,
    *,
    part2_source: bool,
    previous: frozenset[str] = frozenset(),
    part2_programs: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """All labels the version must carry."""
    labels = set(sender_labels(resource)) | _document_labels(resource) | sensitivity_of(resource, rules)
    if part2_source or PART2 in labels or names_a_program(resource, part2_programs):
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


def provenance_targets(resource: Mapping[str, Any], programs: frozenset[str]) -> list[str]:
    """A Provenance that traces its targets to a Part 2 program (an agent, or on whose behalf):
    the targets are Part 2 data wherever they are held (a copy keeps NORDSCLCD)."""
    if resource.get("resourceType") != "Provenance" or not programs:
        return []
    agents = [a for a in resource.get("agent") or [] if isinstance(a, dict)]
    if not any(names_a_program({"who": a.get("who"), "onBehalfOf": a.get("onBehalfOf")}, programs) for a in agents):
        return []
    return [
        str(t["reference"])
        for t in resource.get("target") or []
        if isinstance(t, dict) and isinstance(t.get("reference"), str)
    ]


__all__ = [
    "PART2_PROVENANCE",
    "LabelRules",
    "apply_labels",
    "data_class_of",
    "is_note",
    "labels_for",
    "names_a_program",
    "propagation_targets",
    "provenance_targets",
    "rules_from_mapping",
    "sender_labels",
    "sensitivity_of",
]
