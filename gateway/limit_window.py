"""The sliding minute (``limits.window: sliding``): what a key took in the last 60 seconds.

Each reservation is an entry — one request and its token estimate, taken at a moment — and
comes back whole 60 seconds after it was taken, so a key of ``N`` a minute never gets more than
``N`` in any 60 seconds. The token bucket (the default, :mod:`gateway.limiter`) refills
continuously instead: a full bucket's ``N`` at once and then one every ``60 / N`` seconds, up to
``2N - 1`` in the first minute. Reconciling settles an entry's tokens at what the answer used
(or gives its request back), while the entry is still in the window.

:class:`Windows` holds them in this process (the embedded default and a Redis limiter's
fallback share); :mod:`gateway.redis_limiter` does the same in Redis with the server's clock.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

__all__ = ["MINUTE", "Taken", "Windows"]

MINUTE = 60.0
WALK = 64  # entries a refusal looks through for its wait (as the Redis script)
TRIM = 1024  # entries over a minute old dropped per call at most (as the Redis script)


@dataclass(slots=True)
class _Entry:
    at: float
    requests: int  # 1, or 0 once given back
    tokens: int


@dataclass(slots=True)
class _Log:
    entries: deque[tuple[str, _Entry]] = field(default_factory=deque)  # oldest first
    by_id: dict[str, _Entry] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0

    def expire(self, now: float) -> None:
        """Drop what is over a minute old, :data:`TRIM` entries at most (as the Redis script:
        a minute of very many requests leaves over several calls, the sums meanwhile counting
        the rest — stricter, never looser)."""
        cut = now - MINUTE
        for _ in range(TRIM):
            if not self.entries or self.entries[0][1].at > cut:
                break
            entry_id, e = self.entries.popleft()
            del self.by_id[entry_id]
            self.requests -= e.requests
            self.tokens -= e.tokens

    def wait_for_tokens(self, need: int, now: float) -> float:
        """Seconds until ``need`` tokens have come back (the oldest entries first; of the
        oldest :data:`WALK` at most, so a refusal's cost is bounded however long the log — the
        wait is then a lower bound, and a retry is told again)."""
        at = now
        for _, e in itertools.islice(self.entries, WALK):
            need -= e.tokens
            at = e.at
            if need <= 0:
                break
        return at + MINUTE - now


@dataclass(frozen=True, slots=True)
class Taken:
    """A reservation's verdict: ``refused`` None, ``"requests"`` or ``"tokens"`` (then
    ``wait_s``, until enough comes back); what is left in the window once it was taken."""

    refused: str | None
    wait_s: float
    requests_left: float
    tokens_left: float


class Windows:
    """Each key's last minute, in this process."""

    SWEEP_EVERY = 4096  # reservations between sweeps of the keys gone quiet

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._until_sweep = self.SWEEP_EVERY

    def _sweep(self, now: float) -> None:
        """Drop the logs of keys with nothing left in their minute (memory bounded by the keys
        active in the last minute, not by every key ever seen)."""
        quiet = []
        for key, log in self._logs.items():
            log.expire(now)
            if not log.entries:
                quiet.append(key)
        for key in quiet:
            del self._logs[key]

    def take(self, key: str, entry_id: str, now: float, rpm: int, tpm: int, tokens: int) -> Taken:
        self._until_sweep -= 1
        if not self._until_sweep:
            self._until_sweep = self.SWEEP_EVERY
            self._sweep(now)
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        log.expire(now)
        if rpm and log.requests + 1 > rpm:
            held = (e.at for _, e in itertools.islice(log.entries, WALK) if e.requests)
            oldest = next(held, now)
            return Taken("requests", oldest + MINUTE - now, 0.0, float(tpm - log.tokens))
        if tpm and log.tokens + tokens > tpm:
            wait = log.wait_for_tokens(log.tokens + tokens - tpm, now)
            return Taken("tokens", wait, float(rpm - log.requests), 0.0)
        e = _Entry(now, 1, tokens)
        log.entries.append((entry_id, e))
        log.by_id[entry_id] = e
        log.requests += 1
        log.tokens += tokens
        return Taken(None, 0.0, float(rpm - log.requests), float(tpm - log.tokens))

    def settle(self, key: str, entry_id: str, refund: int, request_back: bool) -> None:
        """The entry's tokens less ``refund`` (negative: a charge beyond the estimate), its
        request given back with ``request_back``; nothing once it has left the window."""
        log = self._logs.get(key)
        e = log.by_id.get(entry_id) if log is not None else None
        if log is None or e is None:
            return
        tokens = max(0, e.tokens - refund)
        log.tokens += tokens - e.tokens
        e.tokens = tokens
        if request_back and e.requests:
            e.requests = 0
            log.requests -= 1

    def held(self, key: str, now: float) -> tuple[int, int]:
        """Requests and tokens taken in the last minute (the log trimmed to it)."""
        log = self._logs.get(key)
        if log is None:
            return 0, 0
        log.expire(now)
        if not log.entries:
            del self._logs[key]
            return 0, 0
        return log.requests, log.tokens
