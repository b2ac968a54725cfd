"""Bundles the server builds: searchset and history (R4 bundle.html, http.html#history)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from gateway.fhir.dates import instant
from gateway.fhir.errors import Issue, operation_outcome
from gateway.fhir.repository import StoredResource


def page_links(
    base_url: str, path: str, params: list[tuple[str, str]], count: int, offset: int, total: int | None, returned: int
) -> list[dict[str, str]]:
    """self/first/previous/next links, always absolute on our own base URL (never the Host header)."""

    def link(relation: str, page_offset: int) -> dict[str, str]:
        query = [*params, ("_count", str(count))]
        if page_offset:
            query.append(("_offset", str(page_offset)))
        return {"relation": relation, "url": f"{base_url}/{path}?{urlencode(query)}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    more = (offset + returned < total) if total is not None else returned == count
    if more and returned:
        links.append(link("next", offset + returned))  # a page cut short by size goes on from its end
    return links


def entry_for(base_url: str, item: StoredResource, mode: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{item.type}/{item.id}"}
    if item.content is not None:
        entry["resource"] = item.content
    if mode:
        entry["search"] = {"mode": mode}
    return entry


def searchset(
    base_url: str,
    matches: list[StoredResource],
    included: list[StoredResource],
    total: int | None,
    links: list[dict[str, str]],
    warnings: list[Issue],
    now: datetime,
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    entries = [entry_for(base_url, item, "match") for item in matches]
    entries += [entry_for(base_url, item, "include") for item in included]
    if warnings:
        entries.append({"resource": operation_outcome(warnings), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def history(
    base_url: str, versions: list[StoredResource], total: int, links: list[dict[str, str]], now: datetime
) -> dict[str, Any]:
    entries = []
    for item in versions:
        entry = entry_for(base_url, item)
        if item.deleted:
            request = {"method": "DELETE", "url": f"{item.type}/{item.id}"}
            status = "204 No Content"
        elif item.method == "POST":
            request = {"method": "POST", "url": item.type}
            status = "201 Created"
        else:
            request = {"method": item.method or "PUT", "url": f"{item.type}/{item.id}"}
            status = "201 Created" if item.version == 1 else "200 OK"
        entry["request"] = request
        entry["response"] = {"status": status, "etag": item.etag, "lastModified": instant(item.last_updated)}
        entries.append(entry)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": "history",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def withhold_entries(bundle: dict[str, Any], keep: list[dict[str, Any]]) -> dict[str, Any]:
    """The Bundle with only `keep` of its entries, shaped exactly as if the others had never been
    stored: `total` counts the kept matches and there is no `next` link (it could only lead to
    what was withheld, or tell that something was)."""
    if len(keep) == len(bundle.get("entry") or []):
        return bundle
    shaped = {key: value for key, value in bundle.items() if key != "entry"}
    if "total" in shaped:
        shaped["total"] = sum(1 for e in keep if (e.get("search") or {}).get("mode", "match") == "match")
    if "link" in shaped:
        shaped["link"] = [link for link in shaped["link"] if link.get("relation") != "next"]
    if keep:
        shaped["entry"] = keep
    return shaped
