"""The gateway's one clock.

Every time the gateway reads (consent periods and revocations, a decision's `as_of`, token, code,
launch and session expiry, the audit record's time, `meta.lastUpdated`) comes from the `Clock`
the application was built with. In production that is the system clock. A **sandbox** gateway
(`sandbox = true`, for EHR integrators and conformance suites; refused with a non-loopback bind
unless `sandbox_allow_non_loopback` is also set) runs on the system clock plus an offset that an
operator sets (`gateway clock set|advance|reset|show`, or `/admin/clock`): it is kept in the
store (gateway/store/clock.py), so that every worker and every process of the deployment moves
together, and it moves on in real time from where it was set. Caches keep measuring real elapsed time (time.monotonic):
they are not about what time it is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1)
_PART = re.compile(r"(\d+)([wdhms])")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class Clock:
    """The system clock: now, as naive UTC (the store keeps naive UTC)."""

    sandbox = False

    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    def timestamp(self) -> float:
        """Seconds since the epoch, as `time.time()` would say on this clock."""
        return (self.now() - EPOCH).total_seconds()


SYSTEM_CLOCK = Clock()


def parse_duration(text: str) -> timedelta:
    """`90d`, `2h30m`, `-1d`, `45s`, `1w`, or ISO 8601 (`P30D`, `PT2H`, `-P1D`)."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    body = value.lstrip("+-")
    iso = _ISO.match(body)
    if iso and body != "P":
        weeks, days, hours, minutes, seconds = (int(x or 0) for x in iso.groups())
        return sign * timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    parts = _PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"{text!r} is not a duration: write 90d, 2h30m, -1d, or ISO 8601 such as P30D")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_UNITS[unit]: int(number)})
    return sign * total


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time (a zone is converted; none means UTC) as naive UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an instant: write 2027-03-01T09:00:00Z or 2027-03-01") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
