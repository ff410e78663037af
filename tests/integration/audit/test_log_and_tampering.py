"""The log on SQLite and PostgreSQL: one gap-free history, verified; every kind of tampering
with the stored trail is caught by ``verify``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.merkle import Frontier, leaf_hash
from audit.schema import audit_checkpoints, audit_head, audit_log
from audit.sink import DatabaseAuditSink
from audit.verify import verify_database
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration


async def _fill(sink: DatabaseAuditSink, n: int) -> None:
    await asyncio.gather(*(sink.intent(event(i)) for i in range(n)))
    await asyncio.gather(*(sink.complete(event(i)) for i in range(n)))


async def test_concurrent_intents_form_one_verified_history(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    await _fill(sink, 300)
    cp = await sink.checkpoint()
    assert cp is not None and cp.tree_size == 600
    async with engine.connect() as conn:
        seqs = (
            (await conn.execute(sa.select(audit_log.c.seq).order_by(audit_log.c.seq)))
            .scalars()
            .all()
        )
    assert seqs == list(range(1, 601))
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok, report.problems
    assert report.entries == 600 and report.last_checkpoint == 600 and report.proofs > 0
    assert (cp_dir / "checkpoint-000000000000600.json").exists()


Tamper = Callable[[AsyncEngine], Awaitable[None]]


async def _edit_body(engine: AsyncEngine, recompute: bool) -> None:
    async with engine.begin() as conn:
        body = (
            await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.seq == 50))
        ).scalar_one()
        edited = body.replace('"allow":false', '"allow":true').replace(
            '"status":403', '"status":200'
        )
        if edited == body:
            edited = body.replace('"user":"user', '"user":"xuser')
        values: dict[str, object] = {"body": edited}
        if recompute:
            values["leaf_hash"] = leaf_hash(edited.encode())
        await conn.execute(sa.update(audit_log).where(audit_log.c.seq == 50).values(**values))


async def _delete_middle(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 77))


async def _delete_and_renumber(engine: AsyncEngine) -> None:
    """Delete one entry and shift the later ones down, so the sequence has no gap."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 77))
        rows = (
            (
                await conn.execute(
                    sa.select(audit_log.c.seq).where(audit_log.c.seq > 77).order_by(audit_log.c.seq)
                )
            )
            .scalars()
            .all()
        )
        for s in rows:
            await conn.execute(sa.update(audit_log).where(audit_log.c.seq == s).values(seq=s - 1))


async def _swap(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        a = (await conn.execute(sa.select(audit_log).where(audit_log.c.seq == 10))).one()._asdict()
        b = (await conn.execute(sa.select(audit_log).where(audit_log.c.seq == 11))).one()._asdict()
        for row, seq in ((a, 11), (b, 10)):
            row.pop("seq")
            await conn.execute(sa.update(audit_log).where(audit_log.c.seq == seq).values(**row))


async def _truncate_tail(engine: AsyncEngine) -> None:
    """A capable attacker: drop the tail and rewrite the head consistently."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(audit_log).where(audit_log.c.seq > 180))
        leaves = (
            (await conn.execute(sa.select(audit_log.c.leaf_hash).order_by(audit_log.c.seq)))
            .scalars()
            .all()
        )
        f = Frontier()
        f.extend(bytes(x) for x in leaves)
        await conn.execute(sa.update(audit_head).values(size=180, frontier=f.to_bytes()))


async def _truncate_tail_and_checkpoints(engine: AsyncEngine) -> None:
    """Also delete the checkpoints in the database: the files outside it still catch it."""
    await _truncate_tail(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.delete(audit_checkpoints))


async def _insert(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        row = (await conn.execute(sa.select(audit_log).where(audit_log.c.seq == 5))).one()._asdict()
        rows = (
            (
                await conn.execute(
                    sa.select(audit_log.c.seq)
                    .where(audit_log.c.seq >= 5)
                    .order_by(audit_log.c.seq.desc())
                )
            )
            .scalars()
            .all()
        )
        for s in rows:
            await conn.execute(sa.update(audit_log).where(audit_log.c.seq == s).values(seq=s + 1))
        row["body"] = row["body"].replace("req-", "fake-")
        row["leaf_hash"] = leaf_hash(row["body"].encode())
        await conn.execute(sa.insert(audit_log).values(**row))


async def _forge_checkpoint(engine: AsyncEngine) -> None:
    """Rewrite an entry, recompute the leaf and re-sign with another key."""
    await _edit_body(engine, recompute=True)
    other = Signer.generate()
    async with engine.begin() as conn:
        await conn.execute(sa.delete(audit_checkpoints))
        cp = other.sign(200, b"\x00" * 32)
        await conn.execute(
            sa.insert(audit_checkpoints).values(
                tree_size=cp.tree_size,
                root_hash=cp.root_hash,
                ts=cp.ts,
                key_id=cp.key_id,
                signature=cp.signature,
            )
        )


TAMPERING: dict[str, tuple[Tamper, str]] = {
    "edit": (lambda e: _edit_body(e, recompute=False), "does not match its leaf hash"),
    "edit_with_recomputed_leaf": (lambda e: _edit_body(e, recompute=True), "root at checkpoint"),
    "delete_in_the_middle": (_delete_middle, "sequence jumps"),
    "delete_and_renumber": (_delete_and_renumber, "tail truncated"),
    "swap_two_entries": (_swap, "root at checkpoint"),
    "truncate_tail": (_truncate_tail, "tail truncated"),
    "truncate_tail_and_db_checkpoints": (_truncate_tail_and_checkpoints, "tail truncated"),
    "insert_edited_copy": (_insert, "root at checkpoint"),
    "forged_checkpoint": (_forge_checkpoint, "signed by another key"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_verify_catches_tampering(
    case: str, engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    await _fill(sink, 100)
    assert (await sink.checkpoint()).tree_size == 200  # type: ignore[union-attr]
    assert (await verify_database(engine, signer.public, cp_dir)).ok
    tamper, expected = TAMPERING[case]
    await tamper(engine)
    report = await verify_database(engine, signer.public, cp_dir)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


async def test_entries_after_the_last_checkpoint_are_reported_unanchored(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    await _fill(sink, 10)
    await sink.checkpoint()
    await sink.intent(event(99))
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok and report.unanchored == 1 and report.entries == 21
