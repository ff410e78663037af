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

    def analyze(self, texts: Sequence[str], entities: Any) -> list[list[Finding]]:
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
