"""Where a consent stands, as the compliance console shows it (consent_engine.consents.standing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from consent_engine.consents import standing
from tests.consent_engine.people import AS_OF, TPO


def test_a_consent_in_force_revoked_expired_future_or_not_relied_on() -> None:
    assert standing(TPO, (), AS_OF) == ("in force", "")
    revoked = replace(TPO, status="inactive", revoked_at=datetime(2026, 11, 20, 9, 30))
    assert standing(revoked, (), AS_OF) == ("revoked", "revoked 2026-11-20 09:30 UTC")
    assert standing(revoked, (), datetime(2026, 11, 19)) == ("in force", "")  # a revocation never counts backwards
    expired = replace(TPO, expires_at=AS_OF - timedelta(days=3))
    assert standing(expired, (), AS_OF) == ("expired", "expired 2026-11-23")
    future = replace(TPO, signed_at=AS_OF + timedelta(days=2))
    assert standing(future, (), AS_OF) == ("not yet in force", "from 2026-11-28")
    flagged = standing(TPO, ("no signature date (42 CFR 2.31(a)(8))", "no recipient"), AS_OF)
    assert flagged == ("not relied on", "no signature date (42 CFR 2.31(a)(8)); no recipient")
    assert standing(replace(TPO, status="draft"), (), AS_OF) == ("inactive", "status draft")
