"""The long-lived parts the pipeline uses, built once per app from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit_sink import AuditSink
from gateway.budgets import Budgets
from gateway.capture import Capture
from gateway.catalog import Catalog
from gateway.config import Settings
from gateway.health import HealthChecks
from gateway.keys import KeyService
from gateway.limiter import Limiter
from gateway.metrics import Metrics
from gateway.pii.contract import PiiGuard
from gateway.policy.contract import Decision
from gateway.routing import Router
from gateway.secrets_store import ServerSecret
from gateway.sso import OidcClient
from gateway.tracing import Tracer
from gateway.upstream import Upstream

__all__ = ["Decider", "Services"]


class Decider(Protocol):
    """The policy client: deadline, validation and caching around a PolicyEngine."""

    @property
    def revision(self) -> str: ...

    async def decide(
        self, policy_input: Mapping[str, Any], candidates: tuple[str, ...]
    ) -> Decision: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    secret: ServerSecret
    keys: KeyService
    limiter: Limiter
    catalog: Catalog
    policy: Decider
    pii: PiiGuard | None
    audit: AuditSink
    router: Router
    upstream: Upstream
    metrics: Metrics
    config_hash: str
    digest_key: bytes
    admin_token: str | None = None
    # Sealing request and answer when policy obliges it (audit.content_capture; gateway.capture).
    capture: Capture | None = None
    # Console sign-in through an OpenID Connect provider (admin.sso; gateway.sso).
    sso: OidcClient | None = None
    # Spend budgets per key and team, and the spend ledger behind them (gateway.budgets).
    budgets: Budgets | None = None
    # OpenTelemetry traces (tracing.endpoint; gateway.tracing).
    tracer: Tracer | None = None
    # Active health checks of the backends (backends[].health_check; gateway.health).
    health: HealthChecks | None = None
