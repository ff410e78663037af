"""OpenTelemetry traces end to end (``tracing.endpoint``): the real embedded policy, the real PII
guard (patterns), requests through the openai SDK to the fake upstream, spans posted over
OTLP/HTTP to a real receiver that parses them with OpenTelemetry's own protobuf definitions.
The upstream's record of the ``traceparent`` it received, and the spans, are the evidence."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config import Settings
from gateway.tracing import parse_traceparent
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
EMAIL = "grace.hopper@example.org"


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    """The receiver on an event loop of its own (the gateway runs in its own thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = OtlpReceiver()
    asyncio.run_coroutine_threadsafe(receiver.__aenter__(), loop).result(10)
    yield receiver
    asyncio.run_coroutine_threadsafe(receiver.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _gateway(tmp: Path, upstream: FakeUpstream, **tracing: Any) -> RunningGateway:
    raw = deepseek_pair(tmp, upstream)
    raw["pii"] = {"ner": False}
    raw["tracing"] = {"interval_s": 0.1, **tracing}
    return RunningGateway(Settings.model_validate(raw)).start()


def _spans_of(collector: OtlpReceiver, trace_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        spans = [s for s in collector.spans if s["traceId"] == trace_id]
        if len(spans) >= count:
            return spans
        assert time.monotonic() < deadline, (count, collector.spans)
        time.sleep(0.05)


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for a in span["attributes"]:
        (kind, value), = a["value"].items()  # fmt: skip
        out[a["key"]] = (
            value if kind != "arrayValue" else [v["stringValue"] for v in value["values"]]
        )
    return out


def test_a_traced_request_continues_the_caller_s_trace_and_shows_where_its_time_went(
    tmp_path: Path, upstream: FakeUpstream, collector: OtlpReceiver
) -> None:
    gw = _gateway(tmp_path, upstream, endpoint=collector.traces_url, sample_ratio=0.0)
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
        raw = sdk.chat.completions.with_raw_response.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": f"Write to {EMAIL}, please."}],
            extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        request_id = raw.headers["x-request-id"]
        assert raw.parse().choices[0].message.content
        # the backend got the trace: the caller's trace id, the gateway's attempt as its parent
        sent = parse_traceparent(upstream.received[-1]["headers"]["traceparent"])
        assert sent is not None and sent[0] == CALLER_TRACE and sent[2] is True

        spans = _spans_of(collector, CALLER_TRACE, 5)
        (main,) = [s for s in spans if s.get("parentSpanId") == CALLER_SPAN]
        assert main["name"] == "chat deepseek-chat" and main["kind"] == 2  # SERVER
        attrs = _attrs(main)
        assert attrs["portcullis.request_id"] == request_id
        assert attrs["gen_ai.request.model"] == "deepseek-chat"
        assert attrs["http.response.status_code"] == "200"
        assert attrs["portcullis.decision"] == "allow"
        assert attrs["portcullis.backend"] == "deepseek-hosted"
        assert attrs["portcullis.backend.hosting_country"] == "CN"
        assert attrs["portcullis.jurisdiction"] == "AU-NSW" and attrs["portcullis.team"] == "ops"
        assert attrs["portcullis.pii.email_address"] == "1"
        assert int(attrs["gen_ai.usage.input_tokens"]) > 0
        children = {s["name"]: s for s in spans if s.get("parentSpanId") == main["spanId"]}
        assert {"policy decision", "personal data inspection", "audit write-ahead intent",
                "upstream call"} <= set(children)  # fmt: skip
        call = children["upstream call"]
        assert call["kind"] == 3 and call["spanId"] == sent[1]  # CLIENT, named in the header
        assert _attrs(call)["portcullis.backend"] == "deepseek-hosted"
        for child in children.values():  # inside the request's span
            assert int(main["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
            assert int(child["endTimeUnixNano"]) <= int(main["endTimeUnixNano"])
        # nothing of the content, the person or the key
        everything = json.dumps(collector.spans) + json.dumps(collector.resources)
        for secret in (EMAIL, "grace", "Write to", "ann", ann):
            assert secret not in everything, secret
        assert {"key": "service.name", "value": {"stringValue": "portcullis"}} in (
            collector.resources[0]["attributes"]
        )

        # a stream, and a refusal: each a trace (the caller's sampling decision is kept)
        stream = sdk.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"traceparent": f"00-{'a' * 32}-{CALLER_SPAN}-01"},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        stream_spans = _spans_of(collector, "a" * 32, 3)
        (streamed,) = [s for s in stream_spans if s.get("parentSpanId") == CALLER_SPAN]
        assert _attrs(streamed)["portcullis.stream"] is True
        # the relay is a span of its own: after the upstream call opened, to the stream's end
        parts = {s["name"]: s for s in stream_spans if s.get("parentSpanId") == streamed["spanId"]}
        relay, opened = parts["stream relay"], parts["upstream call"]
        assert int(_attrs(relay)["portcullis.chunks"]) >= 2 and relay["status"]["code"] == 0
        assert int(relay["startTimeUnixNano"]) >= int(opened["startTimeUnixNano"])
        assert int(relay["endTimeUnixNano"]) <= int(streamed["endTimeUnixNano"])
        cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
        refused = openai.OpenAI(base_url=gw.base_url, api_key=cat, max_retries=0)
        with pytest.raises(openai.PermissionDeniedError):
            refused.chat.completions.create(
                model="deepseek-chat",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"traceparent": f"00-{'b' * 32}-{CALLER_SPAN}-01"},
            )
        (denied,) = [
            s for s in _spans_of(collector, "b" * 32, 1) if s.get("parentSpanId") == CALLER_SPAN
        ]
        attrs = _attrs(denied)
        assert attrs["portcullis.decision"] == "deny" and attrs["error.type"] == "policy_denied"
        assert "au.au-homeaffairs-2025-02-04.hosted" in attrs["portcullis.denying_rules"]
        assert denied["status"]["code"] == 0  # a refusal is the gateway working, not an error

        # not sampled: the caller said so, or (without a traceparent) sample_ratio 0
        before = len(collector.spans)
        sdk.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"traceparent": f"00-{'c' * 32}-{CALLER_SPAN}-00"},
        )
        sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert "traceparent" not in upstream.received[-1]["headers"]
        time.sleep(0.5)
        assert len(collector.spans) == before
    finally:
        gw.stop()


def test_a_collector_that_is_down_costs_the_requests_nothing_and_is_counted(
    tmp_path: Path, upstream: FakeUpstream, collector: OtlpReceiver
) -> None:
    collector.answers = [(503, {}, b"busy")] * 50
    gw = _gateway(tmp_path, upstream, endpoint=collector.traces_url)
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
        for _ in range(3):
            assert sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
            ).choices
        deadline = time.monotonic() + 10
        while True:
            _, _, text = gw.request("GET", "/metrics", parse=False)
            failed = [
                line
                for line in text.decode().splitlines()
                if line.startswith('portcullis_trace_spans_total{result="failed"}')
            ]
            if failed and float(failed[0].split()[-1]) >= 3:
                break
            assert time.monotonic() < deadline, failed
            time.sleep(0.1)
        assert collector.spans == []
    finally:
        gw.stop()


