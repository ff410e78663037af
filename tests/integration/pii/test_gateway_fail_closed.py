"""Through the running gateway: a slow or failing detector gives 503 and nothing is forwarded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.config.pii import PiiSettings
from gateway.http.app import Components
from gateway.pii.contract import Finding
from gateway.pii.detector import FastDetector
from gateway.pii.engine import Analyzer
from gateway.pii.guard import Guard
from tests.e2e.conftest import core_settings
from tests.integration.pii.test_gateway_pii import _rule
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration


class _Stuck(Analyzer):
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def analyze(
        self, texts: Sequence[str], entities: Any, strict: bool = False
    ) -> list[list[Finding]]:
        if self.fail:
            raise RuntimeError("detector crashed")
        time.sleep(0.5)
        return [[] for _ in texts]


@pytest.mark.parametrize("fail", [False, True], ids=["deadline", "crash"])
def test_detector_slow_or_failing_gives_503_and_nothing_forwarded(
    tmp_path: Path, upstream: FakeUpstream, fail: bool
) -> None:
    settings = PiiSettings(executor="thread", deadline_ms=100, inline_chars=0)
    guard = Guard(FastDetector(settings, analyzer=_Stuck(fail)), b"k" * 32)
    gw = RunningGateway(
        core_settings(tmp_path, upstream),
        Components(
            policy=FakeDecider(_rule({"*": "pseudonymise"})), pii=guard, audit=MemoryAuditSink()
        ),
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU-NSW", sector="private", team="eng")
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "TFN 123 456 782"}]}
        status, _, resp = gw.request("POST", "/v1/chat/completions", body, token=key)
        assert status == 503
        assert resp["error"]["code"] == "pii_unavailable"
        assert upstream.received == []
    finally:
        gw.stop()


def test_a_killed_detector_worker_gives_503_then_detection_comes_back_without_a_restart(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Reliability F-3 with the ``process`` executor: the worker is SIGKILLed (as the OOM
    killer would); the request caught by it is a 503 and nothing leaves, ``/readyz`` says not
    ready while a fresh worker loads, then the same request is served, its value pseudonymised;
    no log line holds the value."""
    import os
    import signal

    settings = PiiSettings(executor="process", workers=1, deadline_ms=30000, inline_chars=0)
    detector = FastDetector(settings)
    guard = Guard(detector, b"k" * 32)
    gw = RunningGateway(
        core_settings(tmp_path, upstream),
        Components(
            policy=FakeDecider(_rule({"*": "pseudonymise"})), pii=guard, audit=MemoryAuditSink()
        ),
    ).start()
    secret = "123 456 782"
    try:
        key = gw.create_key(user="alice", jurisdiction="AU-NSW", sector="private", team="eng")
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": f"TFN {secret}"}]}
        assert gw.request("GET", "/readyz")[0] == 200
        (pid,) = list(detector._pool._processes)  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        status, _, resp = gw.request("POST", "/v1/chat/completions", body, token=key)
        assert (status, resp["error"]["code"]) == (503, "pii_unavailable")
        assert upstream.received == []
        ready = [gw.request("GET", "/readyz")[0]]
        deadline = time.monotonic() + 120
        while ready[-1] != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
            ready.append(gw.request("GET", "/readyz")[0])
        assert ready[0] == 503 and ready[-1] == 200
        status, _, resp = gw.request("POST", "/v1/chat/completions", body, token=key)
        assert status == 200, resp
        sent = upstream.received[-1]["json"]["messages"][0]["content"]
        assert secret not in sent and "<" in sent  # pseudonymised on the way out
        assert secret not in caplog.text
    finally:
        gw.stop()
