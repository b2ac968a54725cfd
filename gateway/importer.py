"""`gateway import`: Bundles (JSON or XML), NDJSON (Bulk Data export files) and directories.

Everything goes through the engine, so imported data is validated, indexed and versioned exactly
like data pushed over HTTP. Import keeps the sender's identities: an entry with an id (or a
urn:uuid fullUrl) is written with PUT Type/id, so importing the same files again creates no new
versions. A transaction Bundle is all or nothing; NDJSON goes in chunks, and a chunk that fails is
retried resource by resource so that one bad line does not hide the good ones.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gateway.app import build_engine
from gateway.fhir.context import FhirRequest, FhirResponse, Requester
from gateway.fhir.engine import Engine
from gateway.fhir.errors import FhirError
from gateway.fhir.formats import parse_json, parse_xml
from gateway.fhir.transaction import execute_transaction
from gateway.settings import Settings
from gateway.store.database import after_bulk_load, open_database

CHUNK = 250
_KINDS = ("created", "updated", "unchanged", "failed")


@dataclass(frozen=True)
class Refusal:
    """A refused entry described by where it was, what it was and which elements were at fault,
    never by what it held: pull sources' statuses show it to operators, who may not see records."""

    where: str  # e.g. "eastside-otp Patient (entries 0-0)"
    reference: str | None  # the entry's Type/id, when it names one
    problems: tuple[str, ...]  # e.g. "code-invalid at Patient.gender"

    def __str__(self) -> str:
        return f"{self.where}{f' {self.reference}' if self.reference else ''}: {'; '.join(self.problems)}"


@dataclass
class ImportSummary:
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)  # with the diagnostics: for the operator's own import
    refusals: list[Refusal] = field(default_factory=list)  # the same, without values

    def record(self, resource_type: str, change: str) -> None:
        self.counts[resource_type][change] += 1

    def total(self, kind: str) -> int:
        return sum(counter[kind] for counter in self.counts.values())

    def line(self) -> str:
        return ", ".join(f"{self.total(kind)} {kind}" for kind in _KINDS)

    def table(self) -> str:
        rows = [f"{'type':<28}" + "".join(f"{kind:>11}" for kind in _KINDS)]
        for resource_type in sorted(self.counts):
            rows.append(f"{resource_type:<28}" + "".join(f"{self.counts[resource_type][k]:>11}" for k in _KINDS))
        rows.append(f"{'total':<28}" + "".join(f"{self.total(k):>11}" for k in _KINDS))
        return "\n".join(rows)


# Referenced before referencing: Bulk Data NDJSON points at these with conditional references,
# and Synthea's hospital/practitioner Bundles hold what its patient Bundles point at.
_LOAD_FIRST = ("Organization", "hospitalInformation", "Location", "Practitioner", "practitionerInformation",
               "PractitionerRole", "Patient")  # fmt: skip


def _load_order(path: Path) -> tuple[int, str]:
    for rank, prefix in enumerate(_LOAD_FIRST):
        if path.name.startswith(prefix) and not path.name.startswith(prefix + "Role"):
            return rank, path.name
    return len(_LOAD_FIRST), path.name


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix in (".json", ".ndjson", ".xml") and p.is_file()]
            yield from sorted(found, key=_load_order)
        else:
            yield path


def _as_upsert(entry: dict[str, Any]) -> dict[str, Any]:
    """A POST entry that carries its own identity becomes a PUT of that identity."""
    request = entry.get("request") or {}
    resource = entry.get("resource")
    if request.get("method") != "POST" or not isinstance(resource, dict) or request.get("ifNoneExist"):
        return entry
    full_url = entry.get("fullUrl") or ""
    resource_id = resource.get("id") or (
        full_url.removeprefix("urn:uuid:") if full_url.startswith("urn:uuid:") else None
    )
    if not resource_id or "/" in request.get("url", "/"):
        return entry
    entry = dict(entry)
    entry["resource"] = {**resource, "id": resource_id}
    entry["request"] = {**request, "method": "PUT", "url": f"{resource['resourceType']}/{resource_id}"}
    return entry


def upsert_entry(resource: dict[str, Any]) -> dict[str, Any]:
    if resource.get("id"):
        return {
            "resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
        }
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


