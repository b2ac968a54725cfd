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
# meta.extension on every stored version: the organization that sent it (its discloser).
SOURCE_ORGANIZATION = f"{PROJECT}/StructureDefinition/source-organization"

# -- purposes of use (v3 PurposeOfUse, plus project codes where v3 has none) --------------------
TREAT = "TREAT"
ETREAT = "ETREAT"
BTG = "BTG"
LAW_ENFORCEMENT = "law-enforcement"
LEGAL_PROCEEDING = "legal-proceeding"
CRISIS_COORDINATION = "crisis-coordination"
CAUSE_OF_DEATH = "cause-of-death"  # a medical examiner's or coroner's inquiry (§2.15(b)(1))
PAYMENT = "HPAYMT"
# A purpose covers itself and its specialisations (v3-ActReason: TREAT > ETREAT > BTG).
PURPOSE_PARENT = {ETREAT: TREAT, BTG: ETREAT, "ERTREAT": ETREAT, "COC": TREAT, "CAREMGT": TREAT}
PURPOSES = frozenset({TREAT, ETREAT, BTG, "ERTREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT", "PUBHLTH", "HRESCH",
                      "PATRQT", LAW_ENFORCEMENT, LEGAL_PROCEEDING, CRISIS_COORDINATION, CAUSE_OF_DEATH})  # fmt: skip
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
VERY_RESTRICTED = "V"  # v3-Confidentiality: counseling and psychotherapy notes
SENSITIVITY_LABELS = SUD_LABELS | MENTAL_HEALTH_LABELS | frozenset({PSYCHOTHERAPY_NOTE, "HIV"})
LABEL_SYSTEM = {
    PART2: ACT_CODE,
    NO_REDISCLOSURE: ACT_CODE,
    RESTRICTED: CONFIDENTIALITY,
    VERY_RESTRICTED: CONFIDENTIALITY,
} | {code: ACT_CODE for code in SENSITIVITY_LABELS}

# -- why an item was withheld: reason code -> the rule it applies (audit only, never the recipient) --
REASONS = {
    "minimum-necessary": "42 CFR 2.13(a); 45 CFR 164.502(b), 164.514(d): the role does not receive this class",
    "no-use-against-patient": "42 CFR 2.12(d), 2.13(a), 2.31(d), 2.61: no law-enforcement or proceedings use "
    "without a court order or a separate consent for it",
    "needs-a-court-order": "42 CFR 2.61, 2.31(d): this role receives records only under a court order or a "
    "separate consent for use in proceedings",
    "restricted-by-patient": "42 CFR 2.26; 45 CFR 164.522: a restriction or opt-out of this item's discloser",
    "no-consent": "42 CFR 2.13(a), 2.31: no consent that can be relied on covers this recipient, purpose and data",
    "police-need-a-consent-naming-them": "42 CFR 2.31(a)(4), 2.12(d): police are never treating providers",
    "counseling-notes-need-their-own-consent": "42 CFR 2.31(b): SUD counseling notes only under a consent for them",
    "psychotherapy-notes-need-an-authorisation": "45 CFR 164.508(a)(2): an authorisation naming psychotherapy notes",
    "mental-health-needs-a-basis": "jurisdiction overlay (state mental-health law): clinical roles at providers, "
    "for treatment, or an authorisation",
    "no-basis": "45 CFR 164.502(a): no treatment relationship, consent or authorisation covers this item",
    "not-medical-personnel": "42 CFR 2.51(a): emergency access is for medical personnel only",
    "not-in-emergency-set": "42 CFR 2.51(a), 2.13(a): an emergency releases only what it needs",
    "demographics-follow-the-decision": "42 CFR 2.13(c)(2): a person is shown only with something released about them",
    "not-own-records": "45 CFR 164.502(a): a system client receives back what its organisation sent",
    "unknown-role": "deny by default: the requester's role receives nothing",
    "record-not-of-patient": "deny by default: the item is about another patient",
    "patient-deceased": "42 CFR 2.15(b): a deceased patient has no crisis brief and no medical emergency; a "
    "cause-of-death inquiry or the personal representative's consent is the path",
}
CITATIONS = {
    "consent": "42 CFR 2.31, 2.33",
    "tpo-consent": "42 CFR 2.31(a)(4)(i), 2.33(b)",
    "separate-consent": "42 CFR 2.31(d), 2.12(d): a separate consent to use the records in proceedings or an "
    "investigation",
    "intermediary-consent": "42 CFR 2.31(a)(4)(ii), 2.24",
    "counseling-notes-consent": "42 CFR 2.31(b)",
    "authorization": "45 CFR 164.508",
    "emergency": "42 CFR 2.51",
    "treatment": "45 CFR 164.506(c)",
    "jurisdiction": "jurisdiction overlay (state mental-health law), 45 CFR 164.506(c)",
    "cause-of-death": "42 CFR 2.15(b)(1); 45 CFR 164.512(g)(1)",
    "own-records": "45 CFR 164.502(a)",
    "compliance-administration": "42 CFR 2.12(c)(3), 2.24, 2.25; 45 CFR 164.528",
}
