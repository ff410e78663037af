"""Contained engine: the worker process is killed at the deadline and on a crash, the request
fails closed, and the next request is served by a fresh worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from prometheus_client import CollectorRegistry

from gateway.config.policy import PolicySettings
from gateway.errors import Cause, GatewayError
from gateway.policy.client import build_policy_client
from tests.policy_fixtures import OVERLAYS_DIR, make_input

pytestmark = pytest.mark.integration

CANDIDATES = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")


async def _served(client: object, jurisdiction: str = "AU") -> tuple[str, ...]:
    """Requests fail closed while the replacement worker starts; then one is served."""
    for _ in range(600):  # up to 30 s: a fresh worker imports regorus and parses the bundle
        try:
            d = await client.decide(make_input(jurisdiction, "government"), CANDIDATES)  # type: ignore[attr-defined]
            return d.permitted_backends  # type: ignore[no-any-return]
        except GatewayError as exc:
            assert exc.cause is Cause.POLICY_UNAVAILABLE
            await asyncio.sleep(0.05)
    raise AssertionError("no worker came back")


async def test_runaway_evaluation_is_cut_at_the_deadline_and_the_worker_restarts() -> None:
    settings = PolicySettings(
        isolation="process", deadline_ms=200, overlays=(OVERLAYS_DIR / "runaway",), cache_size=0
    )
    client = await build_policy_client(settings, CollectorRegistry())
    try:
        engine = client.engine
        first_pid = engine.pid  # type: ignore[attr-defined]
        start = time.monotonic()
        with pytest.raises(GatewayError) as info:
            await client.decide(make_input("GB", "private", team="runaway"), CANDIDATES)
        assert info.value.cause is Cause.POLICY_UNAVAILABLE
        # the runaway evaluation alone runs for seconds; the caller got its answer at the deadline
        # (margin for a loaded shared machine)
        assert time.monotonic() - start < 0.2 + 1.0
        assert await _served(client) == ("azure-eu", "openai")  # a fresh worker serves
        assert engine.pid != first_pid and engine.restarts == 1  # type: ignore[attr-defined]
    finally:
        await client.close()


async def test_a_dead_worker_fails_closed_then_recovers() -> None:
    client = await build_policy_client(
        PolicySettings(isolation="process", cache_size=0), CollectorRegistry()
    )
    try:
        engine = client.engine
        pid = engine.pid  # type: ignore[attr-defined]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert await _served(client, "KR") == ("azure-eu", "deepseek-self", "openai")
        assert engine.pid != pid  # type: ignore[attr-defined]
    finally:
        await client.close()
