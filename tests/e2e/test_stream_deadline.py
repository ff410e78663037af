"""A backend's total deadline bounds a stream, not only the wait for its first byte: a stream
whose chunks keep coming within the idle gap used to run past ``total_s`` without end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def test_stream_past_its_total_deadline_ends_with_timeout_event(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    settings = core_settings(tmp_path, upstream)
    quick = {"connect_s": 2, "first_byte_s": 2, "idle_s": 1, "total_s": 1.0}
    settings = settings.model_copy(
        update={
            "backends": tuple(
                b.model_copy(update={"timeouts": b.timeouts.model_copy(update=quick)})
                for b in settings.backends
            )
        }
    )
    audit = MemoryAuditSink()
    gw = RunningGateway(
        settings, Components(policy=FakeDecider(), audit=audit, pii_disabled=True)
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
        upstream.reply = " ".join(["word"] * 30)
        upstream.chunk_delay_s = 0.2  # well inside the idle gap; 6 s in all
        chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "stream": True}
        t0 = time.monotonic()
        status, _, body = gw.request("POST", "/v1/chat/completions", chat, token=key, parse=False)
        took = time.monotonic() - t0
        assert status == 200
        assert b'"upstream_timeout"' in body and body.rstrip().endswith(b"data: [DONE]")
        assert body.count(b'"content"') < 30  # cut short, not relayed to the end
        assert took < 3.0
        assert audit.wait_completions(1)[-1]["status"] == 504
    finally:
        gw.stop()
