"""The spend ledger on real databases (SQLite and PostgreSQL): two replicas' charges add up, each
sees the other's after a sync, a budget is held across them, spend survives a restart, the
periods renew, and a ledger that cannot be read refuses rather than waives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.budgets import Budgets, budgets_of, period_of
from gateway.config.core import BudgetSettings
from gateway.errors import Cause, GatewayError
from gateway.principal import Principal
from gateway.storage.db import create_engine_for
from gateway.storage.migrate import upgrade
from gateway.storage.schema import budget_spend

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MONTHLY = BudgetSettings()  # what a charge is counted under: the period, month by default


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, database_url)
    eng = create_engine_for(database_url)
    async with eng.begin() as conn:
        await conn.execute(budget_spend.delete())
    yield eng
    await eng.dispose()


def _p(
    key_id: str,
    team: str | None = "ops",
    budget: int | None = None,
    user: str = "u",
    tenant: str = "default",
) -> Principal:
    return Principal(
        key_id=key_id, user=user, jurisdiction="AU", sector="private", team=team,
        budget_microusd=budget, tenant=tenant,
    )  # fmt: skip


async def test_two_replicas_add_up_and_hold_one_team_budget(engine: AsyncEngine) -> None:
    settings = BudgetSettings(teams={"ops": 0.001})  # 1,000 micro-dollars a month
    a, b = Budgets(engine), Budgets(engine)
    alice, bob = _p("aaaaaaaaaaaa"), _p("bbbbbbbbbbbb")
    await a.admit(alice, settings, NOW)  # reads the ledger: nothing spent
    await b.admit(bob, settings, NOW)
    a.charge(alice, 600, MONTHLY, NOW)
    await b.admit(bob, settings, NOW)  # b has not heard of a's charge yet
    b.charge(bob, 300, MONTHLY, NOW)
    for replica in (a, b):
        await replica.sync()
    await a.sync()  # a reads back b's charge, added after a's first sync
    await a.admit(alice, settings, NOW)  # 900 of 1,000: admitted
    a.charge(alice, 150, MONTHLY, NOW)
    await a.sync()
    await b.sync()
    for replica, who in ((a, alice), (b, bob)):
        with pytest.raises(GatewayError) as err:
            await replica.admit(who, settings, NOW)
        e = err.value
        assert e.cause is Cause.SPEND_BUDGET_EXCEEDED and e.status == 429
        assert e.details["budget"] == {
            "scope": "team", "period": "2026-11", "limit_usd": 0.001, "spent_usd": 0.00105,
            "renews_at": "2026-12-01T00:00:00Z",
        }  # fmt: skip
        assert e.headers["x-should-retry"] == "false"
        assert int(e.headers["retry-after"]) == 12 * 3600 + 1
        assert "Team ops's spend budget for 2026-11 (US$0.00) is spent" in e.message
    async with engine.connect() as conn:
        rows = dict(
            (await conn.execute(sa.select(budget_spend.c.scope, budget_spend.c.microusd))).all()
        )
    assert rows == {
        "team:ops": 1050, "key:aaaaaaaaaaaa": 750, "key:bbbbbbbbbbbb": 300,
        "user:default|u": 1050,  # both keys are u's: a person's spend across their keys
        "tenant:default": 1050,
    }  # fmt: skip
    # another team, and the next month, are not held to it
    await a.admit(_p("cccccccccccc", team="finance"), settings, NOW)
    await a.admit(alice, settings, datetime(2026, 12, 1, tzinfo=UTC))


async def test_a_keys_own_budget_survives_a_restart_and_rotation_shares_it(
    engine: AsyncEngine,
) -> None:
    settings = BudgetSettings(key_usd=0.0005)
    first = Budgets(engine)
    key = _p("dddddddddddd", team=None)
    await first.admit(key, settings, NOW)
    first.charge(key, 500, MONTHLY, NOW)
    await first.close()  # flushes what is pending
    again = Budgets(engine)
    with pytest.raises(GatewayError, match="This key's spend budget"):
        await again.admit(key, settings, NOW)
    successor = Principal(
        key_id="eeeeeeeeeeee", user="u", jurisdiction="AU", sector="private",
        buckets="dddddddddddd",
    )  # fmt: skip
    with pytest.raises(GatewayError):  # a rotated key draws on its chain's spend
        await again.admit(successor, settings, NOW)
    # its own budget overrides the default; 0 is none
    await again.admit(_p("dddddddddddd", team=None, budget=600), settings, NOW)
    await again.admit(_p("dddddddddddd", team=None, budget=0), settings, NOW)
    assert budgets_of(_p("x", team=None, budget=0), settings) == []


async def test_a_persons_budget_holds_across_all_their_keys(engine: AsyncEngine) -> None:
    settings = BudgetSettings(user_usd=0.0005, users={"vip": 1.0})
    budgets = Budgets(engine)
    laptop, phone = _p("111111111111", user="liz"), _p("222222222222", user="liz")
    for key in (laptop, phone):
        await budgets.admit(key, settings, NOW)
        budgets.charge(key, 300, MONTHLY, NOW)
    with pytest.raises(GatewayError) as err:  # 600 of 500 across her two keys
        await budgets.admit(_p("333333333333", user="liz"), settings, NOW)  # a third key too
    assert "liz's spend budget for 2026-11 (US$0.00) is spent" in err.value.message
    assert err.value.details["budget"]["scope"] == "user"
    # the same name in another tenant is another person; a named person has their own budget
    await budgets.admit(_p("444444444444", user="liz", tenant="agency"), settings, NOW)
    vip = _p("555555555555", user="vip")
    budgets.charge(vip, 900, MONTHLY, NOW)
    await budgets.admit(vip, settings, NOW)
    await budgets.sync()
    period, _ = period_of("month", NOW)
    assert await budgets.spent(["user:default|liz", "user:agency|liz"], period) == {
        "user:default|liz": 600, "user:agency|liz": 0,
    }  # fmt: skip


async def test_a_tenants_budget_holds_across_all_its_keys(engine: AsyncEngine) -> None:
    settings = BudgetSettings(tenants={"agency": 0.0005})
    budgets = Budgets(engine)
    one, two = _p("a1a1a1a1a1a1", tenant="agency"), _p("b2b2b2b2b2b2", user="v", tenant="agency")
    await budgets.admit(one, settings, NOW)
    budgets.charge(one, 500, MONTHLY, NOW)
    with pytest.raises(GatewayError, match="Tenant agency's spend budget") as err:
        await budgets.admit(two, settings, NOW)
    assert err.value.details["budget"]["scope"] == "tenant"
    await budgets.admit(_p("c3c3c3c3c3c3"), settings, NOW)  # the default tenant has none


async def test_charges_the_ledger_did_not_take_are_kept_for_the_next_sync(
    engine: AsyncEngine,
) -> None:
    budgets = Budgets(engine)
    key = _p("ffffffffffff")
    budgets.charge(key, 40, MONTHLY)
    async with engine.begin() as conn:  # the table gone for a moment
        await conn.execute(sa.text("ALTER TABLE budget_spend RENAME TO budget_spend_away"))
    with pytest.raises(Exception):  # noqa: B017 - whichever the driver raises
        await budgets.sync()
    budgets.charge(key, 2, MONTHLY)
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE budget_spend_away RENAME TO budget_spend"))
    await budgets.sync()
    period, _ = period_of("month", datetime.now(UTC))
    assert await budgets.spent(["key:ffffffffffff", "team:ops", "user:default|u"], period) == {
        "key:ffffffffffff": 42, "team:ops": 42, "user:default|u": 42,
    }  # fmt: skip


async def test_a_read_during_a_sync_counts_every_charge_once(engine: AsyncEngine) -> None:
    """A sync moves this replica's charges into the ledger; a read of the spend meanwhile
    (``GET /admin/budgets``) must count them once, neither in neither place (it read the ledger
    before the commit and the pending charges after the sync took them: an e2e test saw a
    team's spend fall from 312 to 254 micro-dollars) nor in both."""
    budgets = Budgets(engine)
    key = _p("a1a1a1a1a1a1")
    budgets.charge(key, 98, MONTHLY)
    await budgets.sync()
    budgets.charge(key, 58, MONTHLY)
    period, _ = period_of("month", datetime.now(UTC))
    slow_add, adding = budgets._add, asyncio.Event()

    async def add(batch: dict) -> None:  # a commit that takes a while
        adding.set()
        await asyncio.sleep(0.2)
        await slow_add(batch)

    budgets._add = add  # type: ignore[method-assign]
    syncing = asyncio.create_task(budgets.sync())
    await adding.wait()  # the charges have left pending and are not committed yet
    seen = await budgets.spent(["team:ops"], period)
    await syncing
    assert seen == {"team:ops": 156}
    assert await budgets.spent(["team:ops"], period) == {"team:ops": 156}


async def test_a_ledger_that_cannot_be_read_refuses_within_the_deadline(
    engine: AsyncEngine, database_url: str
) -> None:
    settings = BudgetSettings(key_usd=1.0, deadline_ms=200)
    budgets = Budgets(engine)
    lock = create_engine_for(database_url)
    try:
        async with lock.connect() as conn:
            if engine.dialect.name == "postgresql":  # held by another session: reads wait
                await conn.execute(sa.text("BEGIN"))
                await conn.execute(sa.text("LOCK TABLE budget_spend IN ACCESS EXCLUSIVE MODE"))
            else:  # SQLite: the table gone, so the read fails at once
                await conn.execute(sa.text("ALTER TABLE budget_spend RENAME TO gone"))
                await conn.commit()
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(GatewayError) as err:
                await budgets.admit(_p("999999999999", team=None), settings, NOW)
            assert err.value.cause is Cause.DATABASE_UNAVAILABLE and err.value.status == 503
            assert asyncio.get_running_loop().time() - t0 < 1.0
            if engine.dialect.name == "postgresql":
                await conn.rollback()
            else:
                await conn.execute(sa.text("ALTER TABLE gone RENAME TO budget_spend"))
                await conn.commit()
    finally:
        await lock.dispose()
    await budgets.admit(_p("999999999999", team=None), settings, NOW)  # readable again


def test_periods_renew_at_the_start_of_each_utc_day_week_and_month() -> None:
    late = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_of("day", late) == ("2026-12-31", datetime(2027, 1, 1, tzinfo=UTC))
    assert period_of("month", late) == ("2026-12", datetime(2027, 1, 1, tzinfo=UTC))
    # 2026-12-31 is a Thursday in ISO week 53 of 2026; the week renews on Monday 2027-01-04
    assert period_of("week", late) == ("2026-W53", datetime(2027, 1, 4, tzinfo=UTC))
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert period_of("week", monday) == ("2026-W49", datetime(2026, 12, 7, tzinfo=UTC))


async def test_a_sync_cut_short_by_a_shutdown_keeps_its_charges_for_the_last_one(
    engine: AsyncEngine,
) -> None:
    budgets = Budgets(engine)
    budgets.charge(_p("777777777777", team=None), 70, MONTHLY)
    real, gate = budgets._add, asyncio.Event()

    async def stuck(batch: dict[tuple[str, str], int]) -> None:
        await gate.wait()
        await real(batch)

    budgets._add = stuck  # type: ignore[method-assign]
    task = asyncio.ensure_future(budgets.sync())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    budgets._add = real  # type: ignore[method-assign]
    await budgets.close()  # adds what is still pending
    period, _ = period_of("month", datetime.now(UTC))
    assert await Budgets(engine).spent(["key:777777777777"], period) == {"key:777777777777": 70}


async def test_a_key_s_own_period_renews_its_budget_and_the_rest_keep_the_gateway_s(
    engine: AsyncEngine,
) -> None:
    """A key held to $0.001 a day while the gateway's period is the month: spent today, it is
    refused until tomorrow (its headers say so), then admitted again; its spend is counted in
    the month too (a change of period later keeps it), and the team's budget stays monthly."""
    from dataclasses import replace

    from gateway.budget_report import report
    from gateway.key_records import KeyRecord

    settings = BudgetSettings(teams={"ops": 1.0})
    daily = replace(_p("dddddddddddd", budget=1_000), budget_period="day")
    budgets = Budgets(engine)
    headers = dict(await budgets.admit(daily, settings, NOW))
    assert headers[b"x-budget-scope"] == b"key"
    assert headers[b"x-budget-renews-at"] == b"2026-12-01T00:00:00Z"  # tomorrow, not next month
    budgets.charge(daily, 1_000, settings, NOW)
    with pytest.raises(GatewayError) as spent:
        await budgets.admit(daily, settings, NOW)
    assert spent.value.cause is Cause.SPEND_BUDGET_EXCEEDED
    assert spent.value.details["budget"]["period"] == "2026-11-30"
    await budgets.sync()
    tomorrow = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    await budgets.admit(daily, settings, tomorrow)  # a new day: admitted
    assert await budgets.spent(["key:dddddddddddd"], "2026-11") == {"key:dddddddddddd": 1_000}
    assert await budgets.spent(["team:ops"], "2026-11") == {"team:ops": 1_000}
    # the report gives each row its own period and renewal
    record = KeyRecord(
        key_id="dddddddddddd", user="u", team="ops", tenant="default", jurisdiction="AU",
        sector="private", roles=(), tags=(), created_at=NOW, revoked_at=None, description=None,
        budget_microusd=1_000, budget_period="day",
    )  # fmt: skip
    out = await report([record], budgets, settings, NOW)
    rows = {row["scope"]: row for row in out["data"]}
    assert out["period"] == "2026-11"
    assert (rows["key"]["period"], rows["key"]["renews_at"]) == (
        "2026-11-30",
        "2026-12-01T00:00:00Z",
    )
    assert rows["key"]["spent_usd"] == 0.001 and rows["team"]["period"] == "2026-11"


async def test_a_person_team_or_tenant_renews_on_a_period_of_its_own(
    engine: AsyncEngine,
) -> None:
    """``teams: {ops: {usd, period: day}}`` holds the team to a daily budget while the gateway's
    period is the month and a person stays monthly; a named person may renew weekly. Each is
    refused once spent and admitted again when its own period renews; the report says so."""
    from gateway.budget_report import report
    from gateway.key_records import KeyRecord

    settings = BudgetSettings.model_validate(
        {
            "teams": {"ops": {"usd": 0.001, "period": "day"}},
            "users": {"weekly": {"usd": 0.002, "period": "week"}, "u": 1.0},
            "tenants": {"default": {"usd": 1.0}},  # no period of its own: the gateway's
        }
    )
    assert settings.named("teams", "ops") == (0.001, "day")
    assert settings.named("users", "u") == (1.0, None)
    assert settings.named("tenants", "nobody") is None
    ops = _p("eeeeeeeeeeee")
    budgets = Budgets(engine)
    budgets.charge(ops, 1_000, settings, NOW)
    with pytest.raises(GatewayError) as spent:
        await budgets.admit(ops, settings, NOW)
    assert spent.value.details["budget"]["scope"] == "team"
    assert spent.value.details["budget"]["period"] == "2026-11-30"
    await budgets.sync()
    tomorrow = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    headers = dict(await budgets.admit(ops, settings, tomorrow))  # the team's new day
    assert headers[b"x-budget-renews-at"] == b"2026-12-02T00:00:00Z"
    # the month counts the team's spend too, and the person's stays monthly
    assert await budgets.spent(["team:ops", "user:default|u"], "2026-11") == {
        "team:ops": 1_000,
        "user:default|u": 1_000,
    }
    # a person with a weekly budget of their own: two charges spend it, next Monday renews it
    weekly = _p("ffffffffffff", team=None, user="weekly")
    budgets.charge(weekly, 2_000, settings, NOW)
    with pytest.raises(GatewayError) as spent:
        await budgets.admit(weekly, settings, NOW)
    assert (spent.value.details["budget"]["scope"], spent.value.details["budget"]["period"]) == (
        "user",
        "2026-W49",
    )
    await budgets.sync()
    await budgets.admit(weekly, settings, datetime(2026, 12, 7, 0, 1, tzinfo=UTC))

    def record(key_id: str, user: str, team: str | None) -> KeyRecord:
        return KeyRecord(
            key_id=key_id, user=user, team=team, tenant="default", jurisdiction="AU",
            sector="private", roles=(), tags=(), created_at=NOW, revoked_at=None,
            description=None,
        )  # fmt: skip

    records = [record("eeeeeeeeeeee", "u", "ops"), record("ffffffffffff", "weekly", None)]
    out = await report(records, budgets, settings, NOW)
    rows = {(row["scope"], row.get("team") or row.get("user") or row.get("tenant")): row
            for row in out["data"]}  # fmt: skip
    assert out["period"] == "2026-11"
    assert (rows["team", "ops"]["period"], rows["team", "ops"]["renews_at"]) == (
        "2026-11-30",
        "2026-12-01T00:00:00Z",
    )
    assert rows["team", "ops"]["spent_usd"] == 0.001
    assert rows["user", "weekly"]["period"] == "2026-W49"
    assert rows["user", "weekly"]["spent_usd"] == 0.002
    assert rows["user", "u"]["period"] == rows["tenant", "default"]["period"] == "2026-11"


def test_a_budget_of_its_own_period_is_checked_like_the_rest() -> None:
    for bad in (
        {"teams": {"ops": {"usd": -1}}},
        {"teams": {"ops": {"usd": 1, "period": "fortnight"}}},
        {"users": {"a": {"period": "day"}}},  # no amount
        {"tenants": {"t": {"usd": 1, "extra": 1}}},
        {"teams": {"bad name": {"usd": 1}}},
    ):
        with pytest.raises(ValueError):
            BudgetSettings.model_validate(bad)


async def test_keys_and_people_may_renew_on_a_period_of_their_kind(engine: AsyncEngine) -> None:
    """``key_period`` and ``user_period``: every key's budget (unless the key has its own
    period) and every person's renew on them, the teams' on ``budgets.period``."""
    settings = BudgetSettings.model_validate(
        {"key_usd": 1, "key_period": "day", "user_usd": 2, "user_period": "week",
         "users": {"named": 3, "own": {"usd": 4, "period": "month"}}, "teams": {"ops": 5}}
    )  # fmt: skip
    from dataclasses import replace

    periods = {b.kind: b.period for b in budgets_of(_p("aaaaaaaaaaaa"), settings)}
    assert periods == {"key": "day", "user": "week", "team": "month"}
    named = {
        b.kind: (b.period, b.microusd) for b in budgets_of(_p("b" * 12, user="named"), settings)
    }
    assert named["user"] == ("week", 3_000_000)  # a number in users: user_period
    own = {b.kind: b.period for b in budgets_of(_p("c" * 12, user="own"), settings)}
    assert own["user"] == "month"  # its own period wins
    monthly_key = replace(_p("d" * 12), budget_period="month")
    assert {b.kind: b.period for b in budgets_of(monthly_key, settings)}["key"] == "month"
    # charged in the gateway's month and in each period of its own
    budgets = Budgets(engine)
    budgets.charge(_p("aaaaaaaaaaaa"), 500, settings, NOW)
    await budgets.sync()
    assert await budgets.spent(["key:aaaaaaaaaaaa", "user:default|u"], "2026-11") == {
        "key:aaaaaaaaaaaa": 500,
        "user:default|u": 500,
    }
    assert await budgets.spent(["key:aaaaaaaaaaaa"], "2026-11-30") == {"key:aaaaaaaaaaaa": 500}
    assert await budgets.spent(["user:default|u"], "2026-W49") == {"user:default|u": 500}
