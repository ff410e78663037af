"""The guard over every part of a request: actions, blocking, restoring, isolation, fail-closed."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from gateway.config.pii import PiiSettings
from gateway.errors import Cause, GatewayError
from gateway.pii.detector import FastDetector
from gateway.pii.engine import Analyzer
from gateway.pii.fake import FakeDetector
from gateway.pii.guard import Guard
from gateway.policy.contract import PiiAction

SECRET = b"s" * 32
NAME = "Alice Example"
EMAIL = "alice@example.org"
VALUES = {NAME: "PERSON", EMAIL: "EMAIL_ADDRESS"}


def guard(values: dict[str, str] | None = None, **kw: Any) -> Guard:
    return Guard(FakeDetector(values or VALUES), SECRET, **kw)


def always(action: PiiAction) -> Any:
    return lambda _e: action


def chat_positions() -> list[tuple[str, dict[str, Any], str]]:
    """(position, body, JSON path to read back) for every place a chat request carries text."""
    args = json.dumps({"to": EMAIL, "nested": [{"who": NAME}]})
    return [
        ("system", {"messages": [{"role": "system", "content": f"Serve {NAME}"}]}, "0.content"),
        ("user", {"messages": [{"role": "user", "content": f"I am {NAME}"}]}, "0.content"),
        ("developer", {"messages": [{"role": "developer", "content": EMAIL}]}, "0.content"),
        ("assistant history", {"messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": f"Hi {NAME}"},
            {"role": "user", "content": "ok"}]}, "1.content"),
        ("tool result", {"messages": [{"role": "tool", "tool_call_id": "c", "content": EMAIL}]},
         "0.content"),
        ("content parts", {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            {"type": "text", "text": f"mail {EMAIL}"}]}]}, "0.content.1.text"),
        ("name", {"messages": [{"role": "user", "content": "x", "name": NAME}]}, "0.name"),
        ("tool call arguments", {"messages": [{"role": "assistant", "content": None,
            "tool_calls": [{"id": "c", "type": "function",
                            "function": {"name": "send", "arguments": args}}]}]},
         "0.tool_calls.0.function.arguments"),
        ("legacy function_call", {"messages": [{"role": "assistant", "content": None,
            "function_call": {"name": "send", "arguments": args}}]},
         "0.function_call.arguments"),
        ("assistant refusal", {"messages": [{"role": "assistant", "content": None,
            "refusal": f"Not for {NAME}"}]}, "0.refusal"),
        ("refusal part", {"messages": [{"role": "assistant", "content": [
            {"type": "refusal", "refusal": f"Not for {EMAIL}"}]}]}, "0.content.0.refusal"),
        ("reasoning in history", {"messages": [{"role": "assistant", "content": "ok",
            "reasoning_content": f"{NAME} wants {EMAIL}"}]}, "0.reasoning_content"),
        ("annotations sent back", {"messages": [{"role": "assistant", "content": "ok",
            "annotations": [{"type": "url_citation", "url_citation": {
                "url": "https://x", "title": f"About {NAME}"}}]}]},
         "0.annotations.0.url_citation.title"),
        ("custom tool call input", {"messages": [{"role": "assistant", "content": None,
            "tool_calls": [{"id": "c", "type": "custom",
                            "custom": {"name": "sh", "input": f"mail {EMAIL}"}}]}]},
         "0.tool_calls.0.custom.input"),
        ("a field a client added", {"messages": [{"role": "user", "content": "x",
            "notes": {"who": EMAIL}}]}, "0.notes.who"),
        ("under a key a schema would not read", {"messages": [{"role": "user", "content": "x",
            "notes": {"type": f"{NAME}"}}]}, "0.notes.type"),
        ("a field added to a text part", {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "x", "alt": f"by {NAME}"}]}]}, "0.content.0.alt"),
        ("tool message's tool_call_id", {"messages": [{"role": "tool",
            "tool_call_id": f"call_{EMAIL}", "content": "ok"}]}, "0.tool_call_id"),
        ("tool call id", {"messages": [{"role": "assistant", "content": None,
            "tool_calls": [{"id": f"call_{EMAIL}", "type": "function",
                            "function": {"name": "send", "arguments": "{}"}}]}]},
         "0.tool_calls.0.id"),
        ("audio id sent back", {"messages": [{"role": "assistant", "content": "ok",
            "audio": {"id": EMAIL}}]}, "0.audio.id"),
    ]  # fmt: skip


def _read(body: dict[str, Any], path: str) -> str:
    node: Any = body["messages"]
    for p in path.split("."):
        node = node[int(p)] if p.isdigit() else node[p]
    return str(node)


@pytest.mark.parametrize(
    "action", [PiiAction.REDACT, PiiAction.MASK, PiiAction.HASH, PiiAction.PSEUDONYMISE]
)
@pytest.mark.parametrize(("position", "body", "path"), chat_positions(), ids=lambda x: x)
async def test_no_value_leaves_in_any_message_position(
    position: str, body: dict[str, Any], path: str, action: PiiAction
) -> None:
    g = guard()
    ins = await g.inspect("chat", body, None)
    assert sum(ins.counts.values()) >= 1
    applied = g.apply(ins, always(action), "tenant-a")
    out = _read(applied.body, path)
    assert NAME not in out and EMAIL not in out
    assert json.dumps(body).count(NAME) + json.dumps(body).count(EMAIL) >= 1
    assert NAME not in json.dumps(applied.body) and EMAIL not in json.dumps(applied.body)
    assert body != applied.body  # a copy was transformed; the caller's body is untouched
    assert NAME in json.dumps(body) or EMAIL in json.dumps(body)


@pytest.mark.parametrize(
    ("endpoint", "body", "key"),
    [
        ("completions", {"prompt": f"Dear {NAME}"}, "prompt"),
        ("completions", {"prompt": ["x", f"Dear {NAME}"]}, "prompt"),
        ("embeddings", {"input": EMAIL}, "input"),
        ("embeddings", {"input": ["a", EMAIL]}, "input"),
    ],
)
async def test_completions_prompt_and_embeddings_input_are_transformed(
    endpoint: str, body: dict[str, Any], key: str
) -> None:
    g = guard()
    applied = g.apply(await g.inspect(endpoint, body, None), always(PiiAction.REDACT), "t")
    text = json.dumps(applied.body[key])
    assert NAME not in text and EMAIL not in text
    assert "[PERSON]" in text or "[EMAIL_ADDRESS]" in text


async def test_token_id_embeddings_input_passes_untouched() -> None:
    g = guard()
    body = {"input": [[1, 2, 3], [4, 5]]}
    ins = await g.inspect("embeddings", body, None)
    assert dict(ins.counts) == {}
    assert g.apply(ins, always(PiiAction.REDACT), "t").body == body


@pytest.mark.parametrize(
    ("endpoint", "extra", "path"),
    [
        ("chat", {"user": EMAIL}, ("user",)),
        ("chat", {"safety_identifier": EMAIL}, ("safety_identifier",)),
        ("chat", {"prompt_cache_key": EMAIL}, ("prompt_cache_key",)),
        ("chat", {"metadata": {"who": f"{NAME} <{EMAIL}>"}}, ("metadata", "who")),
        ("chat", {"metadata": {"who": {"nested": [f"{NAME}"]}}},
         ("metadata", "who", "nested", 0)),
        ("chat", {"stop": ["x", NAME]}, ("stop", 1)),
        ("chat", {"prediction": {"type": "content", "content": f"Dear {NAME}"}},
         ("prediction", "content")),
        ("chat", {"prediction": {"type": "content", "content": [
            {"type": "text", "text": f"Dear {NAME}"}]}}, ("prediction", "content", 0, "text")),
        ("completions", {"user": EMAIL}, ("user",)),
        ("completions", {"stop": NAME}, ("stop",)),
        ("embeddings", {"user": EMAIL}, ("user",)),
        ("chat", {"tools": [{"type": "function", "function": {"name": "find",
            "description": f"Find a customer, e.g. {NAME}"}}]},
         ("tools", 0, "function", "description")),
        ("chat", {"tools": [{"type": "function", "function": {"name": "mail", "parameters": {
            "type": "object", "properties": {"to": {"type": "string", "enum": ["x", EMAIL]}}}}}]},
         ("tools", 0, "function", "parameters", "properties", "to", "enum", 1)),
        ("chat", {"functions": [{"name": "find", "description": f"e.g. {NAME}"}]},
         ("functions", 0, "description")),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "r",
            "schema": {"type": "object", "properties": {"who": {"type": "string",
                                                                "default": NAME}}}}}},
         ("response_format", "json_schema", "schema", "properties", "who", "default")),
        # a backend's passthrough parameter: the gateway does not know what its value holds
        ("chat", {"top_k": {"content": [{"type": "text", "text": f"Dear {NAME}"}]}},
         ("top_k", "content", 0, "text")),
        ("chat", {"guided_choice": ["x", EMAIL]}, ("guided_choice", 1)),
        ("completions", {"top_k": f"{NAME}"}, ("top_k",)),
        ("embeddings", {"truncate_prompt_tokens": [EMAIL]}, ("truncate_prompt_tokens", 0)),
        # OpenAI's own parameters that take a string or an object: validation bounds the shape
        ("chat", {"function_call": {"name": "f", "note": f"for {NAME}"}}, ("function_call", "note")),
        ("chat", {"tool_choice": {"type": "function", "x": EMAIL}}, ("tool_choice", "x")),
        ("chat", {"reasoning_effort": EMAIL}, ("reasoning_effort",)),
        # members of definitions beyond name, description and schema
        ("chat", {"tools": [{"type": "function", "function": {"name": "f", "examples": [
            f"{NAME}"]}}]}, ("tools", 0, "function", "examples", 0)),
        ("chat", {"tools": [{"type": "function", "note": EMAIL, "function": {"name": "f"}}]},
         ("tools", 0, "note")),
        ("chat", {"tools": [{"type": "custom", "custom": {"name": "g", "format": {
            "type": "grammar", "grammar": {"definition": f"start: {EMAIL!r}"}}}}]},
         ("tools", 0, "custom", "format", "grammar", "definition")),
        ("chat", {"response_format": {"type": "json_schema", "note": EMAIL,
            "json_schema": {"name": "r"}}}, ("response_format", "note")),
        ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "r",
            "examples": [EMAIL]}}}, ("response_format", "json_schema", "examples", 0)),
    ],
)  # fmt: skip
async def test_caller_ids_metadata_stop_and_prediction_are_transformed(
    endpoint: str, extra: dict[str, Any], path: tuple[Any, ...]
) -> None:
    base = {
        "chat": {"messages": [{"role": "user", "content": "hi"}]},
        "completions": {"prompt": "hi"},
        "embeddings": {"input": "hi"},
    }[endpoint]
    g = guard()
    applied = g.apply(
        await g.inspect(endpoint, {**base, **extra}, None), always(PiiAction.REDACT), "t"
    )
    node: Any = applied.body
    for p in path:
        node = node[p]
    assert NAME not in node and EMAIL not in node
    assert "[PERSON]" in node or "[EMAIL_ADDRESS]" in node


@pytest.mark.parametrize("action", [PiiAction.REDACT, PiiAction.PSEUDONYMISE])
async def test_metadata_keys_are_transformed_in_place_and_in_order(action: PiiAction) -> None:
    # a caller may key its metadata by customer; a redacted key never overwrites another's value
    g = guard()
    meta = {"a": "1", EMAIL: "2", f"{EMAIL} ": "3", "z": f"for {NAME}"}
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": meta}
    applied = g.apply(await g.inspect("chat", body, None), always(action), "t")
    out = applied.body["metadata"]
    assert EMAIL not in json.dumps(out) and NAME not in json.dumps(out)
    assert list(out.values()) == ["1", "2", "3", out["z"]]
    names = list(out)
    assert names[0] == "a" and names[3] == "z"
    if action is PiiAction.REDACT:
        assert names[1:3] == ["[EMAIL_ADDRESS]", "[EMAIL_ADDRESS] "]
    assert body["metadata"] is meta and EMAIL in meta  # the caller's body is untouched


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("a message member a client added",
         {"messages": [{"role": "user", "content": "x", EMAIL: "1"}]}),
        ("a content part member a client added",
         {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", EMAIL: "1"}]}]}),
        ("a name inside a field a client added",
         {"messages": [{"role": "user", "content": "x", "notes": {EMAIL: {NAME: "1"}}}]}),
        ("a name inside a metadata value",
         {"messages": [{"role": "user", "content": "hi"}], "metadata": {"k": {EMAIL: "1"}}}),
        ("a name inside annotations sent back",
         {"messages": [{"role": "assistant", "content": "ok", "annotations": [{EMAIL: "1"}]}]}),
    ],
)  # fmt: skip
async def test_member_names_that_are_data_are_transformed(where: str, body: Any) -> None:
    g = guard()
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.PSEUDONYMISE), "t")
    sent = json.dumps(applied.body)
    assert EMAIL not in sent and NAME not in sent, where
    assert "<EMAIL_ADDRESS_" in sent
    # the restorer knows the placeholder: an answer quoting it gets the value back
    assert EMAIL in applied.restorer.replace(sent)


async def test_api_member_names_and_schema_property_names_are_not_texts() -> None:
    g = guard({"content": "PERSON", "role": "PERSON", "to": "PERSON", "type": "PERSON"})
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"type": "function", "function": {"name": "mail", "parameters": {
            "type": "object", "properties": {"to": {"type": "string"}}}}}],
    }  # fmt: skip
    ins = await g.inspect("chat", body, None)
    assert dict(ins.counts) == {}


async def test_redacted_keys_that_collide_are_numbered() -> None:
    g = guard({EMAIL: "EMAIL_ADDRESS", "bob@example.org": "EMAIL_ADDRESS"})
    body = {"messages": [{"role": "user", "content": "hi"}],
            "metadata": {EMAIL: "1", "bob@example.org": "2"}}  # fmt: skip
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.REDACT), "t")
    assert applied.body["metadata"] == {"[EMAIL_ADDRESS]": "1", "[EMAIL_ADDRESS]#2": "2"}


async def test_a_tool_call_and_its_result_keep_one_pseudonymous_id() -> None:
    # the backend pairs a tool result with its call by id: both get the same placeholder
    g = guard()
    call_id = f"call_{EMAIL}"
    body = {"messages": [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id,
            "type": "function", "function": {"name": "send", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sent"}]}  # fmt: skip
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.PSEUDONYMISE), "t")
    msgs = applied.body["messages"]
    assert msgs[0]["tool_calls"][0]["id"] == msgs[1]["tool_call_id"]
    assert EMAIL not in msgs[1]["tool_call_id"]
    assert msgs[1]["tool_call_id"].startswith("call_<EMAIL_ADDRESS_")


async def test_schema_structure_is_left_alone() -> None:
    # property names and structural keywords are not texts: a schema stays a valid schema
    g = guard({"string": "PERSON", "to": "PERSON"})
    params = {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "mail", "parameters": params}}],
    }
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.REDACT), "t")
    assert applied.body["tools"][0]["function"]["parameters"] == params


def test_uninspectable_lists_what_the_detector_cannot_read() -> None:
    from gateway.pii.walk import uninspectable

    image = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    text = {"type": "text", "text": "hi"}
    chat = {"messages": [{"role": "user", "content": [text, image, audio, image]}]}
    assert uninspectable("chat", chat) == ["image_url", "input_audio"]
    video = {"type": "video_url", "video_url": {"url": "https://x/y.mp4"}}  # vLLM's
    odd = {"type": "js@example.com", "data": "x"}  # a caller-chosen type is never echoed
    chat = {"messages": [{"role": "user", "content": [video, odd]}]}
    assert uninspectable("chat", chat) == ["other", "video_url"]
    assert uninspectable("chat", {"messages": [{"role": "user", "content": [text]}]}) == []
    assert uninspectable("chat", {"messages": [{"role": "user", "content": "hi"}]}) == []
    assert uninspectable("completions", {"prompt": [1, 2, 3]}) == ["token_ids"]
    assert uninspectable("completions", {"prompt": ["a", "b"]}) == []
    assert uninspectable("embeddings", {"input": [[1, 2], [3]]}) == ["token_ids"]
    assert uninspectable("embeddings", {"input": "hi"}) == []


ACTION_OUTPUT = [
    (PiiAction.ALLOW, lambda s: EMAIL in s),
    (PiiAction.REDACT, lambda s: s == "mail [EMAIL_ADDRESS]"),
    (PiiAction.MASK, lambda s: s == "mail *****@*******.***"),
    (PiiAction.HASH, lambda s: re.fullmatch(r"mail \[EMAIL_ADDRESS:[0-9a-f]{12}\]", s)),
    (PiiAction.PSEUDONYMISE, lambda s: re.fullmatch(r"mail <EMAIL_ADDRESS_[0-9a-f]{6}>", s)),
]


@pytest.mark.parametrize(("action", "ok"), ACTION_OUTPUT, ids=[a.value for a, _ in ACTION_OUTPUT])
async def test_each_action_output(action: PiiAction, ok: Any) -> None:
    g = guard()
    body = {"messages": [{"role": "user", "content": f"mail {EMAIL}"}]}
    applied = g.apply(await g.inspect("chat", body, None), always(action), "t")
    assert ok(applied.body["messages"][0]["content"])
    # allow too: the record says what left as written
    assert applied.actions_taken == {"EMAIL_ADDRESS": {action.value: 1}}


async def test_block_names_entity_types_never_values() -> None:
    g = guard()
    body = {"messages": [{"role": "user", "content": f"{NAME} {EMAIL}"}]}
    ins = await g.inspect("chat", body, None)
    action = {"PERSON": PiiAction.BLOCK, "EMAIL_ADDRESS": PiiAction.REDACT}
    with pytest.raises(GatewayError) as err:
        g.apply(ins, action.__getitem__, "t")
    assert err.value.cause is Cause.PII_BLOCKED
    assert err.value.details == {"entity_types": ["PERSON"]}
    assert NAME not in err.value.message and EMAIL not in str(err.value.body())


async def test_same_value_same_placeholder_in_request_and_across_turns_per_tenant() -> None:
    g = guard()
    turn1 = {"messages": [{"role": "user", "content": f"{NAME} and {NAME}"}]}
    turn2 = {"messages": [*turn1["messages"], {"role": "user", "content": f"again {NAME}"}]}
    a1 = g.apply(await g.inspect("chat", turn1, None), always(PiiAction.PSEUDONYMISE), "t1")
    a2 = g.apply(await g.inspect("chat", turn2, None), always(PiiAction.PSEUDONYMISE), "t1")
    b = g.apply(await g.inspect("chat", turn1, None), always(PiiAction.PSEUDONYMISE), "t2")
    p1 = set(re.findall(r"<PERSON_[0-9a-f]+>", json.dumps(a1.body)))
    p2 = set(re.findall(r"<PERSON_[0-9a-f]+>", json.dumps(a2.body)))
    pb = set(re.findall(r"<PERSON_[0-9a-f]+>", json.dumps(b.body)))
    assert len(p1) == 1 and p1 == p2
    assert pb and pb != p1


async def test_distinct_values_get_distinct_placeholders() -> None:
    g = guard({"Ann": "PERSON", "Bob": "PERSON"})
    body = {"messages": [{"role": "user", "content": "Ann met Bob"}]}
    a = g.apply(await g.inspect("chat", body, None), always(PiiAction.PSEUDONYMISE), "t")
    assert len(set(re.findall(r"<PERSON_[0-9a-f]+>", a.body["messages"][0]["content"]))) == 2


async def _pseudonymised(text: str, values: dict[str, str] | None = None) -> tuple[Any, str]:
    g = guard(values)
    body = {"messages": [{"role": "user", "content": text}]}
    a = g.apply(await g.inspect("chat", body, None), always(PiiAction.PSEUDONYMISE), "t")
    return a, a.body["messages"][0]["content"]


async def test_restore_json_puts_values_back_in_content_and_tool_arguments() -> None:
    a, sent = await _pseudonymised(f'{NAME} says "hi" at {EMAIL}')
    ph = re.findall(r"<[A-Z_]+_[0-9a-f]+>", sent)
    answer = {
        "choices": [
            {"message": {"content": f"Hello {ph[0]}", "tool_calls": [
                {"function": {"name": "f", "arguments": json.dumps({"who": ph[0]})}}]}}
        ]
    }  # fmt: skip
    out = a.restorer.restore_json("chat", answer)
    assert out["choices"][0]["message"]["content"] == f"Hello {NAME}"
    assert json.loads(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "who": NAME
    }


async def test_restore_json_covers_reasoning_refusal_and_text_parts() -> None:
    # DeepSeek's reasoner answers with reasoning_content beside the content.
    a, sent = await _pseudonymised(f"{NAME} wrote")
    ph = re.findall(r"<[A-Z_]+_[0-9a-f]+>", sent)[0]
    msg = {
        "content": [{"type": "text", "text": f"Dear {ph}"}, {"type": "image_url"}],
        "reasoning_content": f"The user is {ph}.",
        "refusal": f"Not for {ph}",
    }
    out = a.restorer.restore_json("chat", {"choices": [{"message": msg}]})
    got = out["choices"][0]["message"]
    assert got["content"][0]["text"] == f"Dear {NAME}" and got["content"][1] == {
        "type": "image_url"
    }
    assert got["reasoning_content"] == f"The user is {NAME}."
    assert got["refusal"] == f"Not for {NAME}"


async def test_restore_json_leaves_answers_of_unexpected_shapes_as_they_are() -> None:
    a, _ = await _pseudonymised(f"{NAME} wrote")
    for answer in (
        {"choices": -1},
        {"choices": {"a": 1}},
        {"choices": [5, {"message": 3}, {"message": {"content": {}, "tool_calls": 7}}]},
        {"choices": [{"message": {"content": [3, {"text": 4}], "tool_calls": [1, {"f": 2}]}}]},
    ):
        before = json.dumps(answer)
        assert json.dumps(a.restorer.restore_json("chat", answer)) == before


async def test_restored_value_is_json_escaped_inside_arguments() -> None:
    tricky = 'O"Neil'
    a, sent = await _pseudonymised(f"name {tricky}", {tricky: "PERSON"})
    ph = re.search(r"<PERSON_[0-9a-f]+>", sent)
    assert ph
    answer = {"choices": [{"message": {"tool_calls": [
        {"function": {"arguments": json.dumps({"n": ph.group()})}}]}}]}  # fmt: skip
    out = a.restorer.restore_json("chat", answer)
    assert json.loads(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "n": tricky
    }


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
async def test_stream_restores_placeholder_split_over_many_chunks(size: int) -> None:
    a, sent = await _pseudonymised(f"I am {NAME}")
    ph = re.search(r"<PERSON_[0-9a-f]+>", sent)
    assert ph
    answer = f"Hello {ph.group()}, nice <b>tag</b> and 1 < 2. Bye {ph.group()}"
    sr = a.restorer.stream()
    out = []
    longest = len(ph.group())
    for i in range(0, len(answer), size):
        out.append(sr.feed(answer[i : i + size]))
        assert sr.held < longest  # never more than one placeholder held back
    out.append(sr.flush())
    assert "".join(out) == answer.replace(ph.group(), NAME)


async def test_stream_releases_text_without_placeholders_immediately() -> None:
    a, _ = await _pseudonymised(f"I am {NAME}")
    sr = a.restorer.stream()
    assert sr.feed("plain words ") == "plain words "
    assert sr.feed("a <i>") == "a <i>"


async def test_new_pii_in_output_is_counted_and_optionally_redacted() -> None:
    scan = Analyzer.__new__(Analyzer)  # patterns only, no model
    from gateway.pii.engine import AnalyzerOptions
    from gateway.pii.scanner import select

    Analyzer.__init__(scan, AnalyzerOptions(ner=False))
    for redact_new in (False, True):
        g = guard(
            output_scan=lambda t: select(scan.patterns(t, None)), redact_new_output=redact_new
        )
        body = {"messages": [{"role": "user", "content": f"mail {EMAIL}"}]}
        a = g.apply(await g.inspect("chat", body, None), always(PiiAction.PSEUDONYMISE), "t")
        ph = re.search(r"<EMAIL_ADDRESS_[0-9a-f]+>", a.body["messages"][0]["content"])
        assert ph
        ans = {"choices": [{"message": {"content": f"{ph.group()} or bob@example.net"}}]}
        content = a.restorer.restore_json("chat", ans)["choices"][0]["message"]["content"]
        assert dict(a.restorer.new_pii) == {"EMAIL_ADDRESS": 1}  # the prompt's email is not new
        assert content.startswith(EMAIL)
        assert ("bob@example.net" in content) is (not redact_new)


def _screening_restorer(redact_new: bool = True, subject_key: bytes | None = None) -> Any:
    from gateway.pii.engine import AnalyzerOptions
    from gateway.pii.restore import PlaceholderRestorer
    from gateway.pii.scanner import select

    scan = Analyzer.__new__(Analyzer)  # patterns only, no model
    Analyzer.__init__(scan, AnalyzerOptions(ner=False))
    return PlaceholderRestorer(
        {},
        [],
        lambda t: select(scan.patterns(t, None)),
        redact_new=redact_new,
        subject_key=subject_key,
    )


@pytest.mark.parametrize("redact_new", [False, True])
def test_the_values_an_answer_brings_are_indexed_for_the_subject_search(redact_new: bool) -> None:
    """Whole or streamed, redacted or only counted: each new value's digest under its type, for
    ``pii.output_subjects``; none without the index's key."""
    from gateway.pii.actions import subject_digest

    key = b"s" * 32
    text = "Write to bob@example.net today, or to Bob@Example.NET."
    want = {subject_digest(key, "EMAIL_ADDRESS", "bob@example.net")}
    whole = _screening_restorer(redact_new, key)
    whole.restore_json("chat", {"choices": [{"message": {"content": text}}]})
    assert whole.new_subjects == want
    streamed = _screening_restorer(redact_new, key)
    sr = streamed.stream()
    for i in range(0, len(text), 4):
        sr.feed(text[i : i + 4])
    sr.flush()
    assert streamed.new_subjects == want
    off = _screening_restorer(redact_new)
    off.restore_json("chat", {"choices": [{"message": {"content": text}}]})
    assert off.new_pii and off.new_subjects == set()


