"""OpenAI's Responses API (``POST /v1/responses``) served over chat completions.

A Responses request is translated into a chat-completions request (:func:`to_chat`), which then
takes the ordinary path — authentication, validation, policy, PII guard, routing, audit — to a
backend's ``/chat/completions``; the answer is translated back (:func:`from_chat`, or
:class:`StreamTranslator` for a stream, which turns the relayed chat chunks, PII already
restored, into Responses events). Backends need not know the Responses API; DeepSeek's and
vLLM's do not.

The gateway keeps no prompts or answers, so it serves the **stateless** part of the API:
``previous_response_id``, ``conversation``, ``background``, stored ``prompt`` templates and
``item_reference`` inputs are refused with a 400 saying so (send the whole conversation in
``input``), as are the hosted tools (web search, file search, code interpreter, ...): only
function tools. ``store`` is accepted and answered ``false``; ``GET /v1/responses/{id}`` is a
404. ``docs/api.md`` has the table.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from gateway.errors import Cause, GatewayError
from gateway.http.validate import ROUTING_PARAMS

__all__ = ["StreamTranslator", "from_chat", "rename_param", "response_id", "to_chat"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

# Parameters served, and what becomes of each in the chat request (see to_chat).
_ACCEPTED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "stream",
        "stream_options",
        "store",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
        "truncation",
        "include",
        "reasoning",
        "top_logprobs",
    }
)
# Copied to the chat request as they are (the chat validation checks them).
_SAME = (
    *("model", "temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier"),
    *("prompt_cache_key", "service_tier"),
)

_NO_STATE = (
    "the gateway keeps no prompts or answers, so it cannot continue a stored conversation: "
    "send the whole conversation in 'input'."
)
# Parameters that need state or work the gateway does not do: refused when set.
_REFUSED = {
    "previous_response_id": _NO_STATE,
    "conversation": _NO_STATE,
    "prompt": "stored prompt templates are not served: send the prompt in 'input'.",
    "background": "background responses are not served (they would be stored).",
    "max_tool_calls": "not supported; limit tool calls in your client.",
}

# A chat-request parameter named in an error, as the Responses caller knows it.
_PARAM_NAMES = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
    "logprobs": "top_logprobs",
}


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _bad(param: str, message: str) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, f"Invalid '{param}': {message}", param=param)


def rename_param(exc: GatewayError) -> GatewayError:
    """The chat validation's error, naming the Responses parameter the caller sent."""
    param = exc.param
    if param is None:
        return exc
    # messages[i] is not input[i] once instructions or tool calls were folded in: "input"
    name = _PARAM_NAMES.get(param.split(".", 1)[0].split("[", 1)[0])
    if name is None:
        return exc
    message = exc.message.replace(f"'{param}'", f"'{name}'")
    return GatewayError(exc.cause, message, param=name, details=exc.details, headers=exc.headers)


def response_id(request_id: str) -> str:
    """``resp_`` and the request id's own letters: the response names the request it was."""
    return "resp_" + request_id.removeprefix("req_")


# -- the request -------------------------------------------------------------------------------


