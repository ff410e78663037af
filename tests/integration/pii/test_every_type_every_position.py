"""Each identifier type, in each position a request can carry text, through the running gateway
with the real detector: the fake upstream's record shows the value never left raw."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.pii_eval.corpus import labelled
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.integration.pii.test_gateway_pii import _rule
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration


def _one_per_type() -> list[tuple[str, str, str]]:
    """(entity type, sample text, the value in it): one labelled sample of every type."""
    seen: dict[str, tuple[str, str, str]] = {}
    for s in labelled(seed=11, per_type=1, names=3):
        a, b, etype = s.spans[0]
        seen.setdefault(etype, (etype, s.text, s.text[a:b]))
    return sorted(seen.values())


SAMPLES = _one_per_type()

Body = Callable[[str], tuple[str, dict[str, Any]]]
_USER = {"role": "user", "content": "hello"}


def _args(text: str) -> str:
    return json.dumps({"note": text})


def _tool_round(arguments: str, result: str, call_id: str = "c1") -> tuple[str, dict[str, Any]]:
    """A history in which the assistant called a tool with ``arguments`` and got ``result``."""
    call = {"id": call_id, "type": "function", "function": {"name": "f", "arguments": arguments}}
    return (
        "chat",
        {
            "messages": [
                _USER,
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call_id, "content": result},
            ]
        },
    )


def _responses_round(
    arguments: str, output: Any, call_id: str = "c1"
) -> tuple[str, dict[str, Any]]:
    """The same tool round as Responses input items."""
    return (
        "responses",
        {
            "input": [
                _USER,
                {"type": "function_call", "call_id": call_id, "name": "f", "arguments": arguments},
                {"type": "function_call_output", "call_id": call_id, "output": output},
            ]
        },
    )


def _messages_round(
    tool_input: dict[str, Any], result: Any, call_id: str = "toolu_1"
) -> tuple[str, dict[str, Any]]:
    """The same tool round as Anthropic Messages turns (``tool_use``, then ``tool_result``)."""
    use = {"type": "tool_use", "id": call_id, "name": "f", "input": tool_input}
    back = {"type": "tool_result", "tool_use_id": call_id, "content": result}
    return (
        "messages",
        {
            "messages": [
                _USER,
                {"role": "assistant", "content": [use]},
                {"role": "user", "content": [back]},
            ]
        },
    )


POSITIONS: dict[str, Body] = {
    "system": lambda t: ("chat", {"messages": [{"role": "system", "content": t}, _USER]}),
    "user": lambda t: ("chat", {"messages": [{"role": "user", "content": t}]}),
    "earlier user turn": lambda t: (
        "chat",
        {
            "messages": [
                {"role": "user", "content": t},
                {"role": "assistant", "content": "Noted."},
                _USER,
            ]
        },
    ),
    "assistant history": lambda t: (
        "chat",
        {"messages": [_USER, {"role": "assistant", "content": t}, _USER]},
    ),
    "tool result": lambda t: _tool_round("{}", t),
    "content part": lambda t: (
        "chat",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": t}]}]},
    ),
    "tool call arguments": lambda t: _tool_round(_args(t), "done"),
    "legacy function_call": lambda t: (
        "chat",
        {
            "messages": [
                _USER,
                {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": _args(t)}},
                {"role": "function", "name": "f", "content": "done"},
            ]
        },
    ),
    "user field": lambda t: ("chat", {"messages": [_USER], "user": t[:256]}),
    "tool call id": lambda t: _tool_round("{}", "done", call_id=t),
    "metadata": lambda t: ("chat", {"messages": [_USER], "metadata": {"ticket": t}}),
    "metadata key": lambda t: ("chat", {"messages": [_USER], "metadata": {t: "1"}}),
    "a message member's name": lambda t: ("chat", {"messages": [{**_USER, t: "1"}]}),
    "prediction": lambda t: (
        "chat",
        {"messages": [_USER], "prediction": {"type": "content", "content": t}},
    ),
    "tool definition": lambda t: (
        "chat",
        {"messages": [_USER], "tools": [{"type": "function", "function": {"name": "f", "description": t}}]},
    ),
    "completions prompt": lambda t: ("completions", {"prompt": t}),
    "completions suffix": lambda t: ("completions", {"prompt": "hello", "suffix": t}),
    "embeddings input": lambda t: ("embeddings", {"input": [t]}),
    # OpenAI's Responses API, served over chat completions: the same guard, every position
    "responses input": lambda t: ("responses", {"input": t}),
    "responses instructions": lambda t: ("responses", {"input": "hello", "instructions": t}),
    "responses input_text part": lambda t: (
        "responses",
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": t}]}]},
    ),
    "responses assistant output_text": lambda t: (
        "responses",
        {"input": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": t}]}, _USER]},
    ),
    "responses function_call arguments": lambda t: _responses_round(_args(t), "done"),
    "responses function_call_output": lambda t: _responses_round("{}", t),
    "responses function_call_output parts": lambda t: _responses_round(
        "{}", [{"type": "input_text", "text": t}]
    ),
    "responses call_id": lambda t: _responses_round("{}", "done", call_id=t),
    "responses tool definition": lambda t: (
        "responses",
        {"input": "hello", "tools": [{"type": "function", "name": "f", "description": t}]},
    ),
    "responses user field": lambda t: ("responses", {"input": "hello", "user": t[:256]}),
    # Anthropic's Messages API, served over chat completions: the same guard, every position
    "messages user text": lambda t: ("messages", {"messages": [{"role": "user", "content": t}]}),
    "messages system": lambda t: ("messages", {"messages": [_USER], "system": t}),
    "messages system blocks": lambda t: (
        "messages",
        {"messages": [_USER], "system": [{"type": "text", "text": t}]},
    ),
    "messages text block": lambda t: (
        "messages",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": t}]}]},
    ),
    "messages assistant text": lambda t: (
        "messages",
        {"messages": [_USER, {"role": "assistant", "content": [{"type": "text", "text": t}]}, _USER]},
    ),
    "messages tool_use.input": lambda t: _messages_round({"note": t}, "done"),
    "messages tool_result": lambda t: _messages_round({}, t),
    "messages tool_result blocks": lambda t: _messages_round({}, [{"type": "text", "text": t}]),
    "messages tool_use id": lambda t: _messages_round({}, "done", call_id=t),
    "messages document text": lambda t: (
        "messages",
        {"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}}]}]},
    ),
    "messages tool definition": lambda t: (
        "messages",
        {"messages": [_USER], "tools": [{"name": "f", "description": t, "input_schema": {"type": "object"}}]},
    ),
    "messages metadata user_id": lambda t: (
        "messages",
        {"messages": [_USER], "metadata": {"user_id": t[:256]}},
    ),
}  # fmt: skip

_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings", "responses": "/v1/responses", "messages": "/v1/messages"}  # fmt: skip
_MODELS = {"chat": "gpt-test", "completions": "gpt-test", "embeddings": "emb-test", "responses": "gpt-test", "messages": "gpt-test"}  # fmt: skip


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, str]]:
    tmp: Path = tmp_path_factory.mktemp("gw-every")
    running = RunningGateway(
        core_settings(tmp, upstream_server),
        Components(policy=FakeDecider(_rule({"*": "pseudonymise"})), audit=MemoryAuditSink()),
    ).start()
    yield running, running.create_key(user="alice", jurisdiction="AU-NSW", sector="private")
    running.stop()


def test_the_corpus_has_every_type() -> None:
    types = {t for t, _, _ in SAMPLES}
    assert {
        "AU_TFN",
        "KR_RRN",
        "TW_NATIONAL_ID",
        "JP_MY_NUMBER",
        "PERSON",
        "EMAIL_ADDRESS",
    } <= types
    assert len(types) >= 24


@pytest.mark.parametrize("position", list(POSITIONS))
def test_no_identifier_leaves_raw_from_any_position(
    gw: tuple[RunningGateway, str], upstream: FakeUpstream, position: str
) -> None:
    running, key = gw
    leaked = []
    for etype, text, value in SAMPLES:
        endpoint, body = POSITIONS[position](text)
        upstream.received.clear()
        if endpoint == "messages":
            body = {"max_tokens": 64, **body}
        status, _, answer = running.request(
            "POST", _PATHS[endpoint], {"model": _MODELS[endpoint], **body}, token=key
        )
        assert status == 200, (etype, answer)
        assert len(upstream.received) == 1
        if value in json.dumps(upstream.received[0]["json"], ensure_ascii=False):
            leaked.append(etype)
    assert leaked == [], f"raw values reached the upstream from {position}: {leaked}"
