"""What an EHR integrator sees of their recent pushes: each request accepted or refused (with the
gateway's reason), and the resources written with the labels the gateway applied (Part 2 or not).
From the audit trail and the version history; nothing about anyone else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from gateway.store.schema import audit_event, resource_version

WRITES = ("transaction", "batch", "create", "update", "patch", "delete", "conditional-update", "conditional-delete")


def conformance_report(database: Engine, client_id: str, limit: int = 50) -> dict[str, Any]:
    recipient = f"client:{client_id}"
    with database.connect() as connection:
        pushes = connection.execute(
            select(audit_event.c.recorded_at, audit_event.c.outcome, audit_event.c.body)
            .where(audit_event.c.recipient == recipient, audit_event.c.interaction.in_(WRITES))
            .order_by(audit_event.c.seq.desc()).limit(limit)
        ).all()  # fmt: skip
        written = connection.execute(
            select(resource_version.c.type, resource_version.c.fhir_id, resource_version.c.version,
                   resource_version.c.method, resource_version.c.last_updated, resource_version.c.security)
            .where(resource_version.c.source == recipient)
            .order_by(resource_version.c.pk.desc()).limit(limit)
        ).all()  # fmt: skip
    return {
        "client_id": client_id,
        "pushes": [
            {"at": at.isoformat() + "Z", "request": (body or {}).get("request"), "status": (body or {}).get("status"),
             "accepted": outcome not in ("REFUSED", "ERROR"),
             "reason": ((body or {}).get("refusal") or {}).get("reason"),
             "problems": ((body or {}).get("refusal") or {}).get("problems") or []}
            for at, outcome, body in pushes
        ],
        "written": [
            {"resource": f"{rtype}/{fhir_id}", "version": version, "method": method, "at": at.isoformat() + "Z",
             "labels": sorted({str(c.get("code")) for c in security or [] if isinstance(c, dict)}),
             "part2": any(isinstance(c, dict) and c.get("code") == "42CFRPart2" for c in security or [])}
            for rtype, fhir_id, version, method, at, security in written
        ],
    }  # fmt: skip
