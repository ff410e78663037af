"""Group commit: many callers, one transaction per batch, every waiter woken on commit.

Callers :meth:`BatchWriter.submit` an entry and await its sequence number. A single flusher task
takes everything queued (up to ``max_batch``) and appends it in one transaction; while that
transaction runs, new entries queue for the next one, so the batch grows with the load and the
added latency stays near one commit. A failed commit fails every waiter of that batch and marks
the writer unhealthy until a later commit succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from audit.store import Entry, append

__all__ = ["AuditWriteError", "BatchWriter"]

log = logging.getLogger("portcullis.audit")


class BatchWriter:
    def __init__(self, engine: AsyncEngine, max_batch: int = 2000) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[tuple[Entry, asyncio.Future[int]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.healthy = True
        self.batches = 0
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    def submit(self, entry: Entry) -> asyncio.Future[int]:
        """Queue ``entry``; the future resolves to its ``seq`` once the batch has committed."""
        if self._closing:
            raise RuntimeError("audit writer is closed")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._flush(batch)
            if self._closing:
                return

    async def _flush(self, batch: list[tuple[Entry, asyncio.Future[int]]]) -> None:
        try:
            async with self._engine.connect() as conn:
                first = await append(conn, [e for e, _ in batch])
        except Exception as exc:  # noqa: BLE001 - any store failure fails this batch, not the loop
            if self.healthy:
                log.error("audit store write failed: %s", type(exc).__name__)
            self.healthy = False
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(AuditWriteError(type(exc).__name__))
            return
        self.healthy = True
        self.batches += 1
        self.written += len(batch)
        for i, (_, fut) in enumerate(batch):
            if not fut.done():
                fut.set_result(first + i)

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class AuditWriteError(RuntimeError):
    """The store did not take the write (the message names the exception type, never data)."""
