"""The app factory: ``create_app(settings)`` builds every part once and wires the routes."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Router

from gateway.alerts import BudgetAlerts
from gateway.audit_sink import AuditSink
from gateway.budgets import Budgets
from gateway.capture import Capture
from gateway.catalog import Catalog
from gateway.config import Settings
from gateway.config_archive import archive_config, config_archive, config_hash
from gateway.errors import Cause, GatewayError
from gateway.evidence import bundle_archive
from gateway.health import HealthChecks
from gateway.heap import freeze_startup_heap
from gateway.http.admin import ADMIN_HANDLERS
from gateway.http.admin_guard import admin_guard
from gateway.http.audit_admin import AUDIT_HANDLERS
from gateway.http.config_admin import CONFIG_HANDLERS
from gateway.http.console import CONSOLE_ADMIN_HANDLERS, console_handlers
from gateway.http.cors import Cors, origin_of
from gateway.http.count_tokens import count_tokens
from gateway.http.errors import EXCEPTION_HANDLERS
from gateway.http.evidence_admin import EVIDENCE_HANDLERS
from gateway.http.inference import (
    ENDPOINTS,
    chat_completions,
    completions,
    drain,
    embeddings,
    list_models,
    messages_create,
    responses_create,
    responses_retrieve,
    retrieve_model,
    serve,
)
from gateway.http.ops import healthz, metrics, readyz
from gateway.http.raw import send_error
from gateway.http.request_id import add_request_id, request_id
from gateway.http.self_service import SELF_SERVICE_HANDLERS
from gateway.http.sso import SSO_ADMIN_HANDLERS, SSO_HANDLERS
from gateway.keys import KeyService
from gateway.limiter import build_limiter
from gateway.metrics import Metrics, StateCollector
from gateway.pii.contract import PiiGuard
from gateway.pipeline import Pipeline
from gateway.reload import Reloader, backend_credentials, install_sighup
from gateway.revocations import RedisRevocations
from gateway.routing import Router as BackendRouter
from gateway.secrets_store import ServerSecret, load_server_secret
from gateway.services import Decider, Services
from gateway.storage.db import create_engine_for
from gateway.strays import abandon
from gateway.upstream import Upstream

__all__ = ["Components", "GatewayApp", "create_app"]

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
    await asyncio.to_thread(archive_config, settings, config_archive(settings.data_dir))
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
    lim = settings.limits
    metrics_.start()  # the event-loop heartbeat (portcullis_event_loop_lag_seconds)
    services = Services(
        settings=settings,
        engine=engine,
        secret=secret,
        keys=keys,
        limiter=build_limiter(
            settings.redis.url,
            lim.requests_per_minute,
            lim.tokens_per_minute,
            lim.deadline_ms,
            lim.redis_fallback_share,
        ),
        catalog=Catalog(settings.backends),
        policy=policy,
        pii=pii,
        audit=audit,
        router=BackendRouter(unusable=unusable),
        upstream=upstream,
        metrics=metrics_,
        config_hash=config_hash(settings),
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


class GatewayApp(Litestar):
    """Litestar, with POSTs to the inference paths taken before its router.

    They go straight to :func:`gateway.http.inference.serve` (raw ASGI); the same function is
    also registered as litestar routes, so any other spelling of those paths, and other methods,
    reach the same code through the router.
    """

    cors: Cors | None = None  # server.cors_origins: browser tools on other origins (/v1 only)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self.cors is not None and scope["path"].startswith("/v1/"):
                origin = origin_of(scope)
                if origin is not None:
                    if scope["method"] == "OPTIONS":
                        await self.cors.preflight(scope, origin, send)
                        return
                    if self.cors.allows(origin):
                        send = self.cors.wrap(send, origin)
            if scope["method"] == "POST":
                endpoint = ENDPOINTS.get(scope["path"])
                if endpoint is not None:
                    await serve(scope, receive, send, endpoint, self.state)
                    return
            elif scope["method"] == "HEAD" and scope["path"] in _PROBES:
                # a load balancer's probe: GET's answer without its body (RFC 9110, 9.3.2)
                scope, send = {**scope, "method": "GET"}, _without_body(send)
            if scope["path"].startswith("/admin/"):
                await self._admin(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _admin(self, scope: Any, receive: Any, send: Any) -> None:
        """An admin or console call: within its deadline, and a server span of its own when
        tracing samples it (gateway.tracing.Tracer.finish_admin)."""
        services = getattr(self.state, "services", None)
        setting, deadline = (
            admin_deadline(scope["path"], services.settings.admin)
            if services is not None
            else ("", 0.0)
        )
        tracer = services.tracer if services is not None else None
        trace = tracer.ids(scope, time.perf_counter()) if tracer is not None else None
        status = 0
        if trace is not None:
            relay = send

            async def send(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await relay(message)

        try:
            if deadline:
                await _within(super().__call__, scope, receive, send, deadline, setting)
            else:
                await super().__call__(scope, receive, send)
        finally:
            if trace is not None and tracer is not None:
                tracer.finish_admin(trace, scope, status)


_PROBES = frozenset({"/healthz", "/readyz"})
# Admin calls without the deadline: the trail's verification runs in a process of its own, with
# its own connection, and may take minutes on a grown trail.
_NO_DEADLINE = frozenset({"/admin/audit/verify"})
# Reports that read the whole range asked for in the database before they answer (a usage report
# over two million requests: ~30-70 s; the transfers register): admin.report_deadline_s, not
# admin.deadline_s.
_REPORTS = frozenset(
    {
        "/admin/audit/usage",
        "/admin/audit/transfers",
        "/admin/audit/denials",
        "/admin/audit/evidence",
    }
)


def admin_deadline(path: str, admin: Any) -> tuple[str, float]:
    """The setting that bounds an admin call on ``path`` and its seconds (0: none)."""
    if path in _NO_DEADLINE:
        return "", 0.0
    if path in _REPORTS:
        return "admin.report_deadline_s", float(admin.report_deadline_s)
    return "admin.deadline_s", float(admin.deadline_s)


async def _within(
    app: Any,
    scope: Any,
    receive: Any,
    send: Any,
    deadline_s: float,
    setting: str = "admin.deadline_s",
) -> None:
    """Run an admin call; if its answer has not started within ``deadline_s``, answer 503
    ``database_unavailable`` at once. The call is cancelled but not waited for: its clean-up
    may itself wait on the silent database (a rollback on a frozen server), and whatever it
    sends later is dropped."""
    started = answered = False

    async def tracked(message: Any) -> None:
        nonlocal started
        if answered:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    call = asyncio.ensure_future(app(scope, receive, tracked))
    try:
        done, _ = await asyncio.wait({call}, timeout=deadline_s)
    except asyncio.CancelledError:  # the server gave up on the connection: so does the call
        abandon(call)
        raise
    if call in done or started:
        await call  # finished (its outcome, raised or not), or an answer already streaming
        return
    answered = True
    abandon(call)
    log.error(
        "admin call %s %s did not start its answer within %s (%.1f s): answered "
        "503; the database is not answering",
        scope["method"],
        scope["path"],
        setting,
        deadline_s,
    )
    err = GatewayError(
        Cause.DATABASE_UNAVAILABLE,
        f"The call did not finish within {deadline_s:g} s ({setting}): the database is not "
        "answering. A change it was making may or may not have been made; check before "
        "repeating it.",
        headers={"retry-after": "5"},
    )
    await send_error(send, err, request_id(scope).encode())


def _without_body(send: Any) -> Any:
    """``send`` that passes the status and headers (content-length included) and one empty
    final body."""
    ended = False

    async def head(message: Any) -> None:
        nonlocal ended
        if message["type"] == "http.response.body":
            if ended:
                return
            ended = True
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return head


def create_app(
    settings: Settings,
    components: Components | None = None,
    *,
    freeze_heap: bool = False,
    reload_from: Callable[[], Settings] | None = None,
) -> Litestar:
    """``freeze_heap``: once everything is loaded, move the start-up heap out of the garbage
    collector's way (:mod:`gateway.heap`) — for a process that is the gateway's own (the ASGI
    entry point), not for an app embedded in someone else's process (tests).
    ``reload_from``: reads the configuration again (the file the settings came from), for
    ``kill -HUP`` and ``POST /admin/config/reload`` (:mod:`gateway.reload`)."""
    components = components or Components()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await build_services(settings, components)
        await services.limiter.warm()  # Redis's connections and scripts before the first burst
        app.state.services = services
        app.state.pipeline = pipeline = Pipeline(services)
        app.state.reloader = reloader = Reloader(services, reload_from, pipeline)
        # `kill -HUP` reloads the backends (from the file) and the policy bundle, no restart
        install_sighup(reloader, services.policy)
        if freeze_heap:  # what is loaded now lives as long as the process
            log.info("start-up heap frozen: %d objects", freeze_startup_heap())
        try:
            yield
        finally:
            await drain()
            await close_services(services)

    admin = Router(
        path="/",
        route_handlers=[
            *ADMIN_HANDLERS,
            *CONFIG_HANDLERS,
            *AUDIT_HANDLERS,
            *EVIDENCE_HANDLERS,
            *CONSOLE_ADMIN_HANDLERS,
            *SSO_ADMIN_HANDLERS,
            *SELF_SERVICE_HANDLERS,
        ],
        guards=[admin_guard],
    )
    console = [*console_handlers(), *SSO_HANDLERS] if settings.admin.console else []
    app = GatewayApp(
        route_handlers=[
            chat_completions,
            completions,
            embeddings,
            responses_create,
            responses_retrieve,
            messages_create,
            count_tokens,
            list_models,
            retrieve_model,
            healthz,
            readyz,
            metrics,
            admin,
            *console,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_request_id],
        openapi_config=None,
        debug=False,
        request_max_body_size=None,
        logging_config=None,
    )
    origins = settings.server.cors_origins
    if origins:
        app.cors = Cors(origins, settings.server.cors_max_age_s)
        if "*" in origins:
            log.warning(
                "server.cors_origins lists '*': a page on any web origin may call /v1 with a "
                "key it holds; list the origins of your browser tools instead"
            )
    return app
