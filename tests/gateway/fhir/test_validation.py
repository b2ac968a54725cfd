import pytest

from gateway.fhir.errors import BadRequest, Unprocessable
from gateway.fhir.validation import classify_reference, validate_resource
from tests.conftest import FIXTURES, load_fixture

HL7_EXAMPLES = sorted(p.name for p in (FIXTURES / "hl7-r4-examples").glob("*.json"))


@pytest.mark.parametrize("name", HL7_EXAMPLES)
def test_every_hl7_example_validates(name: str) -> None:
    resource = load_fixture(f"hl7-r4-examples/{name}")
    assert validate_resource(resource) == resource["resourceType"]


def _issues(error: pytest.ExceptionInfo[Exception]) -> list[tuple[str, tuple[str, ...]]]:
    assert isinstance(error.value, BadRequest | Unprocessable)
    return [(issue.code, issue.expression) for issue in error.value.issues]


def test_required_binding_on_gender_is_enforced() -> None:
    with pytest.raises(Unprocessable) as error:
        validate_resource({"resourceType": "Patient", "gender": "M"})
    assert _issues(error) == [("code-invalid", ("Patient.gender",))]


def test_required_binding_inside_lists_points_at_the_element() -> None:
    with pytest.raises(Unprocessable) as error:
        validate_resource({"resourceType": "Patient", "name": [{"family": "A"}, {"use": "alias", "family": "B"}]})
    assert _issues(error) == [("code-invalid", ("Patient.name[1].use",))]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({"resourceType": "EpisodeOfCare", "status": "open", "patient": {"reference": "Patient/1"}}, "EpisodeOfCare.status"),
        ({"resourceType": "Consent", "status": "signed", "scope": {"text": "x"}, "category": [{"text": "x"}],
          "provision": {"provision": [{"type": "allow"}]}}, "Consent.provision.provision[0].type"),
    ],
)  # fmt: skip
def test_required_bindings_of_brief_types(resource: dict[str, object], path: str) -> None:
    with pytest.raises(Unprocessable) as error:
        validate_resource(resource)
    assert path in [e for _, expr in _issues(error) for e in expr]


def test_unknown_element_is_reported_with_its_path() -> None:
    with pytest.raises(Unprocessable) as error:
        validate_resource({"resourceType": "Patient", "name": [{"use1": "official"}]})
    assert _issues(error) == [("structure", ("Patient.name[0].use1",))]


def test_invalid_reference_is_reported() -> None:
    with pytest.raises(Unprocessable) as error:
        validate_resource({"resourceType": "Patient", "managingOrganization": {"reference": "Organisation/1"}})
    assert _issues(error) == [("value", ("Patient.managingOrganization.reference",))]


@pytest.mark.parametrize("bad_id", ["has space", "x" * 65, "a/b", ""])
def test_invalid_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(BadRequest) as error:
        validate_resource({"resourceType": "Patient", "id": bad_id})
    assert _issues(error)[0][1] == ("Patient.id",)


def test_type_must_match_the_url() -> None:
    with pytest.raises(BadRequest, match="does not match"):
        validate_resource({"resourceType": "Observation"}, "Patient")


@pytest.mark.parametrize("resource_type", ["Frobnicator", "Parameters", "SubscriptionTopic"])
def test_unknown_and_non_r4_types_are_refused(resource_type: str) -> None:
    with pytest.raises(BadRequest, match="not a resource type this server supports"):
        validate_resource({"resourceType": resource_type})


@pytest.mark.parametrize(
    ("reference", "kind"),
    [
        ("Patient/123", "relative"),
        ("Patient/123/_history/2", "relative"),
        ("http://other.example/fhir/Patient/1", "absolute"),
        ("#contained1", "contained"),
        ("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "urn"),
        ("Patient?identifier=x|1", "conditional"),
        ("Patients/1", "invalid"),
        ("#", "invalid"),
        ("just text", "invalid"),
    ],
)
def test_reference_kinds(reference: str, kind: str) -> None:
    assert classify_reference(reference) == kind


LABELLED_META = {
    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"},
                 {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
    "tag": [{"system": "https://crisis-fhir-gateway.org/fhir/CodeSystem/data-class", "code": "CONTACT"}],
}  # fmt: skip


def test_a_meta_seen_valid_still_lets_the_rest_of_the_next_resource_be_checked() -> None:
    """Metas are validated once per distinct shape (a pulled page repeats its labels on every
    resource); everything beside the meta is still validated every time."""
    first = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/1"},
        "meta": LABELLED_META,
    }
    assert validate_resource(first) == "CareTeam"
    with pytest.raises(Unprocessable) as error:
        validate_resource({**first, "status": "open"})
    assert _issues(error) == [("code-invalid", ("CareTeam.status",))]
    with pytest.raises(Unprocessable) as error:
        validate_resource({**first, "subject": {"reference": "Patient/1", "display": 7}})
    assert ("CareTeam.subject.display",) in [expression for _, expression in _issues(error)]


def test_an_invalid_meta_is_reported_with_its_path_even_beside_valid_ones() -> None:
    good = {"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "meta": LABELLED_META}
    assert validate_resource(good) == "Condition"
    broken = {
        **LABELLED_META,
        "security": [*LABELLED_META["security"], {"system": "urn:x", "code": "R", "colour": "red"}],
    }
    for _ in range(2):  # refused every time: an invalid meta is never remembered as valid
        with pytest.raises(Unprocessable) as error:
            validate_resource({**good, "meta": broken})
        assert ("Condition.meta.security[2].colour",) in [expression for _, expression in _issues(error)]
