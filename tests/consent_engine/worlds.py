"""Random release cases (a record of labelled FHIR resources, the patient's consents, a request)
and the properties every release must have. The property tests draw cases through hypothesis;
`bench/consent.py --cases N` runs N of them with a plain random generator and counts how many
held. Both use `case` and `violations` below, so they check the same thing.

The properties (issue 12):
(a) the items in the answer are the items released, and the Part 2 ones released on a
    disclosure basis are exactly the ledger rows (a brief carries every released item);
(b) no item is released without a basis, and each basis is one the rules allow for that item;
(c) a DENY releases nothing and carries nothing (no notice, no ledger row, no emergency record),
    so its answer is the answer for nothing on file;
(e) the decision does not depend on the order the consents are stored in.
(d), one audit record per request, is a property of the gateway: tests/gateway/consent.
And from issue 13:
(f) no consent whose signers may not sign for this patient (§2.14, §2.15) is relied on;
(g) a deceased patient has no brief, match or emergency release; the cause-of-death basis goes
    only to a medical examiner's cause-of-death inquiry about a deceased patient, within the
    role's classes;
(h) a court order's basis only within an order in force that can be relied on, names the
    recipient, covers the purpose and names the item's class or the item (notes only under §2.63);
    law-enforcement and legal purposes reach Part 2 and mental-health data only on an order or a
    separate §2.31(d) consent, and legal counsel receive nothing else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from consent_engine import (
    DEFAULT_POLICY,
    DISCLOSURE_BASES,
    BasisKind,
    Consent,
    ConsentKind,
    ConsentsUnavailable,
    CourtOrder,
    DecisionError,
    Emergency,
    Episode,
    History,
    Operation,
    OrderSection,
    Outcome,
    PatientFacts,
    Provision,
    Recipient,
    Record,
    Release,
    ReleaseRequest,
    Signer,
    SignerRole,
    in_force,
    release,
)
from consent_engine.codes import DATA_CLASS_SYSTEM, LABEL_SYSTEM, SOURCE_ORGANIZATION, purpose_covers
from consent_engine.fhir import item_from_resource
from consent_engine.signers import problems_at
from mappings import BriefContext, build_brief

PATIENT = "Patient/p"
AS_OF = datetime(2026, 11, 26, 12, 0, 0, 250_000)
OTP, DETOX, CMHC = "Organization/eastside-otp", "Organization/northside-detox", "Organization/harbor-cmhc"
CRISIS, ED, POLICE = "Organization/county-mobile-crisis", "Organization/county-ed", "Organization/metro-pd"
COUNSEL = "Organization/county-counsel"
ORGS = [OTP, DETOX, CMHC, CRISIS, ED, POLICE, COUNSEL]
PART2_PROGRAMS = (OTP, DETOX)
CLASSES = ["DEMOGRAPHICS", "STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN", "CN", "PSYNOTE"]
PURPOSES = ["TREAT", "ETREAT", "BTG", "HPAYMT", "HOPERAT", "crisis-coordination", "law-enforcement", "legal-proceeding",
            "cause-of-death"]  # fmt: skip
SIGNER_ROLES: list[SignerRole | None] = [*SignerRole, SignerRole.PATIENT, SignerRole.PATIENT, None]
ROLES = sorted(DEFAULT_POLICY.role_data_classes) + ["stranger"]
RESOURCE_OF_CLASS = {"DEMOGRAPHICS": "Patient", "STATUS": "EpisodeOfCare", "CONTACT": "CareTeam",
                     "MED": "MedicationStatement", "DX": "Condition", "LAB": "Observation", "CRISISPLAN": "CarePlan",
                     "CN": "DocumentReference", "PSYNOTE": "DocumentReference"}  # fmt: skip
PART2_LABELS = ("42CFRPart2", "R", "NORDSCLCD", "SUD")


@dataclass(frozen=True)
class Case:
    request: ReleaseRequest
    record: Record
    consents: list[Consent] | None
    history: History
    resources: dict[str, dict[str, Any]]  # item key -> the labelled resource
    as_of: datetime = AS_OF
    orders: list[CourtOrder] | None = None


def _moment(rng: random.Random) -> datetime | None:
    if rng.random() < 0.5:
        return None
    # Around as_of, down to the millisecond: exact instants matter.
    return AS_OF + timedelta(milliseconds=rng.randint(-400 * 86_400_000, 400 * 86_400_000) // rng.choice([1, 1000]))


def _some(rng: random.Random, values: list[str], most: int) -> frozenset[str]:
    return frozenset(rng.sample(values, rng.randint(0, min(most, len(values)))))


def _provision(rng: random.Random, depth: int = 0) -> Provision:
    return Provision(
        type=rng.choice(["permit", "deny"]),
        start=_moment(rng) if rng.random() < 0.3 else None,
        end=_moment(rng) if rng.random() < 0.3 else None,
        recipients=_some(rng, ORGS, 2),
        recipient_classes=_some(rng, ["treating-providers", "intermediary-participants"], 1),
        purposes=_some(rng, PURPOSES, 2),
        data_classes=_some(rng, CLASSES, 3),
        labels=frozenset({"SUD"}) if rng.random() < 0.1 else frozenset(),
        provisions=tuple(_provision(rng, depth + 1) for _ in range(rng.randint(0, 2 if depth < 2 else 0))),
    )


def _consent(rng: random.Random, n: int, recipient: Recipient) -> Consent:
    found = _any_consent(rng, n)
    if rng.random() < 0.15:
        # A separate consent for use in proceedings (§2.31(d)), naming the recipient, or one that
        # looks like it but is not (a general kind, combined purposes).
        legal = {rng.choice(["law-enforcement", "legal-proceeding"])} | ({"TREAT"} if rng.random() < 0.3 else set())
        kind = rng.choice([ConsentKind.PART2_SPECIFIC, ConsentKind.PART2_SPECIFIC, ConsentKind.HIPAA_AUTHORIZATION,
                           ConsentKind.PART2_TPO])  # fmt: skip
        found = Consent(**{**found.__dict__, "kind": kind, "patient": PATIENT, "status": "active",
                           "disclosers": frozenset({OTP, DETOX, CMHC}), "revoked_at": None, "expires_at": None,
                           "signed_at": AS_OF - timedelta(days=30), "provision": Provision(
            "permit", recipients=frozenset({recipient.organization}), purposes=frozenset(legal),
            data_classes=_some(rng, CLASSES, 4), provisions=found.provision.provisions)})  # fmt: skip
    return found


def _any_consent(rng: random.Random, n: int) -> Consent:
    return Consent(
        id=f"c{rng.randint(0, 9)}{n}",
        kind=rng.choice(list(ConsentKind)),
        patient=rng.choice([PATIENT, PATIENT, "Patient/other"]),
        provision=_provision(rng),
        status=rng.choice(["active", "active", "inactive", "entered-in-error"]),
        disclosers=_some(rng, [OTP, DETOX, CMHC], 2),
        recorded_by=rng.choice([None, OTP, CMHC]),
        signed_at=_moment(rng),
        expires_at=_moment(rng) if rng.random() < 0.4 else None,
        expiry_event="end-of-treatment" if rng.random() < 0.3 else None,
        revoked_at=_moment(rng) if rng.random() < 0.2 else None,
        problems=rng.choice([(), (), (), ("2.31(a)(8): no signature",)]),
        signers=tuple(Signer(rng.choice(SIGNER_ROLES)) for _ in range(rng.choice([0, 1, 1, 1, 2]))),
    )


def _order(rng: random.Random, n: int, items: list[str], recipient: Recipient) -> CourtOrder:
    named = {recipient.organization} if rng.random() < 0.6 else set()
    return CourtOrder(
        id=f"o{n}",
        patient=rng.choice([PATIENT, PATIENT, "Patient/other"]),
        section=rng.choice([*OrderSection, None]),
        recipients=_some(rng, ORGS, 2) | named,
        purposes=_some(rng, ["legal-proceeding", "law-enforcement", "TREAT"], 2),
        data_classes=_some(rng, CLASSES, 3),
        items=_some(rng, items, 2),
        holders=_some(rng, [OTP, DETOX, CMHC], 1),
        confidential_communications=rng.random() < 0.3,
        status=rng.choice(["active", "active", "inactive"]),
        issued_at=_moment(rng),
        expires_at=_moment(rng) if rng.random() < 0.5 else None,
        problems=rng.choice([(), (), ("2.64(d): the required findings are not recorded",)]),
    )


def _facts(rng: random.Random) -> PatientFacts:
    """Adults, minors (some of them signing), the dead (before or after as_of), or nothing known."""
    born = rng.choice([None, date(1980, 5, 1), date(2010, 6, 1), date(2008, 11, 26)])
    if rng.random() < 0.2:
        return PatientFacts(born, True, rng.choice([None, _moment(rng) or AS_OF - timedelta(days=3)]))
    return PatientFacts(born)


def _resource(rng: random.Random, n: int, data_class: str) -> dict[str, Any]:
    """A labelled resource as the gateway stores it: its class tag, labels and source."""
    resource_type = RESOURCE_OF_CLASS[data_class]
    source = rng.choice([OTP, DETOX, CMHC, ED, None])
    labels: set[str] = set()
    if source in PART2_PROGRAMS or rng.random() < 0.1:
        labels |= set(PART2_LABELS)
    if rng.random() < 0.3:
        labels |= {"MH", "R"}
    if data_class == "PSYNOTE" and rng.random() < 0.5:
        labels.add("PSYTHPN")
    meta: dict[str, Any] = {"tag": [{"system": DATA_CLASS_SYSTEM, "code": data_class}],
                            "security": [{"system": LABEL_SYSTEM.get(c, "urn:x"), "code": c} for c in sorted(labels)]}  # fmt: skip
    if source:
        meta["extension"] = [{"url": SOURCE_ORGANIZATION, "valueReference": {"reference": source}}]
    resource: dict[str, Any] = {"resourceType": resource_type, "id": "p" if resource_type == "Patient" else f"r{n}",
                                "meta": meta}  # fmt: skip
    if resource_type != "Patient":
        resource["subject" if resource_type not in ("EpisodeOfCare",) else "patient"] = {"reference": PATIENT}
        resource["status"] = rng.choice(["active", "finished", "final"])
        resource["code"] = {"text": f"item {n}"}
    return resource


def _recipient(rng: random.Random) -> Recipient:
    if rng.random() < 0.08:
        return Recipient(user="client:ehr", name="EHR", role="ehr", medical=False, organization=rng.choice(ORGS),
                         system=True)  # fmt: skip
    role = rng.choice(ROLES)
    organization = rng.choice(ORGS)
    return Recipient(user="u", name="U", role=role, medical=rng.random() < 0.6, organization=organization,
                     organization_is_provider=organization != POLICE and rng.random() < 0.8,
                     aliases=frozenset({"Organization/alias"}) if rng.random() < 0.1 else frozenset())  # fmt: skip


def case(rng: random.Random) -> Case:
    resources: dict[str, dict[str, Any]] = {}
    if rng.random() < 0.8:
        patient = _resource(rng, 0, "DEMOGRAPHICS")
        resources["Patient/p"] = patient
    for n in range(rng.randint(0, 12)):
        resource = _resource(rng, n + 1, rng.choice(CLASSES[1:]))
        resources[f"{resource['resourceType']}/{resource['id']}"] = resource
    episodes = tuple(
        Episode(f"EpisodeOfCare/e{n}", rng.choice([OTP, DETOX, CMHC]), rng.choice(["active", "finished", "cancelled"]),
                _moment(rng))
        for n in range(rng.randint(0, 2))
    )  # fmt: skip
    record = Record(PATIENT, tuple(item_from_resource(r) for r in resources.values()),
                    frozenset(rng.sample(ORGS, rng.randint(0, 2))), episodes, facts=_facts(rng))  # fmt: skip
    recipient = _recipient(rng)
    purpose = rng.choice(PURPOSES) if rng.random() < 0.97 and not recipient.system else None
    if recipient.role == "medical-examiner" and rng.random() < 0.5:
        purpose = "cause-of-death"
    elif recipient.role in ("legal-counsel", "police-officer") and rng.random() < 0.5:
        purpose = rng.choice(["legal-proceeding", "law-enforcement"])
    nature = rng.choice(["overdose", "", None]) if purpose == "BTG" else None
    request = ReleaseRequest(
        recipient=recipient,
        purpose=purpose,
        patient=PATIENT,
        operation=rng.choice([Operation.READ, Operation.READ, Operation.BRIEF, Operation.MATCH]),
        data_classes=frozenset(rng.sample(CLASSES, rng.randint(1, 4))) if rng.random() < 0.2 else None,
        emergency=Emergency(nature) if nature is not None else None,
        identity_confirmed=rng.random() < 0.7,
    )
    consents = [_consent(rng, n, recipient) for n in range(rng.randint(0, 5))] if rng.random() < 0.97 else None
    matched = AS_OF - timedelta(minutes=rng.randint(1, 120)) if rng.random() < 0.2 else None
    orders = (
        [_order(rng, n, list(resources), recipient) for n in range(rng.choice([0, 0, 1, 2]))]
        if rng.random() < 0.99
        else None
    )
    return Case(request, record, consents, History(certain_match_at=matched), resources, orders=orders)


def decided(c: Case, consents: list[Consent] | None = None) -> Release | None:
    """The release, or None when the request cannot be decided as asked (a 400 or 503)."""
    try:
        return release(c.request, c.record, c.consents if consents is None else consents, c.history, DEFAULT_POLICY,
                       c.as_of, c.orders)  # fmt: skip
    except (DecisionError, ConsentsUnavailable):
        return None


def brief_items(c: Case, found: Release) -> set[str]:
    """What a brief built from the release carries (the document's patient-data entries)."""
    resources = [c.resources[k] for k in sorted(found.released_keys)]
    context = BriefContext(base_url="http://x/fhir", as_of=c.as_of, clinical=not found.strip_sensitivity,
                           bases=found.bases, notice=found.notice, scope=found.scope_explanations)  # fmt: skip
    document = build_brief("p", resources, context)
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in document["entry"][1:]
            if e["resource"]["resourceType"] in RESOURCE_OF_CLASS.values()}  # fmt: skip


