"""Probabilistic patient matching for `$responder-match` (docs/matching.md).

Fellegi–Sunter style: each compared field adds a weight — log2(m/u), where m is how often the
field agrees for the same person and u how often it agrees by chance — so agreement on a rare
field (an identifier, a full birth date) counts more than agreement on a common one (a given
name). Disagreement subtracts. Responders' details are partial and noisy (a nickname, an
approximate age, a transposed day and month, a typo), so the comparisons are graded: exact,
nickname, close spelling (Jaro–Winkler), sound-alike, swapped.

Grades are conservative: `certain` needs agreement on a strong identifier or on name, full birth
date and one more independent field; a wrong person must never be `certain`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Weights (bits). m and u estimated for a county population of ~100k, from the literature on
# name/DOB linkage (Grannis et al.; the ONC Patient Matching challenge) and rounded.
W_IDENTIFIER = 14.0
W_FAMILY_EXACT, W_FAMILY_CLOSE, W_FAMILY_SOUND, W_FAMILY_MISS = 6.0, 4.0, 2.5, -4.0
W_GIVEN_EXACT, W_GIVEN_NICK, W_GIVEN_CLOSE, W_GIVEN_INITIAL, W_GIVEN_MISS = 4.0, 3.5, 2.5, 0.5, -3.0
W_SWAPPED_NAMES = -1.0  # given and family exchanged: a match, slightly discounted
# A birth date that agrees on the year and on the month or the day has one wrong part (a typo);
# the year alone agrees by chance for 1 in ~60 people, and a full date that differs otherwise
# is evidence against.
W_DOB_EXACT, W_DOB_SWAP, W_DOB_NEAR, W_DOB_ONE_PART, W_DOB_YEAR, W_DOB_MISS = 8.0, 5.0, 3.0, 1.0, -2.0, -6.0
W_AGE_NEAR, W_AGE_MISS = 1.5, -4.0
# People change numbers: a phone on file that differs from the one asked is weak evidence against.
W_PHONE, W_PHONE_MISS, W_POSTAL, W_ADDRESS = 6.0, -1.5, 1.5, 2.5
CERTAIN, PROBABLE, POSSIBLE = 20.0, 12.0, 7.0
# A `possible` best candidate this strong, whose family and given names both agree, with no
# rival within MARGIN bits, is `probable`: the description fits one person on file and no other
# comes close. 8 bits is both names misspelt by a slip and an age that fits; MARGIN is what
# exact spelling of both names earns over a slip in each (2 + 1.5), so that a namesake one
# slip away in each name does not make an exact match look ambiguous.
UNIQUE_PROBABLE, MARGIN = 8.0, W_FAMILY_EXACT - W_FAMILY_CLOSE + W_GIVEN_EXACT - W_GIVEN_CLOSE
MAX_CANDIDATES = 3

# Common English nickname equivalences (both directions); extend as the population needs.
NICKNAMES = {
    "robert": {"bob", "bobby", "rob", "robbie", "bert"},
    "william": {"bill", "billy", "will", "willie", "liam"},
    "elizabeth": {"liz", "lizzie", "beth", "betty", "eliza", "libby"},
    "margaret": {"maggie", "meg", "peggy", "marge", "greta"},
    "james": {"jim", "jimmy", "jamie"},
    "john": {"jack", "johnny", "jon"},
    "richard": {"rick", "ricky", "dick", "rich"},
    "michael": {"mike", "mikey", "mick"},
    "katherine": {"kate", "katie", "kathy", "kat", "kay"},
    "catherine": {"cathy", "cat", "kate"},
    "jennifer": {"jen", "jenny"},
    "joseph": {"joe", "joey"},
    "thomas": {"tom", "tommy"},
    "christopher": {"chris", "topher"},
    "daniel": {"dan", "danny"},
    "anthony": {"tony"},
    "patricia": {"pat", "patty", "trish"},
    "alexander": {"alex", "xander", "sandy"},
    "alexandra": {"alex", "sandra", "lexi"},
    "maria": {"mari", "mary", "marie"},
    "jose": {"pepe", "chepe"},
    "francisco": {"paco", "pancho", "frank"},
    "guadalupe": {"lupe"},
    "dolores": {"lola"},
    "samuel": {"sam", "sammy"},
    "samantha": {"sam", "sammy"},
    "deborah": {"deb", "debbie"},
    "victoria": {"vicky", "tori"},
    "andrew": {"andy", "drew"},
    "steven": {"steve"},
    "stephen": {"steve"},
    "edward": {"ed", "eddie", "ted"},
    "charles": {"charlie", "chuck"},
    "nicholas": {"nick", "nicky"},
    "benjamin": {"ben", "benny"},
    "rebecca": {"becky", "becca"},
    "susan": {"sue", "susie"},
    "jacqueline": {"jackie"},
    "gregory": {"greg"},
    "timothy": {"tim", "timmy"},
}
_NICK_GROUPS: dict[str, set[str]] = {}
_FORMAL_NAMES: dict[str, list[str]] = {}
for _formal, _short in NICKNAMES.items():
    for _name in {_formal, *_short}:
        _NICK_GROUPS.setdefault(_name, set()).update({_formal, *_short})
    for _name in _short:
        _FORMAL_NAMES.setdefault(_name, []).append(_formal)


def formal_names(name: str) -> list[str]:
    """The formal names a nickname stands for ("bob" -> ["robert"]), lower case."""
    return sorted(_FORMAL_NAMES.get(name, ()))


def normalize(text: str) -> str:
    """Lower case, no accents, letters only."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[^a-z]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def digits(text: str) -> str:
    found = re.sub(r"\D", "", text)
    return found[-10:]


