"""42 CFR Part 2 / HIPAA consent decisions (pure library, no Flask or SQLAlchemy).

Empty until the consent-engine issue; the FHIR engine's release hook is where it plugs in
(gateway.fhir.context.ReleaseHook).
"""