@pytest.mark.parametrize("size", [1, 3, 4, 9])
def test_a_screened_stream_never_lets_out_a_fragment_of_a_new_value(size: int) -> None:
    """Reliability P-5: with output_new_pii "redact", an e-mail address and a phone number the
    prompt did not hold, streamed in pieces, reach the client only as [TYPE]; the rest of the
    text comes through unchanged, HOLD characters late."""
    from gateway.pii.restore import HOLD

    r = _screening_restorer()
    text = ("Sure. Write to jo" "hn.smith@" "exam" "ple.com or call him on 0412 345 678 "
            "before five; his desk is on level 3. " + "Thanks again! " * 12)  # fmt: skip
    sr = r.stream()
    released = [sr.feed(text[i : i + size]) for i in range(0, len(text), size)]
    assert all(len(x) == 0 for x in released[: HOLD // size])  # the first HOLD chars wait
    released.append(sr.flush())
    whole = "".join(released)
    assert whole == text.replace("john.smith@example.com", "[EMAIL_ADDRESS]").replace(
        "0412 345 678", "[PHONE_NUMBER]"
    )
    for piece in released:
        for fragment in ("john", "smith@", "example.com", "0412", "345 678"):
            assert fragment not in piece, (fragment, piece)
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}


async def test_an_answer_to_a_prompt_without_personal_data_is_scanned_too() -> None:
    from gateway.pii.engine import AnalyzerOptions
    from gateway.pii.scanner import select

    scan = Analyzer.__new__(Analyzer)
    Analyzer.__init__(scan, AnalyzerOptions(ner=False))
    for redact_new in (False, True):
        g = guard(
            output_scan=lambda t: select(scan.patterns(t, None)), redact_new_output=redact_new
        )
        r = g.answer_restorer()  # nothing was pseudonymised: nothing to restore
        ans = {"choices": [{"message": {"content": "write to bob@example.net"}}]}
        content = r.restore_json("chat", ans)["choices"][0]["message"]["content"]
        assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1}
        assert content == ("write to [EMAIL_ADDRESS]" if redact_new else "write to bob@example.net")


