"""Appending with a known head (the one-call SQLite path) and with a stale one (the locking path)
gives one gapless history whose stored frontier matches its entries, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.merkle import Frontier
from audit.schema import audit_log
from audit.store import Head, append, make_entry, read_head
from tests.integration.audit.conftest import event


async def test_known_and_stale_heads_append_consecutively_with_a_matching_frontier(
    engine: AsyncEngine,
) -> None:
    entries = [make_entry("intent", event(i), "w:1:a") for i in range(7)]
    async with engine.connect() as conn:
        head = await read_head(conn)
        await conn.commit()
        assert head.size == 0
        first = await append(conn, entries[:3], head)  # known head: fast path on SQLite
        assert first == 1
        known = Head(3, head.frontier.copy())
        for e in entries[:3]:
            known.frontier.append(e.leaf)
        assert await append(conn, entries[3:5], known) == 4
        stale = Head(3, known.frontier)  # another writer moved on: the locking path
        assert await append(conn, entries[5:], stale) == 6
        stored = await read_head(conn)
        rows = (
            await conn.execute(sa.select(audit_log.c.seq, audit_log.c.leaf_hash).order_by("seq"))
        ).all()
        await conn.commit()
    assert [r.seq for r in rows] == list(range(1, 8))
    assert [bytes(r.leaf_hash) for r in rows] == [e.leaf for e in entries]
    expected = Frontier()
    for e in entries:
        expected.append(e.leaf)
    assert stored.size == 7
    assert stored.frontier.to_bytes() == expected.to_bytes()
