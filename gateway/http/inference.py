"""The OpenAI-compatible routes: thin handlers over :class:`gateway.pipeline.Pipeline`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Stream

from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.http.body import decode_json, read_capped
from gateway.http.errors import render
from gateway.http.request_id import request_id
from gateway.http.validate import validate_request
from gateway.limiter import Reservation
from gateway.pipeline import Pipeline, finish
from gateway.services import Services

__all__ = ["chat_completions", "completions", "drain", "embeddings", "list_models"]

_encode = msgspec.json.encode
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _client_addr(request: Request[Any, Any, Any]) -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


def _context(request: Request[Any, Any, Any], endpoint: str) -> RequestContext:
    return RequestContext(
        request_id=request_id(request.scope),
        endpoint=endpoint,
        client_addr=_client_addr(request),
    )


async def _wait_disconnect(request: Request[Any, Any, Any]) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _handle(request: Request[Any, Any, Any], state: State, endpoint: str) -> Response[Any]:
    services: Services = state.services
    pipeline: Pipeline = state.pipeline
    ctx = _context(request, endpoint)
    reservation: Reservation | None = None
    streaming = False
    services.metrics.in_flight.inc()
    try:
        ctx.principal = await services.keys.authenticate(request.headers.get("authorization"))
        ctype = request.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise GatewayError(Cause.UNSUPPORTED_MEDIA, "Content-Type must be application/json.")
        limits = services.settings.requests
        raw = await read_capped(
            request.stream(), request.headers.get("content-length"), limits.max_body_bytes
        )
        parsed = validate_request(
            endpoint,
            decode_json(raw, limits.max_json_depth),
            limits,
            len(raw),
            services.catalog.passthrough,
        )
        ctx.parsed = parsed
        reservation = await pipeline.reserve(ctx, parsed)
        if parsed.stream:
            relay = await pipeline.run_stream(ctx, parsed)
            streaming = True
            return Stream(
                _guarded(relay, services, ctx, reservation),
                media_type="text/event-stream",
                headers=_SSE_HEADERS,
            )
        body = await _race_disconnect(request, pipeline.run_json(ctx, parsed))
        return Response(content=_encode(body), media_type="application/json", status_code=200)
    except GatewayError as exc:
        ctx.status, ctx.error_code = exc.status, exc.cause.code
        return render(exc)
    except asyncio.CancelledError:
        ctx.status, ctx.error_code = Cause.CLIENT_CLOSED.status, Cause.CLIENT_CLOSED.code
        raise
    except Exception:
        ctx.status, ctx.error_code = Cause.INTERNAL.status, Cause.INTERNAL.code
        raise  # rendered by the top-level handler; the audit record says 500
    finally:
        if not streaming:
            services.metrics.in_flight.dec()
            _background(finish(services, ctx, reservation))


async def _race_disconnect(request: Request[Any, Any, Any], work: Any) -> Any:
    """Run ``work`` in this task; if the client goes away first, cancel it (and the upstream call).

    One watcher task per request, not two: the work stays in the handler's own task.
    """
    handler = asyncio.current_task()
    assert handler is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _wait_disconnect(request)
        gone = True
        handler.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        handler.uncancel()
        raise GatewayError(Cause.CLIENT_CLOSED, "The client closed the connection.") from None
    finally:
        watcher.cancel()


async def _guarded(
    relay: AsyncIterator[bytes],
    services: Services,
    ctx: RequestContext,
    reservation: Reservation | None,
) -> AsyncIterator[bytes]:
    try:
        async for chunk in relay:
            yield chunk
    except (asyncio.CancelledError, GeneratorExit):
        ctx.status, ctx.error_code = Cause.CLIENT_CLOSED.status, Cause.CLIENT_CLOSED.code
        raise
    finally:
        await relay.aclose()  # type: ignore[attr-defined]
        services.metrics.in_flight.dec()
        _background(finish(services, ctx, reservation))


_TASKS: set[asyncio.Task[Any]] = set()


def _background(coro: Any) -> None:
    # The completion record runs outside the request's cancel scope, so a client that goes away
    # cannot cancel the record of it going away.
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def drain(timeout_s: float = 10.0) -> None:
    """Wait for pending completion records (at shutdown, before the audit store closes)."""
    if _TASKS:
        await asyncio.wait(set(_TASKS), timeout=timeout_s)


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    return await _handle(request, state, "chat")


@post("/v1/completions", status_code=200)
async def completions(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    return await _handle(request, state, "completions")


@post("/v1/embeddings", status_code=200)
async def embeddings(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    return await _handle(request, state, "embeddings")


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Only models with at least one backend that policy permits for this caller."""
    services: Services = state.services
    principal = await services.keys.authenticate(request.headers.get("authorization"))
    from gateway.models_view import permitted_models

    data = await permitted_models(services, principal)
    return Response(
        content=_encode({"object": "list", "data": data}), media_type="application/json"
    )
