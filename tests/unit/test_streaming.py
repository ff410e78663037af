"""The SSE relay: events split anywhere, restorers per choice, usage captured, clean ends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.context import RequestContext
from gateway.metrics import Metrics
from gateway.streaming import relay_stream
from gateway.upstream import UpstreamFailure


class HoldbackRestorer:
    """Replaces <P1> with Alice, holding back a possible placeholder prefix (like the real one)."""

    TOKEN, VALUE = "<P1>", "Alice"
    new_pii: dict[str, int] = {}
    new_subjects: frozenset[str] = frozenset()

    def restore_text(self, text: str) -> str:
        return text.replace(self.TOKEN, self.VALUE)

    def restore_json(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def stream(self, *, json_string: bool = False) -> Any:
        outer = self

        class S:
            buf = ""

            def feed(self, text: str) -> str:
                self.buf += text
                cut = len(self.buf)
                start = self.buf.rfind("<")
                if (
                    start >= 0
                    and outer.TOKEN.startswith(self.buf[start:])
                    and self.buf[start:] != outer.TOKEN
                ):
                    cut = start
                out, self.buf = self.buf[:cut], self.buf[cut:]
                return outer.restore_text(out)

            def flush(self) -> str:
                out, self.buf = outer.restore_text(self.buf), ""
                return out

        return S()


class FakeAnswer:
    def __init__(self, chunks: list[bytes], fail: UpstreamFailure | None = None) -> None:
        self._chunks, self._fail, self.closed = chunks, fail, False

    async def chunks(self):  # type: ignore[no-untyped-def]
        for c in self._chunks:
            yield c
        if self._fail:
            raise self._fail

    def close(self) -> None:
        self.closed = True


def sse(pieces: list[str], usage: bool = True) -> bytes:
    out = b""
    for p in pieces:
        out += (
            b"data: "
            + json.dumps(
                {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            ).encode()
            + b"\n\n"
        )
    out += (
        b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
        + b"\n\n"
    )
    if usage:
        out += b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}\n\n'
    return out + b"data: [DONE]\n\n"


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def collect(ctx: RequestContext, answer: FakeAnswer, restorer: Any) -> str:
    ctx.start_answer_digest(b"k" * 32)
    out = b""
    async for chunk in relay_stream(ctx, answer, restorer, Metrics()):  # type: ignore[arg-type]
        out += chunk
    text = ""
    for block in out.decode().split("\n\n"):
        if block.startswith("data: ") and block[6:] != "[DONE]":
            ev = json.loads(block[6:])
            for c in ev.get("choices") or []:
                text += (c.get("delta") or {}).get("content") or ""
    return text


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
async def test_placeholder_split_across_chunks_is_restored(size: int) -> None:
    ctx = RequestContext("r", "chat", None)
    answer = FakeAnswer(split(sse(["Hello <", "P", "1> and <P1", ">!"]), size))
    assert await collect(ctx, answer, HoldbackRestorer()) == "Hello Alice and Alice!"
    assert ctx.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert answer.closed


async def test_held_text_is_released_at_finish() -> None:
    ctx = RequestContext("r", "chat", None)
    answer = FakeAnswer([sse(["ends with <P"])])
    assert await collect(ctx, answer, HoldbackRestorer()) == "ends with <P"


async def test_without_restorer_bytes_pass_through_and_usage_is_seen() -> None:
    ctx = RequestContext("r", "chat", None)
    assert await collect(ctx, FakeAnswer(split(sse(["a", "b"]), 5)), None) == "ab"
    assert ctx.usage["total_tokens"] == 7


async def test_failure_mid_stream_ends_with_error_event_and_done() -> None:
    ctx = RequestContext("r", "chat", None)
    ctx.start_answer_digest(b"k" * 32)
    answer = FakeAnswer(
        [sse(["a"], usage=False).split(b"data: [DONE]")[0]], UpstreamFailure("timeout")
    )
    out = b"".join([c async for c in relay_stream(ctx, answer, None, Metrics())])  # type: ignore[arg-type]
    assert out.endswith(b"data: [DONE]\n\n") and b'"upstream_timeout"' in out
    assert ctx.status == 504 and answer.closed


async def test_crlf_event_separators_are_understood() -> None:
    ctx = RequestContext("r", "chat", None)
    data = sse(["x", "y"]).replace(b"\n", b"\r\n")
    assert await collect(ctx, FakeAnswer(split(data, 3)), HoldbackRestorer()) == "xy"


def test_the_token_budget_charge_when_usage_is_missing() -> None:
    from gateway.context import RequestContext
    from gateway.limiter import Reservation
    from gateway.outcome import tokens_used as _tokens_used

    r = Reservation("k", 300, 600, 200_000)
    ctx = RequestContext(request_id="req_a", endpoint="chat", client_addr=None)
    assert _tokens_used(ctx, r) == 0  # refused before any backend was called: nothing
    ctx.forwarded = True
    assert _tokens_used(ctx, r) == 300  # called, no usage reported: the estimate
    ctx.usage = {"total_tokens": 42}
    assert _tokens_used(ctx, r) == 42


@pytest.mark.parametrize("restorer", [None, HoldbackRestorer()])
async def test_usage_the_gateway_asked_for_is_recorded_and_not_relayed(restorer: Any) -> None:
    """``hide_usage``: the usage-only chunk goes, other chunks lose ``usage`` (null, or a total
    a backend puts on a content chunk), and the usage is recorded all the same."""
    ctx = RequestContext("r", "chat", None)
    ctx.hide_usage = True
    ctx.start_answer_digest(b"k" * 32)
    data = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "Hi <P1>"}}], "usage": null}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],'
        b' "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4,'
        b' "total_tokens": 7}}\n\n'
        b"data: [DONE]\n\n"
    )
    answer = FakeAnswer(split(data, 9))
    out = b"".join([c async for c in relay_stream(ctx, answer, restorer, Metrics())])  # type: ignore[arg-type]
    events = [b[6:] for b in out.split(b"\n\n") if b.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) == 2 and all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert ctx.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert chunks[0]["choices"][0]["delta"]["content"] == ("Hi Alice" if restorer else "Hi <P1>")


def _events(out: bytes) -> list[Any]:
    return [
        json.loads(b[6:])
        for b in out.decode().split("\n\n")
        if b.startswith("data: ") and b[6:] != "[DONE]"
    ]


async def _relay(ctx: RequestContext, answer: FakeAnswer, restorer: Any) -> bytes:
    ctx.start_answer_digest(b"k" * 32)
    return b"".join([c async for c in relay_stream(ctx, answer, restorer, Metrics())])  # type: ignore[arg-type]


@pytest.mark.parametrize("restorer", [None, HoldbackRestorer()])
async def test_a_stream_that_ends_without_done_ends_with_an_error_event_and_done(
    restorer: Any,
) -> None:
    # The backend closed its response early (mid-event, or between events): the client must
    # not take the truncated answer for a whole one.
    for cut in (b"", b'data: {"choices": [{"index": 0, "delta": {"con'):
        ctx = RequestContext("r", "chat", None)
        ctx.status = 200
        data = sse(["a", "b"], usage=False).split(b"data: [DONE]")[0] + cut
        out = await _relay(ctx, FakeAnswer([data]), restorer)
        assert out.endswith(b"data: [DONE]\n\n") and b'"upstream_error"' in out
        assert ctx.status == 502 and not ctx.answered


async def test_reasoning_content_is_restored_and_released_before_the_answer() -> None:
    # DeepSeek's reasoner streams reasoning_content, then content: a placeholder split in the
    # reasoning is restored, and what its restorer holds comes out before the answer proper.
    ctx = RequestContext("r", "chat", None)
    events = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think of <"}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "P1> then <P"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hi <P1>"}}]},
        {"choices": [{"index": 0, "delta": {"refusal": "no <P"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    out = await _relay(ctx, FakeAnswer([data + b"data: [DONE]\n\n"]), HoldbackRestorer())
    deltas = [c["delta"] for e in _events(out) for c in e["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    assert reasoning == "think of Alice then <P"
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert "".join(d.get("reasoning_content", "") for d in deltas[: first_content + 1]) == (
        reasoning
    )
    assert "".join(d.get("content", "") for d in deltas) == "Hi Alice"
    assert "".join(d.get("refusal", "") for d in deltas) == "no <P"


async def test_held_text_comes_out_before_done_when_no_finish_reason_comes() -> None:
    for endpoint, event, read in (
        (
            "chat",
            {"id": "x1", "model": "m", "choices": [{"index": 0, "delta": {"content": "to <P"}}]},
            "delta",
        ),
        (
            "completions",
            {"id": "x1", "model": "m", "choices": [{"index": 0, "text": "to <P"}]},
            "text",
        ),
    ):
        ctx = RequestContext("r", endpoint, None)
        data = b"data: " + json.dumps(event).encode() + b"\n\ndata: [DONE]\n\n"
        out = await _relay(ctx, FakeAnswer([data]), HoldbackRestorer())
        choices = [c for e in _events(out) for c in e["choices"]]
        texts = [c["delta"].get("content", "") if read == "delta" else c["text"] for c in choices]
        assert "".join(texts) == "to <P", out
        assert out.endswith(b"data: [DONE]\n\n") and ctx.answered
        assert _events(out)[-1]["id"] == "x1" and _events(out)[-1]["model"] == "m"


async def test_events_of_unexpected_shapes_are_relayed_as_they_are() -> None:
    ctx = RequestContext("r", "chat", None)
    odd = [
        {"choices": 5},
        {"choices": {"index": 0}},
        {"choices": [{"index": 0, "delta": {"content": 7, "tool_calls": 3}}]},
        {"choices": [{"index": "x", "delta": {"tool_calls": [5, {"function": 1}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": {"a": 1}}, "finish_reason": "stop"}]},
    ]
    data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in odd)
    out = await _relay(ctx, FakeAnswer([data + b"data: [DONE]\n\n"]), HoldbackRestorer())
    assert _events(out) == odd and out.endswith(b"data: [DONE]\n\n")


async def test_our_last_chunk_carries_the_name_the_caller_knows() -> None:
    ctx = RequestContext("r", "chat", None)
    ctx.answer_model = "deepseek-chat"  # the backend knows it by another name
    event = {
        "id": "x1",
        "model": "/models/ds-v3",
        "choices": [{"index": 0, "delta": {"content": "<P"}}],
    }
    data = b"data: " + json.dumps(event).encode() + b"\n\ndata: [DONE]\n\n"
    out = await _relay(ctx, FakeAnswer([data]), HoldbackRestorer())
    assert [e["model"] for e in _events(out)] == ["deepseek-chat", "deepseek-chat"]
    assert b"/models/ds-v3" not in out


def _tokens_of(text: str, size: int) -> list[dict[str, Any]]:
    return [
        {"token": text[i : i + size], "logprob": -0.5, "bytes": [], "top_logprobs": []}
        for i in range(0, len(text), size)
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 40])
async def test_a_stream_s_logprobs_are_restored_as_its_text_is(size: int) -> None:
    """A stream asked for logprobs: the tokens that spell a placeholder, across chunks and
    however the tokeniser cut it, come out as one entry of the value; held tokens come out
    with the finish_reason; the entries across the stream spell the text the caller got."""
    from gateway.pii.restore import PlaceholderRestorer

    ph, other = "<PERSON_3f9a1c>", "<EMAIL_ADDRESS_aa11bb>"
    r = PlaceholderRestorer({ph: "Alice Example", other: "a@example.org"}, [], None)
    answer = f"Dear {ph}, write to {other}.{ph}< ok"
    pieces = [answer[i : i + 7] for i in range(0, len(answer), 7)]
    data = b""
    for piece in pieces:
        choice = {
            "index": 0,
            "delta": {"content": piece},
            "logprobs": {"content": _tokens_of(piece, size), "refusal": None},
            "finish_reason": None,
        }
        data += b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"
    data += b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    ctx = RequestContext("r", "chat", None)
    out = await _relay(ctx, FakeAnswer([data + b"data: [DONE]\n\n"]), r)
    choices = [c for e in _events(out) for c in e["choices"]]
    text = "".join(c["delta"].get("content") or "" for c in choices)
    entries = [t for c in choices if c.get("logprobs") for t in c["logprobs"]["content"]]
    assert text == "Dear Alice Example, write to a@example.org.Alice Example< ok"
    assert "".join(t["token"] for t in entries) == text
    # each value whole in one entry (with the rest of the tokens it began or ended in)
    assert sum("Alice Example" in t["token"] for t in entries) == 2
    assert sum("a@example.org" in t["token"] for t in entries) == 1
    assert not any("_3f" in t["token"] or "ADDRESS" in t["token"] for t in entries)
    assert choices[-1]["finish_reason"] == "stop"


async def test_held_logprobs_come_out_before_done_when_no_finish_reason_comes() -> None:
    from gateway.pii.restore import PlaceholderRestorer

    r = PlaceholderRestorer({"<PERSON_3f9a1c>": "Alice"}, [], None)
    event = {"choices": [{"index": 0, "delta": {"content": "to <PERS"},
                          "logprobs": {"content": _tokens_of("to <PERS", 3)}}]}  # fmt: skip
    data = b"data: " + json.dumps(event).encode() + b"\n\ndata: [DONE]\n\n"
    out = await _relay(RequestContext("r", "chat", None), FakeAnswer([data]), r)
    choices = [c for e in _events(out) for c in e["choices"]]
    entries = [t["token"] for c in choices if c.get("logprobs") for t in c["logprobs"]["content"]]
    assert "".join(entries) == "to <PERS"  # never a placeholder: released as it came
    assert "".join(c["delta"].get("content") or "" for c in choices) == "to <PERS"
