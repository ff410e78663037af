"""Settings of the console and the admin API: the admin credential, the console's sign-in
through an OpenID Connect provider, and the keys people make for themselves there."""

from __future__ import annotations

import functools
import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from gateway.config.base import Strict

__all__ = ["AdminSettings", "SelfServiceSettings", "SsoSettings", "local_http"]


def _networks(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
    from gateway.key_records import validate_networks  # it imports the configuration

    return validate_networks(v)


# Client networks as CIDR blocks, checked and normalised (key_records.validate_networks); None:
# anywhere. Self-service keys' and the admin API's.
Networks = Annotated[tuple[str, ...] | None, AfterValidator(_networks)]

_CONSOLE_ROLES = frozenset({"admin", "auditor", "staff"})
_LOCAL = frozenset({"127.0.0.1", "localhost", "::1"})


def local_http(url: str) -> bool:
    """A plain-http URL on this machine: the only http the single sign-on settings take."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in _LOCAL


def _https_or_local(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what}: an http(s) URL")
    if parts.scheme == "http" and not local_http(url):
        raise ValueError(f"{what}: https (plain http only on this machine: 127.0.0.1, localhost)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{what}: no query, fragment or credentials in the URL")
    return url.rstrip("/")


class SelfServiceSettings(Strict):
    """Keys people make for themselves from the console after signing in (gateway.http.
    self_service): their own identity from the provider, no roles, always expiring."""

    max_keys: int = Field(3, ge=1, le=20)  # active self-service keys per person
    expires_in_days: int = Field(90, ge=1, le=365)  # every such key expires this long after
    # Each key's own spend budget (gateway.budgets); None: budgets.key_usd.
    budget_usd: float | None = Field(None, ge=0, le=1_000_000_000)
    # The period such keys' budgets renew on (day, week, month); None: budgets.period.
    budget_period: Literal["day", "week", "month"] | None = None
    # The models such keys may use (names or aliases); None: every model policy permits.
    models: tuple[str, ...] | None = None
    # The client networks such keys may be used from (CIDR blocks); None: anywhere.
    networks: Networks = None

    @field_validator("models")
    @classmethod
    def _models(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from gateway.key_records import validate_models

        return validate_models(v)


class SsoSettings(Strict):
    """Console sign-in through an OpenID Connect provider (gateway.sso): authorisation code with
    PKCE; the ID token's groups give console roles and audit scope."""

    issuer: str  # the provider's issuer URL; its /.well-known/openid-configuration is read
    client_id: str = Field(min_length=1, max_length=256)
    # The client secret: from an environment variable or a file, never inline.
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    # The gateway's address as browsers reach it; the provider sends them back to
    # <public_url>/console/sso/callback (register that redirect URI with the provider).
    public_url: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    user_claim: str = "email"  # the claim that names the person in the audit trail
    groups_claim: str = "groups"
    # Provider group -> console roles (admin, auditor, staff). A person in no listed group is
    # refused. staff: signs in only to make and revoke keys of their own (self_service).
    roles: dict[str, tuple[str, ...]] = Field(min_length=1)
    # Provider group -> tags (audit-scope:<CC> or audit-scope:all widen what an auditor reads).
    tags: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    jurisdiction: str  # the session's jurisdiction (scopes an auditor's reads) ...
    jurisdiction_claim: str | None = None  # ... unless this claim holds a valid one
    sector: str = "government"
    team_claim: str | None = None
    # The session's tenant (its keys made in "My keys" are in it) ... unless this claim holds one.
    tenant: str = "default"
    tenant_claim: str | None = None
    # How long a session lasts; it ends earlier by Sign out or an administrator ending it.
    session_ttl_s: int = Field(7200, ge=300, le=86400)
    # Keys people make for themselves in the console ("My keys"); None: off.
    self_service: SelfServiceSettings | None = None
    timeout_s: float = Field(10.0, gt=0, le=60)  # each call to the provider
    # The console's Sign out also ends the person's session at the provider (OpenID Connect
    # RP-Initiated Logout: its end_session_endpoint, with client_id and the console as
    # post_logout_redirect_uri, which must be registered with the provider).
    sign_out_at_provider: bool = False
    # OpenID Connect Front-Channel Logout 1.0, for a provider that offers no back-channel logout
    # (Microsoft Entra ID): the provider's sign-out page loads
    # <public_url>/console/sso/frontchannel-logout?sid=... (register that URI with it), and the
    # console sessions begun from that provider session end. Off by default: the call carries
    # no signature (the sid, a secret of the person's browser and the provider, is the
    # credential), so it is taken only from admin.networks and at most
    # frontchannel_logout_per_minute times a minute on each replica.
    frontchannel_logout: bool = False
    frontchannel_logout_per_minute: int = Field(60, ge=1, le=6000)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        # kept as written: the discovery document's issuer and the ID token's iss must equal
        # it exactly, and some providers spell it with a final "/" (Auth0)
        _https_or_local(v, "issuer")
        return v

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str) -> str:
        return _https_or_local(v, "public_url")

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for group, roles in v.items():
            if not roles or set(roles) - _CONSOLE_ROLES:
                raise ValueError(f"roles[{group!r}]: one or more of admin, auditor, staff")
        return v

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        from audit.shapes import IDENTIFIER_CHARS, is_name

        if not is_name(v) or len(v) > 100:
            raise ValueError(f"1-100 {IDENTIFIER_CHARS}")
        return v

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, v: str) -> str:
        from gateway.principal import parse_jurisdiction

        country, sub = parse_jurisdiction(v)
        return sub or country

    @field_validator("sector")
    @classmethod
    def _sector(cls, v: str) -> str:
        from gateway.principal import SECTORS

        if v not in SECTORS:
            raise ValueError(f"one of {', '.join(sorted(SECTORS))}")
        return v

    @model_validator(mode="after")
    def _secret(self) -> SsoSettings:
        if bool(self.client_secret_env) == bool(self.client_secret_file):
            raise ValueError("give client_secret_env or client_secret_file (one of them)")
        if "openid" not in self.scopes:
            raise ValueError("scopes: must hold openid")
        if self.self_service is None and any("staff" in r for r in self.roles.values()):
            raise ValueError("roles: 'staff' signs in only to make keys; set self_service too")
        return self

    def client_secret(self) -> SecretStr | None:
        """The client secret, or None when its variable or file is missing or empty."""
        if self.client_secret_env:
            value = os.environ.get(self.client_secret_env)
            return SecretStr(value) if value else None
        assert self.client_secret_file is not None
        try:
            text = self.client_secret_file.read_text().strip()
        except OSError:
            return None
        return SecretStr(text) if text else None

    @property
    def redirect_uri(self) -> str:
        return self.public_url + "/console/sso/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.public_url + "/console/"


