"""The responder app's own settings (environment SMART_APP_<KEY>, or smart_app.toml beside the
gateway's config). The app is a separate SMART client: it knows the gateway only by its FHIR base
URL and talks to it over HTTP, as any third-party app would."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMART_APP_", extra="forbid", frozen=True)

    # Where the app is reached (its redirect URI is `{base_url}/callback`).
    base_url: str = "http://127.0.0.1:8081"
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    # The gateway's FHIR base: the only `iss` this app launches from.
    fhir_base_url: str = "http://127.0.0.1:8080/fhir"
    client_id: str = "responder-web"
    # The app's private key (a JWK or PEM file): it signs its client assertions (private_key_jwt).
    private_key_file: str = "var/smart-app-key.json"
    # A standalone launch asks for no patient (responders search in the app); a dispatch (EHR)
    # launch adds `launch launch/patient`: its person comes with the launch.
    scope: str = "openid fhirUser online_access user/*.rs"
    secret_key: str = ""  # signs the cookie that names the server-side session
    database_url: str = "sqlite:///var/smart-app.sqlite3"  # server-side sessions (tokens live here)
    session_idle_minutes: int = Field(30, ge=1, le=720)
    # Emergency access (42 CFR 2.51), once declared, lasts this long; then the responder declares
    # it again. Each brief read in the window is its own documented emergency access at the gateway.
    emergency_minutes: int = Field(60, ge=5, le=240)
    # Refresh the access token when it has less than this left.
    refresh_margin_seconds: int = Field(60, ge=0, le=600)

    @field_validator("base_url", "fhir_base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("private_key_file")
    @classmethod
    def _under_project(cls, value: str) -> str:
        return value if Path(value).is_absolute() else str(PROJECT_ROOT / value)

    @field_validator("database_url")
    @classmethod
    def _sqlite_under_project(cls, value: str) -> str:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            return "sqlite:///" + str(PROJECT_ROOT / value.removeprefix("sqlite:///"))
        return value

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("SMART_APP_CONFIG_FILE", PROJECT_ROOT / "config" / "smart_app.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file))
