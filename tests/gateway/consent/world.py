"""A county's crisis-response world, pushed over HTTP the way its EHRs would push it.

Organisations: two Part 2 programs (an opioid treatment program and a withdrawal-management
program), a community mental-health centre, the county's mobile crisis team (with its 988
dispatcher), the county hospital's emergency department and the metro police department.

People (each with the items a crisis team would want, from the sources that hold them):
- `maria`: Patient from the mental-health centre; opioid treatment at the OTP under a TPO consent;
  the crisis team is on scene (an in-progress crisis Encounter: the treating relationship).
- `dana`: known only to the OTP (her Patient resource comes from the OTP); no consent.
- `omar`: at the withdrawal-management program, with a consent naming the police department
  (crisis coordination: status, contacts and the crisis plan).
- `june`: mental-health centre and OTP; the OTP recorded her opt-out.
- `nora`: a counseling note at the OTP, under a counseling-notes consent naming the crisis team.
- `lena`: registered at the emergency department (her Patient resource comes from the ED), all her
  clinical data from the OTP, no consent.

Users: ada (crisis clinician), sam (peer specialist), dee (988 dispatcher) of the crisis team;
eve (ED physician); lee (police officer); cora (compliance officer of the OTP).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from gateway.demo import consent_resource
from tests.gateway.auth.harness import Harness

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
P = "https://crisis-fhir-gateway.org/fhir"
PROFILE = Path(__file__).resolve().parents[3] / "docs" / "consent-profile.md"

OTP = "Organization/eastside-otp"
DETOX = "Organization/northside-detox"
CMHC = "Organization/harbor-cmhc"
CRISIS = "Organization/county-mobile-crisis"
ED = "Organization/county-general-ed"
POLICE = "Organization/metro-pd"
PROVIDER_TYPE = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]


def organization(ref: str, name: str, provider: bool = True) -> dict[str, Any]:
    found: dict[str, Any] = {"resourceType": "Organization", "id": ref.split("/")[1], "name": name,
                             "telecom": [{"system": "phone", "value": "555-0100", "use": "work"}]}  # fmt: skip
    if provider:
        found["type"] = PROVIDER_TYPE
    return found


def person(patient_id: str, family: str, given: str, birth: str, phone: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": "female", "birthDate": birth, "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
            "address": [{"line": ["12 Harbor Way"], "city": "Bayview", "postalCode": "94100"}]}  # fmt: skip


def subject(patient: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient}"}


def episode(episode_id: str, patient: str, org: str, text: str, status: str = "active",
            end: str | None = None) -> dict[str, Any]:  # fmt: skip
    period = {"start": "2026-01-05"} | ({"end": end} if end else {})
    return {"resourceType": "EpisodeOfCare", "id": episode_id, "status": status, "type": [{"text": text}],
            "patient": subject(patient), "managingOrganization": {"reference": org}, "period": period}  # fmt: skip


def condition(condition_id: str, patient: str, code: str, display: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": condition_id, "subject": subject(patient),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]}}  # fmt: skip


def medication(med_id: str, patient: str, code: str, display: str) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": med_id, "status": "active", "subject": subject(patient),
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}]}}  # fmt: skip


def team(team_id: str, patient: str, org: str, practitioner: str) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "id": team_id, "status": "active", "subject": subject(patient),
            "participant": [{"role": [{"text": "Counselor"}], "member": {"reference": practitioner}}],
            "managingOrganization": [{"reference": org}]}  # fmt: skip


def lab(obs_id: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final", "subject": subject(patient),
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": "19295-5", "display": "Opiates [Presence] in Urine"}]},
            "effectiveDateTime": "2026-11-20", "valueCodeableConcept": {"text": "Negative"}}  # fmt: skip


def safety_plan(plan_id: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "id": plan_id, "status": "active", "intent": "plan", "subject": subject(patient),
            "category": [{"coding": [{"system": f"{P}/CodeSystem/care-plan-category", "code": "crisis-safety-plan"}]}],
            "activity": [{"detail": {"status": "not-started",
                                     "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step",
                                                          "code": "coping-strategies"}]},
                                     "description": "Music and a quiet room"}}]}  # fmt: skip


def visit(encounter_id: str, patient: str, org: str, episode_ref: str, when: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": encounter_id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject(patient), "serviceProvider": {"reference": org},
            "episodeOfCare": [{"reference": episode_ref}], "period": {"start": when, "end": when}}  # fmt: skip


def counseling_note(note_id: str, patient: str) -> dict[str, Any]:
    """A counseling note as an OTP's EHR sends it: a LOINC progress note with a counseling category
    and the very-restricted confidentiality, not a project code."""
    return {"resourceType": "DocumentReference", "id": note_id, "status": "current", "subject": subject(patient),
            "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
            "category": [{"coding": [{"system": LOINC, "code": "LP173421-1", "display": "Counseling"}],
                          "text": "Individual counseling session"}],
            "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}],
            "date": "2026-11-18T15:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": "U2Vzc2lvbiBub3Rlcw=="}}]}  # fmt: skip


def profile_example(example_id: str) -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", PROFILE.read_text(encoding="utf-8"), re.S)
    return dict(next(c for c in map(json.loads, blocks) if c["id"] == example_id))


def consent(consent_id: str, patient: str, kind: str, **elements: Any) -> dict[str, Any]:
    """A complete Part 2 consent of the documented profile (it can be relied on), as the demo writes them."""
    return consent_resource(consent_id, f"Patient/{patient}", kind, **elements)


TREATING = {"identifier": {"system": f"{P}/CodeSystem/recipient-class", "value": "treating-providers"}}
ALL_CLINICAL = ["STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN"]


@dataclass
class World:
    harness: Harness
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            grant = self.harness.app_token(scope="openid fhirUser user/*.rs", patient=None, username=user)
            self.tokens[user] = str(grant["access_token"])
        return self.tokens[user]

    def get(self, user: str, path: str, **params: str) -> requests.Response:
        return self.harness.get(path, self.token(user), params=params or None)

    def brief(self, user: str, patient: str, **params: str) -> requests.Response:
        return self.harness.get(f"Patient/{patient}/$responder-brief", self.token(user), params=params)

    def push(self, source: str, *resources: dict[str, Any]) -> None:
        client, organization, part2 = SOURCES[source]
        self.harness.push(client, *resources, part2=part2, organization=organization)

    def database(self) -> Any:
        return self.harness.app.extensions["database"]


SOURCES = {  # source name -> (EHR client id, its organization, registered as a Part 2 program)
    "otp": ("eastside-otp-ehr", OTP, True),
    "detox": ("northside-detox-ehr", DETOX, True),
    "cmhc": ("harbor-cmhc-ehr", CMHC, False),
    "crisis": ("county-cad", CRISIS, False),
    "ed": ("county-ed-ehr", ED, False),
}


def build(harness: Harness) -> World:
    world = World(harness)
    world.push("crisis", organization(OTP, "Eastside Recovery Services (OTP)"),
               organization(DETOX, "Northside Withdrawal Management"), organization(CMHC, "Harbor Community Mental Health"),
               organization(CRISIS, "County Mobile Crisis Team"), organization(ED, "County General Emergency Department"),
               organization(POLICE, "Metro Police Department", provider=False),
               {"resourceType": "Practitioner", "id": "otp-counselor", "name": [{"family": "Bell", "given": ["Rae"]}],
                "telecom": [{"system": "phone", "value": "555-0201", "use": "mobile"}]})  # fmt: skip
    # maria: CMHC patient, OTP treatment under a TPO consent; the crisis team is with her.
    world.push("cmhc", person("maria", "Rivera", "Maria", "1988-04-12", "555-0111"),
               episode("maria-cmhc-episode", "maria", CMHC, "Assertive community treatment"),
               condition("maria-mdd", "maria", "F33.1", "Major depressive disorder, recurrent, moderate"),
               safety_plan("maria-plan", "maria"),
               visit("maria-cmhc-visit", "maria", CMHC, "EpisodeOfCare/maria-cmhc-episode", "2026-11-25"),
               {"resourceType": "RelatedPerson", "id": "maria-sister", "patient": subject("maria"),
                "name": [{"given": ["Rosa"], "family": "Rivera"}],
                "telecom": [{"system": "phone", "value": "555-0112"}]})  # fmt: skip
    world.push("otp", episode("maria-otp-episode", "maria", OTP, "Medication for opioid use disorder"),
               condition("maria-oud", "maria", "F11.20", "Opioid dependence, uncomplicated"),
               medication("maria-bup", "maria", "1010604", "buprenorphine 8 MG / naloxone 2 MG Sublingual Film"),
               lab("maria-tox", "maria"), team("maria-otp-team", "maria", OTP, "Practitioner/otp-counselor"),
               consent("maria-tpo", "maria", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                       purposes=["TREAT", "HPAYMT", "HOPERAT"], classes=ALL_CLINICAL))  # fmt: skip
    world.push("crisis", {"resourceType": "Encounter", "id": "maria-crisis-call", "status": "in-progress",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD"},
                          "subject": subject("maria"), "serviceProvider": {"reference": CRISIS},
                          "period": {"start": "2026-12-01T10:00:00Z"}})  # fmt: skip
    # dana: known only to the OTP.
    world.push("otp", person("dana", "Quinlan", "Dana", "1979-08-30", "555-0777"),
               episode("dana-otp-episode", "dana", OTP, "Methadone maintenance"),
               condition("dana-oud", "dana", "F11.20", "Opioid dependence"),
               medication("dana-methadone", "dana", "864706", "methadone hydrochloride 10 MG Oral Tablet"),
               lab("dana-tox", "dana"), counseling_note("dana-note", "dana"),
               {"resourceType": "DocumentReference", "id": "dana-discharge", "status": "current", "subject": subject("dana"),
                "type": {"coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}]},
                "date": "2026-10-06T12:00:00Z",
                "content": [{"attachment": {"contentType": "text/plain", "data": "RGlzY2hhcmdlZA=="}}]})  # fmt: skip
    # nora: a counseling note the crisis team may read under a counseling-notes consent naming it.
    world.push("otp", person("nora", "Vance", "Nora", "1985-03-03", "555-0555"), counseling_note("nora-note", "nora"),
               consent("nora-notes", "nora", "part2-counseling-notes", disclosers=[OTP], recipients=[{"reference": CRISIS}],
                       purposes=["TREAT"], classes=["CN"]))  # fmt: skip
    # lena: registered by the ED, everything clinical from the OTP, no consent.
    world.push("ed", person("lena", "Moss", "Lena", "1993-09-09", "555-0666"))
    world.push(
        "otp",
        condition("lena-oud", "lena", "F11.20", "Opioid dependence"),
        medication("lena-bup", "lena", "1010604", "buprenorphine 8 MG / naloxone 2 MG Sublingual Film"),
    )
    # omar: withdrawal management, a consent naming the police department.
    world.push("detox", person("omar", "Haddad", "Omar", "1991-02-14", "555-0333"),
               episode("omar-detox-episode", "omar", DETOX, "Withdrawal management"),
               {"resourceType": "Encounter", "id": "omar-detox-admission", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": subject("omar"), "serviceProvider": {"reference": DETOX},
                "period": {"start": "2026-10-01", "end": "2026-10-06"}},
               team("omar-team", "omar", DETOX, "Practitioner/otp-counselor"),
               condition("omar-aud", "omar", "F10.20", "Alcohol dependence"),
               consent("omar-police", "omar", "part2-specific", disclosers=[DETOX], recipients=[{"reference": POLICE}],
                       purposes=["crisis-coordination"], classes=["STATUS", "CONTACT", "CRISISPLAN"]))  # fmt: skip
    # june: CMHC and OTP; the OTP recorded her opt-out (no organization element: its recorder bounds it).
    world.push("cmhc", person("june", "Park", "June", "1970-06-01", "555-0444"),
               condition("june-ptsd", "june", "F43.10", "Post-traumatic stress disorder"),
               safety_plan("june-plan", "june"))  # fmt: skip
    world.push("otp", condition("june-oud", "june", "F11.20", "Opioid dependence"),
               medication("june-bup", "june", "1010604", "buprenorphine 8 MG / naloxone 2 MG Sublingual Film"),
               {**profile_example("maria-opt-out"), "id": "june-opt-out", "patient": subject("june")},
               consent("june-tpo", "june", "part2-tpo", disclosers=[OTP], recipients=[TREATING],
                       purposes=["TREAT"], classes=ALL_CLINICAL))  # fmt: skip
    world.push("crisis", {"resourceType": "Encounter", "id": "june-crisis-call", "status": "in-progress",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD"},
                          "subject": subject("june"), "serviceProvider": {"reference": CRISIS},
                          "period": {"start": "2026-12-01T10:00:00Z"}})  # fmt: skip
    users = {"ada": ("crisis-clinician", CRISIS, "Practitioner/ada"), "sam": ("peer-specialist", CRISIS, None),
             "dee": ("dispatcher", CRISIS, None), "eve": ("ed-physician", ED, None), "lee": ("police-officer", POLICE, None),
             "cora": ("compliance-officer", OTP, None)}  # fmt: skip
    for username, (role, org, practitioner) in users.items():
        harness.add_user(username, role=role, organization=org, practitioner=practitioner)
    return world
