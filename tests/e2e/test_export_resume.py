"""Reliability E-3 over HTTP: the real ``portcullis serve`` SIGKILLed in the middle of streaming
``GET /admin/audit/export``. The client sees the download cut short (never a clean end it could
take for the whole trail); after a restart it resumes with ``after_seq`` (its last whole record)
and the ``until_seq`` the first answer gave, and the two parts together are the trail: every
entry once, in order, each matching the stored leaf hash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
import yaml

from audit.checkpoint import Signer
from audit.db import open_engine
from audit.sink import DatabaseAuditSink
from tests.e2e.test_crash_recovery import _serve
from tests.integration.audit.test_export import _fill
from tests.support.gateway import RunningGateway, _free_port, write_admin_token
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

REQUESTS = 5_000  # 10,000 entries: ~21 MB of JSONL, far more than the sockets buffer


async def _fill_trail(data: Path) -> None:
    engine = open_engine(f"sqlite+aiosqlite:///{data / 'portcullis.db'}")
    sink = DatabaseAuditSink(
        engine,
        Signer.from_file(data / "audit" / "signing.key"),
        data / "audit" / "checkpoints",
        deadline_s=60,  # a thousand intents at once on a busy machine: not what is tested
        checkpoint_interval_s=3600,
        owns_engine=False,
    )
    await sink.start()
    for _ in range(REQUESTS // 1000):
        await _fill(sink, 1000)
    await sink.close()
    await engine.dispose()


def test_an_http_export_cut_by_a_killed_gateway_resumes_to_the_whole_trail(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    from tests.e2e.test_crash_recovery import _migrate_and_key

    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data),
        "admin": {"token_file": str(write_admin_token(data)), "token_env": None},
        "pii": {"enabled": False},
        "backends": [{
            "id": "b", "base_url": upstream.base_url, "models": ["gpt-test"],
            "operator": "openai", "model_family": "gpt", "model_origin": "US",
            "hosting_country": "US",
        }],
    }))  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    _migrate_and_key(cfg, env, "someone")
    asyncio.run(_fill_trail(data))
    port, log = _free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/admin/audit/export"
    auth = {"authorization": f"Bearer {RunningGateway.ADMIN_TOKEN}"}

    proc = _serve(cfg, port, log, env)
    got = bytearray()
    with (
        pytest.raises(httpx.TransportError),
        httpx.stream("GET", url, params={"format": "jsonl"}, headers=auth, timeout=30) as answer,
    ):
        assert answer.status_code == 200
        until = int(answer.headers["x-portcullis-until-seq"])
        for chunk in answer.iter_raw(65536):
            got += chunk
            if len(got) > 2 * 2**20 and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    assert until >= 2 * REQUESTS
    whole = bytes(got).rpartition(b"\n")[0]  # the torn last record goes
    first = [json.loads(line) for line in whole.split(b"\n")]
    assert 0 < len(first) < until  # cut short

    proc = _serve(cfg, port, log, env)
    try:
        last = first[-1]["seq"]
        rest = httpx.get(
            url,
            params={"format": "jsonl", "after_seq": last, "until_seq": until},
            headers=auth,
            timeout=120,
        )
        assert rest.status_code == 200 and rest.headers["x-portcullis-until-seq"] == str(until)
        second = [json.loads(line) for line in rest.content.splitlines()]
        # a bound that is not a whole number is a 400 naming it
        for value in ("-1", "9" * 5000):
            bad = httpx.get(url, params={"after_seq": value}, headers=auth, timeout=10)
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "after_seq"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    records = first + second
    assert [r["seq"] for r in records] == list(range(1, until + 1))
    with sqlite3.connect(data / "portcullis.db") as db:
        stored = dict(
            db.execute("SELECT seq, leaf_hash FROM audit_log WHERE seq <= ?", (until,)).fetchall()
        )
    assert all(bytes(stored[r["seq"]]).hex() == r["leaf_hash"] for r in records)
    # both downloads are in the trail, the second with the range it resumed
    with sqlite3.connect(data / "portcullis.db") as db:
        actions = [
            json.loads(b)["action"]
            for (b,) in db.execute("SELECT body FROM audit_log WHERE kind = 'export' ORDER BY seq")
        ]
    assert [a.get("after_seq") for a in actions if a.get("phase") == "stream"] == [None, last]
