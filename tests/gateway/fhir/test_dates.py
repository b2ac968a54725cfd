from datetime import datetime

import pytest

from gateway.fhir.dates import date_range, instant, parse_instant


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2020", datetime(2020, 1, 1), datetime(2020, 12, 31, 23, 59, 59, 999999)),
        ("2020-02", datetime(2020, 2, 1), datetime(2020, 2, 29, 23, 59, 59, 999999)),
        ("2020-02-03", datetime(2020, 2, 3), datetime(2020, 2, 3, 23, 59, 59, 999999)),
        ("2020-02-03T10:00:00+02:00", datetime(2020, 2, 3, 8), datetime(2020, 2, 3, 8, 0, 0, 999999)),
        ("2020-02-03T10:00Z", datetime(2020, 2, 3, 10), datetime(2020, 2, 3, 10, 0, 59, 999999)),
    ],
)
def test_date_ranges(value: str, low: datetime, high: datetime) -> None:
    assert date_range(value) == (low, high)


@pytest.mark.parametrize("value", ["2020-13", "2020-02-30", "yesterday", "20200101"])
def test_invalid_dates(value: str) -> None:
    assert date_range(value) is None


def test_instant_round_trip() -> None:
    moment = datetime(2026, 11, 26, 15, 4, 5, 123000)
    assert instant(moment) == "2026-11-26T15:04:05.123Z"
    assert parse_instant(instant(moment)) == moment
