"""The sliding minute (``limits.window: sliding``) through both limiters, in memory and in a real
Redis: a refusal waits for the oldest entry's minute, an answer settles its entry, a read takes
nothing, entries over a minute old leave the sums, and a Redis that does not answer leaves each
replica its share of a sliding minute of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.config.core import LimitSettings
from gateway.errors import Cause, GatewayError
from gateway.limiter import Limiter, MemoryLimiter
from gateway.redis_limiter import RedisLimiter
from tests.support.services import REDIS_URL

pytestmark = pytest.mark.integration

Make = Callable[[int, int], Limiter]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    made: list[Limiter] = []

    def factory(rpm: int, tpm: int) -> Limiter:
        lim: Limiter = (
            MemoryLimiter(rpm, tpm, window=True)
            if request.param == "memory"
            else RedisLimiter(REDIS_URL, rpm, tpm, 1.0, window=True)
        )
        made.append(lim)
        return lim

    yield factory
    for lim in made:
        await lim.close()


async def test_a_refused_request_waits_for_the_oldest_entrys_minute(make: Make) -> None:
    """Three a minute: the fourth is a 429 whose ``Retry-After`` is the minute of the first
    (~60 s; a token bucket's would be 20 s, a third of a minute for one request)."""
    lim = make(3, 0)
    key = secrets.token_hex(4)
    taken = [await lim.reserve(key, 10) for _ in range(3)]
    assert [r.remaining_requests for r in taken] == [2.0, 1.0, 0.0]
    assert all(r.entry is not None for r in taken)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 10)
    assert exc.value.cause is Cause.RATE_LIMITED
    assert 59 <= int(exc.value.headers["retry-after"]) <= 60
    assert dict(taken[-1].headers())[b"x-ratelimit-reset-requests"] == b"60s"  # full again then
    await lim.reserve(secrets.token_hex(4), 10)  # another key is not affected


async def test_an_answer_settles_its_entry_and_a_read_takes_nothing(make: Make) -> None:
    lim = make(5, 1000)
    key = secrets.token_hex(4)
    r = await lim.reserve(key, 800)
    for _ in range(2):
        now = await lim.standing(key)
        assert (now.requests_left, now.tokens_left) == (4.0, 200.0)
    with pytest.raises(GatewayError) as exc:  # 800 of 1,000 held: 300 more do not fit
        await lim.reserve(key, 300)
    assert exc.value.cause is Cause.BUDGET_EXCEEDED
    assert 59 <= int(exc.value.headers["retry-after"]) <= 60
    await lim.reconcile(r, 100)  # the answer used 100 of the 800
    assert (await lim.standing(key)).tokens_left == 900.0
    second = await lim.reserve(key, 300)
    await lim.reconcile(second, 350, refund_request=True)  # 50 more than reserved; refused after
    after = await lim.standing(key)
    assert (after.requests_left, after.tokens_left) == (4.0, 550.0)


async def test_a_reload_moves_keys_between_the_bucket_and_the_window(make: Make) -> None:
    lim = make(2, 0)
    settings = LimitSettings(requests_per_minute=2, tokens_per_minute=0, deadline_ms=1000)
    lim.set_defaults(settings)  # window: bucket (the default)
    key = secrets.token_hex(4)
    held = await lim.reserve(key, 1)
    assert held.entry is None
    lim.set_defaults(settings.model_copy(update={"window": "sliding"}))
    windowed = await lim.reserve(key, 1)
    assert windowed.entry is not None
    await lim.reconcile(held, 1, refund_request=True)  # each settled where it was taken
    await lim.reconcile(windowed, 1)
    assert (await lim.standing(key)).requests_left == 1.0  # the window holds its one


async def test_entries_over_a_minute_old_leave_the_redis_sums() -> None:
    """Redis's log trimmed on the next reservation: three entries aged past the minute (their
    scores moved back 61 s) leave the sums and the hash, and the key has its three again."""
    import redis.asyncio as aioredis

    lim = RedisLimiter(REDIS_URL, 3, 1000, 1.0, window=True)
    probe = aioredis.from_url(REDIS_URL)
    key = secrets.token_hex(4)
    log, sums = f"portcullis:window:{key}", f"portcullis:windowed:{key}"
    try:
        for _ in range(3):
            await lim.reserve(key, 100)
        with pytest.raises(GatewayError):
            await lim.reserve(key, 100)
        seconds, micros = await probe.time()
        aged = {entry: seconds + micros / 1e6 - 61 for entry in await probe.zrange(log, 0, -1)}
        await probe.zadd(log, aged, xx=True)
        assert (await lim.standing(key)).requests_left == 3.0  # read: trimmed, not written
        assert await probe.zcard(log) == 3
        fresh = await lim.reserve(key, 100)
        assert (fresh.remaining_requests, fresh.remaining_tokens) == (2.0, 900.0)
        assert await probe.zcard(log) == 1
        assert await probe.hlen(sums) == 3  # the two sums and the one entry
    finally:
        await lim.close()
        await probe.aclose()


