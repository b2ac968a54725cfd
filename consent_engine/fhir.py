"""FHIR R4 resources to the engine's plain data: Consents (the profile in
docs/consent-profile.md), items, program episodes and treating relationships.

A Consent that lacks an element §2.31(a) (or 45 CFR 164.508(c) for an authorisation) requires is
still read, with the missing elements listed in `problems`: it is shown to compliance officers
as "cannot be relied on" and the engine never relies on it for a release. Deny rules are honoured
whatever their shape (when in doubt, deny).
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from consent_engine.codes import (
    CN,
    CONSENT_KIND_SYSTEM,
    DATA_CLASS_SYSTEM,
    LEGAL_PROCEEDING,
    PROJECT,
    RECIPIENT_CLASS_SYSTEM,
    SOURCE_ORGANIZATION,
    STATUS,
)
from consent_engine.model import (
    PART2_KINDS,
    PERMIT_KINDS,
    Consent,
    ConsentKind,
    CourtOrder,
    Episode,
    Item,
    OrderSection,
    PatientFacts,
    Provision,
    Signer,
    SignerRole,
)

EXTENSION = f"{PROJECT}/StructureDefinition"
EXPIRY_EVENT = f"{EXTENSION}/consent-expiry-event"
EXPIRY_EVENT_AT = f"{EXTENSION}/consent-expiry-event-date"
REVOCATION_STATEMENT = f"{EXTENSION}/consent-revocation-statement"
REVOKED = f"{EXTENSION}/consent-revoked"
REDISCLOSURE_STATEMENT = f"{EXTENSION}/consent-redisclosure-statement"
TPO_STATEMENTS = f"{EXTENSION}/consent-tpo-statements"
SCOPE_EXPLANATION = f"{EXTENSION}/consent-scope-explanation"
SIGNER_ROLE = f"{EXTENSION}/consent-signer-role"
ORDER_SECTION = f"{EXTENSION}/court-order-section"
ORDER_FINDINGS = f"{EXTENSION}/court-order-findings"
ORDER_NOTICE = f"{EXTENSION}/court-order-notice"
ORDER_CONFIDENTIAL = f"{EXTENSION}/court-order-confidential-communications"
ORDER_GROUND = f"{EXTENSION}/court-order-2-63-ground"
ORDER_GROUNDS = frozenset({"threat-to-life", "extremely-serious-crime", "patient-testimony"})
NOTICE_REQUIRED = frozenset({OrderSection.NON_CRIMINAL, OrderSection.CRIMINAL})
ACTOR_ROLE_SYSTEM = f"{PROJECT}/CodeSystem/consent-actor-role"
RECIPIENT_ROLE = "IRCP"  # v3-ParticipationType: information recipient
INTERMEDIARY_ROLE = "intermediary"
ALIASES = {"NORDSLCD": "NORDSCLCD"}
# A date as an end runs to its last microsecond.
_LAST_OF_DAY = timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)


def parse_datetime(value: Any, *, end: bool = False) -> datetime | None:
    """A FHIR date or dateTime as naive UTC. A date alone, or a year-month, covers the whole period:
    as a period end it means its last instant (ends are inclusive; instants are exact). Year 1 and
    year 9999 are valid: an instant past the calendar's end is held at its last one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            moment = datetime(int(text), 1, 1)
            return moment.replace(month=12, day=31) + _LAST_OF_DAY if end else moment
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            moment = datetime(year, month, 1)
            return moment.replace(day=calendar.monthrange(year, month)[1]) + _LAST_OF_DAY if end else moment
        if len(text) == 10:
            moment = datetime.fromisoformat(text)
            return moment + _LAST_OF_DAY if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before the calendar's first instant
            moment = datetime.min if (moment.utcoffset() or timedelta(0)) > timedelta(0) else datetime.max
    return moment


def _extension(node: dict[str, Any], url: str) -> dict[str, Any] | None:
    for extension in node.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url:
            return extension
    return None


def _codes(concepts: Any, system: str | None = None) -> frozenset[str]:
    found: set[str] = set()
    for concept in concepts or []:
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding") if "coding" in concept else [concept]
        for coding in codings or []:
            if isinstance(coding, dict) and coding.get("code") and (system is None or coding.get("system") == system):
                found.add(str(coding["code"]))
    return frozenset(found)


