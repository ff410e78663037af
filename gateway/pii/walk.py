"""Every text of an OpenAI request body, and writing transformed texts back into a copy.

Chat: in every message, history included, the ``content`` (a string, or the texts of its parts:
``text``, ``refusal`` and any other non-media field), ``tool_calls[].function.arguments``, the
``input`` of custom tool calls and the legacy ``function_call.arguments``, and every other field
that is not structure (``name``, ``refusal``, ``reasoning_content``, ``annotations``, ...,
strings nested in them included); then the request's ``prediction`` content and the texts of
tool definitions and ``response_format`` schemas (descriptions, titles, enum and example values;
see :func:`_texts`). Tool-call arguments are JSON: each string or number value inside is its own
slot, and the arguments are re-serialised after transformation (invalid JSON is scanned as plain
text). Completions: ``prompt`` (string or list of strings) and ``suffix``. Embeddings: ``input``
(string or list of strings). Every endpoint: the caller's ``user``, ``safety_identifier`` and
``prompt_cache_key`` (end-user ids are often e-mail addresses), every key of ``metadata`` and
every string in its values, ``stop`` sequences, and every string and member name of any other
parameter (a backend's ``passthrough_params`` — vLLM's ``top_k`` or ``guided_json`` — and
OpenAI's own that take a string or an object: ``tool_choice``, ``function_call``, ...). In a
tool, function or response-format definition everything but its name, ``strict`` and ``type`` is
read (its schema as a schema). Tool-call ids (``tool_calls[].id`` and the
tool message's ``tool_call_id``) are scanned too, and so is every member name that is data
rather than API: one OpenAI does not define in a message or a content part, and any inside a
field read as text or a metadata value (a transformed name keeps its place; see
:func:`write_back`). Not read: property names of schemas and the JSON keys of tool-call
arguments (the tool's schema names them).

What cannot be read as text — image, audio and file parts, token-id arrays — is listed by
:func:`uninspectable`; the pipeline sends such a request only to backends trusted with every
kind of personal data (``docs/pii.md``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Slot", "extract", "uninspectable", "write_back"]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    path: Path  # to a string in the body
    text: str
    inner: Path | None = None  # path inside the JSON parsed from the string at ``path``
    key: bool = False  # the text is the name of the object member at ``path``, not its value


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


# Media part types named as they are (OpenAI's, and vLLM's video_url / audio_url); any other
# type a client sends is reported as "other", never by its own (caller-chosen) name.
_MEDIA_PARTS = frozenset(
    {"image_url", "input_audio", "file", "video_url", "audio_url", "input_image", "input_file"}
)
# Fields of a content part that hold no text (media is listed by ``uninspectable``); every other
# field of a part — ``text``, ``refusal``, anything a client adds — is scanned.
_PART_MEDIA = frozenset({"type", "cache_control"}) | _MEDIA_PARTS
# Fields of a message read otherwise (content, calls) or holding no text; every other field —
# ``name``, ``refusal``, ``reasoning_content``, ``annotations``, anything a backend returned and
# the client sends back in the history, ``tool_call_id`` and the ``audio`` id (ids a backend
# made up, but a client can write anything there) — is scanned, strings nested in it included.
_MESSAGE_NOT_TEXT = frozenset({"role", "content", "tool_calls", "function_call", "prefix"})


# Member names of a message and of a content part that OpenAI's API defines; any other name a
# client sends (it is data: ``{"alice@example.org": ...}``) is scanned as text too.
_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal",
     "reasoning_content", "reasoning", "annotations", "audio", "prefix"}
)  # fmt: skip
_PART_KEYS = frozenset({"text", "refusal"}) | _PART_MEDIA


def _member(path: Path, name: Any, known: frozenset[str]) -> Iterator[Slot]:
    if isinstance(name, str) and name not in known:
        yield Slot((*path, name), name, key=True)


def _parts(path: Path, content: Any) -> Iterator[Slot]:
    """A content string, or the texts of a list of content parts."""
    if isinstance(content, str):
        yield Slot(path, content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, Mapping):
                for key, value in part.items():
                    yield from _member((*path, j), key, _PART_KEYS)
                    if key not in _PART_MEDIA:
                        yield from _texts((*path, j, key), value)


def _chat(body: Mapping[str, Any]) -> Iterator[Slot]:
    for i, msg in enumerate(body.get("messages") or ()):
        if not isinstance(msg, Mapping):
            continue
        yield from _parts(("messages", i, "content"), msg.get("content"))
        for key, value in msg.items():
            yield from _member(("messages", i), key, _MESSAGE_KEYS)
            if key not in _MESSAGE_NOT_TEXT:
                yield from _texts(("messages", i, key), value)
        for k, call in enumerate(msg.get("tool_calls") or ()):
            if isinstance(call, Mapping) and isinstance(call.get("id"), str):
                # The call's id pairs it with the tool message's ``tool_call_id``: both are
                # scanned, and a pseudonym is the same for the same value in both.
                yield Slot(("messages", i, "tool_calls", k, "id"), call["id"])
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                path: Path = ("messages", i, "tool_calls", k, "function", "arguments")
                yield from _arguments(path, fn.get("arguments"))
            custom = call.get("custom") if isinstance(call, Mapping) else None
            if isinstance(custom, Mapping) and isinstance(custom.get("input"), str):
                yield Slot(("messages", i, "tool_calls", k, "custom", "input"), custom["input"])
        fc = msg.get("function_call")
        if isinstance(fc, Mapping):
            yield from _arguments(
                ("messages", i, "function_call", "arguments"), fc.get("arguments")
            )
    prediction = body.get("prediction")
    if isinstance(prediction, Mapping):
        yield from _parts(("prediction", "content"), prediction.get("content"))
    for i, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, Mapping):
            continue
        for key, value in tool.items():
            if key in ("function", "custom"):  # custom: free-form input tools
                yield from _definition(("tools", i, key), value)
            elif key != "type":
                yield from _texts(("tools", i, key), value)
    for i, fn in enumerate(body.get("functions") or ()):
        yield from _definition(("functions", i), fn)
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        for key, value in fmt.items():
            if key == "json_schema":
                yield from _definition(("response_format", key), value)
            elif key != "type":
                yield from _texts(("response_format", key), value)


# In a tool, function or response schema definition: members that name or configure, not text.
_DEFINITION_NOT_TEXT = frozenset({"name", "strict", "type"})
# ... and those that hold a JSON Schema (or a custom tool's input format): read as a schema.
_DEFINITION_SCHEMA = frozenset({"parameters", "schema", "format"})


def _definition(path: Path, node: Any) -> Iterator[Slot]:
    """A tool's function (or custom tool), a legacy function or a response format's
    ``json_schema``: its schema read as a schema (:func:`_texts`), its name left alone (the
    tool's name: see the module's notes), every other member — ``description`` and any a
    client adds — read as text."""
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key in _DEFINITION_SCHEMA:
            yield from _texts((*path, key), value, True)
        elif key not in _DEFINITION_NOT_TEXT:
            yield from _texts((*path, key), value)


# Schema keywords whose string values are structure, not text: left as they are.
_STRUCTURAL = frozenset({"type", "format", "pattern", "$ref", "$schema", "$id", "$anchor"})


def _texts(path: Path, node: Any, schema: bool = False) -> Iterator[Slot]:
    """Every string in ``node`` (a string, or nested objects and lists), member names included.
    With ``schema`` (a tool definition or JSON Schema: descriptions, titles, enum and example
    values — a schema may list employees or carry an example customer), member names, property
    names and the values of structural keywords (``type``, ``format``, ``pattern``, ``$ref``,
    ``required``) are not texts."""
    if isinstance(node, str):
        yield Slot(path, node)
    elif isinstance(node, Mapping):
        for k, v in node.items():
            if schema and k == "properties" and isinstance(v, Mapping):
                for name, sub in v.items():
                    yield from _texts((*path, k, name), sub, schema)
            elif not schema:
                if isinstance(k, str):
                    yield Slot((*path, k), k, key=True)
                yield from _texts((*path, k), v, schema)
            elif k not in _STRUCTURAL and k != "required":
                yield from _texts((*path, k), v, schema)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _texts((*path, i), v, schema)


def _strings(body: Mapping[str, Any], key: str) -> Iterator[Slot]:
    value = body.get(key)
    if isinstance(value, str):
        yield Slot((key,), value)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                yield Slot((key, i), v)


# Caller-chosen strings that travel with every kind of request.
_IDS = ("user", "safety_identifier", "prompt_cache_key")


def _common(endpoint: str, body: Mapping[str, Any]) -> Iterator[Slot]:
    for key in _IDS:
        if isinstance(body.get(key), str):
            yield Slot((key,), body[key])
    yield from _texts(("metadata",), body.get("metadata"))
    yield from _strings(body, "stop")
    # Every other parameter — a backend's passthrough parameters (vLLM's ``top_k``,
    # ``guided_json``), and OpenAI's own that take a string or an object (``tool_choice``,
    # ``function_call``, ``reasoning_effort``, ...) — read as text whatever it holds: the
    # checks of the validation bound shapes, not what a string says. Numbers and booleans give
    # no slot.
    walked = _WALKED[endpoint]
    for key, value in body.items():
        if key not in walked:
            yield from _texts((key,), value)


# Parameters read above (by the endpoint's walk or by the common part), and ``model`` (the
# routing name, refused by validation when it names no model): the rest is read as text.
_WALKED_ALL = frozenset({"model", *_IDS, "metadata", "stop"})
_WALKED = {
    "chat": _WALKED_ALL | {"messages", "prediction", "tools", "functions", "response_format"},
    "completions": _WALKED_ALL | {"prompt", "suffix"},
    "embeddings": _WALKED_ALL | {"input"},
}


def extract(endpoint: str, body: Mapping[str, Any]) -> list[Slot]:
    if endpoint == "chat":
        slots = list(_chat(body))
    elif endpoint == "completions":
        slots = [*_strings(body, "prompt"), *_strings(body, "suffix")]
    elif endpoint == "embeddings":
        slots = list(_strings(body, "input"))
    else:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    slots += _common(endpoint, body)
    return [s for s in slots if s.text]


_TEXT_PARTS = frozenset({"text", "refusal"})


def uninspectable(endpoint: str, body: Mapping[str, Any]) -> list[str]:
    """What in ``body`` carries data the detector cannot read: content part types other than
    text (``image_url``, ``input_audio``, ``file``, ..., ``other`` for a type we do not know) and
    token-id arrays (``token_ids``). Sorted, each once; empty when every byte of content is
    text."""
    kinds: set[str] = set()
    if endpoint == "chat":
        for msg in body.get("messages") or ():
            content = msg.get("content") if isinstance(msg, Mapping) else None
            if isinstance(content, list):
                for part in content:
                    kind = part.get("type") if isinstance(part, Mapping) else None
                    if kind not in _TEXT_PARTS:
                        kinds.add(kind if kind in _MEDIA_PARTS else "other")
        prediction = body.get("prediction")
        if isinstance(prediction, Mapping) and isinstance(prediction.get("content"), list):
            for part in prediction["content"]:
                if not (isinstance(part, Mapping) and part.get("type") == "text"):
                    kinds.add("other")
    else:
        value = body.get("prompt" if endpoint == "completions" else "input")
        if isinstance(value, list) and any(not isinstance(v, str) for v in value):
            kinds.add("token_ids")
    return sorted(kinds)


def _get(node: Any, path: Path) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def _rename(out: Any, path: Path, new: str) -> None:
    """Rename the member at ``path`` to ``new``, in place and in order. A name another member
    already has gets ``#2``, ``#3``, ...: a redacted key never overwrites another's value."""
    parent, old = _get(out, path[:-1]), path[-1]
    name, n = new, 1
    while name in parent and name != old:
        n += 1
        name = f"{new}#{n}"
    items = [(name if k == old else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)


def write_back(body: Mapping[str, Any], replaced: Mapping[Slot, str]) -> dict[str, Any]:
    """A deep copy of ``body`` with each slot's text replaced (other values shared nowhere)."""
    out: dict[str, Any] = copy.deepcopy(dict(body))
    docs: dict[Path, Any] = {}
    renames: list[tuple[Path, str]] = []
    for slot, text in replaced.items():
        if slot.key:
            renames.append((slot.path, text))  # after the values, which are found by old names
            continue
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
    for path, text in sorted(renames, key=lambda r: -len(r[0])):  # inner names before outer
        _rename(out, path, text)
    return out
