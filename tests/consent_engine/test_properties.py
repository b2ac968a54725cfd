"""Properties that must hold for every record, set of consents and request
(tests/consent_engine/worlds.py says what each property is). Hypothesis draws (and shrinks) a few
hundred cases; a sweep of seeded cases adds thousands more at a fraction of the cost (a failure
names its seed); `bench/consent.py --cases 1000000` runs a million."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_engine import BasisKind, Consent
from tests.consent_engine.worlds import case, decided, violations


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_release_keeps_the_properties(rng: random.Random) -> None:
    found = case(rng)
    assert violations(found) == []


def test_thousands_of_seeded_releases_keep_the_properties() -> None:
    broken = {seed: found for seed in range(5000) if (found := violations(case(random.Random(seed))))}
    assert broken == {}


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_revocation_never_widens_what_is_released(rng: random.Random) -> None:
    found = case(rng)
    before = decided(found)
    if before is None or not found.consents:
        return
    revoked: list[Consent] = [replace(c, status="inactive", revoked_at=datetime(2026, 1, 1)) for c in found.consents]
    after = decided(found, revoked)
    assert after is not None
    kept = {r.item.key for r in after.released if r.basis.kind == BasisKind.CONSENT and not r.accompanies}
    assert not kept  # nothing on a revoked consent
    assert set(after.released_keys) <= set(before.released_keys) | {
        r.item.key for r in after.released if r.basis.kind != BasisKind.CONSENT
    }


def test_the_checker_catches_a_broken_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The properties can fail: a release that drops an item from its ledger is caught."""
    rng = random.Random(3)
    found = next(c for c in (case(rng) for _ in range(2000)) if (r := decided(c)) is not None and r.ledger)
    module = sys.modules["consent_engine.release"]  # the package's `release` is the function
    original = module.conclude

    def dropping(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        return replace(result, ledger=result.ledger[1:])

    monkeypatch.setattr(module, "conclude", dropping)
    assert "(a) the ledger is not the released Part 2 disclosures" in violations(found)
