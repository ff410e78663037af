"""The tracer's parts without a collector: W3C trace context, sampling, the spans a finished
request becomes, and a bounded queue."""

from __future__ import annotations

import pytest

from gateway.config.core import TracingSettings
from gateway.context import RequestContext
from gateway.tracing import Tracer, parse_traceparent

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (GOOD, ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)),
        (GOOD[:-2] + "00", ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", False)),
        (GOOD.upper(), ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)),
        (None, None),
        ("", None),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),  # unknown version
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # an all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None),
        ("00-4bf92f35-00f067aa0ba902b7-01", None),
        (GOOD + "x" * 100, None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01; DROP", None),
    ],
)
def test_traceparent(value: str | None, want: tuple[str, str, bool] | None) -> None:
    assert parse_traceparent(value) == want


def _tracer(**settings: object) -> Tracer:
    return Tracer(TracingSettings(endpoint="http://127.0.0.1:4318/v1/traces", **settings))


def _ctx(traceparent: str | None = None) -> tuple[RequestContext, dict[str, object]]:
    ctx = RequestContext(request_id="req_1", endpoint="chat", client_addr=None)
    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    return ctx, {"headers": headers}


def test_sampling_follows_the_caller_else_the_ratio() -> None:
    always, never = _tracer(sample_ratio=1.0), _tracer(sample_ratio=0.0)
    ctx, scope = _ctx()
    never.begin(ctx, scope)
    assert ctx.trace is None
    always.begin(ctx, scope)
    assert ctx.trace is not None and ctx.trace.parent_id is None and len(ctx.trace.trace_id) == 32
    ctx, scope = _ctx(GOOD)
    never.begin(ctx, scope)  # the caller sampled it
    assert ctx.trace is not None and ctx.trace.trace_id == GOOD.split("-")[1]
    assert ctx.trace.parent_id == "00f067aa0ba902b7"
    ctx, scope = _ctx(GOOD[:-2] + "00")
    always.begin(ctx, scope)  # the caller did not
    assert ctx.trace is None


def test_a_finished_request_is_a_server_span_and_a_span_per_step() -> None:
    tracer = _tracer()
    ctx, scope = _ctx(GOOD)
    tracer.begin(ctx, scope)
    ctx.model, ctx.status = "deepseek-chat", 200
    t0 = ctx.mark("policy", ctx.started)
    ctx.mark("audit_intent", t0)
    tracer.finish(ctx)
    spans = list(tracer._queue)
    main, *steps = spans
    assert main["name"] == "chat deepseek-chat" and main["parentSpanId"] == "00f067aa0ba902b7"
    assert [s["name"] for s in steps] == ["policy decision", "audit write-ahead intent"]
    assert all(s["parentSpanId"] == main["spanId"] for s in steps)
    assert int(steps[0]["startTimeUnixNano"]) == int(main["startTimeUnixNano"])
    untraced, _ = _ctx()
    untraced.mark("policy", untraced.started)  # no trace: nothing kept, nothing queued
    tracer.finish(untraced)
    assert len(tracer._queue) == len(spans)


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    tracer = _tracer(max_queue=4)
    for i in range(3):
        ctx, scope = _ctx(GOOD)
        tracer.begin(ctx, scope)
        ctx.model, ctx.status = f"m{i}", 200
        ctx.mark("policy", ctx.started)
        tracer.finish(ctx)  # two spans each
    assert len(tracer._queue) == 4
    assert tracer._queue[-2]["name"] == "chat m2"
    dropped = tracer.spans.labels(result="dropped")._value.get()
    assert dropped == 2
    # one request with more spans than the queue holds: its newest kept, the rest counted
    small = _tracer(max_queue=1)
    ctx, scope = _ctx(GOOD)
    small.begin(ctx, scope)
    ctx.mark("policy", ctx.mark("resolve", ctx.started))
    small.finish(ctx)
    assert len(small._queue) == 1 and small._queue[0]["name"] == "policy decision"
    assert small.spans.labels(result="dropped")._value.get() == 2


def test_collector_headers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_HDRS", "x-api-key=abc, x-team = obs ,broken")
    tracer = _tracer(headers_env="OTEL_HDRS")
    assert tracer._headers["x-api-key"] == "abc" and tracer._headers["x-team"] == "obs"
    assert "broken" not in tracer._headers


@pytest.mark.parametrize(
    "endpoint", ["ftp://collector/v1/traces", "http://user:pw@collector/v1/traces", "collector"]
)
def test_a_bad_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        TracingSettings(endpoint=endpoint)
