"""FHIR date, dateTime and instant values as closed UTC ranges [low, high] (R4 search.html#date).

A partial date stands for the whole period it names: `2020-03` is all of March 2020. Values
without a time zone are taken as UTC. Ranges are naive UTC datetimes, as the store keeps them.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

from gateway.clock import Clock

_DATE = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2})(:(?P<minute>\d{2})(:(?P<second>\d{2})(?P<fraction>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_LATEST = timedelta(microseconds=1)


def _shifted(moment: datetime, delta: timedelta) -> datetime:
    """moment + delta, held at the ends of the calendar: year 1 and year 9999 are valid FHIR
    dates, and the range of 9999-12-31 ends at the last instant Python can name."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def date_range(value: str) -> tuple[datetime, datetime] | None:
    """The range a FHIR date/dateTime/instant covers, or None when it is not one."""
    match = _DATE.match(value)
    if not match:
        return None
    try:
        year = int(match["year"])
        if match["month"] is None:
            return datetime(year, 1, 1), datetime(year, 12, 31, 23, 59, 59, 999999)
        month = int(match["month"])
        if match["day"] is None:
            last_day = calendar.monthrange(year, month)[1]
            return datetime(year, month, 1), datetime(year, month, last_day, 23, 59, 59, 999999)
        day = int(match["day"])
        if match["hour"] is None:
            start = datetime(year, month, day)
            return start, start.replace(hour=23, minute=59, second=59, microsecond=999999)
        hour = int(match["hour"])
        minute = int(match["minute"] or 0)
        second = int(match["second"] or 0)
        fraction = match["fraction"]
        microsecond = int((fraction[1:] + "000000")[:6]) if fraction else 0
        start = datetime(year, month, day, hour, minute, second, microsecond)
        tz = match["tz"]
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
            start = _shifted(start, -sign * offset)
        if fraction:
            precision = timedelta(microseconds=10 ** max(0, 6 - len(fraction[1:])))
        elif match["second"] is not None:
            precision = timedelta(seconds=1)
        elif match["minute"] is not None:
            precision = timedelta(minutes=1)
        else:
            precision = timedelta(hours=1)
        return start, _shifted(start, precision - _LATEST)
    except ValueError:
        return None


def utc_now(clock: Clock) -> datetime:
    """Now on the gateway's clock, naive UTC, truncated to milliseconds (the precision
    meta.lastUpdated carries)."""
    now = clock.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def instant(moment: datetime) -> str:
    """A naive UTC datetime as a FHIR instant."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_instant(value: str) -> datetime:
    """A FHIR instant (as we write them) back to naive UTC."""
    found = date_range(value)
    if found is None:
        raise ValueError(f"not an instant: {value!r}")
    return found[0]
