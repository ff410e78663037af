"""The limiter in Redis, shared by every replica (:mod:`gateway.limiter` has the contract and
the in-memory one): each key's rate and token buckets and its slots in flight, taken and given
back in atomic Lua scripts on Redis's own clock. While Redis does not answer within the
deadline: 503 ``limiter_unavailable``, or with ``limits.redis_fallback_share`` this replica's own
buckets holding that share of each limit, Redis tried again once a second."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from gateway.errors import Cause, GatewayError
from gateway.limiter import (
    Defaults,
    MemoryLimiter,
    Reservation,
    Standing,
    in_flight_refused,
    new_slot,
    refused,
)
from gateway.limiter_scripts import (
    RECONCILE,
    RELEASE,
    RESERVE,
    STANDING,
    WINDOW_RESERVE,
    WINDOW_SETTLE,
    WINDOW_STANDING,
)

if TYPE_CHECKING:
    from gateway.config.core import LimitSettings

__all__ = ["RedisLimiter"]

log = logging.getLogger("portcullis")

_RETRY_S = 1.0  # while Redis is down, how often a reservation tries it again (the rest go local)


def _bucket_keys(key: str) -> list[str]:
    """The bucket scripts' KEYS: the key's bucket hash and its slots in flight."""
    return [f"portcullis:limit:{key}", f"portcullis:inflight:{key}"]


def _window_keys(key: str) -> list[str]:
    """The window scripts' KEYS (gateway.limiter_scripts): the key's sliding minute, its slots
    in flight, and the minute's hash (the sums, and each entry's requests and tokens)."""
    return [f"portcullis:window:{key}", f"portcullis:inflight:{key}", _window_sums(key)]


def _window_sums(key: str) -> str:
    return f"portcullis:windowed:{key}"


class RedisLimiter(Defaults):
    """Buckets in Redis, shared by every replica. While Redis does not answer: 503, or with
    ``fallback_share`` each replica's own in-memory buckets holding that share of each limit
    (never unlimited), Redis tried again at most once a second so the others do not wait for
    its deadline, and back on Redis at its first answer."""

    def __init__(
        self,
        url: str,
        requests_per_minute: int,
        tokens_per_minute: int,
        deadline_s: float = 0.1,
        fallback_share: float | None = None,
        max_parallel: int = 0,
        window: bool = False,
    ) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.from_url(url, socket_connect_timeout=deadline_s)
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._deadline = deadline_s
        self._reserve = self._redis.register_script(RESERVE)
        self._reconcile = self._redis.register_script(RECONCILE)
        self._release = self._redis.register_script(RELEASE)
        self._standing = self._redis.register_script(STANDING)
        self._window_reserve = self._redis.register_script(WINDOW_RESERVE)
        self._window_settle = self._redis.register_script(WINDOW_SETTLE)
        self._window_standing = self._redis.register_script(WINDOW_STANDING)
        self._parallel = max_parallel
        self._share = fallback_share
        self.window = window  # a sliding minute instead of the token bucket
        self._local = MemoryLimiter(0, 0, window=window) if fallback_share else None
        self._retry_at = 0.0  # monotonic; before it, reservations go local without asking Redis
        self.outage = False

    def _fallback_rate(self, rate: int) -> int:
        assert self._share is not None
        return max(1, math.floor(rate * self._share)) if rate else 0

    async def _reserve_local(
        self, key: str, tokens: int, rpm: int, tpm: int, parallel: int
    ) -> Reservation:
        assert self._local is not None
        if not self.outage:
            self.outage = True
            log.warning(
                "redis does not answer: limits now held per replica at %.0f%% of each key's "
                "(limits.redis_fallback_share) until it does",
                100 * (self._share or 0),
            )
        r = await self._local.reserve(
            key,
            tokens,
            self._fallback_rate(rpm),
            self._fallback_rate(tpm),
            self._fallback_rate(parallel),
        )
        return dataclasses.replace(r, local=True)

    def set_defaults(self, limits: LimitSettings) -> None:
        self._rpm, self._tpm = limits.requests_per_minute, limits.tokens_per_minute
        self._parallel = limits.max_parallel
        self._deadline = limits.deadline_ms / 1000
        self._share = limits.redis_fallback_share
        self.window = limits.window == "sliding"
        if self._share is None:
            self._local = None
        elif self._local is None:
            self._local = MemoryLimiter(0, 0, window=self.window)
        else:
            self._local.window = self.window
        # new connections of the pool too (open ones keep theirs until they are replaced)
        self._redis.connection_pool.connection_kwargs["socket_connect_timeout"] = self._deadline

    async def reserve(
        self,
        key: str,
        tokens: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
        lease_s: float = 900.0,
    ) -> Reservation:
        rpm, tpm, parallel = self.rates(requests_per_minute, tokens_per_minute, max_parallel)
        tokens = min(tokens, tpm) if tpm else 0
        if self._local is not None and time.monotonic() < self._retry_at:
            return await self._reserve_local(key, tokens, rpm, tpm, parallel)
        slot = new_slot() if parallel else ""
        entry = new_slot() if self.window and (rpm or tpm) else None
        try:
            async with asyncio.timeout(self._deadline):
                if entry is None:
                    verdict, wait, *left = await self._reserve(
                        keys=_bucket_keys(key),
                        args=[rpm, tpm, tokens, parallel, slot, lease_s],
                    )
                else:
                    verdict, wait, *left = await self._window_reserve(
                        keys=_window_keys(key),
                        args=[rpm, tpm, tokens, parallel, slot, lease_s, entry],
                    )
        except (TimeoutError, OSError, RedisError):
            if self._local is not None:
                self._retry_at = time.monotonic() + _RETRY_S
                return await self._reserve_local(key, tokens, rpm, tpm, parallel)
            raise GatewayError(
                Cause.LIMITER_UNAVAILABLE, "The rate limiter is unavailable; nothing was sent."
            ) from None
        if self.outage:
            self.outage = False
            log.warning("redis answers again: limits are shared across replicas once more")
        if int(verdict) == 0:
            raise refused("requests", float(wait), rpm)
        if int(verdict) == 1:
            raise refused("tokens", float(wait), tpm)
        if int(verdict) == 3:
            raise in_flight_refused(parallel)
        requests_left, tokens_left = (float(v) for v in left) if len(left) == 2 else (0.0, 0.0)
        return Reservation(
            key,
            tokens,
            rpm,
            tpm,
            requests_left,
            tokens_left,
            parallel=parallel,
            slot=slot or None,
            entry=entry,
        )

    async def reconcile(
        self, reservation: Reservation, used_tokens: int, refund_request: bool = False
    ) -> None:
        if reservation.local:
            if self._local is not None:
                await self._local.reconcile(reservation, used_tokens, refund_request)
            return
        if reservation.slot is not None:
            try:
                async with asyncio.timeout(self._deadline):
                    await self._release(
                        keys=[f"portcullis:inflight:{reservation.key}"], args=[reservation.slot]
                    )
            except (TimeoutError, OSError, RedisError):
                # the slot stays taken until its lease ends: the limit stricter meanwhile
                log.warning(
                    "a request's in-flight slot was not given back (redis); its lease frees it"
                )
        tpm, rpm = reservation.tokens_per_minute, reservation.requests_per_minute
        back = 1 if refund_request and rpm else 0
        if not tpm and not back:
            return
        try:
            async with asyncio.timeout(self._deadline):
                if reservation.entry is not None:
                    await self._window_settle(
                        keys=[_window_sums(reservation.key)],
                        args=[reservation.entry, reservation.tokens - used_tokens, back],
                    )
                else:
                    await self._reconcile(
                        keys=[f"portcullis:limit:{reservation.key}"],
                        args=[tpm, reservation.tokens - used_tokens, rpm, back],
                    )
        except (TimeoutError, OSError, RedisError):
            # A lost refund makes the limit stricter; a lost extra charge (usage beyond the
            # estimate) looser by that excess only. Neither is worth failing the answer for.
            pass

    async def standing(
        self,
        key: str,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
    ) -> Standing:
        (one,) = await self.standings([(key, requests_per_minute, tokens_per_minute, max_parallel)])
        return one

    async def standings(
        self, asked: Sequence[tuple[str, int | None, int | None, int | None]]
    ) -> list[Standing]:
        """One round trip for all (a pipeline of the standing script; a list of 2,000 limits
        took ~400 ms asked one by one), given the deadline of one call for every 500 asked;
        :meth:`standing` is a list of one."""
        if not asked:
            return []
        rates = [self.rates(*one[1:]) for one in asked]
        try:
            async with asyncio.timeout(self._deadline * (1 + len(asked) // 500)):
                async with self._redis.pipeline(transaction=False) as pipe:
                    script, keys = (
                        (self._window_standing, _window_keys)
                        if self.window
                        else (self._standing, _bucket_keys)
                    )
                    for (key, *_), (rpm, tpm, _p) in zip(asked, rates, strict=True):
                        await script(keys=keys(key), args=[rpm, tpm], client=pipe)
                    read = await pipe.execute()
        except (TimeoutError, OSError, RedisError):
            if self._local is None:
                raise GatewayError(
                    Cause.LIMITER_UNAVAILABLE, "The rate limiter is unavailable; it cannot say."
                ) from None
            # this replica's share of each, as it holds the keys meanwhile
            fall = self._fallback_rate
            return await self._local.standings(
                [
                    (key, fall(rpm), fall(tpm), fall(parallel))
                    for (key, *_), (rpm, tpm, parallel) in zip(asked, rates, strict=True)
                ]
            )
        return [
            Standing(rpm, tpm, parallel, float(requests), float(tokens), int(taken), True)
            for (rpm, tpm, parallel), (requests, tokens, taken) in zip(rates, read, strict=True)
        ]

    async def ready(self) -> bool:
        """Redis runs the limiter's scripts (not only answers: a restricted service or a proxy
        may refuse scripting and still answer PING), or the replica holds limits itself meanwhile
        (fallback_share)."""
        try:
            async with asyncio.timeout(self._deadline * 5):
                # the refund script on a bucket that does not exist: reads nothing, writes nothing
                await self._reconcile(keys=["portcullis:limit:\0ready"], args=[0, 0])
                return True
        except (TimeoutError, OSError, RedisError):
            return self._local is not None

    async def warm(self, connections: int = 16) -> None:
        """Open ``connections`` pooled connections to Redis and have it load both scripts, at
        start-up: the first burst of requests otherwise opens them all at once, each a connect
        and a script load inside its own reservation's deadline (a burst of 20 at start was seen
        at 112-117 ms against the 100 ms default, and refused with 503). A Redis that does not
        answer now is not an error here: the requests find out, as they would."""
        try:
            async with asyncio.timeout(max(1.0, self._deadline * 10)):
                await asyncio.gather(*(self.ready() for _ in range(connections)))
                # loaded, not run: nothing written
                await self._redis.script_load(WINDOW_RESERVE if self.window else RESERVE)
        except (TimeoutError, OSError, RedisError):
            log.warning("redis did not answer at start-up: the limiter connects on first use")

    async def close(self) -> None:
        await self._redis.aclose()