def test_an_unscreened_stream_releases_at_once_and_counts_at_the_end() -> None:
    r = _screening_restorer(redact_new=False)
    sr = r.stream()
    assert sr.feed("mail bob@example.net") == "mail bob@example.net"
    assert sr.flush() == ""
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1}


@pytest.mark.parametrize("redact_new", [False, True])
def test_a_streams_new_values_are_counted_once_though_its_end_is_flushed_twice(
    redact_new: bool,
) -> None:
    """The relay flushes a choice's texts at its finish_reason and again at [DONE]: a new value
    is one value in the audit record (the default "report" once counted it twice)."""
    from gateway.streaming import _Restoring

    r = _screening_restorer(redact_new)
    relay = _Restoring(r)
    text = {"index": 0, "delta": {"content": "mail bob@example.net now"}, "finish_reason": None}
    call = {"index": 0, "id": "c1", "function": {"name": "m", "arguments": '{"to": "a@b.org"}'}}
    tool = {"index": 1, "delta": {"tool_calls": [call]}, "finish_reason": None}
    relay.apply({"choices": [text, tool]})
    relay.apply({"choices": [{"index": i, "delta": {}, "finish_reason": "stop"} for i in (0, 1)]})
    assert relay.drain(True) is None
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 2}


ARGS = (
    '{"to": "bob@example.net", "note": "ring 0412 345 678", "n": [3, {"card": 4111111111111111}]}'
)


