"""Demo records for a county crisis-response system, generated deterministically.

Treatment programs (a community mental-health center and an opioid treatment program that is a
42 CFR Part 2 program), their clinicians with 24/7 lines, and N people in treatment: Patient,
EpisodeOfCare, CareTeam, Condition, Flag. The records go in through the importer, i.e. through
the same validation and storage as pushed data.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

from gateway.importer import Importer, ImportSummary, upsert_entry
from gateway.settings import Settings
from mappings.consent_form import consent_resource as build_consent

_NS = uuid.UUID("6f1c3b1e-1d2a-4c55-9a43-5b7b0c0d5e11")
GIVEN = ["Alex", "Jordan", "Maria", "James", "Aisha", "Daniel", "Rosa", "Kevin", "Tanya", "Luis", "Grace",
         "Marcus", "Elena", "Tyrone", "Priya", "Samuel", "Keisha", "Robert", "Mei", "Carlos"]  # fmt: skip
FAMILY = ["Rivera", "Johnson", "Nguyen", "Smith", "Okafor", "Garcia", "Brown", "Patel", "Williams", "Lopez",
          "Kim", "Jackson", "Martinez", "Davis", "Hernandez", "Wilson", "Moore", "Taylor", "Clark", "Lewis"]  # fmt: skip
STREETS = ["Main St", "Oak Ave", "Mission Blvd", "5th St", "Harbor Way", "Elm St", "Grand Ave"]
IDENTIFIER_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"  # the county's MPI (demo)


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


PROVIDER = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov",
                         "display": "Healthcare Provider"}]}]  # fmt: skip
CMHC, OTP, DETOX = "Organization/harbor-cmhc", "Organization/eastside-otp", "Organization/northside-detox"
CRISIS, ED, POLICE = "Organization/county-mobile-crisis", "Organization/county-general-ed", "Organization/metro-pd"
COUNSEL, EXAMINER = "Organization/county-counsel", "Organization/county-medical-examiner"
PUBLIC_HEALTH = "Organization/county-public-health"
MINOR, DECEASED, ORDERED = 12, 5, 10  # demo people on the paths of issue 13 (the README lists them)
# Each program's EHR, as the gateway knows it: client id, organization, registered as a Part 2 program.
PROGRAMS = (
    ("harbor-cmhc-ehr", CMHC, False),
    ("eastside-otp-ehr", OTP, True),
    ("northside-detox-ehr", DETOX, True),
)


def _organization(ref: str, name: str, phone: str, npi: str | None = None, provider: bool = True) -> dict[str, Any]:
    organization: dict[str, Any] = {"resourceType": "Organization", "id": ref.split("/")[1], "active": True, "name": name,
                                    "telecom": [{"system": "phone", "value": phone, "use": "work", "rank": 1}],
                                    "address": [{"city": "Bayview", "state": "CA", "postalCode": "94100"}]}  # fmt: skip
    if npi:
        organization["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}]
    if provider:
        organization["type"] = PROVIDER
    return organization


def _organizations() -> list[dict[str, Any]]:
    return [
        _organization(CMHC, "Harbor Community Mental Health Center", "555-0100", "1467583920"),
        _organization(OTP, "Eastside Recovery Services (opioid treatment program)", "555-0200", "1538294016"),
        _organization(DETOX, "Northside Withdrawal Management", "555-0300", "1639201842"),
        _organization(CRISIS, "County Mobile Crisis Team", "555-0988"),
        _organization(ED, "County General Emergency Department", "555-0911"),
        _organization(POLICE, "Metro Police Department", "555-0112", provider=False),
        _organization(COUNSEL, "Office of the County Counsel", "555-0150", provider=False),
        _organization(EXAMINER, "County Medical Examiner", "555-0160", provider=False),
        _organization(PUBLIC_HEALTH, "County Public Health Department", "555-0170", provider=False),
    ]


LINE_DIGIT = {"harbor-cmhc": 1, "eastside-otp": 2, "northside-detox": 3}  # 24/7 lines: 555-01x9, 555-02x9, ...


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
         "telecom": [{"system": "phone", "value": f"555-0{LINE_DIGIT[org]}{index}9",
                      "use": "mobile", "rank": 1},
                     {"system": "phone", "value": "555-0999", "use": "work", "rank": 2}],
         "availableTime": [{"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "allDay": True}]},
    ]  # fmt: skip


def _program(n: int) -> str:
    """Every third person is treated at the opioid treatment program, some at the withdrawal-
    management program (both Part 2 programs), the others at the mental-health center."""
    return OTP if n % 3 == 0 else DETOX if n % 6 == 5 else CMHC


def _person(n: int, rng: random.Random) -> list[dict[str, Any]]:
    patient_id = _id("patient", n)
    program = _program(n)
    org = program.split("/")[1]
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
    kind = {OTP: "Medication for opioid use disorder", DETOX: "Withdrawal management"}.get(program,
                                                                                         "Assertive community treatment")  # fmt: skip
    episode = {
        "resourceType": "EpisodeOfCare", "id": _id("episode", n), "status": "active",
        "type": [{"text": kind}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {"reference": program},
        "period": {"start": f"{rng.randint(2019, 2026)}-0{rng.randint(1, 9)}-15"},
        "careManager": {"reference": f"Practitioner/{org}-clinician-1"},
    }  # fmt: skip
    team = {
        "resourceType": "CareTeam", "id": _id("careteam", n), "status": "active",
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"member": {"reference": f"PractitionerRole/{org}-clinician-{i}-role"}} for i in range(2)],
        "managingOrganization": [{"reference": program}],
    }  # fmt: skip
    code = {OTP: "F11.20", DETOX: "F10.20"}.get(program) or rng.choice(["F20.9", "F31.9", "F33.1"])
    condition = {
        "resourceType": "Condition", "id": _id("condition", n),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }  # fmt: skip
    flag = {
        "resourceType": "Flag", "id": _id("flag", n), "status": "active",
        "code": {"text": rng.choice(["Loud voices and uniforms escalate; speak slowly and sit down",
                                     "Calms with music and a quiet space", "Ask for sister Rosa first"])},
        "subject": {"reference": f"Patient/{patient_id}"},
        "author": {"reference": program},
    }  # fmt: skip
    found = [patient, episode, team, condition, flag]
    if program == OTP:
        found.append({"resourceType": "MedicationStatement", "id": _id("medication", n), "status": "active",
                      "subject": {"reference": f"Patient/{patient_id}"},
                      "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1010604",
                          "display": "buprenorphine 8 MG / naloxone 2 MG Sublingual Film"}]}})  # fmt: skip
    if program == DETOX:  # an uncoded admission: Part 2 data because of where it comes from
        found.append({"resourceType": "Encounter", "id": _id("admission", n), "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                      "subject": {"reference": f"Patient/{patient_id}"}, "serviceProvider": {"reference": DETOX},
                      "period": {"start": "2026-10-01", "end": "2026-10-05"}})  # fmt: skip
    return found


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
P = "https://crisis-fhir-gateway.org/fhir"
TREATING = {"identifier": {"system": f"{P}/CodeSystem/recipient-class", "value": "treating-providers"}}
PARTICIPANTS = {"identifier": {"system": f"{P}/CodeSystem/recipient-class", "value": "intermediary-participants"}}
HIE = "Organization/bayview-hie"


def consent_resource(consent_id: str, patient: str, kind: str, **elements: Any) -> dict[str, Any]:
    """A Consent of the documented profile with every 42 CFR 2.31 element, so that it can be
    relied on (mappings.consent_form); an intermediary consent names the county's HIE, and the
    signed form is on the program's EHR."""
    if kind == "part2-intermediary":
        elements.setdefault("intermediary", HIE)
    elements.setdefault("attachment", {"contentType": "application/pdf",
                                       "url": f"https://ehr.example/consents/{consent_id}.pdf"})  # fmt: skip
    return build_consent(consent_id, patient, kind, **elements)


