"""Runs the sources when they are due, inside the gateway's own workers: no second kind of server.
Every worker has a scheduler; only the one holding the lease in the database pulls, so two workers
never pull the same page. A leader that dies stops renewing; another takes over when the lease
runs out."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.clock import Clock
from gateway.fhir.dates import utc_now
from gateway.fhir.engine import Engine as FhirEngine
from gateway.pull.client import SourceClient
from gateway.pull.sources import Source, Sources
from gateway.pull.sync import SyncResult, sync_source
from gateway.store.database import writing
from gateway.store.schema import pull_lease

LEASE = "pull"
log = logging.getLogger("gateway.pull")


class Scheduler:
    def __init__(self, database: Engine, engine: FhirEngine, clock: Clock, lease_seconds: int = 120,
                 tick_seconds: float = 30.0, client: Callable[[Source], SourceClient] = SourceClient) -> None:  # fmt: skip
        self.database = database
        self.engine = engine
        self.clock = clock
        self.sources = Sources(database)
        self.lease = timedelta(seconds=lease_seconds)
        self.tick_seconds = tick_seconds
        self.client = client
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one tick at a time in this worker

    def lead(self, now: datetime) -> bool:
        """Take or renew the lease; whether this worker holds it now."""
        expires = now + self.lease
        with writing(self.database) as connection:
            taken = connection.execute(
                update(pull_lease)
                .where(pull_lease.c.name == LEASE, or_(pull_lease.c.holder == self.holder, pull_lease.c.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            ).rowcount  # fmt: skip
            if taken:
                return True
            if connection.execute(select(pull_lease.c.name).where(pull_lease.c.name == LEASE)).first() is None:
                try:
                    connection.execute(insert(pull_lease).values(name=LEASE, holder=self.holder, expires_at=expires))
                    return True
                except IntegrityError:  # another worker inserted it first
                    return False
        return False

    def due(self, now: datetime) -> list[Source]:
        """Enabled sources whose last run (success or error) is older than their interval, and
        whose circuit is not open."""
        found = []
        for source in self.sources.all():
            last = max((t for t in (source.last_success_at, source.last_error_at) if t is not None), default=None)
            if source.disabled or (source.open_until is not None and source.open_until > now):
                continue
            if last is None or last + timedelta(minutes=source.every_minutes) <= now:
                found.append(source)
        return found

    def tick(self, now: datetime | None = None) -> dict[str, SyncResult]:
        """One round: if this worker leads, run each due source; what each run did."""
        with self._lock:
            now = now or utc_now(self.clock)
            if not self.lead(now):
                return {}
            ran = {}
            for source in self.due(now):
                ran[source.source_id] = sync_source(self.engine, self.sources, source, self.client(source), now)
                if ran[source.source_id].error:
                    log.warning("pull from %s failed: %s", source.source_id, ran[source.source_id].error)
            return ran

    def start(self) -> None:
        threading.Thread(target=self._run, name="gateway-pull", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # a bad round must not end the scheduler; the next one tries again
                log.exception("the pull scheduler's round failed")
