"""The authorization server: Authlib's grants, subclassed where SMART App Launch 2.2 and Backend
Services are stricter than OAuth 2.0 (see ../shared/research/smart.md §5 for each gap).

- Authorization code: redirect_uri required and exact; `state`, `aud` and PKCE S256 required
  for every client (no `plain`, the verifier checked for confidential clients too); an EHR
  `launch` must be live, unused and bound to the client; scopes negotiated against the client's
  ceiling; a code is claimed atomically on first use, and a second use revokes what it issued.
- Refresh: rotation with reuse detection; the scope may narrow, never widen.
- Client credentials: `private_key_jwt` only (so a bad assertion type is exactly 400), `system/`
  scopes only, within the client's ceiling.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import Engine, insert, select, update

from gateway.auth.accounts import Accounts, Client, User, utcnow
from gateway.auth.assertions import ASSERTION_TYPE, AssertionRefused, AssertionVerifier
from gateway.auth.keys import ID_TOKEN_LIFETIME, Keys
from gateway.auth.scopes import REFRESH_SCOPES, ScopeError, ScopeSet, is_subset, negotiate
from gateway.auth.tokens import Tokens, digest
from gateway.clock import SYSTEM_CLOCK
from gateway.store.database import writing
from gateway.store.schema import launch_context, oauth_code

CODE_LIFETIME = timedelta(seconds=60)
LAUNCH_LIFETIME = timedelta(minutes=5)
_PKCE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True)
class AuthConfig:
    issuer: str  # the FHIR base URL; also the OpenID issuer
    public_root: str  # scheme://host[:port] of the public base URL
    app_token_seconds: int = 3600
    backend_token_seconds: int = 300
    offline_refresh: timedelta = timedelta(days=30)
    online_refresh: timedelta = timedelta(hours=12)
    assertion_leeway_seconds: int = 5
    session_idle: timedelta = timedelta(minutes=30)

    @property
    def token_url(self) -> str:
        return f"{self.public_root}/auth/token"

    @property
    def style_url(self) -> str:
        return f"{self.public_root}/auth/smart-style.json"


def same_base(aud: str, base: str) -> bool:
    """aud names our FHIR base: compared without a trailing slash and with scheme and host
    case-folded (smart.md §0.4)."""

    def norm(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return bool(aud) and norm(aud) == norm(base)


@dataclass
class CodeRecord:
    """A claimed authorization code, with what Authlib asks of one."""

    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    context: dict[str, Any]
    auth_time: datetime
    family: str
    code_challenge_method: str = "S256"

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int((self.auth_time - datetime(1970, 1, 1)).total_seconds())


@dataclass
class RefreshRecord:
    row: dict[str, Any]
    now: datetime  # the gateway's clock when the refresh was asked for
    context: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: Client) -> bool:
        return bool(self.row["client_id"] == client.client_id)

    def get_scope(self) -> str:
        return str(self.row["scope"])

    def is_expired(self) -> bool:
        expires = self.row["refresh_expires_at"]
        return expires is None or expires <= self.now

    def is_revoked(self) -> bool:
        return self.row["revoked_at"] is not None


class SmartCodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE as SMART requires it: S256 only, for every client, public or confidential."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge:
            raise InvalidRequestError("code_challenge is required (PKCE S256)", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        if not _PKCE.match(challenge):
            raise InvalidRequestError("code_challenge is not a valid S256 challenge", redirect_uri=redirect_uri)
        for name in ("code_challenge", "code_challenge_method"):
            if len(grant.request.payload.datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"{name} is repeated", redirect_uri=redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        verifier = grant.request.form.get("code_verifier")
        if not verifier:
            raise InvalidRequestError("code_verifier is required")
        if not _PKCE.match(verifier):
            raise InvalidRequestError("code_verifier is not 43-128 unreserved characters")
        code = grant.request.authorization_code
        if not secrets.compare_digest(_s256(verifier), code.code_challenge):
            raise InvalidGrantError("code_verifier does not match the code_challenge")


def _s256(verifier: str) -> str:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: PLC0415

    return str(create_s256_code_challenge(verifier))


class SmartAuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt", "client_secret_post", "none"]
    server: SmartServer

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Client) -> str:
        # Never redirect to an unregistered URI, and never echo it: Authlib's message with the
        # URI in it is a 500 for a URI containing '"' or non-ASCII (smart.md §5.4).
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("redirect_uri is required")
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("redirect_uri is not registered for this client")
        return str(uri)

    def validate_authorization_request(self) -> str:
        redirect_uri = str(super().validate_authorization_request())
        request = self.request
        data = request.payload.data
        client: Client = request.client
        if client.disabled:
            raise UnauthorizedClientError("this client is disabled", redirect_uri=redirect_uri)
        if not data.get("state"):
            raise InvalidRequestError("state is required", redirect_uri=redirect_uri)
        aud = data.get("aud") or data.get("resource") or ""
        if not same_base(aud, self.server.config.issuer):
            raise InvalidRequestError("aud must be this server's FHIR base URL", redirect_uri=redirect_uri)
        try:
            asked = ScopeSet.parse(data.get("scope") or "")
            granted = negotiate(data.get("scope") or "", client.scope)
        except ScopeError:
            raise InvalidScopeError(
                "a requested scope is malformed or not supported", redirect_uri=redirect_uri
            ) from None
        if "system" in asked.contexts:
            raise InvalidScopeError("system/ scopes are for backend services", redirect_uri=redirect_uri)
        launch = None
        if data.get("launch"):
            launch = self.server.launch(data["launch"], client.client_id)
            if launch is None:
                raise InvalidRequestError(
                    "launch is unknown, expired, used or for another app", redirect_uri=redirect_uri
                )
        elif asked.has("launch"):
            raise InvalidRequestError("scope launch needs a launch parameter (EHR launch)", redirect_uri=redirect_uri)
        request.smart_launch = launch
        request.smart_granted = granted
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        decision: dict[str, Any] = request.smart_decision
        self.server.save_code(code, request, decision)

    def query_authorization_code(self, code: str, client: Client) -> CodeRecord | None:
        return self.server.claim_code(code, client)

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        return None  # claimed (and so spent) already by query_authorization_code

    def authenticate_user(self, authorization_code: CodeRecord) -> User | None:
        user = self.server.accounts.user(authorization_code.username)
        return user if user and not user.disabled else None


class SmartRefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [
        "client_secret_basic",
        "private_key_jwt",
        "client_secret_post",
        "none",
        "none_by_refresh_token",
    ]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: SmartServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        row = self.server.tokens.refresh_row(refresh_token)
        if row is None:
            return None
        if row["rotated_at"] is not None:
            # Reuse of a rotated refresh token: someone else has a copy. End the whole grant.
            self.server.tokens.revoke_family(row["family"])
            return None
        record = RefreshRecord(row, utcnow(self.server.clock), dict(row["context"] or {}))
        if record.is_revoked() or record.is_expired():
            return None
        if not self._online(record):
            return None
        return record

    def _online(self, record: RefreshRecord) -> bool:
        """An online_access grant (without offline_access) lives on the sign-in session that
        granted it: refused once the user signed out, or was idle past the limit (their app's own
        refreshes count as activity, so the access token's lifetime is added). Refreshing keeps
        the session alive."""
        scopes = set(str(record.row["scope"]).split())
        session_id = record.context.get("session")
        if "online_access" not in scopes or "offline_access" in scopes:
            return True
        config = self.server.config
        idle = config.session_idle + timedelta(seconds=config.app_token_seconds)
        if not isinstance(session_id, str) or not self.server.accounts.session_alive(session_id, idle):
            return False
        self.server.accounts.touch_session(session_id)
        return True

    def _validate_token_scope(self, token: RefreshRecord) -> None:
        scope = self.request.payload.scope
        if not scope:
            return
        try:
            wanted = ScopeSet.parse(scope)
        except ScopeError:
            raise InvalidScopeError("a requested scope is malformed") from None
        if not is_subset(wanted, ScopeSet.parse(token.get_scope())):
            raise InvalidScopeError("a refresh may narrow the granted scopes, never widen them")

    def authenticate_user(self, refresh_token: RefreshRecord) -> User | None:
        user = self.server.accounts.user(refresh_token.row["username"])
        return user if user and not user.disabled else None

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        self.server.tokens.mark_rotated(refresh_token.row["token_id"])


class SmartClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]
    server: SmartServer

    def validate_token_request(self) -> None:
        client: Client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("this client may not use client_credentials")
        self.request.client = client
        requested = self.request.payload.scope or ""
        try:
            asked = ScopeSet.parse(requested)
            granted = negotiate(requested, client.scope)
        except ScopeError as error:
            raise InvalidScopeError(_ascii(str(error))) from None
        if not asked.resources or asked.contexts != {"system"} or asked.others:
            raise InvalidScopeError("backend services ask for system/ resource scopes only")
        if not granted.resources:
            raise InvalidScopeError("none of the requested scopes is allowed for this client")
        self.request.smart_granted = granted

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=str(self.request.smart_granted), include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _ascii(text: str) -> str:
    """OAuth error descriptions may hold only printable ASCII without '"' and '\\'."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


class SmartServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, database: Engine, accounts: Accounts, tokens: Tokens, keys: Keys, config: AuthConfig) -> None:
        super().__init__()
        self.database = database
        self.accounts = accounts
        self.tokens = tokens
        self.keys = keys
        self.config = config
        self.clock = accounts.clock  # one clock: the accounts', the tokens' and the keys' are the same
        # A client assertion's iat/exp and its jti's replay window are about the client's clock and
        # real elapsed time, not the gateway's (a sandbox's EHR signs on its own clock).
        self.assertions = AssertionVerifier(database, config.token_url, accounts.client, clock=SYSTEM_CLOCK,
                                            leeway=config.assertion_leeway_seconds)  # fmt: skip
        self._query_client = accounts.client
        self._save_token = self._store_token
        self.load_config(
            {
                "OAUTH2_REFRESH_TOKEN_GENERATOR": True,
                "OAUTH2_TOKEN_EXPIRES_IN": {
                    "authorization_code": config.app_token_seconds,
                    "refresh_token": config.app_token_seconds,
                    "client_credentials": config.backend_token_seconds,
                },
            }
        )
        self.register_client_auth_method("private_key_jwt", self._authenticate_assertion)
        self.register_client_auth_method("none_by_refresh_token", self._authenticate_by_refresh_token)
        self.register_grant(SmartAuthorizationCodeGrant, [SmartCodeChallenge(required=True)])
        self.register_grant(SmartRefreshTokenGrant)
        self.register_grant(SmartClientCredentialsGrant)

    # -- client authentication -------------------------------------------------------------------
    def _authenticate_assertion(self, query_client: Any, request: Any) -> Client | None:
        form = request.form
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if not assertion_type and not assertion:
            return None
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise InvalidClientError(description=f"client_assertion_type must be {ASSERTION_TYPE}")
        try:
            return self.assertions.verify(assertion, form.get("client_id"))
        except AssertionRefused as error:
            raise InvalidClientError(description=_ascii(str(error))) from None

    def _authenticate_by_refresh_token(self, query_client: Any, request: Any) -> Client | None:
        """A public app refreshing without client_id (client-js does): the client is the one the
        refresh token was issued to. Never used when any other credential is present."""
        form = request.form
        if form.get("grant_type") != "refresh_token" or form.get("client_id") or form.get("client_assertion"):
            return None
        if "Authorization" in request.headers:
            return None
        row = self.tokens.refresh_row(form.get("refresh_token") or "")
        client = self.accounts.client(row["client_id"]) if row else None
        return client if client and client.kind == "public" else None

    # -- codes and launches ----------------------------------------------------------------------
    def launch(self, launch_id: str, client_id: str, now: datetime | None = None) -> dict[str, Any] | None:
        now = now or utcnow(self.clock)
        with self.database.connect() as connection:
            row = (
                connection.execute(select(launch_context).where(launch_context.c.launch_id == launch_id))
                .mappings()
                .first()
            )
        if row is None or row["client_id"] != client_id or row["used_at"] is not None or row["expires_at"] <= now:
            return None
        return dict(row)

    def create_launch(
        self,
        *,
        client_id: str,
        created_by: str,
        patient: str,
        username: str | None = None,
        encounter: str | None = None,
        incident: str | None = None,
        purpose: str | None = None,
        now: datetime | None = None,
    ) -> str:
        now = now or utcnow(self.clock)
        launch_id = secrets.token_urlsafe(24)
        with writing(self.database) as connection:
            connection.execute(
                insert(launch_context).values(
                    launch_id=launch_id,
                    client_id=client_id,
                    created_by=created_by,
                    username=username,
                    patient=patient,
                    encounter=encounter,
                    incident=incident,
                    purpose=purpose,
                    expires_at=now + LAUNCH_LIFETIME,
                )
            )
        return launch_id

    def save_code(self, code: str, request: Any, decision: dict[str, Any]) -> None:
        now = utcnow(self.clock)
        data = request.payload.data
        with writing(self.database) as connection:
            launch = decision.get("launch_id")
            if launch:
                used = connection.execute(
                    update(launch_context)
                    .where(launch_context.c.launch_id == launch, launch_context.c.used_at.is_(None))
                    .values(used_at=now)
                ).rowcount
                if not used:
                    raise InvalidRequestError("launch was used already", redirect_uri=request.payload.redirect_uri)
            connection.execute(
                insert(oauth_code).values(
                    code_hash=digest(code),
                    client_id=request.client.client_id,
                    username=request.user.username,
                    redirect_uri=request.payload.redirect_uri,
                    scope=decision["scope"],
                    code_challenge=data.get("code_challenge"),
                    nonce=data.get("nonce"),
                    context=decision["context"],
                    auth_time=decision.get("auth_time") or now,
                    expires_at=now + CODE_LIFETIME,
                )
            )

    def claim_code(self, code: str, client: Client) -> CodeRecord | None:
        """The code, spent atomically: of two concurrent exchanges one wins. A second use of a
        code revokes the tokens the first one got (RFC 6749 §4.1.2)."""
        now = utcnow(self.clock)
        key = digest(code)
        family = uuid.uuid4().hex
        with writing(self.database) as connection:
            row = connection.execute(select(oauth_code).where(oauth_code.c.code_hash == key)).mappings().first()
            if row is None:
                return None
            if row["family"] is not None:
                spent_family = row["family"]
                row = None
            else:
                claimed = connection.execute(
                    update(oauth_code)
                    .where(oauth_code.c.code_hash == key, oauth_code.c.family.is_(None))
                    .values(family=family)
                ).rowcount
                spent_family = None if claimed else "?"
        if spent_family:
            if spent_family != "?":
                self.tokens.revoke_family(spent_family)
            return None
        assert row is not None
        if row["client_id"] != client.client_id or row["expires_at"] <= now:
            return None
        return CodeRecord(
            client_id=row["client_id"],
            username=row["username"],
            redirect_uri=row["redirect_uri"],
            scope=row["scope"],
            code_challenge=row["code_challenge"],
            nonce=row["nonce"],
            context=dict(row["context"]),
            auth_time=row["auth_time"],
            family=family,
        )

    # -- tokens ----------------------------------------------------------------------------------
    def _store_token(self, token: dict[str, Any], request: Any) -> None:
        """Authlib calls this with the generated token and returns the same dict, so the SMART
        context and the id_token added here appear in the response."""
        client: Client = request.client
        scopes = ScopeSet.parse(token.get("scope") or "")
        code: CodeRecord | None = getattr(request, "authorization_code", None)
        previous: RefreshRecord | None = getattr(request, "refresh_token", None)
        context: dict[str, Any] = {}
        family = None
        username = None
        if code is not None:
            context, family, username = dict(code.context), code.family, code.username
        elif previous is not None:
            context, family, username = dict(previous.context), previous.row["family"], previous.row["username"]
        else:
            # Backend: an EHR may change only what it wrote, and what it sends is labelled by
            # its organization (a Part 2 program's data is Part 2 data).
            context.update(purpose=client.purpose, organization=client.organization, part2=client.part2_program)
        refresh_lifetime = None
        if "offline_access" in scopes.others:
            refresh_lifetime = self.config.offline_refresh
        elif "online_access" in scopes.others:
            refresh_lifetime = self.config.online_refresh
        if not refresh_lifetime or not (scopes.others & REFRESH_SCOPES):
            token.pop("refresh_token", None)
        user = self.accounts.user(username) if username else None
        if user is not None:
            context["role"] = user.role  # what the resource server may let this user do
            if "openid" in scopes.others and scopes.others & {"fhirUser", "profile"}:
                token["id_token"] = self._id_token(user, client, code, context)
                context["id_token"] = True
        self.tokens.save(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client_id=client.client_id,
            username=username,
            scope=str(token.get("scope") or ""),
            context=context,
            lifetime=int(token["expires_in"]),
            refresh_lifetime=refresh_lifetime,
            family=family,
        )
        token["scope"] = str(token.get("scope") or "")
        for name in ("patient", "encounter"):
            if context.get(name):
                token[name] = context[name]
        if username:
            token["need_patient_banner"] = bool(context.get("need_patient_banner", True))
            token["smart_style_url"] = self.config.style_url

    def _id_token(self, user: User, client: Client, code: CodeRecord | None, context: dict[str, Any]) -> str:
        now = int((utcnow(self.clock) - datetime(1970, 1, 1)).total_seconds())
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": user.username,
            "aud": client.client_id,
            "iat": now,
            "exp": now + int(ID_TOKEN_LIFETIME.total_seconds()),
            "name": user.display_name,
            # What the app may offer (emergency access to medical personnel, the outcome form to
            # treating roles); the gateway decides every release by the same role all the same.
            "role": user.role,
            "medical_personnel": user.medical,
            "treating_role": user.treating,
        }
        if user.practitioner:
            claims["fhirUser"] = f"{self.config.issuer}/{user.practitioner}"
            context["fhirUser"] = claims["fhirUser"]
        if code is not None:
            claims["auth_time"] = code.get_auth_time()
            if code.nonce:
                claims["nonce"] = code.nonce
        return self.keys.sign(claims)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        if error.description:
            error.description = _ascii(error.description)
        return super().handle_error_response(request, error)
