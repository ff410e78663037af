"""Random request bodies through the running gateway with the real PII guard: whatever the
shape, the answer is a 2xx or an OpenAI-shaped client error, never the gateway's own 500; a
refused request sends nothing; an accepted one sends none of the personal values planted in it.

The bodies start from a valid request of each endpoint and change one to four of its members
(every parameter the gateway knows, and some it does not) to random JSON: scalars of every type,
strings with personal data, lists and objects nested a few levels, message and content-part
shapes with missing, extra and mistyped members. A fixed seed per endpoint: a failure repeats.
``PORTCULLIS_FUZZ_ROUNDS=N`` runs N rounds of 250 bodies per endpoint, each with its own seed
(the suite runs one).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.pii.test_gateway_pii import start_pseudonymising
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

PLANTED = ("js@example.com", "123 456 782", "4111 1111 1111 1111")
STRINGS = [
    "",
    "hi",
    "mail js@example.com please",
    "TFN 123 456 782",
    "card 4111 1111 1111 1111",
    "ünïcødé ✓ 漢字",
    "\u0000",
    "x" * 300,
    "gpt-test",
    "emb-test",
    "user",
    "assistant",
    "system",
    "tool",
    "function",
    "text",
    "image_url",
    "auto",
    "none",
    "required",
    "json_object",
    "json_schema",
]
CHAT_PARAMS = [
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "response_format",
    "n", "stop", "seed", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "logprobs", "top_logprobs", "user", "metadata", "logit_bias", "presence_penalty",
    "frequency_penalty", "parallel_tool_calls", "modalities", "audio", "prediction",
    "service_tier", "store", "reasoning_effort", "functions", "function_call", "top_k",
    "safety_identifier", "prompt_cache_key", "web_search_options", "api_base", "unknown_x",
]  # fmt: skip
COMPLETION_PARAMS = [
    "model", "prompt", "stream", "stream_options", "n", "stop", "seed", "max_tokens",
    "temperature", "top_p", "logprobs", "echo", "suffix", "best_of", "user", "logit_bias",
    "top_k", "unknown_x",
]  # fmt: skip
EMBEDDING_PARAMS = ["model", "input", "encoding_format", "dimensions", "user", "unknown_x"]
MESSAGES_PARAMS = [
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "metadata", "thinking", "service_tier",
    "output_config", "cache_control", "speed", "container", "inference_geo", "api_base",
    "unknown_x",
]  # fmt: skip
RESPONSES_PARAMS = [
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
    "tool_choice", "parallel_tool_calls", "text", "stream", "stream_options", "store",
    "metadata", "user", "truncation", "include", "reasoning", "top_logprobs", "top_k",
    "previous_response_id", "background", "max_tool_calls", "api_base", "unknown_x",
]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 7, 128, 4096, 2**31, 2**63, -(2**40)])
    if kind == 3:
        return rng.choice([0.0, 0.5, 1.5, -2.0, 1e-9, 1e300])
    if kind in (4, 5):
        return rng.choice(STRINGS)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        return _message(rng, depth + 1)
    keys = rng.sample(
        ["type", "text", "content", "role", "name", "function", "arguments", "x", "a b"], 3
    )
    return {k: _value(rng, depth + 1) for k in keys}


def _part(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if r < 0.5:
        return {"type": "text", "text": rng.choice(STRINGS)}
    if r < 0.65:
        return {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    if r < 0.8:
        return {"type": rng.choice(STRINGS), "text": _value(rng, depth + 1)}
    return _value(rng, depth + 1)


def _message(rng: random.Random, depth: int = 0) -> Any:
    msg: dict[str, Any] = {"role": rng.choice(["user", "assistant", "system", "tool", "x"])}
    if rng.random() < 0.05:
        msg["role"] = _value(rng, depth + 1)  # any JSON, lists and objects included
    r = rng.random()
    if r < 0.5:
        msg["content"] = rng.choice(STRINGS)
    elif r < 0.8:
        msg["content"] = [_part(rng, depth) for _ in range(rng.randrange(1, 4))]
    elif r < 0.9:
        msg["content"] = _value(rng, depth + 1)
    if rng.random() < 0.2:
        msg["tool_calls"] = [
            {
                "id": rng.choice(["call_1", "js@example.com", 5]),
                "type": "function",
                "function": {"name": "lookup", "arguments": rng.choice(STRINGS)},
            }
        ]
    if rng.random() < 0.15:
        msg["tool_call_id"] = rng.choice(STRINGS)
    if rng.random() < 0.15:
        msg[rng.choice(["name", "refusal", "extra", "a b"])] = _value(rng, depth + 1)
    return msg


def _item(rng: random.Random, depth: int = 0) -> Any:
    """An input item of the Responses API, of any shape."""
    r = rng.random()
    if r < 0.4:
        msg = _message(rng, depth)
        if isinstance(msg, dict) and rng.random() < 0.5:  # Responses' own part types
            parts = msg.get("content")
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict) and part.get("type") == "text":
                    part["type"] = rng.choice(["input_text", "output_text"])
        return msg
    if r < 0.55:
        return {"type": "function_call", "call_id": rng.choice(STRINGS), "name": "lookup",
                "arguments": rng.choice(STRINGS)}  # fmt: skip
    if r < 0.7:
        output = rng.choice([rng.choice(STRINGS), [{"type": "input_text", "text": "x"}]])
        return {"type": "function_call_output", "call_id": "c", "output": output}
    if r < 0.8:
        return {"type": rng.choice(["reasoning", "item_reference", "web_search_call", "x"])}
    return _value(rng, depth + 1)


def _block(rng: random.Random, depth: int = 0) -> Any:
    """A content block of Anthropic's Messages API, of any shape."""
    r = rng.random()
    if r < 0.3:
        return {"type": "text", "text": rng.choice(STRINGS)}
    if r < 0.45:
        return {"type": "tool_use", "id": rng.choice(STRINGS), "name": "lookup",
                "input": rng.choice([{"q": rng.choice(STRINGS)}, _value(rng, depth + 1)])}  # fmt: skip
    if r < 0.6:
        content = rng.choice([rng.choice(STRINGS), [{"type": "text", "text": "x"}], _value(rng, 2)])
        return {"type": "tool_result", "tool_use_id": rng.choice(STRINGS), "content": content}
    if r < 0.7:
        source = rng.choice([{"type": "text", "data": rng.choice(STRINGS)}, _value(rng, 2)])
        return {"type": rng.choice(["document", "image"]), "source": source}
    if r < 0.8:
        return {"type": rng.choice(["thinking", "server_tool_use", "search_result", "x"])}
    return _value(rng, depth + 1)


