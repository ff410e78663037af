"""The OPA engine (opa-python-client) against the OPA-REST-compatible fake in tests/opa_fake,
which evaluates the same bundle with regorus: parity over the whole scenario table, and the
client's handling of timeouts, HTTP errors, undefined and malformed results."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from gateway.config.policy import PolicySettings
from gateway.errors import Cause, GatewayError
from gateway.policy.client import PolicyClient
from gateway.policy.contract import parse_decision
from gateway.policy.opa import OpaEngine
from tests.opa_fake.server import FakeOpa
from tests.policy_fixtures import make_input
from tests.policy_fixtures.engines import bundle_for, evaluate, input_for
from tests.policy_fixtures.scenarios import SCENARIOS

pytestmark = pytest.mark.integration

CANDIDATES = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")


@pytest.fixture
async def fake_opa() -> AsyncIterator[FakeOpa]:
    server = FakeOpa(bundle_for(()))
    await server.start()
    yield server
    await server.stop()


async def test_parity_embedded_and_opa_over_the_whole_table() -> None:
    by_overlays: dict[tuple[str, ...], tuple[FakeOpa, OpaEngine]] = {}
    try:
        for s in SCENARIOS:
            if s.overlays not in by_overlays:
                server = FakeOpa(bundle_for(s.overlays))
                await server.start()
                engine = OpaEngine(server.url)
                await engine.start()
                by_overlays[s.overlays] = (server, engine)
            _, opa = by_overlays[s.overlays]
            remote = await opa.evaluate(input_for(s))
            local = evaluate(s)
            assert parse_decision(remote, s.backends) == parse_decision(local, s.backends), s.name
            assert remote == local, s.name  # the raw documents too, reason order included
    finally:
        for server, engine in by_overlays.values():
            await engine.close()
            await server.stop()


async def test_opa_engine_learns_the_sidecar_revision(fake_opa: FakeOpa) -> None:
    engine = OpaEngine(fake_opa.url)
    await engine.start()
    try:
        assert engine.revision == bundle_for(()).revision
        assert await engine.ready()
    finally:
        await engine.close()


MISBEHAVIOUR = [
    ("delayed", "timeout"),
    ("error", "error"),
    ("undefined", "error"),
    ("garbage", "error"),
    ("malformed", "malformed"),
]


@pytest.mark.parametrize(("mode", "cause"), MISBEHAVIOUR, ids=[m for m, _ in MISBEHAVIOUR])
async def test_opa_failures_fail_closed(fake_opa: FakeOpa, mode: str, cause: str) -> None:
    engine = OpaEngine(fake_opa.url)
    await engine.start()
    fake_opa.mode, fake_opa.delay_s = ("slow" if mode == "delayed" else mode), 2.0
    reg = CollectorRegistry()
    client = PolicyClient(
        engine, PolicySettings(engine="opa", deadline_ms=100), metrics_registry=reg
    )
    start = time.monotonic()
    try:
        with pytest.raises(GatewayError) as info:
            await client.decide(make_input("AU", "government"), CANDIDATES)
        assert info.value.cause is Cause.POLICY_UNAVAILABLE
        assert reg.get_sample_value("portcullis_policy_failures_total", {"cause": cause}) == 1.0
        assert time.monotonic() - start < 0.1 + 0.5  # the fake sleeps 2 s
        assert fake_opa.requests == 2  # the revision probe and this one: no retries
    finally:
        await client.close()


async def test_opa_unreachable_fails_closed_and_is_not_ready() -> None:
    engine = OpaEngine("http://127.0.0.1:9")  # nothing listens on the discard port
    client = PolicyClient(
        engine, PolicySettings(engine="opa", deadline_ms=200), metrics_registry=CollectorRegistry()
    )
    try:
        assert not await client.ready()
        with pytest.raises(GatewayError) as info:
            await client.decide(make_input("AU", "private"), CANDIDATES)
        assert info.value.cause is Cause.POLICY_UNAVAILABLE
    finally:
        await client.close()


async def test_opa_decisions_are_served_through_the_client(fake_opa: FakeOpa) -> None:
    engine = OpaEngine(fake_opa.url)
    client = PolicyClient(
        engine, PolicySettings(engine="opa"), metrics_registry=CollectorRegistry()
    )
    try:
        d = await client.decide(make_input("KR", "government"), CANDIDATES)
        assert d.permitted_backends == ("azure-eu", "deepseek-self", "openai")
        again = await client.decide(make_input("KR", "government"), CANDIDATES)
        assert again is d and fake_opa.requests == 2  # the second came from the cache
    finally:
        await client.close()