def violations(c: Case) -> list[str]:
    """The properties this case breaks (empty: all held)."""
    found = decided(c)
    broken: list[str] = []
    if found is None:
        recipient = c.request.recipient
        expected = (c.consents is None) or (c.orders is None) or not c.request.purpose or c.request.purpose == "BTG"
        if recipient.system or not expected:
            broken.append("undecidable without a reason")
        return broken
    policy = DEFAULT_POLICY
    request, released, ledger = c.request, found.released, found.ledger
    police = request.recipient.role in policy.police_roles
    by_id = {consent.id: consent for consent in c.consents or ()}
    # (a) the answer is the release, and the ledger is its Part 2 disclosures
    if request.operation == Operation.BRIEF and released and brief_items(c, found) != set(found.released_keys):
        broken.append("(a) the brief does not carry exactly the released items")
    disclosed = {r.item.key for r in released if r.item.part2 and r.basis.kind in DISCLOSURE_BASES}
    if {row.item for row in ledger} != disclosed or len(ledger) != len(disclosed):
        broken.append("(a) the ledger is not the released Part 2 disclosures")
    keys = {i.key for i in c.record.items}
    if not set(found.released_keys) <= keys or {w.item.key for w in found.withheld} & set(found.released_keys):
        broken.append("(a) an item both released and withheld, or not asked for")
    # (b) a basis for every item, one the rules allow
    for r in released:
        item, basis = r.item, r.basis
        if not basis.citation:
            broken.append("(b) a basis without its rule")
        if basis.kind == BasisKind.CONSENT and not r.accompanies:
            consent = by_id.get(basis.consent or "")
            if consent is None or not in_force(consent, c.as_of, c.record.episodes):
                broken.append("(b) released on a consent that cannot be relied on")
            elif problems_at(consent, c.record.facts, policy, c.as_of):
                broken.append("(f) released on a consent its signers could not give")
            elif item.part2 and (
                consent.kind == ConsentKind.HIPAA_AUTHORIZATION or item.source not in consent.disclosers
            ):
                broken.append("(b) Part 2 released on a consent that does not name its discloser")
            elif police and consent.kind in (ConsentKind.PART2_TPO, ConsentKind.PART2_INTERMEDIARY):
                broken.append("(b) police reached through a class designation")
            elif item.data_class == "CN" and consent.kind != ConsentKind.COUNSELING_NOTES:
                broken.append("(b) counseling notes without their own consent")
        if basis.kind == BasisKind.EMERGENCY and (not request.recipient.medical or police):
            broken.append("(b) emergency access by someone who is not medical personnel")
        if (
            basis.kind == BasisKind.EMERGENCY
            and not r.accompanies
            and item.data_class not in policy.emergency_data_classes
        ):
            broken.append("(b) emergency released outside the emergency data set")
        if item.part2 and not r.accompanies and basis.kind not in (*DISCLOSURE_BASES, BasisKind.OWN_RECORDS,
                                                                   BasisKind.ADMINISTRATION):  # fmt: skip
            broken.append("(b) Part 2 released on a non-Part 2 basis")
        if (
            request.purpose in policy.hard_denied_purposes
            and (item.part2 or item.mental_health)
            and not r.accompanies
            and basis.kind != BasisKind.COURT_ORDER
            and not (basis.kind == BasisKind.CONSENT and basis.separate)
        ):
            broken.append("(h) Part 2 or mental health used against the patient without an order or 2.31(d) consent")
        if (
            request.recipient.role in policy.order_only_roles
            and not r.accompanies
            and not (basis.kind == BasisKind.COURT_ORDER or basis.separate)
        ):
            broken.append("(h) legal counsel received something without an order or a separate consent")
        if basis.kind == BasisKind.COURT_ORDER and not r.accompanies:
            order = next((o for o in c.orders or () if o.id == basis.order), None)
            note = item.data_class in ("CN", "PSYNOTE") or item.psychotherapy
            if (
                order is None
                or order.patient != c.record.patient
                or not order.in_force(c.as_of)
                or not request.recipient.named_by(order.recipients)
                or not any(purpose_covers(p, request.purpose or "") for p in order.purposes)
                or (order.holders and item.source not in order.holders)
                or (item.data_class not in order.data_classes and item.key not in order.items)
                or (note and not order.confidential_communications)
            ):
                broken.append("(h) released on a court order that does not cover it")
        if basis.kind == BasisKind.OWN_RECORDS and not request.recipient.system:
            broken.append("(b) own-records basis for a person")
        if (
            basis.kind == BasisKind.DECEDENT
            and not r.accompanies
            and not (
                c.record.facts.dead_at(c.as_of)
                and request.recipient.role in policy.cause_of_death_roles
                and request.purpose in policy.cause_of_death_purposes
                and item.data_class in policy.role_data_classes.get(request.recipient.role, frozenset())
            )
        ):
            broken.append("(g) the cause-of-death basis outside a medical examiner's inquiry about the dead")
    dead = c.record.facts.dead_at(c.as_of)
    if (
        dead
        and not request.recipient.system
        and released
        and (request.operation in (Operation.BRIEF, Operation.MATCH) or request.purpose == "BTG")
    ):
        broken.append("(g) a brief, match or emergency release about a deceased patient")
    if request.operation in (Operation.BRIEF, Operation.MATCH) and not request.recipient.system:
        people = [r for r in released if r.item.demographics]
        others = [r for r in released if not r.item.demographics]
        if people and not others and not found.audit.presence:
            broken.append("(b) demographics released alone")
    if (found.notice is not None) != any(r.item.part2 for r in released):
        broken.append("(b) the notice does not follow Part 2 data")
    # (c) a DENY releases nothing and carries nothing
    if (found.outcome == Outcome.DENY) != (not released):
        broken.append("(c) DENY and an empty release disagree")
    if found.outcome == Outcome.DENY and (
        found.notice or found.ledger or found.emergency_record or found.scope_explanations
    ):
        broken.append("(c) a DENY carries something")
    # (e) the order the consents are stored in does not matter
    if c.consents and len(c.consents) > 1:
        shuffled = list(reversed(c.consents))
        again = decided(c, shuffled)
        if again != found:
            broken.append("(e) the decision depends on the consents' order")
    return broken
