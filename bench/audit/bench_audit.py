"""Audit trail benchmark: sustained write throughput, write-ahead intent latency (group commit
against one commit per intent), and verification speed, on SQLite and PostgreSQL.

usage: .venv/bin/python bench/audit/bench_audit.py [--events N] [--verify-events N] [--pg URL]
Prints markdown tables (copy them into docs/benchmarks/audit.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.db import create_tables, open_engine
from audit.schema import metadata
from audit.sink import DatabaseAuditSink
from audit.store import append, make_entry
from audit.verify import verify_database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def ev(i: int) -> dict[str, Any]:
    return {
        "request_id": f"bench-{i:09d}",
        "endpoint": "chat",
        "principal": {
            "key_id": "k1",
            "user": f"user{i % 50}",
            "team": "t",
            "tenant": "acme",
            "jurisdiction": "AU-NSW",
            "sector": "government",
            "roles": [],
            "tags": [],
        },
        "model": "deepseek-chat",
        "backend": {
            "id": "ds-syd",
            "operator": "self",
            "hosting_country": "AU",
            "self_hosted": True,
        },
        "decision": {
            "allow": True,
            "permitted_backends": ["ds-syd"],
            "rule_ids": ["base.allow"],
            "denying_rule_ids": [],
            "citation_ids": [],
            "obligations": {"retention_class": "default"},
        },
        "bundle_revision": "rev-1",
        "config_hash": "c0ffee",
        "decision_input": {
            "version": "1",
            "phase": "final",
            "now": "2026-11-29T00:00:00Z",
            "principal": {"user": f"user{i % 50}", "jurisdiction": "AU-NSW"},
            "request": {
                "endpoint": "chat",
                "model": "deepseek-chat",
                "stream": False,
                "tools": False,
            },
            "backends": [{"id": "ds-syd"}],
            "pii": {"entities": {"PERSON": 1}},
            "deployment": {},
        },
        "pii": {
            "counts": {"PERSON": 1},
            "actions": {"PERSON": {"pseudonymise": 1}},
            # the person's subject digest: 5,000 people, each in every 5,000th request
            "subjects": [f"{i % 5000:016x}"],
        },
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
        "latency_ms": {"total": 10.0, "upstream": 9.0},
        "status": 200,
        "error_code": None,
        "client_address": "127.0.0.1",
        "digests": {"key_id": "s1", "prompt": "ab" * 32, "answer": "cd" * 32},
        "forwarded": True,
    }


async def fill(
    engine: AsyncEngine, requests: int, event: Callable[[int], dict[str, Any]] = ev
) -> float:
    """Append ``requests`` requests (an intent and an outcome each, ``event(i)``) in batches of
    2,000; the seconds it took."""
    from audit.store import prepare

    t0 = time.perf_counter()
    for start in range(0, requests, 2000):
        batch = [event(i) for i in range(start, min(requests, start + 2000))]
        entries = [make_entry(k, e, "bench:0:0") for e in batch for k in ("intent", "complete")]
        async with engine.connect() as conn:
            await prepare(conn)
            await append(conn, entries)
    return time.perf_counter() - t0


async def on_store(run: Callable[[str, int, int], Awaitable[None]], prefix: str) -> None:
    """The benches' command line (``--requests``, ``--rounds``, ``--pg``): ``run(url, requests,
    rounds)`` on a fresh SQLite file, or with ``--pg`` in a PostgreSQL database of its own,
    dropped after."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", action="store_true")
    a = ap.parse_args()
    if a.pg:
        from tests.support.services import create_pg_database

        url = await asyncio.to_thread(create_pg_database)
    else:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix=prefix)) / 'audit.db'}"
    try:
        await run(url, a.requests, a.rounds)
    finally:
        if a.pg:
            from tests.support.services import drop_pg_database

            await asyncio.to_thread(drop_pg_database, url)


async def fresh(url: str) -> AsyncEngine:
    engine = open_engine(url, pool_size=8)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await create_tables(engine)
    return engine


async def bench_sink(engine: AsyncEngine, **options: Any) -> DatabaseAuditSink:
    """A started sink on ``engine`` for a benchmark: throw-away signing key, no checkpoints."""
    sink = DatabaseAuditSink(
        engine,
        Signer.generate(),
        None,
        deadline_s=30,
        checkpoint_interval_s=3600,
        owns_engine=False,
        **options,
    )
    await sink.start()
    return sink