@pytest.mark.parametrize("size", [1, 5, 17])
def test_a_screened_streams_tool_call_arguments_come_whole_screened_and_valid(size: int) -> None:
    """Under output_new_pii "redact" a streamed call's arguments are held until its choice
    ends, then released screened: no piece of a new value leaves, and the JSON still parses."""
    r = _screening_restorer()
    sr = r.stream(json_string=True)
    pieces = [sr.feed(ARGS[i : i + size]) for i in range(0, len(ARGS), size)]
    assert pieces == [""] * len(pieces)
    out = sr.flush()
    assert json.loads(out) == {
        "to": "[EMAIL_ADDRESS]",
        "note": "ring [PHONE_NUMBER]",
        "n": [3, {"card": "[CREDIT_CARD]"}],
    }
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}


def test_an_unscreened_streams_tool_call_arguments_flow_and_are_counted() -> None:
    r = _screening_restorer(redact_new=False)
    sr = r.stream(json_string=True)
    assert sr.feed(ARGS[:20]) + sr.feed(ARGS[20:]) + sr.flush() == ARGS  # relayed as they come
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}


@pytest.mark.parametrize("redact_new", [False, True])
def test_an_answers_tool_call_arguments_are_scanned_value_by_value(redact_new: bool) -> None:
    r = _screening_restorer(redact_new)
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "mail", "arguments": ARGS}},
        {"id": "c2", "type": "function", "function": {"name": "x", "arguments": "to bob@x.org"}},
        {"id": "c3", "type": "function", "function": {"name": "y", "arguments": '{"a": 1}'}},
    ]
    answer = {"choices": [{"message": {"role": "assistant", "tool_calls": calls}}]}
    out = r.restore_json("chat", answer)["choices"][0]["message"]["tool_calls"]
    got = [c["function"]["arguments"] for c in out]
    if redact_new:
        assert json.loads(got[0])["n"][1]["card"] == "[CREDIT_CARD]"
        assert "bob@example.net" not in got[0] and json.loads(got[0])["to"] == "[EMAIL_ADDRESS]"
        assert got[1] == "to [EMAIL_ADDRESS]"  # not JSON: screened as text
    else:
        assert got[:2] == [ARGS, "to bob@x.org"]  # reported, untouched
    assert got[2] == '{"a": 1}'  # nothing found: the backend's text exactly
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}


