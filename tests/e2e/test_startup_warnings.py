"""What an operator is told at start when the configuration turns a protection off."""

from __future__ import annotations

import logging

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def test_pii_inspection_off_is_announced(
    tmp_path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    settings = core_settings(tmp_path, upstream, pii={"enabled": False})
    with caplog.at_level(logging.WARNING, logger="portcullis"):
        gw = RunningGateway(
            settings, Components(policy=FakeDecider(), audit=MemoryAuditSink())
        ).start()
    gw.stop()
    assert any("PII actions" in r.getMessage() for r in caplog.records)
