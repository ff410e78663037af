"""The OpenAI-compatible HTTP server over an :class:`inference.engine.Engine` (aiohttp).

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (both with SSE streaming and
``stream_options.include_usage``), ``GET /v1/models``, ``GET /health``. Handlers are cancelled
when the client disconnects (``handler_cancellation``), which closes the engine stream and so
stops the generation. Logs carry sizes and counts, never prompt or answer text.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from inference.engine import Engine, EngineError
from inference.wire import (
    DEFAULT_MAX_TOKENS,
    CompletionRequest,
    WireError,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    error_body,
    new_id,
    parse_chat,
    parse_completion,
    usage,
)

__all__ = ["ENGINE_KEY", "create_app", "run_server"]

log = logging.getLogger("portcullis.runtime.server")
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("engine", Engine)
DEFAULT_MAX_TOKENS_KEY: web.AppKey[int] = web.AppKey("default_max_tokens", int)
API_KEY: web.AppKey[str] = web.AppKey("api_key", str)


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """With ``--api-key``: every route but /health needs ``Authorization: Bearer <key>``."""
    expected = request.app[API_KEY]
    if expected and request.path != "/health":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return _error(WireError(401, "invalid API key", code="invalid_api_key"))
    response: web.StreamResponse = await handler(request)
    return response


MAX_BODY = 4 * 1024 * 1024


def _error(err: WireError) -> web.Response:
    return web.json_response(error_body(err), status=err.status)


async def _body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise WireError(413, "request body too large", code="request_too_large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise WireError(413, "request body too large", code="request_too_large")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WireError(400, "the body is not valid JSON", code="invalid_json") from None


def _prompt(engine: Engine, req: CompletionRequest) -> list[int]:
    if req.messages:
        ids = engine.chat_prompt(req.messages)
    elif req.prompt_ids is not None:
        ids = list(req.prompt_ids)
    else:
        ids = engine.encode(req.prompt or "")
    if not ids:
        raise WireError(400, "the prompt is empty", param="prompt")
    if len(ids) + req.params.max_tokens > engine.max_model_len:
        raise WireError(
            400,
            f"prompt ({len(ids)} tokens) plus max_tokens ({req.params.max_tokens}) exceeds the "
            f"model's context of {engine.max_model_len} tokens",
            code="context_length_exceeded",
            param="max_tokens",
        )
    return ids


async def _deltas(
    engine: Engine, req: CompletionRequest, ids: list[int]
) -> AsyncIterator[tuple[str, str | None, int]]:
    """(text, finish_reason, completion tokens), with stop strings applied and never leaked."""
    hold = max((len(s) for s in req.stop), default=1) - 1
    text, sent, tokens = "", 0, 0
    stream = engine.generate(ids, req.params)
    try:
        async for d in stream:
            text += d.text
            tokens = d.tokens
            cut = min((i for s in req.stop if (i := text.find(s)) >= 0), default=-1)
            if cut >= 0:
                yield text[sent:cut], "stop", tokens
                return
            if d.finish_reason is not None:
                yield text[sent:], d.finish_reason, tokens
                return
            safe = max(sent, len(text) - hold)
            if safe > sent:
                yield text[sent:safe], None, tokens
                sent = safe
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _check_model(engine: Engine, req: CompletionRequest) -> None:
    if req.model != engine.model_name:
        raise WireError(
            404, f"model {req.model!r} is not served here", code="model_not_found", param="model"
        )


async def _sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    return resp


async def _send(resp: web.StreamResponse, obj: dict[str, Any]) -> None:
    await resp.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")


async def _complete(request: web.Request, chat: bool) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    started = time.monotonic()
    try:
        body = await _body(request)
        default = request.app[DEFAULT_MAX_TOKENS_KEY]
        req = parse_chat(body, default) if chat else parse_completion(body, min(default, 16))
        _check_model(engine, req)
        # Tokenising a long prompt takes milliseconds: off the event loop.
        ids = await asyncio.to_thread(_prompt, engine, req)
        if engine.overloaded():
            raise WireError(503, "the model server is at capacity; retry later", code="overloaded")
    except WireError as err:
        return _error(err)
    rid = new_id("chatcmpl" if chat else "cmpl")
    model = engine.model_name
    tokens, reason = 0, "stop"
    try:
        if not req.stream:
            parts = []
            async for text, fin, tokens in _deltas(engine, req, ids):  # noqa: B007 - read after
                parts.append(text)
                reason = fin or reason
            use = usage(len(ids), tokens)
            out = "".join(parts)
            body_out = (chat_response if chat else completion_response)(
                rid, model, out, reason, use
            )
            return web.json_response(body_out)
        resp = await _sse(request)
        if chat:
            await _send(resp, chat_chunk(rid, model, {"role": "assistant", "content": ""}))
        try:
            async for text, fin, tokens in _deltas(engine, req, ids):  # noqa: B007 - read after
                if text or fin:
                    if chat:
                        await _send(
                            resp, chat_chunk(rid, model, {"content": text} if text else {}, fin)
                        )
                    else:
                        await _send(resp, completion_chunk(rid, model, text, fin))
            if req.include_usage:
                use = usage(len(ids), tokens)
                chunk = (
                    chat_chunk(rid, model, None, use=use)
                    if chat
                    else completion_chunk(rid, model, None, use=use)
                )
                await _send(resp, chunk)
        except EngineError as err:
            # The stream is already open: end it with an error event, cleanly.
            await _send(resp, error_body(WireError(500, str(err), code="engine_error")))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
    except EngineError as err:
        return _error(WireError(500, str(err), code="engine_error"))
    finally:
        log.info(
            "request kind=%s prompt_tokens=%d completion_tokens=%d stream=%s ms=%.1f",
            "chat" if chat else "completion",
            len(ids),
            tokens,
            req.stream,
            (time.monotonic() - started) * 1000,
        )


async def _chat(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=True)


async def _completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, chat=False)


async def _models(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    return web.json_response(
        {
            "object": "list",
            "data": [
                {
                    "id": engine.model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "portcullis-runtime",
                    "max_model_len": engine.max_model_len,
                }
            ],
        }
    )


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    s = request.app[ENGINE_KEY].stats
    return web.json_response(
        {
            "requests": s.requests,
            "finished": s.finished,
            "cancelled": s.cancelled,
            "tokens": s.tokens,
            "batches": s.batches,
            "max_batch": s.max_batch,
            "active": s.active,
        }
    )


def create_app(
    engine: Engine, *, default_max_tokens: int = DEFAULT_MAX_TOKENS, api_key: str = ""
) -> web.Application:
    """The app; the engine must be started (``await engine.start()``) before serving.

    ``default_max_tokens`` bounds a chat request that names no ``max_tokens``."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_auth])
    app[ENGINE_KEY] = engine
    app[API_KEY] = api_key
    app[DEFAULT_MAX_TOKENS_KEY] = default_max_tokens
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    return app


async def run_server(
    engine: Engine,
    host: str,
    port: int,
    ready: asyncio.Event | None = None,
    *,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    api_key: str = "",
) -> None:
    """Start the engine, serve until cancelled, then close both."""
    await engine.start()
    app = create_app(engine, default_max_tokens=default_max_tokens, api_key=api_key)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("runtime serving model=%s on %s:%d", engine.model_name, host, port)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await engine.close()
