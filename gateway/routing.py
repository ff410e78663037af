"""Choosing among the backends the decision permitted: priority, health, retry, fallback.

Only backends in the permitted list are ever tried: aliases, fallbacks, retries and headers
cannot add one. A backend that fails ``circuit_failures`` times in a row is skipped for
``circuit_cooldown_s``; after that one trial call decides whether it closes again.
Retries (with exponential backoff) and fallbacks happen only before any byte reached the caller,
and only on connect errors, 429, 502 and 503.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gateway.config.backends import BackendSpec
from gateway.errors import Cause, GatewayError
from gateway.upstream import REFUSALS, UpstreamFailure

__all__ = ["CircuitBreaker", "Router", "failure_to_error"]

T = TypeVar("T")


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    open_until: float = 0.0


class CircuitBreaker:
    def __init__(self) -> None:
        self._state: dict[str, _Circuit] = {}

    def available(self, backend: BackendSpec, now: float | None = None) -> bool:
        c = self._state.get(backend.id)
        return c is None or c.open_until <= (time.monotonic() if now is None else now)

    def success(self, backend: BackendSpec) -> None:
        self._state.pop(backend.id, None)

    def failure(self, backend: BackendSpec) -> None:
        c = self._state.setdefault(backend.id, _Circuit())
        c.failures += 1
        if c.failures >= backend.circuit_failures:
            c.open_until = time.monotonic() + backend.circuit_cooldown_s
            c.failures = backend.circuit_failures - 1  # half-open: one more failure reopens

    def down(self, backend: BackendSpec, seconds: float) -> None:
        """Open the circuit for ``seconds`` (a health check found it down), whatever the count
        of failed requests; a success (a request's, or a probe's) closes it."""
        c = self._state.setdefault(backend.id, _Circuit())
        c.open_until = max(c.open_until, time.monotonic() + seconds)
        c.failures = max(c.failures, backend.circuit_failures - 1)

    def forget(self, backend_ids: Iterable[str]) -> None:
        """Drop what is known of these backends (changed or removed by a configuration reload:
        a new base URL or credential starts with a closed circuit)."""
        for backend_id in backend_ids:
            self._state.pop(backend_id, None)

    def is_open(self, backend_id: str) -> bool:
        c = self._state.get(backend_id)
        return c is not None and c.open_until > time.monotonic()


def failure_to_error(f: UpstreamFailure) -> GatewayError:
    if f.kind == "timeout":
        return GatewayError(Cause.UPSTREAM_TIMEOUT, "The backend did not answer in time.")
    if f.status == 429:
        headers = (
            {"retry-after": f.retry_after} if f.retry_after and f.retry_after.isdigit() else {}
        )
        return GatewayError(
            Cause.UPSTREAM_RATE_LIMITED,
            "The backend is rate limiting requests; retry later.",
            headers=headers,
        )
    if f.status in REFUSALS:
        said = f"status {f.status}" + (f", code {f.code}" if f.code else "")
        return GatewayError(
            Cause.BAD_REQUEST, f"The backend rejected the request ({said}).", param=f.param
        )
    if f.kind == "connect":
        return GatewayError(Cause.UPSTREAM_ERROR, "The backend could not be reached.")
    if f.kind == "disconnect":
        return GatewayError(
            Cause.UPSTREAM_ERROR,
            "The backend closed the connection before it answered; the request may have reached"
            " it, so it was not repeated.",
        )
    if f.kind == "tls":
        return GatewayError(
            Cause.UPSTREAM_ERROR, "The backend could not be reached securely (TLS handshake)."
        )
    return GatewayError(
        Cause.UPSTREAM_ERROR,
        "The backend failed" + (f" (status {f.status})." if f.status else "."),
    )


_REFUSED = (401, 403)


class Router:
    def __init__(
        self,
        breaker: CircuitBreaker | None = None,
        backoff_s: float = 0.05,
        unusable: frozenset[str] = frozenset(),
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        self._backoff = backoff_s
        # Backends never to send to in this process (their configured credential is missing:
        # a request would carry the prompt to a service that can only refuse it).
        self.unusable = unusable

    def order(self, permitted: Sequence[BackendSpec]) -> list[BackendSpec]:
        """Healthy backends by priority; equal priority shuffled by weight."""
        now = time.monotonic()
        healthy = [
            b for b in permitted if b.id not in self.unusable and self.breaker.available(b, now)
        ]
        groups: dict[int, list[BackendSpec]] = {}
        for b in healthy:
            groups.setdefault(b.priority, []).append(b)
        ordered: list[BackendSpec] = []
        for prio in sorted(groups):
            group = groups[prio]
            if len(group) > 1:
                keys = {b.id: random.random() ** (1.0 / b.weight) for b in group}
                group = sorted(group, key=lambda b: -keys[b.id])
            ordered.extend(group)
        return ordered

    async def run(
        self,
        permitted: Sequence[BackendSpec],
        attempt: Callable[[BackendSpec], Awaitable[T]],
        on_attempt: Callable[[BackendSpec, UpstreamFailure | None], None] | None = None,
    ) -> tuple[BackendSpec, T]:
        """Call ``attempt`` on permitted backends in order until one succeeds."""
        ordered = self.order(permitted)
        if not ordered:
            raise GatewayError(
                Cause.NO_BACKEND,
                "No permitted backend is healthy right now; retry later.",
                headers={"retry-after": "5"},
            )
        last: UpstreamFailure | None = None
        for backend in ordered:
            for n in range(backend.max_retries + 1):
                try:
                    result = await attempt(backend)
                except UpstreamFailure as f:
                    last = f
                    if on_attempt:
                        on_attempt(backend, f)
                    if f.status is None or f.status >= 429 or f.status in _REFUSED:
                        self.breaker.failure(backend)
                    if f.status in _REFUSED or f.kind == "tls":
                        # The backend refused us (its credential, our region) or its TLS
                        # handshake failed: it did no work, so the next permitted backend may;
                        # this one is not asked again, and its circuit opens if it keeps
                        # refusing (no more prompts sent to it).
                        break
                    if not f.retryable:
                        # A timeout, a connection lost after sending or a 500 may mean the
                        # backend did the work: never repeat it.
                        raise failure_to_error(f) from None
                    if n < backend.max_retries and self.breaker.available(backend):
                        await asyncio.sleep(self._backoff * (2**n) * (0.5 + random.random()))
                        continue
                    break
                else:
                    self.breaker.success(backend)
                    if on_attempt:
                        on_attempt(backend, None)
                    return backend, result
        assert last is not None
        raise failure_to_error(last)
