"""The async database engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

One engine factory for the whole service: the audit package's (``audit`` stays importable
without the gateway, so the gateway uses its factory rather than the other way round).
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.db import open_engine

__all__ = ["create_engine_for", "is_outage"]


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database did not answer — refused or reset the connection,
    timed out, stopped mid-query, no connection free in the pool — as against an error in what
    was asked (a constraint, a bug), which stays a 500."""
    if isinstance(exc, (OSError, sa_exc.TimeoutError)):  # TimeoutError is an OSError
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, (sa_exc.OperationalError, sa_exc.InterfaceError)
        )
    return False


def create_engine_for(url: str, pool_size: int = 10) -> AsyncEngine:
    return open_engine(url, pool_size)
