"""Retention purge keeps the log verifiable; content capture is encrypted, audited and
crypto-shreddable; no PII value or key reaches rows or exports; policy replay reports changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.export import AuditForbidden, ExportFilter, Scope, export
from audit.replay import replay
from audit.retention import CAPTURES, purge
from audit.schema import audit_content, audit_log
from audit.sink import DatabaseAuditSink
from audit.vault import ContentShredded, ContentVault
from audit.verify import verify_database
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CLASSES = {"default": 400, "short": 30, "legal_hold": None}


def _classed(i: int, cls: str | None, tenant: str, ts: str) -> dict[str, Any]:
    ev = event(i, ts=ts)
    ev["principal"]["tenant"] = tenant
    ev["decision"]["obligations"] = {"retention_class": cls} if cls else {}
    return ev


async def test_purge_drops_old_bodies_by_class_and_the_log_still_verifies(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    old, recent = "2026-09-01T00:00:00.000000Z", "2026-11-20T00:00:00.000000Z"
    cases = [  # (class, tenant, ts, purged?)
        ("short", "acme", old, True),  # 89 days > 30
        ("short", "acme", recent, False),  # 9 days
        ("default", "acme", old, False),  # 89 days < 400
        ("legal_hold", "acme", "2020-01-01T00:00:00.000000Z", False),  # never
        (None, "hr", old, True),  # tenant class "short" applies
        (None, "acme", "2024-01-01T00:00:00.000000Z", True),  # default class, > 400 days
    ]
    for i, (cls, tenant, ts, _) in enumerate(cases):
        await sink.complete(_classed(i, cls, tenant, ts))
    await sink.checkpoint()
    counts = await purge(engine, CLASSES, "default", {"hr": "short"}, "test:1:1", NOW)
    assert counts == {"default": 1, "short": 2, CAPTURES: 0}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log.c.request_id, audit_log.c.body)
                .where(audit_log.c.kind == "complete")
                .order_by(audit_log.c.seq)
            )
        ).all()
    assert [r.body is None for r in rows] == [c[3] for c in cases]
    await sink.checkpoint()
    report = await verify_database(engine, signer.public, cp_dir)
    assert report.ok, report.problems
    assert report.purged == 3


async def test_captured_content_is_encrypted_read_is_audited_and_shredding_erases_it(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    vault = ContentVault(engine, "test:1:1")
    secret = b"Patient Jane Citizen, Medicare 2123 45670 1"
    await sink.complete(event(1))
    await vault.capture("req-000001", "acme", secret)
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(audit_content.c.ciphertext))).scalar_one()
    assert secret not in bytes(stored)
    with pytest.raises(AuditForbidden):
        await vault.read("req-000001", Scope("staff", frozenset({"user"})))
    assert await vault.read("req-000001", ADMIN) == secret
    assert await vault.shred("acme", ADMIN)
    with pytest.raises(ContentShredded):
        await vault.read("req-000001", ADMIN)
    async with engine.connect() as conn:
        kinds = (
            (await conn.execute(sa.select(audit_log.c.kind).order_by(audit_log.c.seq)))
            .scalars()
            .all()
        )
    assert kinds == ["complete", "content_read", "shred", "content_read"]
    await sink.checkpoint()
    assert (await verify_database(engine, signer.public, cp_dir)).ok


async def test_tenant_keys_are_stored_wrapped_and_open_only_with_the_server_secret(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    from audit.schema import audit_tenant_keys

    secret, other = b"s" * 32, b"t" * 32
    await sink.complete(event(1))
    await sink.complete(event(2))
    bare = ContentVault(engine, "test:1:1")  # a key written before wrapping: 32 bytes, bare
    await bare.capture("req-000001", "globex", b"old capture")
    vault = ContentVault(engine, "test:1:1", secret)
    await vault.capture("req-000002", "acme", b"new capture")
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(audit_tenant_keys.c.tenant, audit_tenant_keys.c.key))
        keys = {tenant: bytes(key) for tenant, key in rows}
    assert len(keys["globex"]) == 32 and len(keys["acme"]) == 62
    assert await vault.read("req-000002", ADMIN) == b"new capture"
    assert await vault.read("req-000001", ADMIN) == b"old capture"  # still read
    with pytest.raises(ContentShredded, match="does not open with this server secret"):
        await ContentVault(engine, "test:1:1", other).read("req-000002", ADMIN)
    with pytest.raises(ContentShredded, match="no server secret"):
        await ContentVault(engine, "test:1:1").read("req-000002", ADMIN)


async def test_a_requests_capture_is_erased_with_its_purged_entries_and_legal_hold_keeps_it(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, cp_dir: Path
) -> None:
    vault = ContentVault(engine, "test:1:1")
    old, recent = "2026-09-01T00:00:00.000000Z", "2026-11-20T00:00:00.000000Z"
    cases = [  # (class, ts, capture erased?)
        ("short", old, True),  # 89 days > 30: intent and outcome purged, so is the capture
        ("short", recent, False),
        ("legal_hold", "2020-01-01T00:00:00.000000Z", False),  # never
    ]
    for i, (cls, ts, _) in enumerate(cases):
        ev = _classed(i, cls, "acme", ts)
        await sink.intent(ev)
        await sink.complete(ev)
        await vault.capture(ev["request_id"], "acme", f"held content {i}".encode())
    # an administrative entry naming the request (its read, kept 400 days) does not hold it back
    assert await vault.read("req-000000", ADMIN) == b"held content 0"
    await sink.checkpoint()

    counts = await purge(engine, CLASSES, "default", {}, "test:1:1", NOW)

    assert counts == {"default": 0, "short": 2, CAPTURES: 1}
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(audit_content.c.request_id))).scalars().all()
        (entry,) = (
            await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.kind == "purge"))
        ).scalars()
    assert sorted(kept) == [f"req-{i:06d}" for i, c in enumerate(cases) if not c[2]]
    assert json.loads(entry)["action"] == {"default": 0, "short": 2, CAPTURES: 1}
    with pytest.raises(ContentShredded):
        await vault.read("req-000000", ADMIN)
    assert await vault.read("req-000002", ADMIN) == b"held content 2"
    # the next purge finds nothing more to erase, and the log still verifies
    assert await purge(engine, CLASSES, "default", {}, "test:1:1", NOW) == {
        "default": 0,
        "short": 0,
        CAPTURES: 0,
    }
    await sink.checkpoint()
    assert (await verify_database(engine, signer.public, cp_dir)).ok


def test_no_retention_class_may_take_the_name_of_the_capture_count() -> None:
    from pydantic import ValidationError

    from gateway.config.audit import AuditSettings

    with pytest.raises(ValidationError, match=CAPTURES):
        AuditSettings(retention_days={"default": 30, CAPTURES: 1})


PII_AND_KEYS = [
    "Jane Citizen",
    "jane.citizen@example.com",
    "+61 412 345 678",
    "123-45-6789",
    "880101-1234567",
    "pk-live-9f8e7d6c5b4a39281706",
    "Bearer sk-abcdef0123456789",
]


async def test_no_pii_value_or_key_reaches_rows_or_exports(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, tmp_path: Path, database_url: str
) -> None:
    for i, value in enumerate(PII_AND_KEYS):
        ev = event(i)
        ev["messages"] = [{"role": "user", "content": f"my details: {value}"}]
        ev["prompt"] = value
        ev["authorization"] = value
        ev["model"] = value  # client-chosen fields where an identifier belongs
        if value != "Jane Citizen":  # a bare name in an identifier field has no shape to catch
            ev["request_id"] = value.replace(" ", "")
        ev["decision_input"]["request"]["model"] = value
        ev["pii"]["values"] = {"PERSON": [value]}
        ev["error_code"] = f"failed for {value}"
        ev["digests"]["prompt"] = value
        await sink.intent(ev)
        await sink.complete(ev)
    for fmt in ("csv", "jsonl", "syslog", "otlp"):
        await export(engine, signer, tmp_path / f"all.{fmt}", fmt, ExportFilter(), ADMIN)
    async with engine.connect() as conn:
        dump = "\n".join(repr(tuple(r)) for r in (await conn.execute(sa.select(audit_log))).all())
    blobs = [dump] + [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.glob("all.*")]
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        blobs += [
            Path(p).read_bytes().decode("latin-1")
            for p in (path, path + "-wal")
            if Path(p).exists()
        ]
    for blob in blobs:
        for value in PII_AND_KEYS:
            assert value not in blob
            assert value.encode("utf-8").hex() not in blob


class FakeEngine:
    """A deterministic policy engine: denies the hosted backend for AU users under the new rule."""

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        jur = policy_input["principal"]["jurisdiction"]
        if jur.startswith("KR"):
            raise RuntimeError("engine failure")
        deny = jur.startswith("AU")
        return {
            "version": "1",
            "allow": not deny,
            "permitted_backends": [] if deny else ["ds-syd"],
            "pii_actions": {},
            "reasons": [{"rule": "au.new_rule", "effect": "deny"}] if deny else [],
            "obligations": {},
            "bundle_revision": "rev-2",
        }


async def test_replay_reports_what_another_bundle_would_change(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = [event(i) for i in range(30)]
    await asyncio.gather(*(sink.complete(e) for e in evs))
    await sink.intent(event(99))  # an intent alone is not a decided request
    report = await replay(
        engine,
        FakeEngine().evaluate,
        since="2026-11-01T00:00:00.000000Z",
        until="2026-12-01T00:00:00.000000Z",
    )
    was_allowed_au = [i for i in range(30) if i % 5 in (0, 1) and i % 3 != 0]
    was_denied_elsewhere = [i for i in range(30) if i % 5 in (3, 4) and i % 3 == 0]
    assert report.examined == 30
    assert report.errors == sum(1 for i in range(30) if i % 5 == 2)
    assert report.newly_denied == len(was_allowed_au)
    assert report.newly_allowed == len(was_denied_elsewhere)
    assert report.rules == {"au.new_rule": sum(1 for i in range(30) if i % 5 in (0, 1))}
    assert set(report.jurisdictions) == {"AU", "AU-NSW", "US-TX", "IT"}
    assert report.changed == sum(report.jurisdictions.values())
    assert json.dumps(report.to_json())


async def test_the_sink_runs_the_purge_on_its_schedule(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> None:
    from audit.sink import Retention

    sink = DatabaseAuditSink(
        engine,
        signer,
        cp_dir,
        owns_engine=False,
        retention=Retention({"default": 1}, interval_s=0.2),
    )
    await sink.start()
    await sink.complete(event(1, ts="2020-01-01T00:00:00.000000Z"))
    await sink.complete(event(2, ts=None))  # now: kept
    await asyncio.sleep(0.6)
    await sink.close()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log.c.kind, audit_log.c.body).order_by(audit_log.c.seq)
            )
        ).all()
    assert [(k, b is None) for k, b in rows][:3] == [
        ("complete", True),
        ("complete", False),
        ("purge", False),
    ]
    assert (await verify_database(engine, signer.public, cp_dir)).ok
