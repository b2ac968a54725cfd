"""The outside probe's hand-made requests (issue 14): each one answered 500 (or not as an
OperationOutcome) before; each now gets a clear answer, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.settings import load_settings
from gateway.store.schema import audit_event
from tests.gateway.auth.harness import Harness

FHIR_JSON = "application/fhir+json"


def outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = json.loads(response.data)
    assert body["resourceType"] == "OperationOutcome", body
    return dict(body)


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Probe", "given": ["Edge"]}], **elements}


# -- 1. dates at the edges of the calendar --------------------------------------------------------------
@pytest.mark.parametrize("birth", ["9999-12-31", "0001-01-01", "9999", "9999-12"])
def test_the_first_and_last_dates_are_stored_and_searched(client: FlaskClient, birth: str) -> None:
    created = client.put("/fhir/Patient/edge", data=json.dumps(patient(id="edge", birthDate=birth)),
                         content_type=FHIR_JSON)  # fmt: skip
    assert created.status_code in (200, 201), created.data
    for search in (f"birthdate={birth}", f"birthdate=ge{birth}", f"birthdate=le{birth}", f"birthdate=ap{birth}",
                   "birthdate=ge9999-12-31", "birthdate=lt0001-01-02", "birthdate=sa9999-12-31"):  # fmt: skip
        answer = client.get(f"/fhir/Patient?{search}")
        assert answer.status_code == 200, (search, answer.data[:300])
    found = json.loads(client.get(f"/fhir/Patient?birthdate={birth}").data)
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["edge"]


def test_edge_instants_with_time_zones(client: FlaskClient) -> None:
    encounter = {"resourceType": "Encounter", "id": "edge-enc", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "period": {"start": "0001-01-01T00:00:00+14:00", "end": "9999-12-31T23:59:59-12:00"}}  # fmt: skip
    created = client.put("/fhir/Encounter/edge-enc", data=json.dumps(encounter), content_type=FHIR_JSON)
    assert created.status_code in (200, 201), created.data
    for search in ("date=ge9999-12-31T23:00:00-12:00", "date=le0001-01-01T00:00:00%2B14:00", "date=ap9999-12-31"):
        assert client.get(f"/fhir/Encounter?{search}").status_code == 200, search


def test_a_transaction_with_the_last_date_commits(client: FlaskClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(birthDate="9999-12-31"), "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip
    assert client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON).status_code == 200


# -- NUL and other control characters ------------------------------------------------------------------
@pytest.mark.parametrize("text", ["a\u0000b", "bell\u0007", "escape\u001b[0m"])
def test_control_characters_in_strings_are_refused_with_their_location(client: FlaskClient, text: str) -> None:
    body = patient(name=[{"family": text}])
    found = outcome(client.post("/fhir/Patient", data=json.dumps(body), content_type=FHIR_JSON), 400)
    assert found["issue"][0]["expression"] == ["Patient.name[0].family"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": body, "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip
    located = outcome(client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON), 400)
    assert located["issue"][0]["expression"] == ["Bundle.entry[0].resource.name[0].family"]


def test_whitespace_controls_are_fine(client: FlaskClient) -> None:
    body = patient(name=[{"family": "Tab\tNew\nLine\rReturn"}])
    assert client.post("/fhir/Patient", data=json.dumps(body), content_type=FHIR_JSON).status_code == 201


def test_control_characters_in_search_values_are_refused(client: FlaskClient) -> None:
    found = outcome(client.get("/fhir/Patient?family=a%00b"), 400)
    assert "family" in json.dumps(found)
    outcome(client.get("/fhir/Patient?identifier=sys%7Ca%00"), 400)


# -- numbers -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["Patient?_offset=99999999999999999999", "Patient?_count=99999999999999999999", "Patient/x/_history/99999999999999999999",
     "Patient?_count=%C2%B3", "Patient?_offset=%C2%B2", "Patient/_history?_count=%C2%B3", "Patient/x/_history/%C2%B3"],
)  # fmt: skip
def test_numbers_out_of_range_or_not_ascii_digits(client: FlaskClient, path: str) -> None:
    answer = client.get(f"/fhir/{path}")
    assert answer.status_code in (400, 404), (path, answer.status_code, answer.data[:200])
    assert json.loads(answer.data)["resourceType"] == "OperationOutcome"


# -- Bundles whose request is the wrong shape ------------------------------------------------------------
@pytest.mark.parametrize("method", [{"x": 1}, ["POST"], 7, None])
def test_a_bundle_entry_whose_method_is_not_a_string(client: FlaskClient, method: Any) -> None:
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": patient(), "request": {"method": method, "url": "Patient"}}]}  # fmt: skip
        answer = client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON)
        assert answer.status_code in (200, 400), answer.data[:300]
        text = answer.data.decode()
        assert "request.method" in text


# -- 2. every answer under /fhir is an OperationOutcome ---------------------------------------------------
@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND", "CONNECT"])
def test_methods_without_a_route_answer_405_as_an_operation_outcome(client: FlaskClient, method: str) -> None:
    outcome(client.open("/fhir/Patient", method=method), 405)
    outcome(client.open("/fhir", method=method), 405)


@pytest.mark.parametrize("path", ["Patient/%00", "Patient/a%01b", "Patient/%7F", "Patient/%00/_history/1", "%00"])
def test_ids_with_control_characters_answer_as_operation_outcomes(client: FlaskClient, path: str) -> None:
    answer = client.get(f"/fhir/{path}")
    assert answer.status_code in (400, 404), (path, answer.status_code, answer.data[:200])
    assert json.loads(answer.data)["resourceType"] == "OperationOutcome"


# -- 3. work is bounded by elements, and XML is linear ------------------------------------------------------
def test_a_resource_with_too_many_elements_is_refused_in_json_and_xml(client: FlaskClient) -> None:
    from gateway.fhir.formats import dump_xml

    huge = patient(id="huge", extension=[{"url": "https://x.example/e", "valueString": str(n)} for n in range(40_000)])
    found = outcome(client.put("/fhir/Patient/huge", data=json.dumps(huge), content_type=FHIR_JSON), 413)
    assert found["issue"][0]["code"] == "too-costly" and found["issue"][0]["expression"] == ["Patient"]
    outcome(client.put("/fhir/Patient/huge", data=dump_xml(huge), content_type="application/fhir+xml"), 413)
    fits = patient(id="fits", extension=[{"url": "https://x.example/e", "valueString": str(n)} for n in range(20_000)])
    assert client.put("/fhir/Patient/fits", data=json.dumps(fits), content_type=FHIR_JSON).status_code == 201
    as_xml = client.get("/fhir/Patient/fits?_format=xml")
    assert as_xml.status_code == 200 and as_xml.data.count(b"<extension ") == 20_000


# -- 5. the narrative whitelist (txt-1, txt-2), in JSON and XML ---------------------------------------------
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
UNSAFE_NARRATIVES = [
    (f"<div {XHTML}><script>alert(1)</script>Ada</div>", "<script>"),
    (f'<div {XHTML}><p onclick="steal()">Ada</p></div>', "onclick"),
    (f'<div {XHTML}><a href="javascript:steal()">Ada</a></div>', "script"),
    (f'<div {XHTML}><iframe src="https://evil.example"/>Ada</div>', "<iframe>"),
    (f"<div {XHTML}><form><input/></form>Ada</div>", "<form>"),
    (f"<div {XHTML}>   </div>", "txt-2"),
    ("<div>Ada</div>", "XHTML namespace"),
    (f"<div {XHTML}>Ada&nbsp;Lovelace</div>", "well-formed"),
    (f"<div {XHTML}><svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>Ada</div>", "<svg>"),
]


@pytest.mark.parametrize(("div", "why"), UNSAFE_NARRATIVES)
def test_narratives_outside_the_whitelist_are_refused_with_422_and_the_location(
    client: FlaskClient, div: str, why: str
) -> None:
    body = patient(text={"status": "generated", "div": div})
    found = outcome(client.post("/fhir/Patient", data=json.dumps(body), content_type=FHIR_JSON), 422)
    assert found["issue"][0]["expression"] == ["Patient.text.div"]
    assert why in found["issue"][0]["diagnostics"]
    # Inside a contained resource, and inside a transaction: the same rule, the precise location.
    holder = patient(contained=[{**patient(id="inner"), "text": {"status": "generated", "div": div}}])
    found = outcome(client.post("/fhir/Patient", data=json.dumps(holder), content_type=FHIR_JSON), 422)
    assert found["issue"][0]["expression"] == ["Patient.contained[0].text.div"]
    assert json.loads(client.get("/fhir/Patient?family=Probe").data).get("total") == 0  # nothing stored


@pytest.mark.parametrize(("div", "why"), [n for n in UNSAFE_NARRATIVES if "XHTML namespace" not in n[1]
                                          and "well-formed" not in n[1]])  # fmt: skip
def test_narratives_outside_the_whitelist_are_refused_in_xml(client: FlaskClient, div: str, why: str) -> None:
    xml = (f'<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{div}</text>'
           '<name><family value="Probe"/></name></Patient>')  # fmt: skip
    found = outcome(client.post("/fhir/Patient", data=xml, content_type="application/fhir+xml"), 422)
    assert found["issue"][0]["expression"] == ["Patient.text.div"]
    assert why in found["issue"][0]["diagnostics"]


def test_a_rich_but_safe_narrative_is_kept_as_sent(client: FlaskClient) -> None:
    div = (f'<div {XHTML}><h3>Crisis plan</h3><table border="1"><tr><th scope="col">Helps</th></tr>'
           '<tr><td style="color: navy">Quiet room, <b>music</b></td></tr></table>'
           '<p lang="es" xml:lang="es">Habla <a href="#care-team">con su equipo</a>.</p>'
           '<img src="#logo" alt="clinic logo"/></div>')  # fmt: skip
    created = client.post("/fhir/Patient", data=json.dumps(patient(text={"status": "generated", "div": div})),
                          content_type=FHIR_JSON)  # fmt: skip
    assert created.status_code == 201, created.data
    read = json.loads(client.get(created.headers["Location"].split("/_history")[0]).data)
    assert read["text"]["div"] == div


@pytest.mark.parametrize(
    ("entry", "location"),
    [
        ({"request": {"method": "POST", "url": "Patient"}}, "Bundle.entry[1].resource"),
        ({"request": {"method": "GET"}}, "Bundle.entry[1].request.url"),
        ({"request": {"method": ["GET"], "url": "Patient"}}, "Bundle.entry[1].request.method"),
        ({"resource": {"resourceType": "Patient", "gender": "x"}, "request": {"method": "POST", "url": "Patient"}},
         "Bundle.entry[1].resource.gender"),
    ],
)  # fmt: skip
def test_a_refused_batch_entry_is_located_once(client: FlaskClient, entry: dict[str, Any], location: str) -> None:
    """The probe saw `Bundle.entry[2].resource.entry[2].resource`: the entry's place given twice."""
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}, entry]}  # fmt: skip
    answer = client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON)
    assert answer.status_code == 200, answer.data
    results = json.loads(answer.data)["entry"]
    assert results[0]["response"]["status"].startswith("201")
    assert results[1]["response"]["outcome"]["issue"][0]["expression"] == [location]


