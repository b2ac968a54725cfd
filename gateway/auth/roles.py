"""Recipient roles (config/roles.toml): which roles exist, which count as medical personnel and
which treat the person on scene."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gateway.settings import PROJECT_ROOT

ROLES_FILE = PROJECT_ROOT / "config" / "roles.toml"


@dataclass(frozen=True)
class Role:
    code: str
    display: str
    medical: bool
    treating: bool = False  # treats the person on scene: records on-scene and outcomes


@cache
def load_roles(path: Path = ROLES_FILE) -> dict[str, Role]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        code: Role(code, str(entry["display"]), bool(entry.get("medical", False)), bool(entry.get("treating", False)))
        for code, entry in data.get("roles", {}).items()
    }


def role(code: str) -> Role:
    roles = load_roles()
    if code not in roles:
        raise KeyError(f"unknown role {code!r}; known roles: {', '.join(sorted(roles))} (config/roles.toml)")
    return roles[code]
