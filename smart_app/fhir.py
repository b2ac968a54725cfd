"""What the app asks of the gateway's FHIR API, with the responder's access token: the match
and the brief. Plain Python over HTTP. Answers are reduced here to what the pages show, so
templates never walk FHIR."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
from lxml import etree, html

from mappings.brief import display_name

TIMEOUT = 15
FHIR_JSON = "application/fhir+json"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


class FhirError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Candidate:
    patient_id: str
    name: str
    grade: str  # certain, probable, possible
    birth_date: str | None
    age: int | None
    gender: str | None
    phones: tuple[str, ...] = ()
    address: str | None = None


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # the section's narrative, re-checked against the narrative whitelist here
    empty: bool
    updated: str | None = None  # "updated 3 days ago": the newest of the section's resources
    sources: tuple[str, ...] = ()  # the organizations its resources came from


@dataclass
class Brief:
    name: str
    sections: list[Section] = field(default_factory=list)
    part2: bool = False  # Part 2 content is shown: the §2.32 notice must be on screen
    three_things: list[str] = field(default_factory=list)  # a trigger, what helps, whom to call


class FhirApi:
    def __init__(self, base_url: str, access_token: str) -> None:
        self.base_url = base_url
        # The gateway's own responder API sits beside its FHIR base (…/fhir → …/responder).
        self.root = base_url.removesuffix("/fhir")
        self.headers = {"Authorization": f"Bearer {access_token}", "Accept": FHIR_JSON}

    def match(self, purpose: Purpose, description: dict[str, Any]) -> list[Candidate]:
        parameters = {"resourceType": "Parameters", "parameter": _parameters(description)}
        answer = self._call("POST", f"{self.base_url}/Patient/$responder-match", purpose.query(), parameters)
        return [_candidate(entry) for entry in answer.get("entry", []) if isinstance(entry.get("resource"), dict)]

    def brief(self, patient_id: str, purpose: Purpose, confirmed: bool) -> Brief | None:
        """None: nothing the responder may see (worded by the page exactly as "no record")."""
        query = {**purpose.query(), **({"confirmed": "true"} if confirmed else {})}
        try:
            document = self._call("GET", f"{self.base_url}/Patient/{patient_id}/$responder-brief", query)
        except FhirError as error:
            if error.status == 404:
                return None
            raise
        return _brief(document)

    def record_outcome(self, patient_id: str, disposition: str, note: str) -> list[str]:
        """The outcome, written back by the gateway; the care teams it told, by name."""
        body = {"patient": patient_id, "disposition": disposition, "note": note}
        answer = self._call("POST", f"{self.root}/responder/outcome", {}, body, "application/json")
        return [str(name) for name in answer.get("told") or []]

    def _call(self, method: str, url: str, query: dict[str, str], body: Any = None,
              content_type: str = FHIR_JSON) -> dict[str, Any]:  # fmt: skip
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            answer = requests.request(method, url, params=query, json=body, headers=headers, timeout=TIMEOUT)
            found = answer.json()
        except (requests.RequestException, ValueError) as error:
            raise FhirError(503, f"the gateway did not answer: {error}") from None
        if answer.status_code >= 400:
            issues = found.get("issue", []) if isinstance(found, dict) else []
            message = "; ".join(str(i.get("diagnostics", "")) for i in issues if isinstance(i, dict))
            if not message and isinstance(found, dict):
                message = str(found.get("error_description") or "")
            raise FhirError(answer.status_code, message or f"the gateway answered {answer.status_code}")
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Purpose:
    """The purpose of use sent with each request; a medical emergency carries its nature."""

    code: str
    emergency_nature: str | None = None

    def query(self) -> dict[str, str]:
        if self.emergency_nature:
            return {"purpose": "BTG", "reason": self.emergency_nature}
        return {"purpose": self.code}


def _parameters(description: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in ("given", "family", "nickname", "birthDate", "phone", "address"):
        value = str(description.get(name) or "").strip()
        if value:
            found.append({"name": name, ("valueDate" if name == "birthDate" else "valueString"): value})
    age = description.get("age")
    if isinstance(age, int):
        found.append({"name": "age", "valueInteger": age})
    return found


def _candidate(entry: dict[str, Any]) -> Candidate:
    patient = entry["resource"]
    grade = next((e.get("valueCode") for e in entry.get("search", {}).get("extension", [])
                  if e.get("url") == MATCH_GRADE), "possible")  # fmt: skip
    birth = patient.get("birthDate")
    return Candidate(
        patient_id=str(patient.get("id")),
        name=_person_name(patient),
        grade=str(grade),
        birth_date=birth,
        age=_age(birth),
        gender=patient.get("gender"),
        phones=tuple(t["value"] for t in patient.get("telecom", []) if t.get("system") == "phone" and t.get("value")),
        address=next(
            (" ".join([*a.get("line", []), a.get("city", "")]).strip() for a in patient.get("address", [])), None
        ),  # fmt: skip
    )


def _person_name(patient: dict[str, Any]) -> str:
    return display_name(patient, "Name not on file")


def _age(birth: Any) -> int | None:
    if not isinstance(birth, str) or len(birth) < 4 or not birth[:4].isdigit():
        return None
    born = date(int(birth[:4]), int(birth[5:7]) if len(birth) >= 7 else 7, int(birth[8:10]) if len(birth) >= 10 else 1)
    today = date.today()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


_ALLOWED = frozenset(
    "p br div span b strong i em ul ol li dl dt dd table thead tbody tr th td h3 h4 h5 a small".split()
)


def _safe(div: str) -> str:
    """A section narrative, re-checked here (the app does not take HTML on trust): only basic
    elements, no attributes but a tel:/#/https link's href; the XHTML namespace dropped."""
    try:
        root = etree.fromstring(div.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return ""
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        href = element.get("href") if name == "a" else None
        element.attrib.clear()
        if href and href.startswith(("tel:", "#", "https://")):
            element.set("href", href)
        element.tag = name if name in _ALLOWED else "span"
    etree.cleanup_namespaces(root)
    root.tag = "div"
    return str(html.tostring(root, encoding="unicode"))


THREE_THINGS = "Three things to know: "
SOURCE_ORGANIZATION = "https://crisis-fhir-gateway.org/fhir/StructureDefinition/source-organization"
PHONE = re.compile(r"(?<![\w/(])(\(?\+?\d[\d ().-]{5,}\d)(?![\w/])")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _brief(document: dict[str, Any]) -> Brief:
    entries: list[dict[str, Any]] = [e["resource"] for e in document.get("entry", [])
                                     if isinstance(e.get("resource"), dict)]  # fmt: skip
    by_reference = {f"{r.get('resourceType')}/{r.get('id')}": r for r in entries}
    composition: dict[str, Any] = next((r for r in entries if r.get("resourceType") == "Composition"), {})
    patient: dict[str, Any] = next((r for r in entries if r.get("resourceType") == "Patient"), {})
    labels = {c.get("code") for c in document.get("meta", {}).get("security", [])}
    brief = Brief(_person_name(patient), part2="42CFRPart2" in labels)
    for section in composition.get("section", []):
        div = str((section.get("text") or {}).get("div") or "")
        body = _safe(div)
        first = _first_item(div)
        if first.startswith(THREE_THINGS) and not brief.three_things:
            brief.three_things = first.removeprefix(THREE_THINGS).split(" | ")
            body = re.sub(r"<li>Three things to know: .*?</li>", "", body, count=1)  # it heads the brief instead
        cited = [by_reference.get(str(e.get("reference", "")).split("/_history")[0].rsplit("/fhir/", 1)[-1])
                 for e in section.get("entry", [])]  # fmt: skip
        resources = [r for r in cited if r is not None]
        brief.sections.append(Section(str(section.get("title") or ""), _with_phone_links(body), "emptyReason" in section,
                                      _freshness(resources), _sources(resources, by_reference)))  # fmt: skip
    return brief


def _first_item(div: str) -> str:
    """The text of a narrative's first list item ("" when there is none)."""
    try:
        root = etree.fromstring(div.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return ""
    item = next((e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "li"), None)
    return "".join(item.itertext()) if item is not None else ""


def _with_phone_links(body: str) -> str:
    """Phone numbers in text become tap-to-call links (the 24/7 line is already listed first)."""

    def tel(found: re.Match[str]) -> str:
        number = found.group(1)
        digits = re.sub(r"[^0-9+]", "", number)
        if ISO_DATE.search(number) or len(digits.lstrip("+")) < 7:
            return number  # a date, or too short to dial
        return f'<a href="tel:{digits}">{number}</a>'

    def link(text: str) -> str:
        return PHONE.sub(tel, text)

    return re.sub(r">([^<]+)<", lambda m: ">" + link(m.group(1)) + "<", body)


def _freshness(resources: list[dict[str, Any]]) -> str | None:
    stamps = [str((r.get("meta") or {}).get("lastUpdated") or "")[:10] for r in resources]
    newest = max((s for s in stamps if len(s) == 10), default=None)
    if newest is None:
        return None
    days = (date.today() - date.fromisoformat(newest)).days
    return "updated today" if days <= 0 else "updated yesterday" if days == 1 else f"updated {days} days ago"


def _sources(resources: list[dict[str, Any]], by_reference: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    names: list[str] = []
    for resource in resources:
        for extension in (resource.get("meta") or {}).get("extension") or []:
            if isinstance(extension, dict) and extension.get("url") == SOURCE_ORGANIZATION:
                reference = str((extension.get("valueReference") or {}).get("reference") or "")
                organization = by_reference.get(reference) or {}
                name = str(organization.get("name") or (extension.get("valueReference") or {}).get("display") or "")
                if name and name not in names:
                    names.append(name)
    return tuple(names)