async def throughput(url: str, n: int, batch: int) -> tuple[float, float]:
    """(events/s appending pre-built entries in batches, events/s through the sink end to end)."""
    engine = await fresh(url)
    entries = [make_entry("complete", ev(i), "bench:0:0") for i in range(n)]
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        for k in range(0, n, batch):
            await append(conn, entries[k : k + batch])
    raw = n / (time.perf_counter() - t0)
    sink = await bench_sink(engine, max_batch=batch)

    async def worker(w: int) -> None:  # 512 request loops, each waiting for its intent
        for i in range(w, n, 512):
            await sink.intent(ev(n + i))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(512)))
    end_to_end = n / (time.perf_counter() - t0)
    await sink.close()
    await engine.dispose()
    return raw, end_to_end


async def latency(url: str, concurrency: int, per_worker: int, group: bool) -> list[float]:
    """Per-intent added latency (ms) with ``concurrency`` request loops.

    group=True: the sink (group commit). group=False: one transaction per intent (the naive
    write-ahead a gateway without batching would do), same append code.
    """
    engine = await fresh(url)
    samples: list[float] = []
    if group:
        sink = await bench_sink(engine)

        async def worker(w: int) -> None:
            for i in range(per_worker):
                t = time.perf_counter()
                await sink.intent(ev(w * per_worker + i))
                samples.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        await sink.close()
    else:

        async def naive(w: int) -> None:
            for i in range(per_worker):
                t = time.perf_counter()
                entry = make_entry("intent", ev(w * per_worker + i), "bench:0:0")
                async with engine.connect() as conn:
                    await append(conn, [entry])
                samples.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(naive(w) for w in range(concurrency)))
    await engine.dispose()
    return samples


async def verify_speed(url: str, n: int) -> tuple[float, float]:
    engine = await fresh(url)
    signer = Signer.generate()
    entries = [make_entry("complete", ev(i), "bench:0:0") for i in range(min(n, 20000))]
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        for k in range(0, n, 5000):
            chunk = [entries[(k + j) % len(entries)] for j in range(min(5000, n - k))]
            await append(conn, chunk)
    fill = time.perf_counter() - t0
    from audit.checkpoint import take_checkpoint

    await take_checkpoint(engine, signer, None)
    t0 = time.perf_counter()
    report = await verify_database(engine, signer.public, None)
    took = time.perf_counter() - t0
    assert report.ok and report.entries == n, report.problems
    await engine.dispose()
    return fill, took


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def pg_database() -> tuple[str, str]:
    name = "portcullis_bench_audit"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--verify-events", type=int, default=200000)
    ap.add_argument("--latency-intents", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    name, pg = await pg_database()
    dbs = {
        "SQLite (WAL, synchronous=FULL)": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "PostgreSQL 127.0.0.1": pg,
    }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"# audit benchmark, commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    try:
        print(f"## Sustained throughput ({args.events} events)\n")
        print(
            "| database | batched append (events/s) | through the sink, 512 in flight (events/s) |"
        )
        print("| --- | ---: | ---: |")
        for label, url in dbs.items():
            if url.startswith("sqlite"):
                (tmp / "bench.db").unlink(missing_ok=True)
            raw, e2e = await throughput(url, args.events, 2000)
            print(f"| {label} | {raw:,.0f} | {e2e:,.0f} |")
        print("\n## Write-ahead intent latency (ms), group commit vs one commit per intent\n")
        print(
            "| database | concurrency | mode | p50 | p90 | p99 | intents/s | p50 ratio naive/group |"
        )
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for label, url in dbs.items():
            for conc in (1, 16, 64):
                per = max(20, args.latency_intents // conc)
                res = {}
                for group in (True, False):
                    t0 = time.perf_counter()
                    s = await latency(url, conc, per, group)
                    rate = len(s) / (time.perf_counter() - t0)
                    res[group] = (s, rate)
                for group in (True, False):
                    s, rate = res[group]
                    ratio = statistics.median(res[False][0]) / statistics.median(res[True][0])
                    mode = "group commit" if group else "commit per intent"
                    print(
                        f"| {label} | {conc} | {mode} | {pct(s, 50):.3f} | {pct(s, 90):.3f} | "
                        f"{pct(s, 99):.3f} | {rate:,.0f} | {ratio:.2f} |"
                    )
        print(f"\n## Verification ({args.verify_events} entries, full recomputation + proofs)\n")
        print("| database | fill (s) | verify (s) | entries/s | projected 1M (s) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, url in dbs.items():
            if url.startswith("sqlite"):
                (tmp / "bench.db").unlink(missing_ok=True)
            fill, took = await verify_speed(url, args.verify_events)
            rate = args.verify_events / took
            print(f"| {label} | {fill:.1f} | {took:.2f} | {rate:,.0f} | {1e6 / rate:.1f} |")
    finally:
        await drop(name)


if __name__ == "__main__":
    asyncio.run(main())
