"""The async database engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

One engine factory for the whole service: the audit package's (``audit`` stays importable
without the gateway, so the gateway uses its factory rather than the other way round).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.db import open_engine

__all__ = ["create_engine_for", "insert_for", "is_outage"]


# PostgreSQL's SQLSTATEs for a server that cannot serve now, whatever was asked: connection
# exceptions (08), insufficient resources (53: disk full, out of memory, too many connections),
# operator intervention (57P: shutting down, crashed, starting up — 57P03 "cannot connect now"
# while it recovers), system errors (58: I/O), and a write sent to a read-only standby (25006).
_OUTAGE_SQLSTATES = ("08", "53", "57P", "58", "25006")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database did not answer — refused or reset the connection,
    timed out, stopped mid-query, starting up, out of connections or disk, no connection free
    in the pool — as against an error in what was asked (a constraint, a bug: still a 500)."""
    if isinstance(exc, (OSError, sa_exc.TimeoutError)):  # TimeoutError is an OSError
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(
        exc, (sa_exc.OperationalError, sa_exc.InterfaceError)
    ):
        return True
    driver: BaseException | None = exc.orig  # the driver's error (asyncpg's under the adapter's)
    while driver is not None:
        state = getattr(driver, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES):
            return True
        driver = driver.__cause__
    return False


def create_engine_for(url: str, pool_size: int = 10, connect_timeout_s: float = 5.0) -> AsyncEngine:
    return open_engine(url, pool_size, connect_timeout_s)


def insert_for(engine: AsyncEngine, table: Any) -> Any:
    """An INSERT on ``table`` in the engine's dialect, which has ``on_conflict_do_*`` (SQLite or
    PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
