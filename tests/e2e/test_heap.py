"""``portcullis serve`` freezes its start-up heap (``gateway.heap``): full garbage collections
then skip the objects that live as long as the process (250 ms pauses each with the NER model
loaded, docs/benchmarks.md). An app embedded in another process (tests) leaves that heap alone."""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PORTCULLIS = str(Path(sys.executable).parent / "portcullis")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_freezes_its_start_up_heap_and_reports_gc(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "pii": {"enabled": False}}))
    port = _port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [PORTCULLIS, "-c", str(cfg), "serve", "--port", str(port), "--log-level", "info"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    metrics = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    frozen = [line for line in log.read_text().splitlines() if "start-up heap frozen" in line]
    assert frozen, log.read_text()[-2000:]
    assert int(frozen[0].split("frozen: ")[1].split()[0]) > 10_000
    assert 'python_gc_collections_total{generation="2"}' in metrics
    assert "portcullis_event_loop_lag_seconds_count" in metrics


def test_an_embedded_app_leaves_its_host_heap_alone(tmp_path: Path, upstream: FakeUpstream) -> None:
    before = gc.get_freeze_count()
    gw = RunningGateway(
        core_settings(tmp_path, upstream), Components(policy=FakeDecider(), audit=MemoryAuditSink())
    ).start()
    gw.stop()
    assert gc.get_freeze_count() == before == 0


def test_a_policy_reload_leaves_no_garbage_cycles_for_the_frozen_heap_to_keep() -> None:
    # The old engine is frozen with the start-up heap; reference counting frees it, but a cycle
    # among its objects would never be collected again. None may be left (else: thaw, collect
    # and refreeze after a reload).
    code = (
        "import asyncio, gc\n"
        "from gateway.config.policy import PolicySettings\n"
        "from gateway.heap import freeze_startup_heap\n"
        "from gateway.policy.client import build_policy_client\n"
        "async def main():\n"
        "    client = await build_policy_client(PolicySettings(), None)\n"
        "    assert freeze_startup_heap() > 1000\n"
        "    for _ in range(3):\n"
        "        await client.reload()\n"
        "    gc.unfreeze()\n"
        "    print(gc.collect())\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "0", "a reload left garbage cycles in the frozen heap"
