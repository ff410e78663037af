"""Settings of the gateway core: server, storage, keys, admin, limits, request bounds."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from gateway.config.base import Strict

__all__ = [
    "AdminSettings",
    "DatabaseSettings",
    "KeySettings",
    "LimitSettings",
    "RedisSettings",
    "RequestLimits",
    "ServerSettings",
]


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    trust_forwarded_for: bool = False
    # Browser tools on these origins may call /v1/... cross-origin (gateway.http.cors); none by
    # default. "*": every origin (announced at start).
    cors_origins: tuple[str, ...] = Field((), max_length=100)
    cors_max_age_s: int = Field(600, ge=0, le=86400)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from gateway.http.cors import ORIGIN_RULE, valid_origin

        for origin in value:
            if not valid_origin(origin):
                raise ValueError(f"{origin!r} is not {ORIGIN_RULE} (lowercase, no path)")
        return value


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
    # GET /admin/audit/usage: ~1.6-3.5 s per 100,000 requests, so minutes on a grown trail).
    report_deadline_s: float = Field(600.0, ge=0, le=3600)


class LimitSettings(Strict):
    requests_per_minute: int = Field(600, ge=0)  # per key; 0 disables
    tokens_per_minute: int = Field(200_000, ge=0)  # per key; 0 disables
    deadline_ms: int = Field(100, ge=1, le=5000)
    # With redis.url: what happens while Redis does not answer within deadline_ms. None (the
    # default): refuse, 503 limiter_unavailable. A share in (0, 1]: each replica keeps serving
    # from buckets of its own holding that share of every key's limits (0.5 with two replicas:
    # never above the limit in all), until Redis answers again (gateway.limiter).
    redis_fallback_share: float | None = Field(None, gt=0, le=1)


class RequestLimits(Strict):
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_messages: int = Field(1024, ge=1, le=100_000)
    max_n: int = Field(8, ge=1, le=128)
    max_tokens: int = Field(131_072, ge=1)
    max_json_depth: int = Field(32, ge=4, le=256)
    max_stop: int = Field(4, ge=1, le=64)
    max_tools: int = Field(128, ge=1, le=1024)
    max_embedding_inputs: int = Field(2048, ge=1, le=100_000)
