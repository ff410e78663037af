"""Rate and token budgets per key, and requests in flight: reserve before the call, reconcile
after.

Two token buckets per key, one for requests and one for model tokens, each refilling
continuously over a minute. ``reserve`` takes one request and the token estimate at once, or
refuses with 429 and ``Retry-After``; ``reconcile`` returns what the answer did not use (or
charges what it used beyond the estimate). The configured rates are every key's default; a key
may carry its own (``keys create --rpm/--tpm``; ``0`` = no limit), passed to ``reserve``.

A key may also be held to a number of requests in flight at once (``limits.max_parallel``, or
the key's own): ``reserve`` takes a slot, refused with 429 ``parallel_limit_exceeded`` when all
are taken, and ``reconcile`` gives it back when the request is over (answered, failed, or the
client gone). A slot carries a lease (the longest a request may run, plus a minute): a replica
that dies holding slots frees them when the lease runs out.

:class:`gateway.redis_limiter.RedisLimiter` does all of it in atomic Lua scripts with the
server's clock, so limits hold across replicas; :class:`MemoryLimiter` is the embedded default
for one process.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import Cause, GatewayError
from gateway.limit_window import MINUTE, Windows

if TYPE_CHECKING:
    from gateway.config.core import LimitSettings

__all__ = [
    "Defaults",
    "Limiter",
    "MemoryLimiter",
    "Reservation",
    "Standing",
    "build_limiter",
    "in_flight_refused",
    "new_slot",
    "refused",
]

log = logging.getLogger("portcullis")


@dataclass(frozen=True, slots=True)
class Reservation:
    key: str
    tokens: int
    # The rates it was reserved under (the key's own or the defaults), reconciled under the same.
    requests_per_minute: int
    tokens_per_minute: int
    # What the buckets held once this reservation was taken (the answer's x-ratelimit-* headers)
    remaining_requests: float = 0.0
    remaining_tokens: float = 0.0
    # Taken from this replica's fallback buckets while Redis did not answer (reconciled there)
    local: bool = False
    # The requests-in-flight limit it was taken under (0: none) and its slot, given back by
    # ``reconcile``
    parallel: int = 0
    slot: str | None = None
    # Reservations taken with this one for the same request (its team's and tenant's:
    # gateway.admission), reconciled with it
    linked: tuple[Reservation, ...] = ()
    # Its entry in the key's sliding minute (limits.window: sliding; gateway.limit_window),
    # settled by ``reconcile``; None under the token bucket
    entry: str | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's ``x-ratelimit-*`` headers for the limits that apply (none for a rate of 0):
        the limit, what remains, and how long until the bucket is full again — of the tightest
        bucket the request drew on, its key's or a shared one (``linked``), so a client that
        paces itself on them is not told of room its team's limit does not leave. In a sliding
        minute it is full again a minute after this, its newest entry, was taken."""
        out: list[tuple[bytes, bytes]] = []
        sliding = self.entry is not None
        requests = (self.requests_per_minute, self.remaining_requests, sliding)
        tokens = (self.tokens_per_minute, self.remaining_tokens, sliding)
        if self.linked:
            held = [(r, r.entry is not None) for r in (self, *self.linked)]
            requests = _tightest((r.requests_per_minute, r.remaining_requests, w) for r, w in held)
            tokens = _tightest((r.tokens_per_minute, r.remaining_tokens, w) for r, w in held)
        for name, (rate, left, windowed) in ((b"requests", requests), (b"tokens", tokens)):
            if rate:
                left = max(0.0, left)
                out.append((b"x-ratelimit-limit-" + name, str(rate).encode()))
                out.append((b"x-ratelimit-remaining-" + name, str(int(left)).encode()))
                if windowed:
                    reset = MINUTE if left < rate else 0.0
                else:
                    reset = (rate - left) * 60.0 / rate
                out.append((b"x-ratelimit-reset-" + name, f"{reset:.3g}s".encode()))
        return out


