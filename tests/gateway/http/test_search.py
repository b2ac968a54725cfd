"""Search (R4 search.html): the parameters the brief depends on, paging, _include/_revinclude."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.conftest import BASE_URL, fhir_json
from tests.gateway.http.test_rest import assert_outcome, patient


def put(client: FlaskClient, resource: dict[str, Any]) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", **fhir_json(resource))
    assert response.status_code in (200, 201), response.json


def ids(client: FlaskClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.json
    return sorted(e["resource"]["id"] for e in response.json.get("entry", []) if e["search"]["mode"] == "match")


@pytest.fixture()
def people(client: FlaskClient) -> None:
    put(client, patient(id="rivera"))
    put(client, patient(id="jose", name=[{"family": "Peña", "given": ["José"]}], gender="male", birthDate="1990",
                        identifier=[{"system": "urn:x", "value": "J1"}], telecom=[{"system": "email", "value": "j@x.org"}],
                        address=[{"postalCode": "94110"}]))  # fmt: skip
    put(client, {"resourceType": "Organization", "id": "harbor", "name": "Harbor CMHC"})
    put(client, {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Okafor"}]})
    put(client, {"resourceType": "PractitionerRole", "id": "dr1-role", "practitioner": {"reference": "Practitioner/dr1"},
                 "organization": {"reference": "Organization/harbor"},
                 "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "106289002"}]}]})  # fmt: skip
    put(client, {"resourceType": "EpisodeOfCare", "id": "ep1", "status": "active",
                 "type": [{"coding": [{"system": "urn:level", "code": "ACT"}]}],
                 "patient": {"reference": "Patient/rivera"}, "managingOrganization": {"reference": "Organization/harbor"},
                 "careManager": {"reference": "Practitioner/dr1"}})  # fmt: skip
    put(client, {"resourceType": "CareTeam", "id": "ct1", "status": "active", "subject": {"reference": "Patient/rivera"},
                 "participant": [{"member": {"reference": "PractitionerRole/dr1-role"}}]})  # fmt: skip
    put(client, {"resourceType": "Consent", "id": "c1", "status": "active",
                 "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                 "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                 "patient": {"reference": "Patient/rivera"},
                 "provision": {"actor": [{"role": {"text": "recipient"}, "reference": {"reference": "Organization/harbor"}}]}})  # fmt: skip
    put(client, {"resourceType": "Condition", "id": "cond1", "subject": {"reference": "Patient/rivera"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]}})  # fmt: skip


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/fhir/Patient?name=riv", ["rivera"]),
        ("/fhir/Patient?name=JOSE", ["jose"]),  # case and accent insensitive
        ("/fhir/Patient?name:exact=Peña", ["jose"]),
        ("/fhir/Patient?name:exact=pena", []),  # :exact: case and accents count
        ("/fhir/Patient?name:exact=Pe", []),
        ("/fhir/Patient?name:contains=ive", ["rivera"]),
        ("/fhir/Patient?name=r_v", []),  # _ and % are literal, not wildcards
        ("/fhir/Patient?name:contains=%", []),
        ("/fhir/Patient?family=Pena", ["jose"]),
        ("/fhir/Patient?given=jo", ["jose", "rivera"]),
        ("/fhir/Patient?given=jo&gender=female", ["rivera"]),
        ("/fhir/Patient?gender=male,female", ["jose", "rivera"]),
        ("/fhir/Patient?phonetic=Rivira", ["rivera"]),  # sounds like Rivera
        ("/fhir/Patient?phonetic=Hosay", []),  # Soundex keeps the first letter: J and H differ
        ("/fhir/Patient?phonetic=Josie&phonetic=Pena", ["jose"]),
        ("/fhir/Patient?phonetic=Alecks", ["rivera"]),  # a given name
        ("/fhir/Practitioner?phonetic=Okaffor", ["dr1"]),
        ("/fhir/Patient?birthdate=1987-04-12", ["rivera"]),
        ("/fhir/Patient?birthdate=1987", ["rivera"]),
        ("/fhir/Patient?birthdate=ge1988-01-01", ["jose"]),
        ("/fhir/Patient?birthdate=lt1988", ["rivera"]),
        ("/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.9999.1|MPI100001", ["rivera"]),
        ("/fhir/Patient?identifier=J1", ["jose"]),
        ("/fhir/Patient?identifier=urn:other|J1", []),
        ("/fhir/Patient?telecom=phone|(555) 010-4477", ["rivera"]),
        ("/fhir/Patient?telecom=j@x.org", ["jose"]),
        ("/fhir/Patient?phone=555.010.4477", ["rivera"]),
        ("/fhir/Patient?address-postalcode=9411", ["jose"]),
        ("/fhir/Patient?_id=jose,rivera", ["jose", "rivera"]),
        ("/fhir/Patient?gender:not=male", ["rivera"]),
        ("/fhir/Patient?_lastUpdated=gt2000-01-01", ["jose", "rivera"]),
        ("/fhir/Patient?_lastUpdated=lt2000-01-01", []),
        ("/fhir/EpisodeOfCare?patient=rivera", ["ep1"]),
        ("/fhir/EpisodeOfCare?patient=Patient/rivera&status=active", ["ep1"]),
        ("/fhir/EpisodeOfCare?status=finished", []),
        ("/fhir/EpisodeOfCare?type=urn:level|ACT", ["ep1"]),
        ("/fhir/EpisodeOfCare?organization=Organization/harbor", ["ep1"]),
        ("/fhir/EpisodeOfCare?care-manager=Practitioner/dr1", ["ep1"]),
        (f"/fhir/EpisodeOfCare?patient={BASE_URL}/Patient/rivera", ["ep1"]),
        ("/fhir/CareTeam?participant=PractitionerRole/dr1-role&status=active", ["ct1"]),
        ("/fhir/CareTeam?subject=Patient/rivera", ["ct1"]),
        ("/fhir/Consent?patient=rivera&status=active", ["c1"]),
        ("/fhir/Consent?actor=Organization/harbor", ["c1"]),
        ("/fhir/PractitionerRole?practitioner=dr1&organization=harbor&role=106289002", ["dr1-role"]),
        ("/fhir/Condition?patient=rivera&code=http://hl7.org/fhir/sid/icd-10-cm|F11.20", ["cond1"]),
        ("/fhir/Condition?subject:Patient=rivera", ["cond1"]),
        ("/fhir/Patient?telecom:missing=true", []),
    ],
)
def test_search_parameters(client: FlaskClient, url: str, expected: list[str]) -> None:
    assert ids(client, url) == expected


@pytest.mark.usefixtures("people")
def test_include_and_revinclude(client: FlaskClient) -> None:
    body = client.get("/fhir/EpisodeOfCare?patient=rivera&_include=EpisodeOfCare:organization"
                      "&_include=EpisodeOfCare:care-manager").json  # fmt: skip
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in body["entry"])
    assert modes == [("include", "Organization"), ("include", "Practitioner"), ("match", "EpisodeOfCare")]
    body = client.get("/fhir/Patient?_id=rivera&_revinclude=EpisodeOfCare:patient&_revinclude=CareTeam:subject").json
    assert sorted(e["resource"]["id"] for e in body["entry"]) == ["ct1", "ep1", "rivera"]
    assert body["total"] == 1
    assert_outcome(client.get("/fhir/Patient?_include=Patient:nothing"), 400)


def test_paging_links_are_absolute_on_our_base(client: FlaskClient) -> None:
    for n in range(7):
        put(client, patient(id=f"p{n}"))
    first = client.get("/fhir/Patient?family=rivera&_count=3", headers={"Host": "evil.example"}).json
    assert first["total"] == 7
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["next"].startswith(BASE_URL + "/Patient?")
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = links["next"]
    while url:
        page = client.get(urlsplit(url).path + "?" + urlsplit(url).query).json
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert sorted(seen) == [f"p{n}" for n in range(7)]


def test_unknown_parameters_lenient_and_strict(client: FlaskClient) -> None:
    put(client, patient(id="p1"))
    lenient = client.get("/fhir/Patient?shoe-size=12").json
    assert lenient["total"] == 1
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = client.get("/fhir/Patient?shoe-size=12", headers={"Prefer": "handling=strict"})
    assert_outcome(strict, 400)
    # The matching keys sit in the index under a name that is no search parameter.
    assert_outcome(client.get("/fhir/Patient?_blocking=3:riv:ale", headers={"Prefer": "handling=strict"}), 400)
    assert client.get("/fhir/Patient?_blocking=3:xyz:xyz").json["total"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "birthdate=yesterday",
        "_count=-1",
        "name:fuzzy=x",
        "_total=maybe",
        "gender:exact=x",
        "phonetic:exact=Rivera",
        "phonetic=123",
    ],  # fmt: skip
)
def test_bad_search_values_are_400(client: FlaskClient, query: str) -> None:
    assert_outcome(client.get(f"/fhir/Patient?{query}"), 400)


def test_summary_count_and_total_none(client: FlaskClient) -> None:
    put(client, patient(id="p1"))
    counted = client.get("/fhir/Patient?_summary=count").json
    assert counted["total"] == 1 and "entry" not in counted
    assert "total" not in client.get("/fhir/Patient?_total=none").json


def test_post_search(client: FlaskClient) -> None:
    put(client, patient(id="p1"))
    response = client.post("/fhir/Patient/_search", data={"family": "rivera"})
    assert response.status_code == 200
    assert response.json["total"] == 1


def test_search_index_follows_updates_and_deletes(client: FlaskClient) -> None:
    put(client, patient(id="p1"))
    put(client, patient(id="p1", name=[{"family": "Nguyen"}]))
    assert ids(client, "/fhir/Patient?family=rivera") == []
    assert ids(client, "/fhir/Patient?family=nguyen") == ["p1"]
    client.delete("/fhir/Patient/p1")
    assert ids(client, "/fhir/Patient?family=nguyen") == []


def test_elements_subsets_matches_and_reads(client: FlaskClient) -> None:
    put(client, patient(id="p1"))
    match = client.get("/fhir/Patient?_id=p1&_elements=name,birthDate").json["entry"][0]["resource"]
    assert set(match) == {"resourceType", "id", "meta", "name", "birthDate"}
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in match[
        "meta"
    ]["tag"]
    read = client.get("/fhir/Patient/p1?_elements=gender").json
    assert set(read) == {"resourceType", "id", "meta", "gender"}
    stored_tags = client.get("/fhir/Patient/p1").json["meta"]["tag"]  # the stored resource is untouched
    assert not [t for t in stored_tags if t["code"] == "SUBSETTED"]
    assert_outcome(client.get("/fhir/Patient?_elements=name.family"), 400)


@pytest.mark.parametrize(
    ("summary", "kept", "dropped"),
    [
        ("true", {"identifier", "name", "gender", "birthDate", "telecom", "address"}, {"text"}),
        ("data", {"identifier", "name", "gender"}, {"text"}),
        ("text", {"text"}, {"name", "gender", "identifier"}),
    ],
)
def test_summary_modes(client: FlaskClient, summary: str, kept: set[str], dropped: set[str]) -> None:
    put(client, patient(id="p1", text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">A</div>"},
                        maritalStatus={"text": "single"}))  # fmt: skip
    for body in (
        client.get(f"/fhir/Patient?_id=p1&_summary={summary}").json["entry"][0]["resource"],
        client.get(f"/fhir/Patient/p1?_summary={summary}").json,
    ):
        assert kept <= set(body) and not dropped & set(body), body
        assert "SUBSETTED" in [tag["code"] for tag in body["meta"]["tag"]]
    if summary == "true":
        assert "maritalStatus" not in client.get("/fhir/Patient/p1?_summary=true").json  # not a summary element
    assert_outcome(client.get("/fhir/Patient/p1?_summary=brief"), 400)
