"""Reliability F-4 through the gateway: Redis unreachable. Without a fallback, 503
``limiter_unavailable`` and nothing forwarded; with ``limits.redis_fallback_share`` the replica
serves from its own buckets at that share of each key's limit (429 past it, never unlimited),
stays ready, and counts each such reservation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway, _free_port
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def _gateway(tmp_path: Path, upstream: FakeUpstream, share: float | None) -> RunningGateway:
    settings = core_settings(
        tmp_path,
        upstream,
        redis={"url": f"redis://127.0.0.1:{_free_port()}/0"},  # nothing listens there
        limits={"requests_per_minute": 4, "tokens_per_minute": 0, "redis_fallback_share": share},
    )
    return RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()


def test_without_a_fallback_a_dead_redis_stops_every_request(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = _gateway(tmp_path, upstream, None)
    try:
        key = gw.create_key(user="u", jurisdiction="AU", sector="private")
        status, _, body = gw.request("POST", "/v1/chat/completions", CHAT, token=key)
        assert status == 503 and body["error"]["code"] == "limiter_unavailable"
        assert upstream.received == []
        assert gw.request("GET", "/readyz")[0] == 503
    finally:
        gw.stop()


def test_with_a_fallback_share_a_dead_redis_leaves_the_replica_its_share(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = _gateway(tmp_path, upstream, 0.5)
    try:
        key = gw.create_key(user="u", jurisdiction="AU", sector="private")
        answers = [gw.request("POST", "/v1/chat/completions", CHAT, token=key) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 429]  # 4 a minute: 2 on this replica
        assert answers[0][1]["x-ratelimit-limit-requests"] == "2"
        assert answers[2][1]["retry-after"]
        assert len(upstream.received) == 2
        assert gw.request("GET", "/readyz")[0] == 200  # degraded, still serving within bounds
        _, _, text = gw.request("GET", "/metrics", parse=False)
        assert b"portcullis_limiter_fallback_total 2.0" in text  # reservations taken locally
    finally:
        gw.stop()


def test_a_redis_that_answers_but_refuses_scripting_stops_every_request_and_is_not_ready(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """F-4 (c) through the gateway: a proxy in front of the real Redis that answers PING but
    refuses EVAL, EVALSHA and SCRIPT (as restricted managed services do): 503, nothing sent,
    ``/readyz`` 503 (it read 200 while it asked only for a PING)."""
    from tests.support.resp_proxy import RespProxy
    from tests.support.services import REDIS_URL

    port = int(REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])
    with RespProxy(port, refuse=("EVAL", "EVALSHA", "SCRIPT")) as proxy:
        settings = core_settings(
            tmp_path,
            upstream,
            redis={"url": proxy.url},
            limits={"requests_per_minute": 4, "tokens_per_minute": 0},
        )
        gw = RunningGateway(
            settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
        ).start()
        try:
            key = gw.create_key(user="u", jurisdiction="AU", sector="private")
            for _ in range(6):  # more than the limit: never unlimited
                status, _, body = gw.request("POST", "/v1/chat/completions", CHAT, token=key)
                assert status == 503 and body["error"]["code"] == "limiter_unavailable"
            assert upstream.received == []
            status, _, ready = gw.request("GET", "/readyz")
            assert status == 503, ready
            assert proxy.refused >= 6 and proxy.passed >= 1
        finally:
            gw.stop()
