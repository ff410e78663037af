"""The PII detector: a content-addressed cache in front of the analyzer, run off the event loop.

``FastDetector.analyze`` looks every text up in an LRU cache keyed by a BLAKE2 digest of the
text and the requested entity set (a chat client resends its whole history each turn: only the
new message is analysed). Misses go to the executor — one worker thread, a pool of worker
processes, or inline for short pattern-only texts — under the deadline. Any failure or a missed
deadline raises ``GatewayError(Cause.PII_UNAVAILABLE)``: nothing is forwarded unscanned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import logging
import multiprocessing
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from gateway.config.pii import PiiSettings
from gateway.errors import Cause, GatewayError
from gateway.heap import freeze_startup_heap
from gateway.pii.contract import Finding
from gateway.pii.engine import Analyzer, AnalyzerOptions, needs_ner

__all__ = ["FastDetector", "options_from"]

log = logging.getLogger(__name__)

_WORKER: Analyzer | None = None
_LOAD_TIMEOUT_S = 120.0


def _init_worker(options: AnalyzerOptions) -> None:
    global _WORKER
    _WORKER = Analyzer(options)
    freeze_startup_heap()  # the model, out of the worker's collector's way (gateway.heap)


def _run_in_worker(
    texts: list[str], entities: frozenset[str] | None, strict: bool = False
) -> list[list[Finding]]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.analyze(texts, entities, strict)


def options_from(settings: PiiSettings) -> AnalyzerOptions:
    return AnalyzerOptions(
        phone_regions=settings.phone_regions,
        ner=settings.ner,
        encoded_views=settings.encoded_views,
        score_threshold=settings.score_threshold,
        token_cache=settings.token_cache,
        ner_windows=settings.ner_windows,
        quiet_in_code=settings.quiet_in_code,
        custom=tuple((c.entity, c.pattern, c.score) for c in settings.custom),
        allow=frozenset(_phrase(p) for p in settings.allow),
    )


def _phrase(text: str) -> str:
    """A phrase as the allow list compares it: case-folded, spaces collapsed."""
    return " ".join(text.casefold().split())


class _Cache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()

    @staticmethod
    def key(text: str, entities: frozenset[str] | None, strict: bool = False) -> bytes:
        h = hashlib.blake2b(digest_size=20)
        h.update(b"strict\0" if strict else b"")  # a strict reading is its own
        h.update(",".join(sorted(entities)).encode() if entities is not None else b"*")
        h.update(b"\0")
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, key: bytes) -> tuple[Finding, ...] | None:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
        return hit

    def put(self, key: bytes, value: tuple[Finding, ...]) -> None:
        if self._size <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)


class FastDetector:
    """Implements :class:`gateway.pii.contract.PiiDetector`."""

    def __init__(self, settings: PiiSettings, analyzer: Analyzer | None = None) -> None:
        self._settings = settings
        self._options = options_from(settings)
        self._cache = _Cache(settings.cache_entries)
        self._analyzer = analyzer
        self._pool: cf.Executor | None = None
        self._loaded = False
        self._load_lock = asyncio.Lock()
        # A fresh worker pool loading after the last one broke (a worker died): requests fail
        # closed at once until it is warm, instead of waiting for the model to load.
        self._restarting: asyncio.Task[None] | None = None
        self.restarts = 0
        self.hits = 0
        self.misses = 0

    async def _ensure_loaded(self) -> None:
        """Load the model (in each worker) before the first deadline starts counting."""
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            loop = asyncio.get_running_loop()
            if self._settings.executor == "process":
                pool = self._executor()
                await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, _run_in_worker, ["warm up"], None)
                        for _ in range(self._settings.workers)
                    )
                )
            elif self._analyzer is None:
                self._analyzer = await loop.run_in_executor(None, Analyzer, self._options)
            self._loaded = True

    def _local(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = Analyzer(self._options)
        return self._analyzer

    def _executor(self) -> cf.Executor:
        if self._pool is None:
            if self._settings.executor == "process":
                self._pool = cf.ProcessPoolExecutor(
                    max_workers=self._settings.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self._options,),
                )
            else:
                # One thread: the model is shared and spaCy holds the GIL; for parallel
                # analysis use executor = "process" with several workers.
                self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pii")
        return self._pool

    async def _compute(
        self, texts: list[str], entities: frozenset[str] | None, strict: bool
    ) -> list[list[Finding]]:
        mode = self._settings.executor
        small = sum(map(len, texts)) <= self._settings.inline_chars
        if mode == "inline" or (small and not (self._options.ner and needs_ner(entities))):
            return self._local().analyze(texts, entities, strict)
        loop = asyncio.get_running_loop()
        if mode == "process":
            return await loop.run_in_executor(
                self._executor(), _run_in_worker, texts, entities, strict
            )
        analyzer = self._local()
        return await loop.run_in_executor(
            self._executor(), analyzer.analyze, texts, entities, strict
        )

    async def analyze(
        self, texts: Sequence[str], entities: frozenset[str] | None, strict: bool = False
    ) -> list[list[Finding]]:
        keys = [_Cache.key(t, entities, strict) for t in texts]
        results: list[tuple[Finding, ...] | None] = [self._cache.get(k) for k in keys]
        miss = [i for i, r in enumerate(results) if r is None]
        self.hits += len(texts) - len(miss)
        self.misses += len(miss)
        if miss:
            if self._restarting is not None:
                if not self._restarting.done():
                    raise GatewayError(
                        Cause.PII_UNAVAILABLE,
                        "Personal-data detection is restarting; nothing was sent.",
                        headers={"retry-after": "5"},
                    )
                self._restarting = None  # warm (or failed: the load below tries again)
            try:
                await asyncio.wait_for(self._ensure_loaded(), _LOAD_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a detector that cannot load fails closed
                log.error("pii detector failed to load: %s", type(exc).__name__)
                raise GatewayError(
                    Cause.PII_UNAVAILABLE,
                    "Personal-data detection is unavailable; nothing was sent.",
                    headers={"retry-after": "5"},
                ) from None
            todo = list(dict.fromkeys(texts[i] for i in miss))  # analyse each distinct text once
            try:
                found = await asyncio.wait_for(
                    self._compute(todo, entities, strict), self._settings.deadline_ms / 1000
                )
            except TimeoutError:
                log.error("pii detection missed its deadline (%d texts)", len(todo))
                raise GatewayError(
                    Cause.PII_UNAVAILABLE,
                    "Personal-data detection did not finish in time; nothing was sent.",
                    headers={"retry-after": "1"},
                ) from None
            except GatewayError:
                raise
            except BrokenProcessPool:
                self._replace_pool()
                raise GatewayError(
                    Cause.PII_UNAVAILABLE,
                    "Personal-data detection is restarting; nothing was sent.",
                    headers={"retry-after": "5"},
                ) from None
            except Exception as exc:  # noqa: BLE001 - any detector failure fails closed
                log.error("pii detection failed: %s", type(exc).__name__)
                raise GatewayError(
                    Cause.PII_UNAVAILABLE,
                    "Personal-data detection is unavailable; nothing was sent.",
                    headers={"retry-after": "1"},
                ) from None
            by_text = {t: tuple(f) for t, f in zip(todo, found, strict=True)}
            for i in miss:
                results[i] = by_text[texts[i]]
                self._cache.put(keys[i], by_text[texts[i]])
        return [list(r or ()) for r in results]

    def _replace_pool(self) -> None:
        """A worker of the pool died (killed for memory, crashed), which breaks the whole pool
        for good: drop it and load a fresh one in the background. Requests fail closed until it
        is warm; ``/readyz`` says not ready meanwhile."""
        pool, self._pool = self._pool, None
        self._loaded = False
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._restarting is not None and not self._restarting.done():
            return  # one fresh pool at a time
        self.restarts += 1
        log.error(
            "pii detection: a worker process died; starting a fresh pool (restart %d)",
            self.restarts,
        )
        self._restarting = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            await asyncio.wait_for(self._ensure_loaded(), _LOAD_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the next request tries again (and fails closed)
            log.error("pii detection: the fresh pool did not load: %s", type(exc).__name__)

    async def ready(self) -> bool:
        """Loads the model (first call) and runs a probe through the executor."""
        if self._restarting is not None and not self._restarting.done():
            return False
        try:
            await asyncio.wait_for(self._ensure_loaded(), _LOAD_TIMEOUT_S)
            await asyncio.wait_for(self._compute(["ready John"], None, False), 30)
        except BrokenProcessPool:
            self._replace_pool()
            return False
        except Exception:  # noqa: BLE001 - readiness is a yes/no answer
            return False
        return True

    async def close(self) -> None:
        if self._restarting is not None:
            self._restarting.cancel()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:  # never pickled with its pool or cache
        raise TypeError("FastDetector is not picklable")
