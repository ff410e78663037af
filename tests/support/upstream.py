"""A real OpenAI-compatible HTTP server on 127.0.0.1 for end-to-end tests.

Behaviour per request is chosen by the model name's suffix or by ``FakeUpstream.mode``:
``normal``, ``slow`` (delay before answering), ``error`` (status ``error_status``),
``stall`` (stream stops after two chunks and hangs), ``tiny`` (stream split into 1-3 byte
chunks), ``echo`` (answer with the last user message, so what arrived is visible).
``recite`` (answer with the first message's content, or the completion's prompt: a model
repeating its system prompt). ``piece_chars`` splits a streamed answer into pieces of that many
characters instead of words.
``raw_json`` (any JSON value) is the whole answer to a non-streamed request when set, and
``raw_sse`` (bytes) the whole body of a streamed one: answers of any shape, for fuzzing.
``error_body`` replaces the JSON body of an ``error`` answer; ``redirect_to`` makes every answer a
307 redirect there. ``refuse_stream_options`` answers 400 to a body with ``stream_options``, as strict servers
(older Azure OpenAI API versions) do.
Every received request (headers and JSON) is kept in ``received`` — the evidence of what left.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeUpstream"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeUpstream:
    mode: str = "normal"
    error_status: int = 500
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    retry_after: str | None = None
    reply: str = "Hello from the fake upstream."
    stream_chunks: list[str] | None = None
    piece_chars: int = 0  # when set: a streamed answer in pieces of this many characters
    refuse_stream_options: bool = False
    done_linger_s: float = 0.0  # wait between a stream's [DONE] and the end of the response
    raw_json: Any = None  # when not None: the answer to a non-streamed request, as it is
    raw_sse: bytes | None = None  # when set: the whole body of a streamed answer, as it is
    # streamed answers in turn, one per request (before raw_sse): an agent's turns scripted
    sse_queue: list[bytes] = field(default_factory=list)
    error_body: Any = None  # when not None: the JSON body of an ``error`` answer, as it is
    redirect_to: str | None = None  # when set: every answer is a 307 to this URL
    received: list[dict[str, Any]] = field(default_factory=list)
    # GET /v1/models (a health check's probe): the headers of each, apart from ``received``
    probes: list[dict[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.mode, self.error_status, self.delay_s, self.chunk_delay_s = "normal", 500, 0.0, 0.0
        self.retry_after, self.stream_chunks, self.piece_chars = None, None, 0
        self.refuse_stream_options = False
        self.done_linger_s = 0.0
        self.raw_json, self.raw_sse, self.error_body = None, None, None
        self.sse_queue.clear()
        self.redirect_to = None
        self.reply = "Hello from the fake upstream."
        self.received.clear()
        self.probes.clear()
        self.cancelled.clear()

    # -- server ----------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self.port = _free_port()
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_post("/v1/completions", self._completions)
            app.router.add_post("/v1/embeddings", self._embeddings)
            app.router.add_get("/v1/models", self._models)
            self._runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
            )
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:

            async def shutdown() -> None:
                assert self._runner is not None
                await self._runner.cleanup()

            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            except TimeoutError:
                pass  # a stalled handler is still sleeping; the thread is a daemon
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def wait_cancelled(self, timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.cancelled:
                return True
            time.sleep(0.02)
        return False

    # -- handlers --------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = json.loads(raw)
        self.received.append(
            {"headers": dict(request.headers), "json": body, "path": request.path, "raw": raw}
        )
        return body

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's model list, as a health check reads it (fails in ``error`` mode too)."""
        self.probes.append(dict(request.headers))
        failed = await self._maybe_fail()
        if failed is not None:
            return failed
        return web.json_response({"object": "list", "data": [{"id": "gpt-test"}]})

    async def _maybe_fail(self, body: dict[str, Any] | None = None) -> web.Response | None:
        if self.redirect_to is not None:
            return web.Response(status=307, headers={"Location": self.redirect_to})
        if self.refuse_stream_options and body is not None and "stream_options" in body:
            return web.json_response(
                {"error": {"message": "Unrecognized request argument: stream_options"}},
                status=400,
            )
        if self.delay_s:
            try:
                await asyncio.sleep(self.delay_s)
            except asyncio.CancelledError:
                self.cancelled.append("delayed request")
                raise
        if self.mode == "error":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            default = {"error": {"message": "upstream secret detail sk-upstream-XYZ", "type": "x"}}
            return web.json_response(
                default if self.error_body is None else self.error_body,
                status=self.error_status,
                headers=headers,
            )
        return None

    def _text_for(self, body: dict[str, Any]) -> str:
        if self.mode == "echo":
            msgs = body.get("messages") or []
            return json.dumps(msgs[-1].get("content")) if msgs else json.dumps(body.get("prompt"))
        if self.mode == "recite":
            msgs = body.get("messages") or []
            said = msgs[0].get("content") if msgs else body.get("prompt")
            return f"My instructions say: {said if isinstance(said, str) else json.dumps(said)}"
        return self.reply

    async def _raw(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
        if body.get("stream") and (self.sse_queue or self.raw_sse is not None):
            raw = self.sse_queue.pop(0) if self.sse_queue else self.raw_sse
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(raw or b"")
            await resp.write_eof()
            return resp
        if not body.get("stream") and self.raw_json is not None:
            return web.json_response(self.raw_json)
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        failed = await self._maybe_fail(body)
        if failed is not None:
            return failed
        raw = await self._raw(request, body)
        if raw is not None:
            return raw
        text = self._text_for(body)
        model = body.get("model")
        if body.get("stream"):
            return await self._stream(request, body, text, model, chat=True)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if body.get("tools"):
            tool = body["tools"][0]["function"]["name"]
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": tool, "arguments": json.dumps({"q": text})},
                    }
                ],
            }
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": i,
                        "message": message,
                        "finish_reason": "stop",
                        **({"logprobs": _logprobs(text)} if body.get("logprobs") else {}),
                    }
                    for i in range(body.get("n") or 1)
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        failed = await self._maybe_fail(body)
        if failed is not None:
            return failed
        raw = await self._raw(request, body)
        if raw is not None:
            return raw
        text = self._text_for(body)
        if body.get("stream"):
            return await self._stream(request, body, text, body.get("model"), chat=False)
        return web.json_response(
            {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            }
        )

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        failed = await self._maybe_fail(body)
        if failed is not None:
            return failed
        raw = await self._raw(request, body)
        if raw is not None:
            return raw
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i, _ in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], text: str, model: Any, chat: bool
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        n = self.piece_chars
        pieces = self.stream_chunks or (
            [text[i : i + n] for i in range(0, len(text), n)]
            if n
            else [w + " " for w in text.split(" ")]
        )
        events = []
        for i, piece in enumerate(pieces):
            if chat:
                delta: dict[str, Any] = {"content": piece}
                if i == 0:
                    delta["role"] = "assistant"
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
                if body.get("logprobs"):  # as OpenAI: each chunk's tokens spell its delta
                    choice["logprobs"] = _logprobs(piece)
            else:
                choice = {"index": 0, "text": piece, "finish_reason": None}
            events.append(
                {
                    "id": "x",
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": 1,
                    "model": model,
                    "choices": [choice],
                }
            )
        final: dict[str, Any] = (
            {"index": 0, "delta": {}, "finish_reason": "stop"}
            if chat
            else {"index": 0, "text": "", "finish_reason": "stop"}
        )
        events.append(
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [final],
            }
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            for ev in events:  # as OpenAI: every chunk carries "usage": null, then the total
                ev["usage"] = None
            events.append(
                {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 11,
                        "completion_tokens": len(pieces),
                        "total_tokens": 11 + len(pieces),
                    },
                }
            )
        try:
            for n, ev in enumerate(events):
                data = f"data: {json.dumps(ev)}\n\n".encode()
                if self.mode == "stall" and n == 2:
                    await asyncio.sleep(3600)
                if self.mode == "tiny":
                    for k in range(0, len(data), 2):
                        await resp.write(data[k : k + 2])
                else:
                    await resp.write(data)
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            await resp.write(b"data: [DONE]\n\n")
            if self.done_linger_s:
                await asyncio.sleep(self.done_linger_s)
            await resp.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled.append(str(body.get("model")))
            raise
        return resp


def _logprobs(text: str) -> dict[str, Any]:
    """``logprobs`` for an answer asked for them: its text in 3-character tokens, each -0.25
    (a placeholder is spelled over several, as a model's tokeniser spells it)."""
    tokens = [text[i : i + 3] for i in range(0, len(text), 3)]
    return {
        "content": [
            {"token": t, "logprob": -0.25, "bytes": list(t.encode()), "top_logprobs": []}
            for t in tokens
        ],
        "refusal": None,
    }
