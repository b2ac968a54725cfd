"""The vocabularies the engine decides by: purposes of use, data classes, DS4P security labels.

Codes are plain strings so that the engine compares them cheaply; the code systems they come
from are named here once, for the FHIR mapping and the documents.
"""

from __future__ import annotations

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PROJECT = "https://crisis-fhir-gateway.org/fhir"
PURPOSE_SYSTEM = f"{PROJECT}/CodeSystem/purpose-of-use"
DATA_CLASS_SYSTEM = f"{PROJECT}/CodeSystem/data-class"
CONSENT_KIND_SYSTEM = f"{PROJECT}/CodeSystem/consent-kind"
RECIPIENT_CLASS_SYSTEM = f"{PROJECT}/CodeSystem/recipient-class"

# -- purposes of use (v3 PurposeOfUse, plus project codes where v3 has none) --------------------
TREAT = "TREAT"
ETREAT = "ETREAT"
BTG = "BTG"
LAW_ENFORCEMENT = "law-enforcement"
LEGAL_PROCEEDING = "legal-proceeding"
CRISIS_COORDINATION = "crisis-coordination"
# A purpose covers itself and its specialisations (v3-ActReason: TREAT > ETREAT > BTG).
PURPOSE_PARENT = {ETREAT: TREAT, BTG: ETREAT, "ERTREAT": ETREAT, "COC": TREAT, "CAREMGT": TREAT}
PURPOSES = frozenset({TREAT, ETREAT, BTG, "ERTREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT", "PUBHLTH", "HRESCH",
                      "PATRQT", LAW_ENFORCEMENT, LEGAL_PROCEEDING, CRISIS_COORDINATION})  # fmt: skip
TPO_PURPOSES = frozenset({TREAT, "HPAYMT", "HOPERAT"})


def purpose_covers(granted: str, requested: str) -> bool:
    """`granted` covers `requested` when they are equal or `requested` specialises it."""
    current: str | None = requested
    while current is not None:
        if current == granted:
            return True
        current = PURPOSE_PARENT.get(current)
    return False


# -- data classes (what a consent's "description of the information" names) -------------------
DEMOGRAPHICS = "DEMOGRAPHICS"
STATUS = "STATUS"  # enrolment, episodes, encounters
CONTACT = "CONTACT"  # care team, 24/7 numbers
MED = "MED"
DX = "DX"
LAB = "LAB"
CRISISPLAN = "CRISISPLAN"
CN = "CN"  # SUD counseling notes (§2.31(b))
PSYNOTE = "PSYNOTE"  # psychotherapy notes (45 CFR 164.508(a)(2))
DATA_CLASSES = frozenset({DEMOGRAPHICS, STATUS, CONTACT, MED, DX, LAB, CRISISPLAN, CN, PSYNOTE})

# -- DS4P security labels ------------------------------------------------------------------------
PART2 = "42CFRPart2"
RESTRICTED = "R"
NO_REDISCLOSURE = "NORDSCLCD"
KEPT_LABELS = frozenset({PART2, RESTRICTED, NO_REDISCLOSURE})  # never stripped
SUD_LABELS = frozenset({"SUD", "ETH", "OPIOIDUD", "ETHUD"})
MENTAL_HEALTH_LABELS = frozenset({"MH", "PSY", "BH"})
PSYCHOTHERAPY_NOTE = "PSYTHPN"
SENSITIVITY_LABELS = SUD_LABELS | MENTAL_HEALTH_LABELS | frozenset({PSYCHOTHERAPY_NOTE, "HIV"})
LABEL_SYSTEM = {PART2: ACT_CODE, NO_REDISCLOSURE: ACT_CODE, RESTRICTED: CONFIDENTIALITY} | {
    code: ACT_CODE for code in SENSITIVITY_LABELS
}
