"""A patient's released resources → the responder brief, a FHIR document Bundle.

Pure: resources in, a Bundle out; time comes in as `as_of`. The caller passes only what the
consent engine released, so the brief can say nothing about what was withheld: an empty section
reads the same whether nothing is on file or nothing may be shown.

Sections, in order (../shared/research/domain.md §2): identity, safety and de-escalation, whom
to call, treatment, history, social needs, basis and notice.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_engine.codes import LABEL_SYSTEM, SOURCE_ORGANIZATION
from consent_engine.model import Basis, BasisKind, Notice, ScopeExplanation
from consent_engine.redaction import PART2_REFRAIN, notice_extensions

PROJECT = "https://crisis-fhir-gateway.org/fhir"
DOCUMENT_TYPE = {"system": f"{PROJECT}/CodeSystem/document-type", "code": "responder-brief",
                 "display": "Responder brief"}  # fmt: skip
SECTION_SYSTEM = f"{PROJECT}/CodeSystem/brief-section"
SAFETY_PLAN_CATEGORY = f"{PROJECT}/CodeSystem/care-plan-category"
SAFETY_PLAN_STEP = f"{PROJECT}/CodeSystem/safety-plan-step"
LOINC = "http://loinc.org"
CARE_EXPERIENCE = "95541-9"
TREATMENT_PREFERENCE = "75773-2"
ADVANCE_DIRECTIVE = "42348-3"
GUARDIAN_CODES = frozenset({"GUARD", "POWATT", "HPOWATT", "DPOWATT", "SPOWATT"})
EMPTY = "Nothing on file for this section."

SECTIONS = (
    ("identity", "Is this the right person?"),
    ("safety", "Safety and de-escalation"),
    ("contacts", "Whom to call"),
    ("treatment", "Treatment"),
    ("history", "History"),
    ("social", "Social needs"),
    ("basis", "Basis and notice"),
)
# Plain-language categories for diagnoses shown to non-clinical roles (ICD-10-CM prefixes).
CATEGORIES = (
    (("F10", "F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19"), "Substance use condition"),
    (("F2",), "Psychotic disorder"),
    (("F30", "F31", "F32", "F33", "F34", "F39"), "Mood condition"),
    (("F4",), "Anxiety or stress-related condition"),
    (("F6",), "Personality condition"),
    (("F7", "F84"), "Developmental condition"),
    (("F90",), "Attention condition"),
)


BASIS_TEXT = {
    BasisKind.CONSENT: "the patient's consent",
    BasisKind.EMERGENCY: "a medical emergency (42 CFR 2.51)",
    BasisKind.COURT_ORDER: "a court order (42 CFR 2.61)",
    BasisKind.DECEDENT: "a cause-of-death inquiry (42 CFR 2.15(b))",
    BasisKind.TREATMENT: "treatment between providers (HIPAA, 45 CFR 164.506(c))",
    BasisKind.JURISDICTION: "treatment by clinical staff (state mental-health law)",
    BasisKind.OWN_RECORDS: "your organization's own records",
    BasisKind.ADMINISTRATION: "compliance administration",
}
# Patient-data resources whose absence from a section would be a released item the brief drops.
PATIENT_DATA = frozenset({"Patient", "EpisodeOfCare", "CareTeam", "Flag", "CarePlan", "Observation", "Condition",
                          "MedicationStatement", "MedicationRequest", "AllergyIntolerance", "Encounter",
                          "RelatedPerson", "ServiceRequest", "DocumentReference"})  # fmt: skip


@dataclass(frozen=True)
class BriefContext:
    base_url: str
    as_of: datetime
    clinical: bool  # the recipient's role sees codes; others see plain-language categories
    stale_after: timedelta = timedelta(days=180)
    bases: tuple[Basis, ...] = ()  # how what is in the brief was released
    notice: Notice | None = None  # the §2.32 notice when Part 2 content is in the brief
    scope: tuple[ScopeExplanation, ...] = ()  # §2.32(b): what each relied-on consent covers
    match_grade: str | None = None


def basis_text(basis: Basis) -> str:
    text = BASIS_TEXT[basis.kind]
    if basis.consent:
        kind = "; a single consent for treatment, payment and operations" if basis.tpo else ""
        separate = "; a separate consent for use in proceedings (42 CFR 2.31(d))" if basis.separate else ""
        text += f" (Consent/{basis.consent}{kind}{separate})"
    if basis.order:
        text += f" (Consent/{basis.order}; {basis.citation})"
    return text


@dataclass
class _Section:
    key: str
    title: str
    lines: list[str] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)  # references


def _codes(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system", "")), str(c.get("code", ""))) for c in concept.get("coding") or [] if isinstance(c, dict)
    ]


def _text(concept: Any, fallback: str = "") -> str:
    if not isinstance(concept, dict):
        return fallback
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return fallback


def _ref(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None


def _age(birth: str | None, as_of: datetime) -> str:
    born = _parse_date(birth)
    if born is None:
        return "age unknown"
    years = as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
    return f"{years} years (born {birth})"


def _ago(moment: datetime | None, as_of: datetime) -> str:
    if moment is None:
        return "date unknown"
    days = (as_of.date() - moment.date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    return f"on {moment.date().isoformat()}"


def _freshness(resource: dict[str, Any], context: BriefContext) -> str:
    updated = _parse_date((resource.get("meta") or {}).get("lastUpdated"))
    if updated is not None and context.as_of - updated > context.stale_after:
        return f" (last updated {updated.date().isoformat()}; verify with care team)"
    return ""


def _active_period(period: Any, as_of: datetime) -> bool:
    if not isinstance(period, dict):
        return True
    start, end = _parse_date(period.get("start")), _parse_date(period.get("end"))
    return (start is None or start <= as_of) and (end is None or as_of <= end + timedelta(days=1))


def diagnosis_category(condition: dict[str, Any]) -> str:
    for system, code in _codes(condition.get("code")):
        if system.endswith("icd-10-cm"):
            normalized = code.replace(".", "").upper()
            for prefixes, label in CATEGORIES:
                if normalized.startswith(prefixes):
                    return label
            if normalized.startswith("F"):
                return "Mental health condition"
    labels = {c.get("code") for c in (condition.get("meta") or {}).get("security") or [] if isinstance(c, dict)}
    if labels & {"SUD", "ETH", "OPIOIDUD", "ETHUD"}:
        return "Substance use condition"
    if labels & {"MH", "PSY", "BH"}:
        return "Mental health condition"
    return "Health condition"


def _is_sdoh(condition: dict[str, Any]) -> bool:
    if any(code.replace(".", "").upper().startswith("Z59") for _, code in _codes(condition.get("code"))):
        return True
    return any(code == "sdoh" for concept in condition.get("category") or [] for _, code in _codes(concept))


def _phone_order(telecom: dict[str, Any], available_all_day: bool) -> tuple[int, int]:
    round_the_clock = (
        available_all_day or "24/7" in str(telecom.get("extension") or "") or telecom.get("use") == "mobile"
    )
    return (0 if round_the_clock else 1, int(telecom.get("rank") or 99))


def _all_day(role: dict[str, Any]) -> bool:
    for slot in role.get("availableTime") or []:
        if isinstance(slot, dict) and slot.get("allDay") and len(slot.get("daysOfWeek") or []) == 7:
            return True
    return False


def _phones(resource: dict[str, Any]) -> list[str]:
    all_day = _all_day(resource)
    phones = [t for t in resource.get("telecom") or [] if isinstance(t, dict) and t.get("system") == "phone"]
    ordered = sorted(phones, key=lambda t: _phone_order(t, all_day))
    return [f"{t.get('value')}{' (24/7)' if all_day and i == 0 else ''}" for i, t in enumerate(ordered)]


def display_name(resource: dict[str, Any] | None, missing: str = "unknown") -> str:
    """A person's or organization's name for people to read: the official name first."""
    if not resource:
        return missing
    names = resource.get("name")
    if isinstance(names, str):
        return names or missing
    found = [n for n in names or [] if isinstance(n, dict)]
    for name in sorted(found, key=lambda n: n.get("use") != "official"):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
        return " ".join(p for p in parts if p) or missing
    return missing


class _Index:
    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.by_ref = {_ref(r): r for r in resources}
        self.by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in self.by_ref.values():
            self.by_type.setdefault(str(resource.get("resourceType")), []).append(resource)

    def get(self, reference: Any) -> dict[str, Any] | None:
        if isinstance(reference, dict):
            reference = reference.get("reference")
        return self.by_ref.get(str(reference)) if reference else None

    def of(self, resource_type: str) -> list[dict[str, Any]]:
        return self.by_type.get(resource_type, [])


def _identity(patient: dict[str, Any] | None, section: _Section, context: BriefContext) -> None:
    if patient is None:
        return
    section.entries.append(_ref(patient))
    names = []
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            label = {"nickname": "goes by", "old": "formerly", "usual": "known as"}.get(str(name.get("use")), "")
            names.append(f"{label + ' ' if label else ''}{display_name({'name': [name]})}")
    section.lines.append("Name: " + "; ".join(names) if names else "Name: not recorded")
    section.lines.append(f"Age: {_age(patient.get('birthDate'), context.as_of)}")
    if patient.get("gender"):
        section.lines.append(f"Gender: {patient['gender']}")
    for extension in patient.get("extension") or []:
        if isinstance(extension, dict) and "pronoun" in str(extension.get("url", "")):
            section.lines.append(f"Pronouns: {_text(extension.get('valueCodeableConcept'), 'recorded')}")
    for communication in patient.get("communication") or []:
        if isinstance(communication, dict):
            language = _text(communication.get("language"), "unknown")
            preferred = " (preferred)" if communication.get("preferred") else ""
            section.lines.append(f"Language: {language}{preferred}")
    if patient.get("photo"):
        section.lines.append("Photo: on file")
    for address in patient.get("address") or []:
        if isinstance(address, dict):
            text = address.get("text") or ", ".join(
                p for p in [*address.get("line", []), address.get("city"), address.get("postalCode")] if p
            )
            section.lines.append(f"Address ({address.get('use', 'last known')}): {text}")
    for phone in _phones(patient):
        section.lines.append(f"Phone: {phone}")
    if context.match_grade:
        section.lines.append(f"Match: {context.match_grade}")


def _safety(index: _Index, section: _Section, context: BriefContext) -> None:
    trigger = helps = call = None
    for observation in index.of("Observation"):
        codes = {code for _, code in _codes(observation.get("code"))}
        if codes & {CARE_EXPERIENCE, TREATMENT_PREFERENCE}:
            kind = "Care preference" if CARE_EXPERIENCE in codes else "Treatment preference"
            value = observation.get("valueString") or _text(observation.get("valueCodeableConcept"))
            section.lines.append(f"{kind}: {value}{_freshness(observation, context)}")
            section.entries.append(_ref(observation))
    for flag in index.of("Flag"):
        if flag.get("status") != "active" or not _active_period(flag.get("period"), context.as_of):
            continue  # expired alerts are dropped
        author = display_name(index.get(flag.get("author"))) if flag.get("author") else "author not recorded"
        section.lines.append(f"Alert: {_text(flag.get('code'), 'alert')} (by {author}){_freshness(flag, context)}")
        section.entries.append(_ref(flag))
    for plan in index.of("CarePlan"):
        if not _is_safety_plan(plan):
            continue
        section.entries.append(_ref(plan))
        stale = _freshness(plan, context)
        status = plan.get("status")
        if status not in ("active", None):
            section.lines.append(f"Safety plan ({status}){stale}")
        elif stale:
            section.lines.append("Safety plan" + stale)
        for activity in plan.get("activity") or []:
            detail = activity.get("detail") or {} if isinstance(activity, dict) else {}
            step = next((code for _, code in _codes(detail.get("code"))), "")
            description = str(detail.get("description") or "")
            if step == "warning-signs" and trigger is None:
                trigger = description
            elif step == "coping-strategies" and helps is None:
                helps = description
            elif step in ("people-to-ask-for-help", "professionals-to-contact") and call is None:
                call = description
            section.lines.append(f"Safety plan, {step.replace('-', ' ')}: {description}")
    for allergy in index.of("AllergyIntolerance"):
        section.lines.append(f"Allergy: {_text(allergy.get('code'), 'recorded')}")
        section.entries.append(_ref(allergy))
    for document in index.of("DocumentReference"):
        if ADVANCE_DIRECTIVE in {code for _, code in _codes(document.get("type"))}:
            section.lines.append("Psychiatric advance directive: on file")
            section.entries.append(_ref(document))
    three = [f"Trigger: {trigger}" if trigger else "", f"What helps: {helps}" if helps else "",
             f"Call: {call}" if call else ""]  # fmt: skip
    if any(three):
        section.lines.insert(0, "Three things to know: " + " | ".join(t for t in three if t))


def _is_safety_plan(plan: dict[str, Any]) -> bool:
    categories = {code for concept in plan.get("category") or [] for _, code in _codes(concept)}
    return "crisis-safety-plan" in categories


def _current(resource: dict[str, Any], statuses: tuple[str | None, ...]) -> bool:
    return resource.get("status") in statuses


def _contacts(index: _Index, section: _Section) -> None:
    seen: set[str] = set()
    for team in index.of("CareTeam"):
        if not _current(team, ("active", None)):
            continue
        section.entries.append(_ref(team))
        for participant in team.get("participant") or []:
            member = index.get((participant or {}).get("member"))
            if member is None or _ref(member) in seen:
                continue
            seen.add(_ref(member))
            role = next((_text(r) for r in participant.get("role") or [] if _text(r)), "team member")
            person = member
            if member.get("resourceType") == "PractitionerRole":
                person = index.get(member.get("practitioner")) or member
            phones = _phones(member) or _phones(person)
            organization = (
                index.get(member.get("organization")) if member.get("resourceType") == "PractitionerRole" else None
            )
            if not phones and organization:
                phones = _phones(organization)
            section.lines.append(
                f"{role}: {display_name(person)} — {', '.join(phones) if phones else 'no phone on file'}"
            )
            section.entries.append(_ref(member))
    for related in index.of("RelatedPerson"):
        codes = {code for concept in related.get("relationship") or [] for _, code in _codes(concept)}
        label = "Guardian or agent" if codes & GUARDIAN_CODES else "Family or support"
        phones = _phones(related)
        section.lines.append(
            f"{label}: {display_name(related)} — {', '.join(phones) if phones else 'no phone on file'}"
        )
        section.entries.append(_ref(related))


def _treatment(index: _Index, section: _Section, context: BriefContext) -> None:
    for episode in index.of("EpisodeOfCare"):
        if episode.get("status") not in ("active", "onhold", "waitlist"):
            continue
        program = next((_text(t) for t in episode.get("type") or [] if _text(t)), "Program")
        organization = index.get(episode.get("managingOrganization"))
        since = (episode.get("period") or {}).get("start", "date unknown")
        manager = index.get(episode.get("careManager"))
        visits = [e for e in index.of("Encounter") if any(
            (ref or {}).get("reference") == _ref(episode) for ref in e.get("episodeOfCare") or [])]  # fmt: skip
        last = max((_parse_date((e.get("period") or {}).get("end") or (e.get("period") or {}).get("start"))
                    for e in visits), default=None, key=lambda d: d or datetime.min)  # fmt: skip
        line = f"{program} at {display_name(organization) if organization else 'unknown organization'}, since {since}"
        if manager:
            line += f"; case manager {display_name(manager)}"
        if visits:
            line += f"; last seen {_ago(last, context.as_of)}"
        section.lines.append(line + _freshness(episode, context))
        section.entries.append(_ref(episode))
        section.entries.extend(_ref(visit) for visit in visits)
    for condition in index.of("Condition"):
        if _is_sdoh(condition):
            continue
        label = (
            _text(condition.get("code"), diagnosis_category(condition))
            if context.clinical
            else diagnosis_category(condition)
        )
        section.lines.append(f"Condition: {label}")
        section.entries.append(_ref(condition))
    for kind in ("MedicationStatement", "MedicationRequest"):
        for medication in index.of(kind):
            if not _current(medication, ("active", "intended", None)):
                continue
            section.lines.append(f"Medication: {_text(medication.get('medicationCodeableConcept'), 'recorded')}")
            section.entries.append(_ref(medication))
    for observation in index.of("Observation"):
        if {code for _, code in _codes(observation.get("code"))} & {CARE_EXPERIENCE, TREATMENT_PREFERENCE}:
            continue  # a care preference: in the safety section
        value = observation.get("valueString") or _text(observation.get("valueCodeableConcept"))
        quantity = observation.get("valueQuantity")
        if not value and isinstance(quantity, dict):
            value = f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip()
        when = str(observation.get("effectiveDateTime") or observation.get("issued") or "")[:10] or "date unknown"
        section.lines.append(f"Result: {_text(observation.get('code'), 'observation')}: {value or 'no value'} ({when})")
        section.entries.append(_ref(observation))
    for plan in index.of("CarePlan"):
        if not _is_safety_plan(plan) and _current(plan, ("active", "draft", "on-hold", None)):
            section.lines.append(
                f"Care plan: {plan.get('title') or _text((plan.get('category') or [None])[0], 'plan')}"
            )
            section.entries.append(_ref(plan))
    for document in index.of("DocumentReference"):
        if ADVANCE_DIRECTIVE in {code for _, code in _codes(document.get("type"))}:
            continue  # in the safety section
        when = str(document.get("date") or "")[:10] or "date unknown"
        section.lines.append(f"Document on file: {_text(document.get('type'), 'document')} ({when})")
        section.entries.append(_ref(document))
    for encounter in index.of("Encounter"):
        if (encounter.get("class") or {}).get("code") not in CRISIS_CLASSES:
            section.entries.append(_ref(encounter))  # visits: what "last seen" is made of


CRISIS_CLASSES = ("EMER", "FLD", "IMP", "ACUTE")


def _history(index: _Index, section: _Section, context: BriefContext) -> None:
    encounters = []
    for encounter in index.of("Encounter"):
        klass = (encounter.get("class") or {}).get("code")
        if klass not in CRISIS_CLASSES:
            continue
        start = _parse_date((encounter.get("period") or {}).get("start"))
        encounters.append((start or datetime.min, encounter))
    for start, encounter in sorted(encounters, key=lambda pair: pair[0], reverse=True):
        klass = str((encounter.get("class") or {}).get("code"))
        kind = {"EMER": "Emergency department", "FLD": "Crisis response", "IMP": "Hospital stay",
                "ACUTE": "Hospital stay"}[klass]  # fmt: skip
        disposition = _text((encounter.get("hospitalization") or {}).get("dischargeDisposition"), "")
        recent = " [last 30 days]" if start != datetime.min and context.as_of - start <= timedelta(days=30) else ""
        when = start.date().isoformat() if start != datetime.min else "date unknown"
        section.lines.append(f"{kind} on {when}{recent}{': ' + disposition if disposition else ''}")
        section.entries.append(_ref(encounter))
    for episode in index.of("EpisodeOfCare"):
        if not _current(episode, ("active", "onhold", "waitlist")):
            program = next((_text(t) for t in episode.get("type") or [] if _text(t)), "Program")
            organization = index.get(episode.get("managingOrganization"))
            until = (episode.get("period") or {}).get("end", "date unknown")
            where = display_name(organization) if organization else "unknown organization"
            section.lines.append(f"Past treatment: {program} at {where} ({episode.get('status')}, until {until})")
            section.entries.append(_ref(episode))
    for kind in ("MedicationStatement", "MedicationRequest"):
        for medication in index.of(kind):
            if not _current(medication, ("active", "intended", None)):
                text = _text(medication.get("medicationCodeableConcept"), "recorded")
                section.lines.append(f"Past medication: {text} ({medication.get('status')})")
                section.entries.append(_ref(medication))
    for flag in index.of("Flag"):
        if flag.get("status") != "active" or not _active_period(flag.get("period"), context.as_of):
            section.lines.append(f"Past alert (no longer active): {_text(flag.get('code'), 'alert')}")
            section.entries.append(_ref(flag))
    for team in index.of("CareTeam"):
        if not _current(team, ("active", None)):
            organization = index.get((team.get("managingOrganization") or [None])[0])
            section.lines.append(f"Former care team{' at ' + display_name(organization) if organization else ''}")
            section.entries.append(_ref(team))
    for plan in index.of("CarePlan"):
        if not _is_safety_plan(plan) and not _current(plan, ("active", "draft", "on-hold", None)):
            section.lines.append(f"Past care plan: {plan.get('title') or 'plan'} ({plan.get('status')})")
            section.entries.append(_ref(plan))
    for referral in index.of("ServiceRequest"):
        if referral.get("status") not in ("active", "draft", "on-hold"):
            section.lines.append(f"Past referral: {_text(referral.get('code'), 'referral')} ({referral.get('status')})")
            section.entries.append(_ref(referral))


def _social(index: _Index, section: _Section) -> None:
    for condition in index.of("Condition"):
        if _is_sdoh(condition):
            section.lines.append(f"Need: {_text(condition.get('code'), 'social need')}")
            section.entries.append(_ref(condition))
    for referral in index.of("ServiceRequest"):
        if referral.get("status") in ("active", "draft", "on-hold"):
            section.lines.append(f"Open referral: {_text(referral.get('code'), 'referral')} ({referral.get('status')})")
            section.entries.append(_ref(referral))


def _narrative(lines: list[str]) -> dict[str, str]:
    body = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    div = f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{body}</ul></div>' if lines else (
        f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{EMPTY}</p></div>')  # fmt: skip
    return {"status": "generated", "div": div}


def build_brief(patient_id: str, resources: list[dict[str, Any]], context: BriefContext) -> dict[str, Any]:
    """The document Bundle: a Composition, then the resources it cites (as released)."""
    index = _Index(resources)
    patient = index.get(f"Patient/{patient_id}")
    sections = {key: _Section(key, title) for key, title in SECTIONS}
    _identity(patient, sections["identity"], context)
    _safety(index, sections["safety"], context)
    _contacts(index, sections["contacts"])
    _treatment(index, sections["treatment"], context)
    _history(index, sections["history"], context)
    _social(index, sections["social"])
    _other(index, sections)
    basis = sections["basis"]
    basis.lines.extend(f"Released on the basis of: {text}" for text in dict.fromkeys(map(basis_text, context.bases)))
    if context.notice:
        basis.lines.append(context.notice.text)
        basis.lines.extend(scope.text for scope in context.scope)
    composition_id = str(uuid.uuid4())
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final",
        "type": {"coding": [DOCUMENT_TYPE]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": context.as_of.isoformat(timespec="seconds") + "Z",
        "author": [{"display": "Crisis-response gateway"}],
        "title": "Responder brief",
        "section": [],
    }
    if context.notice:
        composition["confidentiality"] = "R"
    cited: list[str] = []
    for key, title in SECTIONS:
        section = sections[key]
        entry: dict[str, Any] = {
            "title": title,
            "code": {"coding": [{"system": SECTION_SYSTEM, "code": key}]},
            "text": _narrative(section.lines),
        }
        references = list(dict.fromkeys(section.entries))
        if references:
            entry["entry"] = [{"reference": reference} for reference in references]
            cited.extend(references)
        elif not section.lines:
            entry["emptyReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                                "code": "unavailable"}]}  # fmt: skip
        composition["section"].append(entry)
    entries = [{"fullUrl": f"{context.base_url}/Composition/{composition_id}", "resource": composition}]
    for reference in dict.fromkeys(cited):
        resource = index.get(reference)
        if resource is not None:
            shown = resource if context.clinical or resource.get("resourceType") != "Condition" else _plain(resource)
            shown = _source_named(shown, index)
            entries.append({"fullUrl": f"{context.base_url}/{reference}", "resource": shown})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": context.as_of.isoformat(timespec="seconds") + "Z",
        "entry": entries,
    }
    if context.notice:
        # §2.32 at Bundle level: the notice, and the labels that say redisclosure needs consent.
        bundle["meta"] = {
            "security": [{"system": LABEL_SYSTEM[c], "code": c} for c in PART2_REFRAIN],
            "extension": notice_extensions(context.notice, context.scope),
        }
    return bundle


def _source_named(resource: dict[str, Any], index: _Index) -> dict[str, Any]:
    """The source organization's name on the resource's source-organization reference, when the
    brief has it (the sections name the same organizations): every card can then say where its
    information came from without the reader resolving references."""
    meta = resource.get("meta") or {}
    extensions = meta.get("extension") or []
    named = []
    for extension in extensions:
        reference = extension.get("valueReference") if isinstance(extension, dict) else None
        if extension.get("url") == SOURCE_ORGANIZATION and isinstance(reference, dict) and "display" not in reference:
            name = (index.get(reference) or {}).get("name")
            if isinstance(name, str) and name:
                extension = {**extension, "valueReference": {**reference, "display": name}}
        named.append(extension)
    if named == extensions:
        return resource
    return {**resource, "meta": {**meta, "extension": named}}


def _other(index: _Index, sections: dict[str, _Section]) -> None:
    """Whatever patient data no section cited yet is listed under history: the brief carries
    every item released to it, and a document cites every resource it carries."""
    cited = {reference for section in sections.values() for reference in section.entries}
    for reference, resource in index.by_ref.items():
        if resource.get("resourceType") in PATIENT_DATA and reference not in cited:
            sections["history"].lines.append(f"On file: {resource.get('resourceType')}")
            sections["history"].entries.append(reference)


def _plain(condition: dict[str, Any]) -> dict[str, Any]:
    """A Condition for a non-clinical role: the plain-language category instead of the code."""
    return {**condition, "code": {"text": diagnosis_category(condition)}}
