"""Reliability F-7 with the store's own errors: the SQLite audit database turns read-only
(``SQLITE_READONLY``) or its disk fills (``SQLITE_FULL``) — or the PostgreSQL server holding the
gateway's database stops as in a crash — while twelve clients keep sending, then recovers. Every
answer is a 200 or a 503 naming what is down; nothing reaches the upstream without its durable
intent; ``/readyz`` says so; the gateway heals without a restart and the log still verifies.

The faults are SQLite's own: ``PRAGMA query_only`` (every write refused as on a read-only
file) and ``PRAGMA max_page_count`` pinned to the file's size (every write that needs a page
refused as on a full disk), set on every connection the sink takes while the fault is on."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import event

from audit.checkpoint import load_public_key
from audit.db import open_engine
from audit.verify import verify_database
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.services import private_postgres
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration


class Fault:
    """The state of the audit store's "disk": nothing wrong, ``readonly`` or ``full``; every
    connection the sink takes from its pool is set to it (a fault is the file's, not one
    connection's, so a pooled connection must not outlive it either)."""

    def __init__(self) -> None:
        self.kind: str | None = None

    def on_checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA query_only = {'ON' if self.kind == 'readonly' else 'OFF'}")
        pages = 2_147_483_646
        if self.kind == "full":
            cur.execute("PRAGMA page_count")
            (pages,) = cur.fetchone()
        cur.execute(f"PRAGMA max_page_count = {int(pages)}")
        cur.close()


def _drop_writer_connection(gw: RunningGateway) -> None:
    """The sink's writer keeps one connection; drop it so its next batch opens one with the
    fault on (or off) — as a connection lost to a failing disk would be."""
    writer = gw.app.state.services.audit._writer  # the real sink's group-commit writer
    loop = writer._task.get_loop()
    asyncio.run_coroutine_threadsafe(writer._drop_connection(), loop).result(5)


class Load:
    """Twelve SDK clients sending chat requests until the block ends; each answer is kept with
    the phase it was sent and answered in ("between" if ``phase`` changed meanwhile: it belongs
    to neither). A client that gets an error waits ``backoff_s``, as a client would."""

    def __init__(self, gw: RunningGateway, key: str, backoff_s: float = 0.0) -> None:
        self.phase = "before"
        self.statuses: list[tuple[str, int, str | None]] = []  # (phase, status, error code)
        self._gw, self._key, self._backoff = gw, key, backoff_s
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(12)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _client(self) -> None:
        sdk = openai.OpenAI(
            base_url=self._gw.base_url, api_key=self._key, max_retries=0, timeout=10
        )
        while not self._stop.is_set():
            seen = self.phase
            try:
                sdk.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": "hi"}]
                )
                status, code = 200, None
            except openai.APIStatusError as exc:
                status = exc.status_code
                code = exc.body.get("code") if isinstance(exc.body, dict) else None
            self.statuses.append((seen if self.phase == seen else "between", status, code))
            if status != 200:
                time.sleep(self._backoff)

    def answered(self, phase: str, count: int) -> bool:
        """Wait (up to 30 s, as a busy machine needs) until ``count`` answers of ``phase`` are
        in: a fixed sleep let a slow CI machine switch phase before any "before" answer came."""
        deadline = time.monotonic() + 30
        while sum(1 for q, _, _ in self.statuses if q == phase) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def statuses_in(self, phase: str) -> list[int]:
        return [s for q, s, _ in self.statuses if q == phase]

    def assert_healed(self, allowed: set[tuple[int, str | None]]) -> int:
        """Only ``allowed`` answers; all 200 before and after; a 503 felt in the fault. The
        number of 200s."""
        odd = Counter(self.statuses)  # what a failure prints: (phase, status, code) -> count
        assert {(s, c) for _, s, c in self.statuses} <= allowed | {(200, None)}, odd
        assert self.statuses_in("before") and set(self.statuses_in("before")) == {200}, odd
        assert 503 in self.statuses_in("fault")  # the fault was felt
        assert self.statuses_in("after") and set(self.statuses_in("after")) == {200}, odd
        return sum(1 for _, s, _ in self.statuses if s == 200)


