"""An Anthropic Messages request as the chat-completions request it is served as
(:func:`to_chat`)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import Cause, GatewayError
from gateway.http.validate import check_name, renamed

__all__ = ["rename_param", "to_chat"]

_encode = msgspec.json.encode

# Parameters served (see to_chat for what becomes of each).
_ACCEPTED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
        "output_config",
        # accepted and not forwarded: Anthropic's own caching, diagnostics, capacity and
        # workspaces have no counterpart at a chat backend
        "cache_control",
        "context_management",  # server-side clearing of old tool results: the context is sent whole
        "diagnostics",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)
# Where the answer is computed is the gateway's decision (policy, catalogue), not the caller's.
_ROUTING = {
    "inference_geo": "where a request is processed is decided by the gateway's policy and "
    "backend catalogue, not by the caller.",
}
_REFUSED = {
    "container": "code-execution containers run at Anthropic, outside the gateway's control.",
    "mcp_servers": "remote MCP servers are not called by the gateway: define the tools here.",
}
_KNOWN = _ACCEPTED | _REFUSED.keys() | _ROUTING.keys()

# A chat-request parameter named in an error, as the Messages caller knows it. (Chat's
# messages[i] is not the caller's once system and tool results are split out, nor chat's
# tool_choice paths the caller's: both are named whole. tools[i] is the caller's tools[i].)
_PARAM_NAMES = {
    "messages": "messages",
    "stop": "stop_sequences",
    "tool_choice": "tool_choice",
    "parallel_tool_calls": "tool_choice.disable_parallel_tool_use",
    "reasoning_effort": "output_config.effort",
    "response_format": "output_config.format",
}


def _bad(param: str, message: str) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, f"Invalid '{param}': {message}", param=param)


def rename_param(exc: GatewayError) -> GatewayError:
    """The chat validation's error, naming the Messages parameter the caller sent."""
    return renamed(exc, _PARAM_NAMES)


