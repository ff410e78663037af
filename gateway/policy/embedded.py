"""The embedded engine: regorus (``gordon-to-regorus`` 0.13, Rust, memory-safe) in-process.

Prepared once per bundle revision and worker thread: a regorus engine may only be used on the
thread that created it (pyo3 ``unsendable``: touching it from another thread panics), so each
worker thread of the pool parses the bundle once, at start-up (warm-up), and keeps its engine.
Evaluation runs in that pool, off the event loop. regorus holds the GIL while it evaluates, so a deadline
cannot interrupt a runaway evaluation in this mode; the shipped pack is bounded (no recursion,
data-sized loops; about 0.1 ms) and :mod:`gateway.policy.worker` runs the same engine in a
separate process that is killed and restarted on a missed deadline or a crash
(``policy.isolation: process``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import regorus

from gateway.policy.bundle import Bundle

__all__ = ["DECISION_RULE", "EmbeddedEngine", "prepare_engine"]

DECISION_RULE = "data.portcullis.decision"


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


class EmbeddedEngine:
    """:class:`gateway.policy.contract.PolicyEngine` on regorus, in this process."""

    def __init__(self, bundle: Bundle, *, threads: int = 2, warm: bool = True) -> None:
        self._bundle = bundle
        probe = prepare_engine(bundle)  # parse errors surface here, in the caller's thread
        probe.set_input_json("{}")
        probe.eval_rule_as_json(DECISION_RULE)
        del probe
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="policy")
        self._closed = False
        if warm:  # make every worker thread prepare its engine now, not on a live request
            barrier = threading.Barrier(threads)

            def warm_one() -> None:
                barrier.wait(timeout=30)
                self._thread_engine()

            for f in [self._executor.submit(warm_one) for _ in range(threads)]:
                f.result()

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    def _thread_engine(self) -> Any:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = prepare_engine(self._bundle)
            self._local.engine = engine
        return engine

    def evaluate_sync(self, input_json: str) -> Any:
        """Evaluate in the calling thread (its own prepared engine)."""
        engine = self._thread_engine()
        engine.set_input_json(input_json)
        out = engine.eval_rule_as_json(DECISION_RULE)
        return json.loads(out)

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._closed:
            raise RuntimeError("policy engine closed")
        payload = json.dumps(policy_input)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self.evaluate_sync, payload)
        if not isinstance(result, Mapping):
            raise ValueError("policy engine returned no decision document")
        return result

    async def ready(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
