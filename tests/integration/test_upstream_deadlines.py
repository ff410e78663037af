"""Upstream deadlines against a real HTTP server on 127.0.0.1: a JSON answer whose headers come
at once but whose body never finishes is a timeout (a 504 to the caller), not an error; idle
pooled connections are dropped after the backend's ``keepalive_s``, before the backend itself
would close them under a request."""

from __future__ import annotations

import asyncio
import contextlib
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


@contextlib.asynccontextmanager
async def _serving(app: web.Application, keepalive_s: float = 75.0) -> AsyncIterator[str]:
    """``app`` on a free loopback port (its base URL), closing idle connections after
    ``keepalive_s`` (aiohttp's default: 75 s)."""
    runner = web.AppRunner(app, shutdown_timeout=0.1, keepalive_timeout=keepalive_s)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/slow/chat/completions", _slow_body)
    app.router.add_post("/stall/chat/completions", _no_headers)
    app.router.add_post("/html/chat/completions", _not_json)
    app.router.add_post("/peer/chat/completions", _peer)
    async with _serving(app) as url:
        yield url


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


async def _peer(request: web.Request) -> web.Response:
    # which of the client's connections carried this request
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response({"choices": [], "peer": list(peer or ())})


@pytest.fixture
async def closes_idle() -> AsyncIterator[str]:
    """A backend that closes a connection idle for 0.6 s, as uvicorn (vLLM) does after 5 s."""
    app = web.Application()
    app.router.add_post("/chat/completions", _peer)
    async with _serving(app, keepalive_s=0.6) as url:
        yield url


async def test_idle_pooled_connections_are_kept_for_the_backends_keepalive_only(
    server: str,
) -> None:
    up = Upstream({})
    await up.start()
    try:  # the server keeps idle connections 75 s: only the pool's keep-alive decides here
        for keepalive_s, reused in ((0.1, False), (5.0, True)):
            backend = _backend(f"{server}/peer", keepalive_s=keepalive_s)
            first = (await up.call_json(backend, "chat", b"{}")).body["peer"]
            await asyncio.sleep(0.2)
            second = (await up.call_json(backend, "chat", b"{}")).body["peer"]
            assert (first == second) is reused, keepalive_s
    finally:
        await up.close()


async def test_requests_sent_as_the_backend_closes_idle_connections_are_not_lost(
    closes_idle: str,
) -> None:
    """Each request goes out just as the backend would close the connection it would reuse: a
    pool that kept connections longer than the backend (aiohttp's 15 s default, the 30 s this
    gateway used) loses some of them (a POST is not repeated); one below it loses none."""
    up = Upstream({})
    await up.start()
    backend = _backend(closes_idle, keepalive_s=0.5)
    try:
        for n in range(10):
            await asyncio.sleep(0.6 + (n % 5 - 2) * 0.002)
            await up.call_json(backend, "chat", b"{}")
    finally:
        await up.close()
