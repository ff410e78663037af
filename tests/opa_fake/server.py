"""A small OPA-REST-compatible server for tests: evaluates the same bundle with regorus.

Serves ``POST /v1/data/<path>`` (``{"input": ...}`` -> ``{"result": ...}``, ``{}`` when
undefined) and ``GET /health``. ``mode`` makes it misbehave on purpose: ``slow`` (sleeps
``delay_s`` first), ``error`` (HTTP 500), ``undefined`` (``{}``), ``malformed`` (a result that is
not a decision), ``garbage`` (a body that is not JSON).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.policy.bundle import Bundle
from gateway.policy.embedded import prepare_engine

__all__ = ["FakeOpa"]


@dataclass
class FakeOpa:
    bundle: Bundle
    mode: str = "normal"
    delay_s: float = 0.0
    requests: int = 0
    _runner: web.AppRunner | None = field(default=None, init=False)
    port: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._engine: Any = prepare_engine(self.bundle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({})

    async def _data(self, request: web.Request) -> web.Response:
        self.requests += 1
        path = request.match_info["path"].strip("/").replace("/", ".")
        body = await request.json()
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        if self.mode == "error":
            return web.json_response({"code": "internal_error", "message": "boom"}, status=500)
        if self.mode == "undefined":
            return web.json_response({})
        if self.mode == "garbage":
            return web.Response(text="<html>not json</html>", content_type="application/json")
        if self.mode == "malformed":
            return web.json_response({"result": {"allow": "yes"}})
        self._engine.set_input_json(json.dumps(body.get("input")))
        out = json.loads(self._engine.eval_query_as_json(f"data.{path}" if path else "data"))
        results = out.get("result") or []
        if not results:
            return web.json_response({})
        return web.json_response({"result": results[0]["expressions"][0]["value"]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1/data/{path:.*}", self._data)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
