"""Counts for public health (42 CFR 2.54, 2024): Part 2 records may go to a public health
authority without consent only de-identified under 45 CFR 164.514(b). So an epidemiologist gets
counts, never records: each person-event is reduced to a Safe Harbor row (164.514(b)(2)) and the
rows are counted by the dimensions asked for, with small cells suppressed.

Safe Harbor, as applied here: no names, no identifiers, no contact details; of dates, the year
only; of geography, the first three digits of the ZIP code, and `000` for three-digit areas of
20,000 people or fewer (the Census table in config/safe_harbor_zip3.toml); ages over 89 fall into
one group, `90+`. Cells under `minimum_cell` (11, the CMS cell-size rule) are suppressed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from consent_engine.model import Alert

PUBLIC_HEALTH = "PUBHLTH"
DIMENSIONS = ("year", "zip3", "age-group", "gender", "program")
# What a line list would carry: asked for, the whole request is refused.
IDENTIFYING = frozenset({"name", "birthdate", "birth-date", "address", "zip", "zip5", "postalcode", "phone", "email",
                         "telecom", "identifier", "mrn", "ssn", "date", "id", "patient"})  # fmt: skip
AGE_GROUPS = ((0, 17, "0-17"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 54, "45-54"),
              (55, 64, "55-64"), (65, 89, "65-89"))  # fmt: skip
OLDEST = "90+"  # 164.514(b)(2)(i)(C): ages over 89 aggregated into a single category
UNKNOWN = "unknown"
MINIMUM_CELL = 11


@dataclass(frozen=True)
class SafeHarborRow:
    """One person-event with nothing but what Safe Harbor allows."""

    year: str
    zip3: str
    age_group: str
    gender: str
    program: str  # the kind of treatment: sud, mental-health, crisis

    def value(self, dimension: str) -> str:
        return str(getattr(self, dimension.replace("-", "_")))


@dataclass(frozen=True)
class CountsDecision:
    permitted: bool
    reason: str  # a code; the rule it applies is in `citation`
    citation: str
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True)
class Cell:
    key: tuple[str, ...]
    count: int | None  # None: suppressed (fewer than the minimum cell size)


@dataclass(frozen=True)
class CountsTable:
    dimensions: tuple[str, ...]
    cells: tuple[Cell, ...]
    suppressed: int  # how many cells were suppressed
    minimum_cell: int


def decide_counts(
    role: str, purpose: str | None, dimensions: Sequence[str], public_health_roles: frozenset[str]
) -> CountsDecision:
    """Whether this recipient may have these counts: a public-health role, purpose PUBHLTH, and
    only de-identified dimensions (a line list is refused, whatever the role)."""
    asked = {d.lower() for d in dimensions}
    if asked & IDENTIFYING or not asked <= set(DIMENSIONS):
        identifying = sorted(asked - set(DIMENSIONS))
        return CountsDecision(False, "line-list-not-de-identified",
                              "45 CFR 164.514(b)(2); 42 CFR 2.54: only Safe Harbor de-identified counts, never "
                              f"{', '.join(identifying)}",
                              (Alert("line-list-refused", f"{role} asked for {', '.join(identifying)}"),))  # fmt: skip
    if role not in public_health_roles:
        return CountsDecision(False, "not-public-health", "42 CFR 2.54: de-identified counts go to public health")
    if purpose != PUBLIC_HEALTH:
        return CountsDecision(False, "purpose-not-public-health", "42 CFR 2.54: for public health (PUBHLTH) only")
    return CountsDecision(True, "de-identified-counts", "42 CFR 2.54; 45 CFR 164.514(b)(2)")


def zip3(postal_code: str | None, restricted: frozenset[str]) -> str:
    """The first three digits of a US ZIP code; `000` for a restricted area or anything else."""
    digits = (postal_code or "").strip()[:3]
    if len(digits) != 3 or not digits.isdigit() or digits in restricted:
        return "000"
    return digits


def age_group(birth: date | None, at: date) -> str:
    if birth is None:
        return UNKNOWN
    age = at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
    if age > 89:
        return OLDEST
    return next((label for low, high, label in AGE_GROUPS if low <= age <= high), UNKNOWN)


def safe_harbor_row(
    event: date, birth: date | None, gender: str | None, postal_code: str | None, program: str,
    restricted: frozenset[str],
) -> SafeHarborRow:  # fmt: skip
    return SafeHarborRow(
        year=str(event.year),
        zip3=zip3(postal_code, restricted),
        age_group=age_group(birth, event),
        gender=gender if gender in ("female", "male", "other") else UNKNOWN,
        program=program,
    )


def count(rows: Iterable[SafeHarborRow], dimensions: Sequence[str], minimum_cell: int = MINIMUM_CELL) -> CountsTable:
    """Rows counted by the dimensions; a cell under `minimum_cell` (but above zero) is suppressed.
    No totals are given: a total beside one suppressed cell would give it away."""
    dims = tuple(d.lower() for d in dimensions)
    counted = Counter(tuple(row.value(d) for d in dims) for row in rows)
    cells = tuple(Cell(key, n if n >= minimum_cell else None) for key, n in sorted(counted.items()))
    return CountsTable(dims, cells, sum(1 for c in cells if c.count is None), minimum_cell)
