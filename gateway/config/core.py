"""Settings of the gateway core: server, tracing, storage, keys, limits, budgets, request
bounds. The console's and the admin API's are in :mod:`gateway.config.admin`."""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.config.admin import local_http
from gateway.config.base import Strict

__all__ = [
    "BudgetSettings",
    "DatabaseSettings",
    "KeySettings",
    "LimitSettings",
    "RedisSettings",
    "RequestLimits",
    "ServerSettings",
    "TracingSettings",
    "WebhookSettings",
]


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    # Whose X-Forwarded-For is believed: the proxies in front of the gateway (addresses or CIDR
    # blocks). The client's address — a key's networks, admin.networks, the audit record's
    # client_address — is then the one such a proxy forwarded, else the connection's peer.
    # Empty: nobody's. trust_forwarded_for: everybody's (only where no one but the proxies can
    # reach the gateway, as in compose.yaml, where the gateways publish no port).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    trust_forwarded_for: bool = False
    # Browser tools on these origins may call /v1/... cross-origin (gateway.http.cors); none by
    # default. "*": every origin (announced at start).
    cors_origins: tuple[str, ...] = Field((), max_length=100)
    cors_max_age_s: int = Field(600, ge=0, le=86400)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 50:
            raise ValueError("server.trusted_proxies: at most 50 addresses or CIDR blocks")
        try:
            return tuple(str(ip_network(v.strip(), strict=False)) for v in value)
        except ValueError:
            raise ValueError("server.trusted_proxies: addresses or CIDR blocks") from None

    def forwarded_allow_ips(self) -> str | None:
        """uvicorn's ``forwarded_allow_ips`` for these settings; None: believe no proxy."""
        if self.trust_forwarded_for:
            return "*"
        return ",".join(self.trusted_proxies) or None

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from gateway.http.cors import ORIGIN_RULE, valid_origin

        for origin in value:
            if not valid_origin(origin):
                raise ValueError(f"{origin!r} is not {ORIGIN_RULE} (lowercase, no path)")
        return value


class TracingSettings(Strict):
    """OpenTelemetry traces over OTLP/HTTP (gateway.tracing); off without an endpoint."""

    # The collector's traces endpoint, e.g. http://otel-collector:4318/v1/traces.
    endpoint: str | None = None
    service_name: str = Field("portcullis", min_length=1, max_length=100)
    # The share of requests traced that come without a caller's traceparent (one that comes
    # with one keeps its sampling decision).
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    # An environment variable holding the collector's headers (an API key), as
    # OTEL_EXPORTER_OTLP_HEADERS spells them: name=value,name2=value2.
    headers_env: str | None = None
    batch_size: int = Field(512, ge=1, le=10_000)
    interval_s: float = Field(2.0, gt=0, le=60)
    max_queue: int = Field(8192, ge=1, le=1_000_000)  # spans held while the collector is slow
    timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("endpoint: an http(s) URL (an OTLP/HTTP traces endpoint)")
        if parts.username or parts.password or parts.fragment:
            raise ValueError("endpoint: no credentials in the URL (use headers_env)")
        return v


class DatabaseSettings(Strict):
    url: str | None = None  # default: SQLite file under data_dir
    pool_size: int = Field(10, ge=1, le=200)
    # How long a new PostgreSQL connection may take before the work that asked for it fails
    # (a 503 on the request path and the admin API); asyncpg's own default is 60 s.
    connect_timeout_s: float = Field(5.0, gt=0, le=120)


class RedisSettings(Strict):
    url: str | None = None  # None: limits and revocations kept in-process (one replica only)


class KeySettings(Strict):
    prefix: str = Field("pcs", pattern=r"^[a-z]{2,8}$")
    # The HMAC secret that keys are hashed with; kept outside the database. Default: a file
    # under data_dir created on first start with 0600 permissions.
    secret_file: Path | None = None
    secret_env: str | None = None
    # How long a cached principal is trusted; without Redis, how long a revocation made elsewhere
    # takes to reach this replica (with Redis it is announced at once: gateway.revocations).
    cache_ttl_s: float = Field(5.0, ge=0, le=300)
    # How long a key not in the cache may take to look up before the request is refused with
    # 503 key_store_unavailable (the database stopped, frozen or out of connections).
    lookup_deadline_ms: int = Field(1000, ge=10, le=30000)

    @field_validator("prefix")
    @classmethod
    def _not_a_session(cls, v: str) -> str:
        # console sessions from single sign-on are pcc_... (gateway.console_sessions)
        if v == "pcc":
            raise ValueError("'pcc' is the console sessions' prefix; choose another")
        return v


