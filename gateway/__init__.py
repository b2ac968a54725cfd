"""The crisis-response FHIR gateway: a FHIR R4 server with a consent-gated responder brief."""

__version__ = "0.1.0"
