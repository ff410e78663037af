"""The audit sink the gateway calls (``gateway.audit_sink.AuditSink``): write-ahead intents with
group commit and a deadline, completions, readiness, recovery at start and periodic checkpoints.

``build_sink(settings, database_url, data_dir)`` is the factory the gateway uses; the sink itself
depends only on plain values, so ``audit`` stays importable without ``gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer, take_checkpoint
from audit.db import open_engine
from audit.partitions import ensure_partitions
from audit.recovery import recover
from audit.retention import purge
from audit.schema import audit_head, audit_log
from audit.store import Entry, Static, make_entry, now_ts, prepare, static_part, writer_id
from audit.writer import AuditDeadline, BatchWriter

if TYPE_CHECKING:
    from gateway.config.audit import AuditSettings

__all__ = ["AuditUnavailable", "DatabaseAuditSink", "MemoryAuditSink", "Retention", "build_sink"]

log = logging.getLogger("portcullis.audit")


class AuditUnavailable(RuntimeError):
    """The audit store did not make the record durable in time (the gateway answers 503)."""


_MAX_PENDING = 100_000


_PROBE_BODY = "p" * 65536  # larger than a page: a full disk must refuse it


def _consume(fut: asyncio.Future[int]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved, so a failure after a timeout is not reported twice


@dataclass(frozen=True)
class Retention:
    """Retention classes for the periodic purge (see :mod:`audit.retention`)."""

    days: Mapping[str, int | None]
    default_class: str = "default"
    tenant_classes: Mapping[str, str] = field(default_factory=dict)
    interval_s: float = 6 * 3600


class DatabaseAuditSink:
    def __init__(
        self,
        engine: AsyncEngine,
        signer: Signer,
        checkpoint_dir: Path | None,
        *,
        deadline_s: float = 1.0,
        max_batch: int = 2000,
        completion_linger_s: float = 0.05,
        checkpoint_interval_s: float = 60.0,
        recovery_grace_s: int = 600,
        recovery_window_h: int = 24 * 31,
        retention: Retention | None = None,
        owns_engine: bool = True,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.checkpoint_dir = checkpoint_dir
        self.writer_id = writer_id()
        self._deadline = deadline_s
        self._writer = BatchWriter(engine, max_batch, completion_linger_s)
        self._interval = checkpoint_interval_s
        self._grace = recovery_grace_s
        self._window = recovery_window_h
        self._owns_engine = owns_engine
        self._retention = retention
        self._prepared = False
        self._tasks: list[asyncio.Task[None]] = []
        self.recovered = 0
        # request_id -> the intent's shared fields, reused by its completion (see audit.store)
        self._static: dict[str, Static] = {}

    async def _prepare(self) -> None:
        async with self.engine.connect() as conn:
            await prepare(conn)
        self.recovered = await recover(self.engine, self.writer_id, self._grace, self._window)
        if self.recovered:
            log.warning("audit recovery marked %d intents incomplete", self.recovered)
        self._prepared = True

    async def start(self) -> None:
        try:
            await self._prepare()
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            log.error("audit store unavailable at start: %s", type(exc).__name__)
            self._writer.healthy = False
        self._writer.start()
        self._tasks.append(asyncio.create_task(self._probe(), name="audit-probe"))
        self._tasks.append(asyncio.create_task(self._checkpoints(), name="audit-checkpoints"))
        if self.engine.dialect.name == "postgresql":
            self._tasks.append(asyncio.create_task(self._partitions(), name="audit-partitions"))
        if self._retention is not None:
            self._tasks.append(asyncio.create_task(self._purges(), name="audit-purge"))

    async def _submit(
        self, kind: str, event: Mapping[str, Any], static: Static | None = None
    ) -> int:
        if not self._prepared:
            raise AuditUnavailable("audit store not ready")
        return await self._wait(make_entry(kind, event, self.writer_id, static))

    async def _wait(self, entry: Entry) -> int:
        # The writer enforces the deadline (one timer for all waiters, see BatchWriter.submit).
        fut = self._writer.submit(entry, within_s=self._deadline)
        fut.add_done_callback(_consume)
        try:
            return await fut
        except AuditDeadline:
            raise AuditUnavailable("audit record not durable within the deadline") from None
        except Exception as exc:
            raise AuditUnavailable("audit store write failed") from exc

    async def intent(self, event: Mapping[str, Any]) -> None:
        static = static_part(event)
        rid = event.get("request_id")
        if isinstance(rid, str) and self._prepared:
            if len(self._static) >= _MAX_PENDING:
                self._static.clear()  # completions that never came; only a saving is lost
            self._static[rid] = static
        await self._submit("intent", event, static)

    async def complete(self, event: Mapping[str, Any]) -> None:
        """Record a request's outcome. Not urgent (see :class:`audit.writer.BatchWriter`), and
        without a deadline: nothing waits on it but the record itself; a failed commit raises."""
        if not self._prepared:
            raise AuditUnavailable("audit store not ready")
        rid = event.get("request_id")
        static = self._static.pop(rid, None) if isinstance(rid, str) else None
        entry = make_entry("complete", event, self.writer_id, static)
        try:
            await self._writer.submit(entry, urgent=False)
        except Exception as exc:
            raise AuditUnavailable("audit store write failed") from exc

    async def record(self, kind: str, event: Mapping[str, Any]) -> int:
        """Append an administrative entry (``export``, ``purge``, ...); returns its ``seq``."""
        return await self._submit(kind, event)

    async def ready(self) -> bool:
        return self.healthy

    @property
    def healthy(self) -> bool:
        """The store takes writes now (as far as the last commit or probe knows)."""
        return self._prepared and self._writer.healthy

    async def checkpoint(self) -> Any:
        return await take_checkpoint(self.engine, self.signer, self.checkpoint_dir)

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self._prepared and self._writer.healthy:
                continue
            try:
                if not self._prepared:
                    await self._prepare()
                async with asyncio.timeout(5):
                    await self._writable()
                self._writer.healthy = True
            except (TimeoutError, OSError, sa.exc.SQLAlchemyError):
                continue

    async def _writable(self) -> None:
        """Raise unless the store would take an append now. A read is not proof: a read-only
        file or a full disk answers reads and refuses every write, and /readyz must not call
        such a replica ready. So the probe writes a row larger than a page (the disk must find
        new pages for it) that no one ever sees: ``seq`` -1, rolled back in its transaction."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.select(audit_head.c.size).limit(1))
            try:
                await conn.execute(
                    audit_log.insert().values(
                        seq=-1,
                        kind="probe",
                        ts=now_ts(),
                        writer=self.writer_id,
                        body=_PROBE_BODY,
                        leaf_hash=bytes(32),
                    )
                )
            finally:
                await conn.rollback()

    async def _checkpoints(self) -> None:
        last = -1
        while True:
            await asyncio.sleep(self._interval)
            try:
                cp = await take_checkpoint(self.engine, self.signer, self.checkpoint_dir)
                if cp is not None and cp.tree_size != last:
                    last = cp.tree_size
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.error("audit checkpoint failed: %s", type(exc).__name__)

    async def _partitions(self, interval_s: float = 3600.0) -> None:
        """The months ahead of the trail's partitions (:mod:`audit.partitions`): now, then
        hourly. A failure is logged and tried again; appends never wait on it (the default
        partition takes rows no month covers)."""
        while True:
            try:
                async with self.engine.connect() as conn:
                    created = await ensure_partitions(conn)
                if created:
                    log.info("audit partitions created: %s", ", ".join(created))
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.error("audit partitions not checked: %s", type(exc).__name__)
            await asyncio.sleep(interval_s)

    async def purge_now(self) -> dict[str, int]:
        """Run the retention purge once (also run every ``retention.interval_s``)."""
        r = self._retention
        if r is None:
            return {}
        return await purge(self.engine, r.days, r.default_class, r.tenant_classes, self.writer_id)

    async def _purges(self) -> None:
        assert self._retention is not None
        while True:
            await asyncio.sleep(self._retention.interval_s)
            try:
                counts = await self.purge_now()
                if any(counts.values()):
                    log.info("audit purge: %s", counts)
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.error("audit purge failed: %s", type(exc).__name__)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self._writer.close()
        if self._prepared and self._writer.healthy:
            with contextlib.suppress(OSError, ValueError, sa.exc.SQLAlchemyError):
                await take_checkpoint(self.engine, self.signer, self.checkpoint_dir)
        if self._owns_engine:
            await self.engine.dispose()


