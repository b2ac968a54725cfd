"""Probabilistic matching: nicknames, typos, swapped names and dates, and conservative grades."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mappings.matching import (
    MatchQuery,
    blocking_keys,
    close_spelling,
    formal_names,
    jaro_winkler,
    match_parameters,
    match_query_from_parameters,
    one_edit_apart,
    patient_blocking_keys,
    query_blocking_keys,
    rank,
    score,
    soundex,
)

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
    ("typed", "name", "one_edit", "close"),
    [
        ("paaula", "paula", True, True),  # a letter doubled
        ("jaan", "juan", True, True),  # one replaced: Jaro-Winkler says only 0.85
        ("mraia", "maria", True, True),  # neighbours swapped
        ("rivra", "rivera", True, True),  # one dropped
        ("jan", "dan", True, False),  # three letters: too short to trust one edit
        ("maria", "mario", True, True),
        ("marta", "mario", False, False),
    ],
)
def test_one_keystroke_is_a_close_spelling(typed: str, name: str, one_edit: bool, close: bool) -> None:
    assert one_edit_apart(typed, name) == one_edit
    assert close_spelling(typed, name, 0.88) == close


def test_a_full_birth_date_that_differs_counts_against() -> None:
    one_part = score(MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-21"), MARIA, TODAY)
    year_only = score(MatchQuery(given="Maria", family="Rivera", birth_date="1988-09-30"), MARIA, TODAY)
    no_date = score(MatchQuery(given="Maria", family="Rivera"), MARIA, TODAY)
    assert "birthDate(one part differs)" in one_part.agreed
    assert one_part.score > no_date.score > year_only.score


def test_a_different_phone_on_file_counts_a_little_against() -> None:
    asked = MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12", phone="555-999-1234")
    without = MatchQuery(given="Maria", family="Rivera", birth_date="1988-04-12")
    assert score(without, MARIA, TODAY).score - score(asked, MARIA, TODAY).score == pytest.approx(1.5)
    assert score(asked, JOHN, TODAY).score == score(MatchQuery(given="Maria", family="Rivera",
                                                               birth_date="1988-04-12"), JOHN, TODAY).score  # fmt: skip


def test_blocking_keys_survive_a_typo_in_either_name() -> None:
    filed = patient_blocking_keys(patient("k", "Katherine", "Hartford", "1990-01-01"))
    for given, family in (("Katherine", "Hartfurd"), ("Katherin", "Hartford"), ("Kahterine", "Hartofrd"),
                          ("Katherine", "Cartford"), ("Xatherine", "Hartford")):  # fmt: skip
        assert query_blocking_keys(MatchQuery(given=given, family=family)) & filed, (given, family)
    # A nickname finds the formal name; names said the other way round are found too.
    assert formal_names("kate") == ["catherine", "katherine"]
    assert query_blocking_keys(MatchQuery(given="Kate", family="Hartford")) & filed
    assert query_blocking_keys(MatchQuery(given="Hartford", family="Katherine")) & filed
    # Someone else entirely shares none.
    assert not query_blocking_keys(MatchQuery(given="Luis", family="Okafor")) & filed
    assert blocking_keys(["a"], ["katherine"]) == set()  # one letter is no key


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


def test_a_unique_candidate_needs_both_names_to_be_probable() -> None:
    # Family name and exact birth date fit one person on file, but the given name does not:
    # that is a relative or a stranger, not a unique fit.
    query = MatchQuery(given="Jamal", family="Rivera", birth_date="1988-04-12")
    found = rank(query, [MARIA, JOHN], TODAY)
    assert found[0].patient["id"] == "maria" and found[0].grade == "possible"


def test_a_strong_possible_with_no_rival_is_probable() -> None:
    query = MatchQuery(given="Maria", family="Rivera", approximate_age=38)
    alone = rank(query, [MARIA, JOHN, OTHER], TODAY)
    assert alone[0].patient["id"] == "maria" and alone[0].grade == "probable" and "unique" in alone[0].agreed
    namesake = patient("maria-2", "Maria", "Rivera", "1989-02-02")
    crowded = rank(query, [MARIA, namesake], TODAY)
    assert {c.grade for c in crowded} == {"possible"}  # two fit: neither is probable


def test_exact_names_are_told_apart_from_a_namesake_one_slip_away_in_each() -> None:
    query = MatchQuery(given="Maria", family="Rivera", approximate_age=38)
    slips = patient("marla", "Marla", "Riviera", "1988-07-01")
    found = rank(query, [MARIA, slips], TODAY)
    assert [(c.patient["id"], c.grade) for c in found] == [("maria", "probable"), ("marla", "possible")]


def test_both_names_misspelt_with_a_fitting_age_and_no_rival_is_probable() -> None:
    query = MatchQuery(given="Mraia", family="Riveera", approximate_age=38)
    alone = rank(query, [MARIA, JOHN, OTHER], TODAY)
    assert alone[0].patient["id"] == "maria" and alone[0].grade == "probable"
    wrong_age = rank(MatchQuery(given="Mraia", family="Riveera", approximate_age=60), [MARIA, JOHN, OTHER], TODAY)
    assert [c.grade for c in wrong_age if c.patient["id"] == "maria"] in ([], ["possible"])


def test_population_recall_and_no_wrong_certain() -> None:
    from gateway.demo.population import records, typo_queries

    people = [p.patient for p in records(400, rich=0)]
    found = wrong_certain = 0
    queries = typo_queries(people, 150)
    for fields, true_id in queries:
        parameters = match_parameters(fields)
        grades = {c.patient["id"]: c.grade for c in rank(match_query_from_parameters(parameters), people, TODAY)}
        found += grades.get(true_id) in ("certain", "probable")
        wrong_certain += sum(1 for pid, grade in grades.items() if grade == "certain" and pid != true_id)
    assert wrong_certain == 0
    assert found / len(queries) >= 0.9


def test_strangers_are_rarely_probable_and_never_certain() -> None:
    """People not on file, described the same way: a `probable` here is a wrong person."""
    from gateway.demo.population import records, typo_queries

    people = [p.patient for p in records(400, rich=0)]
    strangers = [p.patient for p in records(150, rich=0, seed=99)]
    wrong: dict[str, int] = {"certain": 0, "probable": 0}
    for fields, _ in typo_queries(strangers, 150):
        parameters = match_parameters(fields)
        for candidate in rank(match_query_from_parameters(parameters), people, TODAY):
            if candidate.grade in wrong:
                wrong[candidate.grade] += 1
    assert wrong["certain"] == 0
    assert wrong["probable"] <= 3
