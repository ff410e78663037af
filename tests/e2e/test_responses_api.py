"""``POST /v1/responses`` through the official SDK, served over a backend's chat completions.

The fake upstream only speaks chat completions: what it received is the evidence of the
translation, the SDK's parsed objects (and its stream helper, which rebuilds the response from
the events and checks their order) the evidence of the answer's shape.
"""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from tests.e2e.conftest import Harness, settled, wait_for_completions
from tests.support.chunks import chunk as _chunk
from tests.support.chunks import sse as _sse
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def client(h: Harness) -> openai.OpenAI:
    return openai.OpenAI(base_url=h.gw.base_url, api_key=h.key, max_retries=0)


def test_text_round_trip(h: Harness, upstream: FakeUpstream) -> None:
    raw = client(h).responses.with_raw_response.create(
        model="gpt-test",
        instructions="Be brief.",
        input="hi",
        max_output_tokens=20,
        temperature=0.2,
        metadata={"ticket": "T-1"},
    )
    r = raw.parse()
    assert r.output_text == "Hello from the fake upstream."
    assert r.status == "completed" and r.object == "response" and r.store is False
    assert r.id == "resp_" + raw.headers["x-request-id"].removeprefix("req_")
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 7, 18)
    assert r.instructions == "Be brief." and r.max_output_tokens == 20
    assert r.metadata == {"ticket": "T-1"}
    got = upstream.received[-1]
    assert got["path"] == "/v1/chat/completions"
    assert got["json"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert got["json"]["max_tokens"] == 20 and got["json"]["temperature"] == 0.2
    assert "metadata" not in got["json"] and "instructions" not in got["json"]


def test_the_audit_and_metrics_name_the_api_used(h: Harness, upstream: FakeUpstream) -> None:
    raw = client(h).responses.with_raw_response.create(model="gpt-test", input="hi")
    rid = raw.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done = [e for e in h.audit.completions if e["request_id"] == rid]
        if done:
            break
        time.sleep(0.02)
    assert done and done[0]["endpoint"] == "responses" and done[0]["status"] == 200
    assert [e["endpoint"] for e in h.audit.intents if e["request_id"] == rid] == ["responses"]
    _, _, text = h.gw.request("GET", "/metrics", parse=False)
    assert b'endpoint="responses"' in text


def test_conversation_items_become_chat_messages(h: Harness, upstream: FakeUpstream) -> None:
    client(h).responses.create(
        model="gpt-test",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "call_9", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "And this?"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
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
                {"id": "call_9", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                },
            ],
        },
    ]


def test_function_tools_and_calls(h: Harness, upstream: FakeUpstream) -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    r = client(h).responses.create(
        model="gpt-test",
        input="look it up",
        tools=[{"type": "function", "name": "lookup", "parameters": params, "strict": False}],
        tool_choice={"type": "function", "name": "lookup"},
    )
    sent = upstream.received[-1]["json"]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "lookup", "parameters": params, "strict": False}}
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    (call,) = r.output
    assert call.type == "function_call" and call.name == "lookup" and call.call_id == "call_1"
    assert json.loads(call.arguments) == {"q": "Hello from the fake upstream."}
    assert r.output_text == ""


