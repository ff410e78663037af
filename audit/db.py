"""Engines and table creation for the audit store (SQLite WAL + synchronous=FULL, or PostgreSQL).

Kept apart from ``gateway.storage`` so that ``audit`` is importable and usable offline (the
``verify`` and ``export`` tools) without the gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from audit.schema import metadata

__all__ = ["create_tables", "open_engine"]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def open_engine(url: str, pool_size: int = 5, connect_timeout_s: float = 5.0) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get WAL and ``synchronous=FULL``. A new
    PostgreSQL connection gives up after ``connect_timeout_s`` (asyncpg waits 60 s by default:
    a frozen server would hold whoever asked that long)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"timeout": connect_timeout_s} if "+asyncpg" in url else {},
    )


async def create_tables(engine: AsyncEngine) -> None:
    """Create the audit tables if missing (tests, benchmarks; production uses the migration),
    ``audit_log`` partitioned by month on PostgreSQL as the migration leaves it."""
    from audit.partitions import is_partitioned, partition_statements

    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        if conn.dialect.name == "postgresql" and not await is_partitioned(conn):
            for statement in partition_statements(user_index=True):
                await conn.execute(sa.text(statement))
    from audit.store import prepare

    async with engine.connect() as conn:
        await prepare(conn)
