"""The sandbox clock: the system clock plus an offset kept in the store (gateway/clock.py says
when it is used)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from gateway.clock import Clock
from gateway.store.schema import sandbox_clock


class SandboxClock(Clock):
    """The system clock plus the offset stored in `sandbox_clock` (none: no offset). The offset is
    read on every call: a clock an operator moved is moved for the very next request."""

    sandbox = True

    def __init__(self, database: Engine) -> None:
        self.database = database

    def offset(self) -> timedelta:
        with self.database.connect() as connection:
            found = connection.execute(select(sandbox_clock.c.offset_us).where(sandbox_clock.c.id == 1)).scalar()
        return timedelta(microseconds=int(found or 0))

    def now(self) -> datetime:
        return super().now() + self.offset()

    # -- what an operator does ---------------------------------------------------------------------
    def set(self, moment: datetime, by: str) -> datetime:
        """From now on the clock reads `moment`, and runs on from it."""
        return self._store(moment - super().now(), by)

    def advance(self, delta: timedelta, by: str) -> datetime:
        return self._store(self.offset() + delta, by)

    def reset(self, by: str) -> datetime:
        return self._store(timedelta(0), by)

    def _store(self, offset: timedelta, by: str) -> datetime:
        microseconds = offset // timedelta(microseconds=1)
        with self.database.begin() as connection:
            connection.execute(delete(sandbox_clock))
            connection.execute(insert(sandbox_clock).values(id=1, offset_us=microseconds, set_at=super().now(),
                                                            set_by=by))  # fmt: skip
        return self.now()