def _turn(rng: random.Random, depth: int = 0) -> Any:
    """A message of Anthropic's Messages API, of any shape."""
    if rng.random() < 0.1:
        return _value(rng, depth + 1)
    role: Any = rng.choice(["user", "assistant", "system", "x"])
    content: Any = rng.choice(STRINGS)
    if rng.random() < 0.6:
        content = [_block(rng, depth) for _ in range(rng.randrange(1, 4))]
    elif rng.random() < 0.2:
        content = _value(rng, depth + 1)
    return {"role": role, "content": content}


def _tools(rng: random.Random) -> Any:
    if rng.random() < 0.3:
        return _value(rng, 1)
    fn: dict[str, Any] = {
        "name": "lookup",
        "description": rng.choice(STRINGS),
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string", "description": rng.choice(STRINGS)}},
        },
    }
    tool: dict[str, Any] = {"type": "function", "function": fn}
    if rng.random() < 0.3:  # a member a client adds, at either level
        (fn if rng.random() < 0.5 else tool)[rng.choice(["examples", "note"])] = _value(rng, 1)
    return [tool]


def _response_format(rng: random.Random) -> Any:
    spec: dict[str, Any] = {"name": "r", "schema": {"type": "object", "properties": {}}}
    fmt: dict[str, Any] = {"type": "json_schema", "json_schema": spec}
    if rng.random() < 0.5:
        (spec if rng.random() < 0.5 else fmt)[rng.choice(["description", "note"])] = _value(rng, 1)
    return fmt