def _check_log(url: str, data_dir: Path, upstream: FakeUpstream, ok: int) -> None:
    """The log verifies; every 200 was forwarded once and nothing else was; each forward had
    its durable intent (an intent may also be durable for a request refused after its deadline,
    and an outcome written during the fault is lost: recovery marks that intent incomplete)."""

    async def check() -> None:
        engine = open_engine(url)
        public = load_public_key(data_dir / "audit" / "signing.key")
        report = await verify_database(engine, public, data_dir / "audit" / "checkpoints")
        assert report.ok, report.problems
        async with engine.connect() as conn:
            rows = (
                await conn.exec_driver_sql("SELECT request_id, kind, body FROM audit_log")
            ).all()
        await engine.dispose()
        intents = {r[0] for r in rows if r[1] == "intent"}
        forwarded = [json.loads(r[2]) for r in rows if r[1] in ("complete", "incomplete")]
        forwarded = [c for c in forwarded if c["forwarded"]]
        assert len(upstream.received) == ok <= len(intents)
        assert len(forwarded) <= ok and all(c["request_id"] in intents for c in forwarded)

    asyncio.run(check())


def _answered_once(gw: RunningGateway, key: str, within_s: float) -> bool:
    """One request with ``key`` answered 200 (tried again until ``within_s``): the key is then
    in the gateway's cache."""
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "warm"}]}
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if gw.request("POST", "/v1/chat/completions", body, token=key)[0] == 200:
            return True
        time.sleep(0.2)
    return False


