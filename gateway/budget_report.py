"""The spend budgets report (``GET /admin/budgets``, ``portcullis budgets``): every budget in
force and what it has spent this period, from the ledger (:mod:`gateway.budgets`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from gateway.budget_scopes import budgets_of, period_of
from gateway.budgets import Budgets
from gateway.config.core import BudgetSettings
from gateway.key_records import KeyRecord, micro, usd

__all__ = ["report"]


async def report(
    records: list[KeyRecord],
    budgets: Budgets | None,
    settings: BudgetSettings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The spend budgets in force and what each has spent this period (each row's own period
    and renewal: a key, person, team or tenant may renew on its own, the rest on
    ``budgets.period``): every team with a
    budget (``teams``), every active key with one (its own or ``key_usd``; ``key_ids``: the key
    and its rotation chain) and every person with an active key and a budget (``users`` or
    ``user_usd``), from the ledger plus this replica's charges not yet in it. The admin API's
    ``GET /admin/budgets`` and ``portcullis budgets``."""
    at = now or datetime.now(UTC)
    period, renews = period_of(settings.period, at)
    rows: dict[str, dict[str, Any]] = {}
    limits: dict[str, int] = {}  # scope -> micro-dollars
    kinds: dict[str, str] = {}  # scope -> the kind of period it renews on
    named: tuple[tuple[str, Literal["teams", "tenants"]], ...] = (
        ("team", "teams"),
        ("tenant", "tenants"),
    )
    for kind, setting in named:
        for name in getattr(settings, setting):
            dollars, own = settings.named(setting, name) or (0, None)
            if dollars:
                rows[f"{kind}:{name}"] = {"scope": kind, kind: name}
                limits[f"{kind}:{name}"] = micro(dollars)
                kinds[f"{kind}:{name}"] = own or settings.period
    for record in records:
        if record.revoked_at is not None or record.expired():
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
            limits[b.scope] = b.microusd
            kinds[b.scope] = b.period
    spent: dict[str, int] = {}
    for kind in sorted(set(kinds.values())):
        scopes = [scope for scope, k in kinds.items() if k == kind]
        if scopes and budgets is not None:
            spent |= await budgets.spent(scopes, period_of(kind, at)[0])
    data = []
    for scope, row in rows.items():
        limit, used = limits[scope], spent.get(scope, 0)
        own_period, own_renews = period_of(kinds[scope], at)
        data.append(
            {
                **row,
                "limit_usd": usd(limit),
                "spent_usd": usd(used),
                "remaining_usd": usd(max(0, limit - used)),
                "period": own_period,
                "renews_at": own_renews.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return {
        "object": "list",
        "period": period,
        "renews_at": renews.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
