"""The embedded engine: regorus (``gordon-to-regorus`` 0.13, Rust, memory-safe) in-process.

A regorus engine may only be used, and dropped, on the thread that created it (pyo3
``unsendable``: anything else panics). So the engine owns its worker threads: each parses the
bundle once at start (prepared once per bundle revision and thread), takes evaluations from a
shared queue, and drops its engine itself when the engine closes. Evaluation is off the event
loop. regorus holds the GIL while it evaluates, so a deadline cannot interrupt a runaway
evaluation in this mode; the shipped pack is bounded (no recursion, data-sized loops) and
:mod:`gateway.policy.worker` runs the same engine in a child process that is killed and
restarted on a missed deadline or a crash (``policy.isolation: process``).
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Mapping
from typing import Any

import regorus

from gateway.policy.bundle import Bundle
from gateway.policy.cachekey import plan_for_modules

__all__ = ["DECISION_RULE", "EmbeddedEngine", "prepare_engine"]

DECISION_RULE = "data.portcullis.decision"

_STOP = object()


def prepare_engine(bundle: Bundle, *, with_tests: bool = False) -> Any:
    """A regorus engine with the bundle's modules and data loaded (raises on a parse error)."""
    engine = regorus.Engine()
    engine.set_rego_v0(False)
    for name, text in bundle.modules:
        engine.add_policy(name, text)
    if with_tests:
        for name, text in bundle.tests:
            engine.add_policy(name, text)
    engine.add_data_json(json.dumps(bundle.data))
    return engine


def _evaluate(engine: Any, input_json: str) -> Any:
    engine.set_input_json(input_json)
    return json.loads(engine.eval_rule_as_json(DECISION_RULE))


class EmbeddedEngine:
    """:class:`gateway.policy.contract.PolicyEngine` on regorus, in this process."""

    def __init__(self, bundle: Bundle, *, threads: int = 2, warm: bool = True) -> None:
        self._bundle = bundle
        self.key_plan = plan_for_modules(bundle.modules)  # what the decision cache keys on
        probe = prepare_engine(bundle)  # parse errors surface here, in the caller's thread
        probe.set_input_json("{}")
        probe.eval_rule_as_json(DECISION_RULE)
        del probe
        self._local = threading.local()  # for evaluate_sync (the caller's own thread)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"policy-{i}", daemon=True)
            for i in range(threads)
        ]
        self._ready = [threading.Event() for _ in self._threads]
        for t in self._threads:
            t.start()
        if warm:  # every thread has parsed the bundle before the first live request
            for ev in self._ready:
                ev.wait(timeout=60)

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    def _serve(self) -> None:
        index = next(i for i, t in enumerate(self._threads) if t is threading.current_thread())
        engine = prepare_engine(self._bundle)
        self._ready[index].set()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                payload, loop, fut = item
                try:
                    result = _evaluate(engine, payload)
                except BaseException as exc:  # a panic too: handed to the caller, thread lives  # noqa: BLE001 (fail closed)
                    loop.call_soon_threadsafe(_set_exception, fut, exc)
                else:
                    loop.call_soon_threadsafe(_set_result, fut, result)
        finally:
            del engine  # dropped on its own thread

    def evaluate_sync(self, input_json: str) -> Any:
        """Evaluate in the calling thread, on an engine private to it (tests, the worker)."""
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = prepare_engine(self._bundle)
            self._local.engine = engine
        return _evaluate(engine, input_json)

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._closed:
            raise RuntimeError("policy engine closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put((json.dumps(policy_input), loop, fut))
        result = await fut
        if not isinstance(result, Mapping):
            raise ValueError("policy engine returned no decision document")
        return result

    async def ready(self) -> bool:
        return not self._closed and all(t.is_alive() for t in self._threads)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__))
