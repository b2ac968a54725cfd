"""What the consent engine's decision reads, loaded through the request's own unit of work:
who the recipient is, each patient's consents, treating relationships and program episodes, and
what the requester's earlier requests established. No second connection, no wall clock: the
unit of work's repository and `now` are the only sources."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from consent_engine import Consent, CourtOrder, Episode, History, PatientFacts, Recipient
from consent_engine.fhir import (
    consent_from_fhir,
    episode_from_resource,
    identifier_tokens,
    is_court_order,
    order_from_fhir,
    patient_facts,
    treating_organizations,
)
from gateway.auth.roles import role as known_role
from gateway.consent.audit import AuditLog
from gateway.fhir.context import Requester
from gateway.fhir.everything import DECISION_INPUTS
from gateway.fhir.indexing import split_reference
from gateway.fhir.repository import Repository
from gateway.fhir.search import parse_search
from gateway.store.schema import app_user, oauth_client

PRIVACY_SCOPE = "patient-privacy"
# A token's recipient is read again after this long, the time a worker trusts the token itself
# (`token_cache_seconds`): a changed role or organization takes effect within it.
RECIPIENT_SECONDS = 10.0
# An organization's identifiers (NPI, state facility id) change rarely: a consent naming a
# discloser by identifier is resolved to the stored Organization at most this long ago.
IDENTIFIER_SECONDS = 30.0
Resolver = Callable[[frozenset[str]], frozenset[str]]


@dataclass(frozen=True)
class PatientContext:
    consents: list[Consent] | None  # None: they could not be read (only an emergency goes on)
    treating: frozenset[str]
    episodes: tuple[Episode, ...]
    facts: PatientFacts = PatientFacts()
    orders: list[CourtOrder] | None = field(default_factory=list)  # None: they could not be read


def context_of(resources: list[dict[str, Any]], resolve: Resolver | None = None) -> PatientContext:
    """From a patient's stored Consents, Encounters and EpisodeOfCare: the consents in the privacy
    scope, the organizations treating the patient now, and the programs' episodes. A discloser
    named by identifier alone is also named by the stored Organization that carries it
    (`resolve`), so that it bounds that organization's items."""
    consents, orders = [], []
    for resource in resources:
        if resource.get("resourceType") != "Consent":
            continue
        scope = (resource.get("scope") or {}).get("coding") or []
        if any(isinstance(c, dict) and c.get("code") == PRIVACY_SCOPE for c in scope):
            if is_court_order(resource):
                orders.append(order_from_fhir(resource))
                continue
            consent = consent_from_fhir(resource)
            tokens = frozenset(d for d in consent.disclosers if d.startswith("identifier:"))
            if tokens and resolve is not None:
                consent = replace(consent, disclosers=consent.disclosers | resolve(tokens))
            consents.append(consent)
    encounters = [r for r in resources if r.get("resourceType") == "Encounter"]
    episodes = tuple(e for r in resources if (e := episode_from_resource(r)) is not None)
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    return PatientContext(consents, treating_organizations(encounters), episodes, patient_facts(patient), orders)


