"""The person's index on the trail (migration 0015, ``ix_audit_log_user (user_id, seq)``) on
the real PostgreSQL's partitioned trail: the migration builds it over a trail already written
(each partition's concurrently, attached to the parent's, which is then valid; one left invalid
by an interrupted build is built again), a month created later has it too, the search by person
reads it (the planner says so) and finds that person's entries newest first, the trail still
verifies, and the downgrade drops it. SQLite gets none, and its search still finds the
person."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import NoResultFound

from audit.browse import browse
from audit.checkpoint import Signer
from audit.db import open_engine
from audit.export import ExportFilter, Scope
from audit.partitions import ensure_partitions, month_after, partition_name, partitions
from audit.verify import verify_url
from gateway.storage.migrate import alembic_config, upgrade
from tests.integration.audit.conftest import month_events, write_events
from tests.support.services import create_pg_database, drop_pg_database, pg_available

pytestmark = pytest.mark.integration

NAME = "ix_audit_log_user"
AUDITOR = Scope(actor="auditor", roles=frozenset({"auditor"}))


async def _search(url: str, user: str) -> tuple[list[int], str]:
    """The console's search by person (its real query, through :func:`audit.browse.browse`):
    the entries' seq, newest first, and the planner's plan for that query."""
    engine = open_engine(url)
    try:
        page = await browse(engine, ExportFilter(user=user), AUDITOR, limit=200)
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        query = "SELECT * FROM audit_log WHERE user_id = :u ORDER BY seq DESC LIMIT 51"
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                # a test's partitions hold a few rows, which PostgreSQL reads whole whatever
                # the indexes: the plan is asked for as for a grown trail
                await conn.execute(sa.text("SET enable_seqscan = off"))
            rows = (await conn.execute(sa.text(explain + query), {"u": user})).all()
        plan = "\n".join(str(r[-1]) for r in rows)
        return [e["seq"] for e in page.entries], plan
    finally:
        await engine.dispose()


def test_on_sqlite_the_migration_adds_nothing_and_the_search_reads_the_table(
    tmp_path: Path,
) -> None:
    """SQLite keeps no person's index (in the gateway's own process it doubled each append's
    CPU): the migration passes over it, and the search finds the person by reading the
    trail."""
    import sqlite3

    path = tmp_path / "gw.db"
    url = f"sqlite+aiosqlite:///{path}"
    key = tmp_path / "audit" / "signing.key"
    upgrade(url, "0014")
    asyncio.run(write_events(url, key, month_events(0, "2026-10", 44)))
    upgrade(url)
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert NAME not in names and "ix_audit_log_ts" in names
    found, plan = asyncio.run(_search(url, "user3"))
    # user3's requests are 3, 14, 25, 36: an intent and an outcome each, newest first
    assert len(found) == 8 and found == sorted(found, reverse=True)
    assert NAME not in plan
    assert verify_url(url, Signer.from_file(key).public_pem())["ok"]
    command.downgrade(alembic_config(url), "0014")


async def _pg_index_state(url: str) -> tuple[bool, dict[str, bool]]:
    """Whether the parent's index is valid, and for each partition whether an index of it is
    attached to the parent's."""
    engine = open_engine(url)
    try:
        async with engine.connect() as conn:
            valid = (
                await conn.execute(
                    sa.text(
                        "SELECT ix.indisvalid FROM pg_index ix JOIN pg_class c "
                        "ON c.oid = ix.indexrelid WHERE c.relname = :n"
                    ),
                    {"n": NAME},
                )
            ).scalar_one()
            parts = [name for name, _ in await partitions(conn)]
            attached = (
                await conn.execute(
                    sa.text(
                        "SELECT t.relname FROM pg_inherits i JOIN pg_index ix "
                        "ON ix.indexrelid = i.inhrelid JOIN pg_class t ON t.oid = ix.indrelid "
                        "WHERE i.inhparent = (SELECT oid FROM pg_class WHERE relname = :n)"
                    ),
                    {"n": NAME},
                )
            ).all()
        names = {str(r[0]) for r in attached}
        return bool(valid), {p: p in names for p in parts}
    finally:
        await engine.dispose()


async def _invalid_index(url: str, part: str) -> None:
    """What an interrupted ``CREATE INDEX CONCURRENTLY`` leaves: the index, marked invalid."""
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE INDEX ix_{part}_user ON {part} (user_id, seq)"))
            await conn.execute(
                sa.text(
                    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                    "(SELECT oid FROM pg_class WHERE relname = :n)"
                ),
                {"n": f"ix_{part}_user"},
            )
    finally:
        await engine.dispose()


@pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running")
def test_on_postgresql_each_partition_is_indexed_concurrently_and_attached(
    tmp_path: Path,
) -> None:
    url = create_pg_database()
    key = tmp_path / "audit" / "signing.key"
    try:
        upgrade(url, "0014")  # partitioned since 0011
        now = datetime.now(UTC)
        asyncio.run(write_events(url, key, month_events(0, "2026-10", 22)))  # the partition before
        asyncio.run(
            write_events(url, key, month_events(100, "2099-01", 11))
        )  # the default partition
        asyncio.run(write_events(url, key, month_events(200, now.strftime("%Y-%m"), 11)))
        before, _ = asyncio.run(_search(url, "user3"))
        # a concurrent build of one partition's index interrupted in an earlier run: invalid
        asyncio.run(_invalid_index(url, partition_name(month_after(date(now.year, now.month, 1)))))
        upgrade(url)
        valid, attached = asyncio.run(_pg_index_state(url))
        assert valid and attached and all(attached.values()), attached
        after, plan = asyncio.run(_search(url, "user3"))
        assert after == before and after == sorted(after, reverse=True) and len(after) == 8
        assert "Seq Scan" not in plan and "user" in plan, plan  # every partition by the index

        # a month the upkeep creates later has the index with it
        async def later() -> None:
            engine = open_engine(url)
            try:
                async with engine.connect() as conn:
                    await ensure_partitions(conn, datetime(2031, 6, 15, tzinfo=UTC))
            finally:
                await engine.dispose()

        asyncio.run(later())
        valid, attached = asyncio.run(_pg_index_state(url))
        assert valid and attached["audit_log_2031_08"], attached
        assert all(attached.values()), attached
        assert verify_url(url, Signer.from_file(key).public_pem())["ok"]
        command.downgrade(alembic_config(url), "0014")
        with pytest.raises(NoResultFound):  # the parent's index is gone, and its partitions'
            asyncio.run(_pg_index_state(url))
    finally:
        drop_pg_database(url)
