"""The metrics that are not counted per request: the event-loop heartbeat."""

from __future__ import annotations

import asyncio
import time

from gateway.metrics import Metrics


def _lag(m: Metrics, sample: str) -> float:
    value = m.registry.get_sample_value(f"portcullis_event_loop_lag_seconds_{sample}")
    return value or 0.0


async def test_the_heartbeat_measures_a_stalled_loop() -> None:
    m = Metrics()
    m.start(interval_s=0.02)
    await asyncio.sleep(0.1)  # an idle loop: beats arrive about on time
    idle_count = _lag(m, "count")
    assert idle_count >= 2 and _lag(m, "sum") < 0.05 * idle_count
    time.sleep(0.3)  # something holds the loop (a blocking call, a long collection)
    await asyncio.sleep(0.05)
    assert _lag(m, "sum") >= 0.25
    await m.close()
    count = _lag(m, "count")
    await asyncio.sleep(0.1)
    assert _lag(m, "count") == count  # stopped
