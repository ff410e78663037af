"""The audit trail partitioned by month (``audit.partitions``) against one plain table, on the
local PostgreSQL, same rows, alternating rounds: what partitioning costs the appends and what it
gives the reports over a period.

    .venv/bin/python bench/audit/partitions.py [--requests 120000] [--rounds 3]

Two databases of their own (dropped after): one with ``audit_log`` as one table, one partitioned
as the migration leaves it, with 2027's months created. Each is filled with ``--requests``
requests (an intent and an outcome each, ``bench_audit.ev``'s ~1.5 KB bodies) spread evenly over
the twelve months of 2027, in batches of 2,000 (COPY), the two fills alternating batch by batch.
Then, alternating, per round: 400 appends of 24 entries (the batch a gateway's group commit
makes at c=16), a usage report by team and model over one month (June), the same over the
whole year, and a data-subject search over June. Prints each side's time and the ratio
partitioned / plain (below 1: partitioned is faster).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audit import ev
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.db import create_tables, open_engine
from audit.export import ExportFilter, Scope, utc_text
from audit.partitions import ensure_partitions
from audit.schema import metadata
from audit.store import append, make_entry, prepare
from audit.subjects import find_subject
from audit.usage import usage

ADMIN = Scope("bench", frozenset({"admin"}))
JUNE = ExportFilter(since=utc_text("2027-06-01"), until=utc_text("2027-07-01"))


def dated(i: int, requests: int) -> dict[str, Any]:
    """``ev(i)`` at its place in 2027: request i of n falls in month 1 + 12 i / n."""
    e: dict[str, Any] = ev(i)
    month = 1 + 12 * i // requests
    e["ts"] = f"2027-{month:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i % 1000000:06d}Z"
    e["pii"] = {**(e.get("pii") or {}), "subjects": [f"{i:016x}"]}
    return e


async def plain(url: str) -> AsyncEngine:
    engine = open_engine(url, pool_size=4)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with engine.connect() as conn:
        await prepare(conn)
    return engine


async def partitioned(url: str) -> AsyncEngine:
    engine = open_engine(url, pool_size=4)
    await create_tables(engine)
    async with engine.connect() as conn:
        await ensure_partitions(conn, datetime(2027, 12, 1, tzinfo=UTC), ahead=0)
    return engine


async def batch(engine: AsyncEngine, events: list[dict[str, Any]]) -> float:
    entries = [make_entry(k, e, "bench:0:0") for e in events for k in ("intent", "complete")]
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        await append(conn, entries)
    return time.perf_counter() - t0


async def timed(call: Any) -> float:
    t0 = time.perf_counter()
    await call
    return time.perf_counter() - t0


async def run(requests: int, rounds: int) -> None:
    from tests.support.services import create_pg_database, drop_pg_database

    urls = [await asyncio.to_thread(create_pg_database) for _ in range(2)]
    try:
        engines = {"plain": await plain(urls[0]), "partitioned": await partitioned(urls[1])}
        fill = dict.fromkeys(engines, 0.0)
        for start in range(0, requests, 2000):
            events = [dated(i, requests) for i in range(start, min(requests, start + 2000))]
            for name, engine in engines.items():
                fill[name] += await batch(engine, events)
        print(f"filled {requests} requests ({2 * requests} entries) over 2027")
        times: dict[str, dict[str, list[float]]] = {
            "append 24 entries (x400)": {n: [] for n in engines},
            "usage report, June": {n: [] for n in engines},
            "usage report, the year": {n: [] for n in engines},
            "data-subject search, June": {n: [] for n in engines},
        }
        n = requests
        for r in range(rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for name in order:
                engine = engines[name]
                spent = 0.0
                recent = [dated(n - 12 + j, n) for j in range(12)]  # December's
                for _ in range(400):  # 12 requests: 24 entries a batch
                    spent += await batch(engine, recent)
                times["append 24 entries (x400)"][name].append(spent)
                times["usage report, June"][name].append(
                    await timed(usage(engine, JUNE, ADMIN, ("team", "model")))
                )
                times["usage report, the year"][name].append(
                    await timed(usage(engine, ExportFilter(), ADMIN, ("team", "model")))
                )
                digest = {f"{n // 2 + 1:016x}": "PERSON"}
                times["data-subject search, June"][name].append(
                    await timed(find_subject(engine, digest, JUNE, ADMIN))
                )
        print()
        print("| what | plain table, s | partitioned by month, s | partitioned / plain |")
        print("| --- | ---: | ---: | ---: |")
        print(
            f"| fill, {2 * requests} entries in batches of 4,000 (COPY) | {fill['plain']:.2f} "
            f"| {fill['partitioned']:.2f} | {fill['partitioned'] / fill['plain']:.2f} |"
        )
        for what, by in times.items():
            a, b = statistics.median(by["plain"]), statistics.median(by["partitioned"])
            print(f"| {what} (median of {rounds}) | {a:.3f} | {b:.3f} | {b / a:.2f} |")
        for engine in engines.values():
            await engine.dispose()
    finally:
        for url in urls:
            await asyncio.to_thread(drop_pg_database, url)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=120_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    asyncio.run(run(a.requests, a.rounds))


if __name__ == "__main__":
    main()
