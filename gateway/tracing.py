"""OpenTelemetry traces of the requests, sent over OTLP/HTTP (JSON) to a collector.

Off unless ``tracing.endpoint`` names one. Per sampled request the gateway sends one server span
(``chat deepseek-chat``) with a child span per step it timed (resolving the model and backends,
the policy decision, PII inspection and transformation, rate limits, the write-ahead audit
intent, each upstream attempt, the answer's restoration, a stream's relay), so a platform team
sees where a slow request's time went — the gateway's own part, the backend's, and which step.
A caller's W3C ``traceparent`` is continued (the gateway's span becomes its child, and its
sampling decision is kept), and each upstream attempt carries a ``traceparent`` naming the
gateway's span, so a self-hosted vLLM that traces too joins the same trace. An admin or console
call is one server span named by its route (:meth:`Tracer.finish_admin`).

What a span holds: the request id, the endpoint and model, the backend and its operator and
hosting country, the decision and the denying rules, the status and error code, the caller's
key id, team, jurisdiction and sector, token counts, and the personal data found per type —
never a prompt, an answer, a value, a user name or a key (a trace store is read more widely than
the audit trail). Gen-AI attributes follow OpenTelemetry's semantic conventions
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ...).

The hot path only stamps times it takes anyway; the span is built when the request is finished
(after the answer is sent), queued, and a background task posts the queue in batches. A
collector that is slow or down costs the requests nothing: the queue is bounded, the oldest
spans are dropped past it, and every span is counted (``portcullis_trace_spans_total{result}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from prometheus_client import CollectorRegistry, Counter

from gateway.strays import stop

if TYPE_CHECKING:
    from gateway.config.core import TracingSettings
    from gateway.context import RequestContext

__all__ = ["TraceIds", "Tracer", "collector_headers", "new_span_id", "parse_traceparent"]

log = logging.getLogger("portcullis")

_encode = msgspec.json.Encoder().encode
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16
_SERVER, _INTERNAL, _CLIENT = 2, 1, 3  # OTLP span kinds
_FINE, _FAILED = {"code": 0}, {"code": 2}  # OTLP span statuses: unset, error
# The steps the request context times (RequestContext.mark), as child span names.
_STEP_NAMES = {
    "resolve": "resolve model and backends",
    "policy": "policy decision",
    "policy_final": "policy decision (with personal data counted)",
    "pii": "personal data inspection",
    "pii_apply": "personal data transformation",
    "limits": "rate limits",
    "audit_intent": "audit write-ahead intent",
    "capture": "content capture",
    "restore": "answer restoration",
    "upstream": "upstream call",
    "relay": "stream relay",
}


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """A W3C ``traceparent`` header's (trace id, parent span id, sampled), or None for a
    missing or malformed one (then the gateway starts a trace of its own)."""
    if not value or len(value) > 64:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if m is None or m.group(1) == _NO_TRACE or m.group(2) == _NO_SPAN:
        return None
    return m.group(1), m.group(2), bool(int(m.group(3), 16) & 1)


@dataclass(slots=True)
class TraceIds:
    """A request's place in a trace: its trace, its own span, the caller's span (if any), and
    the steps timed while it ran ((name, start, end) on ``time.perf_counter``)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    wall_start_ns: int  # the request's start on the wall clock, for the span times
    perf_start: float  # the same instant on time.perf_counter
    steps: list[tuple[str, float, float, dict[str, Any]]] = field(default_factory=list)

    def traceparent(self, span_id: str | None = None) -> str:
        return f"00-{self.trace_id}-{span_id or self.span_id}-01"

    def ns(self, perf: float) -> int:
        return self.wall_start_ns + int((perf - self.perf_start) * 1e9)


def _ids(bits: int) -> str:
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"  # all zeros is no id in W3C's terms


def new_span_id() -> str:
    return _ids(64)


def _attr(key: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list | tuple):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": str(v)} for v in value]}},
        }
    return {"key": key, "value": {"stringValue": str(value)}}


def _attrs(pairs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a for a in (_attr(k, v) for k, v in pairs.items()) if a is not None]


def _server_span(
    t: TraceIds, name: str, attributes: list[dict[str, Any]], failed: bool, end: float
) -> dict[str, Any]:
    """The span of a call the gateway served (a request, an admin call), ended at ``end``
    (``time.perf_counter``); the caller's span as its parent when it named one."""
    span = {
        "traceId": t.trace_id,
        "spanId": t.span_id,
        "name": name,
        "kind": _SERVER,
        "startTimeUnixNano": str(t.wall_start_ns),
        "endTimeUnixNano": str(t.ns(end)),
        "attributes": attributes,
        "status": _FAILED if failed else _FINE,
    }
    if t.parent_id:
        span["parentSpanId"] = t.parent_id
    return span