def test_an_admin_call_is_a_server_span_named_by_its_route_never_its_values(
    tmp_path: Path, upstream: FakeUpstream, collector: OtlpReceiver
) -> None:
    """The admin API and the console's calls are traced too: one server span each, named by the
    route's template (not the key id in the path, nor the user in the query), with its status;
    a caller's traceparent is continued; a refused call is traced with its 401."""
    gw = _gateway(tmp_path, upstream, endpoint=collector.traces_url, sample_ratio=1.0)
    token = RunningGateway.ADMIN_TOKEN
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        _, _, keys = gw.request("GET", "/admin/keys", token=token)
        key_id = keys["data"][0]["key_id"]
        parent = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        status, _, _ = gw.request("GET", f"/admin/keys/{key_id}", token=token, headers=parent)
        assert status == 200
        (one,) = _spans_of(collector, CALLER_TRACE, 1)
        assert one["name"] == "GET /admin/keys/{key_id}" and one["kind"] == 2
        assert one["parentSpanId"] == CALLER_SPAN
        attrs = _attrs(one)
        assert attrs["http.route"] == "/admin/keys/{key_id}"
        assert attrs["http.response.status_code"] == "200" and "error.type" not in attrs
        assert gw.request("GET", "/admin/audit/usage?user=ann.the.auditor", token=token)[0] == 200
        assert gw.request("GET", "/admin/keys", token=ann)[0] in (401, 403)
        deadline = time.monotonic() + 10
        while True:
            names = [s["name"] for s in collector.spans]
            if names.count("GET /admin/audit/usage") and names.count("GET /admin/keys") >= 2:
                break
            assert time.monotonic() < deadline, names
            time.sleep(0.05)
        refused = [s for s in collector.spans if s["name"] == "GET /admin/keys"][-1]
        assert _attrs(refused)["http.response.status_code"] in ("401", "403")
        sent = json.dumps(collector.spans)
        assert key_id not in sent and "ann.the.auditor" not in sent and token not in sent
    finally:
        gw.stop()


def test_a_retry_without_stream_options_is_a_span_of_its_own(
    tmp_path: Path, upstream: FakeUpstream, collector: OtlpReceiver
) -> None:
    """A backend that refuses the stream_options the gateway added: the refused call and the
    retry without it are two upstream spans, the first with its 400, each named in the
    traceparent its call carried."""
    upstream.refuse_stream_options = True
    gw = _gateway(tmp_path, upstream, endpoint=collector.traces_url, sample_ratio=0.0)
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
        stream = sdk.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"traceparent": f"00-{'d' * 32}-{CALLER_SPAN}-01"},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        sent = [parse_traceparent(r["headers"]["traceparent"]) for r in upstream.received[-2:]]
        assert all(s is not None for s in sent) and sent[0] != sent[1]
        deadline = time.monotonic() + 10
        while True:
            calls = [s for s in collector.spans if s["traceId"] == "d" * 32 and s["kind"] == 3]
            if len(calls) >= 2:
                break
            assert time.monotonic() < deadline, collector.spans
            time.sleep(0.05)
        calls.sort(key=lambda s: int(s["startTimeUnixNano"]))
        assert [c["spanId"] for c in calls] == [s[1] for s in sent if s is not None]
        refused, retried = (_attrs(c) for c in calls)
        assert refused["http.response.status_code"] == "400" and refused["error.type"]
        assert "error.type" not in retried
    finally:
        gw.stop()