class MemoryAuditSink:
    """Deterministic fake for unit tests: keeps normalised entries in a list; can be failed."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def _add(self, kind: str, event: Mapping[str, Any]) -> None:
        if self.fail:
            raise AuditUnavailable("audit store down (fake)")
        self.entries.append(make_entry(kind, event, "memory:0:0").row)

    async def intent(self, event: Mapping[str, Any]) -> None:
        await self._add("intent", event)

    async def complete(self, event: Mapping[str, Any]) -> None:
        await self._add("complete", event)

    async def record(self, kind: str, event: Mapping[str, Any]) -> int:
        await self._add(kind, event)
        return len(self.entries)

    async def ready(self) -> bool:
        return not self.fail

    async def close(self) -> None:
        self.started = False


def build_sink(settings: AuditSettings, database_url: str, data_dir: Path) -> DatabaseAuditSink:
    """The gateway's audit sink from its settings (see ``gateway.config.audit``)."""
    base = Path(data_dir) / "audit"
    key_file = settings.signing_key_file or base / "signing.key"
    return DatabaseAuditSink(
        open_engine(settings.database_url or database_url),
        Signer.from_file(Path(key_file)),
        Path(settings.checkpoint_dir or base / "checkpoints"),
        deadline_s=settings.intent_deadline_ms / 1000,
        max_batch=settings.max_batch,
        completion_linger_s=settings.completion_linger_ms / 1000,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        recovery_grace_s=settings.recovery_grace_s,
        recovery_window_h=settings.recovery_window_h,
        retention=Retention(
            settings.retention_days,
            settings.default_retention_class,
            settings.tenant_retention,
            settings.purge_interval_s,
        )
        if settings.purge_interval_s
        else None,
    )
