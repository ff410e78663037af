"""Exports: exact round trip in every format, offline verification, tampered files caught,
scoping by role and jurisdiction, the export recorded in the log, resume after a kill."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.export import AuditForbidden, ExportFilter, Scope, export
from audit.formats import flatten, parse_csv, parse_jsonl, parse_otlp, parse_syslog
from audit.offline import verify_export
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from tests.integration.audit import export_proc
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

AUDITOR = Scope("auditor-1", frozenset({"auditor"}))
# Free labels from configuration (a backend's hosting region) are kept verbatim, so they carry
# the hostile characters through the store into every format.
HOSTILE = [
    "Sydney, NSW",
    'the "west"',
    "=cmd|' /C calc'!A0",
    "🦘 region",
    "line\u2028sep",
    "-1+1",
    "@SUM(A1)",
    "tab\tin",
    "cr\rhere",
    "\r=HYPERLINK(1)",  # a formula after a leading CR (reliability E-1)
    "\t=1",
]


def _hostile(i: int) -> dict[str, object]:
    ev = event(i)
    ev["backend"] = {"id": "ds-syd", "hosting_region": HOSTILE[i % len(HOSTILE)]}
    return ev


async def _fill(sink: DatabaseAuditSink, n: int) -> None:
    evs = [_hostile(i) for i in range(n)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))


async def _export_entries(engine: AsyncEngine) -> list[dict[str, Any]]:
    """The log's ``export`` entries, in order."""
    async with engine.connect() as conn:
        bodies = (
            await conn.execute(
                sa.select(audit_log.c.body)
                .where(audit_log.c.kind == "export")
                .order_by(audit_log.c.seq)
            )
        ).scalars()
        return [json.loads(b) for b in bodies]


async def _stored(engine: AsyncEngine, until: int) -> list[tuple[int, str, str | None, bytes]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    audit_log.c.seq, audit_log.c.kind, audit_log.c.body, audit_log.c.leaf_hash
                )
                .where(audit_log.c.seq <= until)
                .order_by(audit_log.c.seq)
            )
        ).all()
    return [(int(r[0]), r[1], r[2], bytes(r[3])) for r in rows]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "syslog", "otlp"])
async def test_export_reparses_to_exactly_the_stored_rows_and_verifies_offline(
    fmt: str, engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, tmp_path: Path
) -> None:
    await _fill(sink, 120)
    out = tmp_path / f"export.{fmt}"
    result = await export(engine, signer, out, fmt, ExportFilter(), AUDITOR, page=37)
    assert result.count == 240 == result.until_seq
    stored = await _stored(engine, result.until_seq)
    regions = {json.loads(b)["backend"]["hosting_region"] for _, _, b, _ in stored if b}
    assert regions == set(HOSTILE)
    data = out.read_bytes()
    if fmt == "csv":
        # every cell a spreadsheet would run as a formula is neutralised in the raw file
        for value in HOSTILE:
            if value.startswith(("=", "+", "-", "@", "\t", "\r")):
                assert ("\"'" + value + '"').encode() in data, value
        rows = parse_csv(data.decode("utf-8"))[1:]
        assert rows == [
            flatten(s, k, json.loads(b) if b else None, leaf) for s, k, b, leaf in stored
        ]
    else:
        parse = {"jsonl": parse_jsonl, "syslog": parse_syslog, "otlp": parse_otlp}[fmt]
        parsed = list(parse(data))
        assert [(r["seq"], r["kind"], r["event"], r["leaf_hash"]) for r in parsed] == [
            (s, k, json.loads(b) if b else None, leaf.hex()) for s, k, b, leaf in stored
        ]
    report = verify_export(out, result.manifest, signer.public)
    assert report.ok, report.problems
    assert report.proofs == 1  # full export: the Merkle root was recomputed


