"""Validation of OpenAI request bodies: allowed parameters, bounds, shapes.

A parameter not in the endpoint's table is refused (400, naming it): nothing unknown is
forwarded, and client-supplied routing (``api_base``, ``base_url``, ``api_key``, fallback lists,
provider routing) is never honoured.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from gateway.config.core import RequestLimits
from gateway.errors import Cause, GatewayError

__all__ = [
    "ROUTING_PARAMS",
    "ParsedRequest",
    "check_name",
    "known_params",
    "renamed",
    "validate_request",
]

Check = Callable[[str, Any, RequestLimits], None]

# Client-supplied routing and credentials: always refused, with a message saying why.
ROUTING_PARAMS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "custom_llm_provider",
        "fallbacks",
        "models",
        "route",
        "provider",
        "deployment_id",
        "engine",
        "extra_headers",
        "extra_body",
        "litellm_params",
        "upstream",
        "backend",
        "endpoint",
        "organization",
    }
)


def _bad(param: str, msg: str) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, f"Invalid '{param}': {msg}", param=param)


def _number(lo: float, hi: float, integer: bool = False) -> Check:
    def check(p: str, v: Any, _: RequestLimits) -> None:
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or not lo <= v <= hi:
            kind = "an integer" if integer else "a number"
            raise _bad(p, f"must be {kind} between {lo:g} and {hi:g}.")

    return check


def _bool(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, bool):
        raise _bad(p, "must be a boolean.")


def _str(max_len: int) -> Check:
    def check(p: str, v: Any, _: RequestLimits) -> None:
        if not isinstance(v, str) or len(v) > max_len:
            raise _bad(p, f"must be a string of at most {max_len} characters.")

    return check


def _obj(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, dict):
        raise _bad(p, "must be an object.")


def _n(p: str, v: Any, lim: RequestLimits) -> None:
    _number(1, lim.max_n, integer=True)(p, v, lim)


def _max_tokens(p: str, v: Any, lim: RequestLimits) -> None:
    if v is not None:
        _number(1, lim.max_tokens, integer=True)(p, v, lim)


def _list_of_obj(p: str, v: Any, lim: RequestLimits) -> None:
    if not isinstance(v, list) or len(v) > lim.max_tools or not all(isinstance(x, dict) for x in v):
        raise _bad(p, f"must be a list of at most {lim.max_tools} objects.")


def _list_of_str(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, list) or len(v) > 8 or not all(isinstance(x, str) for x in v):
        raise _bad(p, "must be a short list of strings.")


def _str_or_obj(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, str | dict):
        raise _bad(p, "must be a string or an object.")


def _stop(p: str, v: Any, lim: RequestLimits) -> None:
    if v is None or (isinstance(v, str) and len(v) <= 256):
        return
    if (
        not isinstance(v, list)
        or len(v) > lim.max_stop
        or not all(isinstance(s, str) and len(s) <= 256 for s in v)
    ):
        raise _bad(p, f"must be a string or a list of at most {lim.max_stop} strings.")


def _tools(p: str, v: Any, lim: RequestLimits) -> None:
    if not isinstance(v, list) or len(v) > lim.max_tools:
        raise _bad(p, f"must be a list of at most {lim.max_tools} tools.")
    for t in v:
        if not isinstance(t, dict) or not isinstance(t.get("type"), str):
            raise _bad(p, "each tool must be an object with a type.")
        fn = t.get("function")
        if t["type"] == "function" and (
            not isinstance(fn, dict) or not isinstance(fn.get("name"), str)
        ):
            raise _bad(p, "a function tool needs function.name.")


def _tool_choice(p: str, v: Any, _: RequestLimits) -> None:
    if isinstance(v, str) and v in ("none", "auto", "required"):
        return
    if isinstance(v, dict) and isinstance(v.get("type"), str):
        return
    raise _bad(p, "must be 'none', 'auto', 'required' or an object naming a tool.")


def _response_format(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, dict) or v.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad(p, "type must be text, json_object or json_schema.")


def _stream_options(p: str, v: Any, _: RequestLimits) -> None:
    if v is None:
        return
    if not isinstance(v, dict) or set(v) - {"include_usage", "include_obfuscation"}:
        raise _bad(p, "only include_usage is supported.")
    if "include_usage" in v and not isinstance(v["include_usage"], bool):
        raise _bad(p, "include_usage must be a boolean.")


def _logit_bias(p: str, v: Any, _: RequestLimits) -> None:
    if not isinstance(v, dict) or len(v) > 300:
        raise _bad(p, "must be an object of at most 300 token biases.")


def _messages(p: str, v: Any, lim: RequestLimits) -> None:
    if not isinstance(v, list) or not v:
        raise _bad(p, "must be a non-empty list.")
    if len(v) > lim.max_messages:
        raise _bad(p, f"must have at most {lim.max_messages} messages.")
    for i, m in enumerate(v):
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ):
            raise _bad(
                f"messages[{i}]",
                "each message needs a role (system, developer, user, assistant, tool).",
            )
        for key in ("name", "refusal", "reasoning_content", "tool_call_id"):
            if m.get(key) is not None and not isinstance(m[key], str):
                raise _bad(f"messages[{i}].{key}", "must be a string.")
        if m.get("prefix") is not None and not isinstance(m["prefix"], bool):
            raise _bad(f"messages[{i}].prefix", "must be a boolean.")
        audio = m.get("audio")
        if audio is not None and not (
            isinstance(audio, dict) and set(audio) == {"id"} and isinstance(audio["id"], str)
        ):
            raise _bad(f"messages[{i}].audio", "must be an object holding only the audio's id.")
        calls = m.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise _bad(f"messages[{i}].tool_calls", "must be a list.")
            for k, call in enumerate(calls):
                _tool_call(f"messages[{i}].tool_calls[{k}]", call)
        if m.get("function_call") is not None:
            _function(f"messages[{i}].function_call", m["function_call"])
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad(f"messages[{i}].content", "must be a string or a list of parts.")
        if isinstance(content, list):
            for j, part in enumerate(content):
                _content_part(f"messages[{i}].content[{j}]", part)


def _strings_of(v: Any, keys: frozenset[str]) -> bool:
    """Whether ``v`` is an object holding only ``keys``, each a string where present."""
    return isinstance(v, dict) and not set(v) - keys and all(isinstance(x, str) for x in v.values())


_FUNCTION = frozenset({"name", "arguments"})
_CUSTOM = frozenset({"name", "input"})


def _function(where: str, fn: Any) -> None:
    """A called function: its name and its arguments (which the PII guard reads), nothing else."""
    if not _strings_of(fn, _FUNCTION):
        raise _bad(where, "must be an object holding name and arguments strings.")


def _tool_call(where: str, call: Any) -> None:
    if not isinstance(call, dict) or set(call) - {"id", "type", "function", "custom", "index"}:
        raise _bad(where, "must be an object holding id, type and function (or custom).")
    if call.get("id") is not None and not isinstance(call["id"], str):
        raise _bad(where, "id must be a string.")
    if call.get("function") is not None:
        _function(f"{where}.function", call["function"])
    if call.get("custom") is not None and not _strings_of(call["custom"], _CUSTOM):
        raise _bad(f"{where}.custom", "must be an object holding name and input strings.")


def _content_part(where: str, part: Any) -> None:
    if not isinstance(part, dict):
        raise _bad(where, "each part must be an object.")
    # Any type: what is not text (image_url, input_audio, file, a runtime's video_url, ...) only
    # goes to backends trusted with personal data (gateway.pii.walk.uninspectable).
    kind = part.get("type")
    if not isinstance(kind, str):
        raise _bad(where, "each part needs a type.")
    if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
        raise _bad(where, f"a {kind} part needs {kind} as a string.")


def _prompt(p: str, v: Any, lim: RequestLimits) -> None:
    if isinstance(v, str):
        return
    if isinstance(v, list) and 0 < len(v) <= lim.max_embedding_inputs:
        if all(isinstance(x, str) for x in v) or all(isinstance(x, int) for x in v):
            return
        if all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in v):
            return
    raise _bad(
        p,
        f"must be a string, or a list (at most {lim.max_embedding_inputs}) "
        "of strings or token ids.",
    )


_COMMON: dict[str, Check] = {
    "model": _str(256),
    "stream": _bool,
    "stream_options": _stream_options,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "n": _n,
    "stop": _stop,
    "max_tokens": _max_tokens,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "logit_bias": _logit_bias,
    "seed": _number(-(2**63), 2**63 - 1, integer=True),
    "user": _str(256),
}

_CHAT: dict[str, Check] = {
    **_COMMON,
    "messages": _messages,
    "max_completion_tokens": _max_tokens,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _bool,
    "functions": _list_of_obj,
    "function_call": _str_or_obj,
    "response_format": _response_format,
    "logprobs": _bool,
    "top_logprobs": _number(0, 20, integer=True),
    "metadata": _obj,
    "store": _bool,
    "reasoning_effort": _str(16),
    "service_tier": _str(32),
    "modalities": _list_of_str,
    "prediction": _obj,
    "prompt_cache_key": _str(256),
    "safety_identifier": _str(256),
    "verbosity": _str(16),
}

_COMPLETIONS: dict[str, Check] = {
    **_COMMON,
    "prompt": _prompt,
    "echo": _bool,
    "best_of": _n,
    "suffix": _str(100_000),
    "logprobs": _number(0, 5, integer=True),
}

_EMBEDDINGS: dict[str, Check] = {
    "model": _str(256),
    "input": _prompt,
    "encoding_format": lambda p, v, lim: _enum(p, v, ("float", "base64")),
    "dimensions": _number(1, 65536, integer=True),
    "user": _str(256),
}

_TABLES = {"chat": _CHAT, "completions": _COMPLETIONS, "embeddings": _EMBEDDINGS}
_REQUIRED = {
    "chat": ("model", "messages"),
    "completions": ("model", "prompt"),
    "embeddings": ("model", "input"),
}


def check_name(key: str, known: Container[str], passthrough: frozenset[str]) -> None:
    """Refuse a parameter that asks for routing or credentials, or that neither the endpoint
    (``known``) nor a backend (``passthrough``) takes: nothing unknown is forwarded."""
    if key in ROUTING_PARAMS:
        raise GatewayError(
            Cause.FORBIDDEN_PARAMETER,
            f"'{key}' is not accepted: routing and credentials are decided by the gateway.",
            param=key,
        )
    if key not in known and key not in passthrough:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported parameter: '{key}'.", param=key)


def renamed(exc: GatewayError, names: dict[str, str]) -> GatewayError:
    """A chat validation error naming, instead of the chat parameter, the one a caller of a
    translated API sent (``names``: chat parameter -> the API's). ``messages[i]`` is not the
    caller's item ``i`` once turns were folded or split: the whole parameter is named."""
    param = exc.param
    if param is None:
        return exc
    name = names.get(param.split(".", 1)[0].split("[", 1)[0])
    if name is None or name == param:
        return exc
    message = exc.message.replace(f"'{param}'", f"'{name}'")
    return GatewayError(exc.cause, message, param=name, details=exc.details, headers=exc.headers)


def known_params(endpoint: str) -> frozenset[str]:
    return frozenset(_TABLES[endpoint])


def _enum(p: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise _bad(p, f"must be one of {', '.join(allowed)}.")


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: str  # chat | completions | embeddings
    model: str
    body: dict[str, Any]
    stream: bool
    include_usage: bool
    tools: bool
    token_estimate: int  # prompt size estimate + max output, for the token budget


def validate_request(
    endpoint: str,
    body: dict[str, Any],
    limits: RequestLimits,
    raw_len: int,
    passthrough: frozenset[str] = frozenset(),
) -> ParsedRequest:
    """Check ``body``; ``passthrough`` are extra keys some backend declared it accepts."""
    table = _TABLES[endpoint]
    for key in body:
        check_name(key, table, passthrough)
    for key in _REQUIRED[endpoint]:
        if key not in body:
            raise GatewayError(
                Cause.INVALID_PARAMETER, f"Missing required parameter: '{key}'.", param=key
            )
    for key, value in body.items():
        check = table.get(key)
        if check is not None:
            check(key, value, limits)
    stream = bool(body.get("stream", False))
    opts = body.get("stream_options") or {}
    if opts and not stream:
        raise _bad("stream_options", "is only allowed when stream is true.")
    max_out = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
    n = body.get("n") or 1
    return ParsedRequest(
        endpoint=endpoint,
        model=body["model"],
        body=body,
        stream=stream,
        include_usage=bool(opts.get("include_usage", False)),
        tools=bool(body.get("tools") or body.get("functions")),
        token_estimate=raw_len // 4 + int(max_out) * int(n),
    )
