"""Prometheus metrics: counts, latencies and denials. Labels never carry content or key values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from gateway.services import Services

__all__ = ["LIMIT_NAMES", "Metrics", "StateCollector"]

log = logging.getLogger("portcullis")

# The limits a request may be refused by (gateway.admission): a key's, its person's, its
# team's, its tenant's.
LIMIT_NAMES = tuple(
    f"{scope}{limit}"
    for scope in ("", "user_", "team_", "tenant_")
    for limit in ("requests", "tokens", "parallel")
)

_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        GCCollector(registry=r)  # python_gc_*: collections and their yield per generation
        self.requests = Counter(
            "portcullis_requests",
            "Requests by endpoint, status and backend",
            ["endpoint", "status", "backend"],
            registry=r,
        )
        self.latency = Histogram(
            "portcullis_request_seconds",
            "Whole request, first byte in to last byte out",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.own_latency = Histogram(
            "portcullis_gateway_seconds",
            "The gateway's own part: total minus upstream time",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "portcullis_upstream_errors",
            "Failed upstream attempts by backend and kind",
            ["backend", "kind"],
            registry=r,
        )
        self.denials = Counter(
            "portcullis_denials",
            "Refused requests by reason (rule id or error code)",
            ["reason"],
            registry=r,
        )
        self.fail_closed = Counter(
            "portcullis_fail_closed",
            "Requests stopped because a component could not answer",
            ["component"],
            registry=r,
        )
        self.limiter_fallback = Counter(
            "portcullis_limiter_fallback",
            "Reservations taken from this replica's own buckets while Redis did not answer "
            "(limits.redis_fallback_share)",
            registry=r,
        )
        self.insecure_passes = Counter(
            "portcullis_insecure_passes",
            "Requests let through by a switch named insecure_* (a check they would have failed)",
            ["switch"],
            registry=r,
        )
        self.cost = Counter(
            "portcullis_cost_usd",
            "What the backends charged for the requests they answered, from the tokens they "
            "reported and the catalogue's prices (backends[].prices)",
            ["backend"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "portcullis_budget_refusals",
            "Requests refused because a spend budget of theirs was spent (429 "
            "spend_budget_exceeded), by the budget's scope (key, team)",
            ["scope"],
            registry=r,
        )
        self.budget_alerts = Counter(
            "portcullis_budget_alerts",
            "Budget alerts by the budget's scope, the share crossed (percent) and what became "
            "of them: announced (claimed by this replica and logged), posted or failed (per "
            "webhook), dropped (the queue was full)",
            ["scope", "share", "outcome"],
            registry=r,
        )
        self.limit_refusals = Counter(
            "portcullis_limit_refusals",
            "Requests refused by a key's limits (429): requests or tokens per minute, or "
            "requests in flight at once (limits.*, a key's own), or by its person's (user_*), "
            "team's (team_*) or tenant's (tenant_*)",
            ["limit"],
            registry=r,
        )
        for limit in LIMIT_NAMES:  # at 0 from the start, for rate()
            self.limit_refusals.labels(limit)
        self.shadow_refusals = Counter(
            "portcullis_shadow_refusals",
            "Requests shadow mode let through that would have been refused (limits.shadow: "
            "requests, tokens, parallel, user_*, team_*, tenant_*; budgets.shadow: budget)",
            ["limit"],
            registry=r,
        )
        for limit in (*LIMIT_NAMES, "budget"):
            self.shadow_refusals.labels(limit)
        self.budget_sync_failures = Counter(
            "portcullis_budget_sync_failures",
            "Times the spend ledger could not take this replica's charges (kept for the next "
            "try) or give back the totals",
            registry=r,
        )
        self.prompt_leaks = Counter(
            "portcullis_system_prompt_leaks",
            "Answers that repeated the canary of a system prompt the gateway added, by what was "
            "done (block: the rest withheld; redact: the canary replaced)",
            ["action"],
            registry=r,
        )
        self.in_flight = Gauge(
            "portcullis_in_flight",
            "Requests being handled",
            registry=r,
        )
        self.loop_lag = Histogram(
            "portcullis_event_loop_lag_seconds",
            "How late the event loop woke a heartbeat due every 0.25 s: how long the loop was "
            "busy or stalled, which every request waiting on it waited too",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self._heartbeat: asyncio.Task[None] | None = None
        # (endpoint, status, backend) -> the three children a finished request updates
        self._finished: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}

    def start(self, interval_s: float = 0.25) -> None:
        """Start the event-loop heartbeat (in the running loop)."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat(interval_s), name="metrics-heartbeat"
            )

    async def _beat(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval_s
            await asyncio.sleep(interval_s)
            self.loop_lag.observe(max(0.0, loop.time() - due))

    async def close(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def finished(
        self, endpoint: str, status: int, backend: str, total_s: float, own_s: float
    ) -> None:
        """Count a finished request and observe its latencies (children looked up once)."""
        key = (endpoint, status, backend)
        children = self._finished.get(key)
        if children is None:
            if len(self._finished) > 10_000:
                self._finished.clear()
            children = self._finished[key] = (
                self.requests.labels(endpoint, str(status), backend),
                self.latency.labels(endpoint),
                self.own_latency.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(total_s)
        children[2].observe(own_s)


class StateCollector:
    """Gauges read when Prometheus scrapes, for alerts that must fire with no traffic: whether
    the audit store takes writes now (``portcullis_audit_store_healthy``: 0 means every request
    is refused with 503 ``audit_unavailable``) and which backends' circuits are open
    (``portcullis_backend_circuit_open{backend}``). Read from the running services, so a
    reloaded catalogue is what is shown; never raises (a scrape must not fail on them)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def describe(self) -> list[Metric]:
        return []  # registering does not call collect() (the services may still be starting)

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._gauges()
        except Exception as exc:  # noqa: BLE001 - a scrape answers with the other metrics
            log.warning("state gauges not read: %s", type(exc).__name__)

    def _gauges(self) -> Iterator[Metric]:
        s = self._services
        healthy = getattr(s.audit, "healthy", None)
        if isinstance(healthy, bool):
            audit = GaugeMetricFamily(
                "portcullis_audit_store_healthy",
                "1 while the audit store takes the write-ahead records, 0 while it does not "
                "(every request is then refused: 503 audit_unavailable)",
            )
            audit.add_metric([], 1.0 if healthy else 0.0)
            yield audit
        circuits = GaugeMetricFamily(
            "portcullis_backend_circuit_open",
            "1 while a backend's circuit is open (it failed backends[].circuit_failures times "
            "in a row and is not asked until its cooldown ends)",
            labels=["backend"],
        )
        breaker = s.router.breaker
        for backend in s.settings.backends:
            circuits.add_metric([backend.id], 1.0 if breaker.is_open(backend.id) else 0.0)
        yield circuits
