"""Active health checks of the backends (``backends[].health_check``).

Between requests, every backend with a ``health_check`` is probed every ``interval_s``: ``GET
base_url + path`` (the model list by default) with the backend's own credential, no content.
``failures`` failed probes in a row mark it down: its circuit opens (``gateway.routing``), so
requests go straight to the next permitted backend instead of finding out one by one, and it
stays open while the probes fail. The first probe that succeeds closes it at once, without
waiting for a request to try it after the cooldown. Requests' own failures open circuits as
before, and a probe that succeeds does not close those (the model list may answer while
completions time out); a backend without a health check is judged by requests alone.

Each probe is counted in ``portcullis_backend_probes_total{backend,result}`` (``ok``,
``failed``); a backend going down or coming back is logged. The catalogue is read at every round,
and a reload wakes the loop (``reloaded``), so a reload's backends are probed from then on; with
no backend checked, the loop sleeps until a reload. A backend whose credential is missing
(``Router.unusable``) is not probed: nothing would be sent to it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter

from gateway.strays import stop

if TYPE_CHECKING:
    from gateway.services import Services

__all__ = ["HealthChecks"]

log = logging.getLogger("portcullis.health")


class HealthChecks:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._due: dict[str, float] = {}  # backend id -> when its next probe is due (monotonic)
        self._failed: dict[str, int] = {}  # backend id -> failed probes in a row
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # set by a reload: the catalogue may have changed
        self.probes = Counter(
            "portcullis_backend_probes",
            "Health-check probes of the backends (backends[].health_check), by result",
            ["backend", "result"],
            registry=services.metrics.registry,
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="backend-health")

    async def close(self) -> None:
        await stop(self._task)
        self._task = None

    def reloaded(self) -> None:
        """The catalogue changed: look at it now, not at the next probe due."""
        self._changed.set()

    async def _run(self) -> None:
        while True:
            self._changed.clear()  # before the round: a reload during it is not missed
            await self.round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._wait())

    def _wait(self) -> float | None:
        """Until the next probe is due, or, with no backend checked, until a reload (None)."""
        if not self._due:
            return None
        now = time.monotonic()
        return max(0.05, min(due - now for due in self._due.values()))

    async def round(self) -> None:
        """Probe every backend whose probe is due, together; never raises."""
        s = self._services
        now = time.monotonic()
        checked = [
            (b, b.health_check)
            for b in s.settings.backends
            if b.health_check is not None and b.id not in s.router.unusable
        ]
        for gone in set(self._due) - {b.id for b, _ in checked}:
            self._due.pop(gone, None)
            self._failed.pop(gone, None)
        due = [(b, check) for b, check in checked if self._due.get(b.id, 0.0) <= now]
        if not due:
            return
        for b, check in due:
            self._due[b.id] = now + check.interval_s
        results = await asyncio.gather(
            *(s.upstream.probe(b, check.path, check.timeout_s) for b, check in due),
            return_exceptions=True,
        )
        for (backend, check), ok in zip(due, results, strict=True):
            healthy = not isinstance(ok, BaseException) and ok.ok
            self.probes.labels(backend.id, "ok" if healthy else "failed").inc()
            breaker = s.router.breaker
            if healthy:
                # closes only what the checks opened: a circuit requests opened (the model list
                # answers, the completions time out) is theirs to close
                if self._failed.pop(backend.id, 0) >= check.failures:
                    log.warning("backend %s answers its health check again", backend.id)
                    breaker.success(backend)
                continue
            failed = self._failed[backend.id] = self._failed.get(backend.id, 0) + 1
            if failed >= check.failures:
                if failed == check.failures:
                    log.warning(
                        "backend %s failed %d health checks in a row: marked down",
                        backend.id,
                        failed,
                    )
                # down until the next probe can bring it back (and a little past it)
                breaker.down(backend, check.interval_s + check.timeout_s + 1.0)