class Importer:
    def __init__(
        self,
        engine: Engine,
        source: str,
        summary: ImportSummary,
        bar: tqdm[Any] | None,
        requester: Requester | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.summary = summary
        self.bar = bar
        # Who the records come from: an operator's import has no sending organization; the demo
        # loads each program's records as that program (a Part 2 program's are Part 2 data).
        self.requester = requester or Requester(source=source)

    def run_entries(self, entries: list[dict[str, Any]], label: str, one_by_one_on_failure: bool) -> None:
        if not entries:
            return
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        request = FhirRequest("POST", "", body=bundle, requester=self.requester)
        try:
            responses = execute_transaction(self.engine, request)
        except FhirError as error:
            if one_by_one_on_failure and len(entries) > 1:
                for entry in entries:
                    self.run_entries([copy.deepcopy(entry)], label, False)
                return
            diagnostics = "; ".join(
                f"{issue.diagnostics} ({', '.join(issue.expression)})" for issue in error.issues[:3]
            )
            self.summary.failures.append(f"{label}: {diagnostics}")
            reference = _entry_reference(entries[0]) if len(entries) == 1 else None
            self.summary.refusals.append(Refusal(label, reference, tuple(
                f"{issue.code} at {_element(where, reference)}" for issue in error.issues[:3]
                for where in (issue.expression or ("?",))[:1])))  # fmt: skip
            for entry in entries:
                self.summary.record(_entry_type(entry), "failed")
            self._advance(len(entries))
            return
        for entry, response in zip(entries, responses, strict=True):
            self.summary.record(_entry_type(entry), _change(response))
        self._advance(len(entries))

    def run_chunked(self, entries: list[dict[str, Any]], label: str) -> None:
        """Independent resources, a transaction per chunk; a failing chunk is retried entry by
        entry so that one bad resource does not hide the good ones."""
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            self.run_entries(chunk, f"{label} (entries {start}-{start + len(chunk) - 1})", True)

    def _advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)


def _entry_reference(entry: dict[str, Any]) -> str | None:
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("id"), str):
        return f"{_entry_type(entry)}/{resource['id']}"
    url = str((entry.get("request") or {}).get("url") or "")
    return url if re.fullmatch(r"[A-Za-z]+/[A-Za-z0-9\-.]{1,64}", url) else None


def _element(expression: str, reference: str | None) -> str:
    """`Bundle.entry[0].resource.gender` as `Patient.gender`: the element, not the Bundle around it."""
    found = re.fullmatch(r"Bundle\.entry\[\d+\]\.resource\.?(.*)", expression)
    if found is None or reference is None:
        return expression
    return ".".join(p for p in (reference.split("/")[0], found.group(1)) if p)


def _entry_type(entry: dict[str, Any]) -> str:
    resource = entry.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
        return resource["resourceType"]
    return str((entry.get("request") or {}).get("url", "?")).split("/")[0].split("?")[0]


def _change(response: FhirResponse) -> str:
    if response.change:
        return response.change
    return "updated" if response.status in (200, 204) else "created"


def _read(path: Path, max_depth: int) -> tuple[str, list[dict[str, Any]]]:
    """('transaction'|'batch'|'resources', entries) for one file."""
    data = path.read_bytes()
    if path.suffix == ".ndjson":
        resources = [parse_json(line, max_depth) for line in data.splitlines() if line.strip()]
        return "resources", [upsert_entry(r) for r in resources]
    content = parse_xml(data) if path.suffix == ".xml" else parse_json(data, max_depth)
    if content.get("resourceType") == "Bundle" and content.get("type") in ("transaction", "batch"):
        return content["type"], [_as_upsert(e) for e in content.get("entry", [])]
    if content.get("resourceType") == "Bundle" and content.get("type") != "document":
        return "resources", [upsert_entry(e["resource"]) for e in content.get("entry", []) if "resource" in e]
    return "resources", [upsert_entry(content)]


def import_paths(
    settings: Settings, paths: list[Path], *, source: str | None = None, progress: bool = True
) -> ImportSummary:
    database = open_database(settings.database_url)
    engine = build_engine(settings, database, operator=True)
    summary = ImportSummary()
    files = list(_files(paths))
    loaded: list[tuple[Path, str, list[dict[str, Any]]]] = []
    for path in files:
        try:
            kind, entries = _read(path, settings.max_json_depth)
        except (FhirError, OSError, AttributeError, KeyError, TypeError) as error:
            summary.failures.append(f"{path}: {error}")
            summary.record("unreadable-file", "failed")
            continue
        loaded.append((path, kind, entries))
    bar = tqdm(total=sum(len(e) for _, _, e in loaded), unit="res", disable=not progress, leave=False)
    for path, kind, entries in loaded:
        importer = Importer(engine, source or f"import:{path.name}", summary, bar)
        if kind == "transaction":
            importer.run_entries(entries, str(path), one_by_one_on_failure=False)
        else:
            importer.run_chunked(entries, str(path))
    bar.close()
    after_bulk_load(database)
    database.dispose()
    return summary
