"""The resource types we store, and lazy access to their fhir.resources R4B model classes.

R4B is wire-compatible with R4 4.0.1 for the types both releases share. Types that only R4B has
are not accepted, so what we store and advertise is strict R4.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# The R4B resource types that R4 4.0.1 also defines (and that make sense to store: not the
# abstract Resource/DomainResource nor the operation-only Parameters).
RESOURCE_TYPES: frozenset[str] = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement
    CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
    ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
    Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest
    CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference Encounter Endpoint
    EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition
    ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal GraphDefinition Group
    GuidanceResponse HealthcareService ImagingStudy Immunization ImmunizationEvaluation
    ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library Linkage List
    Location Measure MeasureReport Media Medication MedicationAdministration MedicationDispense
    MedicationKnowledge MedicationRequest MedicationStatement MessageDefinition MessageHeader
    MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition
    OperationDefinition OperationOutcome Organization OrganizationAffiliation Patient
    PaymentNotice PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole
    Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson RequestGroup
    ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
    Schedule SearchParameter ServiceRequest Slot Specimen SpecimenDefinition StructureDefinition
    StructureMap Subscription Substance SupplyDelivery SupplyRequest Task TerminologyCapabilities
    TestReport TestScript ValueSet VerificationResult VisionPrescription
    """.split()
)

# R4 4.0.1 resource types this server does not support, and why: it validates with R4B models
# (wire-compatible with R4 for the types both define), and R4B dropped or redesigned these. They
# are refused by name, in the CapabilityStatement's rest.documentation and docs/fhir-api.md, rather
# than validated against a shape they do not have.
_MEDICINAL = "R4B replaced it with MedicinalProductDefinition and its related types"
_SUBSTANCE = "R4B replaced it with SubstanceDefinition"
_SYNTHESIS = "R4B folded evidence synthesis into a redesigned Evidence"
_REDESIGNED = "R4B redesigned it, so an R4 one cannot be validated as R4"
R4_TYPES_NOT_SUPPORTED: dict[str, str] = {
    **{name: _MEDICINAL for name in (
        "MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication",
        "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
        "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect")},
    **{name: _SUBSTANCE for name in (
        "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
        "SubstanceSourceMaterial", "SubstanceSpecification")},
    "EffectEvidenceSynthesis": _SYNTHESIS,
    "RiskEvidenceSynthesis": _SYNTHESIS,
    "Evidence": _REDESIGNED,
    "EvidenceVariable": _REDESIGNED,
}  # fmt: skip


def unsupported_type(resource_type: str) -> str:
    """What to tell a client that sent or asked for a type we do not store."""
    why = R4_TYPES_NOT_SUPPORTED.get(resource_type)
    if why:
        return (f"{resource_type} is an R4 4.0.1 resource type this server does not support: it validates with "
                f"R4B models and {why} (the CapabilityStatement lists the types not supported)")  # fmt: skip
    return f"{resource_type!r} is not a resource type this server supports (an R4 4.0.1 type name is expected)"


# Types the model library knows but that only appear on the wire, never in the store.
WIRE_ONLY_TYPES: frozenset[str] = frozenset({"Parameters"})


@cache
def model_class(resource_type: str) -> Any | None:
    """The R4B model class of a resource type, or None when we do not accept that type."""
    if resource_type not in RESOURCE_TYPES and resource_type not in WIRE_ONLY_TYPES:
        return None
    from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415 - 2 s to import all

    return get_fhir_model_class(resource_type)
