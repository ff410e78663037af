"""The gateway's parts, built once from the settings (``build_services``) and closed in order
(``close_services``): the key service, the limiter, the policy engine, the PII guard, the audit
sink, the upstream pool, the router, budgets, health checks, tracing, single sign-on. The app
factory (:mod:`gateway.http.app`) calls them in its lifespan; ``Components`` lets tests and
embedders put their own parts in."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from gateway.admission import warn_if_shadowed
from gateway.alerts import BudgetAlerts
from gateway.audit_sink import AuditSink
from gateway.budgets import Budgets
from gateway.capture import Capture
from gateway.catalog import Catalog
from gateway.config import Settings
from gateway.config_archive import (
    archive_config,
    config_archive,
    config_document,
    document_hash,
)
from gateway.evidence import bundle_archive
from gateway.health import HealthChecks
from gateway.keys import KeyService
from gateway.limiter import build_limiter
from gateway.metrics import Metrics, StateCollector
from gateway.pii.contract import PiiGuard
from gateway.reload import backend_credentials
from gateway.revocations import RedisRevocations
from gateway.routing import Router as BackendRouter
from gateway.secrets_store import ServerSecret, load_server_secret
from gateway.services import Decider, Services
from gateway.storage.db import create_engine_for
from gateway.upstream import Upstream

__all__ = ["Components", "build_services", "close_services"]

log = logging.getLogger("portcullis")


@dataclass(slots=True)
class Components:
    """Parts to use instead of the configured ones (tests; embedding)."""

    policy: Decider | None = None
    pii: PiiGuard | None = None
    audit: AuditSink | None = None
    pii_disabled: bool = False


def _admin_token(settings: Settings) -> str | None:
    a = settings.admin
    if a.token_file is not None and a.token_file.exists():
        return a.token_file.read_text().strip() or None
    if a.token_env:
        return os.environ.get(a.token_env) or None
    return None


async def build_services(settings: Settings, components: Components) -> Services:
    warn_if_shadowed(settings)
    metrics_ = Metrics()
    secret = load_server_secret(
        settings.data_dir, settings.keys.secret_file, settings.keys.secret_env
    )
    url = settings.database_url()
    engine = create_engine_for(
        url, settings.database.pool_size, settings.database.connect_timeout_s
    )
    policy = components.policy
    if policy is None:
        from gateway.policy.client import build_policy_client

        # every bundle loaded is kept by revision: an evidence pack shows what decided a period
        policy = await build_policy_client(
            settings.policy, metrics_.registry, archive=bundle_archive(settings.data_dir)
        )
    pii = components.pii
    if pii is None and settings.pii.enabled and not components.pii_disabled:
        from gateway.pii import build_guard

        pii = build_guard(settings.pii, secret.derive("pii"), settings.audit.record_subject_digests)
    if pii is None and not settings.pii.enabled:
        log.warning(
            "pii.enabled is false: prompts are not inspected, so the policy's PII actions "
            "(pseudonymise, redact, block, ...) are not applied to any request"
        )
    audit = components.audit
    if audit is None:
        from audit.sink import build_sink

        audit = build_sink(settings.audit, url, settings.data_dir)
    if pii is not None:
        await pii.ready()  # load the NER model now, not on the first request
    await audit.start()
    # the configuration's document, kept by the hash every record of this run carries
    document = config_document(settings)  # serialised once: archived, and hashed below
    await asyncio.to_thread(archive_config, document, config_archive(settings.data_dir))
    credentials, unusable = backend_credentials(settings.backends)
    upstream = Upstream(credentials)
    await upstream.start()
    keys = KeyService(
        engine,
        secret,
        settings.keys.prefix,
        settings.keys.cache_ttl_s,
        lookup_deadline_s=settings.keys.lookup_deadline_ms / 1000,
        revocations=RedisRevocations(settings.redis.url) if settings.redis.url else None,
        recorder=audit.record,  # key creation, limits and revocation: "key" entries
    )
    await keys.start()
    metrics_.start()  # the event-loop heartbeat (portcullis_event_loop_lag_seconds)
    services = Services(
        settings=settings,
        engine=engine,
        secret=secret,
        keys=keys,
        limiter=build_limiter(settings.redis.url, settings.limits),
        catalog=Catalog(settings.backends),
        policy=policy,
        pii=pii,
        audit=audit,
        router=BackendRouter(unusable=unusable),
        upstream=upstream,
        metrics=metrics_,
        config_hash=document_hash(document),
        digest_key=secret.derive("audit-digest"),
        admin_token=_admin_token(settings),
        capture=_capture(settings, audit, metrics_, secret),
        sso=_sso(settings, secret, engine),
        budgets=Budgets(engine, metrics_, BudgetAlerts(engine, metrics_)),
    )
    services.budgets.start(lambda: services.settings.budgets)  # type: ignore[union-attr]
    metrics_.registry.register(StateCollector(services))
    services.health = HealthChecks(services)
    services.health.start()
    if settings.tracing.endpoint is not None:
        from gateway.tracing import Tracer

        services.tracer = Tracer(settings.tracing, metrics_.registry)
        services.tracer.start()
    return services


def _sso(settings: Settings, secret: ServerSecret, engine: Any) -> Any:
    """The OpenID Connect client for console sign-in (admin.sso), when configured."""
    if settings.admin.sso is None:
        return None
    from gateway.sso import OidcClient

    if settings.admin.sso.client_secret() is None:
        log.warning("admin.sso: the client secret is not available; sign-in will fail until it is")
    return OidcClient(settings.admin.sso, secret, engine)


def _capture(
    settings: Settings, audit: Any, metrics_: Metrics, secret: ServerSecret
) -> Capture | None:
    """Content capture when the operator turned it on, sealed in the audit store's database
    (gateway.capture); a store without one (tests' in-memory sinks) cannot, and says so."""
    if not settings.audit.content_capture:
        return None
    engine = getattr(audit, "engine", None)
    if engine is None:
        log.warning("audit.content_capture is true, but this audit store cannot hold content")
        return None
    from audit.vault import ContentVault

    # tenant keys stored wrapped under the server secret: a copy of the database opens none
    vault = ContentVault.under(engine, getattr(audit, "writer_id", "gateway:0:0"), secret)
    return Capture(vault, settings.audit.intent_deadline_ms / 1000, metrics_)


async def close_services(services: Services) -> None:
    if services.health is not None:
        await services.health.close()
    if services.tracer is not None:
        await services.tracer.close()
    await services.metrics.close()
    await services.upstream.close()
    await services.policy.close()
    if services.pii is not None:
        await services.pii.close()
    await services.audit.close()
    await services.limiter.close()
    if services.budgets is not None:
        await services.budgets.close()
    await services.keys.close()
    if services.sso is not None:
        await services.sso.close()
    await services.engine.dispose()