@pytest.mark.parametrize("redact_new", [False, True])
def test_arguments_nested_past_the_stack_are_screened_as_text(redact_new: bool) -> None:
    """A backend's tool call nested 100,000 deep is no crash: screened as text."""
    r = _screening_restorer(redact_new)
    deep = "[" * 100_000 + '"bob@example.net"' + "]" * 100_000
    out = r.screen_arguments(deep)
    assert ("[EMAIL_ADDRESS]" in out) is redact_new and len(out) > 200_000
    assert dict(r.new_pii) == {"EMAIL_ADDRESS": 1}


async def test_a_pseudonymised_value_restored_into_arguments_is_not_new() -> None:
    """The prompt's own address, pseudonymised and restored inside a tool call, is the user's
    data coming back, not new data: restored, not redacted."""
    from gateway.pii.engine import AnalyzerOptions
    from gateway.pii.scanner import select

    scan = Analyzer.__new__(Analyzer)
    Analyzer.__init__(scan, AnalyzerOptions(ner=False))
    g = guard(
        {"ann@corp.example": "EMAIL_ADDRESS"},
        output_scan=lambda t: select(scan.patterns(t, None)),
        redact_new_output=True,
    )
    body = {"messages": [{"role": "user", "content": "mail ann@corp.example please"}]}
    ins = await g.inspect("chat", body, None)
    applied = g.apply(ins, always(PiiAction.PSEUDONYMISE), "tenant")
    (placeholder,) = re.findall(
        r"<EMAIL_ADDRESS_[0-9a-f]+>", applied.body["messages"][0]["content"]
    )
    args = json.dumps({"to": placeholder, "cc": "eve@else.example"})
    sr = applied.restorer.stream(json_string=True)
    assert sr.feed(args) == ""
    assert json.loads(sr.flush()) == {"to": "ann@corp.example", "cc": "[EMAIL_ADDRESS]"}