def _readyz_becomes(gw: RunningGateway, status: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while gw.request("GET", "/readyz")[0] != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("fault", ["readonly", "full"])
def test_the_audit_store_fails_under_load_nothing_leaves_unrecorded_and_it_heals(
    tmp_path: Path, upstream: FakeUpstream, fault: str
) -> None:
    # 2 s, not 500 ms: the fault is an error at once, not a wait, so the deadline only bounds a
    # healthy commit, which a loaded machine can hold past 500 ms in the "before" or "after"
    # phase that must be all 200 — as seen with PostgreSQL below, and the likeliest cause of
    # this test's one failure in a local full run under load (2026-12-01, output not kept)
    settings = core_settings(tmp_path, upstream, audit={"intent_deadline_ms": 2000})
    gw = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    injected = Fault()
    event.listen(gw.app.state.services.audit.engine.sync_engine, "checkout", injected.on_checkout)
    try:
        key = gw.create_key(user="load", jurisdiction="AU-NSW", sector="private")
        with Load(gw, key) as load:
            assert load.answered("before", 12)
            load.phase = "fault"
            injected.kind = fault
            _drop_writer_connection(gw)
            assert _readyz_becomes(gw, 503, within_s=10)  # health says degraded
            # again: a connection the writer was taking as the fault came on was set up without
            # it, and the writer keeps its connection (a harness race, not the product's: a
            # real disk's fault reaches every connection at once)
            _drop_writer_connection(gw)
            # and keeps saying so while the fault lasts: reads still work, so a probe that only
            # reads would call the store healthy again within its 0.5 s period
            ready = []
            for _ in range(15):
                time.sleep(0.1)
                ready.append(gw.request("GET", "/readyz")[0])
            assert set(ready) == {503}, ready
            load.phase = "healing"
            injected.kind = None
            _drop_writer_connection(gw)
            assert _readyz_becomes(gw, 200, within_s=15)  # healed without a restart
            _drop_writer_connection(gw)  # as above, the other way round
            load.phase = "after"
            assert load.answered("after", 12)
    finally:
        gw.stop()
    ok = load.assert_healed({(503, "audit_unavailable")})
    _check_log(settings.database_url(), tmp_path, upstream, ok)


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_postgresql_stopped_or_frozen_under_load_nothing_leaves_unrecorded_and_it_heals(
    tmp_path: Path, upstream: FakeUpstream, fault: str
) -> None:
    """The gateway's one database on a PostgreSQL server of the test's own, stopped at once
    (as a crash) or frozen (every process SIGSTOPped: a paused machine, connections open and
    silent) while twelve clients keep sending, then started or thawed: every answer is a 200 or
    a 503 naming what is down (the audit store, or the key store for a key not cached) within
    its deadline, never a 500; a stopped server's admin API answers 503 too; ``/readyz`` says so;
    the gateway heals without a restart and the log verifies."""
    (tmp_path / "gw").mkdir()
    with private_postgres() as pg:
        settings = core_settings(
            tmp_path / "gw",
            upstream,
            database={"url": pg.url},
            # not 500 ms as above: on a loaded machine a healthy PostgreSQL commit (the twelve
            # clients, the server and the gateway on two cores; after healing, the fault's
            # backlog of refused requests' records first) took longer, and the "before" and
            # "after" phases, which must be all 200, met the deadline (two CI runs, 2026-12-01)
            audit={"intent_deadline_ms": 2000},
            # the load's key stays cached: it meets the audit store; a key not cached is
            # refused within the lookup deadline (asserted below)
            keys={"cache_ttl_s": 60, "lookup_deadline_ms": 1000},
            admin={
                "token_file": str(write_admin_token(tmp_path / "gw")),
                "token_env": None,
                "deadline_s": 2,
                "report_deadline_s": 2,  # the usage report's own (600 s by default)
            },
        )
        gw = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True))
        gw.start()
        try:
            # the audit store's first connection to the new server, made by the readiness probe
            # and not by the key's record, whose deadline (500 ms here) a loaded machine's first
            # connection can miss
            assert _readyz_becomes(gw, 200, within_s=10)
            key = gw.create_key(user="load", jurisdiction="AU-NSW", sector="private")
            # a key never used: not cached, so the fault meets it at the key store
            fresh = gw.create_key(user="fresh", jurisdiction="AU-NSW", sector="private")
            # the load's key cached before its twelve clients start: all at once, their first
            # look-ups of it missed the key store's deadline on a loaded machine (a CI run,
            # 2026-12-01: 9 of the "before" phase's answers were 503 key_store_unavailable)
            assert _answered_once(gw, key, within_s=10)
            with Load(gw, key, backoff_s=0.02) as load:
                assert load.answered("before", 12)
                load.phase = "fault"
                if fault == "stopped":
                    pg.stop()
                else:
                    pg.freeze(True, everything=True)
                assert _readyz_becomes(gw, 503, within_s=10)
                assert load.answered("fault", 24)
                t0 = time.monotonic()
                status, _, body = gw.request(
                    "POST",
                    "/v1/chat/completions",
                    {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
                    token=fresh,
                )
                assert (status, body["error"]["code"]) == (503, "key_store_unavailable"), body
                assert time.monotonic() - t0 < 1.0 + 1.0  # keys.lookup_deadline_ms, and margin
                # the admin API's reads and writes: a 503 naming the store, never a 500, within
                # admin.deadline_s (2 s; the usage report admin.report_deadline_s, 2 s here) even
                # when the server is frozen and the pooled
                # connections wait in silence
                admin, took = [], []
                for method, path, body in [
                    ("GET", "/admin/keys", None),
                    ("GET", "/admin/audit/entries", None),
                    ("GET", "/admin/audit/usage", None),
                    ("POST", "/admin/keys", {"user": "x", "jurisdiction": "AU",
                                             "sector": "private"}),
                ]:  # fmt: skip
                    t0 = time.monotonic()
                    admin.append(gw.request(method, path, body, token=gw.ADMIN_TOKEN))
                    took.append(time.monotonic() - t0)
                assert all("error" in b for _, _, b in admin), [(s, b) for s, _, b in admin]
                assert {(s, b["error"]["code"]) for s, _, b in admin} <= {
                    (503, "database_unavailable"),
                    (503, "audit_unavailable"),  # a key change is recorded first, and refused
                }, admin
                assert max(took) < 2 + 1.5, took
                load.phase = "healing"
                if fault == "stopped":
                    pg.start()
                else:
                    pg.freeze(False, everything=True)
                assert _readyz_becomes(gw, 200, within_s=30)  # healed without a restart
                load.phase = "after"
                assert load.answered("after", 12)
        finally:
            gw.stop()
        ok = load.assert_healed({(503, "audit_unavailable"), (503, "key_store_unavailable")})
        # the cached key met the write-ahead record (the fresh one the key lookup, above)
        assert "audit_unavailable" in {c for q, _, c in load.statuses if q == "fault"}
        _check_log(pg.url, tmp_path / "gw", upstream, ok + 1)  # and the one that cached the key
