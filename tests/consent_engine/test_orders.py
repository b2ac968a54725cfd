"""Court orders (§§2.61-2.67) and use against the patient (§2.12(d), §2.31(d)): golden scenarios
on the cast of people.py."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from typing import Any

from consent_engine import (
    BasisKind,
    Consent,
    ConsentKind,
    CourtOrder,
    OrderSection,
    Outcome,
    Provision,
    Recipient,
    order_alerts,
)
from consent_engine.fhir import EXTENSION, is_court_order, order_from_fhir
from tests.consent_engine.people import (
    AS_OF,
    CMHC,
    NAMING_POLICE,
    OFFICER,
    OTP,
    PATIENT,
    RECORD,
    TPO,
    decide,
    item,
    request,
)
from tests.consent_engine.test_fhir import examples

COUNTY_COUNSEL = "Organization/county-counsel"
DA_OFFICE = "Organization/district-attorney"
COUNSEL = Recipient(user="kerr", name="J. Kerr, county counsel", role="legal-counsel", medical=False,
                    organization=COUNTY_COUNSEL)  # fmt: skip
INVESTIGATOR = Recipient(user="ruiz", name="Inv. Ruiz", role="police-officer", medical=False, organization=DA_OFFICE,
                         practitioner="Practitioner/da-investigator-ruiz")  # fmt: skip
ORDER = CourtOrder(
    id="order-2026-cv-118",
    patient=PATIENT,
    section=OrderSection.NON_CRIMINAL,
    recipients=frozenset({COUNTY_COUNSEL}),
    purposes=frozenset({"legal-proceeding"}),
    data_classes=frozenset({"DX"}),
    holders=frozenset({OTP}),
    findings_recorded=True,
    notice_given=True,
    issued_at=datetime(2026, 11, 1),
    expires_at=datetime(2027, 2, 1),
)
OTP_DX = "Condition/opioid-use-disorder"


def released(decision):  # type: ignore[no-untyped-def]
    return set(decision.released_keys)


def test_an_order_releases_exactly_its_scope_to_exactly_its_recipient() -> None:
    decided = decide(request(COUNSEL, "legal-proceeding"), RECORD, [TPO], orders=[ORDER])
    assert released(decided) == {OTP_DX, "Patient/maria-rivera"}  # DX of its holder only; the person with it
    dx = next(r for r in decided.released if r.item.key == OTP_DX)
    assert dx.basis.kind == BasisKind.COURT_ORDER and dx.basis.order == ORDER.id
    assert dx.basis.citation == "42 CFR 2.61, 2.64"
    assert [(row.item, row.basis.order) for row in decided.ledger] == [(OTP_DX, ORDER.id)]
    assert decided.notice is not None and decided.strip_sensitivity  # Statement 1; counsel get no SUD code
    assert "court-order-release" in {a.code for a in decided.alerts}
    assert decided.audit.orders_relied_on == (ORDER.id,)
    withheld = {w.item.key: w.reason for w in decided.withheld}
    assert withheld["Condition/major-depression"] == "no-use-against-patient"  # CMHC's: not a holder
    assert withheld["MedicationStatement/buprenorphine"] == "no-use-against-patient"  # not a class it names
    # Another office, or another purpose, gets nothing.
    elsewhere = replace(COUNSEL, organization="Organization/other-counsel")
    assert decide(request(elsewhere, "legal-proceeding"), RECORD, [TPO], orders=[ORDER]).outcome == Outcome.DENY
    assert decide(request(COUNSEL, "TREAT"), RECORD, [TPO], orders=[ORDER]).outcome == Outcome.DENY


def order_example(**changes: Any) -> dict[str, Any]:
    """The court-order example of docs/consent-profile.md, with `changes` (None removes an element;
    `extension_<name>` sets or removes that court-order extension)."""
    found = copy.deepcopy(examples()["order-2026-cv-118"])
    for key, value in changes.items():
        if key.startswith("extension_"):
            url = f"{EXTENSION}/court-order-{key.removeprefix('extension_').replace('_', '-')}"
            found["extension"] = [e for e in found["extension"] if e["url"] != url]
            if value is not None:
                found["extension"].append(
                    {"url": url, "value" + ("Code" if isinstance(value, str) else "Boolean"): value}
                )
        elif value is None:
            found.pop(key, None)
        else:
            found[key] = value
    return found


def test_the_documented_order_reads_as_the_order_above() -> None:
    read = order_from_fhir(order_example())
    assert read == replace(ORDER, patient="Patient/maria-rivera", issued_at=datetime(2026, 11, 1, 15, 0),
                           expires_at=datetime(2027, 2, 1, 23, 59, 59, 999999))  # fmt: skip
    assert is_court_order(order_example())


def test_an_order_missing_a_finding_or_the_notice_is_never_relied_on() -> None:
    for changes, problem in (
        ({"extension_findings": None}, "findings"),
        ({"extension_notice": False}, "notice"),
        ({"extension_section": "2.65", "extension_notice": None}, "2.65(b)"),
        ({"extension_section": "2.67"}, "2.67"),
        ({"extension_section": None}, "section"),
        ({"sourceAttachment": None}, "signed order"),
        ({"extension_confidential_communications": True}, "2.63(a)"),
    ):
        flagged = order_from_fhir(order_example(**changes))
        assert any(problem in p for p in flagged.problems), (problem, flagged.problems)
        decided = decide(request(COUNSEL, "legal-proceeding"), RECORD, [TPO], orders=[flagged])
        assert decided.outcome == Outcome.DENY and decided.ledger == ()
        assert dict(decided.audit.orders_not_relied_on)[ORDER.id] == flagged.problems
        assert order_alerts(flagged)[0].code == "court-order-cannot-be-relied-on"
    # §2.66 (investigating a program) needs no notice to the patient.
    assert order_from_fhir(order_example(extension_section="2.66", extension_notice=None)).problems == ()


def test_expired_or_vacated_orders_release_nothing() -> None:
    for order in (replace(ORDER, expires_at=datetime(2026, 11, 26, 11, 59)), replace(ORDER, status="inactive"),
                  replace(ORDER, issued_at=datetime(2026, 11, 27))):  # fmt: skip
        assert decide(request(COUNSEL, "legal-proceeding"), RECORD, [TPO], orders=[order]).outcome == Outcome.DENY
    assert AS_OF < datetime(2027, 2, 1)


def test_counseling_notes_only_under_an_order_covering_confidential_communications() -> None:
    note = "DocumentReference/counseling-note"
    with_notes = replace(ORDER, data_classes=frozenset({"DX", "CN"}))
    assert note not in released(decide(request(COUNSEL, "legal-proceeding"), RECORD, [], orders=[with_notes]))
    covering = replace(with_notes, confidential_communications=True)
    decided = decide(request(COUNSEL, "legal-proceeding"), RECORD, [], orders=[covering])
    assert note in released(decided)
    assert next(r for r in decided.released if r.item.key == note).basis.citation == "42 CFR 2.61, 2.64, 2.63"


def test_an_order_naming_items_releases_those_items_only() -> None:
    second = item("Condition/opioid-withdrawal", "DX", OTP, part2=True)
    record = replace(RECORD, items=(*RECORD.items, second))
    named = replace(ORDER, data_classes=frozenset(), items=frozenset({"Condition/opioid-withdrawal"}))
    got = released(decide(request(COUNSEL, "legal-proceeding"), record, [], orders=[named]))
    assert got == {"Condition/opioid-withdrawal", "Patient/maria-rivera"}


def test_a_one_off_recipient_registered_for_the_order_and_nobody_else_at_that_office() -> None:
    order = replace(ORDER, section=OrderSection.CRIMINAL, recipients=frozenset({"Practitioner/da-investigator-ruiz"}),
                    purposes=frozenset({"law-enforcement"}), data_classes=frozenset({"DX", "MED"}))  # fmt: skip
    decided = decide(request(INVESTIGATOR, "law-enforcement"), RECORD, [], orders=[order])
    assert released(decided) == {OTP_DX, "MedicationStatement/buprenorphine", "Patient/maria-rivera"}
    colleague = replace(INVESTIGATOR, user="ng", practitioner="Practitioner/da-investigator-ng")
    assert decide(request(colleague, "law-enforcement"), RECORD, [], orders=[order]).outcome == Outcome.DENY


def test_legal_counsel_receive_nothing_without_an_order_or_a_separate_consent() -> None:
    naming_counsel = replace(TPO, id="tpo-naming-counsel", kind=ConsentKind.PART2_SPECIFIC,
                             provision=replace(TPO.provision, recipient_classes=frozenset(),
                                               recipients=frozenset({COUNTY_COUNSEL})))  # fmt: skip
    for purpose in ("TREAT", "legal-proceeding"):
        decided = decide(request(COUNSEL, purpose), RECORD, [naming_counsel])
        assert decided.outcome == Outcome.DENY
        assert {w.reason for w in decided.withheld} <= {"needs-a-court-order", "no-use-against-patient",
                                                       "demographics-follow-the-decision"}  # fmt: skip


def test_use_against_the_patient_needs_a_separate_2_31_d_consent() -> None:
    """A consent for crisis coordination that also lists law enforcement is not the separate
    consent §2.31(d) asks for; one for law enforcement alone, naming the department, is."""
    combined = decide(request(OFFICER, "law-enforcement"), RECORD, [NAMING_POLICE])
    assert not {r.item.key for r in combined.released if r.item.part2}
    separate = Consent(
        id="police-investigation-consent",
        kind=ConsentKind.PART2_SPECIFIC,
        patient=PATIENT,
        disclosers=frozenset({OTP}),
        signed_at=datetime(2026, 11, 2),
        expires_at=datetime(2027, 11, 2),
        provision=Provision("permit", recipients=frozenset({"Organization/metro-police-department"}),
                            purposes=frozenset({"law-enforcement"}), data_classes=frozenset({"STATUS", "CONTACT"})),
    )  # fmt: skip
    decided = decide(request(OFFICER, "law-enforcement"), RECORD, [separate])
    part2 = {r.item.key for r in decided.released if r.item.part2}
    assert part2 == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team"}
    assert all(r.basis.separate for r in decided.released if r.item.part2)
    assert {row.item for row in decided.ledger} == part2
    # The TPO consent, a general consent, never serves a proceeding against the patient.
    general = replace(TPO, provision=replace(TPO.provision, purposes=frozenset({"legal-proceeding"})))
    assert decide(request(COUNSEL, "legal-proceeding"), RECORD, [general]).outcome == Outcome.DENY
    assert CMHC not in TPO.disclosers
