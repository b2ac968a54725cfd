"""Typed settings: defaults from config/gateway.toml, overridden by GATEWAY_* environment variables.

Validation happens once, at start-up; a bad value stops the gateway with a message naming the
setting and the environment variable that carries it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "gateway.toml"


class SettingsError(Exception):
    """A setting has a value the gateway cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///var/gateway.sqlite3"
    # Unset, the base URL follows host, port and TLS (http://127.0.0.1:8080/fhir by default).
    base_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # TLS served by the gateway itself (PEM files), for deployments without a terminating proxy:
    # SMART requires TLS for everything but loopback.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    workers: int = Field(1, ge=1, le=64)
    worker_class: Literal["sync", "gthread"] = "gthread"
    threads: int = Field(2, ge=1, le=64)
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_bundle_entries: int = Field(10_000, ge=1)
    max_json_depth: int = Field(64, ge=8, le=500)
    # Work per request is bounded by elements, not only bytes: one resource may hold at most this
    # many elements and values (a Patient with 300,000 extensions is 13 MB of JSON).
    max_resource_elements: int = Field(100_000, ge=1_000)
    # And per search page: the stored JSON one page may carry; past it the page ends early and
    # its `next` link goes on from there (a page of 1,000 large resources would be gigabytes).
    max_page_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(1000, ge=1)
    default_search_handling: Literal["lenient", "strict"] = "lenient"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Pull from the sources (`gateway source`) on their schedules, inside `gateway serve`'s workers.
    pull_scheduler: bool = True
    # A dispatch launch reads the person's record into the store's caches (docs/app.md).
    launch_read_ahead: bool = True
    pull_tick_seconds: float = Field(30.0, ge=0.2, le=3600)  # how often each worker looks for due sources
    # Set by `gateway serve --demo` (never in production): demo-only pages such as /demo/dispatch.
    demo: bool = False
    # The county's time zone (IANA name): times written for people to read, such as the hour in
    # an outcome message to a care team, are in it. Stored instants stay UTC.
    local_timezone: str = "UTC"
    # SMART on FHIR (docs/auth.md). "off" serves /fhir without tokens: loopback binds only.
    auth: Literal["smart", "off"] = "smart"
    secret_key: str = ""  # signs login sessions; `gateway serve` makes one per run when empty
    session_idle_minutes: int = Field(30, ge=1, le=720)
    app_token_seconds: int = Field(3600, ge=60, le=3600)
    backend_token_seconds: int = Field(300, ge=60, le=300)
    offline_refresh_days: int = Field(30, ge=1, le=365)
    token_cache_seconds: float = Field(10.0, ge=0, le=60)
    # How far a client's clock may be from ours when its assertion's exp, iat and nbf are checked.
    assertion_leeway_seconds: int = Field(5, ge=0, le=60)
    # The longest one statement, or a wait for a lock, may take while serving: past it the request
    # answers 503 instead of holding a worker (PostgreSQL statement_timeout and lock_timeout;
    # SQLite busy timeout and the writer lock).
    statement_timeout_ms: int = Field(10_000, ge=100, le=600_000)
    # Where a medical emergency's audit record goes when the store cannot take it (gateway/consent/
    # spool.py); replayed into the audit once it can. Relative paths are relative to the project.
    audit_spool_dir: str = "var/audit-spool"
    # A sandbox for EHR integrators and conformance suites: operators may move the gateway's clock
    # (gateway/clock.py, docs/auth.md). Never in production; refused with a non-loopback bind
    # unless `sandbox_allow_non_loopback` says an operator meant it.
    sandbox: bool = False
    sandbox_allow_non_loopback: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derived_base_url(cls, data: Any) -> Any:
        """Without an explicit base URL, the one the gateway is reached at on its own bind: setting
        the port alone must not leave every printed and advertised URL on another port."""
        if not isinstance(data, dict) or data.get("base_url"):
            return data
        host = str(data.get("host") or "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):  # a wildcard bind: loopback reaches it on this machine
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if data.get("tls_certfile") else "http"
        return {**data, "base_url": f"{scheme}://{host}:{data.get('port') or 8080}/fhir"}

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("tls_certfile and tls_keyfile go together: set both or neither")
        for path in (self.tls_certfile, self.tls_keyfile):
            if path and not Path(path).is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL, e.g. https://gateway.example.org/fhir")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            # Relative SQLite paths are relative to the project, not to wherever the command runs.
            relative = value.removeprefix("sqlite:///")
            if relative and relative != ":memory:":
                value = "sqlite:///" + str(PROJECT_ROOT / relative)
        return value

    @field_validator("local_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, e.g. America/Chicago") from None
        return value

    @field_validator("audit_spool_dir")
    @classmethod
    def _spool_under_project(cls, value: str) -> str:
        return value if Path(value).is_absolute() else str(PROJECT_ROOT / value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("GATEWAY_CONFIG_FILE", DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file))


def load_settings(**overrides: object) -> Settings:
    """Load and validate settings, turning pydantic's report into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = ".".join(str(part) for part in problem["loc"])
            lines.append(
                f"  {name} (environment variable GATEWAY_{name.upper()}): {problem['msg']}"
                f" (got {problem.get('input')!r})"
            )
        raise SettingsError("invalid gateway settings:\n" + "\n".join(lines)) from None


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback address."""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def check_sandbox(settings: Settings) -> None:
    """A sandbox (a movable clock) binds loopback addresses only, unless an operator set the
    explicit override too."""
    if settings.demo and not is_loopback(settings.host):
        raise SettingsError("refusing demo = true beyond loopback: the demo publishes its users' password")
    if settings.sandbox and not settings.sandbox_allow_non_loopback and not is_loopback(settings.host):
        raise SettingsError(
            f"refusing sandbox = true with host {settings.host}: a gateway whose clock can be moved serves "
            "loopback addresses only (127.0.0.1, ::1); set sandbox_allow_non_loopback = true "
            "(GATEWAY_SANDBOX_ALLOW_NON_LOOPBACK) if a test deployment really needs it"
        )