class SharedLimits(Strict):
    """What every key of a team or a tenant shares per minute and at once (``limits.teams``,
    ``limits.tenants``), on top of each key's own limits; 0: none."""

    requests_per_minute: int = Field(0, ge=0)
    tokens_per_minute: int = Field(0, ge=0)
    max_parallel: int = Field(0, ge=0, le=100_000)


class LimitSettings(Strict):
    requests_per_minute: int = Field(600, ge=0)  # per key; 0 disables
    tokens_per_minute: int = Field(200_000, ge=0)  # per key; 0 disables
    # Requests in flight at once per key (a stream counts until it ends): 429
    # parallel_limit_exceeded past it; 0 (the default) disables. A key may carry its own.
    max_parallel: int = Field(0, ge=0, le=100_000)
    # How "a minute" is counted. bucket (the default): a token bucket refilling continuously —
    # a full minute's worth at once, then one every 60 / N s. sliding: each request and its
    # tokens come back 60 s after they were taken — never more than N in any 60 s
    # (gateway.limit_window). Applies to the keys' and the shared limits alike.
    window: Literal["bucket", "sliding"] = "bucket"
    deadline_ms: int = Field(100, ge=1, le=5000)
    # With redis.url: what happens while Redis does not answer within deadline_ms. None (the
    # default): refuse, 503 limiter_unavailable. A share in (0, 1]: each replica keeps serving
    # from buckets of its own holding that share of every key's limits (0.5 with two replicas:
    # never above the limit in all), until Redis answers again (gateway.limiter).
    redis_fallback_share: float | None = Field(None, gt=0, le=1)
    # Shadow mode: what these limits would refuse is let through, counted
    # (portcullis_shadow_refusals_total) and named in its audit record (shadowed) — to see whom
    # new limits would stop before they do (gateway.admission).
    shadow: bool = False
    # What every person's keys share (a key's user, within its tenant), unless ``users`` names
    # them: a second or third key is no way round a person's limits (gateway.admission).
    user: SharedLimits | None = None
    users: dict[str, SharedLimits] = Field(default_factory=dict)
    # Team or tenant name -> the limits its keys share; a request is held to its key's, its
    # person's, its team's and its tenant's.
    teams: dict[str, SharedLimits] = Field(default_factory=dict)
    tenants: dict[str, SharedLimits] = Field(default_factory=dict)

    @field_validator("users", "teams", "tenants")
    @classmethod
    def _names(cls, v: dict[str, SharedLimits]) -> dict[str, SharedLimits]:
        from audit.shapes import IDENTIFIER_CHARS, is_name

        for name in v:
            if not is_name(name) or len(name) > 200:
                raise ValueError(f"names: 1-200 {IDENTIFIER_CHARS} ({name[:40]!r})")
        return v

    def shared(
        self, user: str, team: str | None, tenant: str
    ) -> list[tuple[str, str, SharedLimits]]:
        """The shared limits a key of ``user``, ``team`` and ``tenant`` is held to besides its
        own: (``user``, ``team`` or ``tenant``, the bucket's name, its limits), in that order (a
        person's bucket is ``<tenant>|<user>``: ``|`` is in no name)."""
        out = []
        if (limits := self.users.get(user, self.user)) is not None:
            out.append(("user", f"{tenant}|{user}", limits))
        if team is not None and (limits := self.teams.get(team)) is not None:
            out.append(("team", team, limits))
        if (limits := self.tenants.get(tenant)) is not None:
            out.append(("tenant", tenant, limits))
        return out


class WebhookSettings(Strict):
    """Where budget alerts are posted (gateway.alerts): a JSON body, signed when a secret is
    given (``x-portcullis-signature: t=<unix time>,v1=<HMAC-SHA256 hex of "<t>.<body>">``)."""

    url: str
    # The signing secret: from an environment variable or a file, never inline; none: unsigned.
    secret_env: str | None = None
    secret_file: Path | None = None
    timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http(s) URL")
        if parts.scheme == "http" and not local_http(v):
            raise ValueError("https (plain http only on this machine: 127.0.0.1, localhost)")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL (use secret_env or secret_file)")
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSettings:
        if self.secret_env and self.secret_file:
            raise ValueError("give secret_env or secret_file, not both")
        return self

    def secret(self) -> bytes | None:
        """The signing secret, or None (unsigned) when none is configured or it is missing."""
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            return value.encode() if value else None
        if self.secret_file:
            try:
                text = self.secret_file.read_text().strip()
            except OSError:
                return None
            return text.encode() if text else None
        return None


