"""Demo records for a county crisis-response system, generated deterministically.

Treatment programs (a community mental-health center and an opioid treatment program that is a
42 CFR Part 2 program), their clinicians with 24/7 lines, and N people in treatment: Patient,
EpisodeOfCare, CareTeam, Condition, Flag. The records go in through the importer, i.e. through
the same validation and storage as pushed data.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from gateway.importer import Importer, ImportSummary, upsert_entry
from gateway.settings import Settings

_NS = uuid.UUID("6f1c3b1e-1d2a-4c55-9a43-5b7b0c0d5e11")
GIVEN = ["Alex", "Jordan", "Maria", "James", "Aisha", "Daniel", "Rosa", "Kevin", "Tanya", "Luis", "Grace",
         "Marcus", "Elena", "Tyrone", "Priya", "Samuel", "Keisha", "Robert", "Mei", "Carlos"]  # fmt: skip
FAMILY = ["Rivera", "Johnson", "Nguyen", "Smith", "Okafor", "Garcia", "Brown", "Patel", "Williams", "Lopez",
          "Kim", "Jackson", "Martinez", "Davis", "Hernandez", "Wilson", "Moore", "Taylor", "Clark", "Lewis"]  # fmt: skip
STREETS = ["Main St", "Oak Ave", "Mission Blvd", "5th St", "Harbor Way", "Elm St", "Grand Ave"]
IDENTIFIER_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"  # the county's MPI (demo)


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


def _organizations() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Organization",
            "id": "harbor-cmhc",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1467583920"}],
            "active": True,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "prov", "display": "Healthcare Provider"}]}],
            "name": "Harbor Community Mental Health Center",
            "telecom": [{"system": "phone", "value": "555-0100", "use": "work", "rank": 1}],
            "address": [{"line": ["200 Harbor Way"], "city": "Bayview", "state": "CA", "postalCode": "94100"}],
        },
        {
            "resourceType": "Organization",
            "id": "eastside-otp",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1538294016"}],
            "active": True,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "prov", "display": "Healthcare Provider"}]}],
            "name": "Eastside Recovery Services (opioid treatment program)",
            "telecom": [{"system": "phone", "value": "555-0200", "use": "work"}],
            "address": [{"line": ["41 Grand Ave"], "city": "Bayview", "state": "CA", "postalCode": "94102"}],
        },
    ]  # fmt: skip


def _clinician(org: str, index: int, rng: random.Random) -> list[dict[str, Any]]:
    practitioner_id = f"{org}-clinician-{index}"
    name = {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Dr."] if index == 0 else []}
    return [
        {"resourceType": "Practitioner", "id": practitioner_id, "active": True,
         "name": [{k: v for k, v in name.items() if v}]},
        {"resourceType": "PractitionerRole", "id": f"{practitioner_id}-role", "active": True,
         "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
         "organization": {"reference": f"Organization/{org}"},
         "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "106289002" if index else "80584001",
                               "display": "Case manager" if index else "Psychiatrist"}]}],
         "telecom": [{"system": "phone", "value": f"555-0{1 if org == 'harbor-cmhc' else 2}{index}9",
                      "use": "mobile", "rank": 1},
                     {"system": "phone", "value": "555-0999", "use": "work", "rank": 2}],
         "availableTime": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "allDay": True}]},
    ]  # fmt: skip


def _person(n: int, rng: random.Random) -> list[dict[str, Any]]:
    patient_id = _id("patient", n)
    org = "eastside-otp" if n % 3 == 0 else "harbor-cmhc"
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    year = rng.randint(1950, 2005)
    patient = {
        "resourceType": "Patient", "id": patient_id,
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": f"MPI{100000 + n}"}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]},
                 {"use": "nickname", "given": [given[:3]]}],
        "telecom": [{"system": "phone", "value": f"555-{rng.randint(1000, 9999)}", "use": "mobile"}],
        "gender": rng.choice(["male", "female", "other"]),
        "birthDate": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": [{"line": [f"{rng.randint(1, 999)} {rng.choice(STREETS)}"], "city": "Bayview", "state": "CA",
                     "postalCode": f"941{rng.randint(0, 9):02d}"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                    "code": rng.choice(["en", "en", "es", "vi"])}]}}],
    }  # fmt: skip
    episode = {
        "resourceType": "EpisodeOfCare", "id": _id("episode", n), "status": "active",
        "type": [{"text": "Medication for opioid use disorder" if org == "eastside-otp"
                  else "Assertive community treatment"}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {"reference": f"Organization/{org}"},
        "period": {"start": f"{rng.randint(2019, 2026)}-0{rng.randint(1, 9)}-15"},
        "careManager": {"reference": f"Practitioner/{org}-clinician-1"},
    }  # fmt: skip
    team = {
        "resourceType": "CareTeam", "id": _id("careteam", n), "status": "active",
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"member": {"reference": f"PractitionerRole/{org}-clinician-{i}-role"}} for i in range(2)],
        "managingOrganization": [{"reference": f"Organization/{org}"}],
    }  # fmt: skip
    condition = {
        "resourceType": "Condition", "id": _id("condition", n),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                             "code": "F11.20" if org == "eastside-otp" else rng.choice(["F20.9", "F31.9", "F33.1"])}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }  # fmt: skip
    flag = {
        "resourceType": "Flag", "id": _id("flag", n), "status": "active",
        "code": {"text": rng.choice(["Loud voices and uniforms escalate; speak slowly and sit down",
                                     "Calms with music and a quiet space", "Ask for sister Rosa first"])},
        "subject": {"reference": f"Patient/{patient_id}"},
        "author": {"reference": f"Organization/{org}"},
    }  # fmt: skip
    return [patient, episode, team, condition, flag]


def demo_resources(patients: int, seed: int = 2026) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    resources = _organizations()
    for org in ("harbor-cmhc", "eastside-otp"):
        for index in range(2):
            resources += _clinician(org, index, rng)
    for n in range(patients):
        resources += _person(n, rng)
    return resources


def load_demo(settings: Settings, patients: int = 25) -> ImportSummary:
    from gateway.app import build_engine  # noqa: PLC0415
    from gateway.store.database import after_bulk_load, open_database  # noqa: PLC0415

    summary = ImportSummary()
    database = open_database(settings.database_url)
    importer = Importer(build_engine(settings, database, operator=True), "demo", summary, None)
    importer.run_chunked([upsert_entry(resource) for resource in demo_resources(patients)], "demo")
    after_bulk_load(database)
    database.dispose()
    return summary


DEMO_USER = "demo-clinician"
DEMO_PASSWORD = "demo-clinician-password"  # a demo on loopback only: `gateway serve --demo` refuses other binds


def ensure_demo_accounts(settings: Settings) -> list[str]:
    """A clinician to sign in as (linked to a demo Practitioner), created once; returns what to tell
    the person running the demo."""
    from gateway.auth.accounts import Accounts  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    database = open_database(settings.database_url)
    accounts = Accounts(database)
    if accounts.user(DEMO_USER) is None:
        accounts.add_user(
            username=DEMO_USER,
            password=DEMO_PASSWORD,
            display_name="Demo Crisis Clinician",
            role="crisis-clinician",
            practitioner="Practitioner/harbor-cmhc-clinician-0",
            practitioner_role="PractitionerRole/harbor-cmhc-clinician-0-role",
            organization="Organization/harbor-cmhc",
        )
    database.dispose()
    root = settings.base_url.removesuffix("/fhir")
    return [
        f"demo sign-in: {DEMO_USER} / {DEMO_PASSWORD} at {root}/auth/manage",
        "register apps and EHRs with `gateway client add` (docs/auth.md)",
    ]
