"""What an index on the person (``user_id``) costs the trail's appends, and what it saves a
search of one person's entries, same run.

    .venv/bin/python bench/audit/filter_index.py [--rows 300000] [--users 2000] [--batches 400]
        [--batch 24] [--pg]

Fills two SQLite audit logs (the gateway's schema, WAL) with ``--rows`` entries of
``--users`` people (a few very active, most occasional: Zipf's law), one log as the schema
was before migration 0015 and one with the index it makes on PostgreSQL,
``ix_audit_log_user (user_id, seq)``; a
person who left early on has five entries at the log's start. Then times ``--batches`` appends
of ``--batch`` entries each (the gateway's group commit at c=16: head update, ``executemany``,
``COMMIT``, ``synchronous=FULL``), alternating the two logs batch by batch, and prints CPU and
wall time per entry appended; then the console's search of one person's newest entries (the
query :func:`audit.browse.browse` runs: ``WHERE user_id = ? ORDER BY seq DESC LIMIT 51``) for
the most active person, an occasional one, the one who left, and a name no entry has (median of
five, page cache warm), with SQLite's plan; and how long building the index took on the filled
log (what building it costs an existing trail of this size). ``--pg``: the same on the local
PostgreSQL (:class:`PgLog`), where migration 0015 builds the index.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import index_order
import sqlalchemy as sa
from bench_audit import PG_ADMIN, ev

from audit.store import _SQLITE_INSERT, Entry, _records, make_entry

INDEX = "CREATE INDEX ix_audit_log_user ON audit_log (user_id, seq)"
SEARCH = "SELECT * FROM audit_log WHERE user_id = ? ORDER BY seq DESC LIMIT 51"


class Log(index_order.Log):  # type: ignore[misc]  # a sibling script, untyped to mypy
    """:class:`index_order.Log` (its fill and its timed append), as the schema was before
    migration 0015 or ``indexed``."""

    def __init__(self, root: Path, name: str, indexed: bool) -> None:
        super().__init__(root, name, ids=lambda: "")  # the entries come with their ids
        self.name = name
        self.db.execute("DROP INDEX IF EXISTS ix_audit_log_user")  # not made on SQLite
        if indexed:
            self.db.execute(INDEX)

    def insert(self, entries: list[Entry]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(_SQLITE_INSERT, _records(entries, self.size + 1))
        self.db.execute("COMMIT")
        self.size += len(entries)

    def search_ms(self, user: str) -> tuple[float, int, str]:
        times, found = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            found = len(self.db.execute(SEARCH, (user,)).fetchall())
            times.append(time.perf_counter() - t0)
        plan = " / ".join(r[3] for r in self.db.execute("EXPLAIN QUERY PLAN " + SEARCH, (user,)))
        return 1000 * statistics.median(times), found, plan


class PgLog:
    """The same on PostgreSQL: a database of its own with the trail as the migrations leave
    it (partitioned by month), filled with COPY, appended to through the store's own append
    (``audit.store.append_head``: the head moved and the batch copied in one transaction). CPU
    is the server process's serving this connection (from ``/proc``); WAL is the bytes of
    write-ahead log each entry made the server write."""

    def __init__(self, name: str, indexed: bool) -> None:
        self.name, self.indexed = name, indexed
        self.db = "portcullis_bench_filter_" + ("indexed" if indexed else "plain")
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.db}"
        self.size = 0
        self.cpu = self.wall = 0.0
        self.wal = 0

    async def open(self) -> None:
        import asyncpg

        from audit.db import create_tables, open_engine
        from audit.store import read_head

        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{self.db}"')
        await admin.close()
        self.engine = open_engine(self.url, pool_size=1)
        await create_tables(self.engine)
        async with self.engine.begin() as conn:
            if not self.indexed:
                await conn.execute(sa.text("DROP INDEX ix_audit_log_user"))
        self.conn = await self.engine.connect()
        await self.conn.commit()
        self.pid = (await self.conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        await self.conn.commit()
        self.head = await read_head(self.conn)
        await self.conn.commit()

    def _server_cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def _lsn(self) -> int:
        query = sa.text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
        lsn = (await self.conn.execute(query)).scalar_one()
        await self.conn.commit()
        return int(lsn)

    async def insert(self, entries: list[Entry]) -> None:
        from audit.store import append_head

        self.head = await append_head(self.conn, entries, self.head)
        await self.conn.commit()
        self.size += len(entries)

    async def append(self, entries: list[Entry]) -> None:
        from audit.store import append_head

        lsn = await self._lsn()
        c0, t0 = self._server_cpu(), time.perf_counter()
        self.head = await append_head(self.conn, entries, self.head)
        self.wall += time.perf_counter() - t0
        self.cpu += self._server_cpu() - c0
        self.wal += await self._lsn() - lsn
        self.size += len(entries)

    async def search_ms(self, user: str) -> tuple[float, int, str]:
        query = sa.text(SEARCH.replace("?", ":u"))
        times, found = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            found = len((await self.conn.execute(query, {"u": user})).all())
            times.append(time.perf_counter() - t0)
            await self.conn.commit()
        plan = (
            await self.conn.execute(sa.text("EXPLAIN " + SEARCH.replace("?", ":u")), {"u": user})
        ).all()
        await self.conn.commit()
        shown = "Index" if any("Index" in str(r[0]) for r in plan) else "Seq Scan"
        return 1000 * statistics.median(times), found, shown

    async def close(self) -> None:
        import asyncpg

        await self.conn.close()
        await self.engine.dispose()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        await admin.close()


async def main_pg(args: argparse.Namespace, entries: Any) -> None:
    logs = [PgLog("as before", indexed=False), PgLog("indexed", indexed=True)]
    try:
        for log in logs:
            await log.open()
            await log.insert(entries(5, "left-early"))
        state = RND.getstate()
        for log in logs:
            RND.setstate(state)
            for _ in range(args.rows // 1000):
                await log.insert(entries(1000))
            async with log.engine.begin() as conn:
                await conn.execute(sa.text("CHECKPOINT"))
                await conn.execute(sa.text("ANALYZE audit_log"))
        async with logs[0].engine.connect() as conn:
            counts: dict[str, int] = dict(
                (await conn.execute(
                    sa.text("SELECT user_id, count(*) FROM audit_log GROUP BY user_id")
                )).all()
            )  # fmt: skip
        for _ in range(args.batches):
            batch = entries(args.batch)
            for log in logs:
                await log.append(batch)
        n = args.batches * args.batch
        print(f"PostgreSQL; rows before: {args.rows} of {len(counts)} people; appended {n} per log")
        print("\n| log | server CPU µs per entry | wall µs per entry | WAL bytes per entry |")
        print("|---|---:|---:|---:|")
        for log in logs:
            print(
                f"| {log.name} | {1e6 * log.cpu / n:.1f} | {1e6 * log.wall / n:.1f} "
                f"| {log.wal / n:.0f} |"
            )
        occasional = min((u for u in counts if u.startswith("user")), key=counts.__getitem__)
        print("\n| person (entries) | log | search ms | found | plan |")
        print("|---|---|---:|---:|---|")
        for who in ("user0", occasional, "left-early", "nobody"):
            for log in logs:
                ms, found, plan = await log.search_ms(who)
                print(
                    f"| {who} ({counts.get(who, 0)}) | {log.name} | {ms:.2f} | {found} | {plan} |"
                )
    finally:
        for log in logs:
            await log.close()


RND = random.Random(7)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--pg", action="store_true", help="on the local PostgreSQL (test database)")
    args = ap.parse_args()
    proto = make_entry("intent", ev(1), "bench:0:0")
    rnd = RND

    # Zipf's law over the people (the k-th most active sends 1/k of the most active's share):
    # user0 about an eighth of the traffic at 2,000 people, most people now and then
    people = [f"user{k}" for k in range(args.users)]
    weights = list(itertools.accumulate(1 / (k + 1) for k in range(args.users)))

    def person() -> str:
        return rnd.choices(people, cum_weights=weights)[0]

    def entries(n: int, who: str | None = None) -> list[Entry]:
        return [
            Entry(row={**proto.row, "user_id": who or person()}, leaf=proto.leaf) for _ in range(n)
        ]

    if args.pg:
        import asyncio

        asyncio.run(main_pg(args, entries))
        return
    root = Path(tempfile.mkdtemp(prefix="pcs-filter-", dir=Path(__file__).resolve().parents[2]))
    try:
        logs = [Log(root, "as before", indexed=False), Log(root, "indexed", indexed=True)]
        for log in logs:
            log.db.execute("PRAGMA synchronous=OFF")
            log.insert(entries(5, "left-early"))
        rnd_state = rnd.getstate()
        for log in logs:  # the same people in the same order in both
            rnd.setstate(rnd_state)
            for _ in range(args.rows // 1000):
                log.insert(entries(1000))
            log.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            log.db.execute("PRAGMA synchronous=FULL")
        counts = dict(
            logs[0].db.execute("SELECT user_id, count(*) FROM audit_log GROUP BY user_id")
        )
        occasional = min((u for u in counts if u.startswith("user")), key=counts.__getitem__)
        for _ in range(args.batches):
            batch = entries(args.batch)
            for log in logs:
                log.append(batch)
        n = args.batches * args.batch
        print(
            f"rows before: {args.rows} of {len(counts)} people; appended {n} per log "
            f"in batches of {args.batch}"
        )
        print("\n| log | CPU µs per entry appended | wall µs per entry |")
        print("|---|---:|---:|")
        for log in logs:
            print(f"| {log.name} | {1e6 * log.cpu / n:.1f} | {1e6 * log.wall / n:.1f} |")
        print("\n| person (entries) | log | search ms | found | plan |")
        print("|---|---|---:|---:|---|")
        for who in ("user0", occasional, "left-early", "nobody"):
            for log in logs:
                ms, found, plan = log.search_ms(who)
                shown = f"{who} ({counts.get(who, 0)})"
                print(f"| {shown} | {log.name} | {ms:.2f} | {found} | {plan} |")
        t0 = time.perf_counter()
        logs[0].db.execute(INDEX)
        took = time.perf_counter() - t0
        print(f"\nbuilding the index on the log as before ({logs[0].size} entries): {took:.1f} s")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
