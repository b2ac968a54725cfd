"""The audit package: a patient's or a period's audit records and ledger rows, with what proves
them, for a state or federal audit; and its offline check (`gateway audit verify --file`).

Each selected row travels with the exact content its hash covers, so that its hash can be
recomputed. The chain between the first and the last selected row travels as a skeleton of
(seq, prev_hash, hash) without content (other people's records stay out), so that a row removed,
changed or reordered anywhere in that stretch shows. The package also names the last hash of each
chain when it was made (the anchor), to compare with a later `gateway audit verify`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from gateway.consent.audit import CHAINED, canonical, chain_hash, chained_content
from gateway.store.schema import audit_event, audit_event_patient, disclosure

FORMAT = "crisis-gateway-audit-package/1"
TABLES = {"audit_event": audit_event, "disclosure": disclosure}


def build_package(
    connection: Connection, patient: str | None, since: datetime | None, until: datetime | None, now: datetime
) -> dict[str, Any]:
    """The package for one patient (named alone or among several in a record) and/or a period."""
    package: dict[str, Any] = {"format": FORMAT, "created": now.isoformat() + "Z",
                               "scope": {"patient": patient, "since": _iso(since), "until": _iso(until)},
                               "chains": {}}  # fmt: skip
    for name, table in TABLES.items():
        time_column = table.c.recorded_at if name == "audit_event" else table.c.disclosed_at
        query = select(table).order_by(table.c.seq)
        if patient:
            if name == "audit_event":
                many = select(audit_event_patient.c.audit_seq).where(audit_event_patient.c.patient == patient)
                query = query.where(or_(table.c.patient == patient, table.c.seq.in_(many)))
            else:
                query = query.where(table.c.patient == patient)
        if since:
            query = query.where(time_column >= since)
        if until:
            query = query.where(time_column < until)
        rows = list(connection.execute(query).mappings().all())
        skeleton: list[list[Any]] = []
        if rows:
            stretch = select(table.c.seq, table.c.prev_hash, table.c.hash).where(
                table.c.seq >= rows[0]["seq"], table.c.seq <= rows[-1]["seq"]).order_by(table.c.seq)  # fmt: skip
            skeleton = [[int(s), str(p), str(h)] for s, p, h in connection.execute(stretch)]
        last = connection.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
        package["chains"][name] = {
            "rows": [{"seq": int(row["seq"]), "prev_hash": row["prev_hash"], "hash": row["hash"],
                      "content": orjson.loads(canonical(chained_content(name, row)))} for row in rows],
            "skeleton": skeleton,
            "anchor": {"seq": int(last[0]), "hash": str(last[1])} if last else None,
        }  # fmt: skip
    return package


def verify_package(package: Any) -> tuple[list[str], list[str]]:
    """(what holds, what does not): each row's hash recomputed from its content, each row in the
    skeleton, the skeleton one unbroken chain, and the skeleton's end at or before the anchor."""
    held: list[str] = []
    problems: list[str] = []
    if not isinstance(package, dict) or package.get("format") != FORMAT:
        return held, [f"not an audit package (format {FORMAT})"]
    for name in CHAINED:
        chain = (package.get("chains") or {}).get(name)
        if not isinstance(chain, dict):
            problems.append(f"{name}: missing")
            continue
        rows, skeleton, anchor = chain.get("rows") or [], chain.get("skeleton") or [], chain.get("anchor")
        links = {(s[0], s[1], s[2]) for s in skeleton if isinstance(s, list) and len(s) == 3}
        bad = [
            r.get("seq") for r in rows if chain_hash(str(r.get("prev_hash")), r.get("content") or {}) != r.get("hash")
        ]
        if bad:
            problems.append(f"{name}: the content of record(s) {', '.join(map(str, bad))} does not match its hash")
        outside = [r.get("seq") for r in rows if (r.get("seq"), r.get("prev_hash"), r.get("hash")) not in links]
        if outside:
            problems.append(f"{name}: record(s) {', '.join(map(str, outside))} are not in the chain's skeleton")
        broken = [skeleton[i][0] for i in range(1, len(skeleton))
                  if skeleton[i][1] != skeleton[i - 1][2] or skeleton[i][0] <= skeleton[i - 1][0]]  # fmt: skip
        if broken:
            problems.append(f"{name}: the chain breaks at record {broken[0]} (a record was removed or changed)")
        if skeleton and (not isinstance(anchor, dict) or skeleton[-1][0] > int(anchor.get("seq", -1))):
            problems.append(f"{name}: the chain runs past its anchor")
        if not (bad or outside or broken):
            span = f"records {skeleton[0][0]} to {skeleton[-1][0]}" if skeleton else "no records"
            held.append(
                f"{name}: {len(rows)} selected records verify; the chain is unbroken over {span}"
                + (f"; anchor {anchor['seq']} {anchor['hash'][:16]}…" if isinstance(anchor, dict) else "")
            )
    return held, problems


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None
