"""POST Patient/$responder-match: who the responder is looking at, graded; identity fields only.

Candidates are blocked by cheap indexed keys and scored each on their own evidence
(mappings.matching); then the release hook's `may_know` keeps only the people the consent engine
would release something about to this requester for this purpose, and only those are ranked
against each other, so that a person the requester may not know of can neither take a place in
the shortlist nor cost a visible person a grade. What is finally shown passes the release hook
like any answer, and is audited there.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from gateway.fhir.context import FhirRequest, FhirResponse, Interaction, OperationContext
from gateway.fhir.errors import BadRequest, FhirError
from gateway.fhir.everything import find_candidates, identity_view
from gateway.fhir.operations.purpose import require_purpose
from gateway.fhir.repository import Repository
from gateway.fhir.validation import validate_resource
from mappings.matching import match_query_from_parameters, scored_candidates, shortlist

MATCH_GRADE_URL = "http://hl7.org/fhir/StructureDefinition/match-grade"
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def handle(
    engine: OperationContext, request: FhirRequest, repository: Repository, now: datetime, interaction: Interaction
) -> FhirResponse:
    body = request.body
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("$responder-match takes a Parameters resource", expression="Parameters")
    _check_parameters(body)
    given = _parameter(body, "purpose")
    if given and not request.param("purpose"):
        request.purpose = given
    reason = _parameter(body, "reason")
    if reason and not request.param("reason"):
        request.emergency_nature = reason
    require_purpose(request, "Parameters.parameter.where(name='purpose')")
    query = match_query_from_parameters(body)
    if not (query.family or query.given or query.phone or query.identifier):
        raise BadRequest("give at least a name, a phone number or an identifier", expression="Parameters.parameter")
    candidates = find_candidates(repository, engine.config.base_url, query, now.date())
    scored = scored_candidates(query, [c.content for c in candidates if c.content], now.date())
    known = {id(p) for p in engine.release.may_know(request, [c.patient for c in scored], repository, now)}
    ranked = shortlist([c for c in scored if id(c.patient) in known])
    entries = [
        {
            "fullUrl": f"{engine.config.base_url}/Patient/{c.patient['id']}",
            "resource": identity_view(c.patient),
            "search": {
                "mode": "match",
                "score": round(min(1.0, max(0.0, c.score / 30)), 3),
                "extension": [{"url": MATCH_GRADE_URL, "valueCode": c.grade}],
            },
        }
        for c in ranked
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle)


def _parameter(body: dict[str, Any], name: str) -> str | None:
    for parameter in body.get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == name:
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            return value if isinstance(value, str) and value else None
    return None


def _check_parameters(body: dict[str, Any]) -> None:
    """What $responder-match reads must be well formed: a 400 or 422 naming the parameter,
    never a failure half-way through scoring."""
    parameters = body.get("parameter")
    if not isinstance(parameters, list):
        raise BadRequest("Parameters.parameter must be a list", expression="Parameters.parameter")
    for index, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise BadRequest("each parameter needs a name", expression=where)
        name = parameter["name"]
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if name == "resource":
            try:
                validate_resource(parameter.get("resource"), "Patient")
            except FhirError as error:
                raise error.under(f"{where}.resource") from None
        elif name == "birthDate":
            try:
                valid = (
                    isinstance(value, str) and bool(_FULL_DATE.match(value)) and date.fromisoformat(value) is not None
                )
            except ValueError:
                valid = False
            if not valid:
                raise BadRequest("birthDate must be a full date, YYYY-MM-DD", expression=f"{where}.value")
        elif name == "age" and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 130):
            raise BadRequest("age must be a whole number of years from 0 to 130", expression=f"{where}.value")
        elif name in ("purpose", "reason") and not isinstance(value, str):
            raise BadRequest(f"{name} is a code or text (valueCode, valueString)", expression=f"{where}.value")
