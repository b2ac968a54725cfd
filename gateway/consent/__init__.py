"""Glue between the consent engine (a pure library) and the gateway: labelling at ingest, and
(next) the release hook that asks the engine before any patient data leaves."""