async def test_concurrent_requests_never_see_each_others_placeholders() -> None:
    names = {f"Person{i:03d} Example": "PERSON" for i in range(50)}
    g = guard(names)

    async def one(name: str) -> tuple[str, str]:
        body = {"messages": [{"role": "user", "content": f"I am {name}"}]}
        ins = await g.inspect("chat", body, None)
        await asyncio.sleep(0)
        a = g.apply(ins, always(PiiAction.PSEUDONYMISE), f"tenant-{name}")
        ph = re.search(r"<PERSON_[0-9a-f]+>", a.body["messages"][0]["content"])
        assert ph
        other = [p for p in (a.restorer.mapping) if p != ph.group()]  # type: ignore[attr-defined]
        assert other == []
        await asyncio.sleep(0)
        return name, a.restorer.restore_text(f"hi {ph.group()}")

    results = await asyncio.gather(*(one(n) for n in names))
    for name, restored in results:
        assert restored == f"hi {name}"


async def test_detector_error_fails_closed() -> None:
    settings = PiiSettings(executor="inline")

    class Broken(Analyzer):
        def __init__(self) -> None:
            pass

        def analyze(self, texts: Any, entities: Any, strict: bool = False) -> Any:
            raise RuntimeError("boom")

    g = Guard(FastDetector(settings, analyzer=Broken()), SECRET)
    with pytest.raises(GatewayError) as err:
        await g.inspect("chat", {"messages": [{"role": "user", "content": "x"}]}, None)
    assert err.value.cause is Cause.PII_UNAVAILABLE