Period = Literal["day", "week", "month"]


class NamedBudget(Strict):
    """A person's, team's or tenant's budget renewing on a period of its own
    (``teams: {ops: {usd: 50, period: day}}``); a bare number renews on ``budgets.period``."""

    usd: float = Field(ge=0, le=1_000_000_000)
    period: Period | None = None  # None: budgets.period


class BudgetSettings(Strict):
    """Spend budgets (gateway.budgets): what a key, or a whole team, may spend per period, in
    US dollars counted from the backends' ``prices``; past it, 429 ``spend_budget_exceeded``
    until the period renews. Off unless a budget is given."""

    # The calendar period a budget renews on, in UTC: day, week (ISO, from Monday) or month.
    period: Period = "month"
    # Every key's budget unless it has its own (``keys create --budget-usd``); None or 0: none.
    key_usd: float | None = Field(None, ge=0, le=1_000_000_000)
    # Every person's budget across all their keys (a key's user, within its tenant); None or 0:
    # none. ``users`` sets it for some people by name.
    user_usd: float | None = Field(None, ge=0, le=1_000_000_000)
    # The period keys' budgets renew on (unless a key has its own, ``--budget-period``), and
    # people's (``user_usd``, and ``users`` given as a number); None: ``period``.
    key_period: Period | None = None
    user_period: Period | None = None
    # In users, teams and tenants a budget is US dollars (renewing on ``period``) or
    # ``{usd: 50, period: day}`` (renewing on its own).
    users: dict[str, float | NamedBudget] = Field(default_factory=dict)
    # Team name -> the budget the team's keys share (on top of each key's and person's own).
    teams: dict[str, float | NamedBudget] = Field(default_factory=dict)
    # Tenant name -> the budget every key of the tenant shares.
    tenants: dict[str, float | NamedBudget] = Field(default_factory=dict)
    # The shares of a budget whose crossing is announced, once per scope and period whichever
    # replica sees it: a log line, portcullis_budget_alerts_total and a post to each webhook.
    alert_at: tuple[float, ...] = (0.8, 1.0)
    webhooks: tuple[WebhookSettings, ...] = ()
    # How often each replica adds what it charged to the shared ledger and reads back the
    # others' spend: a crash loses at most this much spend, and other replicas see it this late.
    sync_s: float = Field(2.0, ge=0.1, le=60)
    # How long a request waits for a scope's spend to be read the first time this period before
    # it is refused (503 database_unavailable): a budget is not waived when it cannot be read.
    deadline_ms: int = Field(1000, ge=10, le=30_000)
    # Shadow mode: a request of a spent budget is let through, counted
    # (portcullis_shadow_refusals_total{limit="budget"}) and named in its audit record
    # (shadowed: budget:<scope>); alerts are still sent (gateway.admission).
    shadow: bool = False

    @field_validator("alert_at")
    @classmethod
    def _shares(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) > 10 or not all(0 < x <= 1 for x in v):
            raise ValueError("at most 10 shares of a budget, each above 0 and at most 1")
        return tuple(sorted(set(v)))

    @field_validator("teams", "users", "tenants")
    @classmethod
    def _named(cls, v: dict[str, float | NamedBudget]) -> dict[str, float | NamedBudget]:
        from audit.shapes import IDENTIFIER_CHARS, is_name

        for name, value in v.items():
            if not is_name(name) or len(name) > 200:
                raise ValueError(f"names: 1-200 {IDENTIFIER_CHARS} ({name[:40]!r})")
            usd = value.usd if isinstance(value, NamedBudget) else value
            if not 0 <= usd <= 1_000_000_000:
                raise ValueError(f"[{name!r}]: US dollars from 0 to 1000000000")
        return v

    def named(
        self, kind: Literal["users", "teams", "tenants"], name: str
    ) -> tuple[float, Period | None] | None:
        """The budget ``users``, ``teams`` or ``tenants`` sets for ``name`` (US dollars, and its
        own period or None), or None when it names no such one."""
        value = getattr(self, kind).get(name)
        if isinstance(value, NamedBudget):
            return value.usd, value.period
        return None if value is None else (value, None)


class RequestLimits(Strict):
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_messages: int = Field(1024, ge=1, le=100_000)
    max_n: int = Field(8, ge=1, le=128)
    max_tokens: int = Field(131_072, ge=1)
    max_json_depth: int = Field(32, ge=4, le=256)
    max_stop: int = Field(4, ge=1, le=64)
    max_tools: int = Field(128, ge=1, le=1024)
    max_embedding_inputs: int = Field(2048, ge=1, le=100_000)
