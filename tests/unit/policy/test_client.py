"""The policy client: fail closed on every engine failure, deadline, bounded in-flight, cache,
atomic reload. Engines here are deterministic fakes (the real engines have their own tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.config.policy import PolicySettings
from gateway.errors import Cause, GatewayError
from gateway.policy.client import PolicyClient, build_policy_client, cache_key
from tests.policy_fixtures import make_input

CANDIDATES = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")


def good(revision: str = "rev-1", permitted: list[str] | None = None) -> dict[str, Any]:
    permitted = ["openai"] if permitted is None else permitted
    return {
        "version": "1",
        "allow": bool(permitted),
        "permitted_backends": permitted,
        "pii_actions": {b: {"*": "pseudonymise"} for b in permitted},
        "reasons": []
        if permitted
        else [{"rule": "x", "effect": "deny", "message": "no", "backends": None, "citation": None}],
        "obligations": {"content_capture": False, "retention_class": "standard"},
        "bundle_revision": revision,
    }


class FakeEngine:
    """A PolicyEngine whose answer, delay and failure are set by the test."""

    def __init__(
        self,
        answer: Any = None,
        *,
        revision: str = "rev-1",
        delay: float = 0.0,
        error: BaseException | None = None,
    ) -> None:
        self.answer = good(revision) if answer is None else answer
        self._revision = revision
        self.delay = delay
        self.error = error
        self.calls = 0
        self.closed = False

    @property
    def revision(self) -> str:
        return self._revision

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.answer

    async def ready(self) -> bool:
        return not self.closed

    async def close(self) -> None:
        self.closed = True


def client_for(engine: FakeEngine, **settings: Any) -> tuple[PolicyClient, CollectorRegistry]:
    reg = CollectorRegistry()
    return PolicyClient(engine, PolicySettings(**settings), metrics_registry=reg), reg


def failures(reg: CollectorRegistry, cause: str) -> float:
    return reg.get_sample_value("portcullis_policy_failures_total", {"cause": cause}) or 0.0


class Panic(BaseException):
    """Like pyo3's PanicException: a BaseException, not an Exception."""


FAILING = [
    ("engine-raises", FakeEngine(error=RuntimeError("engine crashed")), "error"),
    ("engine-panics", FakeEngine(error=Panic("rust panic")), "error"),
    ("undefined-decision", FakeEngine(answer="<undefined>"), "malformed"),
    ("allow-not-bool", FakeEngine(answer={**good(), "allow": "yes"}), "malformed"),
    ("unknown-backend", FakeEngine(answer=good(permitted=["elsewhere"])), "malformed"),
    (
        "unknown-pii-action",
        FakeEngine(answer={**good(), "pii_actions": {"openai": {"*": "shred"}}}),
        "malformed",
    ),
    ("wrong-version", FakeEngine(answer={**good(), "version": "2"}), "malformed"),
    (
        "denial-without-reason",
        FakeEngine(answer={**good(permitted=[]), "reasons": []}),
        "malformed",
    ),
    ("revision-mismatch", FakeEngine(answer=good(revision="other")), "malformed"),
    ("missing-revision", FakeEngine(answer={**good(), "bundle_revision": ""}), "malformed"),
    (  # an obligation to protect answers said wrongly must not pass as "no"
        "redact-new-pii-not-bool",
        FakeEngine(
            answer={**good(), "obligations": {**good()["obligations"], "redact_new_pii": "yes"}}
        ),
        "malformed",
    ),
    (  # and so must an obligation to read the prompt strictly
        "strict-pii-not-bool",
        FakeEngine(answer={**good(), "obligations": {**good()["obligations"], "strict_pii": 1}}),
        "malformed",
    ),
    ("slow-engine", FakeEngine(delay=5.0), "timeout"),
]