def _document(document_id: str, patient: str, text: str, label: str | None = None) -> dict[str, Any]:
    """A note as an EHR sends it: a LOINC progress note whose category says what it is."""
    document: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": document_id, "status": "current", "subject": {"reference": patient},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "category": [{"text": text}], "date": "2026-11-18T15:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain", "data": "U2Vzc2lvbiBub3Rlcw=="}}],
    }  # fmt: skip
    if label:
        document["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}]}
    return document


def _on_scene(n: int) -> dict[str, Any]:
    """The crisis team is with the person: the treating relationship TPO and intermediary consents need."""
    return {"resourceType": "Encounter", "id": _id("crisis-call", n), "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "FLD"},
            "type": [{"text": "Mobile crisis response"}], "subject": {"reference": f"Patient/{_id('patient', n)}"},
            "serviceProvider": {"reference": CRISIS}, "period": {"start": "2026-12-01T10:00:00Z"}}  # fmt: skip


def _paths(patients: int) -> dict[str, list[dict[str, Any]]]:
    """Consents of each kind, and the notes and encounters they are about, so that each path can be
    tried with the demo users (the README lists them)."""
    by_source: dict[str, list[dict[str, Any]]] = {OTP: [], DETOX: [], CMHC: [], CRISIS: []}
    person = {n: f"Patient/{_id('patient', n)}" for n in range(patients)}
    all_clinical = ["STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN"]
    if 0 in person:  # TPO: the crisis team is on scene, a treating provider
        by_source[OTP].append(consent_resource("demo-tpo", person[0], "part2-tpo", disclosers=[OTP],
                                               recipients=[TREATING], purposes=["TREAT", "HPAYMT", "HOPERAT"],
                                               classes=all_clinical))  # fmt: skip
        by_source[CRISIS].append(_on_scene(0))
    if 1 in person:  # a HIPAA authorisation for psychotherapy notes, naming the crisis team
        by_source[CMHC] += [_document(_id("psychotherapy-note", 1), person[1], "Psychotherapy session", "PSYTHPN"),
                            consent_resource("demo-psychotherapy-authorization", person[1], "hipaa-authorization",
                                             disclosers=[CMHC], recipients=[{"reference": CRISIS}], purposes=["TREAT"],
                                             classes=["PSYNOTE"])]  # fmt: skip
    if 3 in person:  # a consent naming the police department, for crisis coordination
        by_source[OTP].append(consent_resource("demo-police", person[3], "part2-specific", disclosers=[OTP],
                                               recipients=[{"reference": POLICE}], purposes=["crisis-coordination"],
                                               classes=["STATUS", "CONTACT", "CRISISPLAN"]))  # fmt: skip
    if 4 in person:  # a restriction the mental-health center agreed to: no diagnoses through the gateway
        by_source[CMHC].append(consent_resource("demo-restriction", person[4], "restriction", disclosers=[CMHC],
                                                recipients=[], purposes=[], classes=["DX"], deny=True))  # fmt: skip
    if 6 in person:  # an intermediary (the HIE) with a general designation of treating participants
        by_source[OTP].append(consent_resource("demo-intermediary", person[6], "part2-intermediary", disclosers=[OTP],
                                               recipients=[PARTICIPANTS], purposes=["TREAT"], classes=all_clinical))  # fmt: skip
        by_source[CRISIS].append(_on_scene(6))
    if 9 in person:  # SUD counseling notes, under their own consent naming the crisis team
        by_source[OTP] += [_document(_id("counseling-note", 9), person[9], "Individual counseling session"),
                           consent_resource("demo-counseling-notes", person[9], "part2-counseling-notes",
                                            disclosers=[OTP], recipients=[{"reference": CRISIS}], purposes=["TREAT"],
                                            classes=["CN"])]  # fmt: skip
    if MINOR in person:  # a minor's TPO consent signed without a parent (the jurisdiction needs both)
        by_source[OTP].append(consent_resource("demo-minor-tpo", person[MINOR], "part2-tpo", disclosers=[OTP],
                                               recipients=[TREATING], purposes=["TREAT"], classes=all_clinical))  # fmt: skip
        by_source[CRISIS].append(_on_scene(MINOR))
    if ORDERED in person:  # a court order (42 CFR 2.64) for the county counsel: the diagnoses
        by_source[CRISIS].append(court_order_resource("demo-court-order", person[ORDERED], holders=[CMHC],
                                                      recipients=[COUNSEL], classes=["DX"]))  # fmt: skip
    if 11 in person:  # an opt-out, recorded by the withdrawal-management program (emergencies excepted)
        by_source[DETOX].append(consent_resource("demo-opt-out", person[11], "opt-out", disclosers=[], recipients=[],
                                                 purposes=[], classes=[], deny=True))  # fmt: skip
    return by_source


def court_order_resource(
    order_id: str, patient: str, *, holders: list[str], recipients: list[str], classes: list[str],
    purposes: tuple[str, ...] = ("legal-proceeding",), section: str = "2.64",
) -> dict[str, Any]:  # fmt: skip
    """A complete court order of the documented profile (docs/consent-profile.md), as a compliance
    officer registers it: findings recorded, notice given, the signed order attached."""
    return {
        "resourceType": "Consent", "id": order_id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": f"{P}/CodeSystem/consent-kind", "code": "court-order"}]}],
        "patient": {"reference": patient}, "dateTime": "2026-11-02T15:00:00Z",
        "performer": [{"display": "Superior Court of Bay County"}],
        "organization": [{"reference": h} for h in holders],
        "sourceAttachment": {"contentType": "application/pdf", "url": f"https://courts.example/orders/{order_id}.pdf"},
        "extension": [{"url": f"{P}/StructureDefinition/court-order-section", "valueCode": section},
                      {"url": f"{P}/StructureDefinition/court-order-findings", "valueBoolean": True},
                      {"url": f"{P}/StructureDefinition/court-order-notice", "valueBoolean": True}],
        "provision": {
            "type": "permit", "period": {"start": "2026-11-02", "end": "2027-05-01"},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP"}]}, "reference": {"reference": r}} for r in recipients],
            "purpose": [{"system": f"{P}/CodeSystem/purpose-of-use", "code": p} for p in purposes],
            "code": [{"coding": [{"system": f"{P}/CodeSystem/data-class", "code": c} for c in classes]}],
        },
    }  # fmt: skip


def _life_events(n: int, records: list[dict[str, Any]]) -> None:
    """A minor (born 2011) and a person who has died, for the paths of 42 CFR 2.14 and 2.15."""
    patient = records[0]
    if n == MINOR:
        patient["birthDate"] = "2011-02-02"
    if n == DECEASED:
        patient["deceasedDateTime"] = "2026-11-20T03:15:00Z"
        patient["active"] = False


def demo_records(patients: int, seed: int = 2026) -> dict[str, list[dict[str, Any]]]:
    """The demo's records by the organization that sends them."""
    rng = random.Random(seed)
    by_source: dict[str, list[dict[str, Any]]] = {CRISIS: _organizations()}
    by_source[CRISIS].append(_organization(HIE, "Bayview Health Information Exchange", "555-0400", provider=False))
    for program in (CMHC, OTP, DETOX):
        for index in range(2):
            by_source.setdefault(program, []).extend(_clinician(program.split("/")[1], index, rng))
    for n in range(patients):
        records = _person(n, rng)
        _life_events(n, records)
        by_source.setdefault(_program(n), []).extend(records)
    for source, found in _paths(patients).items():
        by_source.setdefault(source, []).extend(found)
    return by_source


def demo_resources(patients: int, seed: int = 2026) -> list[dict[str, Any]]:
    return [resource for found in demo_records(patients, seed).values() for resource in found]


def load_demo(settings: Settings, patients: int = 25) -> ImportSummary:
    """Register the programs' EHRs (the Part 2 programs as such) and load each one's records as
    sent by it, through the importer (the same validation, labels and storage as pushed data)."""
    from gateway.app import build_engine  # noqa: PLC0415
    from gateway.auth.accounts import Accounts  # noqa: PLC0415
    from gateway.fhir.context import Requester  # noqa: PLC0415
    from gateway.store.database import after_bulk_load, open_database  # noqa: PLC0415

    summary = ImportSummary()
    database = open_database(settings.database_url)
    accounts = Accounts(database)
    part2 = {organization: flag for _, organization, flag in PROGRAMS}
    for client_id, organization, flag in PROGRAMS:
        if accounts.client(client_id) is None:
            accounts.add_client(client_id=client_id, name=f"{organization.split('/')[1]} EHR (demo)", kind="asymmetric",
                                purpose="ehr", scope="system/*.cruds",
                                jwks_uri=f"https://ehr.example/{organization.split('/')[1]}/jwks.json",
                                organization=organization, part2_program=flag)  # fmt: skip
    engine = build_engine(settings, database, operator=True)
    for source, records in demo_records(patients).items():
        requester = Requester(source="demo", organization=source, part2_program=part2.get(source, False))
        importer = Importer(engine, "demo", summary, None, requester)
        importer.run_chunked([upsert_entry(resource) for resource in records], f"demo ({source})")
    after_bulk_load(database)
    database.dispose()
    return summary


DEMO_PASSWORD = "demo-password-2026"  # a demo on loopback only: `gateway serve --demo` refuses other binds
DEMO_USERS = (  # username, display name, role, organization, practitioner
    ("demo-clinician", "Demo Crisis Clinician", "crisis-clinician", CRISIS, None),
    ("demo-peer", "Demo Peer Specialist", "peer-specialist", CRISIS, None),
    ("demo-dispatcher", "Demo 988 Dispatcher", "dispatcher", CRISIS, None),
    ("demo-ed", "Demo ED Physician", "ed-physician", ED, None),
    ("demo-officer", "Demo Police Officer", "police-officer", POLICE, None),
    ("demo-compliance", "Demo Compliance Officer", "compliance-officer", OTP, None),
    ("demo-counsel", "Demo County Counsel", "legal-counsel", COUNSEL, None),
    ("demo-examiner", "Demo Medical Examiner", "medical-examiner", EXAMINER, None),
    ("demo-epidemiologist", "Demo Epidemiologist", "epidemiologist", PUBLIC_HEALTH, None),
)
DEMO_USER = DEMO_USERS[0][0]
DEMO_OFFICER = "demo-compliance"


def ensure_demo_accounts(settings: Settings) -> list[str]:
    """A user of each role to sign in as, created once; returns what to tell the person running
    the demo."""
    from gateway.auth.accounts import Accounts  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    database = open_database(settings.database_url)
    accounts = Accounts(database)
    for username, name, role, organization, practitioner in DEMO_USERS:
        if accounts.user(username) is None:
            # The compliance console asks its officers for a second factor: the demo's has one.
            accounts.add_user(username=username, password=DEMO_PASSWORD, display_name=name, role=role,
                              practitioner=practitioner, organization=organization,
                              totp=role == "compliance-officer")  # fmt: skip
    officer = accounts.user(DEMO_OFFICER)
    database.dispose()
    root = settings.base_url.removesuffix("/fhir")
    users = ", ".join(username for username, *_ in DEMO_USERS)
    lines = [
        f"demo sign-in at {root}/auth/manage: {users} (password {DEMO_PASSWORD}); the README lists what each may see",
        "register apps and EHRs with `gateway client add` (docs/auth.md)",
    ]
    if officer is not None and officer.totp_secret:
        lines.append(f"compliance console: {root}/console/ as {DEMO_OFFICER}, with a one-time code from the secret "
                     f"{officer.totp_secret} (an authenticator app, or: .venv/bin/python -c \"import pyotp; "
                     f"print(pyotp.TOTP('{officer.totp_secret}').now())\")")  # fmt: skip
    return lines


DEMO_APP = "responder-web"
DEMO_DISPATCH_USER = "demo-clinician"
DEMO_DISPATCH_PATIENT = _id("patient", 0)  # the TPO path: the OTP's records, the crisis team on scene


def demo_dispatch_encounter() -> str:
    return _id("crisis-call", 0)


DEMO_APP_SCOPE = "launch launch/patient openid fhirUser online_access user/*.rs"


def ensure_demo_app(settings: Settings, app_url: str, key_file: Path) -> list[str]:
    """The responder app (smart_app) registered as a confidential asymmetric client, with its key
    pair made once (the private half in `key_file`, where the app reads it); what to tell the
    person running the demo."""
    import json  # noqa: PLC0415

    from joserfc.jwk import ECKey  # noqa: PLC0415

    from gateway.auth.accounts import Accounts  # noqa: PLC0415
    from gateway.store.database import open_database  # noqa: PLC0415

    database = open_database(settings.database_url)
    accounts = Accounts(database)
    try:
        registered = accounts.client(DEMO_APP) is not None
        if registered and not key_file.exists():
            return [f"demo responder app: its key {key_file} is missing; remove the demo store to start over"]
        if not registered:
            key = ECKey.generate_key("P-384", parameters={"kid": "responder-web-demo"})
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(json.dumps(key.as_dict(private=True)))
            key_file.chmod(0o600)
            accounts.add_client(client_id=DEMO_APP, name="Responder app (demo)", kind="asymmetric", purpose="app",
                                scope=DEMO_APP_SCOPE, redirect_uris=[f"{app_url}/callback"],
                                launch_url=f"{app_url}/launch", jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    finally:
        database.dispose()
    root = settings.base_url.removesuffix("/fhir")
    return [f"responder app: {app_url}/ (sign in as demo-clinician or demo-officer)",
            f"dispatch launch to try: {root}/demo/dispatch (opens the app on the dispatched person's brief)"]  # fmt: skip
