"""Upstream deadlines against a real HTTP server on 127.0.0.1: a JSON answer whose headers come
at once but whose body never finishes is a timeout (a 504 to the caller), not an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.config.backends import BackendSpec
from gateway.upstream import Upstream, UpstreamFailure


async def _slow_body(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = 100
    await resp.prepare(request)
    await resp.write(b'{"id": "x", ')
    await asyncio.sleep(30)
    return resp


async def _no_headers(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


async def _not_json(request: web.Request) -> web.Response:
    return web.Response(body=b"<html>", content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/slow/chat/completions", _slow_body)
    app.router.add_post("/stall/chat/completions", _no_headers)
    app.router.add_post("/html/chat/completions", _not_json)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _backend(base: str, **timeouts: float) -> BackendSpec:
    return BackendSpec.model_validate(
        {
            "id": "b",
            "base_url": base,
            "models": ["m"],
            "operator": "acme",
            "model_family": "x",
            "model_origin": "US",
            "hosting_country": "US",
            "timeouts": timeouts,
        }
    )


@pytest.mark.parametrize(
    ("path", "timeouts", "limit"),
    [
        ("slow", {"first_byte_s": 5, "total_s": 0.5}, 0.5),  # headers in time, body never
        ("stall", {"first_byte_s": 0.3, "total_s": 10}, 0.3),  # no headers
    ],
)
async def test_json_call_ends_at_its_deadline_as_a_timeout(
    server: str, path: str, timeouts: dict[str, float], limit: float
) -> None:
    up = Upstream({})
    await up.start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(UpstreamFailure) as err:
            await up.call_json(_backend(f"{server}/{path}", **timeouts), "chat", b"{}")
        took = time.perf_counter() - t0
        assert err.value.kind == "timeout" and not err.value.retryable
        assert limit <= took < limit + 1.5
    finally:
        await up.close()


async def test_json_call_with_a_body_that_is_not_json_is_a_protocol_failure(server: str) -> None:
    up = Upstream({})
    await up.start()
    try:
        with pytest.raises(UpstreamFailure) as err:
            await up.call_json(_backend(f"{server}/html"), "chat", b"{}")
        assert err.value.kind == "protocol" and err.value.status == 200
    finally:
        await up.close()
