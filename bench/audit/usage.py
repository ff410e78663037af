"""Usage reports over a grown audit trail: the report as built (``audit.usage``: one ``GROUP BY``
in the database over its ``json_extract`` fields, every measure) against the plainest grouping
the database can do (team and model, count and two token sums), same file, alternating rounds:
what the report's extra measures, its purge and scope handling cost; and against the first
version of the report (every outcome body read into Python a page at a time and parsed there);
and the transfers register (``audit.transfers``, its default grouping: two ``GROUP BY`` queries,
one of them over each body's PII actions unnested twice); and the data-subject search
(``audit.subjects``: every outcome body's ``pii.subjects`` unnested and matched against the
value's digests — one type, and every type the gateway finds, 35 digests).

    .venv/bin/python bench/audit/usage.py [--requests 100000] [--rounds 3] [--pg]

``--pg``: the same on the local PostgreSQL, in a database of its own (dropped after); the plain
``GROUP BY`` row is SQLite's only.

Fills a SQLite audit log (the gateway's schema) with ``--requests`` requests, an intent and an
outcome each (the outcome bodies as ``bench_audit.ev`` makes them, ~1.5 KB), then times a
report by team and model over the whole range. Prints seconds per report and the ratio.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from bench_audit import ev, fill, on_store

from audit.db import create_tables, open_engine
from audit.export import ExportFilter, Scope
from audit.subjects import find_subject
from audit.transfers import transfers
from audit.usage import usage

ADMIN = Scope("bench", frozenset({"admin"}))
_SQL = sa.text(
    "SELECT team, json_extract(body, '$.model') AS model, count(*), "
    "sum(decision = 'deny'), sum(coalesce(json_extract(body, '$.usage.prompt_tokens'), 0)), "
    "sum(coalesce(json_extract(body, '$.usage.completion_tokens'), 0)) "
    "FROM audit_log WHERE kind IN ('complete', 'incomplete') GROUP BY 1, 2"
)


async def in_python(engine: object) -> int:
    """The first version: bodies to Python, parsed and summed there (team, model, tokens)."""
    import msgspec

    from audit.schema import audit_log

    decode = msgspec.json.Decoder().decode
    groups: dict[tuple[object, object], list[int]] = {}
    last, c = 0, audit_log.c
    while True:
        q = (
            sa.select(c.seq, c.team, c.body)
            .where(c.kind.in_(("complete", "incomplete")), c.seq > last)
            .order_by(c.seq)
            .limit(5000)
        )
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            rows = (await conn.execute(q)).all()
        if not rows:
            break
        last = rows[-1][0]
        for _, team, raw in rows:
            body = decode(raw) if raw else {}
            g = groups.setdefault((team, body.get("model")), [0, 0, 0])
            used = body.get("usage") or {}
            g[0] += 1
            g[1] += used.get("prompt_tokens") or 0
            g[2] += used.get("completion_tokens") or 0
    return sum(g[0] for g in groups.values())


async def main() -> None:
    await on_store(run, "pcs-usage-")


async def run(url: str, requests: int, rounds: int) -> None:
    engine = open_engine(url)
    await create_tables(engine)
    pg = url.startswith("postgresql")
    took = await fill(engine, requests, ev)
    print(f"filled {requests} requests ({2 * requests} entries) in "
          f"{took:.0f} s")  # fmt: skip
    times: dict[str, list[float]] = {
        "audit.usage": [],
        "plain GROUP BY": [],
        "in Python": [],
        "audit.transfers": [],
        "audit.subjects, 1 type": [],
        "audit.subjects, 35 types": [],
    }
    if pg:
        del times["plain GROUP BY"]
    for _ in range(rounds):
        t = time.perf_counter()
        rows = await usage(engine, ExportFilter(), ADMIN, ("team", "model"))
        times["audit.usage"].append(time.perf_counter() - t)
        if not pg:
            t = time.perf_counter()
            async with engine.connect() as conn:
                sql_rows = (await conn.execute(_SQL)).all()
            times["plain GROUP BY"].append(time.perf_counter() - t)
            assert sum(r[2] for r in sql_rows) == requests
        t = time.perf_counter()
        counted = await in_python(engine)
        times["in Python"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sent = await transfers(engine, ExportFilter(), ADMIN)
        times["audit.transfers"].append(time.perf_counter() - t)
        assert sum(r.requests for r in sent) == requests
        assert sum(r.protected for r in sent) == requests  # one pseudonymised PERSON each
        person = f"{4242:016x}"  # in every 5,000th request
        others = {f"{0xFFFF0000 + n:016x}": f"TYPE_{n}" for n in range(34)}  # found nowhere
        for name, digests in (
            ("audit.subjects, 1 type", {person: "PERSON"}),
            ("audit.subjects, 35 types", {person: "PERSON", **others}),
        ):
            t = time.perf_counter()
            matches, totals = await find_subject(engine, digests, ExportFilter(), ADMIN)
            times[name].append(time.perf_counter() - t)
            assert totals["requests"] == len(matches) == requests // 5000, totals
    assert sum(r.requests for r in rows) == counted == requests
    best = {k: min(v) for k, v in times.items()}
    print(f"{'PostgreSQL' if pg else 'SQLite'}:")
    print(f"| report | best of {rounds} s | µs per request | vs audit.usage |")
    print("|---|---:|---:|---:|")
    for name, secs in best.items():
        ratio = secs / best["audit.usage"]
        print(f"| {name} | {secs:.2f} | {secs / requests * 1e6:.1f} | {ratio:.2f} |")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
