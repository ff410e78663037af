"""A Messages request's turns and content blocks as chat messages (:func:`chat_messages`,
:func:`system_text`): text, images, documents, tool calls and tool results."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import Cause, GatewayError

__all__ = ["bad", "chat_messages", "string", "system_text"]

_encode = msgspec.json.encode


def bad(param: str, message: str) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, f"Invalid '{param}': {message}", param=param)


def string(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise bad(where, "must be a string.")
    return v


def _texts(where: str, blocks: Any, what: str) -> str:
    """The text of a list of text blocks (``cache_control`` and citations dropped)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise bad(where, f"{what} must be a string or a list of text blocks.")
    out = []
    for j, b in enumerate(blocks):
        if not isinstance(b, dict) or b.get("type") != "text":
            raise bad(f"{where}[{j}]", f"{what} holds text blocks only.")
        out.append(string(f"{where}[{j}].text", b.get("text")))
    return "".join(out)


def system_text(v: Any) -> str:
    return _texts("system", v, "system")


def chat_messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise bad("messages", "must be a non-empty list of messages.")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(where, "each message must be an object.")
        role = m.get("role")
        content = m.get("content")
        if role == "user":
            out += _user(where, content)
        elif role == "assistant":
            out.append(_assistant(where, content))
        elif role == "system":  # a mid-conversation system message (Claude Code sends them)
            out.append({"role": "system", "content": _texts(f"{where}.content", content, "system")})
        else:
            raise bad(f"{where}.role", "must be 'user', 'assistant' or 'system'.")
    return out


def _blocks(where: str, content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise bad(f"{where}.content", "must be a string or a list of content blocks.")
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
            raise bad(at, "each content block must be an object.")
        kind = b.get("type")
        if kind == "tool_result":
            text, images = _tool_result(f"{at}.content", b.get("content"))
            tools.append(
                {
                    "role": "tool",
                    "tool_call_id": string(f"{at}.tool_use_id", b.get("tool_use_id")),
                    "content": text,
                }
            )
            parts += images
        elif kind == "text":
            parts.append({"type": "text", "text": string(f"{at}.text", b.get("text"))})
        elif kind == "image":
            parts.append(_image(at, b.get("source")))
        elif kind == "document":
            parts.append(_document(at, b))
        else:
            raise bad(
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
        raise bad(where, "a tool result is a string or a list of text and image blocks.")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for j, b in enumerate(v):
        at = f"{where}[{j}]"
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(string(f"{at}.text", b.get("text")))
        elif kind == "image":
            images.append(_image(at, b.get("source")))
        else:
            raise bad(at, "a tool result served over chat completions holds text and images.")
    if images and not texts:
        texts.append(f"({len(images)} image{'s' if len(images) > 1 else ''}, below)")
    return "".join(texts), images


def _image(where: str, source: Any) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise bad(f"{where}.source", "must be an object.")
    kind = source.get("type")
    if kind == "base64":
        media = string(f"{where}.source.media_type", source.get("media_type"))
        data = string(f"{where}.source.data", source.get("data"))
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = string(f"{where}.source.url", source.get("url"))
    else:
        raise bad(f"{where}.source.type", "must be 'base64' or 'url' (file ids are not served).")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(where: str, block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad(f"{where}.source", "must be an object.")
    kind = source.get("type")
    if kind == "text":
        return {"type": "text", "text": string(f"{where}.source.data", source.get("data"))}
    if kind == "base64":
        media = string(f"{where}.source.media_type", source.get("media_type"))
        data = string(f"{where}.source.data", source.get("data"))
        file: dict[str, Any] = {"file_data": f"data:{media};base64,{data}"}
        if isinstance(block.get("title"), str):
            file["filename"] = block["title"]
        return {"type": "file", "file": file}
    raise bad(
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
            raise bad(at, "each content block must be an object.")
        kind = b.get("type")
        if kind == "text":
            texts.append(string(f"{at}.text", b.get("text")))
        elif kind == "tool_use":
            args = b.get("input")
            if not isinstance(args, dict):
                raise bad(f"{at}.input", "must be an object.")
            calls.append(
                {
                    "id": string(f"{at}.id", b.get("id")),
                    "type": "function",
                    "function": {
                        "name": string(f"{at}.name", b.get("name")),
                        "arguments": _encode(args).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise bad(
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
