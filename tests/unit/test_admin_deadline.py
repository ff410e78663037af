"""The admin calls' deadline (gateway.http.app._within): an answer not started in time is a 503
at once; one already streaming is not cut; what the late call sends afterwards is dropped."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from gateway.http.app import _within

SCOPE = {"type": "http", "method": "GET", "path": "/admin/keys", "headers": []}


async def _receive() -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


async def test_an_answer_not_started_in_time_is_a_503_and_the_late_one_is_dropped() -> None:
    sent: list[dict[str, Any]] = []
    finished = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(0.5)
        finally:
            # cancelled: its clean-up still runs, and what it sends goes nowhere
            await send({"type": "http.response.start", "status": 200, "headers": []})
            finished.set()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    t0 = time.monotonic()
    await _within(slow, dict(SCOPE, state={}), _receive, send, 0.1)
    assert time.monotonic() - t0 < 0.4
    assert sent[0]["status"] == 503
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["error"]["code"] == "database_unavailable"
    await asyncio.wait_for(finished.wait(), 2)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_a_stream_already_begun_is_not_cut_and_errors_pass_through() -> None:
    sent: list[dict[str, Any]] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await asyncio.sleep(0.1)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await _within(streaming, dict(SCOPE, state={}), _receive, send, 0.05)
    assert b"".join(m.get("body", b"") for m in sent) == b"xxx"

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await _within(broken, dict(SCOPE, state={}), _receive, send, 1.0)


def test_reports_have_their_own_longer_deadline_and_verification_none() -> None:
    from gateway.config.admin import AdminSettings
    from gateway.http.app import admin_deadline

    admin = AdminSettings(deadline_s=2, report_deadline_s=90)
    assert admin_deadline("/admin/keys", admin) == ("admin.deadline_s", 2.0)
    assert admin_deadline("/admin/audit/export", admin) == ("admin.deadline_s", 2.0)
    assert admin_deadline("/admin/audit/usage", admin) == ("admin.report_deadline_s", 90.0)
    assert admin_deadline("/admin/audit/verify", admin) == ("", 0.0)
    assert AdminSettings().report_deadline_s == 600.0


async def test_the_503_names_the_setting_that_bounded_the_call() -> None:
    sent: list[dict[str, Any]] = []

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = dict(SCOPE, path="/admin/audit/usage", state={})
    await _within(slow, scope, _receive, send, 0.05, "admin.report_deadline_s")
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert "admin.report_deadline_s" in body["error"]["message"]
