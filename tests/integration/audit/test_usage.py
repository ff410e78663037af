"""Usage reports over the real store (SQLite and PostgreSQL): the groups' counts and tokens equal
those of the events written, one per request (intents not counted twice), purged bodies counted
as such, the reader's scope applied, the read recorded."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from audit.usage import PURGED, totals, usage
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
N = 240


async def _fill(sink: DatabaseAuditSink) -> list[dict[str, object]]:
    evs = [event(i) for i in range(N)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))
    await sink.record("key", {"actor": "x", "action": {"op": "create"}})  # not a request
    return evs


async def test_groups_count_each_request_once_with_its_tokens(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = await _fill(sink)
    rows = await usage(engine, ExportFilter(), ADMIN, ("tenant", "decision"))
    got = {(r.group["tenant"], r.group["decision"]): r for r in rows}
    want: Counter[tuple[str, str]] = Counter()
    tokens: Counter[tuple[str, str]] = Counter()
    for e in evs:
        k = (e["principal"]["tenant"], "allow" if e["decision"]["allow"] else "deny")  # type: ignore[index]
        want[k] += 1
        tokens[k] += e["usage"]["prompt_tokens"]  # type: ignore[index]
    assert {k: g.requests for k, g in got.items()} == dict(want)
    assert {k: g.tokens["prompt_tokens"] for k, g in got.items()} == dict(tokens)
    for (_, decision), g in got.items():
        assert g.denied == (g.requests if decision == "deny" else 0)
        assert g.forwarded == (g.requests if decision == "allow" else 0)
        assert g.failed == 0  # a denial is a denial, not a failure
    assert totals(rows)["requests"] == N
    assert [r.requests for r in rows] == sorted((r.requests for r in rows), reverse=True)
    # one total, and the filters narrow it like an export's
    (one,) = await usage(engine, ExportFilter(), ADMIN, ())
    assert one.requests == N and one.tokens["completion_tokens"] == 7 * N
    jur = await usage(engine, ExportFilter(jurisdiction="AU"), ADMIN, ("jurisdiction",))
    assert {r.group["jurisdiction"] for r in jur} == {"AU", "AU-NSW"}
    assert sum(r.requests for r in jur) == sum(
        1
        for e in evs
        if str(e["principal"]["jurisdiction"]).startswith("AU")  # type: ignore[index]
    )


async def test_purged_bodies_keep_their_columns_and_count_as_purged(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    await _fill(sink)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.kind == "complete", audit_log.c.user_id == "user3")
            .values(body=None, purged_at="2026-12-01T00:00:00.000000Z")
        )
    rows = await usage(engine, ExportFilter(user="user3"), ADMIN, ("user", "model"))
    assert [(r.group["model"], r.purged) for r in rows] == [(PURGED, rows[0].requests)]
    assert rows[0].tokens["prompt_tokens"] == 0 and rows[0].group["user"] == "user3"


async def test_the_readers_scope_applies_and_the_read_is_recorded(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    await _fill(sink)
    kr = Scope("aud-kr", frozenset({"auditor"}), frozenset({"KR"}))
    rows = await usage(engine, ExportFilter(), kr, ("jurisdiction",))
    assert [r.group["jurisdiction"] for r in rows] == ["KR"]
    with pytest.raises(AuditForbidden):
        await usage(engine, ExportFilter(), Scope("u", frozenset({"user"})), ("team",))
    with pytest.raises(ValueError, match="by"):
        await usage(engine, ExportFilter(), ADMIN, ("colour",))
    async with engine.connect() as conn:
        actors = (
            (await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.kind == "export")))
            .scalars()
            .all()
        )
    assert len(actors) == 1 and '"aud-kr"' in actors[0] and '"usage"' in actors[0]


async def test_a_request_whose_process_died_counts_as_failed(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    from audit.store import append, make_entry, prepare

    died = event(1, status=None, error_code="incomplete", usage={})
    async with engine.connect() as conn:
        await prepare(conn)
        await append(conn, [make_entry("intent", died, "w:1:1")])
        await append(conn, [make_entry("incomplete", died, "recovery:1:1")])
    (only,) = await usage(engine, ExportFilter(), ADMIN, ())
    assert (only.requests, only.failed, only.denied) == (1, 1, 0)
