"""Where a key stands now (``GET /admin/keys/{key_id}/usage``; for a self-service key's holder
``GET /admin/me/keys/{key_id}/usage``; ``portcullis keys usage``): its rate and token buckets
and its requests in flight, from the limiter (Redis: every replica's), and each spend budget it
is held to — its own, its person's, its team's, its tenant's — in that budget's own period.
Nothing is taken or changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.admission import shared_bucket
from gateway.budget_report import spend_of
from gateway.budget_scopes import budgets_of
from gateway.budgets import Budgets
from gateway.config import Settings
from gateway.key_records import KeyRecord
from gateway.limiter import Limiter

__all__ = ["key_usage"]


async def key_usage(
    record: KeyRecord,
    limiter: Limiter | None,
    ledger: Budgets | None,
    settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"key_id", "limits": {...}, "user_limits"/"team_limits"/"tenant_limits": {...} |
    None, "budgets": [{"scope", "limit_usd", "spent_usd", "remaining_usd", "period", "renews_at"},
    ...]}`` for ``record`` (its rotation chain shares its buckets and its budget, as requests
    do; the person's, team's and tenant's shared buckets when ``limits`` gives them some).
    ``limiter`` None: the limits are not known here (``null``; a command line without Redis,
    each gateway holding its own)."""
    p = record.principal()
    limits = None
    shared: dict[str, dict[str, Any] | None] = dict.fromkeys(
        ("user_limits", "team_limits", "tenant_limits")
    )
    if limiter is not None:  # the key's own and each shared one, asked at once
        scopes = list(settings.limits.shared(p.user, p.team, p.tenant))
        own, *others = await limiter.standings(
            [
                (p.buckets or p.key_id, p.requests_per_minute, p.tokens_per_minute, p.max_parallel),
                *(
                    (shared_bucket(scope, name), h.requests_per_minute, h.tokens_per_minute,
                     h.max_parallel)
                    for scope, name, h in scopes
                ),
            ]
        )  # fmt: skip
        limits = own.to_json()
        for (scope, _, _), standing in zip(scopes, others, strict=True):
            shared[f"{scope}_limits"] = standing.to_json()
    held = budgets_of(p, settings.budgets)
    spend = await spend_of(held, ledger, now or datetime.now(UTC))
    return {
        "object": "key.usage",
        "key_id": record.key_id,
        "limits": limits,
        **shared,
        "budgets": [{"scope": b.kind, **spend[b.scope]} for b in held],
    }
