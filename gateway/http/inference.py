"""The OpenAI-compatible routes over :class:`gateway.pipeline.Pipeline`: the inference routes on
raw ASGI (:func:`serve`; ``/v1/responses`` and Anthropic's ``/v1/messages`` through their
:mod:`gateway.http.dialects`), ``GET /v1/models`` as a litestar handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, asgi, get, route
from litestar.datastructures import State
from litestar.params import FromPath

from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.http.anthropic import anthropic_model
from gateway.http.anthropic import error_body as anthropic_error_body
from gateway.http.body import client_address, read_json, request_headers, with_api_key
from gateway.http.dialects import DIALECTS, Dialect
from gateway.http.errors import unexpected
from gateway.http.raw import error_headers, send_error, send_json
from gateway.http.request_id import request_id
from gateway.http.validate import validate_request
from gateway.keys import AddressNotAllowed
from gateway.limiter import Reservation
from gateway.outcome import finish
from gateway.pipeline import Pipeline
from gateway.services import Services
from gateway.streaming import DONE, EventTranslator

__all__ = [
    "ENDPOINTS",
    "chat_completions",
    "completions",
    "drain",
    "embeddings",
    "list_models",
    "messages_create",
    "responses_create",
    "responses_retrieve",
    "retrieve_model",
    "serve",
]

_encode = msgspec.json.encode
log = logging.getLogger("portcullis.errors")

# The inference routes run on raw ASGI (``serve``): the gateway's own app class sends
# them here before litestar's router, middleware and request/response objects, which cost a
# tenth of the gateway's CPU per request (bench/core, docs/benchmarks.md). Everything else —
# admin, ops, /v1/models — is an ordinary litestar route.
ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",  # served as chat (gateway.http.dialects)
    "/v1/messages": "messages",  # Anthropic's, served as chat (gateway.http.dialects)
}
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_ALLOW_POST = {"Allow": "POST"}


async def serve(scope: Any, receive: Any, send: Any, endpoint: str, state: Any) -> None:
    """One inference request, start to finish, on raw ASGI. Never raises to the server: every
    outcome is an OpenAI-shaped answer (or, once a stream has begun, its error event), and every
    request, refused or not, gets its completion record from :func:`finish`."""
    services: Services = state.services
    pipeline: Pipeline = state.pipeline
    dialect = DIALECTS.get(endpoint)  # served as chat; recorded as the API the caller used
    ctx = RequestContext(
        request_id=request_id(scope),
        endpoint="chat" if dialect else endpoint,
        client_addr=client_address(scope),
        api=endpoint if dialect else None,
    )
    if services.tracer is not None:
        services.tracer.begin(ctx, scope)
    rid = ctx.request_id.encode()
    reservation: Reservation | None = None
    translator: EventTranslator | None = None  # a translated stream's, once begun
    started = False  # a response has begun: errors can no longer be sent as a body
    services.metrics.in_flight.inc()
    try:
        if scope["method"] != "POST":
            raise GatewayError(
                Cause.METHOD_NOT_ALLOWED, "Method not allowed on this path.", headers=_ALLOW_POST
            )
        authorization, ctype, length = request_headers(
            scope, dialect.key_header if dialect else None
        )
        try:
            ctx.principal = await services.keys.authenticate(authorization, ctx.client_addr)
        except AddressNotAllowed as refused:  # recorded as this key's request, refused
            ctx.principal = refused.principal
            services.metrics.denials.labels(refused.cause.code).inc()
            raise
        limits = services.settings.requests
        body, size = await read_json(
            receive, ctype, length, limits.max_body_bytes, limits.max_json_depth
        )
        if dialect:
            parsed = dialect.parse(body, limits, size, services.catalog.passthrough)
        else:
            parsed = validate_request(endpoint, body, limits, size, services.catalog.passthrough)
        ctx.parsed = parsed
        ctx.caller_body = body  # a translated API's request as sent, before its chat form
        reservation = await pipeline.reserve(ctx, parsed)
        if parsed.stream:

            async def stream() -> None:
                nonlocal started, translator
                relay = await pipeline.run_stream(ctx, parsed)  # up to the upstream's first byte
                chunks = relay
                if dialect:  # chat chunks in, the API's own events out
                    translator = dialect.translator(body, dialect.answer_id(ctx.request_id))
                    chunks = translator.translate(relay)
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                *_SSE_HEADERS,
                                (b"x-request-id", rid),
                                *reservation.headers(),
                                *ctx.budget_headers,
                            ],
                        }
                    )
                    started = True
                    await _relay(send, chunks)
                finally:
                    if chunks is not relay:
                        await chunks.aclose()  # type: ignore[attr-defined]
                    await relay.aclose()  # type: ignore[attr-defined]  # its bookkeeping

            # The client may leave before the first byte (a long prefill) as well as during it.
            await _race_disconnect(receive, stream())
            return
        answer = await _race_disconnect(receive, pipeline.run_json(ctx, parsed))
        if dialect:
            answer = dialect.from_chat(answer, body, dialect.answer_id(ctx.request_id))
            if ctx.capture:  # captured as the caller gets it (gateway.capture)
                ctx.capture[0] = answer
        await send_json(
            send, 200, _encode(answer), rid, [*reservation.headers(), *ctx.budget_headers]
        )
    except GatewayError as exc:
        if exc.cause is Cause.CLIENT_CLOSED:
            ctx.client_left()
        else:
            ctx.status, ctx.error_code = exc.status, exc.cause.code
        if not started:
            await _send_error(send, exc, rid, dialect)
    except asyncio.CancelledError:
        ctx.status, ctx.error_code = Cause.CLIENT_CLOSED.status, Cause.CLIENT_CLOSED.code
        raise
    except Exception as exc:  # noqa: BLE001 - the one boundary: type only (messages may carry content)
        err = unexpected(exc, scope["path"])  # 503 if the database did not answer, else 500
        ctx.status, ctx.error_code = err.status, err.cause.code
        if not started:
            await _send_error(send, err, rid, dialect)
        else:  # a stream that failed after its first byte ends with an error event (and [DONE]
            # for chat; response.failed for a Responses stream, error for a Messages one)
            end = _sse_error(err) if translator is None else translator.fail(err)
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": end})
    finally:
        services.metrics.in_flight.dec()
        _background(finish(services, ctx, reservation))


async def _send_error(send: Any, err: GatewayError, rid: bytes, dialect: Dialect | None) -> None:
    if dialect is None or dialect.error_body is None:
        await send_error(send, err, rid)
    else:  # the API's own envelope, its status and headers (Retry-After, ...)
        body = _encode(dialect.error_body(err, rid.decode()))
        await send_json(send, err.status, body, rid, error_headers(err))


def _sse_error(err: GatewayError) -> bytes:
    return b"data: " + _encode(err.body()) + b"\n\n" + DONE


async def _relay(send: Any, chunks: AsyncIterator[bytes]) -> None:
    """Send each chunk as it comes; end the response only once the relay has finished. (Ending
    it with the chunk that carries ``[DONE]`` saves a write, but the server then reports the
    client gone to the disconnect watcher while the relay still reads the backend's end: a
    served stream was recorded as 499.)"""
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _wait_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _race_disconnect(receive: Any, work: Any) -> Any:
    """Run ``work`` in this task; if the client goes away first, cancel it (and the upstream call).

    One watcher task per request, not two: the work stays in the handler's own task.
    """
    handler = asyncio.current_task()
    assert handler is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _wait_disconnect(receive)
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


def _route(path: str) -> Any:
    endpoint = ENDPOINTS[path]

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await serve(scope, receive, send, endpoint, scope["app"].state)

    handler.__name__ = handler.__qualname__ = endpoint
    # Reached only when the app's fast path did not take the request (another spelling of the
    # path that litestar's router accepts, e.g. a trailing slash): same code either way.
    return asgi(path, copy_scope=False)(handler)


chat_completions = _route("/v1/chat/completions")
completions = _route("/v1/completions")
embeddings = _route("/v1/embeddings")
responses_create = _route("/v1/responses")
messages_create = _route("/v1/messages")


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """Only models with at least one backend that policy permits for this caller. Anthropic's
    SDKs (which send ``anthropic-version``) get Anthropic's list shape and error envelope."""
    services: Services = state.services
    anthropic_shape = _anthropic_caller(request)
    try:
        principal = await services.keys.authenticate(
            _authorization(request, anthropic_shape), client_address(request.scope)
        )
        from gateway.models_view import permitted_models

        data = await permitted_models(services, principal)
    except GatewayError as exc:
        if anthropic_shape:
            return _anthropic_error(request, exc)
        raise
    if anthropic_shape:
        models = [anthropic_model(m) for m in data]
        body: dict[str, Any] = {
            "data": models,
            "has_more": False,
            "first_id": models[0]["id"] if models else None,
            "last_id": models[-1]["id"] if models else None,
        }
    else:
        body = {"object": "list", "data": data}
    return Response(content=_encode(body), media_type="application/json")


