"""The app factory: ``create_app(settings)`` builds every part once and wires the routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router

from gateway.assembly import Components, build_services, close_services
from gateway.config import Settings
from gateway.errors import Cause, GatewayError
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
from gateway.pipeline import Pipeline
from gateway.reload import Reloader, install_sighup
from gateway.strays import abandon

__all__ = ["Components", "GatewayApp", "create_app"]

log = logging.getLogger("portcullis")


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
