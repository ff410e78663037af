"""``POST /v1/messages`` through Anthropic's official SDK, served over a backend's chat
completions.

The fake upstream only speaks chat completions: what it received is the evidence of the
translation; the SDK's parsed objects (and its stream helper, which rebuilds the message from the
events and fails on an event out of order) the evidence of the answer's shape.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import pytest

from tests.e2e.conftest import Harness, settled, wait_for_completions
from tests.support.chunks import chunk as _chunk
from tests.support.chunks import sse as _sse
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def client(h: Harness, **kw: Any) -> anthropic.Anthropic:
    auth = kw or {"api_key": h.key}
    return anthropic.Anthropic(base_url=h.gw.url, max_retries=0, **auth)


def test_text_round_trip_with_x_api_key(h: Harness, upstream: FakeUpstream) -> None:
    raw = client(h).messages.with_raw_response.create(
        model="gpt-test",
        system="Be brief.",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=20,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.2},  # older clients send it; this SDK no longer does
    )
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant"
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "Hello from the fake upstream."  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn" and m.stop_sequence is None
    assert (m.usage.input_tokens, m.usage.output_tokens) == (11, 7)
    assert m.id == "msg_" + raw.headers["x-request-id"].removeprefix("req_")
    got = upstream.received[-1]
    assert got["path"] == "/v1/chat/completions"
    assert got["json"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert got["json"]["max_tokens"] == 20 and got["json"]["temperature"] == 0.2
    assert got["json"]["stop"] == ["END"]
    assert "metadata" not in got["json"] and "system" not in got["json"]
    # the gateway key never travels to the backend, however the caller sent it
    assert h.key not in repr(got)


def test_a_bearer_token_is_accepted_too(h: Harness, upstream: FakeUpstream) -> None:
    m = client(h, auth_token=h.key).messages.create(
        model="gpt-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert m.content[0].text  # type: ignore[union-attr]


def test_the_audit_and_metrics_name_the_api_used(h: Harness, upstream: FakeUpstream) -> None:
    before = settled(h)
    raw = client(h).messages.with_raw_response.create(
        model="gpt-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    rid = raw.headers["x-request-id"]
    (done,) = wait_for_completions(h, before, 1)
    assert done["request_id"] == rid and done["endpoint"] == "messages"
    assert done["status"] == 200 and done["usage"]["total_tokens"] == 18
    assert done["decision_input"]["request"]["endpoint"] == "chat"
    assert done["decision_input"]["request"]["api"] == "messages"
    _, _, text = h.gw.request("GET", "/metrics", parse=False)
    assert b'endpoint="messages"' in text


def test_a_tool_conversation_becomes_chat_messages(h: Harness, upstream: FakeUpstream) -> None:
    png = "iVBORw0KGgo="
    client(h).messages.create(
        model="gpt-test",
        max_tokens=50,
        system=[
            {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}}
        ],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should look", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_9", "name": "w", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_9", "content": "sunny"},
                    {"type": "text", "text": "And this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": png},
                    },
                ],
            },
        ],
    )
    assert upstream.received[-1]["json"]["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_9",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_9", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            ],
        },
    ]


def test_tools_go_out_as_functions_and_calls_come_back_as_tool_use(
    h: Harness, upstream: FakeUpstream
) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    m = client(h).messages.create(
        model="gpt-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "look it up"}],
        tools=[{"name": "lookup", "description": "Search.", "input_schema": schema}],
        tool_choice={"type": "tool", "name": "lookup", "disable_parallel_tool_use": True},
    )
    sent = upstream.received[-1]["json"]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "lookup", "description": "Search.", "parameters": schema},
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sent["parallel_tool_calls"] is False
    (call,) = m.content
    assert call.type == "tool_use" and call.name == "lookup" and call.id == "call_1"
    assert call.input == {"q": "Hello from the fake upstream."}
    # the fake backend says finish_reason 'stop' beside its call: a tool user must still see it
    assert m.stop_reason == "tool_use"


def test_stream_rebuilt_by_the_sdk(h: Harness, upstream: FakeUpstream) -> None:
    upstream.mode = "tiny"  # the backend's stream split into 2-byte writes
    with client(h).messages.stream(
        model="gpt-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake upstream. "
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 11 and final.usage.output_tokens > 0
    assert upstream.received[-1]["json"]["stream_options"] == {"include_usage": True}


def test_stream_event_order_thinking_text_and_tool_use(h: Harness, upstream: FakeUpstream) -> None:
    upstream.raw_sse = _sse(
        _chunk({"role": "assistant", "reasoning_content": "think"}),
        _chunk({"content": "Hi"}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f"}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g"}}]}),
        _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, "tool_calls"),
        {
            "id": "c",
            "choices": [],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 20},
            },
        },
    )
    with client(h).messages.stream(
        model="gpt-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        kinds = [(e.type, getattr(e, "index", None)) for e in stream]
        final = stream.get_final_message()
    wire = [k for k in kinds if k[0] not in ("text", "thinking", "input_json")]  # SDK's own
    assert wire == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("content_block_start", 3),
        ("content_block_delta", 3),
        ("content_block_stop", 3),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[0].thinking == "think"  # type: ignore[union-attr]
    assert final.content[2].input == {"x": 1} and final.content[2].id == "call_a"  # type: ignore[union-attr]
    assert final.content[3].name == "g" and final.content[3].input == {}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    # OpenAI counts cached prompt tokens in prompt_tokens; Anthropic counts them apart
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (10, 20)
    assert final.usage.output_tokens == 4


def test_a_cut_off_answer_stops_at_max_tokens(h: Harness, upstream: FakeUpstream) -> None:
    upstream.raw_sse = _sse(_chunk({"content": "Hel"}, "length"))
    with client(h).messages.stream(
        model="gpt-test", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    upstream.raw_sse = None
    upstream.raw_json = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"content": "Hel END"},
                "finish_reason": "stop",
                "stop_reason": "END",  # vLLM says which stop sequence matched
            }
        ],
    }
    m = client(h).messages.create(
        model="gpt-test",
        max_tokens=5,
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "hi"}],
    )
    assert (m.stop_reason, m.stop_sequence) == ("stop_sequence", "END")


def test_a_stream_that_fails_midway_ends_with_an_error_event(
    h: Harness, upstream: FakeUpstream
) -> None:
    upstream.mode = "stall"  # two chunks, then silence past the backend's idle deadline
    got = []
    with pytest.raises(anthropic.APIStatusError) as exc:
        with client(h).messages.stream(
            model="gpt-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            got = [e.type for e in stream]
    assert exc.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    assert "sk-upstream" not in str(exc.value.body)
    assert got == []  # the SDK raises at the error event


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"mcp_servers": [{"type": "url", "url": "http://x.test"}]}, "mcp_servers"),
        ({"container": "c1"}, "container"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "url", "url": "http://x"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.type",
        ),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"max_tokens": None}, "max_tokens"),
        ({"stop_sequences": ["a"] * 50}, "stop_sequences"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens"),
        ({"api_base": "http://evil.test"}, "api_base"),
        ({"n": 3}, "n"),
    ],
)
def test_what_is_not_served_is_refused_in_anthropics_envelope_and_nothing_leaves(
    h: Harness, upstream: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    before = len(upstream.received)
    body = {
        "model": "gpt-test",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }
    body = {k: v for k, v in body.items() if v is not None}
    # sent as raw JSON: the SDK checks some of these itself before anything is sent
    got, headers, err = h.gw.request("POST", "/v1/messages", body, headers={"x-api-key": h.key})
    assert got == 400
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["param"] == param, err
    assert err["request_id"] == headers["x-request-id"]
    assert len(upstream.received) == before


def test_errors_map_onto_the_sdks_exception_classes(h: Harness, upstream: FakeUpstream) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.BadRequestError) as bad_request:
        client(h).messages.create(
            model="gpt-test", max_tokens=5, messages=msgs, extra_body={"inference_geo": "eu"}
        )
    assert bad_request.value.body["error"]["param"] == "inference_geo"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as nf:
        client(h).messages.create(model="no-such-model", max_tokens=5, messages=msgs)
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    for bad in ({"api_key": "pc_nope"}, {"auth_token": "pc_nope"}, {"api_key": "x" * 5000}):
        with pytest.raises(anthropic.AuthenticationError) as auth:
            client(h, **bad).messages.create(model="gpt-test", max_tokens=5, messages=msgs)
        assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    got, _, answer = h.gw.request(
        "POST", "/v1/messages", {"model": "gpt-test", "max_tokens": 5, "messages": msgs}
    )
    assert got == 401 and answer["type"] == "error"


def test_a_denial_carries_the_rule_and_is_a_permission_error(
    h: Harness, upstream: FakeUpstream
) -> None:
    from tests.support.fakes import allow_all

    def no_messages_api(policy_input: Any) -> dict[str, Any]:
        d = allow_all(policy_input)
        if policy_input["request"]["api"] == "messages":
            d.update(allow=False, permitted_backends=[], reasons=[
                {"rule": "org.no-anthropic-api", "message": "Not the Messages API here."}])  # fmt: skip
        return d

    before = len(upstream.received)
    h.decider.rule = no_messages_api
    try:
        with pytest.raises(anthropic.PermissionDeniedError) as exc:
            client(h).messages.create(
                model="gpt-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        h.decider.rule = allow_all
    err = exc.value.body["error"]  # type: ignore[index]
    assert err["type"] == "permission_error" and err["code"] == "policy_denied"
    assert "org.no-anthropic-api" in json.dumps(err)
    assert len(upstream.received) == before


def test_a_client_leaving_a_stream_cancels_the_backend_and_is_a_499(
    h: Harness, upstream: FakeUpstream
) -> None:
    upstream.chunk_delay_s = 0.3
    upstream.reply = " ".join(["word"] * 50)
    before = settled(h)
    stream = client(h).messages.create(
        model="gpt-test", max_tokens=100, messages=[{"role": "user", "content": "x"}], stream=True
    )
    it = iter(stream)
    kinds = [next(it).type for _ in range(3)]
    assert kinds[0] == "message_start"
    t0 = time.monotonic()
    stream.close()
    assert upstream.wait_cancelled(1.0) and time.monotonic() - t0 < 1.0
    assert [e["status"] for e in wait_for_completions(h, before, 1)] == [499]


def test_the_sdks_model_list_shows_what_this_key_may_use(
    h: Harness, upstream: FakeUpstream
) -> None:
    page = client(h).models.list()
    ids = [m.id for m in page.data]
    assert "gpt-test" in ids and all(m.type == "model" for m in page.data)
    openai_view = h.gw.request("GET", "/v1/models", token=h.key)[2]
    assert sorted(ids) == sorted(m["id"] for m in openai_view["data"])  # the same permitted set
    assert client(h).models.retrieve("gpt-test").id == "gpt-test"
    with pytest.raises(anthropic.NotFoundError) as nf:
        client(h).models.retrieve("no-such-model")
    assert nf.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(h, api_key="pc_nope").models.list()
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
