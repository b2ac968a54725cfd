"""Incremental sync of one source: per resource type, `_lastUpdated=ge<cursor>` searches sorted by
`_lastUpdated`, `next` links followed only on the source's own base URL; each page is imported
through the same pipeline as pushed data (validation, labels from the source, versions) as the
source organization, and the cursor advances only after the page is committed. A crash resumes
from the last committed page: nothing lost, and the page read again changes nothing (an update
with the same content keeps its version). `ge`, not `gt`: resources that share the cursor's
instant across a page boundary are read again rather than skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty, Queue
from typing import Any

import orjson
from sqlalchemy.dialects import postgresql, sqlite

from gateway.fhir.context import Requester
from gateway.fhir.engine import Engine
from gateway.importer import Importer, ImportSummary, Refusal, upsert_entry
from gateway.pull.client import PullError, SourceClient
from gateway.pull.sources import Source, Sources
from gateway.store.database import writing
from gateway.store.schema import pull_cursor

PAGE = 1000  # the most a gateway answers (max_page_size); fewer round trips
AHEAD = 4  # pages fetched ahead of the import: a slow page at the source is waited for once, not at every page


@dataclass
class SyncResult:
    summary: ImportSummary = field(default_factory=ImportSummary)
    pages: int = 0
    error: str | None = None

    @property
    def refused(self) -> list[str]:
        """What the source sent that was refused, without any value it held (the status is the
        operators')."""
        return [str(r) for r in self.summary.refusals]


def sync_source(engine: Engine, sources: Sources, source: Source, client: SourceClient, now: datetime) -> SyncResult:
    """Pull what changed at the source since its cursors; record how it went on the source."""
    result = SyncResult()
    requester = Requester(source=f"pull:{source.source_id}", organization=source.organization,
                          part2_program=source.part2_program)  # fmt: skip
    importer = Importer(engine, f"pull:{source.source_id}", result.summary, None, requester)
    cursors = {t: sources.cursor(source.source_id, t) for t in source.resource_types}
    try:
        for resource_type, page in _pages(source, client, cursors):
            resources = [e["resource"] for e in page.get("entry") or []
                         if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                         and e["resource"].get("resourceType") == resource_type]  # fmt: skip
            importer.run_chunked([upsert_entry(_as_received(r)) for r in resources],
                                 f"{source.source_id} {resource_type}")  # fmt: skip
            newest = max((str((r.get("meta") or {}).get("lastUpdated") or "") for r in resources), default="")
            if newest:
                _advance(sources, source.source_id, resource_type, newest, now)  # only after the page is in
            result.pages += 1
        for resource_type, cursor in cursors.items():
            if cursor:
                _deletions(source, client, importer, resource_type, cursor, result)
    except PullError as error:
        result.error = str(error)
    sources.record_run(source.source_id, now, result.error, result.refused)
    return result


def _pages(
    source: Source, client: SourceClient, cursors: dict[str, str | None]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every page of every type, in order, fetched up to AHEAD pages ahead by a thread of its own:
    the source's time and the import's overlap (across types too). An error is raised where the
    page it spoiled would have been."""
    ahead: Queue[tuple[str, dict[str, Any]] | BaseException | None] = Queue(maxsize=AHEAD)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for resource_type, cursor in cursors.items():
                params: dict[str, str] | None = {"_sort": "_lastUpdated", "_count": str(PAGE)}
                if cursor and params is not None:
                    params["_lastUpdated"] = f"ge{cursor}"
                url: str | None = f"{source.base_url}/{resource_type}"
                while url and not stop.is_set():
                    page = client.get(url, params)
                    if page.get("resourceType") != "Bundle":
                        raise PullError(f"{url}: a search answered with {page.get('resourceType')!r}, not a Bundle")
                    ahead.put((resource_type, page))
                    url, params = _next(page, source.base_url), None
            ahead.put(None)
        except BaseException as error:  # handed to the importing side, which raises it
            ahead.put(error)

    fetcher = threading.Thread(target=fetch, name="pull-fetch", daemon=True)
    fetcher.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while fetcher.is_alive():  # let a fetcher blocked on a full queue finish
            try:
                ahead.get_nowait()
            except Empty:
                fetcher.join(0.05)


def _deletions(source: Source, client: SourceClient, importer: Importer, resource_type: str, since: str,
               result: SyncResult) -> None:  # fmt: skip
    """Deletions at the source since the cursor this run started from (a deletion comes after the
    last update the gateway saw), from the type's `_history`: applied here to what this source
    sent, never to anyone else's records. Deleting again what is deleted changes nothing."""
    url: str | None = f"{source.base_url}/{resource_type}/_history"
    params: dict[str, str] | None = {"_since": since, "_count": str(PAGE)}
    deleted: list[str] = []
    while url:
        page = client.get(url, params)
        if page.get("resourceType") != "Bundle":
            raise PullError(f"{url}: a history answered with {page.get('resourceType')!r}, not a Bundle")
        for entry in page.get("entry") or []:
            request = entry.get("request") if isinstance(entry, dict) else None
            target = str((request or {}).get("url") or "")
            if (
                isinstance(request, dict)
                and request.get("method") == "DELETE"
                and target.startswith(f"{resource_type}/")
            ):
                deleted.append(target.split("/_history")[0])
        result.pages += 1
        url = _next(page, source.base_url)
        params = None
    ours = f"pull:{source.source_id}"
    with importer.engine.store.unit_of_work(False) as (repository, _):
        found = [repository.read(resource_type, d.split("/", 1)[1]) for d in dict.fromkeys(deleted)]
    mine = [f"{resource_type}/{f.id}" for f in found if f is not None and not f.deleted and f.source == ours]
    importer.run_entries([{"request": {"method": "DELETE", "url": d}} for d in mine],
                         f"{source.source_id} {resource_type} deletions", True)  # fmt: skip


def _as_received(resource: dict[str, Any]) -> dict[str, Any]:
    """The source's resource, without its version bookkeeping (ours is the gateway's own)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    found = {k: v for k, v in resource.items() if k != "meta"}
    return {**found, "meta": meta} if meta else found


def _next(page: dict[str, Any], base_url: str) -> str | None:
    link = next((str(k.get("url")) for k in page.get("link") or [] if isinstance(k, dict) and k.get("relation") == "next"),
                None)  # fmt: skip
    if link is None:
        return None
    if not link.startswith(f"{base_url}/") and not link.startswith(f"{base_url}?"):
        raise PullError(f"a next link leads off the source ({link[:120]}): not followed")
    return link


def _advance(sources: Sources, source_id: str, resource_type: str, newest: str, now: datetime) -> None:
    values = {"source_id": source_id, "resource_type": resource_type, "last_updated": newest, "advanced_at": now}
    with writing(sources.database) as connection:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(pull_cursor).values(**values)
        connection.execute(statement.on_conflict_do_update(
            index_elements=["source_id", "resource_type"],
            set_={"last_updated": statement.excluded.last_updated, "advanced_at": statement.excluded.advanced_at}))  # fmt: skip


BULK_CHUNK = 500


def bulk_load(engine: Engine, sources: Sources, source: Source, client: SourceClient, now: datetime) -> SyncResult:
    """A source's whole record (or what changed since the oldest cursor) through its Bulk Data
    `$export`: kick-off, status polled as its Retry-After asks, each NDJSON file streamed into the
    importer as the source organization in chunks. The cursors move to the export's
    transactionTime once every file is in; incremental sync goes on from there."""
    result = SyncResult()
    requester = Requester(source=f"pull:{source.source_id}", organization=source.organization,
                          part2_program=source.part2_program)  # fmt: skip
    importer = Importer(engine, f"pull:{source.source_id}", result.summary, None, requester)
    cursors = [c for c in (sources.cursor(source.source_id, t) for t in source.resource_types) if c]
    params = {"_type": ",".join(source.resource_types), **({"_since": min(cursors)} if cursors else {})}
    try:
        manifest = client.manifest(client.kick_off(params))
        for output in manifest["output"]:
            if not isinstance(output, dict):
                raise PullError("the export's manifest lists an output that is not an object")
            resource_type, url = str(output.get("type")), str(output.get("url"))
            if resource_type not in source.resource_types:
                continue
            chunk: list[dict[str, Any]] = []
            for line in client.lines(url):
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError:
                    result.summary.refusals.append(Refusal(f"{source.source_id} {resource_type} (bulk)", None,
                                                           ("structure at a line that is not JSON",)))  # fmt: skip
                    continue
                if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
                    chunk.append(upsert_entry(_as_received(resource)))
                if len(chunk) >= BULK_CHUNK:
                    importer.run_chunked(chunk, f"{source.source_id} {resource_type} (bulk)")
                    chunk = []
            importer.run_chunked(chunk, f"{source.source_id} {resource_type} (bulk)")
            result.pages += 1
        moment = str(manifest.get("transactionTime") or "")
        if moment:
            for resource_type in source.resource_types:
                _advance(sources, source.source_id, resource_type, moment, now)
    except PullError as error:
        result.error = str(error)
    sources.record_run(source.source_id, now, result.error, result.refused)
    return result