class DecisionInputs:
    def __init__(self, base_url: str, audit: AuditLog) -> None:
        self.base_url = base_url
        self.audit = audit
        self._recipients: dict[str, tuple[float, Recipient | None]] = {}
        self._organizations: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    # -- who is asking ---------------------------------------------------------------------------
    def recipient(self, requester: Requester, repository: Repository) -> Recipient | None:
        """The recipient behind the token: the signed-in user (role, organization, whether it is a
        health-care provider), or the backend client; None for a user no longer known or disabled.
        Kept per token for as long as the worker trusts the token itself."""
        if requester.grant is None:
            return self._load(requester, repository)
        now = time.monotonic()
        with self._lock:
            hit = self._recipients.get(requester.grant)
            if hit is not None and now - hit[0] < RECIPIENT_SECONDS:
                return hit[1]
        found = self._load(requester, repository)
        with self._lock:
            if len(self._recipients) > 10_000:  # tokens expire: forget the stale ones
                self._recipients = {k: v for k, v in self._recipients.items() if now - v[0] < RECIPIENT_SECONDS}
            self._recipients[requester.grant] = (now, found)
        return found

    def _load(self, requester: Requester, repository: Repository) -> Recipient | None:
        connection = repository.connection
        if requester.username is None:
            client = connection.execute(
                select(oauth_client.c.name, oauth_client.c.organization).where(
                    oauth_client.c.client_id == (requester.client_id or "")
                )
            ).first()
            return Recipient(
                user=f"client:{requester.client_id}",
                name=str(client.name) if client else str(requester.client_id),
                role=requester.client_kind or "service",
                medical=False,
                organization=requester.organization or (client.organization if client else None) or "",
                system=True,
            )
        user = connection.execute(
            select(app_user.c.display_name, app_user.c.role, app_user.c.organization, app_user.c.practitioner,
                   app_user.c.disabled).where(app_user.c.username == requester.username)
        ).first()  # fmt: skip
        if user is None or user.disabled:
            return None
        return self.person(repository, requester.username, str(user.display_name), str(user.role),
                           str(user.organization or ""), user.practitioner)  # fmt: skip

    def person(self, repository: Repository, username: str, name: str, role: str, organization: str,
               practitioner: str | None = None) -> Recipient:  # fmt: skip
        """A person as a recipient: their role, and their organization as stored (a provider or not,
        its name and identifiers). Also for someone imagined: "a police officer of Metro PD"."""
        content = self._organization(repository, organization)
        return Recipient(
            user=username,
            name=name,
            role=role,
            medical=_medical(role),
            organization=organization,
            organization_is_provider=is_provider(content),
            practitioner=practitioner,
            organization_name=str((content or {}).get("name") or ""),
            aliases=identifier_tokens((content or {}).get("identifier")),
        )

    def _organization(self, repository: Repository, reference: str) -> dict[str, Any] | None:
        target = split_reference(reference, self.base_url)
        if not target or target[0] != "Organization":
            return None
        found = repository.read("Organization", target[1])
        return found.content if found is not None and not found.deleted else None

    def organizations_identified(self, repository: Repository, tokens: frozenset[str]) -> frozenset[str]:
        """The stored Organizations that carry any of these identifier tokens, as references."""
        now = time.monotonic()
        found: set[str] = set()
        for token in tokens:
            with self._lock:
                hit = self._organizations.get(token)
            if hit is None or now - hit[0] >= IDENTIFIER_SECONDS:
                system, _, value = token.removeprefix("identifier:").partition("|")
                query = parse_search("Organization", [("identifier", f"{system}|{value}")], base_url=self.base_url,
                                     strict=True, default_count=20, max_count=20)  # fmt: skip
                matches, _ = repository.search(query)
                hit = (now, frozenset(f"Organization/{m.id}" for m in matches))
                with self._lock:
                    if len(self._organizations) > 10_000:
                        self._organizations.clear()
                    self._organizations[token] = hit
            found |= hit[1]
        return frozenset(found)

    def organization_name(self, repository: Repository, reference: str) -> str:
        return str((self._organization(repository, reference) or {}).get("name") or reference)

    # -- what is on file ---------------------------------------------------------------------------
    def contexts(
        self, repository: Repository, patients: list[str], read: list[dict[str, Any]] | None, emergency: bool
    ) -> dict[str, PatientContext]:
        """Each patient's consents, treating organizations and episodes: from what the interaction
        already read (`read`, the brief's record), else in one query for all of them. If the
        store cannot be read, an emergency goes on without consents; routine requests fail."""
        if read is not None and len(patients) == 1:
            return {patients[0]: self.context(repository, read)}
        try:
            found = repository.compartments(patients, sorted(DECISION_INPUTS))
        except Exception:
            if not emergency:
                raise
            return {p: PatientContext(None, frozenset(), (), orders=None) for p in patients}
        return {p: self.context(repository, [r.content for r in found.get(p, []) if r.content]) for p in patients}

    def context(self, repository: Repository, resources: list[dict[str, Any]]) -> PatientContext:
        """One patient's context from their stored resources, identifiers resolved in this unit of work."""
        return context_of(resources, lambda tokens: self.organizations_identified(repository, tokens))

    def history(self, repository: Repository, user: str, patient_id: str, since: datetime) -> History:
        return History(certain_match_at=self.audit.certain_match_at(repository.connection, user, patient_id, since))


def _medical(role: str) -> bool:
    try:
        return bool(known_role(role).medical)
    except KeyError:
        return False  # a role since removed from config/roles.toml: nobody's medical personnel


def is_provider(organization: dict[str, Any] | None) -> bool:
    """Organization.type includes `prov` (a health-care provider)."""
    return any(
        isinstance(coding, dict) and coding.get("code") == "prov"
        for concept in (organization or {}).get("type") or []
        for coding in (concept or {}).get("coding") or []
    )
