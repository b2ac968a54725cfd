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
    EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence EvidenceVariable
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

# Types the model library knows but that only appear on the wire, never in the store.
WIRE_ONLY_TYPES: frozenset[str] = frozenset({"Parameters"})


@cache
def model_class(resource_type: str) -> Any | None:
    """The R4B model class of a resource type, or None when we do not accept that type."""
    if resource_type not in RESOURCE_TYPES and resource_type not in WIRE_ONLY_TYPES:
        return None
    from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415 - 2 s to import all

    return get_fhir_model_class(resource_type)
