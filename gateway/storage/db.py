"""The async database engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

One engine factory for the whole service: the audit package's (``audit`` stays importable
without the gateway, so the gateway uses its factory rather than the other way round).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from audit.db import open_engine

__all__ = ["create_engine_for"]


def create_engine_for(url: str, pool_size: int = 10) -> AsyncEngine:
    return open_engine(url, pool_size)
