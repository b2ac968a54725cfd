"""Golden scenarios, written from 42 CFR Part 2 (2024), HIPAA and the project rules of issue 4."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from consent_engine import (
    Basis,
    ConsentKind,
    ConsentsUnavailable,
    DecisionError,
    Outcome,
    Provision,
    decide,
)
from consent_engine.notice import STATEMENT_1
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
    emergency,
    request,
)


def released(decision: object) -> set[str]:
    return {i.key for i in decision.released}  # type: ignore[attr-defined]


PART2_TPO_SCOPE = {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "MedicationStatement/buprenorphine",
                   "Condition/opioid-use-disorder", "Observation/urine-toxicology"}  # fmt: skip
CMHC_ITEMS = {"Patient/maria-rivera", "EpisodeOfCare/cmhc-episode", "CareTeam/cmhc-team", "Condition/major-depression",
              "CarePlan/crisis-plan"}  # fmt: skip


def test_without_consent_a_clinician_gets_mental_health_but_no_part2() -> None:
    decision = decide(request(), RECORD, [])
    assert released(decision) == CMHC_ITEMS
    assert decision.outcome == Outcome.PERMIT_WITH_REDACTION
    assert decision.notice is None and decision.ledger == ()
    bases = {d.item.key: d.basis for d in decision.items if d.released}
    assert bases["Condition/major-depression"] == Basis.JURISDICTION
    assert bases["CareTeam/cmhc-team"] == Basis.TREATMENT
    reasons = {d.item.key: d.reason for d in decision.withheld}
    assert reasons["Condition/opioid-use-disorder"] == "2.13(a)-no-consent"
    assert reasons["DocumentReference/psychotherapy-note"] == "no-basis"


def test_tpo_consent_releases_part2_to_a_treating_provider_with_the_notice() -> None:
    decision = decide(request(), RECORD, [TPO])
    assert released(decision) == CMHC_ITEMS | PART2_TPO_SCOPE
    assert all(d.consent_ids == ("tpo-2026",) for d in decision.items if d.item.part2 and d.released)
    assert decision.notice == STATEMENT_1 and decision.notice_version == "2024"
    assert set(decision.ledger) == PART2_TPO_SCOPE
    assert len(decision.consent_explanations) == 1 and "tpo-2026" in decision.consent_explanations[0]
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
        ({"revoked_at": AS_OF, "status": "inactive"}, False),  # effective at its timestamp
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


def test_police_with_only_a_tpo_consent_get_nothing() -> None:
    decision = decide(request(OFFICER, "crisis-coordination"), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY and released(decision) == set()
    assert decision.notice is None


def test_police_with_a_consent_naming_them_by_alias() -> None:
    decision = decide(request(OFFICER, "crisis-coordination"), RECORD, [TPO, NAMING_POLICE])
    assert released(decision) == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team"}  # MED: minimum necessary
    assert decision.notice == STATEMENT_1
    assert decision.strip_labels is True
    assert [a.code for a in decision.alerts] == ["police-release"]
    reasons = {d.item.key: d.reason for d in decision.withheld}
    assert reasons["MedicationStatement/buprenorphine"] == "minimum-necessary"
    assert reasons["CarePlan/crisis-plan"] == "no-basis"  # MH crisis plan: no authorisation naming them


def test_law_enforcement_purpose_is_hard_denied_even_with_a_naming_consent() -> None:
    decision = decide(request(OFFICER, "law-enforcement"), RECORD, [NAMING_POLICE])
    assert decision.outcome == Outcome.DENY
    assert {a.code for a in decision.alerts} == {"law-enforcement-purpose"}
    assert {d.reason for d in decision.items if d.item.part2} <= {"2.12(d)-no-use-against-patient", "minimum-necessary"}


def test_emergency_by_a_clinician_overrides_an_opt_out_for_the_emergency_set() -> None:
    decision = decide(request(purpose="BTG", emergency=emergency()), RECORD, [OPT_OUT])
    got = released(decision)
    assert {"MedicationStatement/buprenorphine", "Condition/opioid-use-disorder", "Observation/urine-toxicology",
            "CareTeam/otp-team", "Condition/major-depression", "CarePlan/crisis-plan"} <= got  # fmt: skip
    assert not got & {"DocumentReference/counseling-note", "DocumentReference/psychotherapy-note",
                      "EpisodeOfCare/otp-episode", "Patient/maria-rivera"}  # fmt: skip
    assert all(d.basis == Basis.EMERGENCY for d in decision.items if d.released)
    assert decision.emergency_record is not None
    assert decision.emergency_record["nature"] == "unresponsive, suspected overdose"
    assert decision.emergency_record["recipient"] == "Ada Lovelace, LCSW"
    assert decision.emergency_record["affiliation"] == CRISIS_TEAM
    assert OTP in decision.emergency_record["disclosers"]
    assert "emergency-access" in {a.code for a in decision.alerts}
    assert decision.notice == STATEMENT_1  # project policy: Statement 1 with every Part 2 release


def test_emergency_by_ems_without_any_consent() -> None:
    decision = decide(request(EMT, "BTG", emergency=emergency()), RECORD, [])
    assert "MedicationStatement/buprenorphine" in released(decision)


def test_emergency_by_police_is_refused() -> None:
    decision = decide(request(OFFICER, "BTG", emergency=emergency()), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY and decision.reasons == ("2.51-not-medical-personnel",)
    assert [a.code for a in decision.alerts] == ["emergency-refused"]


@pytest.mark.parametrize("nature", ["", "   "])
def test_emergency_needs_its_nature(nature: str) -> None:
    with pytest.raises(DecisionError, match="nature"):
        decide(request(purpose="BTG", emergency=emergency(nature)), RECORD, [])
    with pytest.raises(DecisionError):
        decide(request(purpose="BTG"), RECORD, [])


def test_emergency_window_expires_after_60_minutes() -> None:
    assert released(decide(request(purpose="BTG", emergency=emergency(minutes_ago=60)), RECORD, []))
    expired = decide(request(purpose="BTG", emergency=emergency(minutes_ago=61)), RECORD, [])
    assert expired.outcome == Outcome.DENY and expired.reasons == ("2.51-emergency-window-expired",)


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
    assert got == {"EpisodeOfCare/otp-episode", "CareTeam/otp-team", "CareTeam/cmhc-team"}
    assert decision.strip_labels is True


def test_mixed_part2_and_mental_health_for_a_dispatcher() -> None:
    dispatcher = replace(PEER, user="dee", role="dispatcher")
    got = released(decide(request(dispatcher), RECORD, [TPO]))
    assert got == {"CareTeam/otp-team", "CareTeam/cmhc-team"}


def test_requested_data_classes_narrow_the_candidates() -> None:
    decision = decide(request(data_classes=frozenset({"CONTACT"})), RECORD, [TPO])
    assert decision.outcome == Outcome.PERMIT
    assert released(decision) == {"CareTeam/otp-team", "CareTeam/cmhc-team"}


def test_missing_purpose_is_an_error_and_unknown_roles_are_denied() -> None:
    with pytest.raises(DecisionError, match="purpose"):
        decide(request(purpose=None), RECORD, [TPO])
    stranger = replace(CLINICIAN, role="janitor")
    assert decide(request(stranger), RECORD, [TPO]).outcome == Outcome.DENY
    assert decide(request(purpose="GOSSIP"), RECORD, [TPO]).outcome == Outcome.DENY


def test_a_record_of_another_patient_is_never_decided() -> None:
    decision = decide(request(patient="Patient/other"), RECORD, [TPO])
    assert decision.outcome == Outcome.DENY


def test_intermediary_general_designation() -> None:
    hie = replace(TPO, id="hie-general-designation", kind=ConsentKind.PART2_INTERMEDIARY,
                  intermediary="Organization/county-hie",
                  provision=replace(TPO.provision, recipient_classes=frozenset({"intermediary-participants"})))  # fmt: skip
    decision = decide(request(), RECORD, [hie])
    assert PART2_TPO_SCOPE <= released(decision)
    assert set(decision.intermediary_disclosures) == PART2_TPO_SCOPE  # §2.24 list entries
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
    stricter = policy_from_mapping({"emergency_window_minutes": 30, "mental_health_overlay": False})
    assert stricter.emergency_window == timedelta(minutes=30)
    decision = decide(request(), RECORD, [], stricter)
    assert "Condition/major-depression" not in {i.key for i in decision.released}
