"""The deterministic fake sink behaves like the real one at the seam: it normalises, and fails."""

from __future__ import annotations

import pytest

from audit.sink import AuditUnavailable, MemoryAuditSink


async def test_memory_sink_records_normalised_rows_and_fails_closed_when_told() -> None:
    sink = MemoryAuditSink()
    await sink.start()
    await sink.intent({"request_id": "r1", "prompt": "secret text", "principal": {"user": "u"}})
    await sink.complete({"request_id": "r1", "status": 200})
    assert [e["kind"] for e in sink.entries] == ["intent", "complete"]
    assert "secret text" not in sink.entries[0]["body"]
    assert await sink.ready()
    sink.fail = True
    assert not await sink.ready()
    with pytest.raises(AuditUnavailable):
        await sink.intent({"request_id": "r2"})
    assert len(sink.entries) == 2
