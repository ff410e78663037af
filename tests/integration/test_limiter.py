"""Token buckets: reserve before, reconcile after; in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator

import pytest

from gateway.config.core import LimitSettings
from gateway.errors import Cause, GatewayError
from gateway.limiter import Limiter, MemoryLimiter, Standing
from gateway.redis_limiter import RedisLimiter
from tests.support.services import REDIS_URL, private_redis

pytestmark = pytest.mark.integration


def _limits(
    rpm: int, deadline_ms: int, share: float | None = None, parallel: int = 0
) -> LimitSettings:
    """What a configuration reload hands the limiter (``limits``; no token limit)."""
    return LimitSettings(
        requests_per_minute=rpm, tokens_per_minute=0, deadline_ms=deadline_ms,
        redis_fallback_share=share, max_parallel=parallel,
    )  # fmt: skip


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    made: list[Limiter] = []

    def factory(rpm: int, tpm: int) -> Limiter:
        lim: Limiter = (
            MemoryLimiter(rpm, tpm)
            if request.param == "memory"
            else RedisLimiter(REDIS_URL, rpm, tpm, 1.0)
        )
        made.append(lim)
        return lim

    yield factory
    for lim in made:
        await lim.close()


async def test_requests_per_minute_refuses_with_retry_after(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(3, 0)
    key = secrets.token_hex(4)
    for _ in range(3):
        await lim.reserve(key, 10)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 10)
    assert exc.value.cause is Cause.RATE_LIMITED and int(exc.value.headers["retry-after"]) >= 1
    h = exc.value.headers
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("3", "0")
    assert h["x-ratelimit-reset-requests"].endswith("s")
    await lim.reserve(secrets.token_hex(4), 10)  # another key is not affected


async def test_new_defaults_apply_to_keys_without_their_own(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(100, 0)
    key, own = secrets.token_hex(4), secrets.token_hex(4)
    await lim.reserve(key, 10)
    lim.set_defaults(_limits(1, 500))  # a configuration reload
    await lim.reserve(key, 10)  # the bucket (99 left) is capped at the new rate: one more
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 10)
    assert exc.value.headers["x-ratelimit-limit-requests"] == "1"
    for _ in range(3):
        await lim.reserve(own, 10, requests_per_minute=0)  # its own limit (none) stays
    fresh = await lim.reserve(secrets.token_hex(4), 10)
    assert fresh.requests_per_minute == 1


async def test_token_budget_reconciles_unused_tokens(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(0, 1000)
    key = secrets.token_hex(4)
    r = await lim.reserve(key, 900)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 500)
    assert exc.value.cause is Cause.BUDGET_EXCEEDED
    await lim.reconcile(r, 100)  # the answer used 100 of the 900 reserved
    await lim.reserve(key, 500)


@pytest.mark.parametrize("tpm", [0, 1000])
async def test_a_request_refused_after_it_was_taken_gives_its_request_back(make, tpm) -> None:  # type: ignore[no-untyped-def]
    """``reconcile(..., refund_request=True)`` (a shared limit refused the request after its
    key's buckets were taken from): the request and the tokens go back, never past the rate;
    without it, only the tokens do."""
    lim = make(2, tpm)
    key = secrets.token_hex(4)
    await lim.reserve(key, 100)
    second = await lim.reserve(key, 100)
    await lim.reconcile(second, 0, refund_request=True)
    third = await lim.reserve(key, 100)  # the refunded request is there to take
    with pytest.raises(GatewayError):
        await lim.reserve(key, 100)
    await lim.reconcile(third, 0)  # tokens back, the request spent
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 100)
    assert exc.value.cause is Cause.RATE_LIMITED
    fresh = secrets.token_hex(4)  # given back to a full bucket: still only its rate
    taken = await lim.reserve(fresh, 100)
    await lim.reconcile(taken, 0, refund_request=True)
    await lim.reconcile(taken, 0, refund_request=True)
    standing = await lim.standing(fresh)
    assert 1.9 < standing.requests_left <= 2.0, standing
    if tpm:
        assert standing.tokens_left <= 1000


async def test_a_keys_own_rates_replace_the_defaults(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(100, 0)
    tight, free, other = (secrets.token_hex(4) for _ in range(3))
    for _ in range(2):
        await lim.reserve(tight, 10, 2, None)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(tight, 10, 2, None)
    assert exc.value.cause is Cause.RATE_LIMITED
    strict = make(1, 0)
    for _ in range(5):
        await strict.reserve(free, 10, 0, None)  # 0: no limit for this key
    await strict.reserve(other, 10)
    with pytest.raises(GatewayError):
        await strict.reserve(other, 10)  # the default (1 a minute) for a key without its own


async def test_a_keys_own_token_budget_is_reconciled_under_it(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(0, 100_000)
    key = secrets.token_hex(4)
    r = await lim.reserve(key, 900, None, 1000)
    assert r.tokens_per_minute == 1000
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 500, None, 1000)
    assert exc.value.cause is Cause.BUDGET_EXCEEDED
    await lim.reconcile(r, 100)
    await lim.reserve(key, 500, None, 1000)


async def test_a_reservation_says_what_remains_for_the_rate_limit_headers(make) -> None:  # type: ignore[no-untyped-def]
    lim = make(10, 1000)
    key = secrets.token_hex(4)
    await lim.reserve(key, 100)
    r = await lim.reserve(key, 300)
    assert int(r.remaining_requests) == 8 and 599 <= r.remaining_tokens <= 601
    h = dict(r.headers())
    assert h[b"x-ratelimit-limit-requests"] == b"10"
    assert h[b"x-ratelimit-remaining-requests"] == b"8"
    assert h[b"x-ratelimit-limit-tokens"] == b"1000"
    assert h[b"x-ratelimit-remaining-tokens"] in (b"599", b"600")
    assert float(h[b"x-ratelimit-reset-requests"][:-1]) == pytest.approx(12, abs=0.5)
    off = await make(0, 0).reserve(key, 5)
    assert off.headers() == []  # no limit, no headers


async def test_two_replicas_share_one_redis_budget() -> None:
    a, b = RedisLimiter(REDIS_URL, 4, 0, 1.0), RedisLimiter(REDIS_URL, 4, 0, 1.0)
    key = secrets.token_hex(4)
    try:
        for lim in (a, b, a, b):
            await lim.reserve(key, 1)
        with pytest.raises(GatewayError):
            await a.reserve(key, 1)
    finally:
        await a.close()
        await b.close()


async def test_redis_down_fails_closed() -> None:
    lim = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve("k", 1)
    assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
    assert not await lim.ready()
    await lim.close()


@pytest.fixture
def own_redis() -> Iterator[tuple[str, Callable[[bool], None]]]:
    with private_redis() as made:
        yield made


async def _until_redis_answers(lim: RedisLimiter) -> None:
    import asyncio

    for _ in range(50):
        try:
            if not (await lim.reserve("warm", 1)).local:
                return
        except GatewayError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("redis did not start")


async def test_a_frozen_redis_fails_closed_within_the_deadline_and_recovers(
    own_redis: tuple[str, Callable[[bool], None]],
) -> None:
    """Reliability F-4 (b): Redis stopped with SIGSTOP (it accepts connections, answers
    nothing). A reservation waits at most the deadline, then 503 limiter_unavailable — never
    unlimited; once Redis runs again, reservations succeed without a restart."""
    import asyncio
    import time

    url, freeze = own_redis
    lim = RedisLimiter(url, 100, 0, 0.1)
    try:
        await _until_redis_answers(lim)
        freeze(True)
        t0 = time.monotonic()
        with pytest.raises(GatewayError) as exc:
            await lim.reserve("k", 1)
        assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
        assert time.monotonic() - t0 < 0.5  # the 0.1 s deadline, not a hang
        freeze(False)
        deadline = time.monotonic() + 5
        while True:
            try:
                await lim.reserve("k", 1)
                break
            except GatewayError:
                assert time.monotonic() < deadline, "not back on Redis within 5 s"
                await asyncio.sleep(0.1)
    finally:
        await lim.close()


async def test_with_a_fallback_share_a_dead_redis_leaves_each_replica_its_share() -> None:
    """Reliability F-4 (a), the bounded fallback: Redis unreachable and limits.redis_fallback_share
    0.5: a key of 10 a minute gets 5 here (never unlimited, never the whole limit on every
    replica), a key without limits stays without, refunds go to the local buckets, and the
    replica stays ready."""
    lim = RedisLimiter("redis://127.0.0.1:1/0", 10, 1000, 0.2, fallback_share=0.5)
    try:
        taken = [await lim.reserve("k", 10) for _ in range(5)]
        assert all(r.local for r in taken) and taken[0].requests_per_minute == 5
        with pytest.raises(GatewayError) as exc:
            await lim.reserve("k", 10)
        assert exc.value.cause is Cause.RATE_LIMITED
        assert (await lim.reserve("free", 1, requests_per_minute=0, tokens_per_minute=0)).local
        assert taken[0].tokens_per_minute == 500
        await lim.reconcile(taken[0], 0)  # a refund to the local token bucket, no error
        assert await lim.ready()
        assert lim.outage
    finally:
        await lim.close()


async def test_with_a_fallback_a_frozen_redis_costs_one_deadline_then_it_is_back(
    own_redis: tuple[str, Callable[[bool], None]],
) -> None:
    """F-4 (b) with the fallback: Redis SIGSTOPped; the first reservation waits the deadline,
    the next ones go local at once (Redis is asked again once a second), and when Redis runs
    again reservations are shared through it again, without a restart."""
    import asyncio
    import time

    url, freeze = own_redis
    lim = RedisLimiter(url, 100, 0, 0.1, fallback_share=0.5)
    try:
        await _until_redis_answers(lim)
        freeze(True)
        t0 = time.monotonic()
        first = await lim.reserve("k", 1)
        assert first.local and time.monotonic() - t0 < 0.5
        t1 = time.monotonic()
        rest = [await lim.reserve("k", 1) for _ in range(20)]
        assert all(r.local for r in rest) and time.monotonic() - t1 < 0.2  # no deadline each
        freeze(False)
        deadline = time.monotonic() + 5
        while (await lim.reserve("k2", 1)).local:
            assert time.monotonic() < deadline, "not back on Redis within 5 s"
            await asyncio.sleep(0.2)
        assert not lim.outage
    finally:
        await lim.close()


async def test_a_reload_turns_the_fallback_on_and_off() -> None:
    lim = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2)
    try:
        with pytest.raises(GatewayError):
            await lim.reserve("k", 1)
        lim.set_defaults(_limits(10, 200, share=0.3))  # limits.redis_fallback_share: 0.3
        assert (await lim.reserve("k", 1)).requests_per_minute == 3
        lim.set_defaults(_limits(10, 200))
        with pytest.raises(GatewayError) as exc:
            await lim.reserve("k", 1)
        assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
    finally:
        await lim.close()


@pytest.mark.parametrize("share", [None, 0.5], ids=["no-fallback", "fallback-share"])
async def test_a_redis_that_refuses_scripting_is_never_unlimited_and_not_ready(
    share: float | None,
) -> None:
    """Reliability F-4 (c): a proxy (or a restricted managed Redis) that answers PING but refuses
    EVAL, EVALSHA and SCRIPT. Without a fallback share every reservation is a 503 and the
    limiter is not ready (a PING would have called it ready); with one, each replica holds its
    share and says so. Never unlimited either way."""
    from tests.support.resp_proxy import RespProxy

    port = int(REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])
    with RespProxy(port, refuse=("EVAL", "EVALSHA", "SCRIPT")) as proxy:
        lim = RedisLimiter(proxy.url, 4, 0, 0.5, fallback_share=share)
        try:
            assert await lim._redis.ping()  # it answers
            key = secrets.token_hex(4)
            if share is None:
                for _ in range(3):
                    with pytest.raises(GatewayError) as exc:
                        await lim.reserve(key, 1)
                    assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
                assert not await lim.ready()
            else:
                taken = [(await lim.reserve(key, 1)).local for _ in range(2)]
                assert taken == [True, True]  # 2 of 4 a minute: this replica's share
                with pytest.raises(GatewayError) as exc:
                    await lim.reserve(key, 1)
                assert exc.value.cause is Cause.RATE_LIMITED
                assert await lim.ready()
            assert proxy.refused >= 1 and proxy.passed >= 1
        finally:
            await lim.close()
    # the same Redis without the proxy runs the scripts: ready, and limits held there
    direct = RedisLimiter(REDIS_URL, 4, 0, 0.5)
    try:
        assert await direct.ready()
        assert not (await direct.reserve(secrets.token_hex(4), 1)).local
    finally:
        await direct.close()


async def test_warming_opens_the_pool_and_loads_the_scripts_without_writing(
    own_redis: tuple[str, Callable[[bool], None]],
) -> None:
    """At start-up the Redis limiter opens its connections and has Redis load both scripts, so
    the first burst of requests does not pay for them inside its 100 ms deadline (two replicas
    in one process were refused with 503 on their first burst without it); a Redis that does
    not answer is not an error at start-up."""
    import asyncio
    import hashlib
    import time

    import redis.asyncio as aioredis

    from gateway.limiter_scripts import RECONCILE, RESERVE

    url, freeze = own_redis
    lim = RedisLimiter(url, 100, 0, 0.1)
    probe = aioredis.from_url(url)
    try:
        await _until_redis_answers(lim)
        await probe.script_flush()
        await probe.flushdb()
        await lim.warm()
        pool = lim._redis.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) >= 16
        shas = [lim._reserve.sha, lim._reconcile.sha]
        assert shas == [hashlib.sha1(s.encode()).hexdigest() for s in (RESERVE, RECONCILE)]
        assert await probe.script_exists(*shas) == [True, True]
        assert await probe.dbsize() == 0  # loaded, not run
        # a frozen Redis: warming gives up within its bound and raises nothing
        freeze(True)
        fresh = RedisLimiter(url, 100, 0, 0.1)
        t0 = time.monotonic()
        await fresh.warm()
        assert time.monotonic() - t0 < 1.0 + 0.5
        freeze(False)
        await asyncio.wait_for(fresh.close(), 2)
    finally:
        freeze(False)
        await lim.close()
        await probe.aclose()


async def test_redis_s_answer_is_not_lost_to_a_loop_that_lagged_past_the_deadline() -> None:
    """The event loop busy past the deadline (a CPU-heavy request elsewhere) while Redis
    answered at once: the answer counts — the reservation is Redis's, not a 503 — and each
    took one unit (the deadline's timer fires in the same loop pass as the reply is read, and
    redis-py's call completes: pinned here against a change of either). A Redis that does not answer still fails closed within
    the deadline (test_a_frozen_redis_fails_closed_within_the_deadline_and_recovers)."""
    import asyncio
    import time

    lim = RedisLimiter(REDIS_URL, 6, 0, 0.1)
    key = secrets.token_hex(4)
    try:
        await lim.warm(2)
        for _ in range(3):
            task = asyncio.create_task(lim.reserve(key, 0))
            await asyncio.sleep(0)  # the reservation's script is sent
            time.sleep(0.25)  # the loop blocked, 2.5 deadlines
            r = await task
            assert not r.local
        # three reservations, three units of six a minute (refilling one per 10 s): none lost
        assert (await lim.reserve(key, 0)).remaining_requests == pytest.approx(2, abs=0.2)
    finally:
        await lim.close()


async def test_requests_in_flight_are_held_to_the_key_s_limit_and_given_back(make) -> None:  # type: ignore[no-untyped-def]
    """``max_parallel``: a slot per request until it is reconciled; all taken is a 429
    ``parallel_limit_exceeded`` with Retry-After, a slot given back lets the next one in, and
    other keys and keys without the limit are not affected."""
    lim = make(0, 0)
    key = secrets.token_hex(4)
    held = [await lim.reserve(key, 1, max_parallel=2) for _ in range(2)]
    assert all(r.slot for r in held) and held[0].slot != held[1].slot
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 1, max_parallel=2)
    assert exc.value.cause is Cause.PARALLEL_LIMITED and exc.value.status == 429
    assert exc.value.headers["retry-after"] == "1" and "at most 2 at once" in exc.value.message
    await lim.reserve(secrets.token_hex(4), 1, max_parallel=2)  # another key
    free = [await lim.reserve(key + "x", 1) for _ in range(5)]  # no limit configured: no slot
    assert all(r.slot is None for r in free)
    await lim.reconcile(held[0], 0)
    again = await lim.reserve(key, 1, max_parallel=2)
    with pytest.raises(GatewayError):
        await lim.reserve(key, 1, max_parallel=2)
    for r in (held[1], again):
        await lim.reconcile(r, 0)
    await lim.reserve(key, 1, max_parallel=2)
    lim.set_defaults(_limits(0, 500, parallel=1))  # the configured default, for keys without theirs
    other = secrets.token_hex(4)
    await lim.reserve(other, 1)
    with pytest.raises(GatewayError):
        await lim.reserve(other, 1)
    await lim.reserve(other, 1, max_parallel=0)  # a key's own 0: none


async def test_a_slot_not_given_back_is_freed_when_its_lease_ends() -> None:
    """A replica that died holding slots: across replicas (Redis) the lease frees them."""
    a, b = RedisLimiter(REDIS_URL, 0, 0, 1.0), RedisLimiter(REDIS_URL, 0, 0, 1.0)
    key = secrets.token_hex(4)
    try:
        await a.reserve(key, 1, max_parallel=1, lease_s=0.3)  # a's request, never reconciled
        with pytest.raises(GatewayError) as exc:
            await b.reserve(key, 1, max_parallel=1, lease_s=0.3)
        assert exc.value.cause is Cause.PARALLEL_LIMITED
        await asyncio.sleep(0.4)
        r = await b.reserve(key, 1, max_parallel=1, lease_s=30)
        await b.reconcile(r, 0)
        await b.reserve(key, 1, max_parallel=1)
    finally:
        await a.close()
        await b.close()


async def test_with_a_fallback_a_dead_redis_holds_each_replica_to_its_share_in_flight() -> None:
    lim = RedisLimiter("redis://127.0.0.1:1/0", 0, 0, 0.2, fallback_share=0.5)
    try:
        taken = [await lim.reserve("k", 1, max_parallel=4) for _ in range(2)]
        assert all(r.local and r.parallel == 2 for r in taken)
        with pytest.raises(GatewayError) as exc:
            await lim.reserve("k", 1, max_parallel=4)
        assert exc.value.cause is Cause.PARALLEL_LIMITED
        await lim.reconcile(taken[0], 0)
        await lim.reserve("k", 1, max_parallel=4)
    finally:
        await lim.close()


async def test_where_a_key_stands_is_read_without_taking_anything(make) -> None:  # type: ignore[no-untyped-def]
    """``standing``: the rates a key runs under (its own or the defaults), what its buckets hold
    refilled to now, and its requests in flight — read, never taken: reading it twice, or a key
    never seen, changes nothing."""
    lim = make(60, 1000)
    key = secrets.token_hex(4)
    fresh = await lim.standing(key)
    assert (fresh.requests_per_minute, fresh.tokens_per_minute, fresh.max_parallel) == (60, 1000, 0)
    assert (fresh.requests_left, fresh.tokens_left, fresh.in_flight) == (60, 1000, 0)
    held = [await lim.reserve(key, 100, max_parallel=3) for _ in range(2)]
    for _ in range(2):  # a read takes nothing
        now = await lim.standing(key, max_parallel=3)
        assert now.in_flight == 2 and now.max_parallel == 3
        assert 58 <= now.requests_left < 58.2 and 800 <= now.tokens_left < 802
    assert now.shared is isinstance(lim, RedisLimiter)
    await lim.reconcile(held[0], 40)  # 60 of its 100 tokens come back
    after = await lim.standing(key, max_parallel=3)
    assert after.in_flight == 1 and 860 <= after.tokens_left < 862
    own = await lim.standing(key, requests_per_minute=0, tokens_per_minute=5)  # the key's own
    assert own.to_json()["requests_left"] is None and own.to_json()["tokens_left"] == 5
    assert after.to_json() == {
        "requests_per_minute": 60, "requests_left": 58, "tokens_per_minute": 1000,
        "tokens_left": after.to_json()["tokens_left"], "max_parallel": 3, "in_flight": 1,
        "shared": isinstance(lim, RedisLimiter),
    }  # fmt: skip


async def test_where_many_keys_stand_is_read_at_once_as_each_would_be(make) -> None:  # type: ignore[no-untyped-def]
    """``standings`` (``GET /admin/limits``; Redis: one pipeline) answers for each key, in order,
    what ``standing`` answers for it alone, each with its own rates."""
    lim = make(60, 1000)
    keys = [secrets.token_hex(4) for _ in range(40)]
    for i, key in enumerate(keys):
        for _ in range(i % 4):
            await lim.reserve(key, 10, max_parallel=5)
    asked = [(key, 60 - i % 2, None, 5 if i % 3 else None) for i, key in enumerate(keys)]
    many = await lim.standings(asked)
    alone = [await lim.standing(*one) for one in asked]

    def seen(s: Standing) -> tuple[object, ...]:  # left to the request: it refills meanwhile
        j = s.to_json()
        return (j["requests_per_minute"], j["max_parallel"], s.in_flight, int(s.requests_left))

    assert [seen(s) for s in many] == [seen(s) for s in alone]
    assert [s.in_flight for s in many[:4]] == [0, 1, 2, 3]
    assert many[1].requests_per_minute == 59 and many[3].max_parallel == 0
    assert await lim.standings([]) == []


async def test_where_many_keys_stand_when_redis_does_not_answer() -> None:
    """One deadline for the lot, not one per key: 503 at once without a fallback; with one,
    this replica's share of each."""
    lone = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2)
    shared = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2, fallback_share=0.5)
    asked = [(f"k{i}", None, None, None) for i in range(100)]
    try:
        with pytest.raises(GatewayError) as exc:
            await lone.standings(asked)
        assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
        await shared.reserve("k1", 1)
        now = await shared.standings(asked)
        assert [s.requests_per_minute for s in now] == [5] * 100
        assert not any(s.shared for s in now) and 4 <= now[1].requests_left < 4.1
    finally:
        await lone.close()
        await shared.close()


async def test_where_a_key_stands_when_redis_does_not_answer() -> None:
    """Without a fallback: 503 limiter_unavailable (it cannot say). With one: this replica's
    share, as it holds the key meanwhile, marked not shared."""
    lone = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2)
    shared = RedisLimiter("redis://127.0.0.1:1/0", 10, 0, 0.2, fallback_share=0.5)
    try:
        with pytest.raises(GatewayError) as exc:
            await lone.standing("k")
        assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
        await shared.reserve("k", 1)
        now = await shared.standing("k")
        assert (now.requests_per_minute, now.shared) == (5, False)
        assert 4 <= now.requests_left < 4.1
    finally:
        await lone.close()
        await shared.close()
