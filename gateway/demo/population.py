"""A synthetic county population for benchmarks: realistic records of 10–60 resources per person
from two sources (a community mental-health center, and an opioid treatment program that is a
Part 2 program), consents, and near-duplicates (siblings sharing a family name, birth date and
address) that make matching hard. Deterministic for a seed.

`records(n)` yields each person's resources split by source; `typo_queries` makes the kind of
noisy description a responder gives (nicknames, misspellings, swapped day and month, an age).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.demo import FAMILY, GIVEN, IDENTIFIER_SYSTEM, STREETS, _id
from mappings.matching import NICKNAMES

P = "https://crisis-fhir-gateway.org/fhir"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MORE_GIVEN = ["Robert", "William", "Elizabeth", "Margaret", "Katherine", "Michael", "Jennifer", "Joseph",
              "Patricia", "Samantha", "Victoria", "Benjamin", "Rebecca", "Susan", "Timothy", "Guadalupe"]  # fmt: skip
MORE_FAMILY = ["Anderson", "Thomas", "Thompson", "White", "Harris", "Sanchez", "Ramirez", "Robinson", "Walker",
               "Young", "Allen", "King", "Wright", "Scott", "Torres", "Hill", "Flores", "Green", "Adams", "Baker"]  # fmt: skip
EVEN_MORE_GIVEN = ["Aaliyah", "Abdul", "Adrian", "Alicia", "Amir", "Angela", "Antonio", "Ashley", "Brandon", "Brianna",
                   "Cameron", "Carmen", "Cedric", "Chloe", "Darnell", "Destiny", "Diego", "Ebony", "Emily", "Eric",
                   "Esperanza", "Fatima", "Gabriel", "Hannah", "Hector", "Imani", "Isaac", "Jamal", "Jasmine", "Javier",
                   "Jessica", "Juan", "Kayla", "Lamar", "Latoya", "Leticia", "Malik", "Megan", "Miguel", "Monique",
                   "Nadia", "Nathan", "Omar", "Paula", "Rafael", "Raymond", "Sofia", "Tariq", "Trinh", "Yolanda"]  # fmt: skip
_FIRST = ["Ash", "Bar", "Bel", "Bran", "Car", "Dal", "Dun", "Fair", "Gar", "Hart", "Hol", "Kel", "Lang", "Mar", "Mor",
          "Nor", "Pem", "Ral", "Ros", "Stan", "Thorn", "Wal", "Wes", "Win"]  # fmt: skip
_SECOND = [
    "by",
    "ford",
    "ton",
    "well",
    "wood",
    "ley",
    "man",
    "son",
    "ston",
    "more",
    "field",
    "wick",
    "dale",
    "croft",
    "er",
]
ALL_GIVEN = GIVEN + MORE_GIVEN + EVEN_MORE_GIVEN
# A long tail of family names, as in a real county (a few hundred names cover most people, and
# many more are rare): the common ones plus generated ones.
ALL_FAMILY = FAMILY + MORE_FAMILY + [first + second for first in _FIRST for second in _SECOND]
SAFETY_STEPS = ("warning-signs", "coping-strategies", "people-to-ask-for-help", "professionals-to-contact")


@dataclass
class Person:
    n: int
    patient: dict[str, Any]
    cmhc: list[dict[str, Any]]  # sent by the mental-health center (not Part 2)
    otp: list[dict[str, Any]]  # sent by the opioid treatment program (Part 2)


def _patient(n: int, rng: random.Random, family: str | None = None, birth: str | None = None,
             address: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    given = rng.choice(ALL_GIVEN)
    family = family or rng.choice(ALL_FAMILY)
    birth = birth or f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    names: list[dict[str, Any]] = [{"use": "official", "family": family, "given": [given]}]
    nicknames = sorted(NICKNAMES.get(given.lower(), ()))
    if nicknames and rng.random() < 0.6:
        names.append({"use": "nickname", "given": [rng.choice(nicknames).capitalize()]})
    return {
        "resourceType": "Patient",
        "id": _id("person", n),
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": f"MPI{1000000 + n}"}],
        "active": True,
        "name": names,
        "gender": rng.choice(["male", "female", "other"]),
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                     "use": "mobile"}],
        "address": [address or {"line": [f"{rng.randint(1, 999)} {rng.choice(STREETS)}"], "city": "Bayview",
                                "state": "CA", "postalCode": f"941{rng.randint(0, 9):02d}"}],
    }  # fmt: skip


def _rich(person: Person, rng: random.Random) -> None:
    """10–60 resources: programs, team, diagnoses, preferences, flags, medications, a safety plan,
    visits, ED and crisis encounters, social needs, a consent."""
    pid = person.patient["id"]
    subject = {"reference": f"Patient/{pid}"}
    n = person.n
    in_otp = n % 3 == 0
    sources = [("harbor-cmhc", person.cmhc)] + ([("eastside-otp", person.otp)] if in_otp else [])
    for org, sink in sources:
        episode_id = _id("episode", org, n)
        sink.append({"resourceType": "EpisodeOfCare", "id": episode_id, "status": "active", "patient": subject,
                     "type": [{"text": "Medication for opioid use disorder" if org == "eastside-otp"
                               else "Assertive community treatment"}],
                     "managingOrganization": {"reference": f"Organization/{org}"},
                     "period": {"start": f"{rng.randint(2019, 2026)}-0{rng.randint(1, 9)}-15"},
                     "careManager": {"reference": f"Practitioner/{org}-clinician-1"}})  # fmt: skip
        sink.append({"resourceType": "CareTeam", "id": _id("team", org, n), "status": "active", "subject": subject,
                     "participant": [{"role": [{"text": "Case manager" if i else "Psychiatrist"}],
                                      "member": {"reference": f"PractitionerRole/{org}-clinician-{i}-role"}}
                                     for i in range(2)]})  # fmt: skip
        code = "F11.20" if org == "eastside-otp" else rng.choice(["F20.9", "F31.9", "F33.1", "F43.10"])
        sink.append({"resourceType": "Condition", "id": _id("dx", org, n), "subject": subject,
                     "code": {"coding": [{"system": ICD10, "code": code}]}})  # fmt: skip
        for visit in range(rng.randint(2, 20)):
            day = rng.randint(1, 28)
            sink.append({"resourceType": "Encounter", "id": _id("visit", org, n, visit), "status": "finished",
                         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                         "subject": subject, "episodeOfCare": [{"reference": f"EpisodeOfCare/{episode_id}"}],
                         "period": {"start": f"2026-{rng.randint(1, 11):02d}-{day:02d}T10:00:00Z",
                                    "end": f"2026-{rng.randint(1, 11):02d}-{day:02d}T11:00:00Z"}})  # fmt: skip
    if in_otp:
        person.otp.append({"resourceType": "MedicationStatement", "id": _id("moud", n), "status": "active",
                           "subject": subject, "medicationCodeableConcept": {"coding": [
                               {"system": RXNORM, "code": "352364", "display": "buprenorphine / naloxone"}]}})  # fmt: skip
        if rng.random() < 0.5:
            person.otp.append(_tpo_consent(n, pid))
    for index in range(rng.randint(1, 2)):
        person.cmhc.append({"resourceType": "Observation", "id": _id("pref", n, index), "status": "final",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"}]}, "subject": subject,
                            "valueString": rng.choice(["Uniforms and sirens frighten her; approach quietly",
                                                       "Prefers a peer to speak first", "Offer water and a seat"])})  # fmt: skip
    for index in range(rng.randint(0, 2)):
        person.cmhc.append({"resourceType": "Flag", "id": _id("flag", n, index), "status": "active", "subject": subject,
                            "code": {"text": rng.choice(["Dog in the home", "Hard of hearing", "Fear of needles"])},
                            "author": {"reference": "Practitioner/harbor-cmhc-clinician-0"},
                            "period": {"start": "2026-01-01"}})  # fmt: skip
    person.cmhc.append({"resourceType": "CarePlan", "id": _id("plan", n), "status": "active", "intent": "plan",
                        "subject": subject, "category": [{"coding": [{"system": f"{P}/CodeSystem/care-plan-category",
                                                                      "code": "crisis-safety-plan"}]}],
                        "activity": [{"detail": {"status": "not-started", "description": f"step {step} for {n}",
                                                 "code": {"coding": [{"system": f"{P}/CodeSystem/safety-plan-step",
                                                                      "code": step}]}}} for step in SAFETY_STEPS]})  # fmt: skip
    for index in range(rng.randint(0, 3)):
        person.cmhc.append({"resourceType": "Encounter", "id": _id("ed", n, index), "status": "finished",
                            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                            "subject": subject, "period": {"start": f"2026-{rng.randint(1, 11):02d}-10T22:00:00Z"},
                            "hospitalization": {"dischargeDisposition": {"text": "Home"}}})  # fmt: skip
    if rng.random() < 0.4:
        person.cmhc.append({"resourceType": "Condition", "id": _id("sdoh", n), "subject": subject,
                            "code": {"coding": [{"system": ICD10, "code": "Z59.02"}], "text": "Unsheltered"}})  # fmt: skip


def _tpo_consent(n: int, patient_id: str) -> dict[str, Any]:
    data_class = f"{P}/CodeSystem/data-class"
    return {
        "resourceType": "Consent", "id": _id("consent", n), "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": f"{P}/CodeSystem/consent-kind", "code": "part2-tpo"}]}],
        "patient": {"reference": f"Patient/{patient_id}"}, "dateTime": "2026-03-01T10:00:00Z",
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "organization": [{"reference": "Organization/eastside-otp"}],
        "sourceAttachment": {"contentType": "application/pdf", "url": f"https://ehr.example/consents/{n}.pdf"},
        "extension": [{"url": f"{P}/StructureDefinition/{name}", **({"valueCode": "end-of-treatment"}
                       if name == "consent-expiry-event" else {"valueBoolean": True})}
                      for name in ("consent-expiry-event", "consent-revocation-statement",
                                   "consent-redisclosure-statement", "consent-tpo-statements")],
        "provision": {"type": "permit",
                      "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                      "code": "IRCP"}]},
                                 "reference": {"identifier": {"system": f"{P}/CodeSystem/recipient-class",
                                                              "value": "treating-providers"}}}],
                      "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                      "code": [{"coding": [{"system": data_class, "code": c}
                                           for c in ("STATUS", "CONTACT", "MED", "DX", "CRISISPLAN")]}]},
    }  # fmt: skip


def records(people: int, *, rich: int | None = None, seed: int = 2026) -> Iterator[Person]:
    """`people` persons; the first `rich` of them (all by default) with full records, the rest
    with a Patient only (bulk for scale). Every 50th rich person has a sibling: same family name,
    birth date and address."""
    rng = random.Random(seed)
    rich = people if rich is None else rich
    n = 0
    while n < people:
        person = Person(n, _patient(n, rng), [], [])
        if n < rich:
            _rich(person, rng)
        yield person
        n += 1
        if n < people and n <= rich and n % 50 == 0:
            base = person.patient
            sibling = Person(
                n, _patient(n, rng, base["name"][0]["family"], base["birthDate"], base["address"][0]), [], []
            )
            if n < rich:
                _rich(sibling, rng)
            yield sibling
            n += 1


def _misspell(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randint(1, len(word) - 2)
    kind = rng.choice(["swap", "drop", "double", "vowel"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    vowels = "aeiou"
    return word[:i] + (rng.choice(vowels) if word[i] in vowels else word[i]) + word[i + 1 :]


def typo_queries(patients: list[dict[str, Any]], count: int, seed: int = 7) -> list[tuple[dict[str, Any], str]]:
    """(match parameters, the true patient id): what a responder might say about someone."""
    rng = random.Random(seed)
    queries = []
    for patient in rng.sample(patients, min(count, len(patients))):
        official = patient["name"][0]
        given, family = official["given"][0], official["family"]
        nicknames = [n["given"][0] for n in patient["name"][1:]]
        fields: dict[str, Any] = {}
        style = rng.random()
        fields["given"] = rng.choice(nicknames) if nicknames and style < 0.3 else (
            _misspell(given, rng) if style < 0.5 else given)  # fmt: skip
        fields["family"] = _misspell(family, rng) if rng.random() < 0.35 else family
        year, month, day = patient["birthDate"].split("-")
        pick = rng.random()
        if pick < 0.55:
            fields["birthDate"] = patient["birthDate"]
        elif pick < 0.7 and int(day) <= 12:
            fields["birthDate"] = f"{year}-{day}-{month}"
        else:
            fields["age"] = 2026 - int(year) + rng.choice([-2, -1, 0, 1, 2])
        if rng.random() < 0.4:
            fields["phone"] = patient["telecom"][0]["value"]
        queries.append((fields, patient["id"]))
    return queries
