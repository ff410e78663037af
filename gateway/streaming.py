"""Relaying a backend's SSE stream: restore placeholders, capture usage, end cleanly.

Events are relayed as they arrive. When the PII guard pseudonymised the prompt, each choice's
text (and tool-call arguments) passes through its own streaming restorer, which holds back no
more than one placeholder's length; what it still holds is released on the choice's
``finish_reason`` (or, when a backend sends none, in one last chunk before ``[DONE]``);
DeepSeek's ``reasoning_content`` and a ``refusal`` are restored like the content. A stream that
fails after the first byte — the backend's included, when it ends without ``[DONE]`` — ends with
an error event and ``[DONE]``, never a dangling connection. A client that leaves once it has
``[DONE]`` (the SDK may close before the backend's response has ended) was served: it is
recorded as such.

Usage is recorded from the stream's usage chunk. When the gateway asked for it and the caller
did not (``BackendSpec.stream_usage``), that chunk is not relayed and other chunks lose their
``"usage": null``, so the caller sees the stream it asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.metrics import Metrics
from gateway.pii.contract import ANSWER_TEXTS, Restorer, StreamRestorer
from gateway.prompts import WITHHELD, Screened
from gateway.routing import failure_to_error
from gateway.upstream import StreamAnswer, UpstreamFailure

__all__ = ["EventTranslator", "relay_stream", "sse_data", "sse_events"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
DONE = b"data: [DONE]\n\n"
_META = ("id", "created", "model", "system_fingerprint")


# Per choice, each restored text of a delta has its own restorer, keyed -1, -2, ... (tool calls
# are keyed by their index >= 0).
_DELTA_TEXTS = {name: -1 - i for i, name in enumerate(ANSWER_TEXTS)}
_REASONING = _DELTA_TEXTS["reasoning_content"]


class _Restoring:
    def __init__(self, restorer: Restorer) -> None:
        self._restorer = restorer
        self._streams: dict[tuple[int, int], StreamRestorer] = {}
        self._canary = restorer.canary if isinstance(restorer, Screened) else None
        # Redacting new personal data from a stream's texts: its logprobs would still spell it
        # token by token, and a stream's tokens cannot be held back and screened, so they go.
        self._no_logprobs = bool(getattr(restorer, "redacts_streams", False))
        # Otherwise a choice's logprobs are restored as its text is: the tokens that spell a
        # placeholder become one entry of the value (PlaceholderRestorer.stream_tokens).
        self._token_stream = (
            getattr(restorer, "stream_tokens", None) if getattr(restorer, "mapping", None) else None
        )
        self._tokens: dict[tuple[int, str], Any] = {}

    def _sr(self, key: tuple[int, int]) -> StreamRestorer:
        sr = self._streams.get(key)
        if sr is None:
            # Tool-call arguments are JSON text: restored values are escaped as JSON strings.
            sr = self._streams[key] = self._restorer.stream(json_string=key[1] >= 0)
        return sr

    def apply(self, event: dict[str, Any]) -> None:
        """Restore the event's texts in place. Members of unexpected shapes are left as they
        are: a stream of any shape is relayed, never an error here."""
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            if self._canary is None:
                self._choice(choice)
                if self._no_logprobs and choice.get("logprobs") is not None:
                    choice["logprobs"] = None
                elif self._token_stream is not None:
                    self._logprobs(choice)
                continue
            was = self._canary.tripped
            self._choice(choice)
            self._screened(choice, was)

    def _logprobs(self, choice: dict[str, Any]) -> None:
        """Restore a chat choice's ``logprobs`` entries; those that may still spell the start
        of a placeholder are held and come out with a later chunk, the last ones with the
        choice's ``finish_reason`` (or :meth:`drain`'s chunk)."""
        idx = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
        final = choice.get("finish_reason") is not None
        lp = choice.get("logprobs")
        for name in ("content", "refusal"):
            tokens = lp.get(name) if isinstance(lp, dict) else None
            ts = self._tokens.get((idx, name))
            if ts is None:
                if not isinstance(tokens, list) or self._token_stream is None:
                    continue
                ts = self._tokens[(idx, name)] = self._token_stream()
            out = ts.feed(tokens) if isinstance(tokens, list) else []
            if final:
                out += ts.flush()
            if isinstance(tokens, list) or out:
                if not isinstance(lp, dict):
                    lp = choice["logprobs"] = {"content": None, "refusal": None}
                lp[name] = out

    def _screened(self, choice: dict[str, Any], was: bool) -> None:
        """A choice under the canary screen (gateway.prompts): its logprobs go (they spell the
        tokens); once the answer repeated the canary under ``block``, its tool calls go, the
        chunk that found it says why, and each choice ends with ``content_filter``."""
        if choice.get("logprobs") is not None:
            choice["logprobs"] = None
        canary = self._canary
        if canary is None or not (canary.tripped and canary.block):
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            delta.pop("tool_calls", None)
            if not was:
                delta["refusal"] = WITHHELD
        if choice.get("finish_reason") is not None:
            choice["finish_reason"] = "content_filter"

    def _choice(self, choice: dict[str, Any]) -> None:
        idx = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
        final = choice.get("finish_reason") is not None
        delta = choice.get("delta")
        if isinstance(delta, dict):
            # DeepSeek's reasoner streams its reasoning first: what the reasoning's restorer
            # still holds comes out with the first delta of the answer proper.
            thought = ""
            if isinstance(delta.get("content"), str) and "reasoning_content" not in delta:
                reasoning = self._streams.get((idx, _REASONING))
                thought = reasoning.flush() if reasoning is not None else ""
            for name, sub in _DELTA_TEXTS.items():
                self._field(delta, name, (idx, sub), final)
            if thought:
                delta["reasoning_content"] = thought
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    tidx = call.get("index", 0) if isinstance(call.get("index"), int) else 0
                    self._field(fn, "arguments", (idx, tidx), final)
            if final:  # flush every tool-call stream of this choice
                for (ci, ti), sr in list(self._streams.items()):
                    if ci == idx and ti >= 0:
                        rest = sr.flush()
                        if rest:
                            if not isinstance(delta.get("tool_calls"), list):
                                delta["tool_calls"] = []
                            delta["tool_calls"].append(
                                {"index": ti, "function": {"arguments": rest}}
                            )
        elif isinstance(choice.get("text"), str) or final:
            self._field(choice, "text", (idx, -1), final)

    def drain(self, chat: bool) -> dict[str, Any] | None:
        """What the restorers still hold when the stream ends without a ``finish_reason`` (a
        backend that never sends one): one last chunk carrying it, or ``None``."""
        choices: dict[int, dict[str, Any]] = {}
        for (ci, ti), sr in self._streams.items():
            rest = sr.flush()
            if not rest:
                continue
            choice = choices.setdefault(ci, {"index": ci, "delta": {}, "finish_reason": None})
            if not chat:
                choice.pop("delta", None)
                choice["text"] = choice.get("text", "") + rest
            elif ti >= 0:
                call = {"index": ti, "function": {"arguments": rest}}
                choice["delta"].setdefault("tool_calls", []).append(call)
            else:
                name = ANSWER_TEXTS[-1 - ti]
                choice["delta"][name] = rest
        for (ci, name), ts in self._tokens.items():
            held = ts.flush()
            if held:
                choice = choices.setdefault(ci, {"index": ci, "delta": {}, "finish_reason": None})
                lp = choice.setdefault("logprobs", {"content": None, "refusal": None})
                lp[name] = held
        if not choices:
            return None
        kind = "chat.completion.chunk" if chat else "text_completion"
        return {"object": kind, "choices": [choices[i] for i in sorted(choices)]}

    def _field(self, holder: dict[str, Any], name: str, key: tuple[int, int], final: bool) -> None:
        value = holder.get(name)
        if not isinstance(value, str) and not (final and key in self._streams):
            return
        sr = self._sr(key)
        out = sr.feed(value) if isinstance(value, str) else ""
        if final:
            out += sr.flush()
        if isinstance(value, str) or out:
            holder[name] = out


def sse_events(buffer: bytearray) -> list[bytes]:
    """Split complete SSE events off the front of ``buffer``."""
    out: list[bytes] = []
    while True:
        i = buffer.find(b"\n\n")
        if i < 0:
            return out
        out.append(bytes(buffer[:i]))
        del buffer[: i + 2]


def sse_data(block: bytes) -> bytes | None:
    lines = [ln[5:].lstrip(b" ") for ln in block.split(b"\n") if ln.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


class EventTranslator:
    """A relayed chat stream (whole SSE events, PII restored) as another API's events: the
    Responses and Messages translators say how to begin (:meth:`start`), what each chunk becomes
    (:meth:`feed`, which sets ``_ended`` at the stream's end) and how a failure ends it
    (:meth:`fail`); :meth:`translate` runs them over the relay."""

    _ended = False

    def start(self) -> bytes:
        raise NotImplementedError

    def feed(self, chunk: bytes) -> list[bytes]:
        raise NotImplementedError

    def fail(self, err: GatewayError) -> bytes:
        raise NotImplementedError

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self.start()
        async for chunk in chunks:
            if self._ended:
                continue  # the relay ends by itself after [DONE]; its bookkeeping runs then
            out = b"".join(self.feed(chunk))
            if out:
                yield out
        if not self._ended:  # the relay always ends with [DONE] (or raises); for safety
            yield self.fail(GatewayError(Cause.UPSTREAM_ERROR, "The backend failed."))


async def relay_stream(
    ctx: RequestContext, answer: StreamAnswer, restorer: Restorer | None, metrics: Metrics
) -> AsyncIterator[bytes]:
    restoring = _Restoring(restorer) if restorer is not None else None
    rename = ctx.answer_model  # the backend's own name for the model stays inside
    hide_usage = ctx.hide_usage
    buffer = bytearray()
    done = False
    last: dict[str, Any] = {}  # the last event relayed: its id, model and time, for our own chunk
    t0 = time.perf_counter()
    try:
        async for chunk in answer.chunks():
            if ctx.first_byte_s is None:
                ctx.first_byte_s = ctx.elapsed
            buffer += chunk.replace(b"\r\n", b"\n")
            out: list[bytes] = []
            for block in sse_events(buffer):
                data = sse_data(block)
                if data is None:
                    continue
                if data == b"[DONE]":
                    tail = restoring.drain(ctx.endpoint == "chat") if restoring else None
                    if tail is not None:  # as the stream's other chunks: its id, model, time
                        meta = {k: last[k] for k in _META if k in last}
                        tail_data = _encode({**meta, **tail})
                        ctx.relayed(tail_data)
                        out.append(b"data: " + tail_data + b"\n\n")
                    out.append(DONE)
                    done = True
                    break  # nothing after [DONE] is relayed
                if restoring is None and rename is None and b'"usage"' not in data:
                    ctx.relayed(data)
                    out.append(b"data: " + data + b"\n\n")
                    continue
                try:
                    event = _decode(data)
                except msgspec.DecodeError:
                    raise UpstreamFailure("protocol") from None
                if isinstance(event, dict):
                    changed = restoring is not None or rename is not None
                    if isinstance(event.get("usage"), dict):
                        ctx.usage = {
                            k: v
                            for k, v in event["usage"].items()
                            if k in ("prompt_tokens", "completion_tokens", "total_tokens")
                            and isinstance(v, int)
                        }
                    if hide_usage and "usage" in event:
                        # Usage the gateway asked for, not the caller: recorded above, not
                        # relayed (the usage-only chunk goes; other chunks lose the key).
                        del event["usage"]
                        if not event.get("choices"):
                            continue
                        changed = True
                    if restoring is not None:
                        restoring.apply(event)
                    if rename is not None and "model" in event:
                        event["model"] = rename
                    last = event
                    if changed:
                        data = _encode(event)
                ctx.relayed(data)
                out.append(b"data: " + data + b"\n\n")
            if out:
                yield b"".join(out)
                if done:
                    ctx.answered = True  # the client has the whole answer
            if done:
                break
        if not done:  # the backend's stream ended without [DONE]: cut short
            raise UpstreamFailure("protocol")
    except UpstreamFailure as failure:
        err = failure_to_error(failure)
        ctx.status, ctx.error_code = err.status, err.cause.code
        metrics.upstream_errors.labels(
            ctx.backend.id if ctx.backend else "none", failure.kind
        ).inc()
        yield b"data: " + _encode(err.body()) + b"\n\n" + DONE
    except (asyncio.CancelledError, GeneratorExit):
        ctx.client_left()
        raise
    finally:
        ended = time.perf_counter()
        ctx.upstream_s += ended - t0
        if ctx.trace is not None:  # the relay as a span of its own (gateway.tracing)
            failed = ctx.error_code if ctx.status >= 500 else None
            relay = {"portcullis.chunks": ctx.relayed_chunks, "error.type": failed}
            ctx.trace.steps.append(("relay", t0, ended, relay))
        if restorer is not None:
            ctx.answer_scanned(restorer)
        answer.close()