# -- R4 types the R4B models cannot validate: refused by name, listed in the CapabilityStatement -------
R4_ONLY = ["MedicinalProduct", "MedicinalProductIngredient", "SubstanceSpecification", "SubstancePolymer",
           "EffectEvidenceSynthesis", "RiskEvidenceSynthesis", "Evidence", "EvidenceVariable"]  # fmt: skip


@pytest.mark.parametrize("resource_type", R4_ONLY)
def test_r4_types_without_an_r4b_model_are_refused_by_name(client: FlaskClient, resource_type: str) -> None:
    body = {"resourceType": resource_type, "id": "r4-only", "status": "active"}
    found = outcome(client.post(f"/fhir/{resource_type}", data=json.dumps(body), content_type=FHIR_JSON), 404)
    assert found["issue"][0]["code"] == "not-supported"
    assert (
        f"{resource_type} is an R4 4.0.1 resource type this server does not support" in found["issue"][0]["diagnostics"]
    )
    # In a transaction the entry's resource is refused the same way, and nothing is written.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": body, "request": {"method": "PUT", "url": f"{resource_type}/r4-only"}}]}  # fmt: skip
    refused = json.loads(client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON).data)
    assert "R4 4.0.1 resource type" in refused["issue"][0]["diagnostics"]
    assert json.loads(client.get("/fhir/Patient?family=Probe").data).get("total") == 0
    xml = f'<{resource_type} xmlns="http://hl7.org/fhir"><id value="r4-only"/></{resource_type}>'
    found = outcome(client.post("/fhir/Patient", data=xml, content_type="application/fhir+xml"), 400)
    assert "R4 4.0.1 resource type" in found["issue"][0]["diagnostics"]
    documentation = json.loads(client.get("/fhir/metadata").data)["rest"][0]["documentation"]
    assert resource_type in documentation