def to_chat(body: dict[str, Any], passthrough: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The chat-completions request for a Messages request (raises a 400 for what is not
    served). The result still goes through the chat validation."""
    for key, value in body.items():
        check_name(key, _KNOWN, passthrough)  # routing and unknown parameters, as for chat
        if key in _REFUSED and value is not None:
            raise _bad(key, _REFUSED[key])
        if key in _ROUTING and value is not None:
            raise GatewayError(
                Cause.FORBIDDEN_PARAMETER, f"'{key}' is not accepted: {_ROUTING[key]}", param=key
            )
    for key in ("model", "messages", "max_tokens"):
        if body.get(key) is None:
            raise GatewayError(
                Cause.INVALID_PARAMETER, f"Missing required parameter: '{key}'.", param=key
            )
    chat: dict[str, Any] = {"model": body["model"], "max_tokens": body["max_tokens"]}
    chat.update((k, body[k]) for k in passthrough if k in body)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            chat[key] = body[key]  # top_k goes out only where a backend takes it (passthrough)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system(system)})
    messages += _messages(body["messages"])
    chat["messages"] = messages
    stops = body.get("stop_sequences")
    if stops is not None:
        chat["stop"] = stops
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat.update(_tool_choice(body["tool_choice"]))
    if body.get("output_config") is not None:
        chat.update(_output_config(body["output_config"]))
    _check_metadata(body.get("metadata"))
    _check_thinking(body.get("thinking"))
    for key, allowed in (("service_tier", ("auto", "standard_only")), ("speed", _SPEEDS)):
        if body.get(key) is not None and body[key] not in allowed:
            raise _bad(key, f"must be one of {', '.join(allowed)}.")
    for key in ("user_profile_id", "workspace_id"):
        v = body.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > 256):
            raise _bad(key, "must be a string of at most 256 characters.")
    for key in ("cache_control", "context_management", "diagnostics"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise _bad(key, "must be an object.")
    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _bad("stream", "must be a boolean.")
        chat["stream"] = stream
        if stream:  # the stream's message_delta carries the usage
            chat["stream_options"] = {"include_usage": True}
    return chat


def _string(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise _bad(where, "must be a string.")
    return v


def _texts(where: str, blocks: Any, what: str) -> str:
    """The text of a list of text blocks (``cache_control`` and citations dropped)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _bad(where, f"{what} must be a string or a list of text blocks.")
    out = []
    for j, b in enumerate(blocks):
        if not isinstance(b, dict) or b.get("type") != "text":
            raise _bad(f"{where}[{j}]", f"{what} holds text blocks only.")
        out.append(_string(f"{where}[{j}].text", b.get("text")))
    return "".join(out)


def _system(v: Any) -> str:
    return _texts("system", v, "system")


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _bad("messages", "must be a non-empty list of messages.")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(where, "each message must be an object.")
        role = m.get("role")
        content = m.get("content")
        if role == "user":
            out += _user(where, content)
        elif role == "assistant":
            out.append(_assistant(where, content))
        else:
            raise _bad(f"{where}.role", "must be 'user' or 'assistant' (system is a parameter).")
    return out


def _blocks(where: str, content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content", "must be a string or a list of content blocks.")
    return content


def _user(where: str, content: Any) -> list[dict[str, Any]]:
    """A user turn: its tool results first, each a ``tool`` message (chat wants them right after
    the assistant's calls), then the rest as one user message — with the images the tool
    results held (a screenshot a tool took), which a chat ``tool`` message cannot carry."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, b in enumerate(_blocks(where, content)):
        at = f"{where}.content[{j}]"
        if not isinstance(b, dict):
            raise _bad(at, "each content block must be an object.")
        kind = b.get("type")
        if kind == "tool_result":
            text, images = _tool_result(f"{at}.content", b.get("content"))
            tools.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(f"{at}.tool_use_id", b.get("tool_use_id")),
                    "content": text,
                }
            )
            parts += images
        elif kind == "text":
            parts.append({"type": "text", "text": _string(f"{at}.text", b.get("text"))})
        elif kind == "image":
            parts.append(_image(at, b.get("source")))
        elif kind == "document":
            parts.append(_document(at, b))
        else:
            raise _bad(
                f"{at}.type",
                f"user content blocks of type '{str(kind)[:64]}' are not served: text, image, "
                "document and tool_result only.",
            )
    out = tools
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_result(where: str, v: Any) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text, and its images as chat image parts (for the user message after)."""
    if v is None or isinstance(v, str):
        return v or "", []
    if not isinstance(v, list):
        raise _bad(where, "a tool result is a string or a list of text and image blocks.")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for j, b in enumerate(v):
        at = f"{where}[{j}]"
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(_string(f"{at}.text", b.get("text")))
        elif kind == "image":
            images.append(_image(at, b.get("source")))
        else:
            raise _bad(at, "a tool result served over chat completions holds text and images.")
    if images and not texts:
        texts.append(f"({len(images)} image{'s' if len(images) > 1 else ''}, below)")
    return "".join(texts), images


def _image(where: str, source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise _bad(f"{where}.source", "must be an object.")
    kind = source.get("type")
    if kind == "base64":
        media = _string(f"{where}.source.media_type", source.get("media_type"))
        data = _string(f"{where}.source.data", source.get("data"))
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = _string(f"{where}.source.url", source.get("url"))
    else:
        raise _bad(f"{where}.source.type", "must be 'base64' or 'url' (file ids are not served).")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(where: str, block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{where}.source", "must be an object.")
    kind = source.get("type")
    if kind == "text":
        return {"type": "text", "text": _string(f"{where}.source.data", source.get("data"))}
    if kind == "base64":
        media = _string(f"{where}.source.media_type", source.get("media_type"))
        data = _string(f"{where}.source.data", source.get("data"))
        file: dict[str, Any] = {"file_data": f"data:{media};base64,{data}"}
        if isinstance(block.get("title"), str):
            file["filename"] = block["title"]
        return {"type": "file", "file": file}
    raise _bad(
        f"{where}.source.type",
        "must be 'text' or 'base64' (documents by URL or file id are not fetched).",
    )


def _assistant(where: str, content: Any) -> dict[str, Any]:
    """An assistant turn: its text as the content, its ``tool_use`` blocks as ``tool_calls``;
    thinking blocks of an earlier answer are dropped (chat completions take none back)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, b in enumerate(_blocks(where, content)):
        at = f"{where}.content[{j}]"
        if not isinstance(b, dict):
            raise _bad(at, "each content block must be an object.")
        kind = b.get("type")
        if kind == "text":
            texts.append(_string(f"{at}.text", b.get("text")))
        elif kind == "tool_use":
            args = b.get("input")
            if not isinstance(args, dict):
                raise _bad(f"{at}.input", "must be an object.")
            calls.append(
                {
                    "id": _string(f"{at}.id", b.get("id")),
                    "type": "function",
                    "function": {
                        "name": _string(f"{at}.name", b.get("name")),
                        "arguments": _encode(args).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise _bad(
                f"{at}.type",
                f"assistant content blocks of type '{str(kind)[:64]}' are not served: text, "
                "tool_use and thinking only.",
            )
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    elif not texts:
        out["content"] = ""
    return out


def _tools(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise _bad("tools", "must be a list of tools.")
    out = []
    for i, t in enumerate(v):
        kind = t.get("type", "custom") if isinstance(t, dict) else None
        if kind != "custom":
            raise _bad(
                f"tools[{i}]",
                f"only custom tools (name, description, input_schema) are served, not "
                f"'{str(kind)[:64]}' (Anthropic's own tools run at Anthropic or need its models).",
            )
        assert isinstance(t, dict)
        extra = set(t) - _TOOL_KEYS
        if extra:
            raise _bad(
                f"tools[{i}]",
                f"a custom tool holds name, description and input_schema, not "
                f"'{str(sorted(extra)[0])[:64]}'.",
            )
        fn: dict[str, Any] = {"name": _string(f"tools[{i}].name", t.get("name"))}
        if t.get("description") is not None:
            fn["description"] = _string(f"tools[{i}].description", t["description"])
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"tools[{i}].input_schema", "must be an object (a JSON Schema).")
        fn["parameters"] = schema
        if t.get("strict") is not None:
            fn["strict"] = t["strict"]
        out.append({"type": "function", "function": fn})
    return out


# A custom tool's fields. Beside what chat has (name, description, schema, strict), Anthropic's
# hints for its own platform (caching, deferred loading, callers, examples) are accepted and
# not forwarded.
_TOOL_KEYS = frozenset(
    {"type", "name", "description", "input_schema", "strict", "cache_control", "defer_loading"}
    | {"allowed_callers", "eager_input_streaming", "input_examples"}
)
_SPEEDS = ("standard", "fast")
# Anthropic's effort levels as chat's reasoning_effort (which stops at high).
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def _output_config(v: Any) -> dict[str, Any]:
    """``effort`` as chat's ``reasoning_effort``; a ``json_schema`` ``format`` as chat's
    structured output."""
    if not isinstance(v, dict) or set(v) - {"effort", "format"}:
        raise _bad("output_config", "must be an object holding effort and format.")
    out: dict[str, Any] = {}
    effort = v.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise _bad("output_config.effort", f"must be one of {', '.join(_EFFORTS)}.")
        out["reasoning_effort"] = _EFFORTS[effort]
    fmt = v.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise _bad("output_config.format", "type must be json_schema.")
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("output_config.format.schema", "must be an object (a JSON Schema).")
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True},
        }
    return out


def _tool_choice(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _bad("tool_choice", "must be an object with a type.")
    kind = v.get("type")
    out: dict[str, Any] = {}
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        name = _string("tool_choice.name", v.get("name"))
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise _bad("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none'.")
    parallel = v.get("disable_parallel_tool_use")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _bad("tool_choice.disable_parallel_tool_use", "must be a boolean.")
        if kind != "none":
            out["parallel_tool_calls"] = not parallel
    return out


def _check_metadata(v: Any) -> None:
    """``metadata.user_id`` is checked and kept here: an opaque id is not sent to backends."""
    if v is None:
        return
    if not isinstance(v, dict) or set(v) - {"user_id"}:
        raise _bad("metadata", "holds user_id only.")
    user = v.get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise _bad("metadata.user_id", "must be a string of at most 256 characters.")


def _check_thinking(v: Any) -> None:
    """Accepted and not forwarded: chat backends reason or not by model (a DeepSeek reasoner
    always does), and what they reason comes back as thinking blocks."""
    if v is None:
        return
    kind = v.get("type") if isinstance(v, dict) else None
    if kind == "enabled":
        budget = v.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            raise _bad("thinking.budget_tokens", "must be an integer of at least 1024.")
    elif kind not in ("disabled", "adaptive", "between_tools"):
        raise _bad("thinking.type", "must be 'enabled', 'disabled', 'adaptive' or 'between_tools'.")
