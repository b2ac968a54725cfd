"""The synthetic population: realistic sizes, both sources, look-alikes, noisy queries; valid R4."""

from __future__ import annotations

from gateway.demo.population import records, typo_queries
from gateway.fhir.validation import validate_resource


def test_records_are_realistic_valid_and_deterministic() -> None:
    people = list(records(120, rich=110))
    assert len(people) == 120
    sizes = [1 + len(p.cmhc) + len(p.otp) for p in people[:110]]
    assert min(sizes) >= 10 and max(sizes) <= 60
    assert all([r["resourceType"] for r in p.cmhc] == ["EpisodeOfCare"] and not p.otp for p in people[110:])
    assert sum(1 for p in people if p.otp) >= 30  # every third person is also at the OTP
    assert any(r["resourceType"] == "Consent" for p in people for r in p.otp)
    for person in people[:12]:
        for resource in (person.patient, *person.cmhc, *person.otp):
            validate_resource(resource, resource["resourceType"])
    validate_resource(people[-1].cmhc[0], "EpisodeOfCare")
    assert [p.patient for p in records(20)] == [p.patient for p in records(20)]


def test_look_alike_siblings_and_noisy_queries() -> None:
    people = list(records(110))
    sibling = people[50].patient  # every 50th person is followed by a look-alike sibling
    first = people[49].patient
    assert (sibling["name"][0]["family"], sibling["birthDate"]) == (first["name"][0]["family"], first["birthDate"])
    assert sibling["id"] != first["id"]
    patients = [p.patient for p in people]
    queries = typo_queries(patients, 50)
    ids = {p["id"] for p in patients}
    assert len(queries) == 50 and all(true_id in ids for _, true_id in queries)
    assert any("age" in fields for fields, _ in queries) and any("birthDate" in fields for fields, _ in queries)