PII_TEXTS = [t for t in STRINGS if any(v in t for v in PLANTED)]


def _plausible(rng: random.Random, endpoint: str) -> dict[str, Any]:
    """A body validation accepts, personal data in the places a caller may put text."""

    def text() -> str:
        return rng.choice([*PII_TEXTS, "hello there"])

    if endpoint == "chat":
        messages: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 4)):
            role = rng.choice(["user", "assistant", "system"])
            content: Any = text()
            if rng.random() < 0.4:
                content = [{"type": "text", "text": text()} for _ in range(rng.randint(1, 3))]
            messages.append({"role": role, "content": content})
        body: dict[str, Any] = {"model": "gpt-test", "messages": messages}
        if rng.random() < 0.3:
            body["tools"] = (
                _tools(rng)
                if rng.random() < 0.5
                else [{"type": "function", "function": {"name": "f", "description": text()}}]
            )
    elif endpoint == "responses":
        items: list[Any] = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.6:
                role = rng.choice(["user", "assistant", "system", "developer"])
                items.append({"role": role, "content": text()})
            elif kind < 0.8:
                part = {"type": "input_text", "text": text()}
                items.append({"type": "message", "role": "user", "content": [part]})
            else:
                call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
                items += [call, {"type": "function_call_output", "call_id": "c1", "output": text()}]
        body = {"model": "gpt-test", "input": rng.choice([text(), items])}
        if rng.random() < 0.3:
            body["instructions"] = text()
        if rng.random() < 0.3:
            body["tools"] = [{"type": "function", "name": "f", "description": text()}]
    elif endpoint == "messages":
        turns: list[Any] = [{"role": "user", "content": text()}]
        if rng.random() < 0.5:
            use = {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": text()}}
            back = {"type": "tool_result", "tool_use_id": "t1", "content": text()}
            if rng.random() < 0.5:
                back["content"] = [{"type": "text", "text": text()}]
            turns += [
                {"role": "assistant", "content": [{"type": "text", "text": text()}, use]},
                {"role": "user", "content": [back, {"type": "text", "text": text()}]},
            ]
        body = {"model": "gpt-test", "max_tokens": 64, "messages": turns}
        if rng.random() < 0.3:
            body["system"] = rng.choice([text(), [{"type": "text", "text": text()}]])
        if rng.random() < 0.3:
            body["tools"] = [
                {"name": "f", "description": text(), "input_schema": {"type": "object"}}
            ]
    elif endpoint == "completions":
        body = {"model": "gpt-test", "prompt": rng.choice([text(), [text(), text()]])}
        if rng.random() < 0.3:
            body["suffix"] = text()
    else:
        body = {"model": "emb-test", "input": rng.choice([text(), [text(), text()]])}
    extras = {
        "user": text,
        "metadata": lambda: {rng.choice(["k", "js@example.com"]): text()},
        "stop": lambda: [text()],
        "top_k": lambda: _value(rng),  # a backend's passthrough parameter: anything
        "stream": lambda: rng.choice([True, False]),
        "response_format": lambda: _response_format(rng),
        "tool_choice": lambda: rng.choice(["auto", {"type": "function", "note": text()}]),
    }
    if endpoint == "responses":
        del extras["stop"], extras["response_format"], extras["tool_choice"]
        extras["metadata"] = lambda: {"k": rng.choice(["hello", "js@example.com"])}
    if endpoint == "messages":
        del extras["stop"], extras["response_format"], extras["tool_choice"], extras["user"]
        extras["metadata"] = lambda: {"user_id": rng.choice(["u-1", "js@example.com"])}
        extras["stop_sequences"] = lambda: [text()]
        extras["tool_choice"] = lambda: rng.choice(
            [{"type": "auto"}, {"type": "tool", "name": "f"}]
        )
    for name in rng.sample(sorted(extras), rng.randint(0, 3)):
        if endpoint not in ("chat", "responses", "messages") and name in (
            "response_format",
            "tool_choice",
        ):
            continue
        if endpoint == "embeddings" and name in ("stop", "stream", "metadata"):
            continue
        body[name] = extras[name]()
    return body


def _body(rng: random.Random, endpoint: str) -> dict[str, Any]:
    if rng.random() < 0.5:
        return _plausible(rng, endpoint)
    if endpoint == "chat":
        body: dict[str, Any] = {"model": "gpt-test", "messages": [_message(rng)]}
        params = CHAT_PARAMS
    elif endpoint == "responses":
        body = {"model": "gpt-test", "input": rng.choice([rng.choice(STRINGS), [_item(rng)]])}
        params = RESPONSES_PARAMS
    elif endpoint == "messages":
        body = {"model": "gpt-test", "max_tokens": 64, "messages": [_turn(rng)]}
        params = MESSAGES_PARAMS
    elif endpoint == "completions":
        body = {"model": "gpt-test", "prompt": rng.choice(STRINGS)}
        params = COMPLETION_PARAMS
    else:
        body = {"model": "emb-test", "input": rng.choice(STRINGS)}
        params = EMBEDDING_PARAMS
    for name in rng.sample(params, rng.randint(1, min(4, len(params) // 3))):
        if name == "messages" and endpoint == "messages":
            body[name] = [_turn(rng) for _ in range(rng.randint(0, 4))]
        elif name == "messages":
            body[name] = [_message(rng) for _ in range(rng.randint(0, 4))]
        elif name == "input" and endpoint == "responses":
            body[name] = [_item(rng) for _ in range(rng.randint(0, 4))]
        elif name == "tools" and endpoint == "responses" and rng.random() < 0.6:
            body[name] = [{"type": rng.choice(["function", "web_search"]), "name": "f",
                           "parameters": _value(rng, 1)}]  # fmt: skip
        elif name == "tools":
            body[name] = _tools(rng)
        elif name == "response_format" and rng.random() < 0.6:
            body[name] = _response_format(rng)
        elif name == "stream" and rng.random() < 0.7:
            body[name] = rng.choice([True, False])
        else:
            body[name] = _value(rng)
    return body


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, str]]:
    running, _, key = start_pseudonymising(tmp_path_factory.mktemp("gw-fuzz"), upstream_server)
    yield running, key
    running.stop()


@pytest.mark.parametrize(
    ("endpoint", "path", "seed"),
    [
        ("chat", "/v1/chat/completions", 1),
        ("completions", "/v1/completions", 2),
        ("embeddings", "/v1/embeddings", 3),
        ("responses", "/v1/responses", 4),
        ("messages", "/v1/messages", 5),
    ],
)
def test_random_bodies_get_an_answer_or_a_client_error_and_leak_nothing(
    gw: tuple[RunningGateway, str], upstream: FakeUpstream, endpoint: str, path: str, seed: int
) -> None:
    running, key = gw
    for r in range(int(os.environ.get("PORTCULLIS_FUZZ_ROUNDS", "1"))):
        _round(running, key, upstream, endpoint, path, seed + 1000 * r)


def _round(
    running: RunningGateway, key: str, upstream: FakeUpstream, endpoint: str, path: str, seed: int
) -> None:
    rng = random.Random(seed)
    statuses: dict[int, int] = {}
    for i in range(250):
        body = _body(rng, endpoint)
        upstream.mode = rng.choice(["normal", "echo"])
        before = len(upstream.received)
        status, _, got = running.request("POST", path, body, token=key, parse=False)
        # (the helper hands back an error's body parsed, an answer's as bytes)
        answer = got if isinstance(got, bytes) else json.dumps(got).encode()
        statuses[status] = statuses.get(status, 0) + 1
        case = f"seed {seed} case {i}: {json.dumps(body)[:400]} -> {status} {answer[:300]!r}"
        assert status != 500 and b"Traceback" not in answer, case
        if status >= 400:
            error = json.loads(answer)["error"]
            assert error["message"] and error["type"], case
            assert error["code"] != "internal_error", case
        if 400 <= status < 500:
            assert len(upstream.received) == before, case  # refused: nothing left
        for sent in upstream.received[before:]:
            text = json.dumps(sent["json"], ensure_ascii=False)
            assert not any(v in text for v in PLANTED), case
    assert statuses.get(200, 0) >= 75, statuses  # the fuzzer also reaches the forward path
