"""Consent engine throughput, and its properties over many cases. Prints its figures; asserts
nothing.

  .venv/bin/python bench/consent.py [--seconds 3] [--cases N]

1. decisions per second on one core, in process, for a 60-item record (Part 2, mental-health and
   general items from two sources) with 5 consents (TPO, a specific consent, a restriction with a
   nested exception, a counseling-notes consent, an expired one), for a clinician, a peer and an
   officer: consent_engine.release with every obligation built;
2. the engine's share of a brief request: `$responder-brief` for a 60-resource record through
   the production hooks (SMART, consent, audit commit, document building), in process on SQLite,
   with the time spent inside consent_engine.release summed in the same run;
3. with --cases N: N generated cases (tests/consent_engine/worlds.py) checked against the
   properties (a) to (h); prints how many held and which broke.
Target (issue 12): >= 5,000 decisions/s for the 60-item record on one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_engine import (  # noqa: E402
    DEFAULT_POLICY,
    Consent,
    ConsentKind,
    History,
    Item,
    Provision,
    Recipient,
    Record,
    ReleaseRequest,
    release,
)
from gateway.app import build_engine  # noqa: E402
from gateway.auth.accounts import Accounts  # noqa: E402
from gateway.fhir.context import FhirRequest, Requester  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.store.database import open_database  # noqa: E402

PATIENT = "Patient/bench"
OTP, CMHC, TEAM = "Organization/eastside-otp", "Organization/harbor-cmhc", "Organization/county-mobile-crisis"
AS_OF = datetime(2026, 11, 26, 12, 0)
CLASSES = ["STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN", "DEMOGRAPHICS", "CN", "PSYNOTE", "MED"]


def record() -> Record:
    items = []
    for n in range(60):
        data_class = CLASSES[n % len(CLASSES)]
        if n % 3 == 0:
            labels, source = frozenset({"42CFRPart2", "R", "NORDSCLCD", "SUD"}), OTP
        elif n % 3 == 1:
            labels, source = frozenset({"MH", "R"}), CMHC
        else:
            labels, source = frozenset(), CMHC
        items.append(Item(f"Observation/item-{n}", data_class, labels, source, f"Observation {n}"))
    return Record(PATIENT, tuple(items), frozenset({TEAM}))


def consents() -> list[Consent]:
    signed = datetime(2026, 3, 1)
    base = Provision(
        "permit", purposes=frozenset({"TREAT"}), data_classes=frozenset({"STATUS", "CONTACT", "MED", "DX"})
    )
    return [
        Consent("tpo", ConsentKind.PART2_TPO, PATIENT, replace(base, recipient_classes=frozenset({"treating-providers"})),
                disclosers=frozenset({OTP}), signed_at=signed),
        Consent("police", ConsentKind.PART2_SPECIFIC, PATIENT, replace(base, recipients=frozenset({"Organization/pd"}),
                purposes=frozenset({"crisis-coordination"})), disclosers=frozenset({OTP}), signed_at=signed),
        Consent("restriction", ConsentKind.RESTRICTION, PATIENT, Provision(
                "deny", data_classes=frozenset({"LAB"}), provisions=(Provision("permit", recipients=frozenset({TEAM})),)),
                signed_at=signed),
        Consent("notes", ConsentKind.COUNSELING_NOTES, PATIENT, Provision("permit", recipients=frozenset({TEAM}),
                purposes=frozenset({"TREAT"}), data_classes=frozenset({"CN"})), disclosers=frozenset({OTP}), signed_at=signed),
        Consent("old", ConsentKind.PART2_SPECIFIC, PATIENT, replace(base, recipients=frozenset({TEAM})),
                disclosers=frozenset({OTP}), signed_at=datetime(2024, 1, 1), expires_at=datetime(2025, 1, 1)),
    ]  # fmt: skip


def rate(function: object, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        function()  # type: ignore[operator]
        count += 1
    return count / (time.perf_counter() - started)


def decide(request: ReleaseRequest, the_record: Record, the_consents: list[Consent]) -> object:
    return release(request, the_record, the_consents, History(), DEFAULT_POLICY, AS_OF)


def cases(count: int) -> None:
    """Generated cases against the properties: how many held, and the first of each that broke."""
    from collections import Counter
    from random import Random

    from tests.consent_engine.worlds import case, violations

    broken: Counter[str] = Counter()
    first: dict[str, int] = {}
    started = time.perf_counter()
    held = 0
    for seed in range(count):
        found = violations(case(Random(seed)))
        held += not found
        for violation in found:
            broken[violation] += 1
            first.setdefault(violation, seed)
    spent = time.perf_counter() - started
    print(f"Properties over {count:,} generated cases ({count / spent:,.0f} cases/s): {held:,} held, "
          f"{count - held:,} broke")  # fmt: skip
    for violation, times in broken.most_common():
        print(f"  {times:,} x {violation} (first: seed {first[violation]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cases", type=int, default=0, help="check the properties over this many cases")
    args = parser.parse_args()
    if args.cases:
        cases(args.cases)
        return
    the_record, the_consents = record(), consents()
    recipients = {
        "crisis clinician": Recipient("ada", "Ada", "crisis-clinician", True, TEAM, True),
        "peer specialist": Recipient("sam", "Sam", "peer-specialist", False, TEAM, True),
        "police officer": Recipient("lee", "Lee", "police-officer", False, "Organization/pd"),
    }
    print("Consent engine: consent_engine.release, 60-item record, 5 consents, one core (target >= 5,000/s)")
    per_decision: list[float] = []
    for label, recipient in recipients.items():
        purpose = "crisis-coordination" if recipient.role == "police-officer" else "TREAT"
        request = ReleaseRequest(recipient, purpose, PATIENT)
        decide(request, the_record, the_consents)
        rates = [rate(lambda r=request: decide(r, the_record, the_consents), args.seconds / 3) for _ in range(3)]
        best = statistics.median(rates)
        per_decision.append(1 / best)
        released = len(release(request, the_record, the_consents, History(), DEFAULT_POLICY, AS_OF).released)
        print(f"  {label:17} {best:9,.0f} decisions/s  ({1e6 / best:6.1f} us each; {released} of 60 released)")

    workdir = Path(tempfile.mkdtemp(prefix="gateway-consent-bench-"))
    brief_share(workdir, args.seconds)


def brief_share(workdir: Path, seconds: float) -> None:
    """The consent engine's share of a $responder-brief request, in process (the SMART and consent
    hooks as in production; no HTTP, no token look-up): the whole request is timed, and the time
    spent in consent_engine.decide is summed by wrapping it."""
    import gateway.consent.release as release_module  # its `release` is the engine's function

    settings = load_settings(database_url=f"sqlite:///{workdir / 'bench.sqlite3'}", base_url="http://bench/fhir")
    database = open_database(settings.database_url)
    operator = build_engine(settings, database, operator=True)
    smart_engine = build_engine(settings, database)
    team = {
        "resourceType": "Organization",
        "id": "county-mobile-crisis",
        "name": "County Mobile Crisis",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
    }
    resources: list[dict[str, object]] = [
        team,
        {"resourceType": "Patient", "id": "bench", "name": [{"family": "Rivera"}], "birthDate": "1988-04-12"},
    ]
    for n in range(58):
        kind = ["Observation", "Condition", "Flag", "Encounter"][n % 4]
        resource: dict[str, object] = {"resourceType": kind, "id": f"item-{n}"}
        if kind == "Observation":
            resource.update(status="final", code={"text": "x"}, subject={"reference": "Patient/bench"})
        elif kind == "Condition":
            resource.update(
                subject={"reference": "Patient/bench"},
                code={
                    "coding": [
                        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1" if n % 8 == 1 else "E11.9"}
                    ]
                },
            )
        elif kind == "Flag":
            resource.update(status="active", code={"text": "note"}, subject={"reference": "Patient/bench"})
        else:
            resource.update(
                status="finished",
                subject={"reference": "Patient/bench"},
                **{"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
            )
        resources.append(resource)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ],
    }
    operator.handle(FhirRequest("POST", "", body=bundle))
    Accounts(database).add_user(
        username="ada",
        password="correct horse battery staple",
        display_name="Ada",
        role="crisis-clinician",
        organization="Organization/county-mobile-crisis",
    )
    requester = Requester(
        source="user:ada",
        client_id="bench-app",
        scopes=("user/*.rs",),
        username="ada",
        role="crisis-clinician",
        purpose="TREAT",
        conceal_deletions=True,
    )
    spent = [0.0]
    original = release_module.release

    def timed_decide(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            spent[0] += time.perf_counter() - started

    release_module.release = timed_decide  # type: ignore[assignment]

    def brief() -> None:
        response = smart_engine.handle(
            FhirRequest(
                "GET",
                "Patient/bench/$responder-brief",
                requester=requester,
                params=[("confirmed", "true"), ("purpose", "TREAT")],
            )  # fmt: skip
        )
        assert response.status == 200

    brief()
    spent[0], count, started = 0.0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        brief()
        count += 1
    total = time.perf_counter() - started
    release_module.release = original
    print(
        f"  $responder-brief (60 resources, in process, audit committed): {total / count * 1e3:.2f} ms each; "
        f"consent_engine.release {spent[0] / count * 1e3:.3f} ms = {spent[0] / total:.1%} of the request"
    )
    database.dispose()


if __name__ == "__main__":
    main()
