"""The policy client the gateway calls: deadline, bounded concurrency, validation, cache.

``await build_policy_client(settings, registry)`` -> :class:`PolicyClient`;
``await client.decide(policy_input, candidates)`` -> :class:`~gateway.policy.contract.Decision`
or ``GatewayError(Cause.POLICY_UNAVAILABLE)`` on any engine error, timeout, overload or
malformed decision (fail closed; nothing is forwarded).

Load shedding: at most ``max_in_flight`` evaluations run at once, and a call that waited for a
slot is not sent when what is left of its deadline is shorter than the engine's typical time (a
moving average of its recent evaluations, those given up counted at the time they were given),
capped at half the deadline so that a call which did not wait is always sent — the engine's
recovery is seen by the next request. A slow engine then receives about as many evaluations as
it can answer, not one per waiter as each slot frees at its holder's deadline.

Cache correctness: the key is the bundle revision plus the input paths the bundle's modules
read (:mod:`gateway.policy.cachekey`; the whole input for a remote or unknown bundle), with
``now`` counted by UTC day while only the shipped library reads it (it compares days).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.config.policy import PolicySettings
from gateway.errors import Cause, GatewayError
from gateway.policy.bundle import Bundle, archive_bundle, load_bundle
from gateway.policy.cachekey import FULL, KeyPlan
from gateway.policy.contract import Decision, MalformedDecision, PolicyEngine, parse_decision

__all__ = ["EngineFactory", "PolicyClient", "build_engine", "build_policy_client"]

log = logging.getLogger("portcullis.policy")

EngineFactory = Callable[[], Awaitable[PolicyEngine]]


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.failures = Counter(
            "portcullis_policy_failures",
            "Policy evaluations that failed closed, by cause.",
            ["cause"],
            registry=reg,
        )
        self.decisions = Counter(
            "portcullis_policy_decisions",
            "Policy decisions, by outcome and cache use.",
            ["outcome", "cache"],
            registry=reg,
        )
        self.latency = Histogram(
            "portcullis_policy_eval_seconds",
            "Engine evaluation time (cache misses).",
            buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.25),
            registry=reg,
        )
        self.reloads = Counter(
            "portcullis_policy_reloads", "Bundle reloads, by result.", ["result"], registry=reg
        )


def cache_key(policy_input: Mapping[str, Any], revision: str, plan: KeyPlan = FULL) -> str:
    """The decision-relevant input plus the revision (see :mod:`gateway.policy.cachekey`)."""
    return plan.key(policy_input, revision)


class _Shed(Exception):
    """A call that waited for a slot has too little time left for the engine to answer."""


class PolicyClient:
    """Implements the gateway's ``Decider`` protocol (gateway/services.py)."""

    def __init__(
        self,
        engine: PolicyEngine,
        settings: PolicySettings,
        *,
        factory: EngineFactory | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._factory = factory
        self._deadline = settings.deadline_ms / 1000.0
        self._sem = asyncio.Semaphore(settings.max_in_flight)
        self._cache: OrderedDict[str, Decision] = OrderedDict()
        self._cache_size = settings.cache_size
        self._metrics = _Metrics(metrics_registry)
        self._reload_lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        # the engine's typical evaluation time, s (see the module's "load shedding")
        self._typical = 0.0
        self._floor_cap = self._deadline / 2
        self.hits = 0
        self.misses = 0

    @property
    def revision(self) -> str:
        return self._engine.revision

    @property
    def engine(self) -> PolicyEngine:
        return self._engine

    def _fail(self, cause: str, exc: BaseException | None = None) -> GatewayError:
        self._metrics.failures.labels(cause=cause).inc()
        log.error(
            "policy evaluation failed closed: %s (%s)", cause, type(exc).__name__ if exc else "-"
        )
        return GatewayError(Cause.POLICY_UNAVAILABLE, "The policy engine is unavailable.")

    async def decide(
        self, policy_input: Mapping[str, Any], candidates: tuple[str, ...]
    ) -> Decision:
        engine = self._engine  # one revision for the whole call, even across a reload
        plan: KeyPlan = getattr(engine, "key_plan", FULL)
        body = plan.body(policy_input) if self._cache_size else ""
        key = f"{engine.revision}|{body}" if body else ""
        if key:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                self._metrics.decisions.labels(
                    outcome="allow" if hit.allow else "deny", cache="hit"
                ).inc()
                return hit
            self.misses += 1
        loop = asyncio.get_running_loop()
        until = loop.time() + self._deadline
        try:
            async with asyncio.timeout_at(until):
                async with self._sem:
                    if until - loop.time() < min(self._typical, self._floor_cap):
                        raise _Shed
                    start = time.perf_counter()
                    try:
                        raw = await engine.evaluate(policy_input)
                    finally:
                        took = time.perf_counter() - start
                        self._observe(took)
                    self._metrics.latency.observe(took)
        except _Shed:
            raise self._fail("shed") from None
        except TimeoutError as exc:
            raise self._fail("timeout", exc) from None
        except asyncio.CancelledError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # any engine failure fails closed, a Rust panic included  # noqa: BLE001 (fail closed)
            raise self._fail("error", exc) from None
        try:
            decision = parse_decision(raw, candidates)
        except MalformedDecision as exc:
            raise self._fail("malformed", exc) from None
        if decision.bundle_revision != engine.revision and not getattr(engine, "remote", False):
            raise self._fail("malformed")  # an embedded engine must answer with its own revision
        self._metrics.decisions.labels(
            outcome="allow" if decision.allow else "deny", cache="miss"
        ).inc()
        if body and decision.bundle_revision == engine.revision:
            # keyed by the revision that decided (a remote engine learns it from the answer)
            key = f"{decision.bundle_revision}|{body}"
            self._cache[key] = decision
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return decision

    def _observe(self, took: float) -> None:
        """Fold one evaluation's time (for one given up: the time it had) into the typical."""
        self._typical = took if not self._typical else self._typical + 0.2 * (took - self._typical)

    async def reload(self) -> str:
        """Build a new engine (new bundle revision) and swap it in atomically; the old one closes.

        On failure the running engine stays and the error propagates (logged, counted).
        """
        if self._factory is None:
            raise RuntimeError("this policy client has no engine factory to reload from")
        async with self._reload_lock:
            try:
                fresh = await self._factory()
            except Exception:
                self._metrics.reloads.labels(result="failed").inc()
                log.exception("policy bundle reload failed; keeping revision %s", self.revision)
                raise
            old, self._engine = self._engine, fresh
            self._cache.clear()
            self._typical = 0.0  # the new engine's time is its own
            self._metrics.reloads.labels(result="ok").inc()
            log.info("policy bundle revision %s -> %s", old.revision, fresh.revision)
            # Freed by reference counting, leaving no garbage cycles in the frozen start-up heap
            # (gateway.heap; tests/e2e/test_heap.py).
            await old.close()
            return fresh.revision

    def install_sighup(self) -> bool:
        """Reload on SIGHUP (Unix, main thread's loop); returns whether it was installed."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._safe_reload()))
        except (NotImplementedError, RuntimeError, ValueError):
            return False
        return True

    async def _safe_reload(self) -> None:
        with contextlib.suppress(Exception):
            await self.reload()

    def start_watcher(
        self, paths: tuple[Any, ...], interval_s: float, initial: Any = None
    ) -> asyncio.Task[None]:
        """Poll the bundle's files; reload when any .rego/.json changes (mtime, size or set)
        since ``initial`` (a :func:`gateway.policy.watch.snapshot`; default: now)."""
        from gateway.policy.watch import snapshot, watch_loop

        if initial is None:
            initial = snapshot(paths)
        self._watch_task = asyncio.get_running_loop().create_task(
            watch_loop(paths, interval_s, self._safe_reload, initial)
        )
        return self._watch_task

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(max(self._deadline, 1.0)):
                return await self._engine.ready()
        except Exception:  # noqa: BLE001 (fail closed)
            return False

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
        await self._engine.close()


async def build_engine(settings: PolicySettings, archive: Path | None = None) -> PolicyEngine:
    """The configured engine over the configured bundle (raises if the bundle is broken); with
    ``archive``, the bundle is also kept there by its revision (the evidence pack shows what
    decided a past period)."""
    if settings.engine == "opa":
        from gateway.policy.opa import OpaEngine

        opa = OpaEngine(settings.opa_url, settings.opa_path)
        await opa.start()
        return opa
    bundle: Bundle = await asyncio.to_thread(load_bundle, settings.bundle, settings.overlays)
    engine: PolicyEngine
    if settings.isolation == "process":
        from gateway.policy.cachekey import plan_for_modules
        from gateway.policy.worker import ProcessEngine

        worker = ProcessEngine(
            bundle.revision, settings.bundle, settings.overlays, plan_for_modules(bundle.modules)
        )
        await worker.start()
        engine = worker
    else:
        from gateway.policy.embedded import EmbeddedEngine

        engine = await asyncio.to_thread(EmbeddedEngine, bundle, threads=settings.threads)
    if archive is not None:  # once it compiled: a bundle that never decided is not kept
        await asyncio.to_thread(archive_bundle, bundle, archive)
    return engine


async def build_policy_client(
    settings: PolicySettings,
    metrics_registry: CollectorRegistry | None = None,
    archive: Path | None = None,
) -> PolicyClient:
    """The client the gateway uses. Starts the file watcher when ``settings.watch``. With
    ``archive``, every bundle it loads (at start and on each reload) is kept there by revision."""

    async def factory() -> PolicyEngine:
        return await build_engine(settings, archive)

    watched: tuple[Path, ...] = ()
    initial = None
    if settings.watch and settings.engine == "embedded":
        from gateway.policy.bundle import default_bundle_dir
        from gateway.policy.watch import snapshot

        watched = (settings.bundle or default_bundle_dir(), *settings.overlays)
        initial = await asyncio.to_thread(snapshot, watched)  # before the bundle is read
    client = PolicyClient(
        await factory(), settings, factory=factory, metrics_registry=metrics_registry
    )
    if watched:
        client.start_watcher(watched, settings.watch_interval_s, initial)
    return client
