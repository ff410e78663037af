"""A detector worker process that dies (the OOM killer, a crash) is replaced: the requests caught
in it and those that come while the new one loads fail closed, and detection comes back without a
restart of the gateway (reliability F-3)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from gateway.config.pii import PiiSettings
from gateway.errors import Cause, GatewayError
from gateway.pii.detector import FastDetector

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

pytestmark = pytest.mark.integration

TEXT = "Please ask John Smith in Berlin about TFN 123 456 782."


def _workers(detector: FastDetector) -> list[int]:
    pool = detector._pool
    return sorted(getattr(pool, "_processes", {}) or {})


async def test_a_killed_worker_is_replaced_and_detection_comes_back() -> None:
    detector = FastDetector(PiiSettings(executor="process", workers=1, deadline_ms=30000))
    try:
        assert await detector.ready()
        want = await detector.analyze([TEXT], None)
        (pid,) = _workers(detector)
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)  # the pool notices its dead worker
        with pytest.raises(GatewayError) as err:
            await detector.analyze([TEXT + " again"], None)
        assert err.value.cause is Cause.PII_UNAVAILABLE
        # while the new worker loads, requests fail closed at once rather than wait for it
        t0 = time.monotonic()
        with pytest.raises(GatewayError):
            await detector.analyze([TEXT + " once more"], None)
        assert time.monotonic() - t0 < 1.0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not await detector.ready():
            await asyncio.sleep(0.2)
        assert await detector.ready()
        (fresh,) = _workers(detector)
        assert fresh != pid and detector.restarts == 1
        assert await detector.analyze([TEXT + " later"], None) != [[]]
        assert [f.entity_type for f in want[0]] == [
            f.entity_type for f in (await detector.analyze([TEXT], None))[0]
        ]
    finally:
        await detector.close()
