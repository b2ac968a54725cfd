"""Bulk Data export (FHIR Bulk Data Access 2.0, system level), which the ONC rule expects of a
certified FHIR server, for Backend Services clients:

- GET /fhir/$export[?_type=A,B][&_since=instant]  with `Prefer: respond-async`: 202 and a
  Content-Location to poll. Each type is read with the client's token through the engine's own
  search, so every resource goes out through the release hook and every page is audited.
- GET /fhir/$export-status/<job>  200 with the manifest (`requiresAccessToken`: true).
- GET /fhir/$export-file/<job>/<Type>.ndjson  the file, streamed.
- DELETE /fhir/$export-status/<job>  removes the job and its files.

Only the client that asked may read a job. The job runs when it is asked for (the status is
complete at the first poll); files live under `var/exports/<job>/` and are removed a day after
(`Expires` on the status answer), at the next kick-off.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from gateway.fhir.context import FhirRequest, Requester
from gateway.fhir.dates import instant
from gateway.fhir.engine import Engine
from gateway.fhir.errors import BadRequest, Forbidden, NotFound
from gateway.fhir.models import RESOURCE_TYPES
from gateway.settings import PROJECT_ROOT

EXPORTS = PROJECT_ROOT / "var" / "exports"
JOB = re.compile(r"^[0-9a-f]{32}$")
KEPT_SECONDS = 24 * 3600  # an export's files: long enough to download, not a second copy of the record kept for good
DEFAULT_TYPES = ("Patient", "EpisodeOfCare", "CareTeam", "Condition", "MedicationStatement", "CarePlan", "Flag",
                 "Encounter", "Observation", "Consent")  # fmt: skip


def kick_off(engine: Engine, requester: Requester, base_url: str, types: str | None, since: str | None,
             prefer: str | None) -> str:  # fmt: skip
    """Run the export for the requester; the job's id."""
    if "respond-async" not in (prefer or ""):
        raise BadRequest("a bulk export needs the header Prefer: respond-async", expression="Prefer")
    if requester.username or not requester.client_id:
        raise Forbidden("bulk export is for Backend Services clients (system/ scopes)")
    chosen = tuple(t.strip() for t in (types or ",".join(DEFAULT_TYPES)).split(",") if t.strip())
    unknown = [t for t in chosen if t not in RESOURCE_TYPES]
    if unknown:
        raise BadRequest(f"_type names types this server does not have: {', '.join(unknown)}", expression="_type")
    remove_expired()
    job = uuid.uuid4().hex
    folder = EXPORTS / job
    folder.mkdir(parents=True)
    try:
        _write(engine, requester, base_url, chosen, since, folder, job)
    except BaseException:  # a refusal half-way (a scope, a bad _since): no half-written job stays behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job


def _write(engine: Engine, requester: Requester, base_url: str, chosen: tuple[str, ...], since: str | None,
           folder: Path, job: str) -> None:  # fmt: skip
    # transactionTime is when the export starts: what changes while it runs is at or after it, so
    # a client's next `_since` finds it again rather than missing it.
    with engine.store.unit_of_work(False) as (_, now):
        started = instant(now)
    output = []
    for resource_type in chosen:
        count = 0
        with (folder / f"{resource_type}.ndjson").open("wb") as file:
            for resource in _released(engine, requester, resource_type, since):
                file.write(orjson.dumps(resource) + b"\n")
                count += 1
        if count:
            output.append({"type": resource_type, "url": f"{base_url}/$export-file/{job}/{resource_type}.ndjson",
                           "count": count})  # fmt: skip
        else:
            (folder / f"{resource_type}.ndjson").unlink()
    manifest = {"transactionTime": started, "request": f"{base_url}/$export", "requiresAccessToken": True,
                "output": output, "error": [], "owner": requester.client_id}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _released(engine: Engine, requester: Requester, resource_type: str, since: str | None) -> Iterator[dict[str, Any]]:
    """Every resource of the type the requester may have, page by page through the engine."""
    params = [("_count", "1000"), ("_sort", "_lastUpdated"), *([("_lastUpdated", f"ge{since}")] if since else [])]
    while params is not None:
        page = engine.handle(FhirRequest("GET", resource_type, params=params, requester=requester)).resource or {}
        for entry in page.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
                yield resource
        following = next((str(k.get("url")) for k in page.get("link") or [] if k.get("relation") == "next"), None)
        params = parse_qsl(urlsplit(following).query) if following else None


def remove_expired(now: float | None = None) -> list[str]:
    """Remove the jobs kept longer than KEPT_SECONDS; their ids."""
    if not EXPORTS.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - KEPT_SECONDS
    removed = []
    for folder in EXPORTS.iterdir():
        if JOB.match(folder.name) and folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def manifest(requester: Requester, job: str) -> tuple[dict[str, Any], float]:
    """The job's manifest, and when its files go (seconds since the epoch)."""
    folder = _job(requester, job)
    try:
        document: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
        until = folder.stat().st_mtime + KEPT_SECONDS
    except FileNotFoundError:  # deleted or expired since it was found
        raise NotFound("no such export") from None
    document.pop("owner", None)
    return document, until


def file(requester: Requester, job: str, name: str) -> Path:
    folder = _job(requester, job)
    if not re.match(r"^[A-Za-z]+\.ndjson$", name) or not (folder / name).is_file():
        raise NotFound(f"no file {name} in this export")
    return folder / name


def delete(requester: Requester, job: str) -> None:
    shutil.rmtree(_job(requester, job), ignore_errors=True)  # a delete racing another ends the same


def _job(requester: Requester, job: str) -> Path:
    folder = EXPORTS / job
    if not JOB.match(job):
        raise NotFound("no such export")
    try:
        expired = folder.stat().st_mtime + KEPT_SECONDS < time.time()
        owner = json.loads((folder / "manifest.json").read_text()).get("owner")
    except FileNotFoundError:  # never made, still being written, deleted or expired
        raise NotFound("no such export") from None
    if expired or owner != requester.client_id:
        raise NotFound("no such export")  # another client's export is not known to this one
    return folder