@pytest.mark.parametrize(
    ("engine", "cause"), [(e, c) for _, e, c in FAILING], ids=[n for n, _, _ in FAILING]
)
async def test_engine_failure_fails_closed_with_policy_unavailable(
    engine: FakeEngine, cause: str
) -> None:
    client, reg = client_for(engine, deadline_ms=50)
    start = time.monotonic()
    with pytest.raises(GatewayError) as info:
        await client.decide(make_input("AU", "government"), CANDIDATES)
    assert info.value.cause is Cause.POLICY_UNAVAILABLE
    assert info.value.status == 503
    assert "crashed" not in info.value.message  # engine detail never reaches the caller
    assert failures(reg, cause) == 1.0
    assert time.monotonic() - start < 0.05 + 0.5  # the deadline plus a margin (shared machine)


async def test_in_flight_evaluations_are_bounded() -> None:
    engine = FakeEngine(delay=0.3)
    client, reg = client_for(engine, deadline_ms=100, max_in_flight=1, cache_size=0)
    results = await asyncio.gather(
        *(client.decide(make_input("AU", "private", user=f"u{i}"), CANDIDATES) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, GatewayError) for r in results)
    assert engine.calls == 1  # the others never got a slot before the deadline
    assert failures(reg, "timeout") == 3.0


async def test_cache_hit_skips_the_engine_within_the_same_utc_day() -> None:
    engine = FakeEngine()
    client, _ = client_for(engine)
    first = await client.decide(make_input("AU", "private", at="2026-11-29T01:00:00"), CANDIDATES)
    second = await client.decide(make_input("AU", "private", at="2026-11-29T23:00:00"), CANDIDATES)
    assert second is first and engine.calls == 1
    await client.decide(make_input("AU", "private", at="2026-11-30T00:00:00"), CANDIDATES)
    assert engine.calls == 2  # a new day may cross an effective date
    await client.decide(make_input("AU", "government", at="2026-11-30T00:00:00"), CANDIDATES)
    assert engine.calls == 3  # another principal attribute, another key
    assert (client.hits, client.misses) == (1, 3)


def test_cache_key_ignores_time_of_day_only() -> None:
    a = make_input("KR", "private", at="2025-04-27T00:00:01")
    b = make_input("KR", "private", at="2025-04-27T23:59:59")
    c = make_input("KR", "private", at="2025-04-28T00:00:00")
    assert cache_key(a, "r") == cache_key(b, "r")
    assert cache_key(a, "r") != cache_key(c, "r")
    assert cache_key(a, "r") != cache_key(a, "r2")


async def test_cache_disabled_evaluates_every_time() -> None:
    engine = FakeEngine()
    client, _ = client_for(engine, cache_size=0)
    for _ in range(3):
        await client.decide(make_input("AU", "private"), CANDIDATES)
    assert engine.calls == 3


async def test_cache_is_bounded_lru() -> None:
    engine = FakeEngine()
    client, _ = client_for(engine, cache_size=2)
    for user in ("a", "b", "c", "a"):
        await client.decide(make_input("AU", "private", user=user), CANDIDATES)
    assert engine.calls == 4  # "a" was evicted by "c"


async def test_failures_are_not_cached() -> None:
    engine = FakeEngine(error=RuntimeError("x"))
    client, _ = client_for(engine)
    for _ in range(2):
        with pytest.raises(GatewayError):
            await client.decide(make_input("AU", "private"), CANDIDATES)
    assert engine.calls == 2


async def test_reload_swaps_atomically_and_drops_the_cache() -> None:
    engines = [FakeEngine(revision="rev-1"), FakeEngine(revision="rev-2")]
    nxt = iter(engines[1:])

    async def factory() -> FakeEngine:
        return next(nxt)

    reg = CollectorRegistry()
    client = PolicyClient(engines[0], PolicySettings(), factory=factory, metrics_registry=reg)
    d1 = await client.decide(make_input("AU", "private"), CANDIDATES)
    assert await client.reload() == "rev-2"
    assert client.revision == "rev-2" and engines[0].closed
    d2 = await client.decide(make_input("AU", "private"), CANDIDATES)
    assert (d1.bundle_revision, d2.bundle_revision) == ("rev-1", "rev-2")
    assert reg.get_sample_value("portcullis_policy_reloads_total", {"result": "ok"}) == 1.0