def test_hosted_tools_and_tool_groups_are_left_out_not_refused(
    h: Harness, upstream: FakeUpstream
) -> None:
    """Codex lists OpenAI's hosted web search and its own namespaced sub-agent tools in every
    request: they are not offered to a chat backend (they run at OpenAI, or are Codex's), and the
    request is served with the function tools it also holds."""
    fn = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
    group = {"type": "namespace", "name": "multi_agent_v1", "tools": [fn]}
    hosted = {"type": "web_search", "external_web_access": False}
    client(h).responses.create(
        model="gpt-test",
        input="hi",
        tools=[fn, group, hosted],  # type: ignore[list-item]
        extra_body={"client_metadata": {"session": "s-1"}},
    )
    sent = upstream.received[-1]["json"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["exec_command"]
    assert "client_metadata" not in sent
    client(h).responses.create(
        model="gpt-test",
        input="hi",
        tools=[hosted],
        tool_choice="auto",
        parallel_tool_calls=True,  # type: ignore[list-item]
    )
    sent = upstream.received[-1]["json"]
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(sent)  # chat refuses them bare


def test_structured_output_and_reasoning_effort(h: Harness, upstream: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    client(h).responses.create(
        model="gpt-test",
        input="give a",
        text={"format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}},
        reasoning={"effort": "low"},
    )
    sent = upstream.received[-1]["json"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }
    assert sent["reasoning_effort"] == "low"


def test_stream_rebuilt_by_the_sdk(h: Harness, upstream: FakeUpstream) -> None:
    upstream.mode = "tiny"  # the backend's stream split into 2-byte writes
    with client(h).responses.stream(model="gpt-test", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello from the fake upstream. "
    assert final.output_text == "Hello from the fake upstream. "
    assert final.status == "completed" and final.usage is not None
    assert final.usage.input_tokens == 11
    assert upstream.received[-1]["json"]["stream_options"] == {"include_usage": True}


def test_stream_event_order_and_sequence_numbers(h: Harness, upstream: FakeUpstream) -> None:
    upstream.raw_sse = _sse(
        _chunk({"role": "assistant", "reasoning_content": "think"}),
        _chunk({"content": "Hi"}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f"}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    )
    events = list(client(h).responses.create(model="gpt-test", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",  # message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # function call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1].response  # type: ignore[union-attr]
    assert [i.type for i in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[2].arguments == '{"x": 1}' and final.output[2].call_id == "call_a"
    assert final.usage is not None and final.usage.total_tokens == 7


def test_a_cut_off_answer_is_incomplete(h: Harness, upstream: FakeUpstream) -> None:
    upstream.raw_sse = _sse(_chunk({"content": "Hel"}, "length"))
    events = list(client(h).responses.create(model="gpt-test", input="hi", stream=True))
    assert events[-1].type == "response.incomplete"
    upstream.raw_sse = None
    upstream.raw_json = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": {"content": "Hel"}, "finish_reason": "length"}],
    }
    r = client(h).responses.create(model="gpt-test", input="hi")
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


def test_a_stream_that_fails_midway_ends_with_response_failed(
    h: Harness, upstream: FakeUpstream
) -> None:
    upstream.mode = "stall"  # two chunks, then silence past the backend's idle deadline
    events = list(client(h).responses.create(model="gpt-test", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed"  # type: ignore[union-attr]
    assert "sk-upstream" not in json.dumps([e.model_dump() for e in events])


@pytest.mark.parametrize(
    ("extra", "param", "status"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", 400),
        ({"conversation": "conv_1"}, "conversation", 400),
        ({"background": True}, "background", 400),
        ({"tools": [{"type": "shell"}]}, "tools[0]", 400),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", 400),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", 400),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type", 400),
        ({"n": 2}, "n", 400),
        ({"max_output_tokens": 10**9}, "max_output_tokens", 400),
        ({"input": []}, "input", 400),
        ({"store": "yes"}, "store", 400),
        ({"api_base": "http://evil.test"}, "api_base", 400),
    ],
)
def test_what_is_not_served_is_refused_and_nothing_leaves(
    h: Harness, upstream: FakeUpstream, extra: dict[str, Any], param: str, status: int
) -> None:
    before = len(upstream.received)
    body = {"model": "gpt-test", "input": "hi", **extra}
    got, _, answer = h.gw.request("POST", "/v1/responses", body, token=h.key)
    assert got == status
    assert answer["error"]["param"] == param and answer["error"]["type"]
    assert len(upstream.received) == before


def test_unknown_model_is_404_and_bad_key_401(h: Harness, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError):
        client(h).responses.create(model="no-such-model", input="hi")
    bad = openai.OpenAI(base_url=h.gw.base_url, api_key="pc_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="gpt-test", input="hi")


def test_nothing_is_stored_to_retrieve(h: Harness, upstream: FakeUpstream) -> None:
    r = client(h).responses.create(model="gpt-test", input="hi")
    with pytest.raises(openai.NotFoundError) as err:
        client(h).responses.retrieve(r.id)
    assert "stores no responses" in str(err.value)
    for call in (
        client(h).responses.delete,
        client(h).responses.cancel,
        client(h).responses.input_items.list,
    ):
        with pytest.raises(openai.NotFoundError):
            call(r.id)
    bad = openai.OpenAI(base_url=h.gw.base_url, api_key="pc_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.retrieve(r.id)


def test_a_client_leaving_a_stream_cancels_the_backend_and_is_a_499(
    h: Harness, upstream: FakeUpstream
) -> None:
    upstream.chunk_delay_s = 0.3
    upstream.reply = " ".join(["word"] * 50)
    before = settled(h)
    stream = client(h).responses.create(model="gpt-test", input="x", stream=True)
    kinds = [next(iter(stream)).type for _ in range(3)]
    assert kinds[0] == "response.created"
    t0 = time.monotonic()
    stream.close()
    assert upstream.wait_cancelled(1.0) and time.monotonic() - t0 < 1.0
    assert [e["status"] for e in wait_for_completions(h, before, 1)] == [499]


def test_a_stream_read_to_its_end_is_recorded_served_with_its_usage(
    h: Harness, upstream: FakeUpstream
) -> None:
    upstream.done_linger_s = 0.3  # the backend's response goes on after [DONE]
    before = settled(h)
    for _ in range(3):
        events = list(client(h).responses.create(model="gpt-test", input="x", stream=True))
        assert events[-1].type == "response.completed"
    got = wait_for_completions(h, before, 3)
    assert [(e["status"], e["usage"]["total_tokens"] > 0) for e in got] == [(200, True)] * 3


def test_the_policy_can_tell_a_responses_request_from_a_chat_one(
    h: Harness, upstream: FakeUpstream
) -> None:
    """Served as chat (``request.endpoint`` chat), a Responses request says so in
    ``request.api``: a rule can refuse the Responses API alone, and the record keeps it."""
    from tests.support.fakes import allow_all

    def no_responses_api(policy_input: Any) -> dict[str, Any]:
        d = allow_all(policy_input)
        if policy_input["request"]["api"] == "responses":
            d.update(allow=False, permitted_backends=[], reasons=[
                {"rule": "org.no-responses-api", "message": "Not the Responses API here."}])  # fmt: skip
        return d

    before = settled(h)
    h.decider.rule = no_responses_api
    try:
        with pytest.raises(openai.PermissionDeniedError) as exc:
            client(h).responses.create(model="gpt-test", input="hi")
        assert "org.no-responses-api" in exc.value.message
        chat = client(h).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content
    finally:
        h.decider.rule = allow_all
    records = wait_for_completions(h, before, 2)
    requests = [r["decision_input"]["request"] for r in records]
    assert [(q["endpoint"], q["api"]) for q in requests] == [
        ("chat", "responses"), ("chat", "chat")]  # fmt: skip
    assert [r["status"] for r in records] == [403, 200]
