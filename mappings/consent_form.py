"""A consent as people write it on paper → the FHIR Consent of the documented profile
(docs/consent-profile.md). Plain data in, FHIR out: what is missing is left out, never made up,
so that `consent_engine.fhir.consent_from_fhir` names each missing 42 CFR 2.31 element."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

P = "https://crisis-fhir-gateway.org/fhir"
RECIPIENT_CLASS = f"{P}/CodeSystem/recipient-class"
REVOKED = f"{P}/StructureDefinition/consent-revoked"
SUPERSEDED_BY = f"{P}/StructureDefinition/consent-superseded-by"
SIGNED_FORM_MAX_BYTES = 5 * 1024 * 1024

# What each kind is, as the console offers them (the common paper forms).
KINDS: dict[str, str] = {
    "part2-specific": "Specific Part 2 consent: named programs, recipients, purposes and information",
    "part2-tpo": "Single consent for treatment, payment and health care operations (42 CFR 2.31(a)(4)(i), 2024)",
    "part2-intermediary": "Consent through an intermediary (a health information exchange, 42 CFR 2.31(a)(4)(ii))",
    "part2-counseling-notes": "Consent for SUD counseling notes (42 CFR 2.31(b)): counseling notes only",
    "hipaa-authorization": "HIPAA authorisation (45 CFR 164.508): records outside Part 2, psychotherapy notes",
    "restriction": "Restriction the program agreed to (42 CFR 2.26, 45 CFR 164.522): withhold some information",
    "opt-out": "Opt-out: nothing through the gateway, except in a medical emergency",
}
DENYING_KINDS = frozenset({"restriction", "opt-out"})

# The statements the signed form must carry, by kind (the officer confirms each is on the form).
STATEMENTS: dict[str, tuple[str, str]] = {
    "revocation": (f"{P}/StructureDefinition/consent-revocation-statement",
                   "the right to revoke, and how (42 CFR 2.31(a)(6))"),
    "tpo": (f"{P}/StructureDefinition/consent-tpo-statements",
            "the TPO statements: redisclosure, and that refusing does not affect treatment (2.31(a)(10))"),
    "redisclosure": (f"{P}/StructureDefinition/consent-redisclosure-statement",
                     "the HIPAA redisclosure statement (2.31(a)(4)(iii))"),
}  # fmt: skip
STATEMENTS_BY_KIND: dict[str, tuple[str, ...]] = {
    "part2-specific": ("revocation",),
    "part2-tpo": ("revocation", "tpo", "redisclosure"),
    "part2-intermediary": ("revocation",),
    "part2-counseling-notes": ("revocation",),
    "hipaa-authorization": ("revocation",),
    "restriction": (),
    "opt-out": (),
}
EXPIRY_EVENT = f"{P}/StructureDefinition/consent-expiry-event"
END_OF_TREATMENT = "end-of-treatment"


@dataclass(frozen=True)
class Template:
    """What a kind's form usually says: the starting point of the console's form."""

    purposes: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    recipient_classes: tuple[str, ...] = ()
    expiry_event: str | None = END_OF_TREATMENT


CLINICAL = ("STATUS", "CONTACT", "MED", "DX", "LAB", "CRISISPLAN")
TEMPLATES: dict[str, Template] = {
    "part2-specific": Template(("crisis-coordination",), ("STATUS", "CONTACT", "CRISISPLAN")),
    "part2-tpo": Template(("TREAT", "HPAYMT", "HOPERAT"), CLINICAL, ("treating-providers",)),
    "part2-intermediary": Template(("TREAT",), CLINICAL, ("intermediary-participants",)),
    "part2-counseling-notes": Template(("TREAT",), ("CN",)),
    "hipaa-authorization": Template(("TREAT",), ("PSYNOTE",)),
    "restriction": Template((), ("DX",), (), None),
    "opt-out": Template((), (), (), None),
}
RECIPIENT_CLASSES: dict[str, str] = {
    "treating-providers": "Treating providers (whoever treats the person, such as the crisis team on scene)",
    "intermediary-participants": "The intermediary's participants who treat the person",
}
PURPOSES: dict[str, str] = {
    "TREAT": "Treatment",
    "crisis-coordination": "Crisis care coordination",
    "HPAYMT": "Payment",
    "HOPERAT": "Health care operations",
    "legal-proceeding": "Legal proceedings (42 CFR 2.31(d): on its own only)",
}
DATA_CLASSES: dict[str, str] = {
    "STATUS": "Whether and where the person is in treatment",
    "CONTACT": "Whom to call: the care team and contacts",
    "CRISISPLAN": "The crisis and safety plan",
    "DX": "Diagnoses",
    "MED": "Medications",
    "LAB": "Lab results",
    "CN": "SUD counseling notes",
    "PSYNOTE": "Psychotherapy notes",
}
SIGNER_ROLES: dict[str, str] = {
    "patient": "The person",
    "parent": "A parent (of a minor)",
    "guardian": "A guardian appointed by a court",
    "personal-representative": "A personal representative (of a person who died)",
}


def recipient_class(code: str) -> dict[str, Any]:
    return {"identifier": {"system": RECIPIENT_CLASS, "value": code}}


def consent_resource(
    consent_id: str,
    patient: str,
    kind: str,
    *,
    disclosers: list[str],
    recipients: list[dict[str, Any]],
    purposes: list[str],
    classes: list[str],
    deny: bool = False,
    signers: list[tuple[str, str]] | None = None,
    signed: str | None = "2026-03-01T10:00:00Z",
    statements: tuple[str, ...] | None = None,
    expires: str | None = None,
    expiry_event: str | None = END_OF_TREATMENT,
    attachment: dict[str, Any] | None = None,
    intermediary: str | None = None,
) -> dict[str, Any]:
    """A Consent of the documented profile. `statements` are those the signed form carries (by
    default all its kind needs); `signers` are (reference, signer role) pairs (by default the
    patient); `expires` is a date; what is None or empty is left out."""

    def coded(code: str) -> dict[str, str]:
        system = (
            f"{P}/CodeSystem/purpose-of-use"
            if code[0].islower()
            else "http://terminology.hl7.org/CodeSystem/v3-ActReason"
        )
        return {"system": system, "code": code}

    carried = STATEMENTS_BY_KIND.get(kind, ()) if statements is None else statements
    extensions: list[dict[str, Any]] = [{"url": STATEMENTS[s][0], "valueBoolean": True} for s in carried]
    if expiry_event:
        extensions.append({"url": EXPIRY_EVENT, "valueCode": expiry_event})
    actors = [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "IRCP"}]}, "reference": r} for r in recipients]  # fmt: skip
    if intermediary:
        actors.append({"role": {"coding": [{"system": f"{P}/CodeSystem/consent-actor-role", "code": "intermediary"}]},
                       "reference": {"reference": intermediary}})  # fmt: skip
    provision: dict[str, Any] = {"type": "deny" if deny else "permit"}
    if expires:
        provision["period"] = {"end": expires}
    if actors:
        provision["actor"] = actors
    if purposes:
        provision["purpose"] = [coded(p) for p in purposes]
    if classes:
        provision["code"] = [{"coding": [{"system": f"{P}/CodeSystem/data-class", "code": c} for c in classes]}]
    consent: dict[str, Any] = {
        "resourceType": "Consent", "id": consent_id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": f"{P}/CodeSystem/consent-kind", "code": kind}]}],
        "patient": {"reference": patient},
    }  # fmt: skip
    if signed:
        consent["dateTime"] = signed
    chosen = [(patient, "patient")] if signers is None else signers
    if chosen:
        consent["performer"] = [
            {"reference": reference, "extension": [{"url": f"{P}/StructureDefinition/consent-signer-role",
                                                    "valueCode": role}]}
            for reference, role in chosen
        ]  # fmt: skip
    if attachment:
        consent["sourceAttachment"] = attachment
    if disclosers:
        consent["organization"] = [{"reference": d} for d in disclosers]
    if extensions:
        consent["extension"] = extensions
    consent["provision"] = provision
    return consent


def revoked(consent: dict[str, Any], at: str, superseded_by: str | None = None) -> dict[str, Any]:
    """The consent revoked from instant `at` (never backwards), perhaps by a newer consent."""
    extensions = [e for e in consent.get("extension") or [] if e.get("url") not in (REVOKED, SUPERSEDED_BY)]
    extensions.append({"url": REVOKED, "valueDateTime": at})
    if superseded_by:
        extensions.append({"url": SUPERSEDED_BY, "valueReference": {"reference": superseded_by}})
    changed = {k: v for k, v in consent.items() if k not in ("meta", "text")}
    return {**changed, "status": "inactive", "extension": extensions}


# -- court orders (42 CFR 2.61-2.67), registered by compliance officers -----------------------------
ORDER_SECTIONS: dict[str, str] = {
    "2.64": "2.64: for non-criminal purposes (a civil proceeding, an agency's audit)",
    "2.65": "2.65: to investigate or prosecute the patient (criminal)",
    "2.66": "2.66: to investigate or prosecute a program or a person holding records",
}
ORDER_PURPOSES: dict[str, str] = {
    "legal-proceeding": "The proceeding the order is for",
    "law-enforcement": "A criminal investigation or prosecution",
}
ORDER_GROUNDS: dict[str, str] = {
    "threat-to-life": "A threat to life or of serious bodily injury (2.63(a)(1))",
    "extremely-serious-crime": "An extremely serious crime (2.63(a)(2))",
    "patient-testimony": "The patient's own testimony or evidence (2.63(a)(3))",
}


def court_order_resource(
    order_id: str,
    patient: str,
    *,
    court: str,
    section: str | None,
    holders: list[str],
    recipients: list[str],
    purposes: list[str],
    classes: list[str],
    issued: str | None,
    expires: str | None,
    findings: bool,
    notice: bool,
    confidential_communications: bool = False,
    ground: str | None = None,
    attachment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A court order as the profile has it (a Consent of kind court-order): what the officer
    read in the signed order, nothing made up, so that `order_from_fhir` names what is missing."""
    extensions: list[dict[str, Any]] = []
    if section:
        extensions.append({"url": f"{P}/StructureDefinition/court-order-section", "valueCode": section})
    if findings:
        extensions.append({"url": f"{P}/StructureDefinition/court-order-findings", "valueBoolean": True})
    if notice:
        extensions.append({"url": f"{P}/StructureDefinition/court-order-notice", "valueBoolean": True})
    if confidential_communications:
        extensions.append({"url": f"{P}/StructureDefinition/court-order-confidential-communications",
                           "valueBoolean": True})  # fmt: skip
    if ground:
        extensions.append({"url": f"{P}/StructureDefinition/court-order-2-63-ground", "valueCode": ground})
    provision: dict[str, Any] = {"type": "permit"}
    if issued or expires:
        provision["period"] = {k: v for k, v in (("start", issued[:10] if issued else None), ("end", expires)) if v}
    if recipients:
        provision["actor"] = [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                    "code": "IRCP"}]}, "reference": {"reference": r}} for r in recipients]  # fmt: skip
    if purposes:
        provision["purpose"] = [{"system": f"{P}/CodeSystem/purpose-of-use", "code": p} for p in purposes]
    if classes:
        provision["code"] = [{"coding": [{"system": f"{P}/CodeSystem/data-class", "code": c} for c in classes]}]
    order: dict[str, Any] = {
        "resourceType": "Consent", "id": order_id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": f"{P}/CodeSystem/consent-kind", "code": "court-order"}]}],
        "patient": {"reference": patient},
    }  # fmt: skip
    if issued:
        order["dateTime"] = issued
    if court:
        order["performer"] = [{"display": court}]
    if holders:
        order["organization"] = [{"reference": h} for h in holders]
    if attachment:
        order["sourceAttachment"] = attachment
    if extensions:
        order["extension"] = extensions
    order["provision"] = provision
    return order