def to_chat(body: dict[str, Any], passthrough: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The chat-completions request for a Responses request (raises a 400 for what is not
    served). The result still goes through the chat validation."""
    for key, value in body.items():
        if key in ROUTING_PARAMS:
            raise GatewayError(
                Cause.FORBIDDEN_PARAMETER,
                f"'{key}' is not accepted: routing and credentials are decided by the gateway.",
                param=key,
            )
        if key in _REFUSED:
            if value is None or value is False:
                continue
            raise _bad(key, _REFUSED[key])
        if key not in _ACCEPTED and key not in passthrough:
            raise GatewayError(
                Cause.INVALID_PARAMETER, f"Unsupported parameter: '{key}'.", param=key
            )
    if "input" not in body:
        raise GatewayError(
            Cause.INVALID_PARAMETER, "Missing required parameter: 'input'.", param="input"
        )
    chat: dict[str, Any] = {k: body[k] for k in _SAME if k in body}
    chat.update((k, body[k]) for k in passthrough if k in body)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("instructions", "must be a string.")
        messages.append({"role": "system", "content": instructions})
    messages += _messages(body["input"])
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        chat.update(_text(body["text"]))
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _bad("reasoning", "must be an object.")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("top_logprobs") is not None:
        chat["logprobs"] = True
        chat["top_logprobs"] = body["top_logprobs"]
    for key, check in _CHECKS.items():
        if body.get(key) is not None:
            check(key, body[key])
    if body.get("stream") is not None:
        chat["stream"] = body["stream"]
        if body["stream"] is True:  # a Responses stream always ends with its usage
            chat["stream_options"] = {"include_usage": True}
    return chat


def _check_bool(key: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _bad(key, "must be a boolean.")


def _check_truncation(key: str, v: Any) -> None:
    if v not in ("auto", "disabled"):
        raise _bad(key, "must be 'auto' or 'disabled'.")


def _check_strings(key: str, v: Any) -> None:
    if not isinstance(v, list) or len(v) > 16 or not all(isinstance(x, str) for x in v):
        raise _bad(key, "must be a short list of strings.")


def _check_metadata(key: str, v: Any) -> None:
    if not isinstance(v, dict) or len(v) > 16:
        raise _bad(key, "must be an object of at most 16 pairs.")
    for k, x in v.items():
        if len(k) > 64 or not isinstance(x, str) or len(x) > 512:
            raise _bad(key, "keys of at most 64 and string values of at most 512 characters.")


def _check_stream_options(key: str, v: Any) -> None:
    if not isinstance(v, dict) or set(v) - {"include_obfuscation"}:
        raise _bad(key, "only include_obfuscation is supported.")


# Checked here because they stay here (the chat request does not carry them).
_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "store": _check_bool,
    "stream": _check_bool,
    "truncation": _check_truncation,
    "include": _check_strings,
    "metadata": _check_metadata,
    "stream_options": _check_stream_options,
}


def _messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _bad("input", "must be a string or a non-empty list of input items.")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "each input item must be an object.")
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(where, item))
        elif kind == "function_call":
            call = {
                "id": _string(f"{where}.call_id", item.get("call_id")),
                "type": "function",
                "function": {
                    "name": _string(f"{where}.name", item.get("name")),
                    "arguments": _string(f"{where}.arguments", item.get("arguments")),
                },
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("_open"):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call], "_open": 1})
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(f"{where}.call_id", item.get("call_id")),
                    "content": _output(f"{where}.output", item.get("output")),
                }
            )
        elif kind == "reasoning":
            continue  # a reasoning item of an earlier answer: chat completions take none back
        elif kind == "item_reference":
            raise _bad(where, _NO_STATE)
        else:
            raise _bad(
                f"{where}.type",
                f"input items of type '{str(kind)[:64]}' are not served: messages, "
                "function_call and function_call_output only.",
            )
    for m in out:
        m.pop("_open", None)
    return out


def _string(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise _bad(where, "must be a string.")
    return v


_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def _message(where: str, item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    role = _ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise _bad(f"{where}.role", "must be user, system, developer or assistant.")
    content = item.get("content")
    if isinstance(content, str):
        out: dict[str, Any] = {"role": role, "content": content}
    elif isinstance(content, list):
        parts = [_part(f"{where}.content[{j}]", p) for j, p in enumerate(content)]
        if role != "user":  # only a user's message carries images, audio and files
            for j, p in enumerate(parts):
                if p["type"] != "text":
                    raise _bad(f"{where}.content[{j}]", f"a {role} message holds text only.")
            out = {"role": role, "content": "".join(p["text"] for p in parts)}
        else:
            out = {"role": role, "content": parts}
    else:
        raise _bad(f"{where}.content", "must be a string or a list of content parts.")
    if role == "assistant":
        out["_open"] = 1  # function calls right after it join it
    return out


def _part(where: str, part: Any) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _bad(where, "each content part must be an object.")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _string(f"{where}.text", part.get("text"))}
    if kind == "refusal":
        return {"type": "text", "text": _string(f"{where}.refusal", part.get("refusal"))}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _bad(where, "an input_image needs image_url (uploaded file ids are not served).")
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            raise _bad(where, "an input_file needs file_data (uploaded file ids are not served).")
        file = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise _bad(where, "an input_audio part needs input_audio.")
        return {"type": "input_audio", "input_audio": audio}
    raise _bad(f"{where}.type", f"content parts of type '{str(kind)[:64]}' are not served.")


def _output(where: str, v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        texts = []
        for j, p in enumerate(v):
            if not isinstance(p, dict) or p.get("type") not in ("input_text", "output_text"):
                raise _bad(f"{where}[{j}]", "a function call's output is text.")
            texts.append(_string(f"{where}[{j}].text", p.get("text")))
        return "".join(texts)
    raise _bad(where, "must be a string or a list of text parts.")


def _tools(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise _bad("tools", "must be a list of tools.")
    out = []
    for i, t in enumerate(v):
        if not isinstance(t, dict) or t.get("type") != "function":
            kind = t.get("type") if isinstance(t, dict) else None
            raise _bad(
                f"tools[{i}]",
                f"only function tools are served, not '{str(kind)[:64]}' (hosted tools run at "
                "OpenAI, outside the gateway's control).",
            )
        if set(t) - {"type", "name", "description", "parameters", "strict"}:
            raise _bad(f"tools[{i}]", "a function tool holds name, description, parameters.")
        fn = {k: t[k] for k in ("name", "description", "parameters", "strict") if k in t}
        _string(f"tools[{i}].name", fn.get("name"))
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(v: Any) -> Any:
    if v in ("none", "auto", "required"):
        return v
    if isinstance(v, dict) and v.get("type") == "function" and isinstance(v.get("name"), str):
        return {"type": "function", "function": {"name": v["name"]}}
    raise _bad("tool_choice", "must be 'none', 'auto', 'required' or a function by name.")


def _text(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or set(v) - {"format", "verbosity"}:
        raise _bad("text", "must be an object holding format and verbosity.")
    out: dict[str, Any] = {}
    if v.get("verbosity") is not None:
        out["verbosity"] = v["verbosity"]
    fmt = v.get("format")
    if fmt is None:
        return out
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return out
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return out
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        _string("text.format.name", schema.get("name"))
        if not isinstance(schema.get("schema"), dict):
            raise _bad("text.format.schema", "must be an object (a JSON Schema).")
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
        return out
    raise _bad("text.format", "type must be text, json_object or json_schema.")


# -- the answer --------------------------------------------------------------------------------


def _usage(u: Any) -> dict[str, Any] | None:
    if not isinstance(u, dict):
        return None
    inp, out = u.get("prompt_tokens"), u.get("completion_tokens")
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    details_in = u.get("prompt_tokens_details")
    details_out = u.get("completion_tokens_details")
    cached = details_in.get("cached_tokens") if isinstance(details_in, dict) else None
    reasoning = details_out.get("reasoning_tokens") if isinstance(details_out, dict) else None
    total = u.get("total_tokens")
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached if isinstance(cached, int) else 0},
        "output_tokens": out,
        "output_tokens_details": {
            "reasoning_tokens": reasoning if isinstance(reasoning, int) else 0
        },
        "total_tokens": total if isinstance(total, int) else inp + out,
    }


def _status(finish: Any) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _skeleton(request: dict[str, Any], rid: str, created: Any, model: Any) -> dict[str, Any]:
    """The response object's fields that echo the request."""
    text = _obj(request.get("text"))
    reasoning = _obj(request.get("reasoning"))
    return {
        "id": rid,
        "object": "response",
        "created_at": created if isinstance(created, int) else int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model if isinstance(model, str) else request.get("model"),
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation", "disabled"),
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _reasoning_item(rid: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": "rs_" + rid[5:],
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def _message_item(rid: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_" + rid[5:],
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def _text_part(text: str, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def _call_item(rid: str, i: int, call_id: Any, name: Any, args: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{rid[5:]}_{i}",
        "call_id": call_id if isinstance(call_id, str) else f"call_{rid[5:]}_{i}",
        "name": name if isinstance(name, str) else "",
        "arguments": args,
        "status": status,
    }


def from_chat(chat: dict[str, Any], request: dict[str, Any], rid: str) -> dict[str, Any]:
    """The Responses answer for a chat completion (its first choice; the request has no ``n``)."""
    out = _skeleton(request, rid, chat.get("created"), chat.get("model"))
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = _obj(choice)
    message = _obj(choice.get("message"))
    items: list[dict[str, Any]] = []
    thought = message.get("reasoning_content")
    if isinstance(thought, str) and thought:
        items.append(_reasoning_item(rid, thought))
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(refusal, str) and refusal:
        items.append(_message_item(rid, [{"type": "refusal", "refusal": refusal}], "completed"))
    elif isinstance(content, str):
        lp = choice.get("logprobs")
        tokens = lp.get("content") if isinstance(lp, dict) else None
        part = _text_part(content, tokens if isinstance(tokens, list) else None)
        items.append(_message_item(rid, [part], "completed"))
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn["arguments"] if isinstance(fn.get("arguments"), str) else ""
            items.append(_call_item(rid, i, call.get("id"), fn.get("name"), args, "completed"))
    out["output"] = items
    out["status"], out["incomplete_details"] = _status(choice.get("finish_reason"))
    out["usage"] = _usage(chat.get("usage"))
    return out


# -- the stream --------------------------------------------------------------------------------


class StreamTranslator:
    """Chat-completion chunks (the relay's output: whole SSE events, PII restored) in,
    Responses events out: ``response.created``, then per output item its ``added``, deltas and
    ``done`` events, then ``response.completed`` (or ``response.incomplete``) with the whole
    response and its usage. A chat stream's error event becomes ``error`` and
    ``response.failed``."""

    def __init__(self, request: dict[str, Any], rid: str) -> None:
        self._rid = rid
        self._seq = 0
        self._response = _skeleton(request, rid, None, None)
        self._items: list[dict[str, Any]] = []  # the output so far, in order
        self._open: dict[str, Any] | None = None  # the item receiving deltas (not a call)
        self._text: list[str] = []  # the open item's text so far
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its item
        self._args: dict[int, list[str]] = {}
        self._finish: Any = None
        self._usage: dict[str, Any] | None = None
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

    def feed(self, chunk: bytes) -> list[bytes]:
        """The Responses events for a chunk of chat events (nothing once the stream ended)."""
        out: list[bytes] = []
        if self._ended:
            return out
        for block in chunk.split(b"\n\n"):
            for line in block.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
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
        usage = _usage(event.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = event.get("choices")
        out: list[bytes] = []
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _obj(choice.get("delta"))
            thought = delta.get("reasoning_content")
            if isinstance(thought, str) and thought:
                out += self._delta("reasoning", thought)
            lp = choice.get("logprobs")
            tokens = lp.get("content") if isinstance(lp, dict) else None
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                out += self._delta("refusal", refusal)
            content = delta.get("content")
            if isinstance(content, str) and (content or tokens):
                out += self._delta("output_text", content, tokens)
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
                item = _reasoning_item(self._rid, "", "in_progress")
                item["content"] = []
            else:
                item = _message_item(self._rid, [], "in_progress")
            self._items.append(item)
            self._open = {"_kind": kind, "item": item, "index": index}
            self._text = []
            self._logprobs = []
            out.append(self._event("response.output_item.added", self._where(item, index)))
            if kind != "reasoning":
                part = _text_part("") if kind == "output_text" else {"type": kind, kind: ""}
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
            part = _text_part(text, self._logprobs)
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
        fn = _obj(call.get("function"))
        out: list[bytes] = []
        item = self._calls.get(idx)
        if item is None:
            out += self._close_open()
            item = _call_item(self._rid, idx, call.get("id"), fn.get("name"), "", "in_progress")
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
        resp["usage"] = self._usage
        return resp

    def _complete(self) -> list[bytes]:
        out = self._close_open() + self._close_calls()
        resp = self._final()
        resp["status"], resp["incomplete_details"] = _status(self._finish)
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