async def test_without_redis_each_replica_holds_its_share_of_a_window_of_its_own() -> None:
    lone = RedisLimiter("redis://127.0.0.1:1/0", 4, 0, 0.2, window=True)
    shared = RedisLimiter("redis://127.0.0.1:1/0", 4, 0, 0.2, fallback_share=0.5, window=True)
    try:
        with pytest.raises(GatewayError) as exc:
            await lone.reserve("k", 1)
        assert exc.value.cause is Cause.LIMITER_UNAVAILABLE
        taken = [await shared.reserve("k", 1) for _ in range(2)]
        assert all(r.local and r.entry is not None for r in taken)
        with pytest.raises(GatewayError) as exc:
            await shared.reserve("k", 1)
        assert exc.value.cause is Cause.RATE_LIMITED
        assert 59 <= int(exc.value.headers["retry-after"]) <= 60
        now = await shared.standing("k")
        assert (now.requests_per_minute, now.requests_left, now.shared) == (2, 0.0, False)
    finally:
        await lone.close()
        await shared.close()


async def test_requests_in_flight_are_held_and_given_back_in_a_window_too(make: Make) -> None:
    lim = make(10, 0)
    key = secrets.token_hex(4)
    held = [await lim.reserve(key, 1, max_parallel=2) for _ in range(2)]
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 1, max_parallel=2)
    assert exc.value.cause is Cause.PARALLEL_LIMITED
    await lim.reconcile(held[0], 1)
    again = await lim.reserve(key, 1, max_parallel=2)
    now = await lim.standing(key, max_parallel=2)
    assert (now.in_flight, now.requests_left) == (2, 7.0)  # three taken; the refusal took none
    await lim.reconcile(again, 1)
    await lim.reconcile(held[1], 1)
    assert (await lim.standing(key, max_parallel=2)).in_flight == 0


async def test_a_request_given_back_does_not_set_the_wait(make: Make) -> None:
    """The wait is for the oldest entry that still holds a request: one given back (refused
    after it was taken) holds none, and the next one's minute is the wait."""
    import asyncio

    lim = make(2, 0)
    key = secrets.token_hex(4)
    first = await lim.reserve(key, 1)
    await asyncio.sleep(1.2)
    await lim.reserve(key, 1)
    await lim.reconcile(first, 1, refund_request=True)
    await lim.reserve(key, 1)
    with pytest.raises(GatewayError) as exc:
        await lim.reserve(key, 1)
    assert float(exc.value.headers["x-ratelimit-reset-requests"].rstrip("s")) > 59.5


async def test_a_very_busy_minute_leaves_redis_over_several_calls() -> None:
    """At most 1,024 entries leave a minute per script call (a refusal's or a reservation's
    time in Redis bounded), the sums counting the rest meanwhile: stricter, never looser."""
    import redis.asyncio as aioredis

    lim = RedisLimiter(REDIS_URL, 10_000, 0, 1.0, window=True)
    probe = aioredis.from_url(REDIS_URL)
    key = secrets.token_hex(4)
    log = f"portcullis:window:{key}"
    try:
        for _ in range(1500):
            await lim.reserve(key, 1)
        seconds, micros = await probe.time()
        aged = {entry: seconds + micros / 1e6 - 61 for entry in await probe.zrange(log, 0, -1)}
        await probe.zadd(log, aged, xx=True)
        assert (await lim.standing(key)).requests_left == 10_000 - (1500 - 1024)  # read only
        await lim.reserve(key, 1)
        assert await probe.zcard(log) == 1500 - 1024 + 1
        second = await lim.reserve(key, 1)
        assert await probe.zcard(log) == 2 and second.remaining_requests == 10_000 - 2
    finally:
        await lim.close()
        await probe.aclose()
