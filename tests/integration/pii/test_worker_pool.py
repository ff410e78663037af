"""The detector in a real worker process: same findings as in-process, the loop stays free."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest

from gateway.config.pii import PiiSettings
from gateway.pii.detector import FastDetector

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

pytestmark = pytest.mark.integration

TEXTS = [
    "Please ask John Smith in Berlin about TFN 123 456 782.",
    "Mail jane.doe@example.org or call +44 7700 900123.",
    "Deploy to EKS and S3 on m5.large.",
]


async def test_process_pool_matches_in_process_and_keeps_the_loop_responsive() -> None:
    pooled = FastDetector(PiiSettings(executor="process", workers=1, deadline_ms=30000))
    inline = FastDetector(PiiSettings(executor="inline"))
    try:
        assert await pooled.ready()
        long_text = " ".join(["Alice Example met Bob Sample in Paris."] * 300)
        worst = 0.0
        done = False

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        # The test process's own garbage collector (a full collection of a whole suite's heap
        # took 0.5 s on CI) is not what is measured here: kept out of the window.
        gc.collect()
        gc.disable()
        try:
            task = asyncio.create_task(ticker())
            got = await pooled.analyze([*TEXTS, long_text], None)
            done = True
            await task
        finally:
            gc.enable()
        want = await inline.analyze([*TEXTS, long_text], None)
        assert got == want
        assert {f.entity_type for f in got[0]} >= {"PERSON", "LOCATION", "AU_TFN"}
        assert worst < 0.25  # the model ran in another process
    finally:
        await pooled.close()
        await inline.close()
