"""A chat-completion stream as the Responses event stream (:class:`StreamTranslator`)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError
from gateway.http.responses.answer import (
    as_dict,
    call_item,
    message_item,
    reasoning_item,
    skeleton,
    status_of,
    text_part,
    usage_of,
)
from gateway.streaming import EventTranslator, sse_data, sse_events

__all__ = ["StreamTranslator"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class StreamTranslator(EventTranslator):
    """Chat-completion chunks (the relay's output: whole SSE events, PII restored) in,
    Responses events out: ``response.created``, then per output item its ``added``, deltas and
    ``done`` events, then ``response.completed`` (or ``response.incomplete``) with the whole
    response and its usage. A chat stream's error event becomes ``error`` and
    ``response.failed``."""

    def __init__(self, request: dict[str, Any], rid: str) -> None:
        self._rid = rid
        self._seq = 0
        self._response = skeleton(request, rid, None, None)
        self._items: list[dict[str, Any]] = []  # the output so far, in order
        self._open: dict[str, Any] | None = None  # the item receiving deltas (not a call)
        self._text: list[str] = []  # the open item's text so far
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its item
        self._args: dict[int, list[str]] = {}
        self._finish: Any = None
        self.usage_of: dict[str, Any] | None = None
        self._logprobs: list[Any] = []
        self._ended = False

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        payload = {"type": kind, **payload, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + _encode(payload) + b"\n\n"

    def start(self) -> bytes:
        snap = dict(self._response)
        return self._event("response.created", {"response": snap}) + self._event(
            "response.in_progress", {"response": snap}
        )

    def feed(self, chunk: bytes) -> list[bytes]:
        """The Responses events for a chunk of chat events (nothing once the stream ended)."""
        out: list[bytes] = []
        if self._ended:
            return out
        for block in sse_events(bytearray(chunk)):  # the relay sends whole events
            data = sse_data(block)
            if data is None:
                continue
            if data == b"[DONE]":
                out += self._complete()
                return out
            try:
                event = _decode(data)
            except msgspec.DecodeError:
                continue
            if isinstance(event, dict):
                out += self._chunk(event)
            if self._ended:
                return out
        return out

    def _chunk(self, event: dict[str, Any]) -> list[bytes]:
        err = event.get("error")
        if isinstance(err, dict):
            return self._failed(str(err.get("code") or "error"), str(err.get("message") or ""))
        if isinstance(event.get("model"), str):
            self._response["model"] = event["model"]
        if isinstance(event.get("created"), int):
            self._response["created_at"] = event["created"]
        usage = usage_of(event.get("usage"))
        if usage is not None:
            self.usage_of = usage
        choices = event.get("choices")
        out: list[bytes] = []
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            thought = delta.get("reasoning_content")
            if isinstance(thought, str) and thought:
                out += self._delta("reasoning", thought)
            lp = choice.get("logprobs")
            tokens = lp.get("content") if isinstance(lp, dict) else None
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                out += self._delta("refusal", refusal)
            content = delta.get("content")
            if (isinstance(content, str) and content) or tokens:  # tokens held back come late
                text = content if isinstance(content, str) else ""
                out += self._delta("output_text", text, tokens)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict):
                    out += self._call(call)
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return out

    def _delta(self, kind: str, text: str, tokens: Any = None) -> list[bytes]:
        """Text for the open item of ``kind`` (reasoning, output_text or refusal); opens it,
        closing another, first."""
        out: list[bytes] = []
        part_kind = "reasoning_text" if kind == "reasoning" else kind
        if self._open is None or self._open["_kind"] != kind:
            out += self._close_open()
            index = len(self._items)
            if kind == "reasoning":
                item = reasoning_item(self._rid, "", "in_progress")
                item["content"] = []
            else:
                item = message_item(self._rid, [], "in_progress")
            self._items.append(item)
            self._open = {"_kind": kind, "item": item, "index": index}
            self._text = []
            self._logprobs = []
            out.append(self._event("response.output_item.added", self._where(item, index)))
            if kind != "reasoning":
                part = text_part("") if kind == "output_text" else {"type": kind, kind: ""}
                out.append(self._event("response.content_part.added", self._part_at(part)))
        self._text.append(text)
        payload = {**self._at(), "delta": text}
        if kind == "output_text":
            lp = tokens if isinstance(tokens, list) else []
            self._logprobs += lp
            payload["logprobs"] = lp
        if kind == "reasoning":
            kind_event = "response.reasoning_text.delta"
        else:
            kind_event = f"response.{part_kind}.delta"
        out.append(self._event(kind_event, payload))
        return out

    def _at(self) -> dict[str, Any]:
        assert self._open is not None
        return {
            "item_id": self._open["item"]["id"],
            "output_index": self._open["index"],
            "content_index": 0,
        }

    def _part_at(self, part: dict[str, Any]) -> dict[str, Any]:
        return {**self._at(), "part": part}

    @staticmethod
    def _where(item: dict[str, Any], index: int) -> dict[str, Any]:
        return {"output_index": index, "item": dict(item)}

    def _close_open(self) -> list[bytes]:
        if self._open is None:
            return []
        kind, item, index = self._open["_kind"], self._open["item"], self._open["index"]
        text = "".join(self._text)
        at = self._at()
        out: list[bytes] = []
        if kind == "reasoning":
            out.append(self._event("response.reasoning_text.done", {**at, "text": text}))
            item["content"] = [{"type": "reasoning_text", "text": text}]
        elif kind == "output_text":
            part = text_part(text, self._logprobs)
            out.append(
                self._event(
                    "response.output_text.done", {**at, "text": text, "logprobs": self._logprobs}
                )
            )
            out.append(self._event("response.content_part.done", {**at, "part": part}))
            item["content"] = [part]
        else:
            part = {"type": "refusal", "refusal": text}
            out.append(self._event("response.refusal.done", {**at, "refusal": text}))
            out.append(self._event("response.content_part.done", {**at, "part": part}))
            item["content"] = [part]
        item["status"] = "completed"
        out.append(self._event("response.output_item.done", self._where(item, index)))
        self._open = None
        return out

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        idx = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        fn = as_dict(call.get("function"))
        out: list[bytes] = []
        item = self._calls.get(idx)
        if item is None:
            out += self._close_open()
            item = call_item(self._rid, idx, call.get("id"), fn.get("name"), "", "in_progress")
            item["_index"] = len(self._items)
            self._items.append(item)
            self._calls[idx] = item
            self._args[idx] = []
            out.append(self._event("response.output_item.added", self._where_call(item)))
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            self._args[idx].append(args)
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    {"item_id": item["id"], "output_index": item["_index"], "delta": args},
                )
            )
        return out

    @staticmethod
    def _where_call(item: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in item.items() if k != "_index"}
        return {"output_index": item["_index"], "item": shown}

    def _close_calls(self) -> list[bytes]:
        out: list[bytes] = []
        for idx, item in self._calls.items():
            args = "".join(self._args[idx])
            item["arguments"], item["status"] = args, "completed"
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    {"item_id": item["id"], "output_index": item["_index"], "arguments": args},
                )
            )
            out.append(self._event("response.output_item.done", self._where_call(item)))
        return out

    def _final(self) -> dict[str, Any]:
        resp = dict(self._response)
        resp["output"] = [{k: v for k, v in i.items() if k != "_index"} for i in self._items]
        resp["usage"] = self.usage_of
        return resp

    def _complete(self) -> list[bytes]:
        out = self._close_open() + self._close_calls()
        resp = self._final()
        resp["status"], resp["incomplete_details"] = status_of(self._finish)
        kind = "response.completed" if resp["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": resp}))
        self._ended = True
        return out

    def fail(self, err: GatewayError) -> bytes:
        """The end of a stream that failed inside the gateway after its first byte."""
        return b"".join(self._failed(err.cause.code, err.message))

    def _failed(self, code: str, message: str) -> list[bytes]:
        out = [self._event("error", {"code": code, "message": message, "param": None})]
        resp = self._final()
        resp["status"] = "failed"
        resp["error"] = {"code": code, "message": message}
        out.append(self._event("response.failed", {"response": resp}))
        self._ended = True
        return out
