"""The real gateway killed with SIGKILL while requests are in flight (reliability I-2): every
request the upstream received had its durable write-ahead intent first; after a restart,
recovery gives every orphaned intent an ``incomplete`` entry; the log verifies.

``portcullis serve`` in its own process on SQLite (the embedded default), a fake upstream on
127.0.0.1 that answers after 0.4 s so that requests are inside the upstream call when the kill
comes, the official openai SDK as the clients."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.support.gateway import _free_port
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PORTCULLIS = str(Path(sys.executable).parent / "portcullis")


def _serve(
    cfg: Path, port: int, log: Path, env: dict[str, str], *extra: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [PORTCULLIS, "-c", str(cfg), "serve", "--port", str(port), "--no-migrate", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return proc
        except OSError:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)


def _migrate_and_key(cfg: Path, env: dict[str, str], user: str) -> str:
    """``db upgrade`` and ``keys create`` from the command line, as an operator would: the key."""
    subprocess.run([PORTCULLIS, "-c", str(cfg), "db", "upgrade"], check=True, env=env)
    made = subprocess.run(
        [PORTCULLIS, "-c", str(cfg), "keys", "create", "--user", user, "--jurisdiction", "AU",
         "--sector", "private"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1]


def _entries(db: Path) -> list[tuple[str, str | None, dict[str, Any] | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, request_id, body FROM audit_log ORDER BY seq").fetchall()
    return [(k, r, json.loads(b) if b else None) for k, r, b in rows]


def test_a_killed_gateway_forwarded_nothing_without_its_intent_and_recovers_them_all(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data),
        "pii": {"enabled": False},
        "limits": {"requests_per_minute": 0, "tokens_per_minute": 0},
        "backends": [{
            "id": "b", "base_url": upstream.base_url, "models": ["gpt-test"],
            "operator": "openai", "model_family": "gpt", "model_origin": "US",
            "hosting_country": "US", "max_retries": 0,
        }],
    }))  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    key = _migrate_and_key(cfg, env, "load")
    port, log = _free_port(), tmp_path / "serve.log"
    upstream.delay_s = 0.4
    proc = _serve(cfg, port, log, env)
    sdk = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=10
    )
    answered: list[int] = []

    def client(i: int) -> None:
        for j in range(50):
            try:
                sdk.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": f"request {i}-{j}"}]
                )
                answered.append(1)
            except (openai.APIConnectionError, openai.APIStatusError):
                return  # the gateway is gone

    clients = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 20
    while len(upstream.received) < 30:  # well into the load: answered and in-flight requests
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for t in clients:
        t.join(timeout=30)
    forwarded = len(upstream.received)
    entries = _entries(data / "portcullis.db")
    intents = {r for k, r, _ in entries if k == "intent"}
    outcomes = {r for k, r, _ in entries if k in ("complete", "incomplete")}
    # write-ahead: nothing reached the upstream without its intent, whatever the kill cut
    assert len(intents) >= forwarded > len(answered)
    assert intents - outcomes  # some requests were cut off in flight

    upstream.delay_s = 0
    proc = _serve(cfg, port, log, env)  # recovery runs at start
    try:
        entries = _entries(data / "portcullis.db")
        outcomes = {r for k, r, _ in entries if k in ("complete", "incomplete")}
        assert intents <= outcomes  # every orphan got its incomplete entry
        recovered = [b for k, _, b in entries if k == "incomplete"]
        assert recovered and all(b and b["error_code"] == "incomplete" for b in recovered)
        status = sdk.with_options(max_retries=0).chat.completions.with_raw_response.create(
            model="gpt-test", messages=[{"role": "user", "content": "after"}]
        )
        assert status.http_response.status_code == 200  # serves again
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    verified = subprocess.run(
        [PORTCULLIS, "-c", str(cfg), "audit", "verify"], capture_output=True, text=True, env=env
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
