"""Spend budgets: what a key, a person or a whole team may spend per period, in micro-dollars
counted from the backends' ``prices`` (``budgets`` settings; a key's own ``budget_microusd``).

A request is admitted against the spend of each of its scopes that has a budget — ``key:<id>``
(the rotation chain's first key, so a rotated key keeps its spend), ``user:<tenant>|<user>`` (a
person across all their keys), ``team:<name>`` and ``tenant:<name>`` — read from memory. The
first request of a scope in a period reads the scope's spend from the ledger (``budget_spend``),
within ``budgets.deadline_ms``, or is refused (503 ``database_unavailable``): a budget is not
waived because it cannot be read. A finished request's cost is added in memory at once, for
every scope whether or not it has a budget (a budget set later counts the period's spend so far),
and every ``budgets.sync_s`` each replica adds what it charged to the ledger (one adding upsert
per scope) and reads back the totals, so the replicas see each other's spend within that
interval.

What a budget bounds, and what it does not: a request is admitted while anything is left, and
the requests in flight when the budget is reached still finish and are charged (the overshoot is
what they cost, plus what other replicas charged in the last ``sync_s``); only priced usage
counts (a backend without ``prices`` for the model costs nothing); a replica that dies loses
at most ``sync_s`` of charges.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts import Alert, BudgetAlerts, crossings
from gateway.budget_scopes import Budget, budgets_of, charged_slots, period_kind, period_of
from gateway.config.core import BudgetSettings
from gateway.errors import Cause, GatewayError
from gateway.key_records import dollars_text, usd
from gateway.principal import Principal
from gateway.storage.db import insert_for
from gateway.storage.schema import budget_spend
from gateway.strays import stop

# budgets_of and period_of are gateway.budget_scopes', re-exported: the tests import them here.
__all__ = ["Budgets", "budgets_of", "period_of"]

log = logging.getLogger("portcullis.budgets")

Slot = tuple[str, str]  # (scope, period)
_READ_CHUNK = 400  # scopes per SELECT (SQLite's bound-parameter limit is 32766 since 3.32)


def _decimal(microusd: int) -> bytes:
    """Micro-dollars as a dollar amount to the micro-dollar, for a header: ``12.345678``."""
    return f"{microusd // 1_000_000}.{microusd % 1_000_000:06d}".encode()


class Budgets:
    """The spend of each scope this period, as this replica knows it, and the ledger behind it."""

    def __init__(
        self, engine: AsyncEngine, metrics: Any = None, alerts: BudgetAlerts | None = None
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._alerts = alerts  # announces a budget's shares crossed (gateway.alerts)
        self._spent: dict[Slot, int] = {}  # the ledger as last read, plus charges since
        self._pending: dict[Slot, int] = {}  # charged here, not yet added to the ledger
        # Held while pending charges move into the ledger, and while the ledger is read and this
        # replica's pending charges added to it: without it a read that saw the ledger before a
        # sync's commit and the pending charges after the sync took them counted them nowhere
        # (GET /admin/budgets showed a team's spend fall back by its last charges for a moment).
        self._ledger_lock = asyncio.Lock()
        self._loading: dict[Slot, asyncio.Future[dict[Slot, int]]] = {}
        self._limits: dict[Slot, Budget] = {}  # the budget each known slot was admitted under
        self._task: asyncio.Task[None] | None = None
        self._settings = BudgetSettings()  # as last seen (the period, the alerts)

    def start(self, settings_of: Any) -> None:
        """Sync every ``budgets.sync_s`` (``settings_of()`` gives the settings in force)."""

        async def loop() -> None:
            while True:
                settings: BudgetSettings = settings_of()
                await asyncio.sleep(settings.sync_s)
                try:
                    await self.sync()
                except Exception as exc:  # noqa: BLE001 - the loop must outlive one failure
                    log.error("spend ledger sync failed: %s", type(exc).__name__)

        self._task = asyncio.get_running_loop().create_task(loop())
        if self._alerts is not None:
            self._alerts.start()

    async def close(self) -> None:
        """Stop the loop and add what is still pending to the ledger (within 5 s)."""
        await stop(self._task)
        self._task = None
        if self._pending:
            try:
                await asyncio.wait_for(self.sync(), 5)
            except Exception as exc:  # noqa: BLE001
                log.error("spend not added to the ledger at shutdown: %s", type(exc).__name__)
        if self._alerts is not None:
            await self._alerts.close()

    # -- the request path ----------------------------------------------------------------

    async def admit(
        self, p: Principal, settings: BudgetSettings, now: datetime | None = None
    ) -> tuple[tuple[bytes, bytes], ...]:
        """Refuse (429 ``spend_budget_exceeded``) a request of a scope whose budget is spent;
        else the answer's ``x-budget-*`` headers for the budget with the least left (none
        without a budget): its scope, limit, what is left, and when it renews."""
        budgets = budgets_of(p, settings)
        if not budgets:
            return ()
        self._settings = settings
        at = now or datetime.now(UTC)
        tightest: tuple[int, Budget, datetime] | None = None
        for b in budgets:
            period, renews = period_of(b.period, at)
            slot = (b.scope, period)
            self._limits[slot] = b
            spent = self._spent.get(slot)
            if spent is None:
                spent = await self._load(slot, settings.deadline_ms / 1000)
            if spent >= b.microusd:
                if self._metrics is not None and not settings.shadow:  # shadowed: not refused
                    self._metrics.budget_refusals.labels(b.kind).inc()
                raise _spent_error(b, period, renews, spent, now)
            left = b.microusd - spent
            if tightest is None or left < tightest[0]:
                tightest = (left, b, renews)
        assert tightest is not None
        left, b, renews = tightest
        return (
            (b"x-budget-scope", b.kind.encode()),
            (b"x-budget-limit-usd", _decimal(b.microusd)),
            (b"x-budget-remaining-usd", _decimal(left)),
            (b"x-budget-renews-at", renews.strftime("%Y-%m-%dT%H:%M:%SZ").encode()),
        )

    def charge(
        self, p: Principal, microusd: int, settings: BudgetSettings, now: datetime | None = None
    ) -> None:
        """Add a finished request's cost to its key's, its person's and its team's spend (the
        key's in its own period too, when it has one: ``charged_slots``)."""
        if microusd <= 0:
            return
        self._settings = settings
        for slot in charged_slots(p, settings, now or datetime.now(UTC)):
            self._pending[slot] = self._pending.get(slot, 0) + microusd
            if slot in self._spent:
                before = self._spent[slot]
                self._spent[slot] = before + microusd
                self._alert(slot, before, before + microusd, now)

    def _alert(self, slot: Slot, before: int, after: int, now: datetime | None = None) -> None:
        """Offer an alert for each share of the slot's budget its spend just crossed."""
        b = self._limits.get(slot)
        if self._alerts is None or b is None or after <= before:
            return
        settings = self._settings
        for share in crossings(settings.alert_at, b.microusd, before, after):
            period, renews = period_of(b.period, now or datetime.now(UTC))
            if period != slot[1]:
                return  # a past period's spend, read back late: nothing to announce now
            self._alerts.offer(Alert(b, period, renews, share, after, settings.webhooks))

    async def _load(self, slot: Slot, deadline_s: float) -> int:
        """A scope's spend from the ledger, the first time this period (concurrent first
        requests share one read)."""
        fut = self._loading.get(slot)
        if fut is None:
            fut = asyncio.ensure_future(self._snapshot([slot]))
            self._loading[slot] = fut

            def done(f: asyncio.Future[dict[Slot, int]]) -> None:
                self._loading.pop(slot, None)
                if not f.cancelled():
                    f.exception()  # retrieved: a late failure is not "never retrieved"

            fut.add_done_callback(done)
        try:
            totals = await asyncio.wait_for(asyncio.shield(fut), deadline_s)
        except Exception as exc:  # noqa: BLE001 - a timeout or any database failure
            log.error("spend ledger read failed: %s", type(exc).__name__)
            raise GatewayError(
                Cause.DATABASE_UNAVAILABLE,
                "The spend ledger could not be read to check a budget; nothing was sent.",
                headers={"retry-after": "1"},
            ) from None
        if slot not in self._spent:
            self._spent[slot] = totals.get(slot, 0)
        return self._spent[slot]

    # -- the ledger ----------------------------------------------------------------------

    async def sync(self) -> None:
        """Add what this replica charged to the ledger, then read back the totals of the scopes
        it knows (the other replicas' charges included: a budget they pushed over a share is
        announced from here if no replica has yet). Charges the ledger did not take stay
        pending for the next sync. Past periods' slots are forgotten, each by its own kind of
        period (a key's own may differ from the gateway's)."""
        async with self._ledger_lock:
            batch, self._pending = self._pending, {}
            if batch:
                try:
                    await self._add(batch)
                except BaseException as exc:  # cancelled too (a shutdown mid-sync): kept
                    for slot, v in batch.items():
                        self._pending[slot] = self._pending.get(slot, 0) + v
                    if self._metrics is not None and isinstance(exc, Exception):
                        self._metrics.budget_sync_failures.inc()
                    raise
        now = datetime.now(UTC)
        current = {kind: period_of(kind, now)[0] for kind in ("day", "week", "month")}
        for slot in [s for s in self._spent if s[1] != current[period_kind(s[1])]]:
            del self._spent[slot]  # a past period's: not asked about again
            self._limits.pop(slot, None)
        watched = list(self._spent)
        if not watched:
            return
        try:
            totals = await self._snapshot(watched)
        except Exception:
            if self._metrics is not None:
                self._metrics.budget_sync_failures.inc()
            raise
        for slot in watched:
            if slot in self._spent:
                before = self._spent[slot]
                self._spent[slot] = totals.get(slot, 0)
                self._alert(slot, before, self._spent[slot])  # other replicas' charges too

    async def _add(self, batch: dict[Slot, int]) -> None:
        now = datetime.now(UTC)
        rows = [
            {"scope": s, "period": p, "microusd": v, "updated_at": now}
            for (s, p), v in sorted(batch.items())  # one order on every replica: no deadlock
        ]
        stmt = insert_for(self._engine, budget_spend)
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope", "period"],
            set_={
                "microusd": budget_spend.c.microusd + stmt.excluded.microusd,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, rows)

    async def _read(self, slots: list[Slot]) -> dict[Slot, int]:
        c = budget_spend.c
        out: dict[Slot, int] = {}
        async with self._engine.connect() as conn:
            for i in range(0, len(slots), _READ_CHUNK):
                chunk = slots[i : i + _READ_CHUNK]
                q = sa.select(c.scope, c.period, c.microusd).where(
                    sa.tuple_(c.scope, c.period).in_(chunk)
                )
                for scope, period, microusd in (await conn.execute(q)).all():
                    out[(scope, period)] = int(microusd)
        return out

    async def spent(self, scopes: list[str], period: str) -> dict[str, int]:
        """Each scope's spend in ``period``: the ledger's, plus this replica's pending charges."""
        totals = await self._snapshot([(s, period) for s in scopes])
        return {s: totals.get((s, period), 0) for s in scopes}

    async def _snapshot(self, slots: list[Slot]) -> dict[Slot, int]:
        """The ledger's totals of ``slots`` plus this replica's charges not yet in it, taken
        while no sync is moving charges into the ledger (one consistent count)."""
        async with self._ledger_lock:
            totals = await self._read(slots)
            return {s: totals.get(s, 0) + self._pending.get(s, 0) for s in slots}


def _spent_error(
    b: Budget, period: str, renews: datetime, spent: int, now: datetime | None
) -> GatewayError:
    if b.kind == "key":
        whose = "This key's"
    elif b.kind == "user":  # the person's, across all their keys
        whose = f"{b.scope.partition('|')[2]}'s"
    elif b.kind == "tenant":
        whose = f"Tenant {b.scope[7:]}'s"
    else:
        whose = f"Team {b.scope[5:]}'s"
    wait = max(1, int((renews - (now or datetime.now(UTC))).total_seconds()) + 1)
    at = renews.strftime("%Y-%m-%dT%H:%M:%SZ")
    return GatewayError(
        Cause.SPEND_BUDGET_EXCEEDED,
        f"{whose} spend budget for {period} ({dollars_text(b.microusd)}) is spent; it renews at "
        f"{at}. Nothing was sent.",
        details={
            "budget": {
                "scope": b.kind,
                "period": period,
                "limit_usd": usd(b.microusd),
                "spent_usd": usd(spent),
                "renews_at": at,
            }
        },
        # The official SDKs retry a 429 unless told not to; a spent budget will not come back
        # before it renews.
        headers={"retry-after": str(wait), "x-should-retry": "false"},
    )
