"""FHIR record -> responder brief (pure functions, no Flask or SQLAlchemy).

Empty until the responder-brief issue: the spine only stores and serves FHIR.
"""