class AdminSettings(Strict):
    # Admin API credential: a token compared in constant time, from a file or env var.
    token_file: Path | None = None
    token_env: str | None = "PORTCULLIS_ADMIN_TOKEN"  # noqa: S105 - a variable name
    # The web console at /console/ (gateway.console): a static page over this admin API; it
    # holds no data and asks for the admin token or an admin/auditor key.
    console: bool = True
    # How long an admin call may take before its answer starts (0: no limit). Past it the
    # caller gets 503 database_unavailable at once — a frozen database holds pooled connections
    # silently, with no error to end the wait. A streamed export, once begun, is not cut; the
    # trail's verification (its own process) is exempt.
    deadline_s: float = Field(30.0, ge=0, le=3600)
    # The same for reports that read their whole range before answering (the usage report,
    # GET /admin/audit/usage: ~1.6-3.5 s per 100,000 requests, so minutes on a grown trail;
    # the transfers register, GET /admin/audit/transfers).
    report_deadline_s: float = Field(600.0, ge=0, le=3600)
    # Console sign-in through an OpenID Connect provider (docs/console.md); off by default.
    sso: SsoSettings | None = None
    # The client networks the admin API (and so the console's reads and actions) may be used
    # from, whatever the credential: CIDR blocks; None: anywhere.
    networks: Networks = None

    @functools.cached_property
    def parsed_networks(self) -> tuple[IPv4Network | IPv6Network, ...] | None:
        from gateway.principal import networks_of

        return networks_of(self.networks)
