"""Random answers from the backend through the running gateway with the real PII guard: whatever
the backend sends back — JSON of any shape, pseudonyms in odd places, broken or truncated event
streams — the caller gets an answer or an OpenAI-shaped 502, never the gateway's own 500, and a
stream always ends with ``[DONE]`` (a Responses stream with its final event: completed,
incomplete or failed).

``PORTCULLIS_FUZZ_ROUNDS=N`` runs N rounds of 150 answers per mode, each with its own seed.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.pii.test_gateway_pii import start_pseudonymising
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

PROMPT = "I am John Smith, mail js@example.com"
SCALARS: list[Any] = [None, True, 0, -1, 2**70, 1.5, "", "ok", "stop", "assistant", [], {}]


def _value(rng: random.Random, ph: str, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.3 or depth > 3:
        return rng.choice([*SCALARS, ph, f"Dear {ph}, hello", ph[:5], "tool_calls"])
    if r < 0.5:
        return [_value(rng, ph, depth + 1) for _ in range(rng.randrange(3))]
    keys = rng.sample(["content", "role", "text", "index", "arguments", "name", "x", ph], 3)
    return {k: _value(rng, ph, depth + 1) for k in keys}


def _message(rng: random.Random, ph: str) -> Any:
    if rng.random() < 0.15:
        return _value(rng, ph)
    msg: dict[str, Any] = {"role": rng.choice(["assistant", None, 3])}
    msg["content"] = rng.choice([f"Hi {ph}", None, _value(rng, ph), [{"type": "text", "text": ph}]])
    if rng.random() < 0.3:
        msg["tool_calls"] = rng.choice(
            [
                [{"id": "c", "type": "function", "function": {"name": "f", "arguments": ph}}],
                [{"function": {"arguments": json.dumps({"to": ph})}}],
                _value(rng, ph),
            ]
        )
    if rng.random() < 0.2:
        msg[rng.choice(["refusal", "reasoning_content", "audio", "extra"])] = _value(rng, ph)
    return msg


def _answer(rng: random.Random, endpoint: str, ph: str) -> Any:
    if rng.random() < 0.1:
        return _value(rng, ph)
    body: dict[str, Any] = {"id": "x", "object": "chat.completion", "created": 1}
    if rng.random() < 0.9:
        body["model"] = rng.choice(["gpt-test", None, 5, ph])
    n = rng.randrange(3)
    if endpoint == "chat":
        choices: Any = [
            {"index": i, "message": _message(rng, ph), "finish_reason": "stop"} for i in range(n)
        ]
    elif endpoint == "completions":
        choices = [
            {"index": i, "text": rng.choice([ph, None, 5, _value(rng, ph)])} for i in range(n)
        ]
    else:
        body["data"] = rng.choice(
            [[{"embedding": [0.1], "index": 0}], _value(rng, ph), [{"embedding": ph}]]
        )
        choices = None
    if choices is not None:
        body["choices"] = choices if rng.random() < 0.85 else _value(rng, ph)
    if rng.random() < 0.8:
        body["usage"] = rng.choice(
            [{"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}, _value(rng, ph)]
        )
    return body


def _event(rng: random.Random, ph: str) -> bytes:
    r = rng.random()
    if r < 0.1:
        return b"data: {not json\n\n"
    if r < 0.15:
        return b": a comment\n\n"
    if r < 0.2:
        return b"event: ping\ndata: {}\n\n"
    if r < 0.25:
        return json.dumps(_value(rng, ph)).encode() + b"\n\n"  # no data: prefix
    piece = rng.choice([ph, ph[:4], ph[4:], f" {ph} ", "hello ", None, 7, _value(rng, ph)])
    delta: Any = {"content": piece} if rng.random() < 0.8 else _value(rng, ph)
    ev: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "choices": []}
    if rng.random() < 0.9:
        ev["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
    else:
        ev["choices"] = _value(rng, ph)
    if rng.random() < 0.1:
        ev["usage"] = _value(rng, ph)
    return b"data: " + json.dumps(ev).encode() + b"\n\n"


def _stream(rng: random.Random, ph: str) -> bytes:
    raw = b"".join(_event(rng, ph) for _ in range(rng.randrange(0, 6)))
    if rng.random() < 0.7:
        raw += b"data: [DONE]\n\n"
    if rng.random() < 0.2:
        raw = raw[: rng.randrange(len(raw) + 1)]  # cut anywhere
    return raw


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, str]]:
    running, _, key = start_pseudonymising(
        tmp_path_factory.mktemp("gw-fuzz-answers"), upstream_server
    )
    yield running, key
    running.stop()


def _placeholder(running: RunningGateway, key: str, upstream: FakeUpstream) -> str:
    upstream.mode = "echo"
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": PROMPT}]}
    running.request("POST", "/v1/chat/completions", body, token=key)
    m = re.search(r"<PERSON_[0-9a-f]+>", json.dumps(upstream.received[-1]["json"]))
    assert m, upstream.received[-1]
    upstream.mode = "normal"
    return m.group()


def _rounds() -> range:
    return range(int(os.environ.get("PORTCULLIS_FUZZ_ROUNDS", "1")))


# (endpoint, path, request): ``responses`` and ``messages`` are served over the backend's chat
# completions.
ENDPOINTS = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}]}),
    "completions": ("/v1/completions", {"prompt": PROMPT}),
    "embeddings": ("/v1/embeddings", {"input": PROMPT}),
    "responses": ("/v1/responses", {"input": PROMPT}),
    "messages": (
        "/v1/messages",
        {"max_tokens": 100, "messages": [{"role": "user", "content": PROMPT}]},
    ),
}
# How a Responses stream may end.
RESPONSE_ENDS = (b"response.completed", b"response.incomplete", b"response.failed")
# How a Messages stream may end.
MESSAGE_ENDS = (b"message_stop", b"error")


@pytest.mark.parametrize("endpoint", ["chat", "completions", "embeddings", "responses", "messages"])
def test_any_answer_becomes_an_answer_or_a_502(
    gw: tuple[RunningGateway, str], upstream: FakeUpstream, endpoint: str
) -> None:
    running, key = gw
    ph = _placeholder(running, key, upstream)
    path, fields = ENDPOINTS[endpoint]
    request: dict[str, Any] = {"model": "gpt-test" if endpoint != "embeddings" else "emb-test"}
    request.update(fields)
    backend = "chat" if endpoint in ("responses", "messages") else endpoint
    for r in _rounds():
        rng = random.Random(10 + r)
        for i in range(150):
            upstream.raw_json = _answer(rng, backend, ph)
            status, _, got = running.request("POST", path, request, token=key, parse=False)
            answer = got if isinstance(got, bytes) else json.dumps(got).encode()
            case = f"round {r} case {i}: {json.dumps(upstream.raw_json)[:300]} -> {status} {answer[:300]!r}"
            assert status in (200, 502), case
            assert b"Traceback" not in answer, case
            doc = json.loads(answer)
            if status == 502:
                assert doc["error"]["message"] and doc["error"]["code"] != "internal_error", case
                if endpoint == "messages":
                    assert doc["type"] == "error" and doc["error"]["type"] == "api_error", case
            elif endpoint == "responses":
                assert doc["object"] == "response" and isinstance(doc["output"], list), case
            elif endpoint == "messages":
                assert doc["type"] == "message" and isinstance(doc["content"], list), case
                assert doc["stop_reason"] is not None, case


@pytest.mark.parametrize("endpoint", ["chat", "completions", "responses", "messages"])
def test_any_event_stream_is_relayed_to_its_done(
    gw: tuple[RunningGateway, str], upstream: FakeUpstream, endpoint: str
) -> None:
    running, key = gw
    ph = _placeholder(running, key, upstream)
    path, fields = ENDPOINTS[endpoint]
    request: dict[str, Any] = {"model": "gpt-test", "stream": True, **fields}
    for r in _rounds():
        rng = random.Random(20 + r)
        for i in range(150):
            upstream.raw_sse = _stream(rng, ph)
            status, _, got = running.request("POST", path, request, token=key, parse=False)
            answer = got if isinstance(got, bytes) else json.dumps(got).encode()
            case = f"round {r} case {i}: {upstream.raw_sse[:300]!r} -> {status} {answer[-300:]!r}"
            assert status in (200, 502), case
            assert b"Traceback" not in answer, case
            if status == 200 and endpoint == "responses":
                last = answer.rstrip().rsplit(b"\n\n", 1)[-1]
                kind = last[7:].split(b"\n")[0] if last.startswith(b"event: ") else b""
                assert kind in RESPONSE_ENDS, case
                assert b"[DONE]" not in answer, case
            elif status == 200 and endpoint == "messages":
                last = answer.rstrip().rsplit(b"\n\n", 1)[-1]
                kind = last[7:].split(b"\n")[0] if last.startswith(b"event: ") else b""
                assert kind in MESSAGE_ENDS, case
                assert b"[DONE]" not in answer, case
            elif status == 200:
                assert answer.rstrip().endswith(b"data: [DONE]"), case
