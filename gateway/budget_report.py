"""The spend budgets report (``GET /admin/budgets``, ``portcullis budgets``): every budget in
force and what it has spent this period, from the ledger (:mod:`gateway.budgets`); and
:func:`spend_of`, where any set of budgets stands in each one's own period.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.budget_scopes import Budget, budgets_of, period_of
from gateway.budgets import Budgets
from gateway.config.core import BudgetSettings
from gateway.key_records import KeyRecord, micro, usd

__all__ = ["report", "spend_of"]


async def spend_of(
    budgets: Iterable[Budget], ledger: Budgets | None, at: datetime
) -> dict[str, dict[str, Any]]:
    """Where each budget stands, by scope: its limit, what it spent in its own current period
    (the ledger plus this replica's charges not yet in it; nothing without a ledger), what is
    left, that period and when it renews."""
    by_kind: dict[str, list[Budget]] = {}
    for b in budgets:
        by_kind.setdefault(b.period, []).append(b)
    out: dict[str, dict[str, Any]] = {}
    for kind, group in sorted(by_kind.items()):
        period, renews = period_of(kind, at)
        spent = {} if ledger is None else await ledger.spent([b.scope for b in group], period)
        for b in group:
            used = spent.get(b.scope, 0)
            out[b.scope] = {
                "limit_usd": usd(b.microusd),
                "spent_usd": usd(used),
                "remaining_usd": usd(max(0, b.microusd - used)),
                "period": period,
                "renews_at": renews.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
    return out


async def report(
    records: list[KeyRecord],
    budgets: Budgets | None,
    settings: BudgetSettings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The spend budgets in force and what each has spent this period (each row's own period
    and renewal: a key, person, team or tenant may renew on its own, the rest on
    ``budgets.period``): every team with a budget (``teams``), every active key with one (its
    own or ``key_usd``; ``key_ids``: the key and its rotation chain) and every person with an
    active key and a budget (``users`` or ``user_usd``), from the ledger plus this replica's
    charges not yet in it. The admin API's ``GET /admin/budgets`` and ``portcullis budgets``."""
    at = now or datetime.now(UTC)
    period, renews = period_of(settings.period, at)
    rows: dict[str, dict[str, Any]] = {}
    held: dict[str, Budget] = {}  # scope -> its budget
    named: tuple[tuple[str, Literal["teams", "tenants"]], ...] = (
        ("team", "teams"),
        ("tenant", "tenants"),
    )
    for kind, setting in named:
        for name in getattr(settings, setting):
            dollars, own = settings.named(setting, name) or (0, None)
            if dollars:
                scope = f"{kind}:{name}"
                rows[scope] = {"scope": kind, kind: name}
                held[scope] = Budget(scope, kind, micro(dollars), own or settings.period)
    for record in records:
        if not record.active():
            continue
        for b in budgets_of(record.principal(), settings):
            if b.kind == "key":
                rows.setdefault(b.scope, {"scope": "key", "key_ids": []})
                rows[b.scope]["key_ids"].append(record.key_id)
                rows[b.scope]["own"] = record.budget_microusd is not None
            elif b.kind == "user":
                rows.setdefault(
                    b.scope, {"scope": "user", "user": record.user, "tenant": record.tenant}
                )
            held[b.scope] = b
    spend = await spend_of(held.values(), budgets, at)
    return {
        "object": "list",
        "period": period,
        "renews_at": renews.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": [{**row, **spend[scope]} for scope, row in rows.items()],
    }