async def test_failed_reload_keeps_the_running_revision() -> None:
    async def factory() -> FakeEngine:
        raise ValueError("broken bundle")

    engine = FakeEngine()
    reg = CollectorRegistry()
    client = PolicyClient(engine, PolicySettings(), factory=factory, metrics_registry=reg)
    with pytest.raises(ValueError):
        await client.reload()
    assert client.revision == "rev-1" and not engine.closed
    assert reg.get_sample_value("portcullis_policy_reloads_total", {"result": "failed"}) == 1.0


async def test_ready_reflects_the_engine() -> None:
    engine = FakeEngine()
    client, _ = client_for(engine)
    assert await client.ready()
    await client.close()
    assert not await client.ready()


async def test_default_client_decides_with_the_shipped_pack() -> None:
    client = await build_policy_client(PolicySettings(), CollectorRegistry())
    try:
        d = await client.decide(make_input("AU", "government"), CANDIDATES)
        assert d.permitted_backends == ("azure-eu", "openai")
        assert {r.rule for r in d.denials} == {
            "au.au-homeaffairs-2025-02-04.hosted",
            "au.au-homeaffairs-2025-02-04.weights_cautious",
        }
        assert d.bundle_revision == client.revision
        # another user, key and time of day: the shipped pack reads none of them -> a cache hit
        other = make_input("AU", "government", user="someone-else", at="2026-11-29T23:00:00")
        assert await client.decide(other, CANDIDATES) is d and client.hits == 1
        permit = await build_policy_client(
            PolicySettings(self_hosted_stance="permit"), CollectorRegistry()
        )
        inp = make_input("AU", "government", stance="permit")
        d2 = await permit.decide(inp, CANDIDATES)
        assert "deepseek-self" in d2.permitted_backends
        await permit.close()
    finally:
        await client.close()


async def test_a_waiting_call_with_less_time_left_than_the_engine_takes_is_not_sent() -> None:
    engine = FakeEngine(delay=0.15)
    client, reg = client_for(engine, deadline_ms=250, max_in_flight=1, cache_size=0)
    await client.decide(make_input("AU", "private", user="warm"), CANDIDATES)  # typical: 150 ms
    results = await asyncio.gather(
        *(client.decide(make_input("AU", "private", user=f"u{i}"), CANDIDATES) for i in range(3)),
        return_exceptions=True,
    )
    # the first is answered at 150 ms; the others then have ~100 ms left, less than the engine's
    # 150 ms (and than half the deadline): refused at once instead of sent to time out
    assert not isinstance(results[0], BaseException)
    assert all(isinstance(r, GatewayError) for r in results[1:])
    assert engine.calls == 2
    assert failures(reg, "shed") == 2.0 and failures(reg, "timeout") == 0.0


async def test_a_call_that_did_not_wait_is_sent_however_slow_the_engine_was() -> None:
    engine = FakeEngine(delay=1.0)
    client, reg = client_for(engine, deadline_ms=100, max_in_flight=1, cache_size=0)
    for i in range(3):  # each given up at the deadline: the engine's typical time is now 100 ms
        with pytest.raises(GatewayError):
            await client.decide(make_input("AU", "private", user=f"u{i}"), CANDIDATES)
    assert engine.calls == 3 and failures(reg, "timeout") == 3.0
    engine.delay = 0.0  # the engine recovers: the next call, which had its whole deadline, sees it
    decision = await client.decide(make_input("AU", "private", user="later"), CANDIDATES)
    assert decision.allow and engine.calls == 4 and failures(reg, "shed") == 0.0
