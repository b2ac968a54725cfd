"""A realistic crisis-response cast: one person in treatment at an opioid treatment program
(a Part 2 program) and a community mental-health clinic, the responders who may ask about her,
and the consents she signed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from consent_engine import (
    DEFAULT_POLICY,
    Consent,
    ConsentKind,
    CourtOrder,
    Emergency,
    History,
    Item,
    Policy,
    Provision,
    Recipient,
    Record,
    Release,
    ReleaseRequest,
    release,
)

PATIENT = "Patient/maria-rivera"
OTP = "Organization/eastside-otp"  # Part 2 program (methadone/buprenorphine)
CMHC = "Organization/harbor-cmhc"  # community mental health, not Part 2
CRISIS_TEAM = "Organization/county-mobile-crisis"
POLICE = "Organization/metro-pd"
AS_OF = datetime(2026, 11, 26, 12, 0)
PART2_LABELS = frozenset({"42CFRPart2", "R", "NORDSCLCD", "SUD", "OPIOIDUD"})


def item(key: str, data_class: str, source: str, *labels: str, part2: bool = False) -> Item:
    found = frozenset(labels) | (PART2_LABELS if part2 else frozenset())
    return Item(key, data_class, found, source)


RECORD_ITEMS = (
    item("Patient/maria-rivera", "DEMOGRAPHICS", CMHC),
    item("EpisodeOfCare/otp-episode", "STATUS", OTP, part2=True),
    item("CareTeam/otp-team", "CONTACT", OTP, part2=True),
    item("MedicationStatement/buprenorphine", "MED", OTP, part2=True),
    item("Condition/opioid-use-disorder", "DX", OTP, part2=True),
    item("Observation/urine-toxicology", "LAB", OTP, part2=True),
    item("DocumentReference/counseling-note", "CN", OTP, "V", part2=True),
    item("EpisodeOfCare/cmhc-episode", "STATUS", CMHC, "MH", "R"),
    item("CareTeam/cmhc-team", "CONTACT", CMHC),
    item("Condition/major-depression", "DX", CMHC, "MH", "R"),
    item("CarePlan/crisis-plan", "CRISISPLAN", CMHC, "MH", "R"),
    item("DocumentReference/psychotherapy-note", "PSYNOTE", CMHC, "PSYTHPN", "V"),
)
RECORD = Record(PATIENT, RECORD_ITEMS, treating_organizations=frozenset({CRISIS_TEAM}))

CLINICIAN = Recipient(user="ada", name="Ada Lovelace, LCSW", role="crisis-clinician", medical=True,
                      organization=CRISIS_TEAM, organization_is_provider=True,
                      practitioner="Practitioner/ada")  # fmt: skip
PEER = Recipient(user="sam", name="Sam Ortiz", role="peer-specialist", medical=False, organization=CRISIS_TEAM,
                 organization_is_provider=True)  # fmt: skip
EMT = Recipient(user="kim", name="Kim Park, EMT-P", role="ems", medical=True, organization="Organization/county-ems",
                organization_is_provider=True)  # fmt: skip
OFFICER = Recipient(user="lee", name="Officer Lee", role="police-officer", medical=False, organization=POLICE,
                    aliases=frozenset({"Organization/metro-police-department"}))  # fmt: skip


def request(recipient: Recipient = CLINICIAN, purpose: str | None = "TREAT", **changes: object) -> ReleaseRequest:
    base = ReleaseRequest(recipient=recipient, purpose=purpose, patient=PATIENT)
    return replace(base, **changes)  # type: ignore[arg-type]


def emergency(nature: str = "unresponsive, suspected overdose") -> Emergency:
    return Emergency(nature)


def decide(
    asked: ReleaseRequest,
    record: Record,
    consents: list[Consent] | None,
    policy: Policy = DEFAULT_POLICY,
    *,
    history: History | None = None,
    as_of: datetime = AS_OF,
    orders: list[CourtOrder] | None = None,
) -> Release:
    """`consent_engine.release` at the cast's moment, with no history or orders unless given."""
    return release(asked, record, consents, history or History(), policy, as_of, orders if orders is not None else ())


TPO = Consent(
    id="tpo-2026",
    kind=ConsentKind.PART2_TPO,
    patient=PATIENT,
    disclosers=frozenset({OTP}),
    signed_at=datetime(2026, 3, 1, 10, 0),
    expiry_event="end-of-treatment",
    provision=Provision(
        "permit",
        recipient_classes=frozenset({"treating-providers"}),
        purposes=frozenset({"TREAT", "HPAYMT", "HOPERAT"}),
        data_classes=frozenset({"STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN"}),
    ),
)
NAMING_POLICE = Consent(
    id="police-contact-2026",
    kind=ConsentKind.PART2_SPECIFIC,
    patient=PATIENT,
    disclosers=frozenset({OTP}),
    signed_at=datetime(2026, 6, 2, 9, 30),
    expires_at=datetime(2026, 12, 31, 23, 59, 59),
    provision=Provision(
        "permit",
        recipients=frozenset({"Organization/metro-police-department"}),
        purposes=frozenset({"crisis-coordination", "law-enforcement"}),
        data_classes=frozenset({"STATUS", "CONTACT", "MED"}),
    ),
)
COUNSELING = Consent(
    id="counseling-notes-2026",
    kind=ConsentKind.COUNSELING_NOTES,
    patient=PATIENT,
    disclosers=frozenset({OTP}),
    signed_at=datetime(2026, 4, 1),
    expires_at=datetime(2027, 4, 1),
    provision=Provision(
        "permit", recipients=frozenset({CRISIS_TEAM}), purposes=frozenset({"TREAT"}), data_classes=frozenset({"CN"})
    ),  # fmt: skip
)
OPT_OUT = Consent(id="opt-out", kind=ConsentKind.OPT_OUT, patient=PATIENT, signed_at=datetime(2026, 10, 1),
                  provision=Provision("deny"))  # fmt: skip
PSYCHOTHERAPY_AUTH = Consent(
    id="psychotherapy-authorization",
    kind=ConsentKind.HIPAA_AUTHORIZATION,
    patient=PATIENT,
    disclosers=frozenset({CMHC}),
    signed_at=datetime(2026, 5, 5),
    expires_at=datetime(2027, 5, 5),
    provision=Provision(
        "permit",
        recipients=frozenset({CRISIS_TEAM}),
        purposes=frozenset({"TREAT"}),
        data_classes=frozenset({"PSYNOTE"}),
    ),  # fmt: skip
)
