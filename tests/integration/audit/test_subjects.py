"""The data-subject search over the real store (SQLite and PostgreSQL): the requests whose
records hold a digest, newest first, bounded, with the types they held it under; the reader's
scope; purged records hold nothing; the read recorded without the digests."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from audit.subjects import find_subject
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
PERSON, CARD, OTHER = "a" * 16, "b" * 16, "c" * 16
N = 40


def _event(i: int) -> dict:
    """Every fourth request held PERSON (and, every eighth, the same value read as a card too);
    the answers to requests 2, 6, 10, ... brought the card (a value the prompt did not hold)."""
    subjects = sorted({OTHER, *([PERSON] if i % 4 == 0 else []), *([CARD] if i % 8 == 0 else [])})
    e = event(i)
    e["pii"] = {"counts": {"PERSON": 1}, "actions": {"PERSON": {"pseudonymise": 1}},
                "output": {"CREDIT_CARD": 1} if i % 4 == 2 else {},
                "subjects": subjects, "output_subjects": [CARD] if i % 4 == 2 else []}  # fmt: skip
    return e


async def test_the_requests_holding_a_digest_newest_first_bounded_and_scoped(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = [_event(i) for i in range(N)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))
    digests = {PERSON: "PERSON", CARD: "CREDIT_CARD"}
    held = [e for e in evs if set(digests) & {*e["pii"]["subjects"], *e["pii"]["output_subjects"]}]
    matches, totals = await find_subject(engine, digests, ExportFilter(), ADMIN)
    sent = sum(1 for e in held if e["forwarded"])
    assert totals == {"requests": len(held), "forwarded": sent, "truncated": False}
    assert [m.ts for m in matches] == sorted((m.ts for m in matches), reverse=True)
    assert {m.request_id for m in matches} == {e["request_id"] for e in held}
    assert {tuple(m.types) for m in matches} == {("CREDIT_CARD", "PERSON"), ("PERSON",), ()}
    assert {tuple(m.in_answer) for m in matches if not m.types} == {("CREDIT_CARD",)}
    # a value found only in answers: found as such, in_answer says where
    cards, totals = await find_subject(engine, {CARD: "CREDIT_CARD"}, ExportFilter(), ADMIN)
    by_id = {m.request_id: m for m in cards}
    assert (
        len(by_id) == totals["requests"] == len([i for i in range(N) if i % 8 == 0 or i % 4 == 2])
    )
    for e in evs:
        m = by_id.get(e["request_id"])
        if CARD in e["pii"]["output_subjects"]:
            assert m is not None and m.in_answer == ["CREDIT_CARD"] and m.types == []
        elif CARD in e["pii"]["subjects"]:
            assert m is not None and m.types == ["CREDIT_CARD"] and m.in_answer == []
    # bounded: the newest few, and the answer says there were more
    few, totals = await find_subject(engine, digests, ExportFilter(), ADMIN, limit=3)
    assert [m.request_id for m in few] == [m.request_id for m in matches[:3]]
    assert totals["requests"] == len(held) and totals["truncated"] is True
    # a digest nobody holds; a reader scoped to Korea; a reader without the role
    assert (await find_subject(engine, {"d" * 16: "PERSON"}, ExportFilter(), ADMIN))[1][
        "requests"
    ] == 0
    korea = Scope("kim", frozenset({"auditor"}), frozenset({"KR"}))
    scoped, _ = await find_subject(engine, digests, ExportFilter(), korea)
    assert {m.jurisdiction for m in scoped} <= {"KR"} and scoped
    with pytest.raises(AuditForbidden):
        await find_subject(engine, digests, ExportFilter(), Scope("x", frozenset({"staff"})))
    # a purged record holds no digest any more
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.kind.in_(("intent", "complete")))
            .values(body=None, purged_at="2026-12-01T00:00:00.000000Z")
        )
    gone, totals = await find_subject(engine, digests, ExportFilter(), ADMIN)
    assert gone == [] and totals["requests"] == 0
    # each search on the record, with the types, never the digests
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.kind == "export"))
        ).all()
    reads = [json.loads(r[0])["action"] for r in rows]
    assert {r["phase"] for r in reads} == {"subject"}
    assert any(r["types"] == "CREDIT_CARD+PERSON" for r in reads)
    assert not any(PERSON in json.dumps(r) or CARD in json.dumps(r) for r in reads)
