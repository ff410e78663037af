"""The real audit sink behind the running gateway: every forwarded request has its intent, an
unavailable store gives 503 ``audit_unavailable`` with nothing forwarded and heals, and no PII
value or API key from the requests is found in the audit store, checkpoints or exports."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from audit.checkpoint import Signer, load_public_key
from audit.db import open_engine
from audit.export import ExportFilter, Scope, export
from audit.verify import verify_database
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

PII = ["Jane Citizen", "jane.citizen@example.com", "+61 412 345 678", "4111 1111 1111 1111"]


def _chat(gw: RunningGateway, key: str, i: int) -> tuple[int, dict[str, object]]:
    text = f"Request {i}: write to {PII[i % len(PII)]} about {PII[(i + 1) % len(PII)]}"
    status, _, body = gw.request(
        "POST",
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": text}]},
        token=key,
    )
    return status, body


def test_gateway_with_the_real_sink_writes_ahead_fails_closed_and_leaks_nothing(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    settings = core_settings(tmp_path, upstream, audit={"intent_deadline_ms": 300})
    gw = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    db_path = Path(settings.database_url().split(":///", 1)[1])
    try:
        key = gw.create_key(user="alice", jurisdiction="AU-NSW", sector="private", team="eng")
        assert all(_chat(gw, key, i)[0] == 200 for i in range(12))
        forwarded_before = len(upstream.received)
        lock = sqlite3.connect(db_path, timeout=1, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            down = [_chat(gw, key, 100 + i) for i in range(4)]
            assert [s for s, _ in down] == [503] * 4
            assert all(b["error"]["code"] == "audit_unavailable" for _, b in down)  # type: ignore[index]
            assert len(upstream.received) == forwarded_before  # nothing forwarded
            assert gw.request("GET", "/readyz")[0] == 503
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        deadline = time.monotonic() + 15
        while gw.request("GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gw.request("GET", "/readyz")[0] == 200  # healed without a restart
        assert _chat(gw, key, 200)[0] == 200
    finally:
        gw.stop()  # closes the sink: closing checkpoint

    async def check() -> None:
        engine = open_engine(settings.database_url())
        public = load_public_key(tmp_path / "audit" / "signing.key")
        report = await verify_database(engine, public, tmp_path / "audit" / "checkpoints")
        assert report.ok and report.unanchored == 0, report.problems
        async with engine.connect() as conn:
            rows = (
                await conn.exec_driver_sql(
                    "SELECT request_id, kind, body FROM audit_log ORDER BY seq"
                )
            ).all()
        intents = {r[0] for r in rows if r[1] == "intent"}
        completes = [json.loads(r[2]) for r in rows if r[1] == "complete"]
        forwarded = [c for c in completes if c["forwarded"]]
        assert len(forwarded) == len(upstream.received) == 13
        assert all(c["request_id"] in intents for c in forwarded)
        assert all(c["digests"]["prompt"] for c in forwarded)
        out = tmp_path / "all.jsonl"
        await export(
            engine,
            Signer.from_file(tmp_path / "audit" / "signing.key"),
            out,
            "jsonl",
            ExportFilter(),
            Scope("admin", frozenset({"admin"})),
        )
        await engine.dispose()

    asyncio.run(check())
    blobs = [
        p.read_bytes().decode("latin-1")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix not in (".key", ".token")
    ]
    blobs.append(caplog.text)
    for blob in blobs:
        for value in [*PII, key]:
            assert value not in blob


def test_a_gateway_written_record_holds_a_keyed_digest_counts_by_type_and_no_content(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """Reliability I-4 on a record the gateway wrote: the prompt digest is HMAC-SHA256 of the
    caller's request under the server secret's audit-digest key, named by its key id;
    personal data is counted per type; content capture is off by default, so no content is
    stored anywhere in the trail."""
    import hashlib
    import hmac

    import msgspec

    from gateway.config import Settings
    from gateway.secrets_store import load_server_secret

    assert Settings().audit.content_capture is False  # the default
    settings = core_settings(tmp_path, upstream, pii={"ner": False})
    from tests.integration.pii.test_gateway_pii import _rule

    gw = RunningGateway(
        settings, Components(policy=FakeDecider(_rule({"*": "pseudonymise"})))
    ).start()
    prompt = "Mail ann@example.com and bob@example.org, or ring +61 2 9374 4000."
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": prompt}]}
    try:
        key = gw.create_key(user="i4", jurisdiction="AU-NSW", sector="private")
        status, _, _ = gw.request("POST", "/v1/chat/completions", body, token=key)
        assert status == 200
    finally:
        gw.stop()
    with sqlite3.connect(tmp_path / "portcullis.db") as db:
        rows = db.execute("SELECT kind, body FROM audit_log ORDER BY seq").fetchall()
        (captured,) = db.execute("SELECT count(*) FROM audit_content").fetchone()
    (record,) = [json.loads(b) for k, b in rows if k == "complete"]
    secret = load_server_secret(tmp_path)
    # over the request as the caller sent it (compact JSON, the caller's key order), before
    # pseudonymisation: whoever holds the prompt can prove it is the one recorded
    asked = msgspec.json.encode(body)
    assert upstream.received[-1]["raw"] != asked  # what left was pseudonymised
    want = hmac.new(secret.derive("audit-digest"), asked, hashlib.sha256).hexdigest()
    assert record["digests"]["prompt"] == want and record["digests"]["key_id"] == secret.secret_id
    assert record["pii"]["counts"] == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert captured == 0
    trail = json.dumps([b for _, b in rows])
    for value in ("ann@example.com", "bob@example.org", "9374 4000", "Mail ann"):
        assert value not in trail
