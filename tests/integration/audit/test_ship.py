"""Shipping the trail to an OTLP/HTTP receiver (audit.ship, ``portcullis audit ship``), on
SQLite and PostgreSQL, against a real receiver on 127.0.0.1: every entry once and in order,
resumed from the cursor, retried while the receiver is down, stopped with the cursor kept when it
refuses for good, a killed shipper resumed without gaps, and a following shipper stopped cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.ship import Destination, ShipRefused, ship
from audit.sink import DatabaseAuditSink
from tests.integration.audit.conftest import PYTHON, REPO, event, python_env
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration

OPS = Scope("ops", frozenset({"admin"}))


async def _fill(sink: DatabaseAuditSink, n: int, start: int = 0) -> None:
    evs = [event(start + i) for i in range(n)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))


async def _size(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.max(audit_log.c.seq)))).scalar() or 0)


async def _ship_entries(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(audit_log.c.body)
            .where(audit_log.c.kind == "export")
            .order_by(audit_log.c.seq)
        )
        actions = [json.loads(b)["action"] for (b,) in rows]
    return [a for a in actions if str(a.get("phase", "")).startswith("ship")]


async def test_every_entry_goes_once_in_order_and_the_next_run_starts_at_the_cursor(
    engine: AsyncEngine, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    await _fill(sink, 30)
    cursor = tmp_path / "ship.cursor"
    async with OtlpReceiver() as rx:
        dest = Destination(rx.url + "?token=in-the-query")
        first = await ship(engine, dest, cursor, ExportFilter(), OPS, batch=7)
        # the 60 entries and the shipper's own opening entry, which is in the trail by then
        assert rx.seqs() == list(range(1, 62)) and first.count == 61 and first.last_seq == 61
        assert [len(b["records"]) for b in rx.accepted] == [7] * 8 + [5]
        body = json.loads(rx.accepted[0]["records"][0]["body"]["stringValue"])
        assert body["request_id"] == "req-000000" and body["kind"] == "intent"
        await _fill(sink, 2, start=100)
        second = await ship(engine, dest, cursor, ExportFilter(), OPS, batch=7)
    # only what came after: run 1's closing entry, the 4 new ones, run 2's opening entry
    assert rx.seqs()[61:] == list(range(62, 68)) and second.count == 6
    assert json.loads(cursor.read_text())["after_seq"] == 67
    opened, closed, reopened, _ = await _ship_entries(engine)
    assert opened["phase"] == "ship" and opened["after_seq"] == 0
    assert opened["destination"] == f"127.0.0.1:{rx.port}"  # never the path or its token
    assert (closed["phase"], closed["count"], closed["last_seq"]) == ("ship_done", 61, 61)
    assert reopened["after_seq"] == 61
    trail = json.dumps(await _ship_entries(engine))
    assert "in-the-query" not in trail


async def test_a_down_receiver_is_waited_for_and_a_refusal_stops_with_the_cursor_kept(
    engine: AsyncEngine, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    await _fill(sink, 5)
    cursor = tmp_path / "ship.cursor"
    async with OtlpReceiver() as rx:
        rx.answers = [
            (503, {"Retry-After": "0"}, b"overloaded"),
            (429, {"Retry-After": "0"}, b"slow down"),
        ]
        done = await ship(engine, Destination(rx.url), cursor, ExportFilter(), OPS, batch=4)
        assert rx.attempts == 2 + len(rx.accepted)  # the two refused tries, then each batch
        assert rx.seqs() == list(range(1, 12)) and done.count == 11  # nothing twice
        await _fill(sink, 1, start=50)
        rx.answers = [(400, {}, b"bad request: secret-token-xyz")]
        with pytest.raises(ShipRefused) as err:
            await ship(engine, Destination(rx.url), cursor, ExportFilter(), OPS)
        assert "400" in str(err.value) and "secret-token-xyz" not in str(err.value)
        assert json.loads(cursor.read_text())["after_seq"] == 11  # where it was
        rx.answers = [(503, {}, b"")] * 3
        with pytest.raises(ShipRefused, match="3 tries"):
            await ship(engine, Destination(rx.url), cursor, ExportFilter(), OPS, give_up=3)
        # once the receiver takes it, nothing was lost
        await ship(engine, Destination(rx.url), cursor, ExportFilter(), OPS)
        assert rx.seqs()[11:13] == [12, 13]


async def test_partial_success_is_counted_scope_and_filters_hold_and_roles_are_checked(
    engine: AsyncEngine, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    await _fill(sink, 10)
    async with OtlpReceiver() as rx:
        rx.partial_reject = 1
        au = Scope("au-auditor", frozenset({"auditor"}), frozenset({"AU"}))
        done = await ship(
            engine,
            Destination(rx.url, {"Authorization": "Bearer collector-token"}),
            tmp_path / "au.cursor",
            ExportFilter(kinds=("complete",)),
            au,
            batch=3,
        )
        assert done.rejected == len(rx.accepted) and done.count == len(rx.seqs())
        bodies = [json.loads(r["body"]["stringValue"]) for b in rx.accepted for r in b["records"]]
        assert bodies and {b["kind"] for b in bodies} == {"complete"}
        assert {b["principal"]["jurisdiction"] for b in bodies} == {"AU", "AU-NSW"}
        assert {b["headers"]["Authorization"] for b in rx.accepted} == {"Bearer collector-token"}
        with pytest.raises(AuditForbidden):
            await ship(
                engine,
                Destination(rx.url),
                tmp_path / "x.cursor",
                ExportFilter(),
                Scope("staff", frozenset({"user"})),
            )
        with pytest.raises(ValueError, match="another shipment"):
            await ship(engine, Destination(rx.url), tmp_path / "au.cursor", ExportFilter(), au)
    for bad in ("ftp://x/v1/logs", "http://user:pw@x/v1/logs", "collector:4318"):
        with pytest.raises(ValueError):
            Destination(bad)


def _cli(tmp_path: Path, database_url: str, *args: str) -> subprocess.Popen[bytes]:
    cfg = tmp_path / "ship.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path), "database": {"url": database_url}}))
    env = {**python_env(), "COLLECTOR_TOKEN": "Bearer tok-123"}
    return subprocess.Popen(
        [str(Path(PYTHON).parent / "portcullis"), "-c", str(cfg), "audit", "ship", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _wait(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert proc.poll() is not None, "the shipper did not stop"
    return proc.returncode


async def test_a_killed_shipper_resumes_without_a_gap(
    engine: AsyncEngine, database_url: str, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    await _fill(sink, 200)
    cursor = tmp_path / "audit" / "ship.cursor"
    async with OtlpReceiver(delay_s=0.02) as rx:
        proc = _cli(tmp_path, database_url, "--to", rx.url, "--batch", "10")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(rx.accepted) < 8:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = len(rx.seqs())
        assert 0 < killed_at < 400, "the shipper finished before it could be killed"
        again = _cli(tmp_path, database_url, "--to", rx.url, "--batch", "10")
        assert await _wait(again) == 0, again.stderr.read()  # type: ignore[union-attr]
        summary = json.loads(again.stdout.read())  # type: ignore[union-attr]
    seqs, last = rx.seqs(), summary["last_seq"]
    # every entry at least once (all but the second run's closing entry, written after it), a
    # repeat only of the batch in flight at the kill, and the cursor at the last one
    assert set(seqs) == set(range(1, last + 1)) and last == await _size(engine) - 1
    assert len(seqs) - len(set(seqs)) <= 10
    assert json.loads(cursor.read_text())["after_seq"] == last


async def test_a_following_shipper_sends_new_entries_and_stops_cleanly_on_sigterm(
    engine: AsyncEngine, database_url: str, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    await _fill(sink, 3)
    async with OtlpReceiver() as rx:
        proc = _cli(
            tmp_path,
            database_url,
            "--to",
            rx.url,
            "--follow",
            "--interval",
            "0.1",
            "--header",
            "Authorization=COLLECTOR_TOKEN",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(rx.seqs()) < 7:  # 6 entries and its opening one
            await asyncio.sleep(0.05)
        await _fill(sink, 2, start=10)
        while time.monotonic() < deadline and len(rx.seqs()) < 11:
            await asyncio.sleep(0.05)
        assert rx.seqs() == list(range(1, 12))
        proc.send_signal(signal.SIGTERM)
        assert await _wait(proc, 10) == 0
        out, errs = proc.communicate()
    assert json.loads(out)["count"] == 11
    assert {b["headers"]["Authorization"] for b in rx.accepted} == {"Bearer tok-123"}
    assert b"tok-123" not in out + errs  # the token is read from the environment, never shown
    actions = await _ship_entries(engine)
    assert [a["phase"] for a in actions] == ["ship", "ship_done"]
    assert actions[1]["count"] == 11
    assert os.environ.get("COLLECTOR_TOKEN") is None


async def test_a_follower_waits_out_a_trail_it_cannot_read_and_goes_on_from_its_cursor(
    engine: AsyncEngine, sink: DatabaseAuditSink, tmp_path: Path
) -> None:
    """The trail unreadable for a while (its table renamed away under the follower: every read
    fails as a database error), then back: nothing is lost or sent twice."""
    await _fill(sink, 2)
    stop = asyncio.Event()
    async with OtlpReceiver() as rx:
        follower = asyncio.create_task(
            ship(engine, Destination(rx.url), tmp_path / "c", ExportFilter(), OPS, follow=True,
                 interval_s=0.05, stop=stop)
        )  # fmt: skip
        while len(rx.seqs()) < 5:  # 4 entries and its opening one
            await asyncio.sleep(0.02)
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        await asyncio.sleep(1.2)  # reads fail meanwhile; the follower keeps going
        assert not follower.done()
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        await _fill(sink, 1, start=30)
        deadline = time.monotonic() + 10
        while len(rx.seqs()) < 7 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        done = await asyncio.wait_for(follower, 10)
    assert rx.seqs() == list(range(1, 8)) and done.count == 7
