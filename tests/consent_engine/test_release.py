"""Golden scenarios, written from 42 CFR Part 2 (2024), HIPAA and consent-conventions.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from consent_engine import (
    BasisKind,
    ConsentKind,
    ConsentsUnavailable,
    DecisionError,
    Episode,
    History,
    Item,
    Notice,
    Operation,
    Outcome,
    Provision,
    Recipient,
    Record,
)
from consent_engine.part2 import STATEMENT_1
from tests.consent_engine.people import (
    AS_OF,
    CLINICIAN,
    CMHC,
    COUNSELING,
    CRISIS_TEAM,
    EMT,
    NAMING_POLICE,
    OFFICER,
    OPT_OUT,
    OTP,
    PATIENT,
    PEER,
    PSYCHOTHERAPY_AUTH,
    RECORD,
    TPO,
    decide,
    emergency,
    request,
)


def released(decision: object) -> set[str]:
    return set(decision.released_keys)  # type: ignore[attr-defined]


def reasons(decision: object) -> dict[str, str]:
    return {w.item.key: w.reason for w in decision.withheld}  # type: ignore[attr-defined]


def bases(decision: object) -> dict[str, BasisKind]:
    return {r.item.key: r.basis.kind for r in decision.released}  # type: ignore[attr-defined]


PART2_TPO_SCOPE = {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "MedicationStatement/buprenorphine",
                   "Condition/opioid-use-disorder", "Observation/urine-toxicology"}  # fmt: skip
CMHC_ITEMS = {"Patient/maria-rivera", "EpisodeOfCare/cmhc-episode", "CareTeam/cmhc-team", "Condition/major-depression",
              "CarePlan/crisis-plan"}  # fmt: skip


def test_without_consent_a_clinician_gets_mental_health_but_no_part2() -> None:
    decision = decide(request(), RECORD, [])
    assert released(decision) == CMHC_ITEMS
    assert decision.outcome == Outcome.PERMIT_WITH_REDACTION
    assert decision.notice is None and decision.ledger == ()
    assert bases(decision)["Condition/major-depression"] == BasisKind.JURISDICTION
    assert bases(decision)["CareTeam/cmhc-team"] == BasisKind.TREATMENT
    assert reasons(decision)["Condition/opioid-use-disorder"] == "no-consent"
    assert reasons(decision)["DocumentReference/psychotherapy-note"] == "psychotherapy-notes-need-an-authorisation"
    assert all(w.citation for w in decision.withheld)


def test_tpo_consent_releases_part2_to_a_treating_provider_with_the_notice() -> None:
    decision = decide(request(), RECORD, [TPO])
    assert released(decision) == CMHC_ITEMS | PART2_TPO_SCOPE
    part2 = [r for r in decision.released if r.item.part2]
    assert all(r.basis.consent == "tpo-2026" and r.basis.tpo for r in part2)
    assert decision.notice == Notice(STATEMENT_1, "2024")
    assert {row.item for row in decision.ledger} == PART2_TPO_SCOPE
    assert all(row.basis.tpo and row.notice_version == "2024" for row in decision.ledger)
    assert [s.consent for s in decision.scope_explanations] == ["tpo-2026"]
    assert "tpo-2026" in decision.scope_explanations[0].text
    assert decision.audit.consents_relied_on == ("tpo-2026",)
    assert "DocumentReference/counseling-note" not in released(decision)  # §2.31(b)


def test_tpo_consent_needs_a_treating_relationship() -> None:
    record = replace(RECORD, treating_organizations=frozenset())
    assert not released(decide(request(), record, [TPO])) & PART2_TPO_SCOPE


def test_part2_needs_the_source_program_as_discloser() -> None:
    from_cmhc = replace(TPO, disclosers=frozenset({CMHC}))
    assert not released(decide(request(), RECORD, [from_cmhc])) & PART2_TPO_SCOPE


@pytest.mark.parametrize(
    ("changes", "permitted"),
    [
        ({"expires_at": datetime(2026, 6, 30, 23, 59, 59)}, False),  # expired
        ({"expires_at": AS_OF}, True),  # the end is inclusive
        ({"signed_at": datetime(2026, 12, 1)}, False),  # not signed yet at as_of
        ({"provision": replace(TPO.provision, start=datetime(2026, 12, 1))}, False),  # future period
        ({"provision": replace(TPO.provision, end=AS_OF)}, True),  # period end inclusive
        ({"revoked_at": AS_OF - timedelta(minutes=1), "status": "inactive"}, False),  # revoked before
        ({"revoked_at": AS_OF + timedelta(minutes=1), "status": "inactive"}, True),  # revoked after as_of
        ({"revoked_at": AS_OF, "status": "inactive"}, False),  # effective at its instant
        ({"revoked_at": AS_OF + timedelta(microseconds=1), "status": "inactive"}, True),  # not a moment before
        ({"revoked_at": AS_OF - timedelta(milliseconds=1), "status": "inactive"}, False),  # milliseconds count
        ({"expiry_event_at": AS_OF - timedelta(days=1)}, False),  # end of treatment happened
        ({"status": "entered-in-error"}, False),
        ({"patient": "Patient/someone-else"}, False),
        ({"problems": ("2.31(a)(8): no signature",)}, False),  # cannot be relied on
    ],
)
def test_consent_validity_at_as_of(changes: dict[str, object], permitted: bool) -> None:
    consent = replace(TPO, **changes)  # type: ignore[arg-type]
    got = released(decide(request(), RECORD, [consent]))
    assert (PART2_TPO_SCOPE <= got) is permitted


def test_purpose_subsumption_etreat_is_covered_by_treat() -> None:
    assert PART2_TPO_SCOPE <= released(decide(request(purpose="ETREAT"), RECORD, [TPO]))
    assert not released(decide(request(purpose="HRESCH"), RECORD, [TPO])) & PART2_TPO_SCOPE


def test_wrong_recipient_named_consent() -> None:
    # A consent naming the police department does not reach the crisis clinician.
    decision = decide(request(), RECORD, [NAMING_POLICE])
    assert not released(decision) & PART2_TPO_SCOPE


def test_police_with_only_a_tpo_consent_get_nothing_and_the_request_is_alerted() -> None:
    decision = decide(request(OFFICER, "crisis-coordination"), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY and released(decision) == set()
    assert decision.notice is None
    assert [a.code for a in decision.alerts] == ["police-request"]  # released or not
    assert reasons(decision)["Patient/maria-rivera"] == "demographics-follow-the-decision"


def test_police_with_a_consent_naming_them_by_alias() -> None:
    decision = decide(request(OFFICER, "crisis-coordination"), RECORD, [TPO, NAMING_POLICE])
    # MED: minimum necessary; the Patient goes with what is released about her.
    assert released(decision) == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "Patient/maria-rivera"}
    assert next(r for r in decision.released if r.item.key == "Patient/maria-rivera").accompanies
    assert decision.notice == Notice(STATEMENT_1, "2024")
    assert decision.strip_sensitivity is True
    assert [a.code for a in decision.alerts] == ["police-request"]
    assert reasons(decision)["MedicationStatement/buprenorphine"] == "minimum-necessary"
    assert reasons(decision)["CarePlan/crisis-plan"] == "police-need-a-consent-naming-them"


def test_law_enforcement_purpose_is_hard_denied_even_with_a_naming_consent() -> None:
    decision = decide(request(OFFICER, "law-enforcement"), RECORD, [NAMING_POLICE])
    assert decision.outcome == Outcome.DENY
    assert {a.code for a in decision.alerts} == {"police-request", "legal-purpose"}
    assert {w.reason for w in decision.withheld if w.item.part2} <= {"no-use-against-patient", "minimum-necessary"}


def test_emergency_by_a_clinician_overrides_an_opt_out_for_the_emergency_set() -> None:
    decision = decide(request(purpose="BTG", emergency=emergency()), RECORD, [OPT_OUT])
    got = released(decision)
    assert {"MedicationStatement/buprenorphine", "Condition/opioid-use-disorder", "Observation/urine-toxicology",
            "CareTeam/otp-team", "Condition/major-depression", "CarePlan/crisis-plan"} <= got  # fmt: skip
    assert not got & {"DocumentReference/counseling-note", "DocumentReference/psychotherapy-note",
                      "EpisodeOfCare/otp-episode"}  # fmt: skip
    assert "Patient/maria-rivera" in got  # who the emergency is about goes with it, opt-out or not
    assert set(bases(decision).values()) == {BasisKind.EMERGENCY}
    record = decision.emergency_record
    assert record is not None and record.nature == "unresponsive, suspected overdose"
    assert record.recipient_name == "Ada Lovelace, LCSW" and record.affiliation == CRISIS_TEAM
    assert record.disclosed_at == AS_OF and OTP in record.programs
    assert decision.review is True
    assert "emergency-access" in {a.code for a in decision.alerts}
    assert decision.notice == Notice(STATEMENT_1, "2024")  # project policy: Statement 1 with every Part 2 release


def test_emergency_by_ems_without_any_consent() -> None:
    decision = decide(request(EMT, "BTG", emergency=emergency()), RECORD, [])
    assert "MedicationStatement/buprenorphine" in released(decision)


def test_emergency_by_police_is_refused() -> None:
    decision = decide(request(OFFICER, "BTG", emergency=emergency()), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY and decision.audit.reasons == ("not-medical-personnel",)
    assert [a.code for a in decision.alerts] == ["police-request", "emergency-refused"]


@pytest.mark.parametrize("nature", ["", "   "])
def test_emergency_needs_its_nature(nature: str) -> None:
    with pytest.raises(DecisionError, match="nature"):
        decide(request(purpose="BTG", emergency=emergency(nature)), RECORD, [])
    with pytest.raises(DecisionError):
        decide(request(purpose="BTG"), RECORD, [])


def test_every_emergency_access_is_documented_and_reviewed() -> None:
    first = decide(request(purpose="BTG", emergency=emergency()), RECORD, [])
    again = decide(request(purpose="BTG", emergency=emergency("still unresponsive")), RECORD, [],
                   as_of=AS_OF + timedelta(minutes=90))  # fmt: skip
    assert first.review and again.review
    assert again.emergency_record is not None and again.emergency_record.disclosed_at == AS_OF + timedelta(minutes=90)


def test_consent_store_down_fails_closed_except_emergencies() -> None:
    with pytest.raises(ConsentsUnavailable):
        decide(request(), RECORD, None)
    assert "Condition/opioid-use-disorder" in released(
        decide(request(purpose="BTG", emergency=emergency()), RECORD, None)
    )


def test_deny_overrides_permit_and_raises_a_conflict_alert() -> None:
    restriction = replace(OPT_OUT, id="no-dx-to-teams", kind=ConsentKind.RESTRICTION,
                          provision=Provision("deny", data_classes=frozenset({"DX"})))  # fmt: skip
    decision = decide(request(), RECORD, [TPO, restriction])
    got = released(decision)
    assert "Condition/opioid-use-disorder" not in got and "Condition/major-depression" not in got
    assert "MedicationStatement/buprenorphine" in got
    conflicts = [a for a in decision.alerts if a.code == "consent-conflict"]
    assert len(conflicts) == 1 and "no-dx-to-teams" in conflicts[0].detail and "tpo-2026" in conflicts[0].detail
    withheld = next(w for w in decision.withheld if w.item.key == "Condition/opioid-use-disorder")
    assert withheld.reason == "restricted-by-patient" and withheld.consents == ("no-dx-to-teams",)
    assert decision.audit.consents_denying == ("no-dx-to-teams",)


def test_nested_deny_provision_is_an_exception_to_its_permit() -> None:
    nested = replace(
        TPO, provision=replace(TPO.provision, provisions=(Provision("deny", data_classes=frozenset({"LAB"})),))
    )
    got = released(decide(request(), RECORD, [nested]))
    assert "Observation/urine-toxicology" not in got and "MedicationStatement/buprenorphine" in got


def test_nested_permit_inside_a_deny_root() -> None:
    only_contacts = replace(OPT_OUT, id="contacts-only", kind=ConsentKind.RESTRICTION, provision=Provision(
        "deny", provisions=(Provision("permit", data_classes=frozenset({"CONTACT"})),)))  # fmt: skip
    got = released(decide(request(), RECORD, [TPO, only_contacts]))
    assert got & PART2_TPO_SCOPE == {"CareTeam/otp-team"}


def test_counseling_notes_only_under_their_own_consent() -> None:
    assert "DocumentReference/counseling-note" in released(decide(request(), RECORD, [COUNSELING]))
    combined = replace(COUNSELING, provision=replace(COUNSELING.provision, data_classes=frozenset({"CN", "DX"})))
    got = released(decide(request(), RECORD, [combined]))
    assert "Condition/opioid-use-disorder" not in got  # a counseling-notes consent covers nothing else
    assert "DocumentReference/counseling-note" not in released(decide(request(), RECORD, [TPO]))


def test_psychotherapy_notes_only_under_an_authorisation_naming_them() -> None:
    assert "DocumentReference/psychotherapy-note" in released(decide(request(), RECORD, [PSYCHOTHERAPY_AUTH]))
    general = replace(
        PSYCHOTHERAPY_AUTH, provision=replace(PSYCHOTHERAPY_AUTH.provision, data_classes=frozenset({"DX"}))
    )
    assert "DocumentReference/psychotherapy-note" not in released(decide(request(), RECORD, [general]))


def test_peer_specialist_gets_minimum_necessary_and_no_overlay() -> None:
    decision = decide(request(PEER), RECORD, [TPO])
    got = released(decision)
    assert got == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "CareTeam/cmhc-team", "Patient/maria-rivera"}
    assert decision.strip_sensitivity is True


def test_mixed_part2_and_mental_health_for_a_dispatcher() -> None:
    dispatcher = replace(PEER, user="dee", role="dispatcher")
    got = released(decide(request(dispatcher), RECORD, [TPO]))
    assert got == {"CareTeam/otp-team", "CareTeam/cmhc-team", "Patient/maria-rivera"}


def test_requested_data_classes_narrow_the_candidates() -> None:
    decision = decide(request(data_classes=frozenset({"CONTACT"})), RECORD, [TPO])
    assert decision.outcome == Outcome.PERMIT  # demographics are not counted
    assert released(decision) == {"CareTeam/otp-team", "CareTeam/cmhc-team", "Patient/maria-rivera"}


def test_missing_purpose_is_an_error_and_unknown_roles_are_denied() -> None:
    with pytest.raises(DecisionError, match="purpose"):
        decide(request(purpose=None), RECORD, [TPO])
    with pytest.raises(DecisionError, match="GOSSIP"):
        decide(request(purpose="GOSSIP"), RECORD, [TPO])
    stranger = replace(CLINICIAN, role="janitor")
    assert decide(request(stranger), RECORD, [TPO]).outcome == Outcome.DENY


def test_a_record_of_another_patient_is_never_decided() -> None:
    decision = decide(request(patient="Patient/other"), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY


def test_intermediary_general_designation() -> None:
    hie = replace(TPO, id="hie-general-designation", kind=ConsentKind.PART2_INTERMEDIARY,
                  intermediary="Organization/county-hie",
                  provision=replace(TPO.provision, recipient_classes=frozenset({"intermediary-participants"})))  # fmt: skip
    decision = decide(request(), RECORD, [hie])
    assert PART2_TPO_SCOPE <= released(decision)
    assert {row.item for row in decision.intermediary_list} == PART2_TPO_SCOPE  # §2.24 list entries
    assert {row.participant for row in decision.intermediary_list} == {CRISIS_TEAM}
    assert not released(decide(request(OFFICER, "crisis-coordination"), RECORD, [hie])) & PART2_TPO_SCOPE


def test_decision_is_reproducible_for_the_same_as_of() -> None:
    first = decide(request(), RECORD, [TPO, NAMING_POLICE, OPT_OUT])
    assert decide(request(), RECORD, [TPO, NAMING_POLICE, OPT_OUT]) == first
    assert PATIENT == RECORD.patient


def test_the_policy_file_states_the_defaults_and_unknown_settings_are_refused() -> None:
    from consent_engine import DEFAULT_POLICY, policy_from_mapping
    from gateway.consent.release import load_policy

    assert load_policy() == DEFAULT_POLICY
    with pytest.raises(ValueError, match="unknown consent policy setting"):
        policy_from_mapping({"police_may_do_anything": True})
    with pytest.raises(ValueError, match="unknown data classes"):
        policy_from_mapping({"role_data_classes": {"ems": ["EVERYTHING"]}})
    stricter = policy_from_mapping({"certain_match_confirms_minutes": 30, "mental_health_overlay": False})
    assert stricter.certain_match_confirms == timedelta(minutes=30)
    decision = decide(request(), RECORD, [], stricter)
    assert "Condition/major-depression" not in released(decision)


# -- demographics follow the decision ------------------------------------------------------------------
def test_no_demographics_when_nothing_else_may_be_released() -> None:
    only_part2 = Record(PATIENT, tuple(i for i in RECORD.items if i.part2 or i.kind == "Patient"))
    decision = decide(request(), only_part2, [])
    assert decision.outcome == Outcome.DENY and decision.released == ()
    assert reasons(decision)["Patient/maria-rivera"] == "demographics-follow-the-decision"


def test_the_patient_asked_for_alone_is_decided_as_demographics_under_its_source() -> None:
    patient_only = Record(PATIENT, (RECORD.items[0],))
    assert released(decide(request(), patient_only, [])) == {"Patient/maria-rivera"}  # HIPAA treatment
    from_otp = replace(RECORD.items[0], source=OTP, labels=frozenset({"42CFRPart2", "R", "NORDSCLCD", "SUD"}))
    assert released(decide(request(), Record(PATIENT, (from_otp,)), [TPO])) == set()  # TPO does not cover DEMOGRAPHICS
    assert released(decide(request(PEER), patient_only, [])) == set()  # peers do not receive demographics alone


def test_a_part2_programs_patient_goes_only_with_that_programs_items_released_on_a_part2_basis() -> None:
    from_otp = replace(RECORD.items[0], source=OTP, labels=frozenset({"42CFRPart2", "R", "NORDSCLCD", "SUD"}))
    record = Record(PATIENT, (from_otp, *RECORD.items[1:]), RECORD.treating_organizations)
    without = decide(request(), record, [])  # CMHC items under the overlay and HIPAA, nothing of the OTP
    assert "Patient/maria-rivera" not in released(without) and "Condition/major-depression" in released(without)
    with_tpo = decide(request(), record, [TPO])
    patient = next(r for r in with_tpo.released if r.item.key == "Patient/maria-rivera")
    assert patient.accompanies and patient.basis.consent == "tpo-2026"
    assert "Patient/maria-rivera" in {row.item for row in with_tpo.ledger}  # a Part 2 program's record of her


def test_an_unconfirmed_brief_answers_who_it_is_and_a_recent_certain_match_confirms() -> None:
    brief = request(operation=Operation.BRIEF, identity_confirmed=False)
    identity = decide(brief, RECORD, [TPO])
    assert released(identity) == {"Patient/maria-rivera"} and identity.outcome == Outcome.PERMIT
    assert "Condition/opioid-use-disorder" in identity.audit.presence
    assert identity.ledger == ()  # a CMHC Patient: no Part 2 disclosure yet
    matched = decide(brief, RECORD, [TPO], history=History(certain_match_at=AS_OF - timedelta(minutes=20)))
    assert PART2_TPO_SCOPE <= released(matched)
    stale = decide(brief, RECORD, [TPO], history=History(certain_match_at=AS_OF - timedelta(hours=2)))
    assert released(stale) == {"Patient/maria-rivera"}


def test_a_match_shows_only_people_something_would_be_released_about() -> None:
    match = request(operation=Operation.MATCH)
    shown = decide(match, RECORD, [])
    assert released(shown) == {"Patient/maria-rivera"}
    hidden = decide(replace(match, recipient=OFFICER, purpose="crisis-coordination"), RECORD, [TPO])
    assert hidden.outcome == Outcome.DENY and hidden.released == ()


# -- a discloser bounds its consents ------------------------------------------------------------------------
def test_an_opt_out_recorded_by_one_program_withholds_only_its_items() -> None:
    recorded_by_otp = replace(OPT_OUT, recorded_by=OTP)
    decision = decide(request(), RECORD, [TPO, recorded_by_otp])
    assert not released(decision) & PART2_TPO_SCOPE
    assert {"Condition/major-depression", "CarePlan/crisis-plan", "Patient/maria-rivera"} <= released(decision)
    restriction = replace(OPT_OUT, id="cmhc-restriction", kind=ConsentKind.RESTRICTION, disclosers=frozenset({CMHC}),
                          provision=Provision("deny", data_classes=frozenset({"DX"})))  # fmt: skip
    bounded = decide(request(), RECORD, [TPO, restriction])
    assert "Condition/opioid-use-disorder" in released(bounded) and "Condition/major-depression" not in released(
        bounded
    )


# -- end of treatment, from the program's EpisodeOfCare --------------------------------------------------------
@pytest.mark.parametrize(
    ("episodes", "in_force"),
    [
        ((), True),
        ((Episode("EpisodeOfCare/otp", OTP, "active"),), True),
        ((Episode("EpisodeOfCare/otp", OTP, "finished", AS_OF - timedelta(days=2)),), False),
        ((Episode("EpisodeOfCare/otp", OTP, "cancelled", AS_OF - timedelta(days=2)),), False),
        ((Episode("EpisodeOfCare/otp", OTP, "finished", AS_OF + timedelta(days=2)),), True),  # ends later
        ((Episode("EpisodeOfCare/old", OTP, "finished", datetime(2025, 1, 1)),), True),  # before it was signed
        (
            (
                Episode("EpisodeOfCare/otp", OTP, "finished", AS_OF - timedelta(days=2)),
                Episode("EpisodeOfCare/detox", OTP, "active"),
            ),
            True,
        ),  # another episode at the program goes on
        ((Episode("EpisodeOfCare/cmhc", CMHC, "finished", AS_OF - timedelta(days=2)),), True),  # another program
    ],
)
def test_end_of_treatment_is_recognised_from_the_programs_episodes(
    episodes: tuple[Episode, ...], in_force: bool
) -> None:
    record = replace(RECORD, episodes=episodes)
    assert (PART2_TPO_SCOPE <= released(decide(request(), record, [TPO]))) is in_force


# -- counseling notes need a consent of their own that names the recipient ---------------------------------------
def test_a_counseling_notes_consent_must_name_the_recipient() -> None:
    to_treating_class = replace(COUNSELING, provision=replace(COUNSELING.provision, recipients=frozenset(),
                                                              recipient_classes=frozenset({"treating-providers"})))  # fmt: skip
    assert "DocumentReference/counseling-note" not in released(decide(request(), RECORD, [to_treating_class]))
    assert "DocumentReference/counseling-note" not in released(decide(request(PEER), RECORD, [COUNSELING]))


# -- every requester comes through the door -----------------------------------------------------------------------
def test_a_backend_client_receives_back_what_its_organization_sent() -> None:
    ehr = Recipient(user="client:otp-ehr", name="OTP EHR", role="ehr", medical=False, organization=OTP, system=True)
    notification = Item("Communication/2-51", "STATUS", frozenset({"42CFRPart2"}), None, addressed_to=frozenset({OTP}))
    record = replace(RECORD, items=(*RECORD.items, notification))
    decision = decide(request(ehr, purpose=None), record, None)
    assert released(decision) == {i.key for i in RECORD.items if i.source == OTP} | {"Communication/2-51"}
    assert set(bases(decision).values()) == {BasisKind.OWN_RECORDS}
    assert decision.ledger == () and decision.notice is not None  # own records are no disclosure; the notice still goes
    assert reasons(decision)["Condition/major-depression"] == "not-own-records"


def test_a_compliance_officer_receives_consents_and_reports_as_administration() -> None:
    officer = Recipient(user="cora", name="Cora", role="compliance-officer", medical=False, organization=OTP)
    consent_item = Item("Consent/tpo-2026", "STATUS", frozenset({"42CFRPart2"}), OTP)
    decision = decide(request(officer), replace(RECORD, items=(*RECORD.items, consent_item)), [TPO])
    assert released(decision) == {"Consent/tpo-2026", "Patient/maria-rivera"}  # whom the consent is about
    assert set(bases(decision).values()) == {BasisKind.ADMINISTRATION} and decision.ledger == ()


# -- found by `bench/consent.py --cases 1000000` ---------------------------------------------------------------
def test_a_counseling_notes_consent_must_name_the_notes_program_as_discloser() -> None:
    """Seed 141544: a counseling-notes consent naming no discloser released a program's note."""
    without_disclosers = replace(COUNSELING, disclosers=frozenset())
    assert "DocumentReference/counseling-note" not in released(decide(request(), RECORD, [without_disclosers]))


def test_nothing_mental_health_goes_with_a_law_enforcement_request_not_even_demographics() -> None:
    """Seed 242370: a mental-health-labelled Patient accompanied a release under a law-enforcement
    purpose, because 'minimum necessary' was found first and hid the hard guard."""
    labelled = replace(RECORD.items[0], labels=frozenset({"MH", "R"}))
    record = replace(RECORD, items=(labelled, *RECORD.items[1:]))
    naming = replace(NAMING_POLICE, disclosers=frozenset({OTP, CMHC}))
    decision = decide(request(OFFICER, "law-enforcement"), record, [naming])
    assert "Patient/maria-rivera" not in released(decision)
    assert reasons(decision)["Patient/maria-rivera"] == "no-use-against-patient"
