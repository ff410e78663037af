"""Alembic environment: async engine, metadata of the gateway core and of the audit trail."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from gateway.storage.db import create_engine_for
from gateway.storage.schema import metadata as core_metadata


def _metadatas() -> list[MetaData]:
    found = [core_metadata]
    try:
        found.append(importlib.import_module("audit.schema").metadata)
    except ModuleNotFoundError as exc:
        if exc.name not in ("audit.schema", "audit"):
            raise
    return found


config = context.config
target_metadata = _metadatas()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine_for(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or ""))


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