class Tracer:
    """Starts a request's trace ids (:meth:`begin`), turns a finished request into spans
    (:meth:`finish`) and posts them to the collector from a background task."""

    def __init__(
        self, settings: TracingSettings, registry: CollectorRegistry | None = None
    ) -> None:
        assert settings.endpoint is not None
        self._settings = settings
        self._queue: deque[dict[str, Any]] = deque(maxlen=settings.max_queue)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None
        self._attr_cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self._headers = collector_headers(settings)
        self._resource = {
            "attributes": _attrs(
                {
                    "service.name": settings.service_name,
                    "service.instance.id": f"{os.uname().nodename}:{os.getpid()}",
                }
            )
        }
        self.spans = Counter(
            "portcullis_trace_spans",
            "Spans by what became of them: exported, dropped (the queue was full), failed (the "
            "collector refused them or did not answer)",
            ["result"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    def begin(self, ctx: RequestContext, scope: Mapping[str, Any]) -> None:
        """Give ``ctx`` its trace ids when it is sampled: the caller's ``traceparent`` decides
        where it names one, else ``sample_ratio``."""
        ctx.trace = self.ids(scope, ctx.started)

    def ids(self, scope: Mapping[str, Any], perf_start: float) -> TraceIds | None:
        """The trace ids of a call that began at ``perf_start`` (``time.perf_counter``), or
        None when it is not sampled."""
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                incoming = parse_traceparent(value.decode("latin-1"))
                break
        if incoming is not None:
            trace_id, parent, sampled = incoming
        else:
            ratio = self._settings.sample_ratio
            sampled = ratio >= 1.0 or random.random() < ratio
            trace_id, parent = _ids(128), None
        if not sampled:
            return None
        return TraceIds(trace_id, _ids(64), parent, time.time_ns(), perf_start)

    def finish(self, ctx: RequestContext) -> None:
        """Queue the request's spans (after its answer went out). Never raises."""
        t = ctx.trace
        if t is None:
            return
        try:
            spans = self._spans(ctx, t)
        except Exception as exc:  # noqa: BLE001 - tracing never fails a request
            log.warning("trace span not built: %s", type(exc).__name__)
            return
        self._enqueue(spans)

    def finish_admin(self, t: TraceIds, scope: Mapping[str, Any], status: int) -> None:
        """Queue the server span of an admin or console call: its method, its route as the
        router knows it (``/admin/keys/{key_id}``: never the path's values, nor the query,
        which may name a user), its status and its time. Never raises."""
        method = str(scope.get("method", ""))
        route = scope.get("path_template")
        route = route if isinstance(route, str) and route else None
        attrs = {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status or None,
            "error.type": str(status) if status >= 500 or status == 0 else None,
        }
        name = f"{method} {route or 'admin'}"
        failed = attrs["error.type"] is not None
        self._enqueue([_server_span(t, name, _attrs(attrs), failed, time.perf_counter())])

    def _enqueue(self, spans: list[dict[str, Any]]) -> None:
        overflow = len(self._queue) + len(spans) - self._settings.max_queue
        if overflow > 0:
            self.spans.labels(result="dropped").inc(overflow)
        self._queue.extend(spans)  # a bounded deque: the oldest go first
        if len(self._queue) >= self._settings.batch_size:
            self._wake.set()

    def _spans(self, ctx: RequestContext, t: TraceIds) -> list[dict[str, Any]]:
        end = time.perf_counter()
        p, d, b = ctx.principal, ctx.decision, ctx.backend
        usage = ctx.usage
        failed = ctx.status >= 500 or ctx.status == 0
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat" if ctx.endpoint == "chat" else ctx.endpoint,
            "gen_ai.request.model": ctx.model,
            "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
            "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
            "http.request.method": "POST",
            "http.response.status_code": ctx.status or None,
            "error.type": ctx.error_code,
            "portcullis.request_id": ctx.request_id,
            "portcullis.api": ctx.api or ctx.endpoint,
            "portcullis.stream": bool(ctx.parsed and ctx.parsed.stream),
            "portcullis.forwarded": ctx.forwarded,
        }
        fixed: list[dict[str, Any]] = []
        if p is not None:
            fixed += self._cached(
                ("p", p.key_id, p.team, p.jurisdiction, p.sector),
                lambda: {
                    "portcullis.key_id": p.key_id,
                    "portcullis.team": p.team,
                    "portcullis.jurisdiction": p.jurisdiction,
                    "portcullis.sector": p.sector,
                },
            )
        if d is not None:
            attrs |= {
                "portcullis.decision": "allow" if d.allow else "deny",
                "portcullis.denying_rules": sorted({r.rule for r in d.denials}) or None,
                "portcullis.bundle_revision": d.bundle_revision,
            }
        if b is not None:
            fixed += self._cached(
                ("b", b.id, b.base_url, b.operator, b.hosting_country, b.self_hosted),
                lambda: {
                    "portcullis.backend": b.id,
                    "portcullis.backend.operator": b.operator,
                    "portcullis.backend.hosting_country": b.hosting_country,
                    "portcullis.backend.self_hosted": b.self_hosted,
                    "server.address": urlsplit(b.base_url).hostname,
                },
            )
        for etype, n in sorted(ctx.pii_counts.items()):
            attrs[f"portcullis.pii.{etype.lower()}"] = n
        if ctx.first_byte_s is not None:
            attrs["portcullis.first_byte_ms"] = round(ctx.first_byte_s * 1000, 3)
        name = f"{attrs['gen_ai.operation.name']} {ctx.model}" if ctx.model else "request"
        out = [_server_span(t, name, _attrs(attrs) + fixed, failed, end)]
        for step, start, end_at, extra in t.steps:
            span_id = extra.pop("span_id", None) if extra else None
            step_attrs = self._cached(("s", step), lambda s=step: {"portcullis.step": s})
            child = {
                "traceId": t.trace_id,
                "spanId": span_id or _ids(64),
                "parentSpanId": t.span_id,
                "name": _STEP_NAMES.get(step, step),
                "kind": _CLIENT if step == "upstream" else _INTERNAL,
                "startTimeUnixNano": str(t.ns(start)),
                "endTimeUnixNano": str(t.ns(end_at)),
                "attributes": step_attrs + _attrs(extra) if extra else step_attrs,
                "status": _FAILED if extra and extra.get("error.type") else _FINE,
            }
            out.append(child)
        return out

    def _cached(self, key: tuple[Any, ...], build: Any) -> list[dict[str, Any]]:
        """The attribute list of a principal or a backend, built once (they repeat)."""
        hit = self._attr_cache.get(key)
        if hit is None:
            if len(self._attr_cache) >= 4096:
                self._attr_cache.clear()
            hit = self._attr_cache[key] = _attrs(build())
        return hit

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="trace-export")

    async def _run(self) -> None:
        import aiohttp

        s = self._settings
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.timeout_s))
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        """Post what is queued, a batch at a time."""
        while self._queue:
            size = min(self._settings.batch_size, len(self._queue))
            await self._post([self._queue.popleft() for _ in range(size)])

    async def _post(self, batch: list[dict[str, Any]]) -> None:
        import aiohttp

        payload = {
            "resourceSpans": [
                {
                    "resource": self._resource,
                    "scopeSpans": [{"scope": {"name": "portcullis"}, "spans": batch}],
                }
            ]
        }
        body = _encode(payload)
        try:
            async with self._session.post(
                self._settings.endpoint, data=body, headers=self._headers
            ) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ok = False
            reason = type(exc).__name__
        else:
            reason = f"status {resp.status}"
        if ok:
            self.spans.labels(result="exported").inc(len(batch))
        else:
            self.spans.labels(result="failed").inc(len(batch))
            log.warning("traces not exported (%d spans): %s", len(batch), reason)

    async def close(self) -> None:
        """Send what is queued (within the export timeout), then stop."""
        await stop(self._task)
        self._task = None
        if self._session is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._settings.timeout_s):
                    await self._drain()
            await self._session.close()
            self._session = None


def collector_headers(settings: TracingSettings) -> dict[str, str]:
    """The headers of an export to the collector: OTLP/JSON's content type and the extra ones
    ``headers_env`` names (``portcullis check`` sends the same)."""
    return {"Content-Type": "application/json", **_extra_headers(settings.headers_env)}


def _extra_headers(env_name: str | None) -> dict[str, str]:
    """Headers for the collector (an API key), as ``OTEL_EXPORTER_OTLP_HEADERS`` spells them:
    ``name=value,name2=value2`` in the named environment variable (never in the file)."""
    if not env_name:
        return {}
    out = {}
    for part in os.environ.get(env_name, "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out
