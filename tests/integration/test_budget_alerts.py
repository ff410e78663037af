"""Budget alerts on real databases (SQLite and PostgreSQL) to a real webhook receiver on
127.0.0.1: each share of a budget crossed is announced once whichever of two replicas sees it,
signed; a receiver that keeps failing is tried three times and counted, never holding a charge."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import gateway.alerts as alerts_module
from gateway.alerts import BudgetAlerts
from gateway.budgets import Budgets
from gateway.config.core import BudgetSettings
from gateway.metrics import Metrics
from gateway.principal import Principal
from gateway.storage.db import create_engine_for
from gateway.storage.migrate import upgrade
from gateway.storage.schema import budget_alerts, budget_spend
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "whsec-test-0123456789"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, database_url)
    eng = create_engine_for(database_url)
    async with eng.begin() as conn:
        await conn.execute(budget_spend.delete())
        await conn.execute(budget_alerts.delete())
    yield eng
    await eng.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _p(key_id: str) -> Principal:
    return Principal(key_id=key_id, user="u", jurisdiction="AU", sector="private", team="ops")


async def _until(condition, within_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_each_share_crossed_is_announced_once_by_whichever_replica_sees_it_signed(
    engine: AsyncEngine, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCS_TEST_WEBHOOK_SECRET", SECRET)
    settings = BudgetSettings.model_validate(
        {
            "teams": {"ops": 0.001},  # 1,000 micro-dollars
            "alert_at": [0.5, 1.0],
            "webhooks": [{"url": receiver.url, "secret_env": "PCS_TEST_WEBHOOK_SECRET"}],
        }
    )
    metrics = Metrics()
    a = Budgets(engine, metrics, BudgetAlerts(engine, metrics))
    b = Budgets(engine, metrics, BudgetAlerts(engine, metrics))
    for replica in (a, b):
        replica.start(lambda: settings)
    try:
        alice, bob = _p("aaaaaaaaaaaa"), _p("bbbbbbbbbbbb")
        await a.admit(alice, settings)
        a.charge(alice, 400, settings)  # 40 %: nothing
        await asyncio.sleep(0.2)
        assert receiver.posts == []
        a.charge(alice, 200, settings)  # 60 %: half crossed
        await _until(lambda: len(receiver.posts) == 1)
        await a.sync()
        await b.admit(bob, settings)  # reads 600: no crossing of its own
        b.charge(bob, 500, settings)  # 110 %: the whole budget crossed, seen by b
        await _until(lambda: len(receiver.posts) == 2)
        await b.sync()
        await a.sync()  # a reads 1,100 back: the same crossing, already claimed
        await asyncio.sleep(0.3)
    finally:
        await a.close()
        await b.close()
    bodies = receiver.bodies()
    assert [(x["scope"], x["team"], x["share"]) for x in bodies] == [
        ("team", "ops", 0.5), ("team", "ops", 1.0),
    ]  # fmt: skip
    assert bodies[0]["spent_usd"] == 0.0006 and bodies[1]["spent_usd"] == 0.0011
    period = datetime.now(UTC).strftime("%Y-%m")
    assert {x["period"] for x in bodies} == {period} and bodies[0]["limit_usd"] == 0.001
    for headers, body in receiver.posts:
        t, v1 = (part.split("=", 1)[1] for part in headers["x-portcullis-signature"].split(","))
        want = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, want) and abs(int(t) - time.time()) < 60
    # the key's and the person's scopes have no budget here: no alert of theirs
    announced = metrics.budget_alerts.labels("team", "100", "announced")._value.get()
    assert announced == 1  # once, by b; a's late view of it stayed silent


async def test_a_webhook_that_keeps_failing_is_tried_three_times_and_counted(
    engine: AsyncEngine, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_module, "_TRIES", (0.0, 0.01, 0.01))
    receiver.status = 500
    settings = BudgetSettings.model_validate(
        {"key_usd": 0.0001, "alert_at": [1.0], "webhooks": [{"url": receiver.url}]}
    )
    metrics = Metrics()
    budgets = Budgets(engine, metrics, BudgetAlerts(engine, metrics))
    budgets.start(lambda: settings)
    try:
        key = _p("cccccccccccc")
        await budgets.admit(key, settings)
        t0 = time.monotonic()
        budgets.charge(key, 150, settings)  # the charge does not wait for the webhook
        assert time.monotonic() - t0 < 0.05
        failed = metrics.budget_alerts.labels("key", "100", "failed")
        await _until(lambda: failed._value.get() == 1)
    finally:
        await budgets.close()
    assert len(receiver.posts) == 3
    assert "x-portcullis-signature" not in receiver.posts[0][0]  # no secret: unsigned
    assert receiver.bodies()[0]["key_id"] == "cccccccccccc"
