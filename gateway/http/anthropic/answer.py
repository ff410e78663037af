"""A chat completion as the Messages answer (:func:`from_chat`), the pieces a stream's events
share, and an error as Anthropic's error body (:func:`error_body`)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError

__all__ = [
    "anthropic_model",
    "as_dict",
    "error_body",
    "error_type",
    "from_chat",
    "message_id",
    "skeleton",
    "stop_of",
    "tool_input",
    "usage_of",
]

_decode = msgspec.json.decode

# Anthropic's error types by status (its SDK picks the exception class by status, as OpenAI's).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
}


def anthropic_model(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``/v1/models`` entry (OpenAI's shape) in Anthropic's: the catalogue keeps no release
    dates, so ``created_at`` is the epoch, as OpenAI's ``created`` is 0."""
    return {
        "type": "model",
        "id": entry["id"],
        "display_name": entry["id"],
        "created_at": "1970-01-01T00:00:00Z",
    }


def as_dict(v: Any) -> dict[str, Any]:
    """``v`` when it is an object, else an empty one: answers of any shape are read, not trusted."""
    return v if isinstance(v, dict) else {}


def message_id(request_id: str) -> str:
    """``msg_`` and the request id's own letters: the message names the request it was."""
    return "msg_" + request_id.removeprefix("req_")


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(err: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope. The gateway's own fields (``code``, ``param``, a denial's
    reasons and citations) ride inside ``error`` beside Anthropic's ``type`` and ``message``."""
    inner = err.body()["error"]
    error = {**inner, "type": error_type(err.status), "message": err.message}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def usage_of(u: Any) -> dict[str, int] | None:
    """Anthropic's usage for a chat usage: its ``input_tokens`` leave out the tokens read from
    the prompt cache, which it counts apart (OpenAI's ``prompt_tokens`` include them)."""
    if not isinstance(u, dict):
        return None
    inp, out = u.get("prompt_tokens"), u.get("completion_tokens")
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) and 0 <= cached <= inp else 0
    return {
        "input_tokens": inp - cached,
        "output_tokens": out,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


_STOPS = {"length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}


def stop_of(choice: dict[str, Any], stops: Any) -> tuple[str | None, str | None]:
    """``stop_reason`` and ``stop_sequence`` for a chat choice's ``finish_reason``. Which stop
    sequence ended the answer is known only from backends that say (vLLM's ``stop_reason``)."""
    finish = choice.get("finish_reason")
    if finish is None:
        return None, None
    if finish == "stop":
        matched = choice.get("stop_reason")
        if isinstance(matched, str) and isinstance(stops, list) and matched in stops:
            return "stop_sequence", matched
        return "end_turn", None
    if finish == "content_filter":
        return "refusal", None
    return _STOPS.get(finish, "end_turn"), None


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's ``input`` object for its chat ``arguments``. Arguments that are not a JSON
    object (a backend's malformed call) are kept whole under ``_arguments``, never dropped."""
    try:
        value = _decode(arguments) if arguments else {}
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"_arguments": arguments}


def skeleton(request: dict[str, Any], mid: str, model: Any) -> dict[str, Any]:
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model if isinstance(model, str) else request.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def from_chat(chat: dict[str, Any], request: dict[str, Any], mid: str) -> dict[str, Any]:
    """The Messages answer for a chat completion (its first choice)."""
    out = skeleton(request, mid, chat.get("model"))
    choices = chat.get("choices")
    choice = as_dict(choices[0] if isinstance(choices, list) and choices else None)
    message = as_dict(choice.get("message"))
    blocks: list[dict[str, Any]] = []
    thought = message.get("reasoning_content")
    if isinstance(thought, str) and thought:
        blocks.append({"type": "thinking", "thinking": thought, "signature": ""})
    content, refusal = message.get("content"), message.get("refusal")
    text = refusal if isinstance(refusal, str) and refusal else content
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else ()):
        fn = as_dict(call.get("function") if isinstance(call, dict) else None)
        if not fn:
            continue
        assert isinstance(call, dict)
        args = fn["arguments"] if isinstance(fn.get("arguments"), str) else ""
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"] if isinstance(call.get("id"), str) else f"toolu_{mid[4:]}_{i}",
                "name": fn["name"] if isinstance(fn.get("name"), str) else "",
                "input": tool_input(args),
            }
        )
    out["content"] = blocks
    reason, sequence = stop_of(choice, request.get("stop_sequences"))
    if isinstance(refusal, str) and refusal:
        reason = "refusal"
    elif reason in (None, "end_turn") and blocks and blocks[-1]["type"] == "tool_use":
        reason = "tool_use"  # a backend that calls tools with finish_reason 'stop'
    out["stop_reason"], out["stop_sequence"] = reason or "end_turn", sequence
    usage = usage_of(chat.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out
