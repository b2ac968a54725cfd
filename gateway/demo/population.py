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
_SECOND = ["by", "ford", "ton", "well", "wood", "ley", "man", "son", "ston", "more", "field", "wick", "dale", "croft", "er"]  # fmt: skip
_ROOTS = ["Ab", "Ack", "Ald", "Arn", "Bax", "Beck", "Bish", "Black", "Bould", "Brad", "Brook", "Burk", "Cald", "Chad",
          "Clay", "Crom", "Dart", "Dent", "Dray", "Edge", "Elm", "Farn", "Fitz", "Gil", "Glen", "Gold", "Graf", "Hal",
          "Ham", "Hay", "Hen", "Hux", "Ing", "Jar", "Kend", "Kirk", "Lam", "Lind", "Lock", "Mad", "Mel", "Mill", "Nash",
          "Oak", "Pad", "Park", "Pres", "Quin", "Rad", "Red", "Rich", "Rock", "Rud", "Sal", "Shel", "Stock", "Sud", "Tal",
          "Tem", "Tud", "Ul", "Vern", "Wad", "Whit", "York"]  # fmt: skip
_ENDINGS = ["ard", "berg", "bury", "combe", "den", "ett", "ham", "hurst", "ing", "ington", "kins", "land", "low",
            "ridge", "worth", "ash", "cott", "dell", "fort", "gate", "lake", "mont", "quist", "stead", "vale"]  # fmt: skip
_GIVEN_HEADS = ["Al", "Bri", "Cal", "Dar", "El", "Fen", "Gio", "Har", "Isa", "Jo", "Kai", "Lu", "Nor", "Or", "Per",
                "Qui", "Ros", "Sel", "Tam", "Ul", "Val", "Wyn", "Xan", "Yar", "Zel"]  # fmt: skip
_GIVEN_TAILS = ["a", "an", "ella", "en", "ia", "ie", "in", "ion", "is", "o", "on", "yn", "ette", "ius", "ara"]
ALL_GIVEN = list(
    dict.fromkeys(GIVEN + MORE_GIVEN + EVEN_MORE_GIVEN + [h + t for h in _GIVEN_HEADS for t in _GIVEN_TAILS])
)
# A long tail of family names, as in a real county: a few hundred cover a good share of people,
# and most names are rare. The common ones first, then generated ones.
ALL_FAMILY = list(dict.fromkeys(FAMILY + MORE_FAMILY + [f + s for f in _FIRST for s in _SECOND]
                                + [r + e for r in _ROOTS for e in _ENDINGS]))  # fmt: skip


def _name_weights(count: int, head: float) -> list[float]:
    """Frequencies falling off like 1/(rank + head): Zipf-like, with a flatter head. US names
    look like this: the commonest surname (Smith) is under 1% of people and the commonest given
    names a few percent, so two people chosen at random share a surname about 1 time in 1,500
    and a given name about 1 time in 200 (Census 2010 surnames, SSA given names). `head` is set
    so that the generated population is close to those rates (docs/matching.md): an earlier
    version drew names uniformly from a short list, which made same-name strangers ten times as
    common as in a real county."""
    return [1.0 / (rank + head) for rank in range(1, count + 1)]


GIVEN_WEIGHTS = _name_weights(len(ALL_GIVEN), 20.0)
FAMILY_WEIGHTS = _name_weights(len(ALL_FAMILY), 300.0)


def name_collision_rates() -> tuple[float, float]:
    """The chance that two people drawn from the generator share a given name, and a family
    name (the sum of squared frequencies)."""
    rates = []
    for weights in (GIVEN_WEIGHTS, FAMILY_WEIGHTS):
        total = sum(weights)
        rates.append(sum((w / total) ** 2 for w in weights))
    return rates[0], rates[1]


SAFETY_STEPS = ("warning-signs", "coping-strategies", "people-to-ask-for-help", "professionals-to-contact")


@dataclass
class Person:
    n: int
    patient: dict[str, Any]
    cmhc: list[dict[str, Any]]  # sent by the mental-health center (not Part 2)
    otp: list[dict[str, Any]]  # sent by the opioid treatment program (Part 2)


def _patient(n: int, rng: random.Random, family: str | None = None, birth: str | None = None,
             address: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    given = rng.choices(ALL_GIVEN, GIVEN_WEIGHTS)[0]
    family = family or rng.choices(ALL_FAMILY, FAMILY_WEIGHTS)[0]
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
        for visit in range(rng.randint(4, 20)):
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


def _enrolled(person: Person) -> None:
    """The least a person in the gateway has: a program episode at the mental-health center (a
    Patient alone is never shown to anyone: demographics follow the decision)."""
    pid = person.patient["id"]
    person.cmhc.append({"resourceType": "EpisodeOfCare", "id": _id("episode", "harbor-cmhc", person.n),
                        "status": "active", "patient": {"reference": f"Patient/{pid}"},
                        "type": [{"text": "Outpatient mental-health treatment"}],
                        "managingOrganization": {"reference": "Organization/harbor-cmhc"}})  # fmt: skip


def records(people: int, *, rich: int | None = None, seed: int = 2026) -> Iterator[Person]:
    """`people` persons; the first `rich` of them (all by default) with full records, the rest
    with a Patient and a program episode only (bulk for scale). Every 50th rich person has a
    sibling: same family name, birth date and address."""
    rng = random.Random(seed)
    rich = people if rich is None else rich
    n = 0
    while n < people:
        person = Person(n, _patient(n, rng), [], [])
        if n < rich:
            _rich(person, rng)
        else:
            _enrolled(person)
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
