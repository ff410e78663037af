"""OpenAI wire format: request parsing (bounded, strict) and response bodies.

Errors are :class:`WireError` with OpenAI's envelope fields; their messages never quote content.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from inference.engine import Message, SamplingParams

__all__ = [
    "CompletionRequest",
    "WireError",
    "chat_chunk",
    "chat_response",
    "completion_chunk",
    "completion_response",
    "error_body",
    "parse_chat",
    "parse_completion",
    "usage",
]

MAX_TOKENS_CAP = 8192
DEFAULT_MAX_TOKENS = 64  # when a chat request names none (the completions API's default is 16)
_ROLES = {"system", "user", "assistant", "developer", "tool"}


class WireError(Exception):
    def __init__(
        self, status: int, message: str, *, code: str = "invalid_request", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


def error_body(err: WireError) -> dict[str, Any]:
    kind = "invalid_request_error" if err.status < 500 else "server_error"
    return {"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}}


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    params: SamplingParams
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    prompt_ids: tuple[int, ...] | None = None


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise WireError(400, f"{key} must be a number in [{lo}, {hi}]", param=key)
    return float(value)


def _common(
    body: Any, default_max_tokens: int
) -> tuple[str, SamplingParams, bool, bool, tuple[str, ...]]:
    if not isinstance(body, dict):
        raise WireError(400, "the body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(400, "model is required", param="model")
    n = body.get("n", 1)
    if n not in (1, None):
        raise WireError(400, "only n=1 is supported", param="n")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = default_max_tokens
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TOKENS_CAP:
        raise WireError(
            400, f"max_tokens must be an integer in [1, {MAX_TOKENS_CAP}]", param="max_tokens"
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise WireError(400, "seed must be an integer", param="seed")
    params = SamplingParams(
        max_tokens=limit,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        seed=seed,
        ignore_eos=bool(body.get("ignore_eos", False)),
    )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise WireError(400, "stream must be a boolean", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise WireError(400, "stream_options must be an object", param="stream_options")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if (
        not isinstance(stop, list | tuple)
        or len(stop) > 4
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise WireError(400, "stop must be a string or up to 4 strings", param="stop")
    return model, params, stream, bool(options.get("include_usage")), tuple(stop)


def _content(value: Any, index: int) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):
        parts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise WireError(
                    400,
                    f"messages[{index}]: only text content parts are supported",
                    param="messages",
                )
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise WireError(400, f"messages[{index}].content must be a string or parts", param="messages")


def parse_chat(body: Any, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> CompletionRequest:
    model, params, stream, include_usage, stop = _common(body, default_max_tokens)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise WireError(400, "messages must be a non-empty list", param="messages")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise WireError(400, f"messages[{i}] needs a known role", param="messages")
        role = "system" if m["role"] == "developer" else str(m["role"])
        messages.append(Message(role, _content(m.get("content"), i)))
    return CompletionRequest(model, params, stream, include_usage, stop, messages=tuple(messages))


def parse_completion(body: Any, default_max_tokens: int = 16) -> CompletionRequest:
    model, params, stream, include_usage, stop = _common(body, default_max_tokens)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return CompletionRequest(model, params, stream, include_usage, stop, prompt=prompt)
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in prompt)
    ):
        return CompletionRequest(
            model, params, stream, include_usage, stop, prompt_ids=tuple(prompt)
        )
    raise WireError(400, "prompt must be a string or a list of token ids", param="prompt")


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def chat_response(
    rid: str, model: str, text: str, reason: str, use: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": reason,
                "logprobs": None,
            }
        ],
        "usage": use,
    }


def chat_chunk(
    rid: str,
    model: str,
    delta: dict[str, Any] | None,
    reason: str | None = None,
    use: dict[str, int] | None = None,
) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]
    )
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    if use is not None:
        chunk["usage"] = use
    return chunk


def completion_response(
    rid: str, model: str, text: str, reason: str, use: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": reason, "logprobs": None}],
        "usage": use,
    }


def completion_chunk(
    rid: str,
    model: str,
    text: str | None,
    reason: str | None = None,
    use: dict[str, int] | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": []
        if text is None
        else [{"index": 0, "text": text, "finish_reason": reason, "logprobs": None}],
    }
    if use is not None:
        chunk["usage"] = use
    return chunk