# -- what a refused request leaves in the audit (the fuzz run found 503s on PostgreSQL) -------------------
@pytest.mark.parametrize(
    "path",
    ["Condition?%00name=x", "Condition?code=%06", "CarePlan/x/_history?_since=%10", "Patient/a%00b",
     "Condition?patient=" + "p" * 300, "Condition?patient=a%00b", "Patient?_id=" + "x" * 300],
)  # fmt: skip
def test_refused_requests_with_control_characters_or_long_values_are_audited(smart: Harness, path: str) -> None:
    """Each is a client mistake (4xx) or a search that finds nothing, never a 503 because its
    audit record could not be written: control characters are percent-encoded (PostgreSQL stores
    no U+0000) and what is not a patient id names no patient (nor overflows that column)."""
    token = smart.backend_token(smart.add_backend("ehr-probe"))
    answer = smart.get(path, token)
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.status_code == 200 or answer.json()["resourceType"] == "OperationOutcome"
    with smart.app.extensions["database"].connect() as connection:
        last = connection.execute(select(audit_event.c.body).order_by(audit_event.c.seq.desc()).limit(1)).scalar_one()
    recorded = json.dumps(last)
    assert "\\u00" not in recorded, recorded  # no control character, escaped or not
    assert path.count("%00") == str(last["request"]).count("%00")  # the request line as asked, encoded once