def _reference(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("reference"), str):
        return str(node["reference"])
    return None


def identifier_token(system: Any, value: Any) -> str | None:
    """How the engine writes a business identifier (an NPI, a state facility id) so that it can
    be compared with references: `identifier:<system>|<value>`."""
    if not isinstance(system, str) or not system or not isinstance(value, str) or not value:
        return None
    return f"identifier:{system}|{value}"


def identifier_tokens(identifiers: Any) -> frozenset[str]:
    """The tokens of a resource's `identifier` list."""
    found = (identifier_token(i.get("system"), i.get("value")) for i in identifiers or [] if isinstance(i, dict))
    return frozenset(t for t in found if t)


def _references(node: Any) -> frozenset[str]:
    """A Reference as everything it names: its literal reference and its logical identifier (a
    consent may name a recipient or a discloser by NPI or state facility id alone)."""
    if not isinstance(node, dict):
        return frozenset()
    found = {node["reference"]} if isinstance(node.get("reference"), str) else set()
    identifier = node.get("identifier")
    if isinstance(identifier, dict) and (token := identifier_token(identifier.get("system"), identifier.get("value"))):
        found.add(token)
    return frozenset(found)


def _provision(node: Any) -> Provision:
    node = node if isinstance(node, dict) else {}
    recipients: set[str] = set()
    classes: set[str] = set()
    for actor in node.get("actor") or []:
        if not isinstance(actor, dict):
            continue
        roles = _codes([actor.get("role")] if actor.get("role") else [])
        if RECIPIENT_ROLE not in roles:
            continue
        reference = actor.get("reference") or {}
        identifier = reference.get("identifier") if isinstance(reference, dict) else None
        if isinstance(identifier, dict) and identifier.get("system") == RECIPIENT_CLASS_SYSTEM:
            classes.add(str(identifier.get("value")))
        else:
            recipients |= _references(reference)
    period = node.get("period") if isinstance(node.get("period"), dict) else {}
    return Provision(
        type="deny" if node.get("type") == "deny" else "permit",
        start=parse_datetime(period.get("start")),
        end=parse_datetime(period.get("end"), end=True),
        recipients=frozenset(recipients),
        recipient_classes=frozenset(classes),
        purposes=_codes(node.get("purpose")),
        data_classes=_codes(node.get("code"), DATA_CLASS_SYSTEM),
        labels=_codes(node.get("securityLabel")),
        provisions=tuple(_provision(child) for child in node.get("provision") or []),
    )


def _signers(resource: dict[str, Any], patient: str) -> tuple[Signer, ...]:
    """Consent.performer, each with its `consent-signer-role` (a performer that is the patient
    and says nothing more signed as the patient)."""
    found = []
    for performer in resource.get("performer") or []:
        if not isinstance(performer, dict):
            continue
        reference = _reference(performer)
        role_extension = _extension(performer, SIGNER_ROLE)
        code = role_extension.get("valueCode") if role_extension else None
        role: SignerRole | None = None
        if code in {r.value for r in SignerRole}:
            role = SignerRole(code)
        elif code is None and reference is not None and reference == patient:
            role = SignerRole.PATIENT
        found.append(Signer(role, reference))
    return tuple(found)


def _intermediary(node: Any) -> str | None:
    for actor in (node or {}).get("actor") or []:
        if isinstance(actor, dict) and INTERMEDIARY_ROLE in _codes([actor.get("role")] if actor.get("role") else []):
            return _reference(actor.get("reference"))
    return None


def _kind(resource: dict[str, Any], root: Provision) -> tuple[ConsentKind, list[str]]:
    codes = _codes(resource.get("category"), CONSENT_KIND_SYSTEM)
    kinds = [kind for kind in ConsentKind if kind.value in codes]
    if len(kinds) == 1:
        return kinds[0], []
    problem = "category: exactly one consent kind is required" if kinds else "category: the consent kind is missing"
    return (ConsentKind.RESTRICTION if root.type == "deny" else ConsentKind.PART2_SPECIFIC), [problem]


