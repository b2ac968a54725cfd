"""The emergency audit spool: where an emergency access's audit record goes when the store cannot
take it.

Nothing leaves the gateway before its audit record is durable. Routine requests fail closed when
the audit cannot be written (503). A medical emergency (§2.51) must not: its record, with its
ledger rows, review item and §2.51(c) Communications, is written to a local file instead (written
in full, fsync'd, then renamed into place, so a file in the spool is always whole), and the
emergency set goes out. `Engine.replay_spool` (automatically once the store takes writes again,
and `gateway audit replay`) appends each spooled record to the hash chain, creates its
Communications and removes the file; the record keeps the instant of the access and says that it
was spooled.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.consent.audit import AuditRecord

CHECK_SECONDS = 5.0  # how often a worker looks for spooled records to replay


class AuditSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def write(self, record: AuditRecord, follow_ups: list[dict[str, Any]]) -> Path:
        """Durably: the whole file is on disk, and its name in the directory, before this returns."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{record.recorded_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex}.json"
        final = self.directory / name
        partial = self.directory / f".{name}.partial"
        body = {**asdict(record), "recorded_at": record.recorded_at.isoformat(), "follow_ups": follow_ups}
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, orjson.dumps(body))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(partial, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself is durable
        finally:
            os.close(directory)
        return final

    def pending(self) -> list[Path]:
        """Spooled records, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix == ".json" and not p.name.startswith("."))

    def due(self) -> bool:
        """Whether to look for records to replay now (at most every CHECK_SECONDS per worker)."""
        with self._lock:
            if time.monotonic() - self._checked_at < CHECK_SECONDS:
                return False
            self._checked_at = time.monotonic()
        return bool(self.pending())

    @staticmethod
    def read(path: Path) -> tuple[AuditRecord, list[dict[str, Any]]]:
        data = orjson.loads(path.read_bytes())
        follow_ups = data.pop("follow_ups", [])
        data["recorded_at"] = datetime.fromisoformat(data["recorded_at"])
        data["body"] = {**data["body"], "spooled": True}
        return AuditRecord(**data), follow_ups
