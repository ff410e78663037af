"""A chat-completion stream as the Messages event stream (:class:`StreamTranslator`)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError
from gateway.http.anthropic.answer import as_dict, error_type, skeleton, stop_of, usage_of
from gateway.streaming import EventTranslator, sse_data, sse_events

__all__ = ["StreamTranslator"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

# An OpenAI-shaped error event's type as Anthropic's (for an error that came up the stream).
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "permission_error": 403,
    "rate_limit_error": 429,
    "timeout": 504,
}


class StreamTranslator(EventTranslator):
    """Chat-completion chunks (the relay's output: whole SSE events, PII restored) in,
    Messages events out: ``message_start``; per content block (thinking, text, each tool call)
    its ``content_block_start``, deltas and ``content_block_stop``; then ``message_delta``
    (stop reason and usage) and ``message_stop``. A chat stream's error event becomes an
    ``error`` event, which ends the stream.

    One block is open at a time, as Anthropic's stream has it. Tool calls arrive one after the
    other from the backends served (OpenAI, vLLM, DeepSeek); a backend that went back to an
    earlier call's arguments would fail the stream with an error rather than lose them."""

    def __init__(self, request: dict[str, Any], mid: str) -> None:
        self._message = skeleton(request, mid, None)
        self._stops = request.get("stop_sequences")
        self._index = -1  # the open block's index
        self._kind: str | None = None  # thinking | text | tool_use, while a block is open
        self._tool: int | None = None  # the open tool block's chat tool-call index
        self._tools_seen: set[int] = set()
        self._stop: tuple[str | None, str | None] = (None, None)
        self._usage: dict[str, int] | None = None
        self._refused = False  # the backend refused (OpenAI's refusal field)
        self._ended = False

    @staticmethod
    def _event(kind: str, payload: dict[str, Any]) -> bytes:
        return (
            b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **payload}) + b"\n\n"
        )

    def start(self) -> bytes:
        return self._event("message_start", {"message": self._message})

    def feed(self, chunk: bytes) -> list[bytes]:
        """The Messages events for a chunk of chat events (nothing once the stream ended)."""
        out: list[bytes] = []
        for block in sse_events(bytearray(chunk)):  # the relay sends whole events
            if self._ended:
                break
            data = sse_data(block)
            if data is None:
                continue
            if data == b"[DONE]":
                out += self._complete()
                break
            try:
                event = _decode(data)
            except msgspec.DecodeError:
                continue
            if isinstance(event, dict):
                out += self._chunk(event)
        return out

    def _chunk(self, event: dict[str, Any]) -> list[bytes]:
        err = event.get("error")
        if isinstance(err, dict):
            status = _STATUS_OF_TYPE.get(str(err.get("type")), 502)
            return self._failed(error_type(status), str(err.get("message") or ""))
        if isinstance(event.get("model"), str):
            self._message["model"] = event["model"]
        usage = usage_of(event.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = event.get("choices")
        out: list[bytes] = []
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            thought = delta.get("reasoning_content")
            if isinstance(thought, str) and thought:
                out += self._delta("thinking", {"type": "thinking_delta", "thinking": thought})
            for key in ("refusal", "content"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    self._refused = self._refused or key == "refusal"
                    out += self._delta("text", {"type": "text_delta", "text": text})
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict):
                    out += self._call(call)
                    if self._ended:
                        return out
            if choice.get("finish_reason") is not None:
                self._stop = stop_of(choice, self._stops)
        return out

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._index += 1
        self._kind = kind
        out.append(
            self._event("content_block_start", {"index": self._index, "content_block": block})
        )
        return out

    def _close(self) -> list[bytes]:
        if self._kind is None:
            return []
        self._kind, self._tool = None, None
        return [self._event("content_block_stop", {"index": self._index})]

    def _delta(self, kind: str, delta: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        if self._kind != kind:
            start = {"type": kind, kind: ""}
            if kind == "thinking":
                start["signature"] = ""
            out += self._open(kind, start)
        out.append(self._event("content_block_delta", {"index": self._index, "delta": delta}))
        return out

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        idx = call["index"] if isinstance(call.get("index"), int) else 0
        fn = as_dict(call.get("function"))
        out: list[bytes] = []
        if self._tool != idx:
            if idx in self._tools_seen:  # back to a closed call: its block cannot reopen
                return self._failed(
                    "api_error", "The backend interleaved two tool calls' arguments."
                )
            self._tools_seen.add(idx)
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call["id"] if isinstance(call.get("id"), str) else f"toolu_{idx}",
                "name": fn["name"] if isinstance(fn.get("name"), str) else "",
                "input": {},
            }
            out += self._open("tool_use", block)
            self._tool = idx
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            delta = {"type": "input_json_delta", "partial_json": args}
            out.append(self._event("content_block_delta", {"index": self._index, "delta": delta}))
        return out

    def _complete(self) -> list[bytes]:
        out = self._close()
        reason, sequence = ("refusal", None) if self._refused else self._stop
        if reason in (None, "end_turn") and self._tools_seen:
            reason = "tool_use"  # a backend that calls tools with finish_reason 'stop'
        usage = self._usage or self._message["usage"]
        out.append(
            self._event(
                "message_delta",
                {
                    "delta": {"stop_reason": reason or "end_turn", "stop_sequence": sequence},
                    "usage": usage,
                },
            )
        )
        out.append(self._event("message_stop", {}))
        self._ended = True
        return out

    def fail(self, err: GatewayError) -> bytes:
        """The end of a stream that failed inside the gateway after its first byte."""
        return b"".join(self._failed(error_type(err.status), err.message))

    def _failed(self, kind: str, message: str) -> list[bytes]:
        self._ended = True
        return [self._event("error", {"error": {"type": kind, "message": message}})]
