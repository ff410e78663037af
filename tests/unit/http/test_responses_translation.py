"""The Responses API's translation to and from chat completions, piece by piece (the end-to-end
tests in ``tests/e2e/test_responses_api.py`` drive it through the SDK)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import Cause, GatewayError
from gateway.http.responses import StreamTranslator, from_chat, rename_param, to_chat

RID = "resp_abcdefghijklmnopabcdefgh"


def test_a_string_input_is_one_user_message() -> None:
    assert to_chat({"model": "m", "input": "hi"}) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_consecutive_function_calls_join_one_assistant_message() -> None:
    calls = [
        {"type": "function_call", "call_id": f"c{i}", "name": "f", "arguments": "{}"}
        for i in range(2)
    ]
    chat = to_chat({"model": "m", "input": [{"role": "user", "content": "go"}, *calls]})
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        ],
    }


def test_a_function_call_after_a_user_message_opens_a_new_assistant_message() -> None:
    items = [
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "b"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    ]
    messages = to_chat({"model": "m", "input": items})["messages"]
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant"]
    assert "tool_calls" not in messages[0] and messages[2]["content"] is None


def test_developer_is_system_and_assistant_parts_are_joined() -> None:
    items = [
        {"role": "developer", "content": "rules"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "a"},
                                          {"type": "refusal", "refusal": "b"}]},
    ]  # fmt: skip
    assert to_chat({"model": "m", "input": items})["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "assistant", "content": "ab"},
    ]


def test_a_file_goes_as_its_data_and_an_uploaded_file_id_is_refused() -> None:
    part = {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a"}
    chat = to_chat({"model": "m", "input": [{"role": "user", "content": [part]}]})
    assert chat["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a"}}
    ]
    with pytest.raises(GatewayError) as err:
        to_chat(
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file",
                                                                  "file_id": "f"}]}]}
        )  # fmt: skip
    assert err.value.param == "input[0].content[0]"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"role": "assistant", "content": [{"type": "input_image",
                                                      "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": ["user"], "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": {"a": 1}, "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "call_id": 5, "name": "f", "arguments": "{}"}]},
         "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]},
         "input[0].output"),
        ({"input": "x", "tools": [{"type": "function", "name": "f", "function": {}}]},
         "tools[0]"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}},
         "text.format.schema"),
        ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format"),
        ({"input": "x", "truncation": "middle"}, "truncation"),
        ({"input": "x", "metadata": {"k": 1}}, "metadata"),
        ({"input": "x", "instructions": 5}, "instructions"),
        ({"input": "x", "stream_options": {"include_usage": True}}, "stream_options"),
        ({}, "input"),
        ({"input": "x", "reasoning": "high"}, "reasoning"),
        ({"input": "x", "include": "reasoning"}, "include"),
        ({"input": "x", "metadata": [1]}, "metadata"),
        ({"input": ["hi"]}, "input[0]"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": ["hi"]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
         "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "input[0].content[0]"),
        ({"input": [{"type": "function_call_output", "call_id": "c",
                     "output": [{"type": "input_image", "image_url": "u"}]}]}, "input[0].output[0]"),
        ({"input": "x", "tools": {"type": "function"}}, "tools"),
        ({"input": "x", "text": {"format": {"type": "text"}, "x": 1}}, "text"),
    ],
)  # fmt: skip
def test_what_cannot_be_translated_is_a_400_naming_it(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as err:
        to_chat({"model": "m", **body})
    assert err.value.cause is Cause.INVALID_PARAMETER and err.value.param == param


def test_unset_stateful_parameters_are_accepted() -> None:
    body = {"model": "m", "input": "x", "previous_response_id": None, "background": False}
    assert to_chat(body)["messages"] == [{"role": "user", "content": "x"}]


def test_a_streamed_request_asks_for_usage_and_top_logprobs_asks_for_logprobs() -> None:
    chat = to_chat({"model": "m", "input": "x", "stream": True, "top_logprobs": 3})
    assert chat["stream_options"] == {"include_usage": True}
    assert chat["logprobs"] is True and chat["top_logprobs"] == 3


def test_chat_errors_are_renamed_to_the_responses_fields() -> None:
    err = GatewayError(
        Cause.INVALID_PARAMETER, "Invalid 'max_tokens': too big.", param="max_tokens"
    )
    renamed = rename_param(err)
    assert renamed.param == "max_output_tokens" and "'max_output_tokens'" in renamed.message
    err = GatewayError(Cause.INVALID_PARAMETER, "Invalid 'messages[3].content': x.", param=(
        "messages[3].content"))  # fmt: skip
    assert rename_param(err).param == "input"
    same = GatewayError(Cause.INVALID_PARAMETER, "Invalid 'temperature': x.", param="temperature")
    assert rename_param(same) is same


def _chat(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **extra}],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_an_answer_with_reasoning_text_and_logprobs() -> None:
    lp = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]}
    r = from_chat(
        _chat({"content": "Hi", "reasoning_content": "hmm"}, logprobs=lp),
        {"model": "m", "input": "x"},
        RID,
    )
    assert [i["type"] for i in r["output"]] == ["reasoning", "message"]
    assert r["output"][0]["content"] == [{"type": "reasoning_text", "text": "hmm"}]
    assert r["output"][1]["content"][0]["logprobs"] == lp["content"]
    assert r["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}
    assert r["created_at"] == 7 and r["status"] == "completed"


def test_a_refusal_and_a_content_filter_stop() -> None:
    r = from_chat(_chat({"content": None, "refusal": "no"}, "content_filter"), {}, RID)
    assert r["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]
    assert r["status"] == "incomplete"
    assert r["incomplete_details"] == {"reason": "content_filter"}


@pytest.mark.parametrize(
    "chat", [{}, {"choices": "x"}, {"choices": [5]}, {"choices": [{"message": [1]}]}]
)
def test_odd_answers_give_an_empty_output_not_an_error(chat: dict[str, Any]) -> None:
    r = from_chat(chat, {"model": "m"}, RID)
    assert r["output"] == [] and r["usage"] is None and r["model"] == "m"


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def _data(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def test_a_streamed_refusal() -> None:
    t = StreamTranslator({"model": "m"}, RID)
    raw = t.start() + b"".join(
        t.feed(
            _data({"choices": [{"index": 0, "delta": {"refusal": "no"}}]})
            + _data(
                {"choices": [{"index": 0, "delta": {"refusal": "pe"}, "finish_reason": "stop"}]}
            )
            + b"data: [DONE]\n\n"
        )
    )
    events = _events(raw)
    assert [e["type"] for e in events][2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "refusal", "refusal": "nope"}
    ]


def test_other_choices_and_events_after_the_end_are_ignored() -> None:
    t = StreamTranslator({"model": "m"}, RID)
    out = t.feed(
        _data({"choices": [{"index": 1, "delta": {"content": "other"}}]})
        + _data({"choices": [{"index": 0, "delta": {"content": "mine"}}]})
        + b"data: [DONE]\n\n"
        + _data({"choices": [{"index": 0, "delta": {"content": "late"}}]})
    )
    assert t.feed(_data({"choices": [{"index": 0, "delta": {"content": "later"}}]})) == []
    events = _events(b"".join(out))
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "mine"


def test_the_relay_error_event_ends_the_stream_failed() -> None:
    t = StreamTranslator({"model": "m"}, RID)
    err = {"error": {"message": "The backend timed out.", "code": "upstream_timeout"}}
    events = _events(b"".join(t.feed(_data(err) + b"data: [DONE]\n\n")))
    assert [e["type"] for e in events] == ["error", "response.failed"]
    assert events[0]["code"] == "upstream_timeout"
    assert events[1]["response"]["error"] == {
        "code": "upstream_timeout",
        "message": "The backend timed out.",
    }


async def test_a_chat_stream_that_ends_without_done_ends_failed() -> None:
    async def chunks() -> Any:
        yield _data({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})

    t = StreamTranslator({"model": "m"}, RID)
    raw = b"".join([c async for c in t.translate(chunks())])
    events = _events(raw)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-1]["response"]["error"]["code"] == "upstream_error"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_the_remaining_translations() -> None:
    audio = {"data": "AAAA", "format": "wav"}
    chat = to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": [{"type": "input_audio", "input_audio": audio}]},
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [
                        {"type": "input_text", "text": "a"},
                        {"type": "output_text", "text": "b"},
                    ],
                },
            ],
            "tool_choice": "required",
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "stream_options": {"include_obfuscation": False},
            "metadata": {"ticket": "T-1"},
            "include": ["reasoning.encrypted_content"],
            "truncation": "auto",
            "store": False,
        }
    )
    assert chat["messages"] == [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": audio}]},
        {"role": "tool", "tool_call_id": "c", "content": "ab"},
    ]
    assert chat["tool_choice"] == "required" and chat["verbosity"] == "low"
    assert chat["response_format"] == {"type": "json_object"}
    for kept_out in ("metadata", "include", "truncation", "store", "stream_options"):
        assert kept_out not in chat
    assert "response_format" not in to_chat(
        {"model": "m", "input": "x", "text": {"format": {"type": "text"}}}
    )


def test_an_error_without_a_parameter_is_left_as_it_is() -> None:
    err = GatewayError(Cause.INVALID_JSON, "Request body is not valid JSON.")
    assert rename_param(err) is err


def test_a_stream_skips_what_is_not_json() -> None:
    t = StreamTranslator({"model": "m"}, RID)
    out = t.feed(
        b"data: {not json\n\n" + _data({"choices": [{"index": 0, "delta": {"content": "ok"}}]})
    )
    assert [e["type"] for e in _events(b"".join(out))][-1] == "response.output_text.delta"
