"""The console's reads over the real store (SQLite and PostgreSQL): pages of entries newest
first that walk the whole filtered log without a gap or a repeat, scoped to the reader and
recorded; verification in a child process (``audit.verify.verify_in_subprocess``) that finds an
edited entry, with the database URL (and its password) kept off the child's command line."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.browse import browse
from audit.checkpoint import Signer
from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from audit.verify import verify_in_subprocess
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
N = 60


async def _fill(sink: DatabaseAuditSink) -> None:
    evs = [event(i) for i in range(N)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))


async def test_pages_walk_the_filtered_log_newest_first_once_each(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    await _fill(sink)
    flt = ExportFilter(kinds=("complete",), decision="deny")
    seen: list[int] = []
    before = None
    while True:
        page = await browse(engine, flt, ADMIN, 7, before)
        seen += [e["seq"] for e in page.entries]
        assert all(e["kind"] == "complete" and e["decision"] == "deny" for e in page.entries)
        if page.next_before is None:
            break
        before = page.next_before
    async with engine.connect() as conn:
        want = (
            (
                await conn.execute(
                    sa.select(audit_log.c.seq)
                    .where(audit_log.c.kind == "complete", audit_log.c.decision == "deny")
                    .order_by(audit_log.c.seq.desc())
                )
            )
            .scalars()
            .all()
        )
    assert seen == list(want) and len(seen) == N // 3
    # each page read is recorded with its filter and the reader
    reads = await browse(engine, ExportFilter(kinds=("export",)), ADMIN, 500)
    assert len(reads.entries) == -(-len(seen) // 7)  # the pages above (this read: after it)
    action = reads.entries[0]["entry"]["action"]
    assert (action["phase"], action["filter_decision"], action["scope"]) == (
        "browse",
        "deny",
        "all",
    )


async def test_a_reader_sees_its_scope_only_and_needs_an_export_role(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    await _fill(sink)
    kr = Scope("aud-kr", frozenset({"auditor"}), frozenset({"KR"}))
    page = await browse(engine, ExportFilter(kinds=("complete",)), kr, 500)
    assert page.entries and {e["jurisdiction"] for e in page.entries} == {"KR"}
    au = Scope("aud-au", frozenset({"auditor"}), frozenset({"AU"}))
    page = await browse(engine, ExportFilter(kinds=("complete",)), au, 500)
    assert {e["jurisdiction"] for e in page.entries} == {"AU", "AU-NSW"}
    with pytest.raises(AuditForbidden):
        await browse(engine, ExportFilter(), Scope("staff", frozenset({"user"})), 10)
    with pytest.raises(ValueError, match="limit"):
        await browse(engine, ExportFilter(), ADMIN, 501)


async def test_verification_in_a_child_process_finds_an_edit(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, database_url: str
) -> None:
    await _fill(sink)
    await sink.checkpoint()
    pem = signer.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    url = engine.url.render_as_string(hide_password=False)
    report = await verify_in_subprocess(url, pem, str(sink.checkpoint_dir))
    assert report["ok"] is True and report["entries"] == 2 * N and report["checkpoints"] == 1

    async with engine.begin() as conn:
        body = (
            await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.seq == 5))
        ).scalar_one()
        edited = json.dumps({**json.loads(body), "model": "edited"}, sort_keys=True)
        await conn.execute(audit_log.update().where(audit_log.c.seq == 5).values(body=edited))
    report = await verify_in_subprocess(url, pem, str(sink.checkpoint_dir))
    assert report["ok"] is False
    assert "entry 5 does not match its leaf hash: edited" in report["problems"]

    with pytest.raises(RuntimeError, match="exited"):  # a store the child cannot open
        await verify_in_subprocess(
            url.replace("aiosqlite", "nosuchdriver", 1).replace("asyncpg", "nosuchdriver", 1), pem
        )


async def test_the_database_url_never_reaches_the_childs_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[object, ...]] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args: object, **kw: object) -> object:
        seen.append(args)
        return await real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    url = "postgresql+asyncpg://auditor:s3cret-pw@127.0.0.1:1/none"
    pem = Signer.generate().public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(RuntimeError):
        await verify_in_subprocess(url, pem)
    assert seen and not any("s3cret-pw" in str(a) for a in seen[0])
