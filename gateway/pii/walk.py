"""Every text of an OpenAI request body, and writing transformed texts back into a copy.

Chat: each message's ``content`` (a string, or the ``text`` of each ``type: "text"`` part),
``name``, ``tool_calls[].function.arguments`` and the legacy ``function_call.arguments`` — in
every message, history included. Tool-call arguments are JSON: each string or number value inside
is its own slot, and the arguments are re-serialised after transformation (invalid JSON is
scanned as plain text). Completions: ``prompt`` (string or list of strings) and ``suffix``.
Embeddings: ``input`` (string or list of strings); token-id arrays pass through untouched.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Slot", "extract", "write_back"]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    path: Path  # to a string in the body
    text: str
    inner: Path | None = None  # path inside the JSON parsed from the string at ``path``


def _json_values(node: Any, prefix: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(node, str):
        yield prefix, node
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int | float):
        yield prefix, json.dumps(node)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _json_values(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_values(v, (*prefix, i))


def _arguments(path: Path, raw: Any) -> Iterator[Slot]:
    if not isinstance(raw, str) or not raw:
        return
    try:
        parsed = json.loads(raw)
    except ValueError:
        yield Slot(path, raw)
        return
    if not isinstance(parsed, dict | list):
        yield Slot(path, raw)
        return
    for inner, text in _json_values(parsed, ()):
        if text:
            yield Slot(path, text, inner)


def _chat(body: Mapping[str, Any]) -> Iterator[Slot]:
    for i, msg in enumerate(body.get("messages") or ()):
        if not isinstance(msg, Mapping):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            yield Slot(("messages", i, "content"), content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    yield Slot(("messages", i, "content", j, "text"), part["text"])
        if isinstance(msg.get("name"), str):
            yield Slot(("messages", i, "name"), msg["name"])
        for k, call in enumerate(msg.get("tool_calls") or ()):
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                path: Path = ("messages", i, "tool_calls", k, "function", "arguments")
                yield from _arguments(path, fn.get("arguments"))
        fc = msg.get("function_call")
        if isinstance(fc, Mapping):
            yield from _arguments(
                ("messages", i, "function_call", "arguments"), fc.get("arguments")
            )


def _strings(body: Mapping[str, Any], key: str) -> Iterator[Slot]:
    value = body.get(key)
    if isinstance(value, str):
        yield Slot((key,), value)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield Slot((key, i), v)


def extract(endpoint: str, body: Mapping[str, Any]) -> list[Slot]:
    if endpoint == "chat":
        slots = list(_chat(body))
    elif endpoint == "completions":
        slots = [*_strings(body, "prompt"), *_strings(body, "suffix")]
    elif endpoint == "embeddings":
        slots = list(_strings(body, "input"))
    else:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    return [s for s in slots if s.text]


def _get(node: Any, path: Path) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def write_back(body: Mapping[str, Any], replaced: Mapping[Slot, str]) -> dict[str, Any]:
    """A deep copy of ``body`` with each slot's text replaced (other values shared nowhere)."""
    out: dict[str, Any] = copy.deepcopy(dict(body))
    docs: dict[Path, Any] = {}
    for slot, text in replaced.items():
        if slot.inner is None:
            _set(out, slot.path, text)
            continue
        if slot.path not in docs:
            docs[slot.path] = json.loads(_get(out, slot.path))
        if slot.inner:
            _set(docs[slot.path], slot.inner, text)
        else:
            docs[slot.path] = text
    for path, doc in docs.items():
        _set(out, path, json.dumps(doc, ensure_ascii=False))
    return out