def jaro_winkler(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(len(a), len(b)) // 2 - 1
    matched_a = [False] * len(a)
    matched_b = [False] * len(b)
    matches = 0
    for i, char in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not matched_b[j] and b[j] == char:
                matched_a[i] = matched_b[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    transpositions, k = 0, 0
    for i, char in enumerate(a):
        if matched_a[i]:
            while not matched_b[k]:
                k += 1
            transpositions += char != b[k]
            k += 1
    jaro = (matches / len(a) + matches / len(b) + (matches - transpositions / 2) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def one_edit_apart(a: str, b: str) -> bool:
    """One keystroke apart: a letter inserted, dropped, replaced, or two neighbours swapped
    (Damerau). Jaro–Winkler under-rates these in short names ("Jaan"/"Juan", "Paaula"/"Paula")."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(differ) == 1 or (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]]
            and a[differ[1]] == b[differ[0]]
        )
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def close_spelling(query: str, known: str, threshold: float) -> bool:
    """A misspelling of `known`: Jaro–Winkler at or above `threshold`, or one edit apart in
    names of four letters or more."""
    if jaro_winkler(query, known) >= threshold:
        return True
    return min(len(query), len(known)) >= 4 and one_edit_apart(query, known)


def soundex(text: str) -> str:
    name = normalize(text)
    if not name:
        return ""
    codes = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"), "l": "4",
             **dict.fromkeys("mn", "5"), "r": "6"}  # fmt: skip
    result, last = name[0].upper(), codes.get(name[0], "")
    for char in name[1:]:
        code = codes.get(char, "")
        if code and code != last:
            result += code
        if char not in "hw":
            last = code
    return (result + "000")[:4]


def blocking_keys(families: Iterable[str], givens: Iterable[str]) -> set[str]:
    """Keys under which a person with these names (normalised) is filed for matching, and under
    which a description is looked up: a misspelt name still shares at least one key with the
    right person in most cases (docs/matching.md). Per family and given name pair: the first
    three letters of each; both names' Soundex; one name whole with the other's initial, or with
    the other's second to fourth letters (for a slip in the first letter, which Soundex keeps)."""
    keys: set[str] = set()
    givens = list(givens)
    for family in families:
        for given in givens:
            if len(family) < 2 or len(given) < 2:
                continue
            keys.update((f"3:{family[:3]}:{given[:3]}", f"s:{soundex(family)}:{soundex(given)}",
                         f"f:{family[0]}:{given}"[:255], f"g:{family}:{given[0]}"[:255],
                         f"h:{family[1:4]}:{given}"[:255], f"i:{family}:{given[1:4]}"[:255]))  # fmt: skip
    return keys


def patient_blocking_keys(patient: dict[str, Any]) -> set[str]:
    givens, families = _names(patient)
    return blocking_keys(families, givens)


def query_blocking_keys(query: MatchQuery) -> set[str]:
    """The keys to look a description up by: its names, the formal names a nickname stands for,
    and the names swapped (given said as family)."""
    family = normalize(query.family)
    givens = [name for name in (normalize(query.given), normalize(query.nickname)) if name]
    givens += [formal for name in givens for formal in formal_names(name)]
    return blocking_keys([family], givens) | blocking_keys(givens[:1], [family])


@dataclass(frozen=True)
class MatchQuery:
    given: str = ""
    family: str = ""
    nickname: str = ""
    birth_date: str = ""  # YYYY-MM-DD
    approximate_age: int | None = None
    phone: str = ""
    address: str = ""  # a line, a place the person is known to stay
    postal_code: str = ""
    identifier: str = ""  # system|value or value


@dataclass
class Candidate:
    patient: dict[str, Any]
    score: float
    grade: str
    agreed: list[str] = field(default_factory=list)


def _names(patient: dict[str, Any]) -> tuple[set[str], set[str]]:
    givens: set[str] = set()
    families: set[str] = set()
    for name in patient.get("name") or []:
        if not isinstance(name, dict):
            continue
        givens.update(normalize(g) for g in name.get("given") or [] if normalize(g))
        if name.get("family"):
            families.add(normalize(str(name["family"])))
        if name.get("text") and not name.get("given"):
            parts = [normalize(p) for p in str(name["text"]).split() if normalize(p)]
            givens.update(parts[:-1])
            families.update(parts[-1:])
    return givens, families


def _best_family(query: str, families: set[str]) -> tuple[float, str]:
    if not query or not families:
        return 0.0, ""
    if query in families:
        return W_FAMILY_EXACT, "family"
    if any(close_spelling(query, f, 0.9) for f in families):
        return W_FAMILY_CLOSE, "family~"
    if soundex(query) in {soundex(f) for f in families}:
        return W_FAMILY_SOUND, "family(sound)"
    return W_FAMILY_MISS, ""


def _best_given(queries: list[str], givens: set[str]) -> tuple[float, str]:
    queries = [q for q in queries if q]
    if not queries or not givens:
        return 0.0, ""
    best, label = W_GIVEN_MISS, ""
    for query in queries:
        if query in givens:
            return W_GIVEN_EXACT, "given"
        if _NICK_GROUPS.get(query, set()) & givens:
            best, label = max((best, label), (W_GIVEN_NICK, "given(nickname)"))
        elif any(close_spelling(query, g, 0.88) for g in givens):
            best, label = max((best, label), (W_GIVEN_CLOSE, "given~"))
        elif any(g[0] == query[0] for g in givens) and (len(query) == 1 or len(min(givens, key=len)) == 1):
            best, label = max((best, label), (W_GIVEN_INITIAL, "given(initial)"))
    return best, label


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _birth(query: MatchQuery, patient: dict[str, Any], today: date) -> tuple[float, str]:
    born = _date(str(patient.get("birthDate") or ""))
    if born is None:
        return 0.0, ""
    asked = _date(query.birth_date) if query.birth_date else None
    if asked is not None:
        if asked == born:
            return W_DOB_EXACT, "birthDate"
        if (asked.year, asked.month, asked.day) == (born.year, born.day, born.month):
            return W_DOB_SWAP, "birthDate(day/month swapped)"
        if (asked.month, asked.day) == (born.month, born.day) and abs(asked.year - born.year) == 1:
            return W_DOB_NEAR, "birthDate(year off by one)"
        if asked.year == born.year and (asked.month == born.month or asked.day == born.day):
            return W_DOB_ONE_PART, "birthDate(one part differs)"
        if asked.year == born.year:
            return W_DOB_YEAR, ""
        return W_DOB_MISS, ""
    if query.approximate_age is not None:
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return (W_AGE_NEAR, "age") if abs(age - query.approximate_age) <= 3 else (W_AGE_MISS, "")
    return 0.0, ""


def score(query: MatchQuery, patient: dict[str, Any], today: date) -> Candidate:
    total, agreed = 0.0, []
    strong = False
    if query.identifier:
        wanted = query.identifier.split("|")
        for identifier in patient.get("identifier") or []:
            if not isinstance(identifier, dict):
                continue
            if identifier.get("value") == wanted[-1] and (len(wanted) == 1 or identifier.get("system") == wanted[0]):
                total += W_IDENTIFIER
                agreed.append("identifier")
                strong = True
                break
    givens, families = _names(patient)
    query_given = [normalize(query.given), normalize(query.nickname)]
    family_weight, family_label = _best_family(normalize(query.family), families)
    given_weight, given_label = _best_given(query_given, givens)
    swapped_family, _ = _best_family(normalize(query.given), families)
    swapped_given, _ = _best_given([normalize(query.family)], givens)
    if family_weight <= 0 and given_weight <= 0 and swapped_family > 0 and swapped_given > 0:
        family_weight, given_weight = swapped_family + W_SWAPPED_NAMES, swapped_given
        family_label, given_label = "family(swapped)", "given(swapped)"
    total += family_weight + given_weight
    agreed += [label for label in (family_label, given_label) if label]
    birth_weight, birth_label = _birth(query, patient, today)
    total += birth_weight
    if birth_label:
        agreed.append(birth_label)
    if query.phone:
        phones = {digits(str(t.get("value", ""))) for t in patient.get("telecom") or [] if isinstance(t, dict)}
        if digits(query.phone) and digits(query.phone) in phones:
            total += W_PHONE
            agreed.append("phone")
        elif digits(query.phone) and phones - {""}:
            total += W_PHONE_MISS
    if query.postal_code or query.address:
        for address in patient.get("address") or []:
            if not isinstance(address, dict):
                continue
            if query.postal_code and str(address.get("postalCode", "")).startswith(query.postal_code[:5]):
                total += W_POSTAL
                agreed.append("postalCode")
            lines = " ".join([*address.get("line", []), str(address.get("text", "")), str(address.get("city", ""))])
            asked = {w for w in re.findall(r"[a-z0-9]+", query.address.lower()) if len(w) > 2}
            if asked and asked & set(re.findall(r"[a-z0-9]+", lines.lower())):
                total += W_ADDRESS
                agreed.append("address")
            break
    name_and_birth = (
        family_label in ("family", "family~") and given_label.startswith("given") and birth_label == "birthDate"
    )
    independent = any(a in agreed for a in ("phone", "address", "postalCode"))
    if total >= CERTAIN and (strong or (name_and_birth and independent)):
        grade = "certain"
    elif total >= PROBABLE:
        grade = "probable"
    elif total >= POSSIBLE:
        grade = "possible"
    else:
        grade = "certainly-not"
    return Candidate(patient, round(total, 2), grade, agreed)


def _names_agree(candidate: Candidate) -> bool:
    labels = " ".join(candidate.agreed)
    return "family" in labels and "given" in labels and "given(initial)" not in labels


def scored_candidates(query: MatchQuery, patients: list[dict[str, Any]], today: date) -> list[Candidate]:
    """Every patient graded `possible` or better on its own evidence, best first. No grade here
    depends on the other candidates: who may be compared with whom is decided before
    `shortlist` (a person the requester may not know exists must not change the answer)."""
    scored = [score(query, patient, today) for patient in patients]
    kept = [c for c in scored if c.grade != "certainly-not"]
    kept.sort(key=lambda c: c.score, reverse=True)
    return kept


def shortlist(candidates: list[Candidate], limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The best `limit` of `scored_candidates`' list, after the uniqueness promotion: a strong
    `possible` with both names agreeing and no rival within MARGIN bits among `candidates`."""
    kept = list(candidates)
    if kept and kept[0].grade == "possible" and kept[0].score >= UNIQUE_PROBABLE and _names_agree(kept[0]):
        runner_up = kept[1].score if len(kept) > 1 else float("-inf")
        if kept[0].score - runner_up >= MARGIN:
            kept[0].grade = "probable"
            kept[0].agreed.append("unique")
    return kept[:limit]


def rank(
    query: MatchQuery, patients: list[dict[str, Any]], today: date, limit: int = MAX_CANDIDATES
) -> list[Candidate]:
    """The best candidates among `patients`, best first, graded `possible` or better; at most `limit`."""
    return shortlist(scored_candidates(query, patients, today), limit)


def match_parameters(fields: dict[str, str | int]) -> dict[str, Any]:
    """A `$responder-match` Parameters resource in the flat form, from field names and values
    (`{"given": "Mari", "age": 38}`): what `match_query_from_parameters` reads."""
    return {"resourceType": "Parameters", "parameter": [
        {"name": name, ("valueInteger" if isinstance(value, int) else "valueString"): value}
        for name, value in fields.items()]}  # fmt: skip


def match_query_from_parameters(parameters: dict[str, Any]) -> MatchQuery:
    """A `$responder-match` Parameters resource: either a `resource` Patient (as in $match) or
    flat parameters (given, family, nickname, birthDate, age, phone, address, postalCode,
    identifier)."""
    values: dict[str, Any] = {}
    for parameter in parameters.get("parameter") or []:
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if name == "resource" and isinstance(parameter.get("resource"), dict):
            patient = parameter["resource"]
            for human in patient.get("name") or []:
                key = "nickname" if human.get("use") == "nickname" else "given"
                values.setdefault(key, " ".join(human.get("given") or []))
                if human.get("family"):
                    values.setdefault("family", human["family"])
            if patient.get("birthDate"):
                values.setdefault("birth_date", patient["birthDate"])
            for telecom in patient.get("telecom") or []:
                values.setdefault("phone", telecom.get("value") or "")
            for address in patient.get("address") or []:
                values.setdefault("postal_code", address.get("postalCode") or "")
                values.setdefault("address", " ".join([*(address.get("line") or []), address.get("text") or ""]))
            for identifier in patient.get("identifier") or []:
                values.setdefault("identifier", f"{identifier.get('system') or ''}|{identifier.get('value') or ''}")
        elif name in ("given", "family", "nickname", "phone", "address", "identifier") and isinstance(value, str):
            values[name] = value
        elif name == "birthDate" and isinstance(value, str):
            values["birth_date"] = value
        elif name == "postalCode" and isinstance(value, str):
            values["postal_code"] = value
        elif name == "age" and isinstance(value, int) and not isinstance(value, bool):
            values["approximate_age"] = value
    if isinstance(values.get("given"), str):
        values["given"] = values["given"].split(" ")[0]
    return MatchQuery(**values)