def _tightest(buckets: Iterable[tuple[int, float, bool]]) -> tuple[int, float, bool]:
    """Of (rate, what is left, counted in a sliding minute) triples, the one with the least
    left among those with a rate (``(0, 0.0, False)``: none has one)."""
    limited = [b for b in buckets if b[0]]
    return min(limited, key=lambda b: b[1]) if limited else (0, 0.0, False)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a key stands against its limits now (``GET /admin/keys/{id}/usage``): the rates it
    runs under (0: none), what its buckets hold, and its requests in flight. ``shared``: read
    from Redis (every replica's); else this replica's alone."""

    requests_per_minute: int
    tokens_per_minute: int
    max_parallel: int
    requests_left: float
    tokens_left: float
    in_flight: int
    shared: bool

    def to_json(self) -> dict[str, Any]:
        def left(rate: int, value: float) -> int | None:
            return None if not rate else max(0, math.floor(value))

        return {
            "requests_per_minute": self.requests_per_minute,
            "requests_left": left(self.requests_per_minute, self.requests_left),
            "tokens_per_minute": self.tokens_per_minute,
            "tokens_left": left(self.tokens_per_minute, self.tokens_left),
            "max_parallel": self.max_parallel,
            "in_flight": self.in_flight,
            "shared": self.shared,
        }


class Limiter(Protocol):
    async def reserve(
        self,
        key: str,
        tokens: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
        lease_s: float = 900.0,
    ) -> Reservation:
        """Take one request and ``tokens`` from ``key``'s buckets, and a slot of its
        ``max_parallel`` in flight (held at most ``lease_s``), or raise 429; the limits are
        the key's own where given, else the configured defaults."""
        ...

    async def reconcile(
        self, reservation: Reservation, used_tokens: int, refund_request: bool = False
    ) -> None:
        """The request is over: its slot given back, its tokens settled; with
        ``refund_request``, the request it took given back too (it was refused after all)."""
        ...

    async def standing(
        self,
        key: str,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
    ) -> Standing:
        """Where ``key`` stands now (its own limits where given, else the defaults), taking
        and changing nothing; 503 ``limiter_unavailable`` when the shared store cannot say."""
        ...

    async def standings(
        self, asked: Sequence[tuple[str, int | None, int | None, int | None]]
    ) -> list[Standing]:
        """:meth:`standing` for each ``(key, requests_per_minute, tokens_per_minute,
        max_parallel)`` in order, asked of the shared store at once (``GET /admin/limits``)."""
        ...

    def set_defaults(self, limits: LimitSettings) -> None:
        """New configured defaults (a configuration reload of ``limits``): keys without their
        own limits run under them from the next reservation; what a bucket holds is kept.
        (``deadline_ms`` and ``redis_fallback_share`` concern a Redis limiter only.)"""
        ...

    async def ready(self) -> bool: ...

    async def warm(self) -> None:
        """Open what the first requests would otherwise open (start-up; never raises)."""
        ...

    async def close(self) -> None: ...


def refused(what: str, retry_after_s: float, rate: int) -> GatewayError:
    """The 429, with ``Retry-After`` and, as OpenAI sends them, the spent limit's
    ``x-ratelimit-*`` headers."""
    retry = max(1, math.ceil(retry_after_s))
    cause = Cause.RATE_LIMITED if what == "requests" else Cause.BUDGET_EXCEEDED
    return GatewayError(
        cause,
        f"Rate limit reached for {what} per minute on this key; retry after {retry} s.",
        headers={
            "retry-after": str(retry),
            f"x-ratelimit-limit-{what}": str(rate),
            f"x-ratelimit-remaining-{what}": "0",
            f"x-ratelimit-reset-{what}": f"{retry_after_s:.3g}s",
        },
    )


def in_flight_refused(parallel: int) -> GatewayError:
    return GatewayError(
        Cause.PARALLEL_LIMITED,
        f"Too many requests in flight on this key (at most {parallel} at once); retry when "
        "one has finished.",
        headers={"retry-after": "1"},
    )


class Defaults:
    """The configured limits a limiter holds for keys without their own."""

    _rpm: int
    _tpm: int
    _parallel: int

    def rates(self, rpm: int | None, tpm: int | None, parallel: int | None) -> tuple[int, int, int]:
        """The limits a reservation runs under (requests and tokens per minute, requests in
        flight): the key's own where it has them, else the defaults."""
        return (
            self._rpm if rpm is None else rpm,
            self._tpm if tpm is None else tpm,
            self._parallel if parallel is None else parallel,
        )


def _refilled(b: list[float], now: float, rpm: int, tpm: int) -> tuple[float, float]:
    """What a bucket ``[requests, tokens, last]`` holds at ``now``: each refilled at its rate
    per minute since ``last``, never past the rate."""
    elapsed = now - b[2]
    return min(rpm, b[0] + elapsed * rpm / 60.0), min(tpm, b[1] + elapsed * tpm / 60.0)


def new_slot() -> str:
    return secrets.token_hex(8)


class MemoryLimiter(Defaults):
    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        max_parallel: int = 0,
        window: bool = False,
    ) -> None:
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._parallel = max_parallel
        self._buckets: dict[str, list[float]] = {}  # key -> [requests, tokens, last]
        self._in_flight: dict[str, set[str]] = {}  # key -> its slots taken
        self.window = window  # a sliding minute instead of the token bucket
        self._windows = Windows()

    def set_defaults(self, limits: LimitSettings) -> None:
        self._rpm, self._tpm = limits.requests_per_minute, limits.tokens_per_minute
        self._parallel = limits.max_parallel
        self.window = limits.window == "sliding"

    def _bucket(self, key: str, now: float, rpm: int, tpm: int) -> list[float]:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = [float(rpm), float(tpm), now]
        b[0], b[1] = _refilled(b, now, rpm, tpm)
        b[2] = now
        return b

    async def reserve(
        self,
        key: str,
        tokens: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
        lease_s: float = 0.0,
    ) -> Reservation:
        rpm, tpm, parallel = self.rates(requests_per_minute, tokens_per_minute, max_parallel)
        taken = self._in_flight.get(key)
        if parallel and taken is not None and len(taken) >= parallel:
            raise in_flight_refused(parallel)
        tokens = min(tokens, tpm) if tpm else 0
        entry = None
        if self.window and (rpm or tpm):
            entry = new_slot()
            t = self._windows.take(key, entry, time.monotonic(), rpm, tpm, tokens)
            if t.refused is not None:
                raise refused(t.refused, t.wait_s, rpm if t.refused == "requests" else tpm)
            left = (t.requests_left, t.tokens_left)
        else:
            b = self._bucket(key, time.monotonic(), rpm, tpm)
            if rpm and b[0] < 1:
                raise refused("requests", (1 - b[0]) * 60.0 / rpm, rpm)
            if tpm and b[1] < tokens:
                raise refused("tokens", (tokens - b[1]) * 60.0 / tpm, tpm)
            b[0] -= 1 if rpm else 0
            b[1] -= tokens
            left = (b[0], b[1])
        slot = None
        if parallel:  # one process: a slot lives until it is given back (no lease needed)
            slot = new_slot()
            self._in_flight.setdefault(key, set()).add(slot)
        return Reservation(key, tokens, rpm, tpm, *left, parallel=parallel, slot=slot, entry=entry)

    async def reconcile(
        self, reservation: Reservation, used_tokens: int, refund_request: bool = False
    ) -> None:
        r = reservation
        if r.slot is not None:
            taken = self._in_flight.get(r.key)
            if taken is not None:
                taken.discard(r.slot)
                if not taken:
                    del self._in_flight[r.key]
        if r.entry is not None:
            self._windows.settle(r.key, r.entry, r.tokens - used_tokens, refund_request)
            return
        refund_request = refund_request and bool(r.requests_per_minute)
        if not r.tokens_per_minute and not refund_request:
            return
        b = self._bucket(r.key, time.monotonic(), r.requests_per_minute, r.tokens_per_minute)
        b[1] = min(r.tokens_per_minute, b[1] + r.tokens - used_tokens)
        if refund_request:
            b[0] = min(r.requests_per_minute, b[0] + 1)

    async def standing(
        self,
        key: str,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_parallel: int | None = None,
    ) -> Standing:
        rpm, tpm, parallel = self.rates(requests_per_minute, tokens_per_minute, max_parallel)
        if self.window:  # what the last minute took (entries older than that are dropped)
            requests, tokens = self._windows.held(key, time.monotonic())
            left = (float(rpm - requests), float(tpm - tokens))
        elif (b := self._buckets.get(key)) is not None:  # refilled to now; nothing written
            left = _refilled(b, time.monotonic(), rpm, tpm)
        else:
            left = (float(rpm), float(tpm))
        taken = len(self._in_flight.get(key, ()))
        return Standing(rpm, tpm, parallel, left[0], left[1], taken, shared=False)

    async def standings(
        self, asked: Sequence[tuple[str, int | None, int | None, int | None]]
    ) -> list[Standing]:
        return [await self.standing(*one) for one in asked]

    async def ready(self) -> bool:
        return True

    async def warm(self) -> None:
        return None

    async def close(self) -> None:
        return None


def build_limiter(redis_url: str | None, limits: LimitSettings) -> Limiter:
    """The limiter ``limits`` configure: shared through Redis at ``redis_url``, else in memory."""
    if redis_url:
        from gateway.redis_limiter import RedisLimiter  # it builds on this module

        return RedisLimiter(
            redis_url,
            limits.requests_per_minute,
            limits.tokens_per_minute,
            limits.deadline_ms / 1000,
            limits.redis_fallback_share,
            limits.max_parallel,
            window=limits.window == "sliding",
        )
    return MemoryLimiter(
        limits.requests_per_minute,
        limits.tokens_per_minute,
        limits.max_parallel,
        window=limits.window == "sliding",
    )
