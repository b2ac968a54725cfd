"""FHIR records → what responders see: the responder brief (a FHIR document Bundle).

Pure functions, no Flask or SQLAlchemy: `build_brief(patient_id, released_resources, context)`.
"""

from mappings.brief import BriefContext, build_brief, diagnosis_category

__all__ = ["BriefContext", "build_brief", "diagnosis_category"]