async def test_missed_deadline_fails_closed() -> None:
    settings = PiiSettings(executor="thread", deadline_ms=50, inline_chars=0)

    class Slow(Analyzer):
        def __init__(self) -> None:
            pass

        def analyze(self, texts: Any, entities: Any, strict: bool = False) -> Any:
            import time

            time.sleep(0.5)
            return [[] for _ in texts]

    det = FastDetector(settings, analyzer=Slow())
    g = Guard(det, SECRET)
    with pytest.raises(GatewayError) as err:
        await g.inspect("chat", {"messages": [{"role": "user", "content": "x"}]}, None)
    assert err.value.cause is Cause.PII_UNAVAILABLE
    await det.close()


async def test_size_cap_gives_413_before_detection() -> None:
    fake = FakeDetector(VALUES)
    g = Guard(fake, SECRET, max_chars=10)
    with pytest.raises(GatewayError) as err:
        await g.inspect("chat", {"messages": [{"role": "user", "content": "x" * 11}]}, None)
    assert err.value.cause is Cause.TOO_LARGE
    assert fake.calls == []


async def test_passthrough_member_names_are_read_and_numbers_left_alone() -> None:
    g = guard()
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "min_p": 0.05,
        "guided_json": {"properties": {EMAIL: {"type": "string"}}},
    }
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.REDACT), "t")
    assert applied.body["min_p"] == 0.05
    assert EMAIL not in json.dumps(applied.body["guided_json"])
    assert list(applied.body["guided_json"]["properties"]) == ["[EMAIL_ADDRESS]"]


async def test_definition_names_and_structure_are_left_alone() -> None:
    g = guard()
    tool = {
        "type": "function",
        "function": {
            "name": "find_customer",
            "strict": True,
            "description": f"Find e.g. {NAME}",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": {}}}
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool],
        "tool_choice": "auto",
        "response_format": fmt,
    }
    applied = g.apply(await g.inspect("chat", body, None), always(PiiAction.REDACT), "t")
    out = applied.body
    assert out["tools"][0]["function"]["name"] == "find_customer"
    assert out["tools"][0]["function"]["parameters"] == tool["function"]["parameters"]
    assert NAME not in out["tools"][0]["function"]["description"]
    assert out["tool_choice"] == "auto" and out["response_format"] == fmt