@get("/v1/models/{model:str}")
async def retrieve_model(
    request: Request[Any, Any, Any], state: State, model: FromPath[str]
) -> Response[Any]:
    """One model, as OpenAI's ``models.retrieve`` (Anthropic's for its SDKs): 404 unless this
    caller may use it."""
    services: Services = state.services
    anthropic_shape = _anthropic_caller(request)
    try:
        principal = await services.keys.authenticate(
            _authorization(request, anthropic_shape), client_address(request.scope)
        )
        from gateway.models_view import permitted_model

        entry = await permitted_model(services, principal, model)
        if entry is None:
            raise services.catalog.not_found()
    except GatewayError as exc:
        if anthropic_shape:
            return _anthropic_error(request, exc)
        raise
    body = anthropic_model(entry) if anthropic_shape else entry
    return Response(content=_encode(body), media_type="application/json")


def _anthropic_caller(request: Request[Any, Any, Any]) -> bool:
    return "anthropic-version" in request.headers


def _authorization(request: Request[Any, Any, Any], anthropic_shape: bool) -> str | None:
    api_key = request.headers.get("x-api-key") if anthropic_shape else None
    return with_api_key(request.headers.get("authorization"), api_key)


def _anthropic_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    body = anthropic_error_body(exc, request_id(request.scope))
    return Response(
        content=_encode(body),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers,
    )


@route(
    [
        "/v1/responses/{response_id:str}",
        "/v1/responses/{response_id:str}/input_items",
        "/v1/responses/{response_id:str}/cancel",
    ],
    http_method=["GET", "POST", "DELETE"],
)
async def responses_retrieve(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """A stored response's routes (retrieve, input items, cancel, delete): the gateway stores no
    responses, so an authenticated caller gets a 404 saying so."""
    services: Services = state.services
    await services.keys.authenticate(
        request.headers.get("authorization"), client_address(request.scope)
    )
    raise GatewayError(
        Cause.NOT_FOUND,
        "The gateway stores no responses (it keeps no prompts or answers); "
        "there is nothing to retrieve, list, cancel or delete by id.",
    )
