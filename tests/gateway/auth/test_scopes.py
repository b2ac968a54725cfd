"""SMART scope grammar and negotiation (scopes-and-launch-context.html)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.scopes import ScopeError, ScopeSet, is_subset, negotiate, parse_resource_scope


@pytest.mark.parametrize(
    ("text", "context", "resource_type", "actions"),
    [
        ("patient/Patient.rs", "patient", "Patient", "rs"),
        ("patient/*.read", "patient", "*", "rs"),
        ("user/Observation.write", "user", "Observation", "cud"),
        ("system/*.*", "system", "*", "cruds"),
        ("system/EpisodeOfCare.cruds", "system", "EpisodeOfCare", "cruds"),
        ("patient/Condition.rs?category=problem-list-item", "patient", "Condition", "rs"),
    ],
)
def test_scopes_parse_v1_and_v2(text: str, context: str, resource_type: str, actions: str) -> None:
    scope = parse_resource_scope(text)
    assert scope is not None
    assert (scope.context, scope.resource_type, scope.actions) == (context, resource_type, frozenset(actions))


@pytest.mark.parametrize("text", ["patient/Patient.dus", "patient/Patient.", "user/Unknown.rs", "patient/Patient.rx",
                                  "nurse/Patient.rs", "patient/patient.rs"])  # fmt: skip
def test_malformed_resource_scopes_raise(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_resource_scope(text)


@pytest.mark.parametrize(
    "text", ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "launch/episodeofcare"]
)
def test_non_resource_scopes_are_not_resource_scopes(text: str) -> None:
    assert parse_resource_scope(text) is None


def test_negotiation_grants_what_the_ceiling_covers_in_the_form_asked() -> None:
    granted = negotiate("openid fhirUser patient/*.read patient/Patient.rs admin", "openid fhirUser patient/*.rs")
    assert str(granted).split() == ["patient/*.read", "patient/Patient.rs", "fhirUser", "openid"]


def test_negotiation_narrows_to_the_overlap() -> None:
    granted = negotiate("patient/*.cruds", "patient/Patient.rs patient/EpisodeOfCare.r")
    assert sorted(str(granted).split()) == ["patient/EpisodeOfCare.r", "patient/Patient.rs"]
    assert str(negotiate("system/Patient.cruds", "system/*.rs")) == "system/Patient.rs"
    assert str(negotiate("user/*.rs", "patient/*.rs")) == ""


def test_refresh_may_narrow_but_not_widen() -> None:
    granted = ScopeSet.parse("patient/*.rs offline_access openid")
    assert is_subset(ScopeSet.parse("patient/Patient.read offline_access"), granted)
    assert not is_subset(ScopeSet.parse("patient/*.cruds"), granted)
    assert not is_subset(ScopeSet.parse("user/*.rs"), granted)
    assert not is_subset(ScopeSet.parse("launch"), granted)


_letters = st.sets(st.sampled_from("cruds"), min_size=1).map(lambda s: "".join(c for c in "cruds" if c in s))
_types = st.sampled_from(["*", "Patient", "EpisodeOfCare", "CareTeam", "Consent"])
_contexts = st.sampled_from(["patient", "user", "system"])
_scopes = st.builds(lambda c, t, a: f"{c}/{t}.{a}", _contexts, _types, _letters)


@given(st.lists(_scopes, max_size=4), st.lists(_scopes, max_size=4))
def test_negotiation_never_grants_beyond_the_ceiling_or_the_request(asked: list[str], ceiling: list[str]) -> None:
    granted = negotiate(" ".join(asked), " ".join(ceiling))
    limit, request = ScopeSet.parse(ceiling), ScopeSet.parse(asked)
    for scope in granted.resources:
        assert limit.covers(scope)
        assert request.covers(scope)
