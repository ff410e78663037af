"""The audit trail partitioned by month on the real PostgreSQL (``audit.partitions``): the
migration turns a trail already written into partitions without copying it, appends land in
their month's partition, a report over a month reads only that month, the months ahead are
created as time passes, the whole still verifies, and the downgrade gives one plain table
back. SQLite keeps one table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from audit.checkpoint import Signer
from audit.db import open_engine
from audit.partitions import ensure_partitions, is_partitioned, partition_statements, partitions
from audit.verify import verify_url
from gateway.storage.migrate import alembic_config, upgrade
from tests.integration.audit.conftest import month_events, write_events
from tests.support.services import create_pg_database, drop_pg_database, pg_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not running"),
]


async def _where(url: str) -> dict[str, int]:
    """Rows per partition."""
    engine = open_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT tableoid::regclass::text, count(*) FROM audit_log GROUP BY 1")
            )
            return {str(name): int(n) for name, n in rows.all()}
    finally:
        await engine.dispose()


def test_the_migration_partitions_a_written_trail_and_the_downgrade_undoes_it(
    tmp_path: Path,
) -> None:
    url = create_pg_database()
    key = tmp_path / "audit" / "signing.key"
    try:
        upgrade(url, "0010")
        asyncio.run(
            write_events(url, key, month_events(0, "2026-10", 20))
        )  # written before partitioning
        upgrade(url)
        now = datetime.now(UTC)
        first = f"{now.year + now.month // 12:04d}_{now.month % 12 + 1:02d}"
        assert asyncio.run(_where(url)) == {f"audit_log_before_{first}": 40}
        asyncio.run(
            write_events(url, key, month_events(100, "2099-01", 5))
        )  # far ahead: the default
        asyncio.run(write_events(url, key, month_events(200, now.strftime("%Y-%m"), 5)))
        placed = asyncio.run(_where(url))
        assert placed == {f"audit_log_before_{first}": 50, "audit_log_default": 10}, placed
        pem = Signer.from_file(key).public_pem()
        result = verify_url(url, pem)
        assert result["ok"] and result["entries"] == 60, result

        command.downgrade(alembic_config(url), "0010")  # one plain table again, every row
        assert sum(asyncio.run(_where(url)).values()) == 60
        assert asyncio.run(_where(url)).keys() == {"audit_log"}
        assert verify_url(url, pem)["ok"]
    finally:
        drop_pg_database(url)


async def test_appends_land_in_their_month_and_a_month_s_report_reads_only_it(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        # SQLite: one table, nothing to do, never an error
        engine = open_engine(database_url)
        async with engine.connect() as conn:
            assert not await is_partitioned(conn)
            assert await ensure_partitions(conn) == []
        await engine.dispose()
        return
    engine = open_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_log CASCADE"))
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_head CASCADE"))
        from audit.db import create_tables

        await create_tables(engine)  # as the migration leaves it, with this month's partitions
        async with engine.connect() as conn:
            assert await is_partitioned(conn)
            # the months ahead of a clock that moved on: created in order, none skipped
            later = datetime(2031, 6, 15, tzinfo=UTC)
            created = await ensure_partitions(conn, later)
            names = [n for n, _ in await partitions(conn)]
        assert created[-1] == "audit_log_2031_08" and "audit_log_2031_06" in names
        months = sorted(n for n in names if n[10:14].isdigit())
        assert len(months) == len(set(months)) and months[-1] == "audit_log_2031_08"
        async with engine.connect() as conn:
            assert await ensure_partitions(conn, later) == []  # nothing more to do

        key = tmp_path / "audit" / "signing.key"
        await write_events(
            database_url, key, month_events(0, "2031-03", 6) + month_events(50, "2031-04", 4)
        )
        placed = await _where(database_url)
        assert placed == {"audit_log_2031_03": 12, "audit_log_2031_04": 8}, placed
        # a period's query reads that period's partition only
        async with engine.connect() as conn:
            plan = "\n".join(
                r[0]
                for r in (
                    await conn.execute(
                        sa.text(
                            "EXPLAIN SELECT count(*) FROM audit_log "
                            "WHERE ts >= '2031-04-01' AND ts < '2031-05-01'"
                        )
                    )
                ).all()
            )
        assert "audit_log_2031_04" in plan and "audit_log_2031_03" not in plan, plan
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_log CASCADE"))
        await engine.dispose()


async def test_a_month_whose_rows_reached_the_default_gets_its_partition_and_its_rows(
    database_url: str, tmp_path: Path
) -> None:
    """The upkeep could not run for months, so a month's rows went to the default partition:
    PostgreSQL refuses that month's partition while they are there. The upkeep moves them into
    it (the same rows), the months after are created, and the trail still verifies."""
    if not database_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL's")
    engine = open_engine(database_url)
    key = tmp_path / "audit" / "signing.key"
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_log CASCADE"))
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_head CASCADE"))
            # another test's checkpoints, signed by its key
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_checkpoints CASCADE"))
        from audit.db import create_tables

        await create_tables(engine)  # this month and two ahead
        now = datetime.now(UTC).strftime("%Y-%m")
        await write_events(
            database_url, key, month_events(0, now, 3) + month_events(10, "2031-02", 4)
        )
        placed = await _where(database_url)
        assert placed["audit_log_default"] == 8, placed  # no partition for 2031 yet
        async with engine.connect() as conn:
            created = await ensure_partitions(conn, datetime(2031, 1, 20, tzinfo=UTC))
        assert "audit_log_2031_02" in created and created[-1] == "audit_log_2031_03", created
        placed = await _where(database_url)
        assert placed["audit_log_2031_02"] == 8 and "audit_log_default" not in placed, placed
        assert sum(placed.values()) == 14
        async with engine.connect() as conn:
            names = dict(await partitions(conn))
        assert names["audit_log_default"] == "DEFAULT"  # attached again
        await write_events(
            database_url, key, month_events(30, "2031-02", 1) + month_events(40, "2099-01", 1)
        )
        placed = await _where(database_url)
        assert placed["audit_log_2031_02"] == 10 and placed["audit_log_default"] == 2, placed
        result = await asyncio.to_thread(
            verify_url, database_url, Signer.from_file(key).public_pem()
        )
        assert result["ok"] and result["entries"] == 18, result
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE IF EXISTS audit_log CASCADE"))
        await engine.dispose()


def test_the_statements_cover_next_month_onwards_and_a_default() -> None:
    got = partition_statements(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert "FOR VALUES FROM (MINVALUE) TO ('2027-01-01')" in got[9]
    creates = [s for s in got if s.startswith("CREATE TABLE IF NOT EXISTS")]
    assert creates == [
        "CREATE TABLE IF NOT EXISTS audit_log_2027_01 PARTITION OF audit_log "
        "FOR VALUES FROM ('2027-01-01') TO ('2027-02-01')",
        "CREATE TABLE IF NOT EXISTS audit_log_2027_02 PARTITION OF audit_log "
        "FOR VALUES FROM ('2027-02-01') TO ('2027-03-01')",
        "CREATE TABLE IF NOT EXISTS audit_log_default PARTITION OF audit_log DEFAULT",
    ]
