"""A real OTLP/HTTP logs and traces receiver on 127.0.0.1, in the test's own event loop.

Each accepted POST to ``/v1/traces`` is parsed the same way and its spans kept in ``spans``.

Each accepted POST to ``/v1/logs`` is parsed with the OpenTelemetry protobuf definitions
(``json_format.Parse`` refuses unknown fields and wrong types) and kept, with its headers, in
``accepted``; ``answers`` queues ``(status, headers, body)`` answers to give before accepting
(a collector that is down, overloaded or refusing); ``delay_s`` slows every answer;
``partial_reject`` makes accepted answers report that many records rejected."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["OtlpReceiver"]


@dataclass
class OtlpReceiver:
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    delay_s: float = 0.0
    partial_reject: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)  # {"headers", "records"}
    attempts: int = 0
    spans: list[dict[str, Any]] = field(default_factory=list)  # OTLP/JSON spans, as received
    resources: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def seqs(self) -> list[int]:
        """The ``portcullis.seq`` of every accepted record, in the order received."""
        out = []
        for batch in self.accepted:
            for rec in batch["records"]:
                attrs = {a["key"]: a["value"] for a in rec["attributes"]}
                out.append(int(attrs["portcullis.seq"]["intValue"]))
        return out

    async def _read(self, request: web.Request, message: Any) -> bytes | web.Response:
        """The request's body once parsed as OTLP/JSON ``message`` (a 500 if it is not), or the
        answer queued to give instead (a 503, a 415 for another content type)."""
        from google.protobuf import json_format

        self.attempts += 1
        raw = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.answers:
            status, headers, body = self.answers.pop(0)
            return web.Response(status=status, headers=headers, body=body)
        if request.content_type != "application/json":
            return web.Response(status=415)
        json_format.Parse(raw, message)
        return raw

    async def _logs(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        raw = await self._read(request, ExportLogsServiceRequest())
        if isinstance(raw, web.Response):
            return raw
        doc = json.loads(raw)
        records = [
            r for rl in doc["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]
        ]
        self.accepted.append({"headers": dict(request.headers), "records": records})
        answer: dict[str, Any] = {}
        if self.partial_reject:
            answer["partialSuccess"] = {
                "rejectedLogRecords": str(self.partial_reject),
                "errorMessage": "too old",
            }
        return web.json_response(answer)

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    async def _traces(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        raw = await self._read(request, ExportTraceServiceRequest())
        if isinstance(raw, web.Response):
            return raw
        doc = json.loads(raw)
        for rs in doc["resourceSpans"]:
            self.resources.append(rs["resource"])
            self.spans += [s for ss in rs["scopeSpans"] for s in ss["spans"]]
        self.accepted.append({"headers": dict(request.headers), "records": []})
        return web.json_response({})

    async def __aenter__(self) -> OtlpReceiver:
        app = web.Application()
        app.router.add_post("/v1/logs", self._logs)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