def consent_from_fhir(resource: dict[str, Any]) -> Consent:
    root_node = resource.get("provision")
    root = _provision(root_node)
    kind, problems = _kind(resource, root)
    patient = _reference(resource.get("patient")) or ""
    if not patient.startswith("Patient/"):
        problems.append("2.31(a)(1): patient is missing")
    signed_at = parse_datetime(resource.get("dateTime"))
    disclosers = frozenset(r for o in resource.get("organization") or [] for r in _references(o))
    expiry_event = _extension(resource, EXPIRY_EVENT)
    expiry_event_at = _extension(resource, EXPIRY_EVENT_AT)
    revoked = _extension(resource, REVOKED)
    explanation = _extension(resource, SCOPE_EXPLANATION)
    consent = Consent(
        id=str(resource.get("id") or ""),
        kind=kind,
        patient=patient,
        provision=root,
        status=str(resource.get("status") or ""),
        disclosers=disclosers,
        recorded_by=source_organization(resource),
        intermediary=_intermediary(root_node),
        signed_at=signed_at,
        expires_at=root.end,
        expiry_event=str(expiry_event.get("valueCode")) if expiry_event else None,
        expiry_event_at=parse_datetime(expiry_event_at.get("valueDateTime")) if expiry_event_at else None,
        revoked_at=parse_datetime(revoked.get("valueDateTime")) if revoked else None,
        description=str(explanation.get("valueString") or "") if explanation else "",
        signers=_signers(resource, patient),
    )
    problems += required_elements_missing(resource, consent)
    return Consent(**{**consent.__dict__, "problems": tuple(problems)})


def is_court_order(resource: dict[str, Any]) -> bool:
    return ConsentKind.COURT_ORDER.value in _codes(resource.get("category"), CONSENT_KIND_SYSTEM)


def order_from_fhir(resource: dict[str, Any]) -> CourtOrder:
    """A court order registered by a compliance officer (a Consent of kind `court-order`,
    docs/consent-profile.md). One missing a required finding, notice or limit is read with what is
    missing in `problems`: stored, listed, alerted, and never relied on."""
    root_node = resource.get("provision") if isinstance(resource.get("provision"), dict) else {}
    root = _provision(root_node)
    section_extension = _extension(resource, ORDER_SECTION)
    code = section_extension.get("valueCode") if section_extension else None
    section = OrderSection(code) if code in {s.value for s in OrderSection} else None
    items = frozenset(
        str(reference)
        for data in (root_node or {}).get("data") or []
        if isinstance(data, dict) and (reference := _reference(data.get("reference")))
    )
    order = CourtOrder(
        id=str(resource.get("id") or ""),
        patient=_reference(resource.get("patient")) or "",
        section=section,
        recipients=root.recipients,
        purposes=root.purposes,
        data_classes=root.data_classes,
        items=items,
        holders=frozenset(r for o in resource.get("organization") or [] for r in _references(o)),
        confidential_communications=_flag(resource, ORDER_CONFIDENTIAL),
        findings_recorded=_flag(resource, ORDER_FINDINGS),
        notice_given=_flag(resource, ORDER_NOTICE),
        status=str(resource.get("status") or ""),
        issued_at=parse_datetime(resource.get("dateTime")),
        expires_at=root.end,
    )
    ground = _extension(resource, ORDER_GROUND)
    return replace(order, problems=_order_problems(resource, order, ground.get("valueCode") if ground else None))


def _order_problems(resource: dict[str, Any], order: CourtOrder, ground: Any) -> tuple[str, ...]:
    problems: list[str] = []
    if order.section is None:
        problems.append("2.61: the section the order is issued under (2.64, 2.65, 2.66) is missing")
    elif order.section == OrderSection.UNDERCOVER:
        problems.append("2.67: an order for undercover agents authorises a placement, not a disclosure of records")
    if not order.patient.startswith("Patient/"):
        problems.append("the patient the order is about is missing")
    if order.issued_at is None:
        problems.append("the date of the order (dateTime) is missing")
    attachment = resource.get("sourceAttachment")
    if not isinstance(attachment, dict) or not (attachment.get("data") or attachment.get("url")):
        problems.append("2.61: the signed order (sourceAttachment) is missing")
    if not order.findings_recorded:
        problems.append("2.64(d), 2.65(d), 2.66(c): the required findings are not recorded in the order")
    if order.section in NOTICE_REQUIRED and not order.notice_given:
        problems.append(f"{order.section}(b): the patient and the holder had no notice and opportunity to respond")
    if not order.recipients:
        problems.append("2.64(e)(2): the order names no recipient (disclosure only to those who need it)")
    if not order.purposes:
        problems.append("the purpose the order authorises (provision.purpose) is missing")
    if not order.data_classes and not order.items:
        problems.append("2.64(e)(1): the order names no classes or items (only the essential parts)")
    if CN in order.data_classes and not order.confidential_communications:
        problems.append("2.63: counseling notes only under an order that covers confidential communications")
    if order.confidential_communications and ground not in ORDER_GROUNDS:
        problems.append("2.63(a): covering confidential communications needs its ground (threat-to-life, "
                        "extremely-serious-crime, patient-testimony)")  # fmt: skip
    return tuple(problems)


