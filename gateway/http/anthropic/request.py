"""An Anthropic Messages request as the chat-completions request it is served as
(:func:`to_chat`)."""

from __future__ import annotations

from typing import Any

from gateway.errors import Cause, GatewayError
from gateway.http.anthropic.content import bad as _bad
from gateway.http.anthropic.content import chat_messages, string, system_text
from gateway.http.validate import check_name, renamed

__all__ = ["rename_param", "to_chat"]

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
    "response_format": "output_config.format",
}


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
        messages.append({"role": "system", "content": system_text(system)})
    messages += chat_messages(body["messages"])
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
        fn: dict[str, Any] = {"name": string(f"tools[{i}].name", t.get("name"))}
        if t.get("description") is not None:
            fn["description"] = string(f"tools[{i}].description", t["description"])
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
_EFFORTS = ("low", "medium", "high", "xhigh", "max")


def _output_config(v: Any) -> dict[str, Any]:
    """``effort`` checked and not sent: Claude Code sends it with every request, and chat's
    ``reasoning_effort``, its nearest counterpart, is refused by backends whose models do not
    reason (a drop-in must not break on a hint); a ``json_schema`` ``format`` as chat's
    structured output."""
    if not isinstance(v, dict) or set(v) - {"effort", "format"}:
        raise _bad("output_config", "must be an object holding effort and format.")
    out: dict[str, Any] = {}
    effort = v.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise _bad("output_config.effort", f"must be one of {', '.join(_EFFORTS)}.")
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
        name = string("tool_choice.name", v.get("name"))
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
