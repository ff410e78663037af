"""Write-ahead durability: store outages fail closed and heal, crashes leave a verifiable log
with every forwarded request's intent, recovery marks orphans, two processes share one history."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer, take_checkpoint
from audit.schema import audit_log
from audit.sink import AuditUnavailable, DatabaseAuditSink
from audit.store import append, make_entry
from audit.verify import verify_database
from tests.integration.audit.conftest import PYTHON, REPO, event, python_env

pytestmark = pytest.mark.integration

WRITER = str(REPO / "tests" / "integration" / "audit" / "writer_proc.py")


async def _hold_write_lock(
    engine: AsyncEngine, url: str, held: asyncio.Event, release: asyncio.Event
) -> None:
    """Make the store unable to take writes: hold the lock every append needs."""
    async with engine.connect() as conn:
        if url.startswith("sqlite"):
            await conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            await conn.begin()
            await conn.exec_driver_sql("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE")
        held.set()
        await release.wait()
        await conn.rollback()


async def test_unavailable_store_fails_intents_within_deadline_and_heals(
    engine: AsyncEngine, database_url: str, signer: Signer, cp_dir: Path
) -> None:
    sink = DatabaseAuditSink(engine, signer, cp_dir, deadline_s=0.3, owns_engine=False)
    await sink.start()
    try:
        await sink.intent(event(1))
        assert await sink.ready()
        held, release = asyncio.Event(), asyncio.Event()
        locker = asyncio.create_task(_hold_write_lock(engine, database_url, held, release))
        await held.wait()
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(sink.intent(event(i)) for i in range(2, 22)), return_exceptions=True
        )
        assert all(isinstance(r, AuditUnavailable) for r in results)
        assert time.perf_counter() - t0 < 2.0  # the deadline, not the lock timeout
        assert not await sink.ready()
        release.set()
        await locker
        for _ in range(100):  # heals without a restart
            if await sink.ready():
                break
            await asyncio.sleep(0.1)
        assert await sink.ready()
        await sink.intent(event(99))
    finally:
        await sink.close()
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok, report.problems


async def test_recovery_marks_orphaned_intents_incomplete(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> None:
    dead = "somehost-not-this:1:dead"
    async with engine.connect() as conn:
        await append(
            conn,
            [
                make_entry(
                    "intent", event(1, ts="2020-01-01T00:00:00.000000Z"), dead
                ),  # old: orphan
                make_entry("intent", event(2, ts="2020-01-01T00:00:00.000000Z"), dead),
                make_entry("complete", event(2), dead),  # completed: not an orphan
            ],
        )
    sink = DatabaseAuditSink(
        engine, signer, cp_dir, recovery_window_h=24 * 365 * 10, owns_engine=False
    )
    await sink.start()
    await sink.intent(event(3))  # live request of the running sink: untouched
    await sink.close()
    assert sink.recovered == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log.c.request_id, audit_log.c.kind).order_by(audit_log.c.seq)
            )
        ).all()
    assert [tuple(r) for r in rows if r.kind == "incomplete"] == [("req-000001", "incomplete")]


async def test_kill_at_random_points_leaves_a_verifiable_log_with_every_forwarded_intent(
    engine: AsyncEngine, database_url: str, key_file: Path, signer: Signer, cp_dir: Path
) -> None:
    rng = random.Random(5)
    forwarded: set[str] = set()
    for round_ in range(3):
        proc = subprocess.Popen(
            [PYTHON, WRITER, database_url, "100000", f"crash{round_}", str(key_file), "--complete"],
            stdout=subprocess.PIPE,
            text=True,
            env=python_env(),
            cwd=REPO,
        )
        assert proc.stdout is not None
        wanted = rng.randint(50, 800)
        seen = 0
        for line in proc.stdout:
            if line.startswith("forwarded "):
                forwarded.add(line.split()[1])
                seen += 1
                if seen >= wanted:
                    break
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        forwarded.update(x.split()[1] for x in rest.splitlines() if x.startswith("forwarded "))
    async with engine.connect() as conn:
        intents = set(
            (
                await conn.execute(
                    sa.select(audit_log.c.request_id).where(audit_log.c.kind == "intent")
                )
            ).scalars()
        )
    assert forwarded <= intents  # no audit, no forward
    sink = DatabaseAuditSink(engine, signer, cp_dir, recovery_grace_s=1, owns_engine=False)
    await asyncio.sleep(1.1)
    await sink.start()
    await sink.checkpoint()
    await sink.close()
    assert sink.recovered > 0
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok, report.problems
    async with engine.connect() as conn:
        open_ = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM audit_log a WHERE kind='intent' AND NOT EXISTS (SELECT 1 FROM "
                    "audit_log b WHERE b.request_id=a.request_id AND b.kind IN ('complete','incomplete'))"
                )
            )
        ).scalar_one()
    assert open_ == 0


async def test_two_writer_processes_keep_one_history(
    engine: AsyncEngine, database_url: str, key_file: Path, signer: Signer, cp_dir: Path
) -> None:
    Signer.from_file(key_file)
    procs = [
        subprocess.Popen(
            [PYTHON, WRITER, database_url, "1500", f"p{k}", str(key_file), "--complete"],
            stdout=subprocess.DEVNULL,
            env=python_env(),
            cwd=REPO,
        )
        for k in range(2)
    ]
    # Checkpoints signed while both write (reliability I-3): each over the head of that moment.
    sizes: list[int] = []

    async def checkpoints() -> None:
        while any(p.poll() is None for p in procs):
            cp = await take_checkpoint(engine, signer, cp_dir)
            if cp is not None and (not sizes or cp.tree_size > sizes[-1]):
                sizes.append(cp.tree_size)
            await asyncio.sleep(0.1)

    waited = asyncio.gather(*(asyncio.to_thread(p.wait, 240) for p in procs))
    await checkpoints()
    assert await waited == [0, 0]
    assert len([n for n in sizes if n < 6000]) >= 3, sizes  # taken mid-run, growing
    async with engine.connect() as conn:
        seqs = (
            (await conn.execute(sa.select(audit_log.c.seq).order_by(audit_log.c.seq)))
            .scalars()
            .all()
        )
        writers = (
            await conn.execute(sa.select(sa.func.count(sa.distinct(audit_log.c.writer))))
        ).scalar_one()
    assert seqs == list(range(1, 6001))
    assert writers == 2
    sink = DatabaseAuditSink(engine, signer, cp_dir, owns_engine=False)
    await sink.start()
    await sink.close()  # takes the closing checkpoint
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok and report.last_checkpoint == 6000, report.problems
    # every checkpoint's root recomputed from the log, and consistency proved between the last
    # consecutive ones and from the first to the last (audit.verify)
    assert report.checkpoints >= len({*sizes, 6000}) and report.proofs >= 4, report
    assert json.loads((sorted(cp_dir.glob("*.json"))[-1]).read_text())["tree_size"] == 6000


def _lingering(
    engine: AsyncEngine, signer: Signer, cp_dir: Path, linger_s: float, **kw: Any
) -> DatabaseAuditSink:
    return DatabaseAuditSink(
        engine,
        signer,
        cp_dir,
        completion_linger_s=linger_s,
        checkpoint_interval_s=3600,
        owns_engine=False,
        **kw,
    )


async def test_a_completion_lingers_for_the_next_intent_and_shares_its_commit(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> None:
    sink = _lingering(engine, signer, cp_dir, 5.0)
    await sink.start()
    try:
        await sink.intent(event(1))
        commits = sink._writer.batches
        done = asyncio.create_task(sink.complete(event(1)))
        await asyncio.sleep(0.2)
        assert not done.done()  # only a completion is queued: the writer waits
        t0 = time.perf_counter()
        await asyncio.wait_for(sink.intent(event(2)), 2)  # an intent is never held back
        await asyncio.wait_for(done, 2)
        assert time.perf_counter() - t0 < 2
        assert sink._writer.batches == commits + 1  # one durable commit for both
        async with engine.connect() as conn:
            kinds = (await conn.execute(sa.select(audit_log.c.kind))).scalars().all()
        assert sorted(kinds) == ["complete", "intent", "intent"]
    finally:
        await sink.close()


async def test_a_lingering_completion_is_written_at_the_linger_and_at_close(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> None:
    sink = _lingering(engine, signer, cp_dir, 0.1)
    await sink.start()
    await sink.intent(event(1))
    t0 = time.perf_counter()
    await asyncio.wait_for(sink.complete(event(1)), 2)
    assert 0.09 <= time.perf_counter() - t0 < 2  # waited for an intent that did not come
    slow = _lingering(engine, signer, cp_dir, 30)
    await sink.close()
    await slow.start()
    pending = asyncio.create_task(slow.complete(event(2)))
    await asyncio.sleep(0.1)
    t0 = time.perf_counter()
    await slow.close()  # flushes what is queued without waiting out the linger
    await asyncio.wait_for(pending, 2)
    assert time.perf_counter() - t0 < 5
    async with engine.connect() as conn:
        n = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
    assert n >= 3


async def test_lingering_completions_wake_the_writer_only_at_the_linger_or_a_full_batch(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> None:
    sink = _lingering(engine, signer, cp_dir, 30, max_batch=3)
    await sink.start()
    try:
        await sink.intent(event(1))
        commits = sink._writer.batches
        first = [asyncio.create_task(sink.complete(event(i))) for i in (1, 2)]
        await asyncio.sleep(0.2)
        assert sink._writer.batches == commits and not any(t.done() for t in first)
        third = asyncio.create_task(sink.complete(event(3)))  # the batch is full: no lingering
        await asyncio.wait_for(asyncio.gather(*first, third), 2)
        assert sink._writer.batches == commits + 1
    finally:
        await sink.close()


async def test_after_an_outage_a_waiting_intent_is_written_before_the_backlog(
    tmp_path: Path,
) -> None:
    """The store stops answering (SQLite's write lock held elsewhere) while requests keep
    coming: their records queue past a batch. When it answers again, the write-ahead intent a
    request still waits on goes in the first batch, not behind the backlog; the backlog follows
    in its order, every entry written once."""
    import sqlite3

    from audit.db import create_tables, open_engine
    from audit.writer import AuditDeadline, BatchWriter

    db = tmp_path / "audit.db"
    engine = open_engine(f"sqlite+aiosqlite:///{db}")
    await create_tables(engine)
    writer = BatchWriter(engine, max_batch=100)
    writer.start()
    try:
        await writer.submit(make_entry("intent", event(0), "w:0:0"))  # connected
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the store stops taking writes
        stuck = writer.submit(make_entry("intent", event(1), "w:0:0"))
        await asyncio.sleep(0.2)  # the writer is inside that commit, waiting for the lock
        backlog = [
            writer.submit(make_entry("complete", event(i), "w:0:0"), urgent=False)
            for i in range(2, 400)
        ]
        refused = [
            writer.submit(make_entry("intent", event(i), "w:0:0"), within_s=0.01)
            for i in range(400, 420)
        ]
        await asyncio.sleep(0.1)  # their deadlines pass: those requests were refused
        live = writer.submit(make_entry("intent", event(999), "w:0:0"))
        blocker.execute("COMMIT")  # the store answers again
        blocker.close()
        first = await stuck
        seq = await asyncio.wait_for(live, 10)
        assert seq == first + 1, (first, seq)  # first in the first batch after the outage
        written = await asyncio.gather(*backlog)
        assert written == sorted(written)  # the backlog in its order
        for fut in refused:
            with pytest.raises(AuditDeadline):
                await fut
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
        assert rows == 1 + 1 + 398 + 20 + 1  # each entry once, the refused requests' included
    finally:
        await writer.close()
        await engine.dispose()