def _flag(resource: dict[str, Any], url: str) -> bool:
    extension = _extension(resource, url)
    return bool(extension and extension.get("valueBoolean") is True)


def _all_classes(provision: Provision) -> frozenset[str]:
    found = set(provision.data_classes)
    for child in provision.provisions:
        if child.type == "permit":
            found |= _all_classes(child)
    return frozenset(found)


def required_elements_missing(resource: dict[str, Any], consent: Consent) -> list[str]:
    """What §2.31(a) (Part 2 kinds) or 164.508(c) (authorisations) requires and this lacks."""
    problems: list[str] = []
    scope = _codes([resource.get("scope")] if resource.get("scope") else [])
    if "patient-privacy" not in scope:
        problems.append("scope: must be patient-privacy")
    if consent.signed_at is None:
        problems.append("2.31(a)(9): the date signed (dateTime) is missing")
    if consent.kind not in PERMIT_KINDS:
        return problems  # restrictions and opt-outs: honoured as long as they are the patient's
    root = consent.provision
    if root.type != "permit":
        problems.append("provision.type: a permitting consent's root provision must be permit")
    if not resource.get("performer"):
        problems.append("2.31(a)(8): the signer (performer) is missing")
    attachment = resource.get("sourceAttachment")
    if not isinstance(attachment, dict) or not (attachment.get("data") or attachment.get("url")):
        problems.append("2.31(a)(8): the signed form (sourceAttachment) is missing")
    if not root.purposes:
        problems.append("2.31(a)(5): the purpose (provision.purpose) is missing")
    if not root.data_classes:
        problems.append("2.31(a)(3): the description of the information (provision.code) is missing")
    if not root.recipients and not root.recipient_classes:
        problems.append("2.31(a)(4): the recipients (provision.actor, role IRCP) are missing")
    if consent.expires_at is None and not consent.expiry_event:
        problems.append("2.31(a)(7): an expiration date (provision.period.end) or event is missing")
    classes = _all_classes(root)
    if consent.kind == ConsentKind.COUNSELING_NOTES and classes != {CN}:
        problems.append("2.31(b): a counseling-notes consent covers counseling notes (CN) only")
    if consent.kind != ConsentKind.COUNSELING_NOTES and CN in classes:
        problems.append("2.31(b): counseling notes need their own consent")
    if LEGAL_PROCEEDING in root.purposes and len(root.purposes) > 1:
        problems.append("2.31(d): a consent for proceedings cannot be combined with other purposes")
    if consent.kind in PART2_KINDS:
        if not consent.disclosers:
            problems.append("2.31(a)(2): the disclosing program(s) (organization) are missing")
        if not _flag(resource, REVOCATION_STATEMENT):
            problems.append("2.31(a)(6): the statement of the right to revoke is missing")
    if consent.kind == ConsentKind.PART2_TPO:
        if not _flag(resource, TPO_STATEMENTS):
            problems.append("2.31(a)(10): the TPO statements (redisclosure, refusal) are missing")
        if not _flag(resource, REDISCLOSURE_STATEMENT):
            problems.append("2.31(a)(4)(iii): the HIPAA redisclosure statement is missing")
    if consent.kind == ConsentKind.PART2_INTERMEDIARY and consent.intermediary is None:
        problems.append("2.31(a)(4)(ii): the intermediary (actor role intermediary) is missing")
    return problems