def test_the_guard_without_names_loads_no_spacy_thinc_or_blis() -> None:
    """``pii.ner: false`` serves identifiers alone on a host without spaCy's stack installed
    (the GPU check's machine): building and using the guard must not import it."""
    import subprocess
    import sys

    probe = (
        "import asyncio, sys\n"
        "from gateway.config.pii import PiiSettings\n"
        "from gateway.pii import build_guard\n"
        "from gateway.pii.detector import FastDetector\n"
        "d = FastDetector(PiiSettings(ner=False, executor='inline'))\n"
        "build_guard(PiiSettings(ner=False), b's' * 32)\n"
        "found = asyncio.run(d.analyze(['TFN 123 456 782, mail a@b.org'], None))\n"
        "assert found and found[0], found\n"
        "print(sorted(m for m in ('spacy', 'thinc', 'blis') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


async def test_the_subject_index_keeps_a_digest_per_value_and_type_never_the_value() -> None:
    from gateway.pii.actions import subject_digest, subject_key
    from gateway.pii.guard import MAX_SUBJECTS

    body = {"messages": [{"role": "user", "content": f"{NAME} ({EMAIL}); {NAME} again"}]}
    off = await guard().inspect("chat", body, None)
    assert off.subjects == ()  # not asked for: nothing kept
    on = await guard(index_subjects=True).inspect("chat", body, None)
    key = subject_key(SECRET)
    want = {subject_digest(key, "PERSON", NAME), subject_digest(key, "EMAIL_ADDRESS", EMAIL)}
    assert set(on.subjects) == want and len(on.subjects) == 2  # a value twice: one digest
    assert list(on.subjects) == sorted(on.subjects)
    assert all(re.fullmatch(r"[0-9a-f]{16}", d) for d in on.subjects)
    assert NAME not in repr(on.subjects) and EMAIL not in repr(on.subjects)
    # another spelling of the same value is the same digest; the type is part of it
    assert subject_digest(key, "PERSON", "alice   EXAMPLE") == subject_digest(key, "PERSON", NAME)
    assert subject_digest(key, "AU_TFN", "123-456-782") == subject_digest(
        key, "AU_TFN", "123456782"
    )
    assert subject_digest(key, "PERSON", NAME) != subject_digest(key, "LOCATION", NAME)
    # one key for every tenant (a search finds a person in any), not the pseudonyms' key
    assert subject_digest(subject_key(b"t" * 32), "PERSON", NAME) not in want
    # a request naming thousands of people keeps the first MAX_SUBJECTS digests, sorted
    many = {f"Person Number{i:05d}": "PERSON" for i in range(MAX_SUBJECTS + 10)}
    crowd = {"messages": [{"role": "user", "content": " ".join(many)}]}
    kept = (await guard(many, index_subjects=True).inspect("chat", crowd, None)).subjects
    assert len(kept) == MAX_SUBJECTS and list(kept) == sorted(kept)


async def test_a_value_read_as_two_types_is_found_under_either() -> None:
    from gateway.pii.actions import subject_digest, subject_key
    from gateway.pii.contract import Finding

    class Nested(FakeDetector):
        async def analyze(
            self, texts: Any, entities: Any, strict: bool = False
        ) -> list[list[Finding]]:
            return [[Finding("CREDIT_CARD", 0, 16, 1.0, also=("JP_MY_NUMBER",))] for _ in texts]

    g = Guard(Nested({}), SECRET, index_subjects=True)
    card = "4111111111111111"
    found = await g.inspect("chat", {"messages": [{"role": "user", "content": card}]}, None)
    key = subject_key(SECRET)
    assert set(found.subjects) == {
        subject_digest(key, "CREDIT_CARD", card),
        subject_digest(key, "JP_MY_NUMBER", card),
    }


def _lp(*tokens: str, logprob: float = -0.5) -> list[dict[str, Any]]:
    return [{"token": t, "logprob": logprob, "bytes": list(t.encode()), "top_logprobs": [
        {"token": t, "logprob": logprob, "bytes": list(t.encode())}]} for t in tokens]  # fmt: skip


def test_logprobs_that_spell_a_placeholder_become_one_entry_of_the_value() -> None:
    from gateway.pii.restore import PlaceholderRestorer

    ph, other = "<PERSON_3f9a1c>", "<EMAIL_ADDRESS_aa11bb>"
    r = PlaceholderRestorer({ph: NAME, other: EMAIL}, [], None)
    tokens = _lp("Hi", " <", "PERSON", "_3f", "9a1c", ">", " and", " ", *([other[:5], other[5:]]))
    out = r.restore_tokens(tokens)
    assert [t["token"] for t in out] == ["Hi", f" {NAME}", " and", " ", EMAIL]
    merged = out[1]
    assert merged["logprob"] == pytest.approx(-2.5)  # the five tokens' sum
    assert merged["bytes"] == list(f" {NAME}".encode()) and merged["top_logprobs"] == []
    assert out[0] is tokens[0] and out[2] is tokens[6]  # the others as they came
    # a token that ends one placeholder and starts another: one entry for the run
    run = r.restore_tokens(_lp("<PERSON_3f", "9a1c><EMAIL_", "ADDRESS_aa11bb>!"))
    assert [t["token"] for t in run] == [f"{NAME}{EMAIL}!"]
    # nothing to restore, or entries of another shape: the list as it came
    plain = _lp("no", " names")
    assert r.restore_tokens(plain) is plain
    odd = [{"token": 3}, {"token": ph}]
    assert r.restore_tokens(odd) is odd


def test_a_stream_s_logprobs_hold_a_placeholder_s_tokens_until_it_is_whole() -> None:
    from gateway.pii.restore import PlaceholderRestorer

    ph = "<PERSON_3f9a1c>"
    ts = PlaceholderRestorer({ph: NAME}, [], None).stream_tokens()
    assert [t["token"] for t in ts.feed(_lp("Hi", " <PER"))] == ["Hi"] and ts.held == 1
    # a token ends the placeholder and starts another: the run is held until both are whole
    assert ts.feed(_lp("SON_3f9a1c><PERSON")) == [] and ts.held == 2
    assert [t["token"] for t in ts.feed(_lp("_3f9a1c>", " bye"))] == [f" {NAME}{NAME}", " bye"]
    assert ts.held == 0 and ts.flush() == []
    # what never became a placeholder comes out at the end as it came
    assert ts.feed(_lp("a <PERS")) == [] and [t["token"] for t in ts.flush()] == ["a <PERS"]
    # entries of another shape: relayed as they are
    odd = [{"token": 3}]
    assert ts.feed(odd) == odd


def test_an_answer_s_logprobs_are_restored_or_go_with_new_personal_data_redacted() -> None:
    from gateway.pii.restore import PlaceholderRestorer

    ph = "<PERSON_3f9a1c>"
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"Hi {ph}"},
                           "logprobs": {"content": _lp("Hi", " <PERSON", "_3f9a1c>")}}]}  # fmt: skip
    PlaceholderRestorer({ph: NAME}, [(("PERSON"), NAME)], None).restore_json("chat", answer)
    assert answer["choices"][0]["message"]["content"] == f"Hi {NAME}"
    assert [t["token"] for t in answer["choices"][0]["logprobs"]["content"]] == ["Hi", f" {NAME}"]
    # the model wrote an address the prompt did not hold: redacted from the text, and the
    # logprobs that spell it go; a choice that holds none keeps its logprobs
    r = _screening_restorer(redact_new=True)
    leaky = {"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Write to bob@example.net"},
         "logprobs": {"content": _lp("Write", " to", " bob", "@example", ".net")}},
        {"index": 1, "message": {"role": "assistant", "content": "No address here."},
         "logprobs": {"content": _lp("No", " address")}},
    ]}  # fmt: skip
    r.restore_json("chat", leaky)
    assert leaky["choices"][0]["message"]["content"] == "Write to [EMAIL_ADDRESS]"
    assert leaky["choices"][0]["logprobs"] is None
    assert leaky["choices"][1]["logprobs"] is not None
    # counted, not redacted (the default): the text and its logprobs as written
    counted = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "bob@example.net"},
                            "logprobs": {"content": _lp("bob@example.net")}}]}  # fmt: skip
    _screening_restorer(redact_new=False).restore_json("chat", counted)
    assert counted["choices"][0]["logprobs"]["content"][0]["token"] == "bob@example.net"


def test_a_stream_that_redacts_new_personal_data_drops_its_logprobs() -> None:
    from gateway.streaming import _Restoring

    chunk = {"choices": [{"index": 0, "delta": {"content": "Hello "}, "finish_reason": None,
                          "logprobs": {"content": _lp("Hello", " ")}}]}  # fmt: skip
    _Restoring(_screening_restorer(redact_new=True)).apply(chunk)
    assert chunk["choices"][0]["logprobs"] is None
    kept = {"choices": [{"index": 0, "delta": {"content": "Hello "}, "finish_reason": None,
                         "logprobs": {"content": _lp("Hello", " ")}}]}  # fmt: skip
    _Restoring(_screening_restorer(redact_new=False)).apply(kept)
    assert kept["choices"][0]["logprobs"] is not None
