"""The released items as they may leave, and the §2.32 notice in its FHIR forms.

- `LABEL`: a released Part 2 item always carries R, 42CFRPart2 and NORDSCLCD; its sensitivity
  codes (SUD, OPIOIDUD, MH, ...) stay only for clinical roles: for anyone else the label would
  itself disclose the diagnosis (DS4P IG, "labels are themselves sensitive").
- `NOTICE`: Statement 1 and the scope explanations, as a Bundle-level OperationOutcome entry
  (search.mode `outcome`) and `meta` extension, or a `meta` extension on a single resource.
"""

from __future__ import annotations

from typing import Any

from consent_engine.codes import KEPT_LABELS, LABEL_SYSTEM, NO_REDISCLOSURE, PART2, PROJECT, RESTRICTED
from consent_engine.model import Notice, ScopeExplanation

NOTICE_EXTENSION = f"{PROJECT}/StructureDefinition/redisclosure-notice"
NOTICE_VERSION_EXTENSION = f"{PROJECT}/StructureDefinition/redisclosure-notice-version"
PART2_REFRAIN = (RESTRICTED, PART2, NO_REDISCLOSURE)


def redact(resource: dict[str, Any], *, part2: bool, strip_sensitivity: bool) -> dict[str, Any]:
    """A copy of the resource as it may go to this recipient (the stored one is never changed)."""
    meta = resource.get("meta")
    security = [c for c in (meta or {}).get("security") or [] if isinstance(c, dict)] if isinstance(meta, dict) else []
    codes = {c.get("code") for c in security}
    missing = [code for code in PART2_REFRAIN if part2 and code not in codes]
    if not missing and not (strip_sensitivity and any(c.get("code") not in KEPT_LABELS for c in security)):
        return resource
    kept = [c for c in security if not strip_sensitivity or c.get("code") in KEPT_LABELS]
    kept += [{"system": LABEL_SYSTEM[code], "code": code} for code in missing]
    new_meta = {k: v for k, v in (meta or {}).items() if k != "security"}
    if kept:
        new_meta["security"] = kept
    return {**resource, "meta": new_meta}


def notice_text(notice: Notice, scope: tuple[ScopeExplanation, ...]) -> str:
    return "\n\n".join([notice.text, *(s.text for s in scope)])


def notice_extensions(notice: Notice, scope: tuple[ScopeExplanation, ...]) -> list[dict[str, Any]]:
    return [
        {"url": NOTICE_EXTENSION, "valueString": notice_text(notice, scope)},
        {"url": NOTICE_VERSION_EXTENSION, "valueString": notice.version},
    ]


def with_notice(resource: dict[str, Any], notice: Notice, scope: tuple[ScopeExplanation, ...]) -> dict[str, Any]:
    """A single resource carrying the notice in its meta."""
    meta = dict(resource.get("meta") or {})
    others = [e for e in meta.get("extension") or [] if not str((e or {}).get("url", "")).startswith(NOTICE_EXTENSION)]
    meta["extension"] = [*others, *notice_extensions(notice, scope)]
    return {**resource, "meta": meta}


def notice_entry(notice: Notice, scope: tuple[ScopeExplanation, ...]) -> dict[str, Any]:
    """The notice as a Bundle entry (search.mode `outcome`), the form FHIR clients already read."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": notice_text(notice, scope),
                   "details": {"text": f"42 CFR 2.32 notice ({notice.version})"}}],
    }  # fmt: skip
    return {"resource": outcome, "search": {"mode": "outcome"}}