# -- items, episodes, treating relationships --------------------------------------------------------
def source_organization(resource: dict[str, Any]) -> str | None:
    """The organization that sent this resource (its discloser), as the gateway records it."""
    for extension in (resource.get("meta") or {}).get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == SOURCE_ORGANIZATION:
            reference = (extension.get("valueReference") or {}).get("reference")
            return str(reference) if reference else None
    return None


def security_labels(resource: dict[str, Any]) -> frozenset[str]:
    """The codes of meta.security (the retired NORDSLCD read as NORDSCLCD)."""
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    found: set[str] = set()
    for coding in (meta or {}).get("security") or []:
        code = coding.get("code") if isinstance(coding, dict) else None
        if isinstance(code, str):
            found.add(ALIASES.get(code, code))
    return frozenset(found)


def data_class(resource: dict[str, Any]) -> str:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == DATA_CLASS_SYSTEM:
            return str(tag.get("code"))
    return STATUS


def describe(resource: dict[str, Any]) -> str:
    """A brief description of an item for the ledger and the accounting (164.528(b)(2)(iii))."""
    resource_type = str(resource.get("resourceType", ""))
    for element in ("code", "medicationCodeableConcept", "type", "class", "category"):
        value = resource.get(element)
        concept = value[0] if isinstance(value, list) and value else value
        if not isinstance(concept, dict):
            continue
        if concept.get("text"):
            return f"{resource_type}: {concept['text']}"
        for coding in concept.get("coding") or [concept]:
            if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
                return f"{resource_type}: {coding.get('display') or coding.get('code')}"
    return resource_type


def item_from_resource(resource: dict[str, Any]) -> Item:
    """The engine's view of a stored resource: its class tag, labels and source, read from meta
    in one pass (it runs for every resource of every answer)."""
    meta = resource.get("meta")
    labels: set[str] = set()
    found_class, source = STATUS, None
    if isinstance(meta, dict):
        for coding in meta.get("security") or ():
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str):
                labels.add(ALIASES.get(code, code))
        for tag in meta.get("tag") or ():
            if isinstance(tag, dict) and tag.get("system") == DATA_CLASS_SYSTEM:
                found_class = str(tag.get("code"))
        for extension in meta.get("extension") or ():
            if isinstance(extension, dict) and extension.get("url") == SOURCE_ORGANIZATION:
                reference = (extension.get("valueReference") or {}).get("reference")
                source = str(reference) if reference else None
    addressed = frozenset(
        str(r.get("reference")) for r in resource.get("recipient") or [] if isinstance(r, dict) and r.get("reference")
    ) if resource.get("resourceType") == "Communication" else frozenset()  # fmt: skip
    return Item(
        key=f"{resource.get('resourceType')}/{resource.get('id')}",
        data_class=found_class,
        labels=frozenset(labels),
        source=source,
        description=describe(resource),
        addressed_to=addressed,
    )


def patient_facts(resource: dict[str, Any] | None) -> PatientFacts:
    """Birth date and death from a Patient resource (nothing known without one)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        return PatientFacts()
    born = parse_datetime(resource.get("birthDate"))
    died_at = parse_datetime(resource.get("deceasedDateTime"))
    deceased = resource.get("deceasedBoolean") is True or died_at is not None
    return PatientFacts(birth_date=born.date() if born else None, deceased=deceased, deceased_at=died_at)


def episode_from_resource(resource: dict[str, Any]) -> Episode | None:
    """A program's EpisodeOfCare; its end is period.end, else when it was recorded as ended."""
    program = _reference(resource.get("managingOrganization"))
    if resource.get("resourceType") != "EpisodeOfCare" or program is None:
        return None
    found = resource.get("period")
    period: dict[str, Any] = found if isinstance(found, dict) else {}
    end = parse_datetime(period.get("end"), end=True) or parse_datetime((resource.get("meta") or {}).get("lastUpdated"))
    return Episode(f"EpisodeOfCare/{resource.get('id')}", program, str(resource.get("status") or ""), end)


def treating_organizations(encounters: list[dict[str, Any]]) -> frozenset[str]:
    """The organizations treating the patient now: in-progress Encounters' service providers."""
    return frozenset(
        reference
        for e in encounters
        if e.get("status") == "in-progress"
        for reference in _references(e.get("serviceProvider"))
    )
