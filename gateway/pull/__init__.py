"""Pulling from EHRs that cannot push: the gateway as a SMART Backend Services client (docs/pull.md)."""
