"""Budget alerts: when a scope's spend crosses a share of its budget (``budgets.alert_at``, 80 %
and 100 % by default) the gateway announces it once per scope, period and share, whichever
replica sees it — a warning in the log (the scope's kind, the share and the period: no names),
``portcullis_budget_alerts_total`` and a JSON post to each of ``budgets.webhooks``.

Once: the replica that sees a crossing first claims it in the ``budget_alerts`` table (an insert
that only one replica's succeeds) and only then announces it; the others stay silent. So an
alert is sent at most once: a webhook that fails three tries (at once, after 1 s and after 2 s)
is counted and logged, not retried later. Posting never holds up a request: alerts wait in a
bounded queue (a full one drops and counts them) for one worker.

The body: ``{"type": "budget.threshold", "scope": "key"|"user"|"team", "key_id"|"user"+"tenant"|
"team": …, "period", "share", "limit_usd", "spent_usd", "renews_at", "at"}``; with a secret, the
header ``x-portcullis-signature: t=<unix time>,v1=<HMAC-SHA256 hex of "<t>.<body>">`` (the
receiver recomputes it and checks that ``t`` is recent).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.core import WebhookSettings
from gateway.key_records import usd
from gateway.storage.db import insert_for
from gateway.storage.schema import budget_alerts
from gateway.strays import stop

if TYPE_CHECKING:
    from gateway.budget_scopes import Budget

__all__ = ["Alert", "BudgetAlerts", "sign"]

log = logging.getLogger("portcullis.budgets")

_QUEUE = 1000
_TRIES = (0.0, 1.0, 2.0)  # the wait before each try


@dataclass(frozen=True, slots=True)
class Alert:
    budget: Budget
    period: str
    renews: datetime
    share: float
    spent: int  # micro-dollars, as seen when it crossed
    webhooks: tuple[WebhookSettings, ...]

    def body(self) -> dict[str, Any]:
        b = self.budget
        who: dict[str, str] = {}
        if b.kind == "key":
            who = {"key_id": b.scope[4:]}
        elif b.kind == "user":
            tenant, _, user = b.scope[5:].partition("|")
            who = {"user": user, "tenant": tenant}
        elif b.kind == "tenant":
            who = {"tenant": b.scope[7:]}
        else:
            who = {"team": b.scope[5:]}
        return {
            "type": "budget.threshold",
            "scope": b.kind,
            **who,
            "period": self.period,
            "share": self.share,
            "limit_usd": usd(b.microusd),
            "spent_usd": usd(self.spent),
            "renews_at": self.renews.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def sign(secret: bytes, body: bytes, t: int | None = None) -> str:
    """The ``x-portcullis-signature`` value for ``body``: ``t=<unix time>,v1=<hex>``."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def crossings(shares: tuple[float, ...], limit: int, before: int, after: int) -> list[float]:
    """The shares of ``limit`` that spend moving from ``before`` to ``after`` crossed."""
    return [s for s in shares if before < s * limit <= after]


class BudgetAlerts:
    def __init__(self, engine: AsyncEngine, metrics: Any = None) -> None:
        self._engine = engine
        self._metrics = metrics
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        async def work() -> None:
            while True:
                alert = await self._queue.get()
                try:
                    await self.deliver(alert)
                except Exception as exc:  # noqa: BLE001 - the worker must outlive one alert
                    log.error("budget alert not announced: %s", type(exc).__name__)
                finally:
                    self._queue.task_done()

        self._task = asyncio.get_running_loop().create_task(work())

    async def close(self) -> None:
        """Announce what is queued (within 10 s), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 10)
            await stop(self._task)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def offer(self, alert: Alert) -> None:
        """Queue an alert for the worker (never waits; a full queue drops it, counted)."""
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self._count(alert, "dropped")

    async def deliver(self, alert: Alert) -> bool:
        """Claim the alert, then announce it; False when another replica (or an earlier try)
        already claimed it."""
        if not await self._claim(alert):
            return False
        pct = round(alert.share * 100)
        log.warning(
            "budget alert: a %s budget is %d%% spent for %s", alert.budget.kind, pct, alert.period
        )
        self._count(alert, "announced")
        body = json.dumps(alert.body(), separators=(",", ":")).encode()
        for i, hook in enumerate(alert.webhooks):
            if await self._post(hook, body):
                self._count(alert, "posted")
            else:  # the URL may hold a token (Slack's do): the hook's place in the list only
                log.error("budget alert: webhook %d did not take it after %d tries", i, len(_TRIES))
                self._count(alert, "failed")
        return True

    async def _claim(self, alert: Alert) -> bool:
        stmt = (
            insert_for(self._engine, budget_alerts)
            .values(
                scope=alert.budget.scope,
                period=alert.period,
                share_pct=round(alert.share * 100),
                sent_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["scope", "period", "share_pct"])
        )
        async with self._engine.begin() as conn:
            res = await conn.execute(stmt)
        return bool(res.rowcount)

    async def _post(self, hook: WebhookSettings, body: bytes) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"content-type": "application/json", "user-agent": "portcullis-alerts"}
        secret = hook.secret()
        for wait in _TRIES:
            if wait:
                await asyncio.sleep(wait)
            if secret is not None:
                headers["x-portcullis-signature"] = sign(secret, body)
            try:
                async with self._session.post(
                    hook.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=hook.timeout_s),
                    allow_redirects=False,
                ) as resp:
                    if 200 <= resp.status < 300:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
        return False

    def _count(self, alert: Alert, outcome: str) -> None:
        if self._metrics is not None:
            share = f"{round(alert.share * 100)}"
            self._metrics.budget_alerts.labels(alert.budget.kind, share, outcome).inc()
