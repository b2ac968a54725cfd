"""Probabilistic matching: nicknames, typos, swapped names and dates, and conservative grades."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mappings.matching import MatchQuery, jaro_winkler, match_query_from_parameters, rank, score, soundex

TODAY = date(2026, 11, 26)


def patient(pid: str, given: str, family: str, birth: str, phone: str = "", postal: str = "",
            identifier: str = "") -> dict[str, Any]:  # fmt: skip
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid,
                                "name": [{"given": [given], "family": family}], "birthDate": birth}  # fmt: skip
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    if postal:
        resource["address"] = [{"line": ["12 Harbor St"], "postalCode": postal}]
    if identifier:
        resource["identifier"] = [{"system": "urn:mrn", "value": identifier}]
    return resource


MARIA = patient("maria", "Maria", "Rivera", "1988-04-12", "(555) 010-0100", "97201", "MRN-1")
TWIN = patient("ana", "Ana", "Rivera", "1988-04-12", "555-010-0199", "97201")
OTHER = patient("mario", "Mario", "Riviera", "1971-12-04", "555-777-0000", "97030")
JOHN = patient("john", "John", "Smith", "1960-01-01")


def test_string_measures() -> None:
    assert jaro_winkler("martha", "marhta") == pytest.approx(0.961, abs=0.001)
    assert jaro_winkler("rivera", "rivera") == 1.0
    assert soundex("Robert") == soundex("Rupert") == "R163"
    assert soundex("Rivera") == soundex("Rivierra")


@pytest.mark.parametrize(
    ("query", "grade"),
    [
        (MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12", phone="555-010-0100"), "certain"),
        (MatchQuery(identifier="urn:mrn|MRN-1"), "probable"),  # an identifier alone: strong, not certain
        (MatchQuery(identifier="urn:mrn|MRN-1", family="Rivera", given="Maria"), "certain"),
        (MatchQuery(given="Mari", family="Rivera", birth_date="1988-12-04"), "probable"),  # nickname, day/month swap
        (MatchQuery(given="Maria", family="Rivero", birth_date="1988-04-12"), "probable"),  # a typo
        (MatchQuery(given="Rivera", family="Maria", birth_date="1988-04-12"), "probable"),  # names swapped
        (MatchQuery(given="Maria", family="Rivera", approximate_age=38), "possible"),
        (
            MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12"),
            "probable",
        ),  # no third field: not certain
    ],
)
def test_grades(query: MatchQuery, grade: str) -> None:
    assert score(query, MARIA, TODAY).grade == grade


def test_a_wrong_person_is_never_certain() -> None:
    # Same family name, same birth date and postal code: a sister, not her.
    query = MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12", postal_code="97201")
    assert score(query, TWIN, TODAY).grade != "certain"
    assert score(query, OTHER, TODAY).grade in ("possible", "certainly-not")
    assert score(query, JOHN, TODAY).grade == "certainly-not"


def test_rank_returns_at_most_three_best_first() -> None:
    query = MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12", phone="5550100100")
    found = rank(query, [JOHN, OTHER, TWIN, MARIA] + [patient(f"r{n}", "Maria", "Rivera", "1990-01-0" + str(n))
                                                      for n in range(1, 6)], TODAY)  # fmt: skip
    assert len(found) <= 3 and found[0].patient["id"] == "maria" and found[0].grade == "certain"
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


def test_parameters_in_both_forms() -> None:
    flat = {"resourceType": "Parameters", "parameter": [
        {"name": "given", "valueString": "Mari"}, {"name": "family", "valueString": "Rivera"},
        {"name": "age", "valueInteger": 38}, {"name": "phone", "valueString": "555 010 0100"}]}  # fmt: skip
    assert match_query_from_parameters(flat) == MatchQuery(given="Mari", family="Rivera", approximate_age=38,
                                                           phone="555 010 0100")  # fmt: skip
    embedded = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": MARIA}]}
    query = match_query_from_parameters(embedded)
    assert (query.given, query.family, query.birth_date, query.identifier) == ("Maria", "Rivera", "1988-04-12",
                                                                             "urn:mrn|MRN-1")  # fmt: skip


def test_a_strong_possible_with_no_rival_is_probable() -> None:
    query = MatchQuery(given="Maria", family="Rivera", approximate_age=38)
    alone = rank(query, [MARIA, JOHN, OTHER], TODAY)
    assert alone[0].patient["id"] == "maria" and alone[0].grade == "probable" and "unique" in alone[0].agreed
    namesake = patient("maria-2", "Maria", "Rivera", "1989-02-02")
    crowded = rank(query, [MARIA, namesake], TODAY)
    assert {c.grade for c in crowded} == {"possible"}  # two fit: neither is probable


def test_population_recall_and_no_wrong_certain() -> None:
    from gateway.demo.population import records, typo_queries
    from mappings.matching import match_query_from_parameters

    people = [p.patient for p in records(400, rich=0)]
    found = wrong_certain = 0
    queries = typo_queries(people, 150)
    for fields, true_id in queries:
        parameters = {"resourceType": "Parameters", "parameter": [
            {"name": k, ("valueInteger" if isinstance(v, int) else "valueString"): v} for k, v in fields.items()]}  # fmt: skip
        grades = {c.patient["id"]: c.grade for c in rank(match_query_from_parameters(parameters), people, TODAY)}
        found += grades.get(true_id) in ("certain", "probable")
        wrong_certain += sum(1 for pid, grade in grades.items() if grade == "certain" and pid != true_id)
    assert wrong_certain == 0
    assert found / len(queries) >= 0.9
