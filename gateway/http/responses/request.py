"""A Responses request as the chat-completions request it is served as (:func:`to_chat`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.errors import Cause, GatewayError
from gateway.http.validate import check_name, renamed

__all__ = ["rename_param", "to_chat"]

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
        "client_metadata",  # Codex's own (its session and turn ids): checked, not sent
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

_KNOWN = _ACCEPTED | _REFUSED.keys()

# A chat-request parameter named in an error, as the Responses caller knows it.
_PARAM_NAMES = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
    "logprobs": "top_logprobs",
}


def _bad(param: str, message: str) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, f"Invalid '{param}': {message}", param=param)


def rename_param(exc: GatewayError) -> GatewayError:
    """The chat validation's error, naming the Responses parameter the caller sent."""
    return renamed(exc, _PARAM_NAMES)


def to_chat(body: dict[str, Any], passthrough: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The chat-completions request for a Responses request (raises a 400 for what is not
    served). The result still goes through the chat validation."""
    for key, value in body.items():
        check_name(key, _KNOWN, passthrough)  # routing and unknown parameters, as for chat
        if key in _REFUSED and value is not None and value is not False:
            raise _bad(key, _REFUSED[key])
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
    if "tools" in chat and not chat["tools"]:
        # every tool was one not offered: chat backends refuse an empty list, and a tool choice
        # or parallel calls without tools; a demand for a function is refused as unknown below
        del chat["tools"]
        if chat.get("tool_choice") in ("auto", "none"):
            del chat["tool_choice"]
        chat.pop("parallel_tool_calls", None)
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


def _check_client_metadata(key: str, v: Any) -> None:
    if not isinstance(v, dict) or len(v) > 64:
        raise _bad(key, "must be an object of at most 64 pairs.")


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
    "client_metadata": _check_client_metadata,
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


# Tools the gateway cannot offer a chat backend: OpenAI's hosted tools (they run at OpenAI, outside
# the gateway's control) and Codex's groups of sub-agent tools. Offered in a list of tools, they
# are left out — the model answers without them, as Codex, which lists web_search in every
# request, needs — and only named in tool_choice (a demand for one) are they refused.
_NOT_OFFERED = frozenset(
    {
        "web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use",
        "computer_use_preview", "image_generation", "mcp", "local_shell", "namespace",
    }
)  # fmt: skip


def _tools(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise _bad("tools", "must be a list of tools.")
    out = []
    for i, t in enumerate(v):
        kind = t.get("type") if isinstance(t, dict) else None
        if kind in _NOT_OFFERED:
            continue
        if kind != "function":
            raise _bad(
                f"tools[{i}]",
                f"only function tools are served, not '{str(kind)[:64]}'.",
            )
        assert isinstance(t, dict)
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
