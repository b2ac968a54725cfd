"""Safe Harbor counts for public health (42 CFR 2.54; 45 CFR 164.514(b)(2))."""

from __future__ import annotations

from datetime import date

from consent_engine.public_health import (
    SafeHarborRow,
    age_group,
    count,
    decide_counts,
    safe_harbor_row,
    zip3,
)

RESTRICTED = frozenset({"036", "059", "893"})
EPIDEMIOLOGISTS = frozenset({"epidemiologist"})


def test_geography_is_three_digits_and_small_areas_are_000() -> None:
    assert zip3("94107", RESTRICTED) == "941"
    assert zip3("03601-1234", RESTRICTED) == "000"  # an area of 20,000 people or fewer
    assert zip3("ABC12", RESTRICTED) == zip3(None, RESTRICTED) == zip3("12", RESTRICTED) == "000"


def test_ages_over_89_are_one_group_and_dates_are_years() -> None:
    assert age_group(date(1930, 1, 1), date(2026, 6, 1)) == "90+"
    assert age_group(date(1936, 7, 1), date(2026, 6, 1)) == "65-89"  # 89: not yet 90
    assert age_group(date(2010, 6, 2), date(2026, 6, 1)) == "0-17"
    assert age_group(None, date(2026, 6, 1)) == "unknown"
    row = safe_harbor_row(date(2026, 3, 14), date(1988, 4, 12), "female", "94107", "sud", RESTRICTED)
    assert row == SafeHarborRow(year="2026", zip3="941", age_group="35-44", gender="female", program="sud")


def test_small_cells_are_suppressed_and_no_total_is_given() -> None:
    rows = [safe_harbor_row(date(2026, 1, 1), None, "male", "94107", "sud", RESTRICTED)] * 12 + [
        safe_harbor_row(date(2026, 1, 1), None, "male", "03601", "sud", RESTRICTED)
    ] * 10
    table = count(rows, ["year", "zip3"])
    assert [(c.key, c.count) for c in table.cells] == [(("2026", "000"), None), (("2026", "941"), 12)]
    assert table.suppressed == 1 and table.minimum_cell == 11
    assert count(rows, ["year"]).cells[0].count == 22


def test_a_line_list_is_refused_whoever_asks_and_counts_need_the_role_and_purpose() -> None:
    for asked in (["name"], ["year", "birthDate"], ["zip5"], ["date"]):
        refused = decide_counts("epidemiologist", "PUBHLTH", asked, EPIDEMIOLOGISTS)
        assert not refused.permitted and refused.reason == "line-list-not-de-identified"
        assert refused.alerts and refused.alerts[0].code == "line-list-refused"
    assert decide_counts("crisis-clinician", "PUBHLTH", ["year"], EPIDEMIOLOGISTS).reason == "not-public-health"
    assert decide_counts("epidemiologist", "TREAT", ["year"], EPIDEMIOLOGISTS).reason == "purpose-not-public-health"
    assert decide_counts("epidemiologist", "PUBHLTH", ["year", "zip3", "age-group"], EPIDEMIOLOGISTS).permitted
