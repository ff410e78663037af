"""Anthropic Messages over chat completions: the request's, the answer's and the stream's
translation, and the error envelope, without HTTP around them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.errors import Cause, GatewayError
from gateway.http.anthropic import StreamTranslator, error_body, from_chat, rename_param, to_chat
from gateway.http.anthropic.answer import stop_of, tool_input, usage_of

USER = {"role": "user", "content": "hi"}


def chat_for(**body: Any) -> dict[str, Any]:
    return to_chat({"model": "m", "max_tokens": 10, "messages": [USER], **body})


def test_system_blocks_stops_and_sampling_are_carried() -> None:
    chat = chat_for(
        system=[{"type": "text", "text": "A. "}, {"type": "text", "text": "B."}],
        stop_sequences=["X"],
        temperature=0.5,
        top_p=0.9,
        metadata={"user_id": "u"},
        thinking={"type": "adaptive"},
        cache_control={"type": "ephemeral"},
        speed="fast",
    )
    assert chat == {
        "model": "m",
        "max_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "messages": [{"role": "system", "content": "A. B."}, USER],
        "stop": ["X"],
    }


def test_tool_results_come_before_the_rest_of_a_user_turn() -> None:
    turn = {
        "role": "user",
        "content": [
            {"type": "text", "text": "see"},
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [{"type": "text", "text": "a"}],
            },
            {"type": "tool_result", "tool_use_id": "t2"},
        ],
    }
    assert to_chat({"model": "m", "max_tokens": 1, "messages": [turn]})["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "a"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "see"}]},
    ]


def test_images_a_tool_returned_go_into_the_user_message_after_the_tool_results() -> None:
    png = {"type": "base64", "media_type": "image/png", "data": "iVBO"}
    turn = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1",
             "content": [{"type": "text", "text": "shot:"}, {"type": "image", "source": png}]},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "image", "source": png}]},
            {"type": "text", "text": "what is on it?"},
        ],
    }  # fmt: skip
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}
    assert to_chat({"model": "m", "max_tokens": 1, "messages": [turn]})["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "shot:"},
        {"role": "tool", "tool_call_id": "t2", "content": "(1 image, below)"},
        {"role": "user", "content": [image, image, {"type": "text", "text": "what is on it?"}]},
    ]


def test_a_system_turn_mid_conversation_stays_in_its_place() -> None:
    turns = [USER, {"role": "system", "content": [{"type": "text", "text": "Be terse."}]}, USER]
    assert to_chat({"model": "m", "max_tokens": 1, "messages": turns})["messages"] == [
        USER, {"role": "system", "content": "Be terse."}, USER]  # fmt: skip


def test_context_management_is_accepted_and_not_sent() -> None:
    """Claude Code may ask Anthropic to clear old tool results; a chat backend gets the context
    whole instead (a refusal would break the tool)."""
    chat = chat_for(context_management={"edits": [{"type": "clear_tool_uses_20250919"}]})
    assert "context_management" not in chat


def test_an_assistant_turn_of_calls_alone_has_no_content() -> None:
    turn = {
        "role": "assistant",
        "content": [
            {"type": "redacted_thinking", "data": "x"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": [1, "é"]}},
        ],
    }
    (msg,) = to_chat({"model": "m", "max_tokens": 1, "messages": [turn]})["messages"]
    assert msg["content"] is None
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"a": [1, "é"]}
    empty = {"role": "assistant", "content": []}
    assert to_chat({"model": "m", "max_tokens": 1, "messages": [empty]})["messages"] == [
        {"role": "assistant", "content": ""}
    ]


def test_documents_and_images() -> None:
    turn = {
        "role": "user",
        "content": [
            {"type": "document", "title": "r.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "t"}},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
        ],
    }  # fmt: skip
    (msg,) = to_chat({"model": "m", "max_tokens": 1, "messages": [turn]})["messages"]
    assert msg["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "r.pdf"}},
        {"type": "text", "text": "t"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any", "disable_parallel_tool_use": True},
         {"tool_choice": "required", "parallel_tool_calls": False}),
        ({"type": "none", "disable_parallel_tool_use": True}, {"tool_choice": "none"}),
        ({"type": "tool", "name": "f"},
         {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
    ],
)  # fmt: skip
def test_tool_choice(choice: dict[str, Any], want: dict[str, Any]) -> None:
    chat = chat_for(tool_choice=choice)
    assert {k: chat[k] for k in ("tool_choice", "parallel_tool_calls") if k in chat} == want


def test_tools_and_output_config() -> None:
    chat = chat_for(
        tools=[{"name": "f", "input_schema": {"type": "object"}, "strict": True,
                "cache_control": {"type": "ephemeral"}, "defer_loading": False}],
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    )  # fmt: skip
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}
    ]  # fmt: skip
    assert "reasoning_effort" not in chat  # a hint a non-reasoning backend would refuse
    assert chat["response_format"]["json_schema"]["schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("body", "param", "cause"),
    [
        ({"max_tokens": None}, "max_tokens", Cause.INVALID_PARAMETER),
        ({"messages": []}, "messages", Cause.INVALID_PARAMETER),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", Cause.INVALID_PARAMETER),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
          "content": [{"type": "document", "source": {}}]}]}]},
         "messages[0].content[0].content[0]", Cause.INVALID_PARAMETER),
        ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t",
          "name": "f", "input": "{}"}]}]}, "messages[0].content[0].input", Cause.INVALID_PARAMETER),
        ({"messages": [{"role": "user", "content": [{"type": "image",
          "source": {"type": "file", "file_id": "f"}}]}]},
         "messages[0].content[0].source.type", Cause.INVALID_PARAMETER),
        ({"tools": [{"name": "f", "input_schema": {}, "note": 1}]}, "tools[0]", Cause.INVALID_PARAMETER),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0]", Cause.INVALID_PARAMETER),
        ({"tool_choice": "auto"}, "tool_choice", Cause.INVALID_PARAMETER),
        ({"thinking": {"type": "on"}}, "thinking.type", Cause.INVALID_PARAMETER),
        ({"output_config": {"effort": "huge"}}, "output_config.effort", Cause.INVALID_PARAMETER),
        ({"speed": "warp"}, "speed", Cause.INVALID_PARAMETER),
        ({"metadata": {"user_id": "u", "x": 1}}, "metadata", Cause.INVALID_PARAMETER),
        ({"context_management": []}, "context_management", Cause.INVALID_PARAMETER),
        ({"mcp_servers": [{"type": "url"}]}, "mcp_servers", Cause.INVALID_PARAMETER),
        ({"inference_geo": "us"}, "inference_geo", Cause.FORBIDDEN_PARAMETER),
        ({"base_url": "http://x"}, "base_url", Cause.FORBIDDEN_PARAMETER),
        ({"n": 2}, "n", Cause.INVALID_PARAMETER),
    ],
)  # fmt: skip
def test_what_is_not_served_is_refused_naming_the_callers_field(
    body: dict[str, Any], param: str, cause: Cause
) -> None:
    with pytest.raises(GatewayError) as exc:
        to_chat({"model": "m", "max_tokens": 1, "messages": [USER], **body})
    assert (exc.value.param, exc.value.cause) == (param, cause)


def test_a_chat_validation_error_is_renamed() -> None:
    err = GatewayError(Cause.INVALID_PARAMETER, "Invalid 'stop': too many.", param="stop")
    renamed = rename_param(err)
    assert renamed.param == "stop_sequences" and "'stop_sequences'" in renamed.message
    same = GatewayError(Cause.INVALID_PARAMETER, "Invalid 'max_tokens'.", param="max_tokens")
    assert rename_param(same) is same


def test_top_k_goes_out_only_where_a_backend_takes_it() -> None:
    assert chat_for(top_k=5)["top_k"] == 5  # the chat validation refuses it without passthrough


def test_error_body_is_anthropics_envelope_with_the_gateways_fields() -> None:
    err = GatewayError(
        Cause.POLICY_DENIED, "Denied.", details={"reasons": [{"rule": "au.x"}]},
        headers={"Retry-After": "1"},
    )  # fmt: skip
    assert error_body(err, "req_1") == {
        "type": "error",
        "error": {
            "type": "permission_error",
            "message": "Denied.",
            "param": None,
            "code": "policy_denied",
            "reasons": [{"rule": "au.x"}],
        },
        "request_id": "req_1",
    }
    kinds = {
        c: error_body(GatewayError(c, "m"))["error"]["type"]
        for c in (Cause.UNAUTHENTICATED, Cause.TOO_LARGE, Cause.RATE_LIMITED,
                  Cause.UPSTREAM_TIMEOUT, Cause.NO_BACKEND, Cause.UNSUPPORTED_MEDIA,
                  Cause.MODEL_NOT_FOUND)
    }  # fmt: skip
    assert kinds == {
        Cause.UNAUTHENTICATED: "authentication_error",
        Cause.TOO_LARGE: "request_too_large",
        Cause.RATE_LIMITED: "rate_limit_error",
        Cause.UPSTREAM_TIMEOUT: "timeout_error",
        Cause.NO_BACKEND: "api_error",
        Cause.UNSUPPORTED_MEDIA: "invalid_request_error",
        Cause.MODEL_NOT_FOUND: "not_found_error",
    }


def test_usage_counts_cached_prompt_tokens_apart() -> None:
    u = {
        "prompt_tokens": 30,
        "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 20},
    }
    assert usage_of(u) == {
        "input_tokens": 10,
        "output_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20,
    }
    bad = {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 9},
    }
    assert usage_of(bad)["input_tokens"] == 3  # type: ignore[index]
    assert usage_of({"prompt_tokens": "3"}) is None and usage_of(None) is None


@pytest.mark.parametrize(
    ("choice", "stops", "want"),
    [
        ({"finish_reason": "stop"}, None, ("end_turn", None)),
        ({"finish_reason": "stop", "stop_reason": "Z"}, ["Z"], ("stop_sequence", "Z")),
        ({"finish_reason": "stop", "stop_reason": "Z"}, ["Y"], ("end_turn", None)),
        ({"finish_reason": "length"}, None, ("max_tokens", None)),
        ({"finish_reason": "tool_calls"}, None, ("tool_use", None)),
        ({"finish_reason": "content_filter"}, None, ("refusal", None)),
        ({"finish_reason": "odd"}, None, ("end_turn", None)),
        ({}, None, (None, None)),
    ],
)
def test_stop_reasons(choice: dict[str, Any], stops: Any, want: tuple[Any, Any]) -> None:
    assert stop_of(choice, stops) == want


def test_tool_arguments_that_are_not_an_object_are_kept_whole() -> None:
    assert tool_input('{"a": 1}') == {"a": 1} and tool_input("") == {}
    assert tool_input("{not json") == {"_arguments": "{not json"}
    assert tool_input("[1]") == {"_arguments": "[1]"}


@pytest.mark.parametrize(
    "chat",
    [{}, {"choices": None}, {"choices": [None]}, {"choices": [{"message": 5}]},
     {"choices": [{"message": {"tool_calls": [None, {"function": 3}, {"id": 1, "function": {}}]}}]},
     {"choices": [{"message": {"content": 7, "reasoning_content": ["x"]}}], "usage": "lots"}],
)  # fmt: skip
def test_any_answer_shape_becomes_a_well_formed_message(chat: dict[str, Any]) -> None:
    m = from_chat(chat, {"model": "m"}, "msg_1")
    assert m["type"] == "message" and m["model"] == "m" and m["stop_reason"] == "end_turn"
    assert all(b["type"] in ("text", "tool_use", "thinking") for b in m["content"])
    assert set(m["usage"]) >= {"input_tokens", "output_tokens"}


def test_a_refusal_is_text_with_stop_reason_refusal() -> None:
    chat = {"choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}]}
    m = from_chat(chat, {}, "msg_1")
    assert m["content"] == [{"type": "text", "text": "No."}] and m["stop_reason"] == "refusal"


def _sse(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def _events(out: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(out).decode()
    return [json.loads(ln[6:]) for ln in text.splitlines() if ln.startswith("data: ")]


def _delta(**d: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}


def test_a_stream_going_back_to_a_closed_tool_call_fails_rather_than_lose_it() -> None:
    t = StreamTranslator({}, "msg_1")
    out = t.feed(
        _sse(
            _delta(
                tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]
            ),
            _delta(tool_calls=[{"index": 1, "id": "b", "function": {"name": "g"}}]),
            _delta(tool_calls=[{"index": 0, "function": {"arguments": "}"}}]),
        )
    )
    events = _events(out)
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert t.feed(_sse(_delta(content="late")) + b"data: [DONE]\n\n") == []  # ended


def test_a_stream_error_event_becomes_anthropics_error_and_ends_it() -> None:
    t = StreamTranslator({}, "msg_1")
    err = {"error": {"message": "slow", "type": "timeout", "code": "upstream_timeout"}}
    events = _events(t.feed(_sse(_delta(content="a"), err)))
    assert [e["type"] for e in events] == ["content_block_start", "content_block_delta", "error"]
    assert events[-1]["error"] == {"type": "timeout_error", "message": "slow"}


def test_a_refused_stream_stops_with_refusal_and_other_choices_are_ignored() -> None:
    t = StreamTranslator({}, "msg_1")
    other = {"choices": [{"index": 1, "delta": {"content": "B"}}]}
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events = _events(t.feed(_sse(_delta(refusal="No."), other, end) + b"data: [DONE]\n\n"))
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert texts == ["No."]
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "refusal"


def test_a_relay_that_ends_without_done_ends_with_an_error() -> None:
    async def relay() -> AsyncIterator[bytes]:
        yield _sse(_delta(content="a"))

    async def run() -> list[bytes]:
        return [c async for c in StreamTranslator({}, "msg_1").translate(relay())]

    events = _events(asyncio.run(run()))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