@pytest.mark.parametrize(
    ("fmt", "tamper"),
    [
        ("jsonl", lambda d: d.replace(b'"allow":false', b'"allow":true', 1)),
        ("jsonl", lambda d: b"\n".join(d.split(b"\n")[:-3]) + b"\n"),  # rows dropped
        ("csv", lambda d: d.replace(b'"policy_denied"', b'"none"', 1)),
        ("syslog", lambda d: d[: len(d) // 2]),
        ("otlp", lambda d: d.replace(b'\\"allow\\":false', b'\\"allow\\":true', 1)),
        # files that no longer parse: a report saying so, never an exception
        ("csv", lambda d: b""),
        ("csv", lambda d: d + b'"unterminated\n'),
        ("jsonl", lambda d: d + b"{not json\n"),
        ("otlp", lambda d: d[: len(d) // 2]),
        ("syslog", lambda d: b"99999999999 " + d),
        ("syslog", lambda d: d + b"12"),
    ],
)
async def test_tampered_export_fails_offline_verification(
    fmt: str,
    tamper: object,
    engine: AsyncEngine,
    sink: DatabaseAuditSink,
    signer: Signer,
    tmp_path: Path,
) -> None:
    await _fill(sink, 30)
    out = tmp_path / f"export.{fmt}"
    result = await export(engine, signer, out, fmt, ExportFilter(), AUDITOR)
    out.write_bytes(tamper(out.read_bytes()))  # type: ignore[operator]
    assert not verify_export(out, result.manifest, signer.public).ok
    # A manifest edited to match the file fails its signature.
    m = json.loads(result.manifest.read_text())
    m["count"] = 1
    result.manifest.write_text(json.dumps(m))
    assert any(
        "signature" in p for p in verify_export(out, result.manifest, signer.public).problems
    )


async def test_filters_and_jurisdiction_scope_limit_rows_and_roles_are_enforced(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, tmp_path: Path
) -> None:
    await _fill(sink, 100)
    au = Scope("au-auditor", frozenset({"auditor"}), frozenset({"AU"}))
    out = tmp_path / "au.jsonl"
    await export(engine, signer, out, "jsonl", ExportFilter(decision="deny"), au)
    rows = list(parse_jsonl(out.read_bytes()))
    assert rows
    assert {r["event"]["principal"]["jurisdiction"] for r in rows} <= {"AU", "AU-NSW"}
    assert all(r["event"]["decision"]["allow"] is False for r in rows)
    expected = sum(1 for i in range(100) if i % 5 in (0, 1) and i % 3 == 0) * 2
    assert len(rows) == expected
    assert verify_export(out, out.with_name("au.jsonl.manifest.json"), signer.public).ok
    by_rule = tmp_path / "rule.jsonl"
    await export(
        engine,
        signer,
        by_rule,
        "jsonl",
        ExportFilter(rule="au.gov.hosted_deepseek", user="user3"),
        AUDITOR,
    )
    assert all(
        r["event"]["principal"]["user"] == "user3" for r in parse_jsonl(by_rule.read_bytes())
    )
    # by error code: the outcomes refused with it, and only those (the filter's "_" is no
    # wildcard: policy_denied does not match a code one letter apart)
    by_code = tmp_path / "code.jsonl"
    await export(
        engine, signer, by_code, "jsonl", ExportFilter(error_code="policy_denied"), AUDITOR
    )
    coded = list(parse_jsonl(by_code.read_bytes()))
    # (the synthetic events carry their code in the intent too; the gateway's intents have none)
    assert len(coded) == 2 * sum(1 for i in range(100) if i % 3 == 0)
    assert {r["event"]["error_code"] for r in coded} == {"policy_denied"}
    none = tmp_path / "none.jsonl"
    await export(engine, signer, none, "jsonl", ExportFilter(error_code="policyXdenied"), AUDITOR)
    assert list(parse_jsonl(none.read_bytes())) == []
    with pytest.raises(ValueError, match="error_code"):
        ExportFilter(error_code="no spaces allowed")
    with pytest.raises(AuditForbidden):
        await export(
            engine,
            signer,
            tmp_path / "no.jsonl",
            "jsonl",
            ExportFilter(),
            Scope("staff", frozenset({"user"})),
        )
    actions = await _export_entries(engine)
    assert [a["actor"] for a in actions] == ["au-auditor"] * 2 + ["auditor-1"] * 6
    assert actions[0]["action"]["filter_decision"] == "deny"
    assert actions[0]["action"]["scope"] == "AU"
    # An unscoped reader is recorded as "all" (it was "*", which the record dropped as not an
    # identifier, counting a stripped value in every export entry).
    assert actions[2]["action"]["scope"] == "all"
    assert [a["stripped"] for a in actions] == [0] * 8


async def test_export_killed_midway_resumes_without_gaps_or_duplicates(
    engine: AsyncEngine,
    database_url: str,
    sink: DatabaseAuditSink,
    key_file: Path,
    signer: Signer,
    tmp_path: Path,
) -> None:
    await _fill(sink, 1500)
    out = tmp_path / "big.jsonl"
    cursor = tmp_path / "big.jsonl.cursor"
    proc = export_proc.start(database_url, key_file, out, page=20)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cursor.exists() and json.loads(cursor.read_text())["after_seq"] >= 400:
            break
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cursor.exists(), "the export finished before it could be killed"
    with open(out, "ab") as fh:
        fh.write(b'{"seq": 99999, "partial')  # a torn write past the cursor
    result = await export(
        engine, signer, out, "jsonl", ExportFilter(), Scope("tester", frozenset({"auditor"}))
    )
    assert result.resumed
    seqs = [r["seq"] for r in parse_jsonl(out.read_bytes())]
    assert seqs == list(range(1, result.until_seq + 1))
    assert verify_export(out, result.manifest, signer.public).ok


async def test_stream_for_http_is_authorised_first_recorded_and_matches_the_file_export(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, tmp_path: Path
) -> None:
    from audit.export import stream

    await _fill(sink, 40)
    with pytest.raises(AuditForbidden):
        await stream(engine, "csv", ExportFilter(), Scope("staff", frozenset({"user"})))
    until, body = await stream(engine, "csv", ExportFilter(), AUDITOR, page=7)
    assert until == 80  # 40 requests' intents and outcomes, up to the head when it started
    chunks = [c async for c in body]
    out = tmp_path / "file.csv"
    await export(engine, signer, out, "csv", ExportFilter(), AUDITOR)
    streamed, filed = b"".join(chunks), out.read_bytes()
    # The file export came later, so it also holds the stream's own export entry (seq 81).
    assert filed.startswith(streamed)
    assert [r[:2] for r in parse_csv(filed[len(streamed) :].decode())] == [["81", "export"]]
    async with engine.connect() as conn:
        kinds = (
            (await conn.execute(sa.select(audit_log.c.kind).where(audit_log.c.kind == "export")))
            .scalars()
            .all()
        )
    assert len(kinds) == 3  # stream, then the file export's start and done
    # a download cut short resumes after its last whole record, up to the same bound: the rest
    # of the range once each, and a CSV resumed has no second header
    _, rest = await stream(engine, "csv", ExportFilter(), AUDITOR, after_seq=30, until_seq=60)
    resumed = b"".join([c async for c in rest]).decode()
    assert [int(r[0]) for r in parse_csv(resumed)] == list(range(31, 61))


async def test_an_export_holds_a_page_in_memory_not_the_file_and_records_its_range(
    engine: AsyncEngine, sink: DatabaseAuditSink, signer: Signer, tmp_path: Path
) -> None:
    """Reliability E-3's bounds: exporting 12,000 entries a page of 200 at a time, the memory
    the export allocates (traced) peaks far below the file it writes, and the log's own
    ``export`` entries state the range (up to the checkpoint taken at the start) and the
    count, with the actor and the scope."""
    import tracemalloc

    for _ in range(6):
        await _fill(sink, 1000)
    out = tmp_path / "big.jsonl"
    tracemalloc.start()
    try:
        result = await export(engine, signer, out, "jsonl", ExportFilter(), AUDITOR, page=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    assert result.count == 12000 == result.until_seq and size > 8 * 2**20
    assert peak < size / 8, (peak, size)  # a page and the driver's buffers, not the file
    entries = await _export_entries(engine)
    start, done = entries[-2]["action"], entries[-1]["action"]
    assert entries[-1]["actor"] == "auditor-1"
    assert start["phase"] == "start" and start["until_seq"] == 12000 and start["format"] == "jsonl"
    assert done["phase"] == "done" and done["count"] == 12000 and done["until_seq"] == 12000
    assert start["scope"] == "all"
