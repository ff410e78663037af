"""The console's reads of a grown audit trail: a page of entries per filter, and verifying the
whole trail beside live traffic.

    .venv/bin/python bench/audit/console.py [--requests 100000] [--rounds 3] [--pg]

Fills an audit log (the gateway's schema) with ``--requests`` requests, an intent and an outcome
each (``bench_audit.ev``; one request in a hundred denied by a rule of its own, one user in
fifty), then times ``audit.browse.browse`` (newest first, 50 a page, recorded as the route
records it) for filters that match often, rarely and never, and the oldest page.

Verification (``GET /admin/audit/verify``) is timed three ways in one run, alternating: as the
route runs it (a child ``python -m audit.verify``, awaited), on a worker thread with its own
connection and loop, and directly on the serving loop. Beside each, a heartbeat task on the serving loop ticks every
millisecond and records its worst lateness: how long a request arriving during verification
could wait for the loop. Prints seconds and the worst stall of each.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audit import ev, fill, on_store
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.browse import browse
from audit.checkpoint import Signer
from audit.db import create_tables, open_engine
from audit.export import ExportFilter, Scope
from audit.verify import verify_database, verify_in_subprocess, verify_url

ADMIN = Scope("bench", frozenset({"admin"}))
FILTERS = {
    "none (newest page)": ExportFilter(),
    "kind=complete": ExportFilter(kinds=("complete",)),
    "decision=deny (1 %)": ExportFilter(decision="deny"),
    "user=user7 (2 %)": ExportFilter(user="user7"),
    "rule=bench.deny (1 %)": ExportFilter(rule="bench.deny"),
    "rule=nowhere (no match: whole log)": ExportFilter(rule="nowhere"),
}


def _event(i: int) -> dict[str, Any]:
    e: dict[str, Any] = ev(i)
    if i % 100 == 0:
        e["decision"] = {**e["decision"], "allow": False, "rule_ids": ["bench.deny"]}
        e["decision"]["denying_rule_ids"] = ["bench.deny"]
        e["decision"]["permitted_backends"] = []
    return e


async def _stall_during(work: Any) -> tuple[float, float]:
    """(seconds ``work`` took, the heartbeat's worst lateness in ms) on this loop."""
    worst = 0.0
    done = False

    async def beat() -> None:
        nonlocal worst
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - t - 0.001)

    task = asyncio.create_task(beat())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    await work()
    took = time.perf_counter() - t0
    done = True
    await task
    return took, worst * 1000


async def run(url: str, requests: int, rounds: int) -> None:
    engine = open_engine(url)
    await create_tables(engine)
    took = await fill(engine, requests, _event)
    print(f"filled {requests} requests ({2 * requests} entries) in {took:.0f} s")
    print(f"\n| page of 50, newest first | best of {rounds} ms | rows |")
    print("|---|---:|---:|")
    for name, flt in FILTERS.items():
        best, rows = float("inf"), 0
        for _ in range(rounds):
            t = time.perf_counter()
            page = await browse(engine, flt, ADMIN, 50)
            best = min(best, time.perf_counter() - t)
            rows = len(page.entries)
        print(f"| {name} | {best * 1000:.1f} | {rows} |")
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        page = await browse(engine, ExportFilter(), ADMIN, 50, before=60)
        best = min(best, time.perf_counter() - t)
    print(f"| the oldest page (before=60) | {best * 1000:.1f} | {len(page.entries)} |")

    public = Signer.generate().public
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    plain = url
    thread: list[tuple[float, float]] = []
    on_loop: list[tuple[float, float]] = []
    process: list[tuple[float, float]] = []

    async def in_process() -> None:
        report = await verify_in_subprocess(plain, pem, None)
        assert report["entries"] >= 2 * requests, report["problems"]

    async def in_thread() -> None:
        report = await asyncio.to_thread(verify_url, plain, pem, None)
        assert report["entries"] >= 2 * requests, report["problems"]

    async def on_the_loop() -> None:
        report = await verify_database(engine, public, None)
        assert report.entries >= 2 * requests, report.problems

    for _ in range(rounds):
        thread.append(await _stall_during(in_thread))
        on_loop.append(await _stall_during(on_the_loop))
        process.append(await _stall_during(in_process))
    print(f"\n| verify {2 * requests} entries | s (best of {rounds}) | worst loop stall ms "
          "(median of rounds) |")  # fmt: skip
    print("|---|---:|---:|")
    for name, runs in (
        ("child process (python -m audit.verify)", process),
        ("worker thread", thread),
        ("on the serving loop", on_loop),
    ):
        stalls = sorted(s for _, s in runs)
        print(f"| {name} | {min(t for t, _ in runs):.2f} | {stalls[len(stalls) // 2]:.1f} |")
    await engine.dispose()


async def main() -> None:
    await on_store(run, "pcs-console-")


if __name__ == "__main__":
    asyncio.run(main())
