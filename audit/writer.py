"""Group commit: many callers, one transaction per batch, every waiter woken on commit.

Callers :meth:`BatchWriter.submit` an entry and await its sequence number. A single flusher task
takes everything queued (up to ``max_batch``) and appends it in one transaction; while that
transaction runs, new entries queue for the next one, so the batch grows with the load and the
added latency stays near one commit. Before taking a
batch the flusher lets the event loop run once, so that requests already under way join it. A
failed commit fails every waiter of that batch and marks the writer unhealthy until a later
commit succeeds.

After an outage the queue may hold more than a batch: the records of the requests refused
meanwhile. The intents requests still wait on then go first (:meth:`BatchWriter._take`), so the
store's return serves new requests at once; the backlog follows in its order.

Entries nobody waits on at once (a request's completion record: the answer is already out) are
not urgent: they do not wake the flusher, but a timer does ``linger_s`` after the first of them
if no urgent entry (the next request's write-ahead intent) has come to share the commit first,
so a lone client pays one durable commit per request, not two, and no wake-up for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit.store import Entry, Head, append_head

__all__ = ["AuditDeadline", "AuditWriteError", "BatchWriter"]

log = logging.getLogger("portcullis.audit")


class BatchWriter:
    def __init__(self, engine: AsyncEngine, max_batch: int = 2000, linger_s: float = 0.0) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._linger = linger_s
        # (entry, its future, whether a request waits on it) in submit order
        self._queue: list[tuple[Entry, asyncio.Future[int], bool]] = []
        self._wake = asyncio.Event()
        self._linger_timer: asyncio.TimerHandle | None = None  # wakes the flusher for lingerers
        # (deadline, future) in submit order; one timer for the earliest, not one per entry
        self._deadlines: deque[tuple[float, asyncio.Future[int]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._conn: AsyncConnection | None = None  # held open: no pool checkout per batch
        self._head: Head | None = None  # the head as this writer last left it
        self.healthy = True
        self.batches = 0
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    def submit(
        self, entry: Entry, urgent: bool = True, within_s: float | None = None
    ) -> asyncio.Future[int]:
        """Queue ``entry``; the future resolves to its ``seq`` once the batch has committed.

        With ``within_s``, the future fails with :class:`AuditDeadline` if the commit has not
        happened by then (the entry may still commit with its batch: that only records a
        request which was then refused, never the reverse) and the writer counts as unhealthy.
        """
        if self._closing:
            raise RuntimeError("audit writer is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._queue.append((entry, fut, urgent))
        if within_s is not None:
            deadline = loop.time() + within_s
            self._deadlines.append((deadline, fut))
            if self._timer is None:
                self._timer = loop.call_at(deadline, self._expire)
        if urgent or not self._linger or len(self._queue) >= self._max_batch:
            self._wake.set()
        elif self._linger_timer is None:
            self._linger_timer = loop.call_later(self._linger, self._linger_over)
        return fut

    def _linger_over(self) -> None:
        self._linger_timer = None
        self._wake.set()

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        pending = self._deadlines
        while pending and (pending[0][1].done() or pending[0][0] <= now):
            _, fut = pending.popleft()
            if not fut.done():
                fut.set_exception(AuditDeadline("audit record not durable within the deadline"))
                self.healthy = False
        if pending:
            self._timer = loop.call_at(pending[0][0], self._expire)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One pass of the event loop before taking the batch: requests already runnable
            # reach their write-ahead intent and share this commit. Under load that doubles
            # the entries per commit (~12 -> ~27 at c=16) and takes ~8% off the CPU per request
            # (SQLite's commit costs the same for one entry or thirty); a lone client's intent
            # waits one loop pass (microseconds; docs/benchmarks.md).
            await asyncio.sleep(0)
            if self._linger_timer is not None:  # the lingerers go with this batch
                self._linger_timer.cancel()
                self._linger_timer = None
            while self._queue:
                await self._flush(self._take())
            if self._closing:
                return

    def _take(self) -> list[tuple[Entry, asyncio.Future[int]]]:
        """The next batch: everything queued when it fits. When it does not (a backlog: the
        records of requests refused while the store did not answer), the write-ahead intents a
        request still waits on go first, so a store that heals serves new requests at once
        instead of after the backlog; the rest keep their order."""
        queue, size = self._queue, self._max_batch
        if len(queue) > size:
            waiting = [i for i, (_, fut, urgent) in enumerate(queue) if urgent and not fut.done()]
            if waiting and waiting[-1] >= size:  # some would wait behind the backlog
                first = set(waiting[:size])
                queue = [queue[i] for i in sorted(first)] + [
                    q for i, q in enumerate(queue) if i not in first
                ]
        batch, self._queue = queue[:size], queue[size:]
        return [(e, f) for e, f, _ in batch]

    async def _flush(self, batch: list[tuple[Entry, asyncio.Future[int]]]) -> None:
        entries = [e for e, _ in batch]
        try:
            if self._conn is None:
                self._conn = await self._engine.connect()
            head = await append_head(self._conn, entries, self._head)
        except Exception as exc:  # noqa: BLE001 - any store failure fails this batch, not the loop
            if self.healthy:
                log.error("audit store write failed: %s", type(exc).__name__)
            self.healthy = False
            self._head = None
            await self._drop_connection()
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(AuditWriteError(type(exc).__name__))
            return
        self._head = head  # as this append left it: the next one need not read it back
        self.healthy = True
        self.batches += 1
        self.written += len(batch)
        first = head.size - len(batch) + 1
        for i, (_, fut) in enumerate(batch):
            if not fut.done():
                fut.set_result(first + i)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for timer in (self._timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._linger_timer = None
        await self._drop_connection()


class AuditWriteError(RuntimeError):
    """The store did not take the write (the message names the exception type, never data)."""


class AuditDeadline(TimeoutError):
    """The entry was not committed within its deadline."""