def test_a_long_or_odd_purpose_of_use_is_refused_and_audited(smart: Harness) -> None:
    token = smart.backend_token(smart.add_backend("ehr-probe"))
    for purpose in ("P" * 200, "TREAT\u0085x"):
        answer = smart.get("Patient", token, headers={"X-Purpose-Of-Use": purpose.encode().decode("latin-1")})
        assert answer.status_code == 400, (answer.status_code, answer.text[:300])
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_a_refusal_quoting_a_control_character_is_audited(smart: Harness) -> None:
    token = smart.backend_token(smart.add_backend("ehr-probe"))
    answer = smart.get("Patient", token, headers={"Prefer": "handling=strict"}, params={"na\u0000me": "x"})
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome", answer.text[:300]


# -- a search page is bounded by size, not only by _count ---------------------------------------------------
def test_a_page_of_large_resources_ends_early_and_its_next_link_goes_on(app: Flask, database_url: str) -> None:
    """A page of 1,000 resources of 100,000 elements each would load gigabytes: past
    max_page_bytes the page ends, `next` goes on from there, and paging still finds each once."""
    small = create_app(load_settings(database_url=database_url, base_url="http://127.0.0.1:8080/fhir", auth="off",
                                     max_page_bytes=64 * 1024))  # fmt: skip
    client = small.test_client()
    for n in range(10):  # about 30 KB each: two fit in a page
        body = patient(id=f"big-{n}", extension=[{"url": "https://probe.example/x", "valueString": "y" * 90}] * 300)
        assert client.put(f"/fhir/Patient/big-{n}", data=json.dumps(body), content_type=FHIR_JSON).status_code == 201
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=10&_sort=_id"
    pages = 0
    while url:
        page = json.loads(client.get(url).data)
        assert page["total"] == 10
        assert 1 <= len(page["entry"]) <= 2
        seen += [e["resource"]["id"] for e in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = following[0].removeprefix("http://127.0.0.1:8080") if following else None
        pages += 1
    assert seen == [f"big-{n}" for n in range(10)] and pages >= 5
    # History pages too: every version once.
    versions: list[str] = []
    url = "/fhir/Patient/_history?_count=10"
    while url:
        page = json.loads(client.get(url).data)
        assert 1 <= len(page["entry"]) <= 2
        versions += [e["resource"]["id"] for e in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = following[0].removeprefix("http://127.0.0.1:8080") if following else None
    assert sorted(versions) == [f"big-{n}" for n in range(10)]
    small.extensions["database"].dispose()
